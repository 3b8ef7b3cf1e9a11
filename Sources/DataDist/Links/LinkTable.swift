import BlockPool
import DeviceRuntime
import LinkLayer
import Logging
import Synchronization
import ThreadSanitizerSupport

/// The links of one instance: listening, linking and unlinking clusters, and finding the link a transfer
/// uses. A link's requests are answered by an `OwnerService` over this instance's `OwnerPolicy`.
final class LinkTable: Sendable {
    let store: CacheStore
    let policy: OwnerPolicy
    let registry = Lock(LinkRegistry())
    private let budget = Lock(MappingBudget.process)
    /// The server-side handshakes in progress on this instance's listener.
    let handshakes = PendingHandshakes()
    /// The instance's UCX node, made by the first link over UCX.
    let ucx: UCXNodeHolder

    /// What peers' pools may take of this process's address space: the process's budget, unless a test gives
    /// an instance one of its own (links set up later use it).
    var mappingBudget: MappingBudget {
        get { budget.withLock { $0 } }
        set { budget.withLock { $0 = newValue } }
    }

    /// How long one frame's send on an established link may wait for the peer to read before the link fails
    /// (`ControlConnection.defaultSendTimeout`, unless a test shortens it; links set up later use it).
    var sendTimeout: Duration {
        get { sendBound.withLock { $0 } }
        set { sendBound.withLock { $0 = newValue } }
    }
    private let sendBound = Lock(ControlConnection.defaultSendTimeout)

    /// Longer link and unlink timeouts are treated as this (a day is "wait as long as it takes").
    static let longestTimeout: Duration = .seconds(86_400)

    init(store: CacheStore) {
        self.store = store
        self.policy = OwnerPolicy(store: store)
        self.ucx = UCXNodeHolder(transferTimeout: store.resources.config.syncKVTimeout)
    }

    private var resources: InstanceResources { store.resources }

    /// The endpoint this instance listens on, with the port actually bound.
    var listenEndpoint: IPEndpoint? { registry.withLock { $0.listener.map { IPEndpoint($0.endpoint) } } }

    var linkCount: Int { registry.withLock { $0.links.count } }

    /// Starts serving link requests on exactly `endpoint` (port 0 picks a free port).
    func startListening(on endpoint: IPEndpoint) throws(LLMError) {
        let listener: Listener
        do {
            listener = try Listener(on: SocketEndpoint(endpoint)) { [weak self] connection in
                guard let self else { return connection.close() }
                self.startHandshake(on: connection)
            }
        } catch {
            throw LLMError(.failed, error.message)
        }
        let previous = registry.withLock { registry in
            defer { registry.listener = listener }
            return registry.listener
        }
        previous?.stop()
        resources.logger.debug("listening", metadata: ["endpoint": "\(listener.endpoint)"])
    }

    func stopListening() {
        registry.withLock { registry in
            defer { registry.listener = nil }
            return registry.listener
        }?.stop()
    }

    /// Links to each cluster (in parallel). Overall success only if every cluster linked; otherwise the code of
    /// the last failing cluster.
    func link(_ clusters: [LLMClusterInfo], timeout: Duration) -> (LLMStatusCode, [LLMStatusCode]) {
        guard !clusters.isEmpty else {
            resources.logger.warning("linkClusters got an empty cluster list")
            return (.paramInvalid, [])
        }
        guard timeout > .zero else {
            resources.logger.warning("linkClusters timeout \(timeout) must be > 0")
            return (.paramInvalid, [])
        }
        let timeout = min(timeout, Self.longestTimeout)
        let results = forEachInParallel(clusters) { (cluster: LLMClusterInfo) -> LLMStatusCode in
            do throws(LLMError) {
                try self.link(cluster, timeout: timeout)
                return .success
            } catch {
                self.resources.logger.warning(
                    "link to cluster \(cluster.remoteClusterID) failed: \(error)",
                    metadata: ["status": "\(error.status.name)"])
                return error.status
            }
        }
        return (results.last { $0 != .success } ?? .success, results)
    }

    /// Unlinks each cluster. Unlinking a cluster that is not linked succeeds. `force` tears down only this side.
    func unlink(_ clusters: [LLMClusterInfo], timeout: Duration, force: Bool) -> (LLMStatusCode, [LLMStatusCode]) {
        guard !clusters.isEmpty else { return (.paramInvalid, []) }
        guard timeout > .zero else { return (.paramInvalid, []) }
        let timeout = min(timeout, Self.longestTimeout)
        let results = forEachInParallel(clusters) { cluster -> LLMStatusCode in
            let link = self.registry.withLock { registry -> PeerLink? in
                registry.lost[cluster.remoteClusterID] = nil
                guard let link = registry.links[cluster.remoteClusterID] else { return nil }
                registry.unlinking.insert(link.serial)
                return link
            }
            guard let link else { return .success }
            defer { _ = self.registry.withLock { $0.unlinking.remove(link.serial) } }
            if !force {
                let deadline = ContinuousClock.now.advanced(by: timeout)
                self.letTransfersFinish(on: link, within: timeout)
                do throws(LinkError) {
                    let rest = max(deadline - .now, Self.shortestUnlinkRequest)
                    try link.channel.requestUnlink(from: self.resources.clusterID, timeout: rest, what: "unlink")
                } catch {
                    // The unlink may still reach the peer, and nothing is posted after it: no new transfers.
                    self.resources.logger.warning("unlink from cluster \(cluster.remoteClusterID) failed: \(error)")
                    return .unlinkFailed
                }
            }
            link.channel.close(force ? .forcedLocally : .unlinked)
            return .success
        }
        return (results.last { $0 != .success } ?? .success, results)
    }

    /// Unlinks everything (telling peers, briefly) and stops listening: finalize.
    func closeAll() {
        stopListening()
        let all = registry.withLock { registry in
            registry.isClosed = true
            return Array(registry.links.values)
        }
        for link in all {
            letTransfersFinish(on: link, within: Self.finalizeTransferWait)
            try? link.channel.requestUnlink(from: resources.clusterID, timeout: .milliseconds(200), what: "finalize")
            link.channel.close(.finalized)
        }
        ucx.release()
    }

    /// Transfers in flight on a link being unlinked get this long before finalize goes on without them.
    static let finalizeTransferWait: Duration = .seconds(1)
    /// The unlink request gets at least this long, even when its transfers took the whole unlink timeout.
    static let shortestUnlinkRequest: Duration = .milliseconds(100)

    /// Refuses new transfers on `link` and waits up to `timeout` for those in flight to post their releases, so
    /// the owner settles them before the unlink; one that is still running then fails (its release can no
    /// longer be sent, and the owner counts it failed).
    private func letTransfersFinish(on link: PeerLink, within timeout: Duration) {
        if !link.transfers.close(waitingUpTo: timeout) {
            resources.logger.warning(
                "unlinking cluster \(link.remoteClusterID) with transfers still in flight after \(timeout): they fail")
        }
    }

    /// The live link to `clusterID`, for a transfer named `operation`.
    func link(to clusterID: UInt64, for operation: String) throws(LLMError) -> PeerLink {
        let (link, lostReason) = registry.withLock { ($0.links[clusterID], $0.lost[clusterID]) }
        guard let link, link.channel.isOpen else {
            if let reason = lostReason ?? link.flatMap(brokenReason) {
                throw LLMError(
                    .linkFailed,
                    "\(operation): the link to cluster \(clusterID) failed (\(reason)); unlink and link again")
            }
            throw LLMError(.notYetLink, "\(operation): cluster \(clusterID) is not linked; call linkClusters first")
        }
        return link
    }

    /// Why `link`, closed but still listed (its close not yet recorded), broke; nil when it was closed on purpose.
    /// Off the hot path: asked only once a transfer found its link closed.
    private func brokenReason(_ link: PeerLink) -> CloseReason? {
        guard let reason = link.channel.closeReason, !reason.isDeliberate else { return nil }
        return registry.withLock { $0.unlinking.contains(link.serial) } ? nil : reason
    }

    // MARK: setting links up

    /// The client side of a link to `cluster`.
    private func link(_ cluster: LLMClusterInfo, timeout: Duration) throws(LLMError) {
        let remoteID = cluster.remoteClusterID
        guard cluster.remoteIPInfos.count == 1, let endpoint = cluster.remoteIPInfos.first else {
            throw .paramInvalid(
                "cluster \(remoteID) has \(cluster.remoteIPInfos.count) remoteIPInfos; exactly one is needed")
        }
        guard remoteID != resources.clusterID else {
            throw .paramInvalid("cannot link cluster \(remoteID) to itself; cluster ids must be unique")
        }
        // A link that closed but is still being torn down here (its reader releasing what its data plane imported)
        // is not a live link: the new one replaces it when it registers.
        if registry.withLock({ $0.links[remoteID]?.channel.isOpen }) == true {
            throw LLMError(.alreadyLink, "cluster \(remoteID) is already linked")
        }
        let offer = self.offer
        do throws(LinkError) {
            _ = try LinkHandshake.connect(
                to: SocketEndpoint(endpoint), expecting: remoteID, offer: offer, timeout: timeout,
                admission: Admission(table: self, offer: offer))
        } catch {
            throw LLMError(error)
        }
    }

    /// Starts the server side of a handshake on an accepted connection, on its own thread, if it gets a place
    /// among the pending handshakes; otherwise closes it, saying why.
    private func startHandshake(on connection: Socket) {
        let logger = resources.logger
        switch handshakes.admit(connection) {
        case .full(let reason):
            logger.warning("closed a new connection without reading it: \(reason)")
            connection.close()
        case .admitted(let ticket, let evicted):
            if evicted {
                logger.warning(
                    "closed the oldest connection still waiting to send its hello, to admit a new one: \(handshakes.capacity) link handshakes were pending"
                )
            }
            do {
                try JoinableThread.detach { self.accept(connection, ticket: ticket) }
            } catch {
                logger.warning("refused a connection: \(error)")
                ticket.finish()
                connection.close()
            }
        }
    }

    /// The server side of a handshake on an accepted connection (on its own thread).
    private func accept(_ socket: Socket, ticket: PendingHandshakes.Ticket) {
        let offer = self.offer
        if case .failure(let refusal)? = LinkHandshake.accept(
            on: socket, offer: offer, admission: Admission(table: self, offer: offer), ticket: ticket)
        {
            resources.logger.notice("refused a link request: \(refusal.message)")
        }
    }

    /// What this instance brings to a link: the pools the runtime can hand to another process, by memfd or (device
    /// pools of a runtime with IPC) by key, and, unless the transport is shared memory only, the remote-accessible
    /// registered caches, which only UCX reaches: with any of those, an automatic transport links over UCX.
    private var offer: LinkOffer {
        let preference = TransportChoice(resources.config.transport)
        let registered =
            preference == .sharedMemory ? [] : store.table.withLock { $0.registeredRegions.published }
        let pools = store.sharedPools(overUCX: preference.allowsUCX).compactMap { id, pool -> PublishedRegion? in
            let kind: MemoryKind = pool.placement == .host ? .host : .device
            let descriptor = RegionDescriptor(regionID: id, kind: kind, size: UInt64(pool.region.size))
            guard let shared = pool.region.shared else {
                return PublishedRegion(descriptor: descriptor, fd: -1, base: pool.region.address)
            }
            guard shared.offset == 0 else { return nil }
            return PublishedRegion(descriptor: descriptor, fd: shared.fd, base: pool.region.address)
        }
        return LinkOffer(
            clusterID: resources.clusterID, remoteCacheAccessible: resources.config.enableRemoteCacheAccessible,
            regions: pools + registered,
            transport: registered.isEmpty && stagingReason(preference) == nil ? preference : .ucx,
            secret: resources.config.linkSecret.map { LinkSecret(Array($0.utf8)) },
            deviceSharing: store.sharesDevicePoolByKey
                ? DeviceSharing(runtime: resources.runtime, device: resources.config.deviceID) : nil)
    }

    /// Why an automatic transport links over UCX even on one host, or nil: the ACL backend's device pool without
    /// IPC reaches a peer only staged through UCX (`UCXStaging`), never over the memfd mapping.
    private func stagingReason(_ preference: TransportChoice) -> String? {
        let runtime = resources.runtime
        guard preference == .automatic, runtime.backend == .acl, resources.devicePool != nil,
            !store.sharesDevicePoolByKey
        else { return nil }
        return runtime.availability(of: .ipc).reason ?? "device sharing not available"
    }

    /// How long a link to a cluster that links again may take to answer a ping before it is taken for dead.
    static let stalePeerPing: Duration = .milliseconds(500)

    /// Adds an established link. A live link to the same cluster is refused; a dead one is replaced.
    fileprivate func register(_ established: EstablishedLink, offered: Set<UInt32>) throws(LLMError) -> PeerChannel {
        let remoteID = established.remoteClusterID
        let overUCX = established.dataPlane is UCXDataPlane
        let reach = LinkReach(
            peerClusterID: remoteID, overUCX: overUCX, registeredRegions: overUCX ? offered : [])
        closeIfStale(cluster: remoteID)
        let meters = resources.meters.link(to: remoteID, transport: overUCX ? "ucx" : "shm")
        let channel = try registry.withLock { registry throws(LLMError) -> PeerChannel in
            guard !registry.isClosed else { throw LLMError(.failed, "cluster \(resources.clusterID) was finalized") }
            if let existing = registry.links[remoteID] {
                guard !existing.channel.isOpen else {
                    throw LLMError(
                        .alreadyLink, "cluster \(remoteID) is already linked to cluster \(resources.clusterID)")
                }
                registry.links[remoteID] = nil
            }
            let serial = registry.takeSerial()
            let service = OwnerService(
                policy: policy, linkSerial: serial, peerClusterID: remoteID, reach: reach, logger: resources.logger,
                meters: meters,
                onClose: { [weak self] reason in
                    meters.linkClosed()
                    self?.forget(serial: serial, cluster: remoteID, reason: reason)
                })
            let channel = PeerChannel(
                remoteClusterID: remoteID, socket: established.socket, inbox: established.inbox,
                dataPlane: established.dataPlane, service: service, logger: resources.logger,
                faults: resources.runtime.faults, sendTimeout: sendTimeout, pairing: established.pairing)
            registry.links[remoteID] = PeerLink(serial: serial, channel: channel, meters: meters)
            registry.lost[remoteID] = nil
            return channel
        }
        meters.linkEstablished()
        if overUCX, let why = stagingReason(TransportChoice(resources.config.transport)) {
            resources.logger.notice(
                "linked to cluster \(remoteID) over UCX, device memory staged through pinned host buffers: the memfd mapping cannot reach this side's device pool (\(why))"
            )
        }
        return channel
    }

    /// A cluster links again while this side still holds a link to it: after a cut network or a peer killed
    /// while it was cut, the old link may be dead without this side knowing (its close never arrived). One that
    /// does not answer a ping within `stalePeerPing` is closed as failed (its pins are released), so the relink
    /// is not refused with `.alreadyLink`; a live one answers and the new link is refused as before.
    private func closeIfStale(cluster remoteID: UInt64) {
        guard let existing = registry.withLock({ $0.links[remoteID]?.channel }), existing.isOpen,
            !existing.answersPing(within: Self.stalePeerPing)
        else { return }
        resources.logger.notice(
            "cluster \(remoteID) linked again and its old link did not answer a ping: closing the old link")
        existing.close(.failed("cluster \(remoteID) linked again and this link did not answer a ping"))
    }

    /// Link `serial` closed (its service already voided the grants it held): forget it, remembering a broken link.
    private func forget(serial: UInt64, cluster: UInt64, reason: CloseReason) {
        registry.withLock { registry in
            guard registry.links[cluster]?.serial == serial else { return }
            registry.links[cluster] = nil
            if !reason.isDeliberate, !registry.unlinking.contains(serial) { registry.lost[cluster] = reason }
        }
        resources.logger.debug("link closed", metadata: ["cluster": "\(cluster)", "reason": "\(reason)"])
    }

    /// Why this instance will not link with the sender of `hello`, or nil.
    fileprivate func refusal(for hello: Hello) -> LLMError? {
        let clusterID = resources.clusterID
        let remoteAccessible = resources.config.enableRemoteCacheAccessible
        if hello.expectedClusterID != clusterID {
            return LLMError(
                .linkFailed,
                "cluster \(hello.clusterID) asked for cluster \(hello.expectedClusterID), but this is cluster \(clusterID)"
            )
        }
        if hello.clusterID == clusterID {
            return .paramInvalid("cluster \(hello.clusterID) tried to link to itself; cluster ids must be unique")
        }
        if hello.remoteCacheAccessible != remoteAccessible {
            return .paramInvalid(
                "enableRemoteCacheAccessible differs: cluster \(hello.clusterID) has \(hello.remoteCacheAccessible), cluster \(clusterID) has \(remoteAccessible)"
            )
        }
        return nil
    }
}

/// The link table's say in the handshake.
private struct Admission: LinkAdmission {
    let table: LinkTable
    /// The registered-memory regions the offer of this handshake publishes (over UCX).
    let offered: Set<UInt32>

    init(table: LinkTable, offer: LinkOffer) {
        self.table = table
        offered = Set(offer.regions.lazy.filter(\.isCallerMemory).map(\.descriptor.regionID))
    }

    func screen(_ hello: Hello) -> Refusal? { table.refusal(for: hello).map(Refusal.init) }

    func register(_ link: EstablishedLink) -> Result<PeerChannel, Refusal> {
        do throws(LLMError) {
            return .success(try table.register(link, offered: offered))
        } catch {
            return .failure(Refusal(error))
        }
    }

    func refusal(forFailedSetup problem: String) -> Refusal { Refusal(LLMError(.linkFailed, problem)) }

    func refusal(forUnavailableTransport problem: String) -> Refusal {
        Refusal(
            LLMError(.featureNotEnabled, "transport \(table.store.resources.config.transport.optionValue): \(problem)"))
    }

    func ucxNode() throws(LinkError) -> UCXNode { try table.ucx.node() }

    var mappingBudget: MappingBudget { table.mappingBudget }
}
