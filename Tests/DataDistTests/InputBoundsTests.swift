import DataDist
import Testing

/// Sizes and counts on public input at the edge of their types: refused with the spec's status and a message
/// naming the value, never a trap, and nothing changes.
@Suite struct InputBoundsTests {
    /// One tensor per shape, each within 64 KiB of `Int.max` bytes: shapes the reference accepts, too big for any pool.
    static let hugeShapes: [[Int64]] = [
        [.max], [.max - 1], [.max - 65_535], [1, .max], [Int64.max / 2, 2], [.max - 65_536],
    ]

    @Test(arguments: hugeShapes)
    func aTensorNearIntMaxBytesIsOutOfMemoryNotATrap(shape: [Int64]) throws {
        try withCacheManager(hostPool: 1 << 20) { manager in
            for placement in [Placement.device, .host] {
                let desc = CacheDesc(numTensors: 1, shape: shape, dataType: .int8, placement: placement)
                expectRefusal(.outOfMemory, mentioning: ["\(shape)"], in: manager) {
                    _ = try manager.allocateCache(desc)
                }
                expectRefusal(.outOfMemory, mentioning: ["\(shape)"], in: manager) {
                    _ = try manager.allocateCache(desc, keys: [key(7)])
                }
                expectRefusal(.outOfMemory, mentioning: ["\(shape)"], in: manager) {
                    _ = try manager.allocateBlocksCache(desc, key: BlocksCacheKey(clusterID: 1))
                }
            }
            #expect(manager.audit().isClean)
        }
    }

    @Test(arguments: [[Int64.max, 2], [Int64.max, Int64.max], [2, Int64.max / 2 + 1], [-1], [4, -9], [0, 3]])
    func aShapeWhoseBytesOverflowOrThatHasANonPositiveDimensionIsInvalid(shape: [Int64]) throws {
        try withCacheManager { manager in
            let desc = CacheDesc(numTensors: 2, shape: shape, dataType: .int8)
            expectRefusal(.paramInvalid, mentioning: ["\(shape)"], in: manager) { _ = try manager.allocateCache(desc) }
            expectRefusal(.paramInvalid, mentioning: ["\(shape)"], in: manager) {
                _ = try manager.allocateBlocksCache(desc)
            }
            expectRefusal(.paramInvalid, mentioning: ["\(shape)"], in: manager) {
                _ = try manager.registerCache(desc, addresses: [0x10_0000, 0x20_0000])
            }
        }
    }

    @Test(arguments: [Int(UInt32.max) + 1, Int.max, Int(UInt32.max) * 2])
    func numTensorsAboveUInt32MaxIsInvalidNotOutOfMemory(numTensors: Int) throws {
        try withCacheManager { manager in
            let desc = CacheDesc(numTensors: numTensors, shape: [1, 16], dataType: .int32)
            let allocations: [() throws -> Void] = [
                { _ = try manager.allocateCache(desc) }, { _ = try manager.allocateBlocksCache(desc) },
            ]
            for allocate in allocations {
                expectRefusal(.paramInvalid, mentioning: ["numTensors", "\(numTensors)"], in: manager, allocate)
            }
            #expect(manager.audit().isClean)
        }
    }

    /// Caller memory whose tensors together, or one of them from its address, would pass the end of the address
    /// space cannot exist: refused before any copy could compute past it.
    @Test func registeredMemoryBeyondTheAddressSpaceIsInvalid() throws {
        try withCacheManager { manager in
            let twoHuge = CacheDesc(numTensors: 2, shape: [Int64.max / 2 + 1], dataType: .int8)
            expectRefusal(.paramInvalid, mentioning: ["2 tensors", "\(Int.max / 2 + 1) bytes"], in: manager) {
                _ = try manager.registerCache(twoHuge, addresses: [0x10_0000, 0x20_0000])
            }
            expectRefusal(.paramInvalid, mentioning: ["2 tensors", "\(Int.max / 2 + 1) bytes"], in: manager) {
                _ = try manager.registerBlocksCache(twoHuge, addresses: [0x10_0000, 0x20_0000])
            }
            let page = CacheDesc(numTensors: 2, shape: [2, 4096], dataType: .int8)
            let nearEnd = UInt.max - 4095
            expectRefusal(.paramInvalid, mentioning: ["addresses[1]", "\(nearEnd)"], in: manager) {
                _ = try manager.registerCache(page, addresses: [0x10_0000, nearEnd])
            }
            expectRefusal(.paramInvalid, mentioning: ["addresses[0]", "\(nearEnd)"], in: manager) {
                _ = try manager.registerBlocksCache(page, addresses: [nearEnd, 0x10_0000])
            }
            #expect(manager.audit().isClean)
        }
    }

    /// Host memory handed to swapBlocks: the same bounds, whether the cache came from `createCPUCache` or the
    /// public initialiser.
    @Test func aCPUCacheWithTooFewAddressesOrMemoryPastTheEndIsInvalid() throws {
        try withCacheManager { manager in
            let hostDesc = CacheDesc(numTensors: 2, shape: [4, 16], dataType: .int32, placement: .host)
            let nearEnd = UInt.max - 100
            do throws(LLMError) {
                _ = try Cache.createCPUCache(hostDesc, addresses: [0x10_0000, nearEnd])
                Issue.record("createCPUCache accepted memory past the end of the address space")
            } catch {
                #expect(error.status == .paramInvalid && error.message.contains("addresses[1]"), "\(error)")
            }
            let npu = try manager.allocateBlocksCache(CacheDesc(numTensors: 2, shape: [4, 16], dataType: .int32))
            let handBuilt: [(Cache, String)] = [
                (Cache(cacheID: -1, desc: hostDesc, tensorAddresses: [0x10_0000], isBlocksCache: true), "1 addresses"),
                (Cache(cacheID: -1, desc: hostDesc, tensorAddresses: [], isBlocksCache: true), "0 addresses"),
                (
                    Cache(cacheID: -1, desc: hostDesc, tensorAddresses: [0x10_0000, 0], isBlocksCache: true),
                    "addresses[1]"
                ),
                (
                    Cache(cacheID: -1, desc: hostDesc, tensorAddresses: [0x10_0000, nearEnd], isBlocksCache: true),
                    "addresses[1]"
                ),
            ]
            for (cpu, mention) in handBuilt {
                expectRefusal(.paramInvalid, mentioning: [mention], in: manager) {
                    try manager.swapBlocks(src: cpu, dst: npu, [0: 0])
                }
                expectRefusal(.paramInvalid, mentioning: [mention], in: manager) {
                    try manager.swapBlocks(src: npu, dst: cpu, [0: 0])
                }
            }
            try manager.deallocateBlocksCache(npu)
        }
    }

    static let extremes = [Int.max, Int.max - 1, Int.min, -2]

    /// Batch indices, offsets, sizes, blocks and layers at the edge of `Int`, on every local and transfer call
    /// that takes them (refused before any link is needed).
    @Test(arguments: extremes)
    func extremeIndicesOffsetsSizesAndBlocksAreInvalid(value: Int) throws {
        try withCacheManager { manager in
            let cache = try manager.allocateCache(CacheDesc(numTensors: 2, shape: [2, 16], dataType: .int32))
            let blocks = try manager.allocateBlocksCache(CacheDesc(numTensors: 2, shape: [4, 16], dataType: .int32))
            let remote = CacheKey(promptClusterID: 9, reqID: 1)
            let calls: [() throws -> Void] = [
                { try manager.copyCache(dst: cache, src: cache, dstBatchIndex: value) },
                { try manager.copyCache(dst: cache, src: cache, srcBatchIndex: value) },
                { try manager.copyCache(dst: cache, src: cache, dstBatchIndex: 1, offset: value) },
                { try manager.copyCache(dst: cache, src: cache, dstBatchIndex: 1, size: value) },
                { try manager.copyCache(dst: cache, src: cache, dstBatchIndex: 1, offset: 8, size: value) },
                { try manager.copyBlocks(blocks, [value: [0]]) },
                { try manager.copyBlocks(blocks, [0: [value]]) },
                { try manager.pullCache(remote, into: cache, batchIndex: value) },
                { try manager.pullCache(remote, into: cache, size: value) },
                {
                    try manager.pullCache(
                        remote, into: cache,
                        layers: LayerRange(source: 0..<1, destination: 0..<1, tensorsPerLayer: value))
                },
                { try manager.pullCaches([CachePull(remote, into: cache, batchIndex: value)]) },
                {
                    try manager.pullBlocks(
                        BlocksCacheKey(clusterID: 9), into: blocks, srcBlocks: [value], dstBlocks: [0])
                },
                {
                    try manager.pullBlocks(
                        BlocksCacheKey(clusterID: 9), into: blocks, srcBlocks: [0], dstBlocks: [value])
                },
            ]
            for call in calls { expectRefusal(.paramInvalid, mentioning: ["\(value)"], in: manager, call) }
            if value > 0 {
                expectRefusal(.paramInvalid, mentioning: ["\(value)"], in: manager) {
                    try manager.pullCache(
                        remote, into: cache, layers: LayerRange(source: 0..<value, destination: 0..<value))
                }
            }
            try manager.deallocateCache(cache)
            try manager.deallocateBlocksCache(blocks)
        }
    }

    @Test(arguments: extremes)
    func extremePushIndicesAndBlocksAreInvalid(value: Int) throws {
        let remoteAccess: (inout LLMConfig) -> Void = { $0.enableRemoteCacheAccessible = true }
        try withCacheManager(configure: remoteAccess) { manager in
            let cache = try manager.allocateCache(CacheDesc(numTensors: 2, shape: [2, 16], dataType: .int32))
            let blocks = try manager.allocateBlocksCache(CacheDesc(numTensors: 2, shape: [4, 16], dataType: .int32))
            let slot = CacheKeyByIdAndIndex(clusterID: 9, cacheID: 1)
            let calls: [() throws -> Void] = [
                { try manager.pushCache(to: slot, from: cache, srcBatchIndex: value) },
                { try manager.pushCache(to: slot, from: cache, size: value) },
                {
                    try manager.pushBlocks(
                        to: BlocksCacheKey(clusterID: 9), from: blocks, srcBlocks: [value], dstBlocks: [0])
                },
                {
                    try manager.pushBlocks(
                        to: BlocksCacheKey(clusterID: 9), from: blocks, srcBlocks: [0], dstBlocks: [value])
                },
            ]
            for call in calls { expectRefusal(.paramInvalid, mentioning: ["\(value)"], in: manager, call) }
            try manager.deallocateCache(cache)
            try manager.deallocateBlocksCache(blocks)
        }
    }

    /// copyBlocks may name a destination block many times: a total beyond `Int.max` bytes is refused before
    /// any byte moves. (The registered memory is never touched.)
    @Test func copyBlocksWhoseTotalOverflowsIsInvalid() throws {
        try withCacheManager { manager in
            let desc = CacheDesc(numTensors: 1, shape: [2, 1 << 61], dataType: .int8, placement: .host)
            let blocks = try manager.registerBlocksCache(desc, addresses: [0x10_0000])
            expectRefusal(.paramInvalid, mentioning: ["copyBlocks", "4 copies"], in: manager) {
                try manager.copyBlocks(blocks, [0: [1, 1, 1, 1]])
            }
            try manager.unregisterCache(blocks.cacheID)
        }
    }

    /// Spec §6.1 push_cache: a remote batch index past the destination's batch is PARAM_INVALID (a pull's is
    /// KV_CACHE_NOT_EXIST, and so is a push to a cache that does not exist).
    @Test(.timeLimit(.minutes(1))) func aPushPastTheDestinationsBatchIsInvalid() throws {
        let pair = try LinkedPair(remoteAccessible: true)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let target = try prompt.allocateCache(CacheDesc(numTensors: 2, shape: [2, 8], dataType: .int32))
        let source = try decoder.allocateCache(CacheDesc(numTensors: 2, shape: [1, 8], dataType: .int32))
        for batchIndex in [UInt32(2), 3, .max] {
            let slot = CacheKeyByIdAndIndex(clusterID: 1, cacheID: target.cacheID, batchIndex: batchIndex)
            expectRefusal(.paramInvalid, mentioning: ["batch index \(batchIndex)", "2 slots"], in: decoder) {
                try decoder.pushCache(to: slot, from: source)
            }
            expectRefusal(.kvCacheNotExist, in: decoder) { try decoder.pullCache(slot, into: source) }
        }
        expectRefusal(.kvCacheNotExist, in: decoder) {
            try decoder.pushCache(to: CacheKeyByIdAndIndex(clusterID: 1, cacheID: 99), from: source)
        }
        #expect(prompt.audit().pinnedByPeers == 0)
        try decoder.deallocateCache(source)
        try prompt.deallocateCache(target)
        try pair.finish()
    }
}
