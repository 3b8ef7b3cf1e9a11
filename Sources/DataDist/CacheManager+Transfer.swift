import DeviceRuntime

/// Pulls and pushes between linked clusters. The requester asks the owner to resolve and pin the cache (one round
/// trip: a pull through a request key takes the key there and then, so no other peer can pull it too), copies
/// straight between its own tensors and the owner's mapped pool (one copy per contiguous run), then posts the
/// release.
extension CacheManager {
    /// Pulls the slot bound to `key` on cluster `key.promptClusterID` into batch slot `batchIndex` of `cache`.
    /// `size` -1 pulls one whole local slot; `layers` pulls only some layers.
    public func pullCache(
        _ key: CacheKey, into cache: Cache, batchIndex: Int = 0, size: Int = -1, layers: LayerRange? = nil
    ) throws(LLMError) {
        try context.gate(.pullCache)
        guard !context.config.enableRemoteCacheAccessible else {
            throw .paramInvalid("with enableRemoteCacheAccessible, pullCache takes a CacheKeyByIdAndIndex, not \(key)")
        }
        guard (key.reqID != .max) != (key.prefixID != .max) else {
            throw .paramInvalid("pullCache key \(key) needs exactly one of reqID and prefixID")
        }
        try pullSlot(
            .key(reqID: key.reqID, prefixID: key.prefixID, modelID: key.modelID), from: key.promptClusterID,
            into: cache, batchIndex: batchIndex, size: size, layers: layers)
    }

    /// Pulls slot `key.batchIndex` of cache `key.cacheID` on cluster `key.clusterID`. If a request key is bound to
    /// that slot, the pull consumes it.
    public func pullCache(
        _ key: CacheKeyByIdAndIndex, into cache: Cache, batchIndex: Int = 0, size: Int = -1, layers: LayerRange? = nil
    ) throws(LLMError) {
        try context.gate(.pullCache)
        try pullSlot(
            .slot(cacheID: key.cacheID, batchIndex: key.batchIndex), from: key.clusterID, into: cache,
            batchIndex: batchIndex, size: size, layers: layers)
    }

    /// Pulls blocks `srcBlocks[i]` of the peer's blocks cache bound to `key.modelID` into blocks `dstBlocks[i]` of
    /// `cache`. Never consumes anything.
    public func pullBlocks(
        _ key: BlocksCacheKey, into cache: Cache, srcBlocks: [Int], dstBlocks: [Int], layers: LayerRange? = nil
    ) throws(LLMError) {
        try context.gate(.pullBlocks)
        try transferBlocks(
            .blocks(modelID: key.modelID), cluster: key.clusterID, local: cache, remoteBlocks: srcBlocks,
            localBlocks: dstBlocks, layers: layers, push: false)
    }

    /// Writes batch slot `srcBatchIndex` of `cache` into slot `key.batchIndex` of the peer's cache `key.cacheID`.
    /// Needs `enableRemoteCacheAccessible` on both sides; never consumes keys.
    public func pushCache(
        to key: CacheKeyByIdAndIndex, from cache: Cache, srcBatchIndex: Int = 0, layers: LayerRange? = nil,
        size: Int = -1
    ) throws(LLMError) {
        try context.gate(.pushCache)
        try requireRemoteAccess("pushCache")
        guard size == -1 else { throw .paramInvalid("pushCache size is \(size); only -1 (whole slots) is supported") }
        guard !cache.isBlocksCache else { throw .paramInvalid("pushCache cache \(cache.cacheID) is a blocks cache") }
        guard cache.desc.placement == .device else {
            throw .paramInvalid("pushCache source cache \(cache.cacheID) is on the host; pushes come from device caches")
        }
        guard srcBatchIndex >= 0 else { throw .paramInvalid("pushCache srcBatchIndex is \(srcBatchIndex)") }
        let plan = try layerPlan(layers, tensors: cache.desc.numTensors, isPush: true, operation: "pushCache")
        try requireRemoteCluster(key.clusterID, operation: "pushCache")
        try withPinned([cache.cacheID], operation: "pushCache") { views throws(LLMError) in
            let local = views[0]
            guard srcBatchIndex < local.slots else {
                throw .paramInvalid("pushCache srcBatchIndex \(srcBatchIndex) is not < batch size \(local.slots)")
            }
            let link = try link(to: key.clusterID, for: "pushCache")
            let request = ResolveMessage(
                target: .slot(cacheID: key.cacheID, batchIndex: key.batchIndex), write: true, tensors: plan.remote,
                bytesPerSlot: UInt64(local.stride), requesterPlacement: local.placement, requesterIsBlocks: false,
                blocks: [])
            try transfer(request, over: link, operation: "pushCache") { grant throws(LLMError) in
                var segments: [CopySegment] = []
                for (extent, tensor) in zip(grant.extents, plan.local) {
                    let remote = try mapped(extent, bytes: local.stride, in: link, operation: "pushCache")
                    segments.append(
                        CopySegment(destination: remote, source: local.address(tensor: tensor, slot: srcBatchIndex), count: local.stride))
                }
                try context.copy(segments, to: .host, from: local.placement)
            }
        }
    }

    /// Writes blocks `srcBlocks[i]` of `cache` into blocks `dstBlocks[i]` of the peer's blocks cache bound to
    /// `key.modelID`. Needs `enableRemoteCacheAccessible` on both sides.
    public func pushBlocks(
        to key: BlocksCacheKey, from cache: Cache, srcBlocks: [Int], dstBlocks: [Int], layers: LayerRange? = nil
    ) throws(LLMError) {
        try context.gate(.pushBlocks)
        try requireRemoteAccess("pushBlocks")
        try transferBlocks(
            .blocks(modelID: key.modelID), cluster: key.clusterID, local: cache, remoteBlocks: dstBlocks,
            localBlocks: srcBlocks, layers: layers, push: true)
    }

    // MARK: shared

    private func pullSlot(
        _ target: ResolveTarget, from cluster: UInt64, into cache: Cache, batchIndex: Int, size: Int, layers: LayerRange?
    ) throws(LLMError) {
        guard !cache.isBlocksCache else {
            throw .paramInvalid("pullCache destination \(cache.cacheID) is a blocks cache; use pullBlocks")
        }
        guard size == -1 || size > 0 else { throw .paramInvalid("pullCache size is \(size); it must be -1 or > 0") }
        guard batchIndex >= 0 else { throw .paramInvalid("pullCache batchIndex is \(batchIndex)") }
        let plan = try layerPlan(layers, tensors: cache.desc.numTensors, operation: "pullCache")
        try requireRemoteCluster(cluster, operation: "pullCache")
        try withPinned([cache.cacheID], operation: "pullCache") { views throws(LLMError) in
            let local = views[0]
            guard batchIndex < local.slots else {
                throw .paramInvalid("pullCache batchIndex \(batchIndex) is not < batch size \(local.slots)")
            }
            guard size <= local.stride else {
                throw .paramInvalid("pullCache size \(size) exceeds the \(local.stride)-byte slots of cache \(local.id)")
            }
            try requireDevicePoolForHost(local, operation: "pullCache")
            let bytes = size > 0 ? size : local.stride
            let link = try link(to: cluster, for: "pullCache")
            let request = ResolveMessage(
                target: target, write: false, tensors: plan.remote, bytesPerSlot: UInt64(bytes),
                requesterPlacement: local.placement, requesterIsBlocks: false, blocks: [])
            try transfer(request, over: link, operation: "pullCache") { grant throws(LLMError) in
                if layers == nil, Int(grant.tensorCount) != local.numTensors {
                    throw .paramInvalid(
                        "pullCache: the remote cache has \(grant.tensorCount) tensors, the local cache \(local.numTensors)")
                }
                var segments: [CopySegment] = []
                for (extent, tensor) in zip(grant.extents, plan.local) {
                    let remote = try mapped(extent, bytes: bytes, in: link, operation: "pullCache")
                    segments.append(
                        CopySegment(destination: local.address(tensor: tensor, slot: batchIndex), source: remote, count: bytes))
                }
                try context.copy(segments, to: local.placement, from: .host)
            }
        }
    }

    private func transferBlocks(
        _ target: ResolveTarget, cluster: UInt64, local cache: Cache, remoteBlocks: [Int], localBlocks: [Int],
        layers: LayerRange?, push: Bool
    ) throws(LLMError) {
        let operation = push ? "pushBlocks" : "pullBlocks"
        guard cache.isBlocksCache else { throw .paramInvalid("\(operation) cache \(cache.cacheID) is not a blocks cache") }
        guard !remoteBlocks.isEmpty, !localBlocks.isEmpty else {
            throw .paramInvalid("\(operation) needs source and destination blocks; got \(remoteBlocks.count) and \(localBlocks.count)")
        }
        guard remoteBlocks.count == localBlocks.count else {
            throw .paramInvalid(
                "\(operation) got \(push ? localBlocks.count : remoteBlocks.count) source blocks and \(push ? remoteBlocks.count : localBlocks.count) destination blocks")
        }
        if let bad = remoteBlocks.first(where: { !(0...Int(UInt32.max)).contains($0) }) {
            throw .paramInvalid("\(operation) remote block \(bad) is out of range")
        }
        if push, cache.desc.placement == .host {
            throw .paramInvalid("pushBlocks source cache \(cache.cacheID) is on the host; pushes come from device caches")
        }
        let plan = try layerPlan(layers, tensors: cache.desc.numTensors, isPush: push, operation: operation)
        try requireRemoteCluster(cluster, operation: operation)
        try withPinned([cache.cacheID], operation: operation) { views throws(LLMError) in
            let local = views[0]
            if let bad = localBlocks.first(where: { !(0..<local.slots).contains($0) }) {
                throw .paramInvalid("\(operation) local block \(bad) is outside 0..<\(local.slots)")
            }
            if !push { try requireDevicePoolForHost(local, operation: operation) }
            let link = try link(to: cluster, for: operation)
            let request = ResolveMessage(
                target: target, write: push, tensors: plan.remote, bytesPerSlot: 0, requesterPlacement: local.placement,
                requesterIsBlocks: true, blocks: remoteBlocks.map { UInt32($0) })
            try transfer(request, over: link, operation: operation) { grant throws(LLMError) in
                guard grant.stride == UInt64(local.stride) else {
                    throw .paramInvalid("\(operation): remote blocks are \(grant.stride) bytes, local blocks \(local.stride)")
                }
                let runs = Self.consecutiveRuns(zip(remoteBlocks, localBlocks).map { ($0, $1) })
                var segments: [CopySegment] = []
                segments.reserveCapacity(runs.count * plan.local.count)
                for (extent, tensor) in zip(grant.extents, plan.local) {
                    for run in runs {
                        let bytes = run.count * local.stride
                        let remoteOffset = UInt64(run.source * local.stride)
                        let shifted = GrantMessage.Extent(
                            poolID: extent.poolID, offset: extent.offset + remoteOffset,
                            length: extent.length >= remoteOffset ? extent.length - remoteOffset : 0)
                        let remote = try mapped(shifted, bytes: bytes, in: link, operation: operation)
                        let here = local.address(tensor: tensor, slot: run.destination)
                        segments.append(
                            push ? CopySegment(destination: remote, source: here, count: bytes)
                                : CopySegment(destination: here, source: remote, count: bytes))
                    }
                }
                if push {
                    try context.copy(segments, to: .host, from: local.placement)
                } else {
                    try context.copy(segments, to: local.placement, from: .host)
                }
            }
        }
    }

    /// Resolves `request` on the peer, runs `copy` with the grant, and releases the pin whatever happened. The
    /// release is posted, not awaited: the grant already took what a pull consumes, the release only settles it
    /// (a failed copy gives it back) and unpins; frames on a link are handled in order, so this link's next
    /// request sees the settled state.
    private func transfer(
        _ request: ResolveMessage, over link: PeerLink, operation: String,
        _ copy: (GrantMessage) throws(LLMError) -> Void
    ) throws(LLMError) {
        let timeout = context.config.syncKVTimeout
        let reply = try link.connection.request(.resolve, request.encoded(), timeout: timeout, what: operation)
        let grant: GrantMessage
        do {
            grant = try GrantMessage(payload: reply.payload)
        } catch {
            throw LLMError(.linkFailed, "\(operation): cluster \(link.remoteClusterID) sent a malformed grant: \(error)")
        }
        var copied = false
        defer { link.connection.post(.release, ReleaseMessage(pinID: grant.pinID, succeeded: copied).encoded()) }
        guard grant.extents.count == request.tensors.count else {
            throw LLMError(
                .linkFailed,
                "\(operation): cluster \(link.remoteClusterID) granted \(grant.extents.count) tensors for \(request.tensors.count) asked")
        }
        try copy(grant)
        copied = true
    }

    /// The address of `bytes` bytes of a granted extent inside the peer's mapped pool.
    func mapped(_ extent: GrantMessage.Extent, bytes: Int, in link: PeerLink, operation: String) throws(LLMError) -> UInt {
        guard UInt64(bytes) <= extent.length, let mapping = link.mappings[extent.poolID],
            let address = mapping.address(offset: extent.offset, length: bytes)
        else {
            throw LLMError(
                .linkFailed,
                "\(operation): cluster \(link.remoteClusterID) granted \(bytes) bytes at offset \(extent.offset) of pool \(extent.poolID), outside what it shared")
        }
        return address
    }

    /// Tensor ranges of a (layer-wise) transfer: `remote` on the peer, `local` here. `layers.source` names the
    /// pull's remote side and the push's local side (`isPush`).
    private func layerPlan(
        _ layers: LayerRange?, tensors: Int, isPush: Bool = false, operation: String
    ) throws(LLMError) -> (remote: Range<Int>, local: Range<Int>) {
        guard let layers else { return (0..<tensors, 0..<tensors) }
        let perLayer = layers.tensorsPerLayer
        guard perLayer > 0 else { throw .paramInvalid("\(operation) tensorsPerLayer is \(perLayer); it must be > 0") }
        guard tensors % perLayer == 0 else {
            throw .paramInvalid("\(operation): the cache's \(tensors) tensors are not a multiple of tensorsPerLayer \(perLayer)")
        }
        for (name, range) in [("source", layers.source), ("destination", layers.destination)]
        where range.isEmpty || range.lowerBound < 0 || range.upperBound > Int(UInt32.max) / perLayer {
            throw .paramInvalid("\(operation) \(name) layers \(range) must be a non-empty range starting at >= 0")
        }
        guard layers.source.count == layers.destination.count else {
            throw .paramInvalid(
                "\(operation) source layers \(layers.source) and destination layers \(layers.destination) differ in length")
        }
        let source = layers.source.lowerBound * perLayer..<layers.source.upperBound * perLayer
        let destination = layers.destination.lowerBound * perLayer..<layers.destination.upperBound * perLayer
        let local = isPush ? source : destination
        guard local.upperBound <= tensors else {
            throw .paramInvalid(
                "\(operation) \(isPush ? "source" : "destination") layers \(isPush ? layers.source : layers.destination) exceed the \(tensors / perLayer) layers of the local cache")
        }
        return isPush ? (destination, source) : (source, destination)
    }

    func requireRemoteCluster(_ cluster: UInt64, operation: String) throws(LLMError) {
        guard cluster != context.clusterID else {
            throw .paramInvalid("\(operation): cluster \(cluster) is this instance; cannot transfer from own cluster")
        }
    }

    private func requireRemoteAccess(_ operation: String) throws(LLMError) {
        guard context.config.enableRemoteCacheAccessible else {
            throw .paramInvalid("\(operation) needs LLMConfig.enableRemoteCacheAccessible on both clusters")
        }
    }

    func requireDevicePoolForHost(_ local: CacheView, operation: String) throws(LLMError) {
        guard local.placement == .device || context.devicePool != nil else {
            throw .paramInvalid("\(operation) into host cache \(local.id) needs a device pool (LLMConfig.memoryPool) here")
        }
    }
}
