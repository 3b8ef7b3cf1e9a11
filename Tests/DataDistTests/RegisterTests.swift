import DataDist
import Testing

/// Spec §15.3 C17–C21 and the 240-address cap.
@Suite struct RegisterTests {
    let desc = CacheDesc(numTensors: 1, shape: [4, 8], dataType: .float16)

    @Test func c17RegisteredCachesTakeIDsFromTheSharedCounter() throws {
        try withCacheManager { manager in
            let cache = try manager.registerCache(desc, addresses: [0x1000])
            let blocks = try manager.registerBlocksCache(
                desc, addresses: [0x1000], key: BlocksCacheKey(clusterID: 1, modelID: 100))
            #expect(cache.cacheID == 1)
            #expect(blocks.cacheID == 2)
            #expect(blocks.isBlocksCache)
            #expect(manager.audit().pagesInUse == 0, "registered memory is the caller's")
            try manager.unregisterCache(1)
            try manager.unregisterCache(2)
            #expect(manager.audit().isClean)
        }
    }

    @Test func c18AHostCacheMayBeRemoteAccessible() throws {
        try withCacheManager { manager in
            let cache = try manager.registerCache(
                CacheDesc(numTensors: 1, shape: [4, 8], dataType: .float16, placement: .host), addresses: [0x2000],
                remoteAccessible: true)
            #expect(cache.cacheID == 1)
            try manager.unregisterCache(cache.cacheID)
        }
    }

    @Test func c20AddressCountAndZeroAddresses() throws {
        try withCacheManager { manager in
            let two = CacheDesc(numTensors: 2, shape: [4, 8], dataType: .float16)
            expectRefusal(.paramInvalid, mentioning: ["1 addresses", "numTensors 2"], in: manager) {
                _ = try manager.registerCache(two, addresses: [1])
            }
            expectRefusal(.paramInvalid, mentioning: ["addresses[0] is 0"], in: manager) {
                _ = try manager.registerCache(two, addresses: [0, 1])
            }
            expectRefusal(.paramInvalid, mentioning: ["addresses"], in: manager) {
                _ = try manager.registerBlocksCache(two, addresses: [])
            }
        }
    }

    @Test func c21UnregisterKnownAndUnknownIDs() throws {
        try withCacheManager { manager in
            let cache = try manager.registerCache(desc, addresses: [0x1000])
            try manager.unregisterCache(cache.cacheID)
            try manager.unregisterCache(0)
            try manager.unregisterCache(12345)
            #expect(manager.audit().isClean)
        }
    }

    @Test func atMost240AddressesAreRegisteredInTotal() throws {
        try withCacheManager { manager in
            let wide = CacheDesc(numTensors: 120, shape: [1, 8], dataType: .int8)
            let addresses = (1...120).map { UInt($0) * 4096 }
            let first = try manager.registerCache(wide, addresses: addresses)
            let second = try manager.registerBlocksCache(wide, addresses: addresses)
            expectRefusal(.paramInvalid, mentioning: ["241", "240"], in: manager) {
                _ = try manager.registerCache(desc, addresses: [0x1000])
            }
            try manager.unregisterCache(first.cacheID)
            let third = try manager.registerCache(desc, addresses: [0x1000])
            for id in [second.cacheID, third.cacheID] { try manager.unregisterCache(id) }
        }
    }

    @Test func registeredKeysBindByPositionAndTheLastDuplicateWins() throws {
        try withCacheManager { manager in
            let cache = try manager.registerCache(desc, addresses: [0x1000], keys: [key(1), key(2), key(1)])
            #expect(manager.audit().boundKeys == 2)
            expectRefusal(.paramInvalid, mentioning: ["already bound"], in: manager) {
                _ = try manager.registerCache(desc, addresses: [0x3000], keys: [key(2)])
            }
            expectRefusal(.paramInvalid, mentioning: ["5 keys"], in: manager) {
                _ = try manager.registerCache(desc, addresses: [0x3000], keys: (10...14).map { key($0) })
            }
            try manager.unregisterCache(cache.cacheID)
            #expect(manager.audit().isClean)
        }
    }

    @Test func aRegisteredBlocksKeyReplacesTheEarlierBinding() throws {
        try withCacheManager { manager in
            let blocksKey = BlocksCacheKey(clusterID: 1, modelID: 4)
            let owned = try manager.allocateBlocksCache(
                CacheDesc(numTensors: 1, shape: [4, 8], dataType: .int8), key: blocksKey)
            let registered = try manager.registerBlocksCache(desc, addresses: [0x1000], key: blocksKey)
            #expect(manager.audit().boundKeys == 1)
            try manager.deallocateBlocksCache(owned)
            #expect(manager.audit().boundKeys == 1, "the key now belongs to the registered cache")
            try manager.unregisterCache(registered.cacheID)
            #expect(manager.audit().isClean)
        }
    }

    @Test func unregisterDropsAnAllocatedCacheAndItsKeysAtOnce() throws {
        try withCacheManager { manager in
            let cache = try manager.allocateCache(
                CacheDesc(numTensors: 1, shape: [2, 8], dataType: .int8), keys: [key(1)])
            try manager.unregisterCache(cache.cacheID)
            #expect(manager.audit().isClean)
        }
    }
}
