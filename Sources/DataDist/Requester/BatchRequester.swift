import DeviceRuntime
import LinkLayer

/// Batched pulls (`pullCaches`): many whole slots by key, one resolve round trip per cluster (per
/// `BatchResolveRequest` caps), then the copies, then one posted release per round trip.
struct BatchRequester: Sendable {
    let requester: Requester

    private var store: CacheStore { requester.store }
    private var resources: InstanceResources { requester.store.resources }

    /// See `CacheManager.pullCaches(_:)`.
    func pullCaches(_ pulls: [CachePull]) throws(LLMError) {
        guard !resources.config.enableRemoteCacheAccessible else {
            throw .paramInvalid(
                "with enableRemoteCacheAccessible, pullCaches cannot pull by CacheKey (pulls[0] is \(pulls.first.map { "\($0.key)" } ?? "absent")); use pullCache with a CacheKeyByIdAndIndex"
            )
        }
        guard !pulls.isEmpty else { throw .paramInvalid("pullCaches pulls is empty; it needs at least one pull") }
        try validate(pulls)
        var cacheIDs: [Int64] = []
        var seenCaches = Set<Int64>()
        for pull in pulls where seenCaches.insert(pull.cache.cacheID).inserted { cacheIDs.append(pull.cache.cacheID) }
        try store.withPinned(cacheIDs, operation: "pullCaches") { views throws(LLMError) in
            var viewByID: [Int64: CacheView] = [:]
            for view in views { viewByID[view.id] = view }
            var locals: [CacheView] = []
            locals.reserveCapacity(pulls.count)
            for (index, pull) in pulls.enumerated() {
                guard let local = viewByID[pull.cache.cacheID] else {
                    throw LLMError(
                        .kvCacheNotExist, "pullCaches pulls[\(index)]: cache \(pull.cache.cacheID) does not exist")
                }
                guard !local.isBlocks else {
                    throw .paramInvalid(
                        "pullCaches pulls[\(index)] cache \(local.id) is a blocks cache; use pullBlocks")
                }
                guard pull.batchIndex < local.slots else {
                    throw .paramInvalid(
                        "pullCaches pulls[\(index)] batchIndex \(pull.batchIndex) is not < batch size \(local.slots)")
                }
                guard local.numTensors <= BatchResolveRequest.maxExtents else {
                    throw .paramInvalid(
                        "pullCaches pulls[\(index)] cache \(local.id) has \(local.numTensors) tensors; a batched pull takes at most \(BatchResolveRequest.maxExtents)"
                    )
                }
                try requester.requireDevicePoolForHost(local, operation: "pullCaches pulls[\(index)]")
                locals.append(local)
            }
            try pull(pulls, locals: locals)
        }
    }

    /// The checks that need no table: key shape, cluster, slot index, repeats.
    private func validate(_ pulls: [CachePull]) throws(LLMError) {
        var keys: [BatchKey: Int] = [:]
        var slots: [BatchSlot: Int] = [:]
        keys.reserveCapacity(pulls.count)
        slots.reserveCapacity(pulls.count)
        for (index, pull) in pulls.enumerated() {
            let key = pull.key
            guard (key.reqID != .max) != (key.prefixID != .max) else {
                throw .paramInvalid("pullCaches pulls[\(index)] key \(key) needs exactly one of reqID and prefixID")
            }
            guard key.promptClusterID != resources.clusterID else {
                throw .paramInvalid(
                    "pullCaches pulls[\(index)]: cluster \(key.promptClusterID) is this instance; cannot transfer from own cluster"
                )
            }
            guard !pull.cache.isBlocksCache else {
                throw .paramInvalid(
                    "pullCaches pulls[\(index)] cache \(pull.cache.cacheID) is a blocks cache; use pullBlocks")
            }
            guard pull.batchIndex >= 0 else {
                throw .paramInvalid("pullCaches pulls[\(index)] batchIndex is \(pull.batchIndex)")
            }
            if let earlier = keys.updateValue(index, forKey: BatchKey(cluster: key.promptClusterID, key: IndexKey(key)))
            {
                throw .paramInvalid("pullCaches pulls[\(index)] repeats the key of pulls[\(earlier)]: \(key)")
            }
            if let earlier = slots.updateValue(
                index, forKey: BatchSlot(cacheID: pull.cache.cacheID, slot: pull.batchIndex))
            {
                throw .paramInvalid(
                    "pullCaches pulls[\(index)] lands in slot \(pull.batchIndex) of cache \(pull.cache.cacheID), as pulls[\(earlier)] does"
                )
            }
        }
    }

    /// Resolves every round trip, then copies, then releases: a refused round trip gives back what the earlier
    /// ones took (their releases say the transfer failed), and no local slot is written.
    /// Each cluster's share counts as one transfer on its link's meters, ending as the whole call does.
    private func pull(_ pulls: [CachePull], locals: [CacheView]) throws(LLMError) {
        var tally = BatchTally()
        do throws(LLMError) {
            try pull(pulls, locals: locals, tally: &tally)
        } catch {
            tally.finish(failure: error.status)
            throw error
        }
        tally.finish(failure: nil)
    }

    private func pull(_ pulls: [CachePull], locals: [CacheView], tally: inout BatchTally) throws(LLMError) {
        let rounds = Self.rounds(pulls, locals: locals)
        var linkByCluster: [UInt64: PeerLink] = [:]
        var entered: [PeerLink] = []
        defer { for link in entered { link.transfers.leave() } }
        for round in rounds where linkByCluster[round.cluster] == nil {
            let link = try requester.links.link(to: round.cluster, for: "pullCaches")
            guard link.transfers.enter() else {
                throw LLMError(
                    .notYetLink,
                    "pullCaches: the link to cluster \(round.cluster) is being unlinked (or its unlink failed: unlink it again)"
                )
            }
            entered.append(link)
            tally.started(link)
            linkByCluster[round.cluster] = link
        }
        var granted: [(link: PeerLink, round: BatchRound, grant: Grant)] = []
        var copied = false
        defer {
            if !copied {
                for entry in granted { entry.link.channel.release(pinID: entry.grant.pinID, succeeded: false) }
            }
        }
        let timeout = resources.config.syncKVTimeout
        for round in rounds {
            guard let link = linkByCluster[round.cluster] else { continue }
            let request = BatchResolveRequest(
                items: round.indices.map { index in
                    let (key, local) = (pulls[index].key, locals[index])
                    return BatchResolveRequest.Item(
                        reqID: key.reqID, prefixID: key.prefixID, modelID: key.modelID,
                        tensorCount: UInt32(local.numTensors), bytesPerSlot: UInt64(local.stride),
                        requesterKind: MemoryKind(local.placement), label: UInt32(index))
                })
            let grant: Grant
            let asked = ContinuousClock.now
            do throws(LinkError) {
                grant = try link.channel.resolveBatch(request, timeout: timeout, what: "pullCaches")
                tally.answered(link, after: .now - asked)
            } catch {
                if case .refused = error.kind { tally.answered(link, after: .now - asked) }
                throw LLMError(error)
            }
            granted.append((link, round, grant))
            guard Int(grant.slots) == request.items.count, grant.extents.count == request.extentCount else {
                throw LLMError(
                    .linkFailed,
                    "pullCaches: cluster \(link.remoteClusterID) granted \(grant.slots) pulls of \(grant.extents.count) tensors for \(request.items.count) pulls of \(request.extentCount) asked"
                )
            }
        }
        for (link, round, grant) in granted {
            var toDevice: [ExtentMove] = []
            var toHost: [ExtentMove] = []
            var extent = 0
            for index in round.indices {
                let (local, slot) = (locals[index], pulls[index].batchIndex)
                for tensor in 0..<local.numTensors {
                    let move = ExtentMove(
                        local: local.address(tensor: tensor, slot: slot), remote: grant.extents[extent],
                        count: local.stride)
                    if local.placement == .device { toDevice.append(move) } else { toHost.append(move) }
                    extent += 1
                }
            }
            if !toDevice.isEmpty {
                try requester.move(
                    toDevice, .read, local: .device, over: link, pin: grant.pinID, operation: "pullCaches")
            }
            if !toHost.isEmpty {
                try requester.move(toHost, .read, local: .host, over: link, pin: grant.pinID, operation: "pullCaches")
            }
        }
        copied = true
        // Every release goes out, even after one could not: each settles its round trip's keys at its owner.
        var undelivered: LLMError?
        for entry in granted {
            do throws(LLMError) {
                try Requester.releaseSucceeded(entry.grant, over: entry.link, operation: "pullCaches")
            } catch {
                undelivered = undelivered ?? error
            }
        }
        if let undelivered { throw undelivered }
    }

    /// The round trips of a batch: per cluster (in order of first appearance), as many pulls as the caps of
    /// `BatchResolveRequest` allow.
    private static func rounds(_ pulls: [CachePull], locals: [CacheView]) -> [BatchRound] {
        var rounds: [BatchRound] = []
        var open: [UInt64: Int] = [:]  // cluster → its last round
        for (index, pull) in pulls.enumerated() {
            let cluster = pull.key.promptClusterID
            let tensors = locals[index].numTensors
            if let last = open[cluster], rounds[last].indices.count < BatchResolveRequest.maxItems,
                rounds[last].extents + tensors <= BatchResolveRequest.maxExtents
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

/// The links a batched pull used, for their meters: when it started and each link's last round trip.
private struct BatchTally {
    let start = ContinuousClock.now
    var links: [(link: PeerLink, roundTrip: Duration?)] = []

    mutating func started(_ link: PeerLink) {
        link.meters.transferStarted()
        links.append((link, nil))
    }

    mutating func answered(_ link: PeerLink, after roundTrip: Duration) {
        if let index = links.firstIndex(where: { $0.link.serial == link.serial }) { links[index].roundTrip = roundTrip }
    }

    func finish(failure: LLMStatusCode?) {
        let elapsed = ContinuousClock.now - start
        for (link, roundTrip) in links { link.meters.finish(failure: failure, elapsed: elapsed, roundTrip: roundTrip) }
    }
}

/// One round trip of a batched pull: pulls `indices` of one cluster.
private struct BatchRound {
    let cluster: UInt64
    var indices: [Int]
    var extents: Int
}
