import DataDist
import Testing

/// `transferCacheAsync` end to end between two in-process instances (remote-cache-accessible): the decoder pushes,
/// every byte is checked in the prompt's memory, both audits are clean.
@Suite(.timeLimit(.minutes(1))) struct TransferAsyncTests {
    /// 4 layers (8 tensors) of one 32-byte slot.
    static let source = CacheDesc(numTensors: 8, shape: [1, 8], dataType: .int32)
    /// 3 layers (6 tensors) of two 32-byte slots.
    static let target = CacheDesc(numTensors: 6, shape: [2, 8], dataType: .int32)

    @Test(arguments: TestTransport.transfers) func keyConfigsMapLayersRelativelyFromRangesNotStartingAtZero(
        transport: TestTransport
    ) async throws {
        let pair = try LinkedPair(remoteAccessible: true, transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let target = try prompt.allocateCache(Self.target)
        fill(target, seed: 0, ints: 16)
        let source = try decoder.allocateCache(Self.source)
        fill(source, seed: 500, ints: 8)
        let sync = ScriptedSynchronizer()
        let task = try decoder.transferCacheAsync(
            source, synchronizer: sync,
            configs: [
                TransferWithCacheKeyConfig(
                    key: CacheKeyByIdAndIndex(clusterID: 1, cacheID: target.cacheID, batchIndex: 1),
                    sourceLayers: 1..<3, destinationLayers: 0..<2)
            ])
        #expect(await task.wait() == .success)
        #expect(task.results() == [.success])
        #expect(sync.layersAsked == [1, 2])
        for tensor in 0..<6 {  // slot 1 of layers 0, 1 ← source layers 1, 2; layer 2 and slot 0 untouched
            let slot1 =
                tensor < 4
                ? filled(seed: 500, tensor: tensor + 2, count: 8) : filled(seed: 0, tensor: tensor, from: 8, count: 8)
            #expect(holds(filled(seed: 0, tensor: tensor, count: 8), at: target.tensorAddresses[tensor]))
            #expect(holds(slot1, at: target.tensorAddresses[tensor] + 32), "tensor \(tensor)")
        }
        try decoder.deallocateCache(source)
        try prompt.deallocateCache(target)
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func rawAddressesContiguousAndIntoBlocks(transport: TestTransport) throws
    {
        let pair = try LinkedPair(remoteAccessible: true, transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let target = try prompt.allocateCache(Self.target)
        fill(target, seed: 0, ints: 16)
        let source = try decoder.allocateCache(CacheDesc(numTensors: 4, shape: [2, 8], dataType: .int32))
        fill(source, seed: 700, ints: 16)
        // Contiguous → contiguous: slot 1 of source layer 1 to the (pre-offset) slot 1 of target layer 2.
        let addresses = target.tensorAddresses[4...5].map { $0 + 32 }
        let task = try decoder.transferCacheAsync(
            source, synchronizer: ScriptedSynchronizer(),
            configs: [
                TransferConfig(
                    destinationClusterID: 1, destinationAddresses: Array(addresses), sourceLayers: 1..<2,
                    sourceBatchIndex: 1)
            ])
        #expect(task.synchronize() == .success)
        #expect(holds(filled(seed: 700, tensor: 2, from: 8, count: 8), at: addresses[0]))
        #expect(holds(filled(seed: 700, tensor: 3, from: 8, count: 8), at: addresses[1]))
        #expect(holds(filled(seed: 0, tensor: 4, count: 8), at: target.tensorAddresses[4]))
        // Contiguous → blocks: a 64-byte slot in 16-byte blocks, chunk i → block dst[i].
        let wide = try decoder.allocateCache(CacheDesc(numTensors: 2, shape: [1, 16], dataType: .int32))
        fill(wide, seed: 300, ints: 16)
        let blocks = try prompt.allocateBlocksCache(CacheDesc(numTensors: 2, shape: [8, 4], dataType: .int32))
        fill(blocks, seed: 0, ints: 32)
        let toBlocks = try decoder.transferCacheAsync(
            wide, synchronizer: ScriptedSynchronizer(),
            configs: [TransferConfig(destinationClusterID: 1, destinationAddresses: blocks.tensorAddresses)],
            destinationBlocks: [5, 2, 7, 0], destinationBlockBytes: 16)
        #expect(toBlocks.synchronize() == .success)
        for tensor in 0..<2 {
            let base = blocks.tensorAddresses[tensor]
            for (chunk, block) in [5, 2, 7, 0].enumerated() {
                #expect(
                    holds(filled(seed: 300, tensor: tensor, from: chunk * 4, count: 4), at: base + UInt(block * 16)))
            }
            for block in [1, 3, 4, 6] {
                #expect(holds(filled(seed: 0, tensor: tensor, from: block * 4, count: 4), at: base + UInt(block * 16)))
            }
        }
        for cache in [source, wide] { try decoder.deallocateCache(cache) }
        try prompt.deallocateCache(target)
        try prompt.deallocateBlocksCache(blocks)
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func blocksToBlocksByKeyAndByAddress(transport: TestTransport) throws {
        let pair = try LinkedPair(remoteAccessible: true, transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let target = try prompt.allocateBlocksCache(
            CacheDesc(numTensors: 2, shape: [8, 4], dataType: .int32), key: BlocksCacheKey(clusterID: 1, modelID: 2))
        fill(target, seed: 0, ints: 32)
        let source = try decoder.allocateBlocksCache(CacheDesc(numTensors: 4, shape: [4, 4], dataType: .int32))
        fill(source, seed: 900, ints: 16)
        let key = TransferWithCacheKeyConfig(
            key: BlocksCacheKey(clusterID: 1, modelID: 2), sourceLayers: 1..<2, destinationLayers: 0..<1)
        // E18: no block lists: every source block to the same block.
        let all = try decoder.transferCacheAsync(source, synchronizer: ScriptedSynchronizer(), configs: [key])
        #expect(all.synchronize() == .success)
        for tensor in 0..<2 {
            #expect(holds(filled(seed: 900, tensor: tensor + 2, count: 16), at: target.tensorAddresses[tensor]))
            #expect(
                holds(filled(seed: 0, tensor: tensor, from: 16, count: 16), at: target.tensorAddresses[tensor] + 64))
        }
        let listed = try decoder.transferCacheAsync(
            source, synchronizer: ScriptedSynchronizer(), configs: [key], sourceBlocks: [3, 0],
            destinationBlocks: [7, 5])
        #expect(listed.synchronize() == .success)
        // By address: source layer 0, blocks 1 → 6.
        let raw = try decoder.transferCacheAsync(
            source, synchronizer: ScriptedSynchronizer(),
            configs: [
                TransferConfig(
                    destinationClusterID: 1, destinationAddresses: target.tensorAddresses, sourceLayers: 0..<1)
            ],
            sourceBlocks: [1], destinationBlocks: [6])
        #expect(raw.synchronize() == .success)
        for tensor in 0..<2 {
            let base = target.tensorAddresses[tensor]
            #expect(holds(filled(seed: 900, tensor: tensor + 2, from: 12, count: 4), at: base + 7 * 16))
            #expect(holds(filled(seed: 900, tensor: tensor + 2, from: 0, count: 4), at: base + 5 * 16))
            #expect(holds(filled(seed: 900, tensor: tensor, from: 4, count: 4), at: base + 6 * 16))
            #expect(holds(filled(seed: 0, tensor: tensor, from: 16, count: 4), at: base + 4 * 16))
        }
        try decoder.deallocateBlocksCache(source)
        try prompt.deallocateBlocksCache(target)
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func twoConfigsToOneClusterShareTheirResult(transport: TestTransport)
        throws
    {
        let pair = try LinkedPair(remoteAccessible: true, transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let target = try prompt.allocateCache(Self.target)
        let source = try decoder.allocateCache(Self.source)
        fill(source, seed: 100, ints: 8)
        func slot(_ index: UInt32, of id: Int64) -> CacheKeyByIdAndIndex {
            CacheKeyByIdAndIndex(clusterID: 1, cacheID: id, batchIndex: index)
        }
        let good = try decoder.transferCacheAsync(
            source, synchronizer: ScriptedSynchronizer(),
            configs: [
                TransferWithCacheKeyConfig(
                    key: slot(0, of: target.cacheID), sourceLayers: 0..<1, destinationLayers: 2..<3),
                TransferWithCacheKeyConfig(
                    key: slot(1, of: target.cacheID), sourceLayers: 2..<4, destinationLayers: 0..<2),
            ])
        #expect(good.results() == [.success, .success])
        #expect(holds(filled(seed: 100, tensor: 0, count: 8), at: target.tensorAddresses[4]))
        #expect(holds(filled(seed: 100, tensor: 7, count: 8), at: target.tensorAddresses[3] + 32))
        // The second config fails (no cache 999 there): the first, already complete, shares its cluster's result.
        let shared = try decoder.transferCacheAsync(
            source, synchronizer: ScriptedSynchronizer(),
            configs: [
                TransferWithCacheKeyConfig(
                    key: slot(0, of: target.cacheID), sourceLayers: 0..<1, destinationLayers: 0..<1),
                TransferWithCacheKeyConfig(key: slot(0, of: 999), sourceLayers: 1..<2, destinationLayers: 0..<1),
            ])
        #expect(shared.results() == [.kvCacheNotExist, .kvCacheNotExist])
        #expect(shared.synchronize() == .kvCacheNotExist)
        try decoder.deallocateCache(source)
        try prompt.deallocateCache(target)
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func aRefusedLayerFailsItsConfigsAndEndsTheTask(transport: TestTransport)
        async throws
    {
        let pair = try LinkedPair(remoteAccessible: true, transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let (third, thirdInfo) = try linkedExtraPrompt(3, to: pair, transport: transport)
        let target = try prompt.allocateCache(Self.target)
        fill(target, seed: 0, ints: 16)
        let other = try third.cacheManager.allocateCache(Self.target)
        fill(other, seed: 0, ints: 16)
        let source = try decoder.allocateCache(Self.source)
        fill(source, seed: 400, ints: 8)
        let configs = [
            TransferWithCacheKeyConfig(
                key: CacheKeyByIdAndIndex(clusterID: 1, cacheID: target.cacheID), sourceLayers: 0..<2,
                destinationLayers: 0..<2),
            TransferWithCacheKeyConfig(
                key: CacheKeyByIdAndIndex(clusterID: 3, cacheID: other.cacheID), sourceLayers: 2..<3,
                destinationLayers: 0..<1),
        ]
        // E20: false at layer 0: the config covering it gets PARAM_INVALID; the other never sent its last layer.
        let first = ScriptedSynchronizer { _ in false }
        let refused = try decoder.transferCacheAsync(source, synchronizer: first, configs: configs)
        #expect(refused.synchronize() == .paramInvalid)
        #expect(refused.results() == [.paramInvalid, nil])
        #expect(first.layersAsked == [0])
        // False at layer 1: layer 0, released before, still arrives.
        let second = ScriptedSynchronizer { $0 != 1 }
        let late = try decoder.transferCacheAsync(source, synchronizer: second, configs: configs)
        #expect(await late.wait() == .paramInvalid)
        #expect(late.results() == [.paramInvalid, nil])
        #expect(second.layersAsked == [0, 1])
        #expect(holds(filled(seed: 400, tensor: 1, count: 8), at: target.tensorAddresses[1]))
        #expect(holds(filled(seed: 0, tensor: 2, count: 8), at: target.tensorAddresses[2]))
        #expect(holds(filled(seed: 0, tensor: 0, count: 8), at: other.tensorAddresses[0]))
        try decoder.deallocateCache(source)
        try prompt.deallocateCache(target)
        try third.cacheManager.deallocateCache(other)
        _ = pair.decoder.unlinkClusters([thirdInfo])
        #expect(try third.cacheManager.audit().orphans == 0)
        third.finalize()
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func aFailedTransferEndsTheTaskAndIsRecordedForItsCluster(
        transport: TestTransport
    ) throws {
        let pair = try LinkedPair(remoteAccessible: true, transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let (third, thirdInfo) = try linkedExtraPrompt(3, to: pair, transport: transport)
        let target = try prompt.allocateCache(CacheDesc(numTensors: 4, shape: [2, 8], dataType: .int32))
        let other = try third.cacheManager.allocateCache(Self.target)
        fill(other, seed: 0, ints: 16)
        let source = try decoder.allocateCache(Self.source)
        fill(source, seed: 200, ints: 8)
        let slot = CacheKeyByIdAndIndex(clusterID: 1, cacheID: target.cacheID)
        let sync = ScriptedSynchronizer()
        // E21: destination layer 2 of a 2-layer remote cache.
        let task = try decoder.transferCacheAsync(
            source, synchronizer: sync,
            configs: [
                TransferWithCacheKeyConfig(key: slot, sourceLayers: 0..<1, destinationLayers: 2..<3),
                TransferWithCacheKeyConfig(
                    key: CacheKeyByIdAndIndex(clusterID: 3, cacheID: other.cacheID), sourceLayers: 0..<3,
                    destinationLayers: 0..<3),
            ])
        #expect(task.results() == [.paramInvalid, nil])
        #expect(holds(filled(seed: 0, tensor: 5, from: 0, count: 8), at: other.tensorAddresses[5]))
        // Raw addresses the peer holds no cache at, or that run past a tensor's end.
        for address in [UInt(64), target.tensorAddresses[3] + 40] {
            let raw = try decoder.transferCacheAsync(
                source, synchronizer: ScriptedSynchronizer(),
                configs: [
                    TransferConfig(
                        destinationClusterID: 1, destinationAddresses: [address, address], sourceLayers: 0..<1)
                ])
            #expect(raw.results() == [.paramInvalid], "address \(address)")
        }
        try decoder.deallocateCache(source)
        try prompt.deallocateCache(target)
        try third.cacheManager.deallocateCache(other)
        _ = pair.decoder.unlinkClusters([thirdInfo])
        third.finalize()
        try pair.finish()
    }
}
