import DataDist
import Testing

/// The seed operation: remove_cache_key drops the key's reference; the memory goes when the id reference is
/// gone too; absent or already removed keys are no-ops.
@Suite struct RemoveCacheKeyTests {
    let desc = CacheDesc(numTensors: 2, shape: [2, 1024], dataType: .int32)

    @Test func removingTheKeyKeepsTheCacheWhileItsIDReferenceLives() throws {
        try withCacheManager { manager in
            let cache = try manager.allocateCache(desc, keys: [key(1), key(2)])
            try manager.removeCacheKey(key(1))
            try manager.removeCacheKey(key(2))
            #expect(manager.audit().boundKeys == 0)
            #expect(manager.audit().liveCaches == 1)
            #expect(manager.audit().pagesInUse == 2)
            try manager.deallocateCache(cache)
            #expect(manager.audit().isClean)
        }
    }

    @Test func theLastKeyOfADeallocatedCacheFreesItsMemory() throws {
        try withCacheManager { manager in
            let cache = try manager.allocateCache(desc, keys: [key(1), key(2)])
            try manager.deallocateCache(cache)
            try manager.removeCacheKey(key(2))
            #expect(manager.audit().pagesInUse == 2)
            try manager.removeCacheKey(key(1))
            #expect(manager.audit().isClean)
        }
    }

    @Test func removingTwiceOrAnUnknownKeyIsANoOp() throws {
        try withCacheManager { manager in
            let cache = try manager.allocateCache(desc, keys: [key(1)])
            try manager.removeCacheKey(key(1))
            let after = manager.audit()
            try manager.removeCacheKey(key(1))
            try manager.removeCacheKey(key(77, model: 9))
            #expect(manager.audit() == after)
            try manager.deallocateCache(cache)
        }
    }

    @Test func aRemovedKeyCanBeBoundAgain() throws {
        try withCacheManager { manager in
            let first = try manager.allocateCache(desc, keys: [key(1)])
            try manager.removeCacheKey(key(1))
            let second = try manager.allocateCache(desc, keys: [key(1)])
            try manager.removeCacheKey(key(1))
            try manager.deallocateCache(first)
            try manager.deallocateCache(second)
            #expect(manager.audit().isClean)
        }
    }

    @Test func prefixKeysAndRequestKeysAreSeparate() throws {
        try withCacheManager { manager in
            let prefix = CacheKey(promptClusterID: 1, reqID: .max, modelID: 0, prefixID: 1)
            let cache = try manager.allocateCache(desc, keys: [prefix, key(1)])
            #expect(manager.audit().boundKeys == 2)
            try manager.removeCacheKey(key(1))
            #expect(manager.audit().boundKeys == 1)
            try manager.removeCacheKey(prefix)
            try manager.deallocateCache(cache)
            #expect(manager.audit().isClean)
        }
    }

    @Test func theClusterIDOfAKeyDoesNotMatterForRemoval() throws {
        try withCacheManager { manager in
            let cache = try manager.allocateCache(desc, keys: [CacheKey(promptClusterID: 1, reqID: 5)])
            try manager.removeCacheKey(CacheKey(promptClusterID: 42, reqID: 5))
            #expect(manager.audit().boundKeys == 0)
            try manager.deallocateCache(cache)
        }
    }

    @Test func keysOfRegisteredCachesStayUntilUnregister() throws {
        try withCacheManager { manager in
            let memory = UnsafeMutableRawPointer.allocate(byteCount: 8192, alignment: 64)
            defer { memory.deallocate() }
            let registered = try manager.registerCache(
                CacheDesc(numTensors: 1, shape: [2, 1024], dataType: .int32),
                addresses: [UInt(bitPattern: memory)], keys: [key(8)])
            try manager.removeCacheKey(key(8))
            #expect(manager.audit().boundKeys == 1)
            try manager.unregisterCache(registered.cacheID)
            #expect(manager.audit().isClean)
        }
    }
}
