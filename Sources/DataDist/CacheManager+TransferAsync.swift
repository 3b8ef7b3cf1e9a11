import LinkLayer

/// Layer-wise asynchronous pushes (spec §6.1 `transfer_cache_async`).
extension CacheManager {
    /// Pushes layers of `source` to each config's destination as `synchronizer` releases them, in the background;
    /// the returned task reports the outcome per config. Block lists: `sourceBlocks[i]` → `destinationBlocks[i]`
    /// for a blocks source; for a contiguous source, `destinationBlocks` with `destinationBlockBytes` cut each
    /// slot into chunks, chunk i → block `destinationBlocks[i]`. Needs `enableRemoteCacheAccessible` on both
    /// sides (pushes write the peer's memory); every check that needs no peer is made here and throws.
    public func transferCacheAsync(
        _ source: Cache, synchronizer: some LayerSynchronizer, configs: [TransferConfig], sourceBlocks: [Int]? = nil,
        destinationBlocks: [Int]? = nil, destinationBlockBytes: Int? = nil
    ) throws(LLMError) -> CacheTask {
        try startTransfer(
            source, synchronizer: synchronizer, count: configs.count,
            blocks: (sourceBlocks, destinationBlocks, destinationBlockBytes)
        ) { view, layers, index throws(LLMError) in
            let config = configs[index]
            let name = "transferCacheAsync configs[\(index)]"
            let range = try Self.checkedLayers(config.sourceLayers ?? 0..<layers, of: layers, "\(name).sourceLayers")
            guard config.destinationAddresses.count == 2 * range.count else {
                throw .paramInvalid(
                    "\(name).destinationAddresses has \(config.destinationAddresses.count) addresses; \(range.count) layers need \(2 * range.count)"
                )
            }
            return LayerTransfer(
                cluster: config.destinationClusterID, sourceLayers: range,
                destination: .addresses(config.destinationAddresses), sourceBatchIndex: config.sourceBatchIndex)
        }
    }

    /// `transferCacheAsync` to remote caches named by key: a slot (`CacheKeyByIdAndIndex`, contiguous sources)
    /// or a model's blocks cache (`BlocksCacheKey`, blocks sources; no block lists: every block to the same index).
    public func transferCacheAsync(
        _ source: Cache, synchronizer: some LayerSynchronizer, configs: [TransferWithCacheKeyConfig],
        sourceBlocks: [Int]? = nil, destinationBlocks: [Int]? = nil
    ) throws(LLMError) -> CacheTask {
        if !source.isBlocksCache, destinationBlocks?.isEmpty == false {
            throw .paramInvalid(
                "transferCacheAsync destinationBlocks need a BlocksCacheKey destination and a blocks source; cache \(source.cacheID) is contiguous"
            )
        }
        return try startTransfer(
            source, synchronizer: synchronizer, count: configs.count, blocks: (sourceBlocks, destinationBlocks, nil)
        ) { view, layers, index throws(LLMError) in
            let config = configs[index]
            let name = "transferCacheAsync configs[\(index)]"
            let range = try Self.checkedLayers(config.sourceLayers, of: layers, "\(name).sourceLayers")
            let first = try Self.checkedLayers(config.destinationLayers, of: nil, "\(name).destinationLayers")
                .lowerBound
            guard config.destinationLayers.count == range.count else {
                throw .paramInvalid(
                    "\(name): sourceLayers \(range) and destinationLayers \(config.destinationLayers) differ in length")
            }
            let destination: LayerTransfer.Destination
            switch config.destination {
            case .slot(let key):
                guard !view.isBlocks else {
                    throw .paramInvalid(
                        "\(name): blocks → contiguous is not supported (source \(view.id) is a blocks cache, the key a slot)"
                    )
                }
                destination = .slot(key, firstLayer: first)
            case .blocks(let key):
                guard view.isBlocks else {
                    throw .paramInvalid(
                        "\(name): contiguous source \(view.id) → BlocksCacheKey is not supported here; use TransferConfig with destinationBlockBytes"
                    )
                }
                destination = .blocks(key, firstLayer: first)
            }
            return LayerTransfer(
                cluster: config.destinationClusterID, sourceLayers: range, destination: destination,
                sourceBatchIndex: config.sourceBatchIndex)
        }
    }

    /// The checks both overloads share, then the task. `makeConfig(view, layers, i)` checks config `i`.
    private func startTransfer(
        _ source: Cache, synchronizer: some LayerSynchronizer, count: Int,
        blocks: (source: [Int]?, destination: [Int]?, bytes: Int?),
        _ makeConfig: (CacheView, Int, Int) throws(LLMError) -> LayerTransfer
    ) throws(LLMError) -> CacheTask {
        let operation = "transferCacheAsync"
        try resources.gate(source.isBlocksCache ? .pushBlocks : .pushCache)
        try resources.issuer.admit(source, "source", in: operation)
        guard resources.config.enableRemoteCacheAccessible else {
            throw .paramInvalid("\(operation) needs LLMConfig.enableRemoteCacheAccessible on both clusters")
        }
        guard source.desc.placement == .device else {
            throw .paramInvalid(
                "\(operation) source cache \(source.cacheID) is on the host; pushes come from device caches")
        }
        guard source.desc.numTensors % 2 == 0 else {
            throw .paramInvalid(
                "\(operation) source cache \(source.cacheID) has \(source.desc.numTensors) tensors; layers are 2 tensors (K, V), so it must be even"
            )
        }
        guard count > 0 else { throw .paramInvalid("\(operation) configs is empty") }
        let pin = try store.hold(source.cacheID, operation: operation)
        do throws(LLMError) {
            let view = pin.view
            let mapping = try Self.checkedBlocks(blocks, of: view)
            var configs: [LayerTransfer] = []
            for index in 0..<count {
                let config = try makeConfig(view, view.numTensors / 2, index)
                try checkTarget(config, index: index, of: view, blocks: mapping)
                configs.append(config)
            }
            let run = AsyncTransferRun(
                configs: configs, sender: LayerSender(requester: requester, blocks: mapping), source: pin, store: store,
                workers: asyncTransfers.workers, deadlines: asyncTransfers.deadlines, synchronizer: synchronizer
            ) { [asyncTransfers] in asyncTransfers.finished($0) }
            guard asyncTransfers.start(run) else {
                throw LLMError(.failed, "\(operation): the LLMDataDist of cluster \(resources.clusterID) is finalizing")
            }
            return CacheTask(clusters: configs.map(\.cluster), outcome: run.outcome)
        } catch {
            store.release(pin)
            throw error
        }
    }

    /// A config's batch index and destination cluster.
    private func checkTarget(_ config: LayerTransfer, index: Int, of view: CacheView, blocks: BlockMapping)
        throws(LLMError)
    {
        let name = "transferCacheAsync configs[\(index)]"
        if view.isBlocks {
            guard config.sourceBatchIndex == 0 else {
                throw .paramInvalid(
                    "\(name).sourceBatchIndex is \(config.sourceBatchIndex); a blocks source takes 0 (blocks are named by the block lists)"
                )
            }
        } else if !(0..<view.slots).contains(config.sourceBatchIndex) {
            throw .paramInvalid(
                "\(name).sourceBatchIndex \(config.sourceBatchIndex) is outside the batch 0..<\(view.slots) of cache \(view.id)"
            )
        }
        try requester.requireRemoteCluster(config.cluster, operation: name)
        _ = try links.link(to: config.cluster, for: name)
    }

    /// `range` if it is a valid layer range: non-empty, from 0 up, within `layers` (nil: the remote side checks).
    static func checkedLayers(_ range: Range<Int>, of layers: Int?, _ name: String) throws(LLMError) -> Range<Int> {
        guard !range.isEmpty, range.lowerBound >= 0, range.upperBound <= Int(UInt32.max) / 2 else {
            throw .paramInvalid("\(name) \(range) must be a non-empty range starting at >= 0")
        }
        if let layers, range.upperBound > layers {
            throw .paramInvalid("\(name) \(range) exceeds the \(layers) layers of the source")
        }
        return range
    }

    /// Refuses destination blocks whose end (in bytes, from a raw address) does not fit in an `Int`.
    static func checkSpans(_ blocks: [Int], blockBytes: Int) throws(LLMError) {
        if let bad = blocks.first(where: { ($0 + 1).multipliedReportingOverflow(by: blockBytes).overflow }) {
            throw .paramInvalid(
                "transferCacheAsync destinationBlocks holds \(bad): block \(bad) of \(blockBytes) bytes ends past Int.max"
            )
        }
    }

    /// The block lists checked against the source (spec §6.1: blocks need destination blocks of the same count;
    /// a contiguous source with destination blocks needs their size; no block size without blocks).
    static func checkedBlocks(_ blocks: (source: [Int]?, destination: [Int]?, bytes: Int?), of view: CacheView)
        throws(LLMError) -> BlockMapping
    {
        let name = "transferCacheAsync"
        let source = blocks.source.flatMap { $0.isEmpty ? nil : $0 }
        let destination = blocks.destination.flatMap { $0.isEmpty ? nil : $0 }
        let bytes = blocks.bytes.flatMap { $0 == 0 ? nil : $0 }
        if let bad = destination?.first(where: { !(0...Int(UInt32.max)).contains($0) }) {
            throw .paramInvalid("\(name) destinationBlocks holds \(bad), outside 0...\(UInt32.max)")
        }
        if view.isBlocks {
            guard bytes == nil else {
                throw .paramInvalid(
                    "\(name) destinationBlockBytes \(bytes!) is only for a contiguous source; cache \(view.id) is a blocks cache"
                )
            }
            guard (source == nil) == (destination == nil) else {
                throw .paramInvalid(
                    source == nil
                        ? "\(name) destinationBlocks need sourceBlocks for blocks source \(view.id)"
                        : "\(name) sourceBlocks need destinationBlocks: blocks → contiguous is not supported")
            }
            // One push names at most this many blocks (the link's limit).
            let named = source?.count ?? view.slots
            guard named <= ResolveRequest.maxBlocks else {
                throw .paramInvalid(
                    "\(name) would push \(named) blocks per layer; at most \(ResolveRequest.maxBlocks) (pass sourceBlocks)"
                )
            }
            if let source, let destination {
                try Self.checkSpans(destination, blockBytes: view.stride)
                guard source.count == destination.count else {
                    throw .paramInvalid(
                        "\(name) got \(source.count) sourceBlocks and \(destination.count) destinationBlocks")
                }
                if let bad = source.first(where: { !(0..<view.slots).contains($0) }) {
                    throw .paramInvalid("\(name) sourceBlocks holds \(bad), outside the blocks 0..<\(view.slots)")
                }
            }
            return BlockMapping(source: source, destination: destination, destinationBlockBytes: nil)
        }
        guard source == nil else {
            throw .paramInvalid("\(name) sourceBlocks given, but source cache \(view.id) is not a blocks cache")
        }
        guard let destination else {
            guard bytes == nil else {
                throw .paramInvalid("\(name) destinationBlockBytes \(bytes!) given without destinationBlocks")
            }
            return BlockMapping(source: nil, destination: nil, destinationBlockBytes: nil)
        }
        guard let bytes else {
            throw .paramInvalid("\(name) destinationBlocks to a contiguous source need destinationBlockBytes")
        }
        guard bytes > 0, bytes <= view.stride else {
            throw .paramInvalid("\(name) destinationBlockBytes \(bytes) must be in 1...\(view.stride) (the slot size)")
        }
        let chunks = (view.stride + bytes - 1) / bytes
        guard destination.count >= chunks else {
            throw .paramInvalid(
                "\(name) got \(destination.count) destinationBlocks; a \(view.stride)-byte slot in \(bytes)-byte blocks needs \(chunks)"
            )
        }
        try Self.checkSpans(destination, blockBytes: bytes)
        return BlockMapping(source: nil, destination: destination, destinationBlockBytes: bytes)
    }
}
