import DataDist
import Testing

/// A `Cache` acts only on the instance, and the initialisation of it, that issued it: another instance's cache
/// with the same id, or one from before `finalize` + `initialize`, is refused and changes nothing.
@Suite struct CacheIssuerTests {
    /// The same caches, in the same order (so with the same ids), in any instance.
    struct Handles {
        let contiguous: Cache  // id 1
        let blocks: Cache  // id 2
        let hostBlocks: Cache  // id 3

        init(_ manager: CacheManager) throws {
            contiguous = try manager.allocateCache(CacheDesc(numTensors: 2, shape: [2, 16], dataType: .int32))
            blocks = try manager.allocateBlocksCache(CacheDesc(numTensors: 2, shape: [4, 16], dataType: .int32))
            hostBlocks = try manager.allocateBlocksCache(
                CacheDesc(numTensors: 2, shape: [4, 16], dataType: .int32, placement: .host))
        }

        func release(from manager: CacheManager) throws {
            try manager.deallocateCache(contiguous)
            try manager.deallocateBlocksCache(blocks)
            try manager.deallocateBlocksCache(hostBlocks)
        }
    }

    /// Every operation that takes a `Cache`, given one that `manager` did not issue (`foreign`) where the
    /// argument `argument` goes; `own` are `manager`'s caches with the same ids.
    enum Use: String, CaseIterable, Sendable {
        case deallocateCache, deallocateBlocksCache, copyCacheDst, copyCacheSrc, copyBlocks, swapBlocksSrc
        case swapBlocksDst, pullCacheByKey, pullCacheByIDAndIndex, pullCaches, pullBlocks, pushCache, pushBlocks

        /// The foreign cache's id and the argument the message names.
        var names: (id: Int64, argument: String) {
            switch self {
            case .copyCacheDst: (1, "dst")
            case .copyCacheSrc: (1, "src")
            case .swapBlocksSrc: (2, "src")
            case .swapBlocksDst: (2, "dst")
            case .pullCaches: (1, "pulls[1].cache")
            case .deallocateBlocksCache, .copyBlocks, .pullBlocks, .pushBlocks: (2, "cache")
            case .deallocateCache, .pullCacheByKey, .pullCacheByIDAndIndex, .pushCache: (1, "cache")
            }
        }

        func run(_ manager: CacheManager, foreign: Handles, own: Handles) throws {
            let peer: UInt64 = 9
            switch self {
            case .deallocateCache: try manager.deallocateCache(foreign.contiguous)
            case .deallocateBlocksCache: try manager.deallocateBlocksCache(foreign.blocks)
            case .copyCacheDst: try manager.copyCache(dst: foreign.contiguous, src: own.contiguous)
            case .copyCacheSrc: try manager.copyCache(dst: own.contiguous, src: foreign.contiguous)
            case .copyBlocks: try manager.copyBlocks(foreign.blocks, [0: [1]])
            case .swapBlocksSrc: try manager.swapBlocks(src: foreign.blocks, dst: own.hostBlocks, [0: 0])
            case .swapBlocksDst: try manager.swapBlocks(src: own.hostBlocks, dst: foreign.blocks, [0: 0])
            case .pullCacheByKey:
                try manager.pullCache(CacheKey(promptClusterID: peer, reqID: 1), into: foreign.contiguous)
            case .pullCacheByIDAndIndex:
                try manager.pullCache(CacheKeyByIdAndIndex(clusterID: peer, cacheID: 1), into: foreign.contiguous)
            case .pullCaches:
                try manager.pullCaches([
                    CachePull(CacheKey(promptClusterID: peer, reqID: 1), into: own.contiguous),
                    CachePull(CacheKey(promptClusterID: peer, reqID: 2), into: foreign.contiguous, batchIndex: 1),
                ])
            case .pullBlocks:
                try manager.pullBlocks(
                    BlocksCacheKey(clusterID: peer), into: foreign.blocks, srcBlocks: [0], dstBlocks: [0])
            case .pushCache:
                try manager.pushCache(to: CacheKeyByIdAndIndex(clusterID: peer, cacheID: 1), from: foreign.contiguous)
            case .pushBlocks:
                try manager.pushBlocks(
                    to: BlocksCacheKey(clusterID: peer), from: foreign.blocks, srcBlocks: [0], dstBlocks: [0])
            }
        }
    }

    @Test(arguments: Use.allCases)
    func aCacheOfAnotherInstanceIsRefused(use: Use) throws {
        let other = try makeInstance(clusterID: 2, hostPool: 1 << 20)
        defer { other.finalize() }
        let foreign = try Handles(other.cacheManager)
        try withCacheManager(hostPool: 1 << 20) { manager in
            let own = try Handles(manager)
            let (id, argument) = use.names
            expectRefusal(
                .paramInvalid, mentioning: ["\(argument): cache \(id)", "another LLMDataDist instance"], in: manager
            ) {
                try use.run(manager, foreign: foreign, own: own)
            }
            #expect(foreign.contiguous != own.contiguous && foreign.blocks != own.blocks)
            try own.release(from: manager)
            #expect(manager.audit().isClean)
        }
        try foreign.release(from: other.cacheManager)
        #expect(try other.cacheManager.audit().isClean)
    }

    @Test(arguments: Use.allCases)
    func aCacheFromBeforeFinalizeAndInitializeIsRefused(use: Use) throws {
        var config = LLMConfig()
        config.memoryPool = MemoryPoolConfig(size: 1 << 20)
        config.hostMemoryPool = MemoryPoolConfig(size: 1 << 20)
        let instance = LLMDataDist(role: .prompt, clusterID: 1)
        try instance.initialize(config, environment: emulatorEnvironment())
        let stale = try Handles(instance.cacheManager)
        instance.finalize()
        try instance.initialize(config, environment: emulatorEnvironment())
        defer { instance.finalize() }
        let manager = try instance.cacheManager
        let own = try Handles(manager)
        let (id, argument) = use.names
        expectRefusal(
            .paramInvalid, mentioning: ["\(argument): cache \(id)", "before this instance was last initialized"],
            in: manager
        ) {
            try use.run(manager, foreign: stale, own: own)
        }
        #expect(stale.contiguous != own.contiguous && stale.blocks != own.blocks)
        try own.release(from: manager)
        #expect(manager.audit().isClean)
    }

    /// A `Cache` built with the public initialiser carries no issuer: it names a cache of whichever instance it
    /// is given to, by id, as before.
    @Test func aHandBuiltCacheNamesTheCacheWithItsID() throws {
        try withCacheManager { manager in
            let issued = try manager.allocateCache(CacheDesc(numTensors: 2, shape: [2, 16], dataType: .int32))
            let handBuilt = Cache(
                cacheID: issued.cacheID, desc: issued.desc, tensorAddresses: issued.tensorAddresses,
                isBlocksCache: false)
            #expect(handBuilt != issued, "an issued cache equals only handles of the same issuer")
            #expect(
                handBuilt
                    == Cache(
                        cacheID: 1, desc: issued.desc, tensorAddresses: issued.tensorAddresses,
                        isBlocksCache: false))
            writeInt32s(ascending(from: 5, count: 16), at: issued.tensorAddresses[0])
            try manager.copyCache(dst: handBuilt, src: issued, dstBatchIndex: 1)
            #expect(readInt32s(at: issued.tensorAddresses[0] + 64, count: 16) == ascending(from: 5, count: 16))
            try manager.deallocateCache(handBuilt)
            #expect(manager.audit().isClean)
        }
    }
}
