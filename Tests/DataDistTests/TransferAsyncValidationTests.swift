import DataDist
import Testing

/// `transferCacheAsync`'s synchronous checks (spec §6.1 and E17, E19): every refusal throws `.paramInvalid` (or the
/// link's status) naming the argument and changes nothing.
@Suite(.timeLimit(.minutes(1))) struct TransferAsyncValidationTests {
    static let desc = CacheDesc(numTensors: 4, shape: [2, 16], dataType: .int32)

    @Test func everyBadArgumentIsRefusedBeforeAnythingStarts() throws {
        let pair = try LinkedPair(remoteAccessible: true)
        let decoder = try pair.decoder.cacheManager
        let source = try decoder.allocateCache(Self.desc)  // 2 layers, batch 2, 64-byte slots
        let blocks = try decoder.allocateBlocksCache(CacheDesc(numTensors: 2, shape: [4, 8], dataType: .int32))
        let host = try decoder.allocateCache(
            CacheDesc(numTensors: 2, shape: [1, 8], dataType: .int32, placement: .host))
        let odd = try decoder.allocateCache(CacheDesc(numTensors: 3, shape: [1, 8], dataType: .int32))
        let many = try decoder.allocateBlocksCache(CacheDesc(numTensors: 2, shape: [65_537, 2], dataType: .int32))
        let sync = ScriptedSynchronizer()
        let good = TransferConfig(destinationClusterID: 1, destinationAddresses: [1, 2, 3, 4])
        let key = CacheKeyByIdAndIndex(clusterID: 1, cacheID: 1)
        func raw(
            _ configs: [TransferConfig], _ cache: Cache? = nil, src: [Int]? = nil, dst: [Int]? = nil, bytes: Int? = nil
        )
            throws
        {
            _ = try decoder.transferCacheAsync(
                cache ?? source, synchronizer: sync, configs: configs, sourceBlocks: src, destinationBlocks: dst,
                destinationBlockBytes: bytes)
        }
        func keyed(_ configs: [TransferWithCacheKeyConfig], _ cache: Cache? = nil, src: [Int]? = nil, dst: [Int]? = nil)
            throws
        {
            _ = try decoder.transferCacheAsync(
                cache ?? source, synchronizer: sync, configs: configs, sourceBlocks: src, destinationBlocks: dst)
        }
        let cases: [(LLMStatusCode, [String], () throws -> Void)] = [
            (.paramInvalid, ["host"], { try raw([good], host) }),
            (.paramInvalid, ["3 tensors", "even"], { try raw([good], odd) }),  // E19
            (.paramInvalid, ["configs is empty"], { try raw([]) }),
            (
                .paramInvalid, ["configs[0].destinationAddresses", "3 addresses", "2 layers need 4"],
                {
                    try raw([TransferConfig(destinationClusterID: 1, destinationAddresses: [1, 2, 3])])
                }
            ),
            (
                .paramInvalid, ["configs[1].destinationAddresses", "4 addresses", "1 layers need 2"],
                {  // E19
                    try raw([
                        good,
                        TransferConfig(
                            destinationClusterID: 1, destinationAddresses: [1, 2, 3, 4], sourceLayers: 1..<2),
                    ])
                }
            ),
            (
                .paramInvalid, ["configs[0].sourceLayers", "0..<3", "2 layers"],
                {
                    try raw([
                        TransferConfig(
                            destinationClusterID: 1, destinationAddresses: [1, 2, 3, 4, 5, 6], sourceLayers: 0..<3)
                    ])
                }
            ),
            (
                .paramInvalid, ["configs[0].sourceLayers", "1..<1"],
                {
                    try raw([TransferConfig(destinationClusterID: 1, destinationAddresses: [], sourceLayers: 1..<1)])
                }
            ),
            (
                .paramInvalid, ["configs[0].sourceLayers", "-1..<1"],
                {
                    try raw([
                        TransferConfig(
                            destinationClusterID: 1, destinationAddresses: [1, 2, 3, 4], sourceLayers: -1..<1)
                    ])
                }
            ),
            (
                .paramInvalid, ["configs[0].sourceBatchIndex 2", "0..<2"],
                {
                    try raw([
                        TransferConfig(
                            destinationClusterID: 1, destinationAddresses: [1, 2, 3, 4], sourceBatchIndex: 2)
                    ])
                }
            ),
            (
                .paramInvalid, ["configs[0].sourceBatchIndex -1"],
                {
                    try raw([
                        TransferConfig(
                            destinationClusterID: 1, destinationAddresses: [1, 2, 3, 4], sourceBatchIndex: -1)
                    ])
                }
            ),
            (
                .notYetLink, ["cluster 7", "not linked"],
                {
                    try raw([TransferConfig(destinationClusterID: 7, destinationAddresses: [1, 2, 3, 4])])
                }
            ),
            (
                .paramInvalid, ["cluster 2 is this instance"],
                {
                    try raw([TransferConfig(destinationClusterID: 2, destinationAddresses: [1, 2, 3, 4])])
                }
            ),
            // Block lists (spec §6.1).
            (.paramInvalid, ["sourceBlocks need destinationBlocks"], { try raw([good], blocks, src: [0]) }),
            (.paramInvalid, ["destinationBlocks need sourceBlocks"], { try raw([good], blocks, dst: [0]) }),
            (
                .paramInvalid, ["2 sourceBlocks and 1 destinationBlocks"],
                { try raw([good], blocks, src: [0, 1], dst: [0]) }
            ),
            (.paramInvalid, ["sourceBlocks holds 4", "0..<4"], { try raw([good], blocks, src: [4], dst: [0]) }),
            (
                .paramInvalid, ["destinationBlockBytes 8", "blocks cache"],
                {
                    try raw([good], blocks, src: [0], dst: [0], bytes: 8)
                }
            ),
            (.paramInvalid, ["sourceBlocks given", "not a blocks cache"], { try raw([good], src: [0], dst: [0]) }),
            (.paramInvalid, ["need destinationBlockBytes"], { try raw([good], dst: [0, 1]) }),
            (
                .paramInvalid, ["destinationBlockBytes 16 given without destinationBlocks"],
                { try raw([good], bytes: 16) }
            ),
            (.paramInvalid, ["destinationBlockBytes 128", "1...64"], { try raw([good], dst: [0], bytes: 128) }),
            (.paramInvalid, ["destinationBlockBytes -4"], { try raw([good], dst: [0], bytes: -4) }),
            (.paramInvalid, ["1 destinationBlocks", "needs 4"], { try raw([good], dst: [0], bytes: 16) }),
            (.paramInvalid, ["destinationBlocks holds -1"], { try raw([good], dst: [0, 1, 2, -1], bytes: 16) }),
            (
                .paramInvalid, ["configs[0].sourceBatchIndex is 1", "blocks source"],
                {
                    try raw(
                        [TransferConfig(destinationClusterID: 1, destinationAddresses: [1, 2], sourceBatchIndex: 1)],
                        blocks)
                }
            ),
            (
                .paramInvalid, ["65537 blocks per layer", "at most 65536"],
                {
                    try raw([TransferConfig(destinationClusterID: 1, destinationAddresses: [1, 2])], many)
                }
            ),
            // Key configs.
            (
                .paramInvalid, ["sourceLayers 0..<2 and destinationLayers 0..<1 differ"],
                {
                    try keyed([TransferWithCacheKeyConfig(key: key, sourceLayers: 0..<2, destinationLayers: 0..<1)])
                }
            ),
            (
                .paramInvalid, ["configs[0].destinationLayers", "-1..<1"],
                {
                    try keyed([TransferWithCacheKeyConfig(key: key, sourceLayers: 0..<2, destinationLayers: -1..<1)])
                }
            ),
            (
                .paramInvalid, ["configs[0].sourceLayers", "2..<3", "2 layers"],
                {
                    try keyed([TransferWithCacheKeyConfig(key: key, sourceLayers: 2..<3, destinationLayers: 0..<1)])
                }
            ),
            (
                .paramInvalid, ["blocks → contiguous"],
                {
                    try keyed(
                        [TransferWithCacheKeyConfig(key: key, sourceLayers: 0..<1, destinationLayers: 0..<1)], blocks)
                }
            ),
            (
                .paramInvalid, ["contiguous source", "BlocksCacheKey"],
                {
                    try keyed([
                        TransferWithCacheKeyConfig(
                            key: BlocksCacheKey(clusterID: 1), sourceLayers: 0..<1, destinationLayers: 0..<1)
                    ])
                }
            ),
            (
                .paramInvalid, ["destinationBlocks need a BlocksCacheKey"],
                {
                    try keyed(
                        [TransferWithCacheKeyConfig(key: key, sourceLayers: 0..<1, destinationLayers: 0..<1)], dst: [0])
                }
            ),
            (
                .notYetLink, ["cluster 9"],
                {
                    try keyed([
                        TransferWithCacheKeyConfig(
                            key: CacheKeyByIdAndIndex(clusterID: 9, cacheID: 1), sourceLayers: 0..<1,
                            destinationLayers: 0..<1)
                    ])
                }
            ),
        ]
        for (status, words, call) in cases {
            expectRefusal(status, mentioning: words, in: decoder, call)
        }
        #expect(sync.layersAsked.isEmpty)
        for cache in [source, host, odd] { try decoder.deallocateCache(cache) }
        try decoder.deallocateBlocksCache(blocks)
        try decoder.deallocateBlocksCache(many)
        try pair.finish()
    }

    @Test func needsRemoteCacheAccessACacheOfThisInstanceAndAnOpenEngine() throws {
        let pair = try LinkedPair()
        let decoder = try pair.decoder.cacheManager
        let source = try decoder.allocateCache(Self.desc)
        let config = TransferConfig(destinationClusterID: 1, destinationAddresses: [1, 2, 3, 4])
        expectRefusal(.paramInvalid, mentioning: ["enableRemoteCacheAccessible"], in: decoder) {
            _ = try decoder.transferCacheAsync(source, synchronizer: ScriptedSynchronizer(), configs: [config])
        }
        let foreign = try pair.prompt.cacheManager.allocateCache(Self.desc)
        expectRefusal(.paramInvalid, mentioning: ["source"], in: decoder) {
            _ = try decoder.transferCacheAsync(foreign, synchronizer: ScriptedSynchronizer(), configs: [config])
        }
        try pair.prompt.cacheManager.deallocateCache(foreign)
        try decoder.deallocateCache(source)
        try pair.finish()
        // Finalized: the manager refuses (its caches are from before finalize).
        #expect(throws: LLMError.self) {
            _ = try decoder.transferCacheAsync(source, synchronizer: ScriptedSynchronizer(), configs: [config])
        }
    }
}
