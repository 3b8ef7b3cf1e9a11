import DeviceRuntime
import LinkLayer

/// The requester's side of pulls and pushes between linked clusters. It asks the owner to resolve and pin the
/// cache (one round trip: a pull through a request key takes the key there and then, so no other peer can pull
/// it too), has the link's data plane move the bytes straight between its own tensors and the owner's memory
/// (one copy per contiguous run), then posts the release.
struct Requester: Sendable {
    let store: CacheStore
    let links: LinkTable

    private var resources: InstanceResources { store.resources }

    /// Pulls the slot `target` names on `cluster` into batch slot `batchIndex` of `cache`.
    func pullSlot(
        _ target: ResolveTarget, from cluster: UInt64, into cache: Cache, batchIndex: Int, size: Int,
        layers: LayerRange?
    ) throws(LLMError) {
        guard !cache.isBlocksCache else {
            throw .paramInvalid("pullCache destination \(cache.cacheID) is a blocks cache; use pullBlocks")
        }
        guard size == -1 || size > 0 else { throw .paramInvalid("pullCache size is \(size); it must be -1 or > 0") }
        guard batchIndex >= 0 else { throw .paramInvalid("pullCache batchIndex is \(batchIndex)") }
        let plan = try LayerPlan(layers, tensors: cache.desc.numTensors, operation: "pullCache")
        try requireRemoteCluster(cluster, operation: "pullCache")
        try store.withPinned([cache.cacheID], operation: "pullCache") { views throws(LLMError) in
            let local = views[0]
            guard batchIndex < local.slots else {
                throw .paramInvalid("pullCache batchIndex \(batchIndex) is not < batch size \(local.slots)")
            }
            guard size <= local.stride else {
                throw .paramInvalid(
                    "pullCache size \(size) exceeds the \(local.stride)-byte slots of cache \(local.id)")
            }
            try requireDevicePoolForHost(local, operation: "pullCache")
            let bytes = size > 0 ? size : local.stride
            let link = try links.link(to: cluster, for: "pullCache")
            let request = ResolveRequest(
                target: target, write: false, tensors: plan.remote, bytesPerSlot: UInt64(bytes),
                requesterKind: MemoryKind(local.placement), requesterIsBlocks: false, blocks: [])
            let tensorCount = layers == nil ? local.numTensors : nil
            guard !link.channel.dataPlane.ownerDeliversReads else {
                try pullDelivered(
                    request, over: link, into: plan.local.map { local.address(tensor: $0, slot: batchIndex) },
                    tensorCount: tensorCount)
                return
            }
            try transfer(request, over: link, operation: "pullCache") { grant throws(LLMError) in
                try Self.require(grant, hasTensors: tensorCount)
                let moves = zip(grant.extents, plan.local).map { extent, tensor in
                    ExtentMove(local: local.address(tensor: tensor, slot: batchIndex), remote: extent, count: bytes)
                }
                try move(moves, .read, local: local.placement, over: link, pin: grant.pinID, operation: "pullCache")
            }
        }
    }

    /// Writes batch slot `srcBatchIndex` of `cache` into slot `key.batchIndex` of the peer's cache `key.cacheID`.
    func pushSlot(to key: CacheKeyByIdAndIndex, from cache: Cache, srcBatchIndex: Int, layers: LayerRange?, size: Int)
        throws(LLMError)
    {
        try requireRemoteAccess("pushCache")
        guard size == -1 else { throw .paramInvalid("pushCache size is \(size); only -1 (whole slots) is supported") }
        guard !cache.isBlocksCache else { throw .paramInvalid("pushCache cache \(cache.cacheID) is a blocks cache") }
        guard cache.desc.placement == .device else {
            throw .paramInvalid(
                "pushCache source cache \(cache.cacheID) is on the host; pushes come from device caches")
        }
        guard srcBatchIndex >= 0 else { throw .paramInvalid("pushCache srcBatchIndex is \(srcBatchIndex)") }
        let plan = try LayerPlan(layers, tensors: cache.desc.numTensors, isPush: true, operation: "pushCache")
        try requireRemoteCluster(key.clusterID, operation: "pushCache")
        try store.withPinned([cache.cacheID], operation: "pushCache") { views throws(LLMError) in
            try pushSlot(from: views[0], srcBatchIndex: srcBatchIndex, to: key, plan: plan, operation: "pushCache")
        }
    }

    /// `pushSlot` from a cache the caller has pinned (checked already, but for the batch index).
    func pushSlot(
        from local: CacheView, srcBatchIndex: Int, to key: CacheKeyByIdAndIndex, plan: LayerPlan, operation: String
    ) throws(LLMError) {
        guard srcBatchIndex < local.slots else {
            throw .paramInvalid("\(operation) srcBatchIndex \(srcBatchIndex) is not < batch size \(local.slots)")
        }
        let link = try links.link(to: key.clusterID, for: operation)
        let request = ResolveRequest(
            target: .slot(cacheID: key.cacheID, batchIndex: key.batchIndex), write: true, tensors: plan.remote,
            bytesPerSlot: UInt64(local.stride), requesterKind: MemoryKind(local.placement),
            requesterIsBlocks: false, blocks: [])
        try transfer(request, over: link, operation: operation) { grant throws(LLMError) in
            let moves = zip(grant.extents, plan.local).map { extent, tensor in
                ExtentMove(
                    local: local.address(tensor: tensor, slot: srcBatchIndex), remote: extent, count: local.stride)
            }
            try move(moves, .write, local: local.placement, over: link, pin: grant.pinID, operation: operation)
        }
    }

    /// Pulls (or pushes) blocks between `cache` and the peer's blocks cache `target` names: local block
    /// `localBlocks[i]` with remote block `remoteBlocks[i]`.
    func transferBlocks(
        _ target: ResolveTarget, cluster: UInt64, local cache: Cache, remoteBlocks: [Int], localBlocks: [Int],
        layers: LayerRange?, push: Bool
    ) throws(LLMError) {
        let operation = push ? "pushBlocks" : "pullBlocks"
        if push { try requireRemoteAccess(operation) }
        guard cache.isBlocksCache else {
            throw .paramInvalid("\(operation) cache \(cache.cacheID) is not a blocks cache")
        }
        guard !remoteBlocks.isEmpty, !localBlocks.isEmpty else {
            throw .paramInvalid(
                "\(operation) needs source and destination blocks; got \(remoteBlocks.count) and \(localBlocks.count)")
        }
        guard remoteBlocks.count == localBlocks.count else {
            throw .paramInvalid(
                "\(operation) got \(push ? localBlocks.count : remoteBlocks.count) source blocks and \(push ? remoteBlocks.count : localBlocks.count) destination blocks"
            )
        }
        if let bad = remoteBlocks.first(where: { !(0...Int(UInt32.max)).contains($0) }) {
            throw .paramInvalid("\(operation) remote block \(bad) is out of range")
        }
        if push, cache.desc.placement == .host {
            throw .paramInvalid(
                "pushBlocks source cache \(cache.cacheID) is on the host; pushes come from device caches")
        }
        let plan = try LayerPlan(layers, tensors: cache.desc.numTensors, isPush: push, operation: operation)
        try requireRemoteCluster(cluster, operation: operation)
        try store.withPinned([cache.cacheID], operation: operation) { views throws(LLMError) in
            try transferBlocks(
                target, cluster: cluster, local: views[0], remoteBlocks: remoteBlocks, localBlocks: localBlocks,
                plan: plan, push: push, operation: operation)
        }
    }

    /// `transferBlocks` with a blocks cache the caller has pinned (checked already, but for the local blocks).
    func transferBlocks(
        _ target: ResolveTarget, cluster: UInt64, local: CacheView, remoteBlocks: [Int], localBlocks: [Int],
        plan: LayerPlan, push: Bool, operation: String
    ) throws(LLMError) {
        if let bad = localBlocks.first(where: { !(0..<local.slots).contains($0) }) {
            throw .paramInvalid("\(operation) local block \(bad) is outside 0..<\(local.slots)")
        }
        if !push { try requireDevicePoolForHost(local, operation: operation) }
        let link = try links.link(to: cluster, for: operation)
        let request = ResolveRequest(
            target: target, write: push, tensors: plan.remote, bytesPerSlot: 0,
            requesterKind: MemoryKind(local.placement), requesterIsBlocks: true,
            blocks: remoteBlocks.map { UInt32($0) })
        try transfer(request, over: link, operation: operation) { grant throws(LLMError) in
            guard grant.stride == UInt64(local.stride) else {
                throw .paramInvalid(
                    "\(operation): remote blocks are \(grant.stride) bytes, local blocks \(local.stride)")
            }
            let runs = consecutiveRuns(zip(remoteBlocks, localBlocks).map { ($0, $1) })
            var moves: [ExtentMove] = []
            moves.reserveCapacity(runs.count * plan.local.count)
            for (extent, tensor) in zip(grant.extents, plan.local) {
                for run in runs {
                    let remoteOffset = UInt64(run.source * local.stride)
                    let shifted = Grant.Extent(
                        regionID: extent.regionID, offset: extent.offset + remoteOffset,
                        length: extent.length >= remoteOffset ? extent.length - remoteOffset : 0)
                    moves.append(
                        ExtentMove(
                            local: local.address(tensor: tensor, slot: run.destination), remote: shifted,
                            count: run.count * local.stride))
                }
            }
            try move(
                moves, push ? .write : .read, local: local.placement, over: link, pin: grant.pinID,
                operation: operation)
        }
    }

    // MARK: shared

    /// Resolves `request` on the peer (with `resolve` when given), runs `copy` with the grant, and releases the pin
    /// whatever happened. The release is posted, not awaited: the grant already took what a pull consumes, the
    /// release only settles it (a failed copy gives it back) and unpins; frames on a link are handled in order, so
    /// this link's next request sees the settled state. A release that cannot be sent (the link closed or is being unlinked)
    /// fails the transfer: the owner counts it failed when the link closes, and gives the key back.
    func transfer(
        _ request: ResolveRequest, over link: PeerLink, operation: String,
        resolve: ((Duration) throws(LinkError) -> Grant)? = nil, _ copy: (Grant) throws(LLMError) -> Void
    ) throws(LLMError) {
        guard link.transfers.enter() else {
            throw LLMError(
                .notYetLink,
                "\(operation): the link to cluster \(link.remoteClusterID) is being unlinked (or its unlink failed: unlink it again)"
            )
        }
        defer { link.transfers.leave() }
        var meter = TransferMeter(link.meters)
        let grant: Grant
        do throws(LinkError) {
            let timeout = resources.config.syncKVTimeout
            if let resolve {
                grant = try resolve(timeout)
            } else {
                grant = try link.channel.resolve(request, timeout: timeout, what: operation)
            }
            meter.answered()
        } catch {
            throw meter.failed(LLMError(error), answered: error.isRefusal)
        }
        do throws(LLMError) {
            guard grant.extents.count == request.tensors.count else {
                throw LLMError(
                    .linkFailed,
                    "\(operation): cluster \(link.remoteClusterID) granted \(grant.extents.count) tensors for \(request.tensors.count) asked"
                )
            }
            try copy(grant)
        } catch {
            link.channel.release(pinID: grant.pinID, succeeded: false)
            throw meter.failed(error)
        }
        try meter.finishing { () throws(LLMError) in
            try Self.releaseSucceeded(grant, over: link, operation: operation)
        }
    }

    /// Posts the release of a transfer whose copy succeeded; throws `.linkFailed` if it could not be sent (the
    /// owner then counts the transfer failed).
    static func releaseSucceeded(_ grant: Grant, over link: PeerLink, operation: String) throws(LLMError) {
        link.transfers.runBeforeRelease()
        guard link.channel.release(pinID: grant.pinID, succeeded: true) else {
            throw LLMError(
                .linkFailed,
                "\(operation): the link to cluster \(link.remoteClusterID) closed before the release of its grant was sent; the transfer counts as failed"
            )
        }
    }

    /// Has the link's data plane carry out `moves`; local memory is in `placement`, the peer's is mapped host
    /// memory (the emulator's pools) or, for a pool imported by key (the ACL backend's IPC), device memory.
    func move(
        _ moves: [ExtentMove], _ direction: TransferDirection, local placement: Placement, over link: PeerLink,
        pin pinID: UInt64, operation: String
    ) throws(LLMError) {
        let resources = self.resources
        let dataPlane = link.channel.dataPlane
        // One grant's extents lie in one pool of the peer.
        let remote: Placement =
            moves.first.map { dataPlane.reachesDeviceMemory(of: $0.remote.regionID) } == true ? .device : .host
        do throws(TransferFailure<LLMError>) {
            try link.channel.transfer(
                moves, direction, pinID: pinID, timeout: resources.config.syncKVTimeout, what: operation
            ) { segments throws(LLMError) in
                switch direction {
                case .read: try resources.copy(segments, to: placement, from: remote)
                case .write: try resources.copy(segments, to: remote, from: placement)
                }
            }
            link.meters.moved(bytes: moves.reduce(0) { $0 + $1.count })
        } catch {
            switch error {
            case .copy(let failure): throw failure
            case .link(let failure): throw Self.dataPlaneFailure(failure, operation: operation)
            }
        }
    }

    /// A data plane that times out (UCX) gives `.timeout`; every other data-plane failure fails the link.
    static func dataPlaneFailure(_ failure: LinkError, operation: String) -> LLMError {
        LLMError(failure.kind == .timedOut ? .timeout : .linkFailed, "\(operation): \(failure.message)")
    }

    /// Refuses a pull of whole caches (`tensorCount` set) from a source with another tensor count.
    static func require(_ grant: Grant, hasTensors tensorCount: Int?) throws(LLMError) {
        guard let tensorCount, Int(grant.tensorCount) != tensorCount else { return }
        throw .paramInvalid(
            "pullCache: the remote cache has \(grant.tensorCount) tensors, the local cache \(tensorCount)")
    }

    func requireRemoteCluster(_ cluster: UInt64, operation: String) throws(LLMError) {
        guard cluster != resources.clusterID else {
            throw .paramInvalid("\(operation): cluster \(cluster) is this instance; cannot transfer from own cluster")
        }
    }

    private func requireRemoteAccess(_ operation: String) throws(LLMError) {
        guard resources.config.enableRemoteCacheAccessible else {
            throw .paramInvalid("\(operation) needs LLMConfig.enableRemoteCacheAccessible on both clusters")
        }
    }

    func requireDevicePoolForHost(_ local: CacheView, operation: String) throws(LLMError) {
        guard local.placement == .device || resources.devicePool != nil else {
            throw .paramInvalid(
                "\(operation) into host cache \(local.id) needs a device pool (LLMConfig.memoryPool) here")
        }
    }
}
