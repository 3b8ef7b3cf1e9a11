import DataDist
import Testing

/// Spec §15.3: the pool and allocation cases that need no peer.
@Suite struct AllocationTests {
    let fourTensors = CacheDesc(numTensors: 4, shape: [4, 4096], dataType: .int32)

    @Test func c03ToC06KeysHoldTheCacheUntilTheLastIsRemoved() throws {
        try withCacheManager(devicePool: 262_144) { manager in
            let cache = try manager.allocateCache(fourTensors, keys: [key(1000), .placeholder(), key(1002)])
            #expect(manager.audit().boundKeys == 2)
            #expect(cache.tensorAddresses.count == 4)
            expectRefusal(.outOfMemory, in: manager) { _ = try manager.allocateCache(fourTensors) }
            expectRefusal(.outOfMemory, in: manager) {
                _ = try manager.allocateCache(CacheDesc(numTensors: 1, shape: [1], dataType: .int8))
            }
            try manager.deallocateCache(cache)
            #expect(manager.audit().liveCaches == 1, "deferred while keys remain")
            try manager.removeCacheKey(key(1000))
            #expect(manager.audit().boundKeys == 1)
            try manager.removeCacheKey(.placeholder())
            try manager.removeCacheKey(key(1002))
            try manager.removeCacheKey(key(1003))
            #expect(manager.audit().isClean)
            let again = try manager.allocateCache(fourTensors)
            try manager.deallocateCache(again)
            #expect(manager.audit().isClean)
        }
    }

    @Test func c07TwoSmallTensorsNeedTwoPages() throws {
        try withCacheManager(devicePool: 65_536) { manager in
            expectRefusal(.outOfMemory, in: manager) {
                _ = try manager.allocateCache(CacheDesc(numTensors: 2, shape: [4, 128], dataType: .int32))
            }
        }
    }

    @Test func c10LargeTensorsExhaustA100MBPool() throws {
        try withCacheManager(devicePool: 100_000_000) { manager in
            let small = try manager.allocateCache(CacheDesc(numTensors: 8, shape: [4, 128], dataType: .int32))
            expectRefusal(.outOfMemory, mentioning: ["tensors"], in: manager) {
                _ = try manager.allocateCache(CacheDesc(numTensors: 8, shape: [1, 10 * 1024 * 1024], dataType: .int32))
            }
            try manager.deallocateCache(small)
        }
    }

    @Test func c11WithoutAnyPoolAllocationIsNotEnabled() throws {
        try withCacheManager(devicePool: nil) { manager in
            expectRefusal(.featureNotEnabled, mentioning: ["memoryPool"], in: manager) {
                _ = try manager.allocateCache(fourTensors)
            }
            expectRefusal(.featureNotEnabled, in: manager) { try manager.removeCacheKey(key(1)) }
        }
    }

    @Test func c12AHostCacheNeedsTheHostPool() throws {
        try withCacheManager { manager in
            expectRefusal(.paramInvalid, mentioning: ["hostMemoryPool"], in: manager) {
                _ = try manager.allocateCache(
                    CacheDesc(numTensors: 1, shape: [2, 8], dataType: .int8, placement: .host))
            }
        }
    }

    @Test func hostCachesComeFromTheHostPool() throws {
        try withCacheManager(devicePool: nil, hostPool: 1 << 20) { manager in
            let cache = try manager.allocateCache(
                CacheDesc(numTensors: 2, shape: [2, 8], dataType: .int8, placement: .host))
            #expect(manager.audit().pagesInUse == 2)
            try manager.deallocateCache(cache)
        }
    }

    @Test func c13MoreKeysThanSlots() throws {
        try withCacheManager { manager in
            expectRefusal(.paramInvalid, mentioning: ["3 keys", "2"], in: manager) {
                _ = try manager.allocateCache(
                    CacheDesc(numTensors: 1, shape: [2, 8], dataType: .int8), keys: [key(1), key(2), key(3)])
            }
        }
    }

    @Test func c14AKeyBoundElsewhere() throws {
        try withCacheManager { manager in
            let desc = CacheDesc(numTensors: 1, shape: [2, 8], dataType: .int8)
            let first = try manager.allocateCache(desc, keys: [key(1)])
            expectRefusal(.paramInvalid, mentioning: ["already bound", "cache \(first.cacheID)"], in: manager) {
                _ = try manager.allocateCache(desc, keys: [key(1)])
            }
            _ = try manager.allocateCache(desc, keys: [key(1, model: 2)])
            try manager.removeCacheKey(key(1))
            try manager.removeCacheKey(key(1, model: 2))
            try manager.deallocateCache(first)
        }
    }

    @Test func c15DuplicateKeysInOneRequestAndPlaceholdersAreExempt() throws {
        try withCacheManager { manager in
            let desc = CacheDesc(numTensors: 1, shape: [3, 8], dataType: .int8)
            expectRefusal(.paramInvalid, mentioning: ["keys[0]", "keys[1]"], in: manager) {
                _ = try manager.allocateCache(desc, keys: [key(1), key(1)])
            }
            let cache = try manager.allocateCache(desc, keys: [.placeholder(), .placeholder(), key(5)])
            #expect(manager.audit().boundKeys == 1)
            try manager.deallocateCache(cache)
            try manager.removeCacheKey(key(5))
        }
    }

    @Test func c16RemovingAnUnboundKeyAndDeallocatingTwiceAreNoOps() throws {
        try withCacheManager { manager in
            let cache = try manager.allocateCache(fourTensors)
            try manager.removeCacheKey(CacheKey(promptClusterID: 1, reqID: 999))
            try manager.deallocateCache(cache)
            try manager.deallocateCache(cache)
            #expect(manager.audit().isClean)
        }
    }

    /// Counts within uint32 (beyond it is `.paramInvalid`: InputBoundsTests).
    @Test(arguments: [Int(UInt32.max), 1 << 20, 17])
    func moreTensorsThanPagesAreRefusedAtOnce(tensors: Int) throws {
        try withCacheManager(devicePool: 16 << 16) { manager in
            expectRefusal(.outOfMemory, mentioning: ["\(tensors) tensors"], in: manager) {
                _ = try manager.allocateCache(CacheDesc(numTensors: tensors, shape: [1, 8], dataType: .int8))
            }
            expectRefusal(.outOfMemory, in: manager) {
                _ = try manager.allocateBlocksCache(CacheDesc(numTensors: tensors, shape: [1, 8], dataType: .int8))
            }
        }
    }

    @Test(arguments: [[Int64](), [0, 4], [-1, 4], [Int64.max, 2], Array(repeating: 1, count: 32)])
    func badShapesAreParamInvalidEverywhere(shape: [Int64]) throws {
        try withCacheManager { manager in
            let desc = CacheDesc(numTensors: 1, shape: shape, dataType: .int32)
            expectRefusal(.paramInvalid, mentioning: ["shape"], in: manager) { _ = try manager.allocateCache(desc) }
            expectRefusal(.paramInvalid, mentioning: ["shape"], in: manager) {
                _ = try manager.allocateBlocksCache(desc)
            }
            expectRefusal(.paramInvalid, mentioning: ["shape"], in: manager) {
                _ = try manager.registerCache(desc, addresses: [64])
            }
            expectRefusal(.paramInvalid, mentioning: ["shape"], in: manager) {
                _ = try manager.registerBlocksCache(desc, addresses: [64])
            }
        }
    }

    @Test func cacheIDsIncreaseAndAreNeverReused() throws {
        try withCacheManager { manager in
            let desc = CacheDesc(numTensors: 1, shape: [1, 8], dataType: .int8)
            let a = try manager.allocateCache(desc)
            try manager.deallocateCache(a)
            let b = try manager.allocateCache(desc)
            #expect(a.cacheID == 1)
            #expect(b.cacheID == 2)
            try manager.deallocateCache(b)
        }
    }

    @Test func tensorsArePageAlignedViewsIntoThePool() throws {
        try withCacheManager(pageShift: 12) { manager in
            let cache = try manager.allocateCache(CacheDesc(numTensors: 3, shape: [2, 100], dataType: .float16))
            #expect(Set(cache.tensorAddresses).count == 3)
            #expect(cache.tensorAddresses.allSatisfy { $0 % 64 == 0 })
            #expect(manager.audit().pagesInUse == 3)
            writeInt32s([42], at: cache.tensorAddresses[2])
            #expect(readInt32s(at: cache.tensorAddresses[2], count: 1) == [42])
            try manager.deallocateCache(cache)
        }
    }

    @Test func blocksCachesHoldOneKeyPerModelAndReleaseAtOnce() throws {
        try withCacheManager { manager in
            let desc = CacheDesc(numTensors: 2, shape: [8, 16], dataType: .float16)
            let blocks = try manager.allocateBlocksCache(desc, key: BlocksCacheKey(clusterID: 1, modelID: 3))
            #expect(blocks.isBlocksCache)
            expectRefusal(.paramInvalid, mentioning: ["model 3", "already bound"], in: manager) {
                _ = try manager.allocateBlocksCache(desc, key: BlocksCacheKey(clusterID: 1, modelID: 3))
            }
            let placeholderCache = try manager.allocateCache(
                CacheDesc(numTensors: 1, shape: [1, 8], dataType: .int8), keys: [.placeholder(modelID: 3)])
            expectRefusal(.paramInvalid, mentioning: ["deallocateCache"], in: manager) {
                try manager.deallocateBlocksCache(placeholderCache)
            }
            expectRefusal(.paramInvalid, mentioning: ["deallocateBlocksCache"], in: manager) {
                try manager.deallocateCache(blocks)
            }
            try manager.deallocateBlocksCache(blocks)
            try manager.deallocateCache(placeholderCache)
            #expect(manager.audit().isClean)
            let again = try manager.allocateBlocksCache(desc, key: BlocksCacheKey(clusterID: 1, modelID: 3))
            try manager.deallocateBlocksCache(again)
        }
    }
}
