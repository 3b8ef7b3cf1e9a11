import LinkLayer
import Synchronization
import Testing
import ThreadSanitizerSupport

@testable import DataDist

/// The allocation fast path: memory of a released cache kept whole for the next cache of the same geometry.
@Suite struct SpareRecordsTests {
    let desc = CacheDesc(numTensors: 4, shape: [2, 8192], dataType: .int32)

    private func spares(_ manager: CacheManager) -> Int { manager.store.table.withLock { $0.spares.count } }

    @Test func theNextCacheOfTheSameGeometryTakesTheReleasedMemoryUnderANewID() throws {
        let instance = try makeInstance(devicePool: 1 << 20)
        defer { instance.finalize() }
        let manager = try instance.cacheManager
        let first = try manager.allocateCache(desc)
        try manager.deallocateCache(first)
        #expect(spares(manager) == 1)
        let audit = manager.audit()
        #expect(audit.isClean && audit.pagesInUse == 0 && audit.pagesFree == 16, "\(audit)")
        let pool = try #require(instance.metrics().pools.first)
        #expect(pool.pagesInUse == 0 && pool.pagesFree == 16 && pool.allocationFailures == 0)

        let second = try manager.allocateCache(desc)
        #expect(spares(manager) == 0)
        #expect(second.tensorAddresses == first.tensorAddresses)
        #expect(second.cacheID > first.cacheID)
        #expect(manager.audit().pagesInUse == 4)
        // The first cache's handle names its own id, not the cache now using its memory.
        try manager.deallocateCache(first)
        #expect(manager.audit().liveCaches == 1)
        try manager.deallocateCache(second)
        #expect(manager.audit().isClean)
    }

    @Test func anotherGeometryGetsPoolMemoryAndTheSparesGoBackWhenThePoolIsShort() throws {
        try withCacheManager(devicePool: 262_144) { manager in
            let full = try manager.allocateCache(CacheDesc(numTensors: 4, shape: [1, 16384], dataType: .int32))
            try manager.deallocateCache(full)
            #expect(spares(manager) == 1)
            // Every page of the pool is the spare's: this needs them back.
            let other = try manager.allocateCache(CacheDesc(numTensors: 1, shape: [1, 1], dataType: .int8))
            #expect(spares(manager) == 0)
            try manager.deallocateCache(other)
            let blocks = try manager.allocateBlocksCache(CacheDesc(numTensors: 1, shape: [4, 65536], dataType: .int8))
            #expect(spares(manager) == 0, "the pool was short again: the spare went back")
            try manager.deallocateBlocksCache(blocks)
            #expect(manager.audit().isClean && manager.audit().pagesFree == 4)
            // Refused only when the pool, spares returned, really is short; the refusal changes nothing.
            let spare = try manager.allocateCache(CacheDesc(numTensors: 2, shape: [1, 1], dataType: .int8))
            try manager.deallocateCache(spare)
            expectRefusal(.outOfMemory, mentioning: ["3 tensors"], in: manager) {
                _ = try manager.allocateCache(CacheDesc(numTensors: 3, shape: [1, 1 << 17], dataType: .int8))
            }
        }
    }

    @Test func atMostFourSparesAndTheOldestGoesBackToThePool() throws {
        try withCacheManager(devicePool: 1 << 20) { manager in
            let caches = try (1...5).map { pages in
                try manager.allocateCache(CacheDesc(numTensors: 1, shape: [1, Int64(pages) << 16], dataType: .int8))
            }
            for cache in caches { try manager.deallocateCache(cache) }
            #expect(spares(manager) == SpareRecords.capacity)
            #expect(manager.audit().isClean && manager.audit().pagesFree == 16)
            // The 1-page cache went first: its size comes from the pool again, the 5-page one from the spares.
            let small = try manager.allocateCache(CacheDesc(numTensors: 1, shape: [1, 1 << 16], dataType: .int8))
            #expect(spares(manager) == SpareRecords.capacity)
            let large = try manager.allocateCache(CacheDesc(numTensors: 1, shape: [1, 5 << 16], dataType: .int8))
            #expect(spares(manager) == SpareRecords.capacity - 1)
            #expect(large.tensorAddresses == caches[4].tensorAddresses)
            try manager.deallocateCache(small)
            try manager.deallocateCache(large)
        }
    }

    @Test func keyedAndRegisteredCachesLeaveSparesOnlyWhenNothingHoldsThem() throws {
        try withCacheManager(devicePool: 1 << 20) { manager in
            let keyed = try manager.allocateCache(desc, keys: [key(7)])
            try manager.deallocateCache(keyed)
            #expect(spares(manager) == 0, "the key still holds it")
            try manager.removeCacheKey(key(7))
            #expect(spares(manager) == 1)
            let registered = try manager.registerCache(desc, addresses: [0x1000, 0x2000, 0x3000, 0x4000])
            try manager.unregisterCache(registered.cacheID)
            #expect(spares(manager) == 1, "registered memory is the caller's")
        }
    }

    @Test func memoryAPeersGrantPinsIsNeverASpareNorHandedToAnotherCache() throws {
        let remote: (inout LLMConfig) -> Void = { $0.enableRemoteCacheAccessible = true }
        try withCacheManager(devicePool: 1 << 20, configure: remote) { manager in
            let policy = manager.links.policy
            let first = try manager.allocateCache(desc)
            let request = ResolveRequest(
                target: .slot(cacheID: first.cacheID, batchIndex: 0), write: false, tensors: 0..<4,
                bytesPerSlot: 32768, requesterKind: .device, requesterIsBlocks: false, blocks: [])
            let grant = try policy.resolve(request, link: 3).get()
            try manager.deallocateCache(first)
            #expect(spares(manager) == 0)
            let second = try manager.allocateCache(desc)
            #expect(Set(second.tensorAddresses).isDisjoint(with: first.tensorAddresses), "still the peer's to read")
            #expect(policy.release(ReleaseNotice(pinID: grant.pinID, succeeded: true), link: 3))
            #expect(spares(manager) == 0, "released by the pin's end, as before")
            try manager.deallocateCache(second)
            #expect(spares(manager) == 1 && manager.audit().isClean)
        }
    }
}
