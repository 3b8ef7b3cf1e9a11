import DeviceRuntime

/// Batched pulls: many whole slots by key, one resolve round trip per cluster (per `ResolveBatchMessage` caps),
/// one copy pass, one posted release per round trip.
extension CacheManager {
    /// Pulls each `pulls[i].key` into slot `pulls[i].batchIndex` of `pulls[i].cache`, as
    /// `pullCache(_:into:batchIndex:)` does for a whole slot, resolving all keys of a cluster in one round trip.
    ///
    /// All or nothing: every element is checked here first; each owner checks its whole group under one lock and
    /// grants all of it or none (refusing with the first bad element, named `pulls[i]`); if any group is refused
    /// or a copy fails, the keys already granted are given back. Request keys are consumed by a successful call,
    /// prefix keys never. Empty batches, repeated keys and two pulls into one local slot are refused.
    public func pullCaches(_ pulls: [CachePull]) throws(LLMError) {
        try context.gate(.pullCache)
        guard !context.config.enableRemoteCacheAccessible else {
            throw .paramInvalid(
                "with enableRemoteCacheAccessible, pullCaches cannot pull by CacheKey (pulls[0] is \(pulls.first.map { "\($0.key)" } ?? "absent")); use pullCache with a CacheKeyByIdAndIndex")
        }
        guard !pulls.isEmpty else { throw .paramInvalid("pullCaches pulls is empty; it needs at least one pull") }
        try validateBatch(pulls)
        var cacheIDs: [Int64] = []
        var seenCaches = Set<Int64>()
        for pull in pulls where seenCaches.insert(pull.cache.cacheID).inserted { cacheIDs.append(pull.cache.cacheID) }
        try withPinned(cacheIDs, operation: "pullCaches") { views throws(LLMError) in
            var viewByID: [Int64: CacheView] = [:]
            for view in views { viewByID[view.id] = view }
            var locals: [CacheView] = []
            locals.reserveCapacity(pulls.count)
            for (index, pull) in pulls.enumerated() {
                guard let local = viewByID[pull.cache.cacheID] else {
                    throw LLMError(.kvCacheNotExist, "pullCaches pulls[\(index)]: cache \(pull.cache.cacheID) does not exist")
                }
                guard !local.isBlocks else {
                    throw .paramInvalid("pullCaches pulls[\(index)] cache \(local.id) is a blocks cache; use pullBlocks")
                }
                guard pull.batchIndex < local.slots else {
                    throw .paramInvalid(
                        "pullCaches pulls[\(index)] batchIndex \(pull.batchIndex) is not < batch size \(local.slots)")
                }
                guard local.numTensors <= ResolveBatchMessage.maxExtents else {
                    throw .paramInvalid(
                        "pullCaches pulls[\(index)] cache \(local.id) has \(local.numTensors) tensors; a batched pull takes at most \(ResolveBatchMessage.maxExtents)")
                }
                try requireDevicePoolForHost(local, operation: "pullCaches pulls[\(index)]")
                locals.append(local)
            }
            try pullBatch(pulls, locals: locals)
        }
    }

    /// The checks that need no table: key shape, cluster, slot index, repeats.
    private func validateBatch(_ pulls: [CachePull]) throws(LLMError) {
        var keys: [BatchKey: Int] = [:]
        var slots: [BatchSlot: Int] = [:]
        keys.reserveCapacity(pulls.count)
        slots.reserveCapacity(pulls.count)
        for (index, pull) in pulls.enumerated() {
            let key = pull.key
            guard (key.reqID != .max) != (key.prefixID != .max) else {
                throw .paramInvalid("pullCaches pulls[\(index)] key \(key) needs exactly one of reqID and prefixID")
            }
            guard key.promptClusterID != context.clusterID else {
                throw .paramInvalid(
                    "pullCaches pulls[\(index)]: cluster \(key.promptClusterID) is this instance; cannot transfer from own cluster")
            }
            guard !pull.cache.isBlocksCache else {
                throw .paramInvalid("pullCaches pulls[\(index)] cache \(pull.cache.cacheID) is a blocks cache; use pullBlocks")
            }
            guard pull.batchIndex >= 0 else {
                throw .paramInvalid("pullCaches pulls[\(index)] batchIndex is \(pull.batchIndex)")
            }
            if let earlier = keys.updateValue(index, forKey: BatchKey(cluster: key.promptClusterID, key: IndexKey(key))) {
                throw .paramInvalid("pullCaches pulls[\(index)] repeats the key of pulls[\(earlier)]: \(key)")
            }
            if let earlier = slots.updateValue(index, forKey: BatchSlot(cacheID: pull.cache.cacheID, slot: pull.batchIndex)) {
                throw .paramInvalid(
                    "pullCaches pulls[\(index)] lands in slot \(pull.batchIndex) of cache \(pull.cache.cacheID), as pulls[\(earlier)] does")
            }
        }
    }

    /// Resolves every round trip, then copies, then releases: a refused round trip gives back what the earlier
    /// ones took (their releases say the transfer failed).
    private func pullBatch(_ pulls: [CachePull], locals: [CacheView]) throws(LLMError) {
        let rounds = Self.batchRounds(pulls, locals: locals)
        var linkByCluster: [UInt64: PeerLink] = [:]
        for round in rounds where linkByCluster[round.cluster] == nil {
            linkByCluster[round.cluster] = try link(to: round.cluster, for: "pullCaches")
        }
        var granted: [(link: PeerLink, pinID: UInt64)] = []
        var copied = false
        defer {
            for grant in granted {
                grant.link.connection.post(.release, ReleaseMessage(pinID: grant.pinID, succeeded: copied).encoded())
            }
        }
        var toDevice: [CopySegment] = []
        var toHost: [CopySegment] = []
        let timeout = context.config.syncKVTimeout
        for round in rounds {
            guard let link = linkByCluster[round.cluster] else { continue }
            let request = ResolveBatchMessage(
                items: round.indices.map { index in
                    let (key, local) = (pulls[index].key, locals[index])
                    return ResolveBatchMessage.Item(
                        reqID: key.reqID, prefixID: key.prefixID, modelID: key.modelID,
                        tensorCount: UInt32(local.numTensors), bytesPerSlot: UInt64(local.stride),
                        requesterPlacement: local.placement, label: UInt32(index))
                })
            let reply = try link.connection.request(.resolve, request.encoded(), timeout: timeout, what: "pullCaches")
            let grant: GrantMessage
            do {
                grant = try GrantMessage(payload: reply.payload)
            } catch {
                throw LLMError(.linkFailed, "pullCaches: cluster \(link.remoteClusterID) sent a malformed grant: \(error)")
            }
            granted.append((link, grant.pinID))
            guard Int(grant.slots) == request.items.count, grant.extents.count == request.extentCount else {
                throw LLMError(
                    .linkFailed,
                    "pullCaches: cluster \(link.remoteClusterID) granted \(grant.slots) pulls of \(grant.extents.count) tensors for \(request.items.count) pulls of \(request.extentCount) asked")
            }
            var extent = 0
            for index in round.indices {
                let (local, slot) = (locals[index], pulls[index].batchIndex)
                for tensor in 0..<local.numTensors {
                    let remote = try mapped(grant.extents[extent], bytes: local.stride, in: link, operation: "pullCaches")
                    let segment = CopySegment(
                        destination: local.address(tensor: tensor, slot: slot), source: remote, count: local.stride)
                    if local.placement == .device { toDevice.append(segment) } else { toHost.append(segment) }
                    extent += 1
                }
            }
        }
        if !toDevice.isEmpty { try context.copy(toDevice, to: .device, from: .host) }
        if !toHost.isEmpty { try context.copy(toHost, to: .host, from: .host) }
        copied = true
    }

    /// The round trips of a batch: per cluster (in order of first appearance), as many pulls as the caps of
    /// `ResolveBatchMessage` allow.
    private static func batchRounds(_ pulls: [CachePull], locals: [CacheView]) -> [BatchRound] {
        var rounds: [BatchRound] = []
        var open: [UInt64: Int] = [:]  // cluster → its last round
        for (index, pull) in pulls.enumerated() {
            let cluster = pull.key.promptClusterID
            let tensors = locals[index].numTensors
            if let last = open[cluster], rounds[last].indices.count < ResolveBatchMessage.maxItems,
                rounds[last].extents + tensors <= ResolveBatchMessage.maxExtents
            {
                rounds[last].indices.append(index)
                rounds[last].extents += tensors
            } else {
                open[cluster] = rounds.count
                rounds.append(BatchRound(cluster: cluster, indices: [index], extents: tensors))
            }
        }
        return rounds
    }
}

/// A key as a batch names it: the cluster routes, the index key identifies.
private struct BatchKey: Hashable {
    let cluster: UInt64
    let key: IndexKey
}

/// A local slot a batch writes.
private struct BatchSlot: Hashable {
    let cacheID: Int64
    let slot: Int
}

/// One round trip of a batched pull: pulls `indices` of one cluster.
private struct BatchRound {
    let cluster: UInt64
    var indices: [Int]
    var extents: Int
}
