import BlockPool
import DeviceRuntime
import Logging
import Synchronization

internal import Glibc

/// Link management: listening, the link handshake, unlinking. A link is one TCP control connection plus the two
/// sides' pools, exchanged as memfd descriptors over a Unix socket and mapped by the peer.
extension CacheManager {
    static let handshakeTimeout: Duration = .seconds(10)
    /// Longer link and unlink timeouts are treated as this (a day is "wait as long as it takes").
    static let longestTimeout: Duration = .seconds(86_400)

    /// The endpoint this instance listens on, with the port actually bound.
    var listenEndpoint: IPEndpoint? { links.withLock { $0.listener?.endpoint } }

    var linkCount: Int { links.withLock { $0.links.count } }

    /// Starts serving link requests on exactly `endpoint` (port 0 picks a free port).
    func startListening(on endpoint: IPEndpoint) throws(LLMError) {
        let socket: Socket
        let port: UInt16
        do {
            (socket, port) = try Socket.listenTCP(endpoint)
        } catch {
            throw LLMError(.failed, "cannot listen on \(endpoint): \(error)")
        }
        let bound = IPEndpoint(host: endpoint.host, port: port)
        let listener = Listener(endpoint: bound, socket: socket) { [weak self] connection in
            guard let self else { return connection.close() }
            WorkerThread.detach { self.acceptLink(on: connection) }
        }
        let previous = links.withLock { registry in
            defer { registry.listener = listener }
            return registry.listener
        }
        previous?.stop()
        context.logger.debug("listening", metadata: ["endpoint": "\(bound)"])
    }

    func stopListening() {
        links.withLock { registry in
            defer { registry.listener = nil }
            return registry.listener
        }?.stop()
    }

    /// Links to each cluster (in parallel). Overall success only if every cluster linked; otherwise the code of
    /// the last failing cluster.
    func link(_ clusters: [LLMClusterInfo], timeout: Duration) -> (LLMStatusCode, [LLMStatusCode]) {
        guard !clusters.isEmpty else {
            context.logger.warning("linkClusters got an empty cluster list")
            return (.paramInvalid, [])
        }
        guard timeout > .zero else {
            context.logger.warning("linkClusters timeout \(timeout) must be > 0")
            return (.paramInvalid, [])
        }
        let timeout = min(timeout, Self.longestTimeout)
        let results = forEachInParallel(clusters) { (cluster: LLMClusterInfo) -> LLMStatusCode in
            do throws(LLMError) {
                try self.link(cluster, timeout: timeout)
                return .success
            } catch {
                self.context.logger.warning(
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
            let link = self.links.withLock { registry in
                defer { registry.lost[cluster.remoteClusterID] = nil }
                return registry.links[cluster.remoteClusterID]
            }
            guard let link else { return .success }
            if !force {
                do {
                    _ = try link.connection.request(
                        .unlink, IdentifierMessage(self.context.clusterID).encoded(), timeout: timeout,
                        what: "unlink")
                } catch {
                    self.context.logger.warning("unlink from cluster \(cluster.remoteClusterID) failed: \(error)")
                    return .unlinkFailed
                }
            }
            self.tearDown(link, reason: force ? DeliberateClose.forced : DeliberateClose.unlinked)
            link.connection.join()
            return .success
        }
        return (results.last { $0 != .success } ?? .success, results)
    }

    /// Unlinks everything (telling peers, briefly) and stops listening: finalize.
    func closeLinks() {
        stopListening()
        let all = links.withLock { registry in
            registry.isClosed = true
            return Array(registry.links.values)
        }
        for link in all {
            _ = try? link.connection.request(
                .unlink, IdentifierMessage(context.clusterID).encoded(), timeout: .milliseconds(200), what: "finalize")
            tearDown(link, reason: DeliberateClose.finalized)
            link.connection.join()
        }
    }

    /// Closes a link's connection; its close handler forgets the link and releases every pin its peer held.
    func tearDown(_ link: PeerLink, reason: String) {
        link.connection.close(reason)
    }

    func link(to clusterID: UInt64, for operation: String) throws(LLMError) -> PeerLink {
        let (link, lostReason) = links.withLock { ($0.links[clusterID], $0.lost[clusterID]) }
        guard let link, link.connection.isOpen else {
            if let reason = lostReason {
                throw LLMError(
                    .linkFailed, "\(operation): the link to cluster \(clusterID) failed (\(reason)); unlink and link again")
            }
            throw LLMError(.notYetLink, "\(operation): cluster \(clusterID) is not linked; call linkClusters first")
        }
        return link
    }

    // MARK: client side

    private func link(_ cluster: LLMClusterInfo, timeout: Duration) throws(LLMError) {
        let remoteID = cluster.remoteClusterID
        guard cluster.remoteIPInfos.count == 1, let endpoint = cluster.remoteIPInfos.first else {
            throw .paramInvalid(
                "cluster \(remoteID) has \(cluster.remoteIPInfos.count) remoteIPInfos; exactly one is needed")
        }
        guard remoteID != context.clusterID else {
            throw .paramInvalid("cannot link cluster \(remoteID) to itself; cluster ids must be unique")
        }
        if links.withLock({ $0.links[remoteID] }) != nil {
            throw LLMError(.alreadyLink, "cluster \(remoteID) is already linked")
        }
        let deadline = ContinuousClock.now.advanced(by: timeout)
        func io<T>(_ body: () throws(Socket.Failure) -> T) throws(LLMError) -> T {
            do {
                return try body()
            } catch {
                let what = error.timedOut ? "timed out after \(timeout)" : "\(error)"
                throw LLMError(.linkFailed, "link to cluster \(remoteID) at \(endpoint): \(what)")
            }
        }
        let unixName = "datadist.\(HostIdentity.processID).\(context.clusterID).\(UInt64.random(in: 0...UInt64.max))"
        let unixListener = try io { () throws(Socket.Failure) in try Socket.listenUnix(abstractName: unixName) }
        defer { unixListener.close() }
        let tcp = try io { () throws(Socket.Failure) in try Socket.connectTCP(endpoint, until: deadline) }
        defer { tcp.close() }
        let hello = HelloMessage(
            clusterID: context.clusterID, expectedClusterID: remoteID,
            remoteCacheAccessible: context.config.enableRemoteCacheAccessible, bootID: HostIdentity.bootID,
            unixSocket: unixName)
        try io { () throws(Socket.Failure) in
            try tcp.sendAll(Frame(kind: .hello, requestID: 1, payload: hello.encoded()).encoded())
        }
        // The server either refuses at once (a failure frame) or connects to our Unix socket to exchange pools.
        let ready = try io { () throws(Socket.Failure) in
            try Socket.poll([tcp, unixListener], events: Int16(POLLIN), until: deadline)
        }
        guard let ready else {
            throw LLMError(.linkFailed, "link to cluster \(remoteID) at \(endpoint): timed out after \(timeout)")
        }
        guard ready == 1 else {
            var inbox = FrameInbox()
            let reply = try io { () throws(Socket.Failure) in try inbox.receiveFrame(from: tcp, until: deadline) }
            try checkWelcome(reply, remoteID: remoteID, endpoint: endpoint)
            throw LLMError(.linkFailed, "link to cluster \(remoteID) at \(endpoint): welcomed before the pool exchange")
        }
        let unix = try io { () throws(Socket.Failure) in
            guard let unix = unixListener.accept() else { throw Socket.Failure(operation: "accept", errno: errno) }
            return unix
        }
        var handedOver = false
        defer { if !handedOver { unix.close() } }
        let peerPools = try io { () throws(Socket.Failure) in try receivePools(from: unix, until: deadline) }
        try io { () throws(Socket.Failure) in try sendPools(to: unix) }
        // From here on the Unix socket is the control connection; the TCP one only found the peer.
        var inbox = FrameInbox()
        let welcome = try io { () throws(Socket.Failure) in try inbox.receiveFrame(from: unix, until: deadline) }
        try checkWelcome(welcome, remoteID: remoteID, endpoint: endpoint)
        // Whatever the peer sent right after the welcome is already in `inbox`; the connection reads on from there.
        let link = try register(remoteID: remoteID, socket: unix, mappings: peerPools, inbox: inbox)
        handedOver = true
        link.connection.start()
    }

    private func checkWelcome(_ frame: Frame, remoteID: UInt64, endpoint: IPEndpoint) throws(LLMError) {
        switch frame.kind {
        case .failure:
            guard let failure = try? FailureMessage(payload: frame.payload) else { break }
            throw failure.error
        case .welcome:
            guard let welcome = try? IdentifierMessage(payload: frame.payload) else { break }
            guard welcome.value == remoteID else {
                throw LLMError(
                    .linkFailed,
                    "the peer at \(endpoint) is cluster \(welcome.value), but cluster \(remoteID) was asked for")
            }
            return
        default: break
        }
        throw LLMError(.linkFailed, "the peer at \(endpoint) answered the link request with a malformed \(frame.kind) frame")
    }

    // MARK: server side

    /// Runs the server half of a handshake on an accepted connection (on its own thread). The hello and early
    /// refusals travel over TCP; the pools, the welcome and all later frames over the client's Unix socket.
    private func acceptLink(on socket: Socket) {
        let deadline = ContinuousClock.now.advanced(by: Self.handshakeTimeout)
        defer { socket.close() }
        func refuse(_ error: LLMError, on channel: Socket) {
            context.logger.notice("refused a link request: \(error)")
            try? channel.sendAll(Frame(kind: .failure, requestID: 1, payload: FailureMessage(error).encoded()).encoded())
        }
        var inbox = FrameInbox()
        guard let frame = try? inbox.receiveFrame(from: socket, until: deadline), frame.kind == .hello,
            let hello = try? HelloMessage(payload: frame.payload)
        else { return }
        if let refusal = refusal(for: hello) { return refuse(refusal, on: socket) }
        do throws(Socket.Failure) {
            let unix = try Socket.connectUnix(abstractName: hello.unixSocket)
            var handedOver = false
            defer { if !handedOver { unix.close() } }
            try sendPools(to: unix)
            let peerPools = try receivePools(from: unix, until: deadline)
            let link: PeerLink
            do {
                link = try register(remoteID: hello.clusterID, socket: unix, mappings: peerPools)
            } catch {
                return refuse(error, on: unix)
            }
            handedOver = true
            // The reader may start first: the client sends nothing before it has the welcome.
            link.connection.start()
            let welcome = Frame(kind: .welcome, requestID: 1, payload: IdentifierMessage(context.clusterID).encoded())
            do {
                try link.connection.send(welcome)
            } catch {
                link.connection.close("sending the welcome failed: \(error)")
            }
        } catch {
            refuse(LLMError(.linkFailed, "pool exchange with cluster \(hello.clusterID) failed: \(error)"), on: socket)
        }
    }

    private func refusal(for hello: HelloMessage) -> LLMError? {
        if hello.bootID != HostIdentity.bootID {
            return LLMError(
                .featureNotEnabled,
                "cross-host transport not available yet: cluster \(hello.clusterID) runs on another host (boot id \(hello.bootID), this host \(HostIdentity.bootID))")
        }
        if hello.expectedClusterID != context.clusterID {
            return LLMError(
                .linkFailed,
                "cluster \(hello.clusterID) asked for cluster \(hello.expectedClusterID), but this is cluster \(context.clusterID)")
        }
        if hello.clusterID == context.clusterID {
            return .paramInvalid("cluster \(hello.clusterID) tried to link to itself; cluster ids must be unique")
        }
        if hello.remoteCacheAccessible != context.config.enableRemoteCacheAccessible {
            return .paramInvalid(
                "enableRemoteCacheAccessible differs: cluster \(hello.clusterID) has \(hello.remoteCacheAccessible), cluster \(context.clusterID) has \(context.config.enableRemoteCacheAccessible)")
        }
        return nil
    }

    // MARK: both sides

    /// Adds an established link. A live link to the same cluster is refused; a dead one is replaced.
    private func register(
        remoteID: UInt64, socket: Socket, mappings: [PeerMapping], inbox: FrameInbox = FrameInbox()
    ) throws(LLMError) -> PeerLink {
        try links.withLock { registry throws(LLMError) in
            guard !registry.isClosed else { throw LLMError(.failed, "cluster \(context.clusterID) was finalized") }
            if let existing = registry.links[remoteID] {
                guard !existing.connection.isOpen else {
                    throw LLMError(.alreadyLink, "cluster \(remoteID) is already linked to cluster \(context.clusterID)")
                }
                registry.links[remoteID] = nil
            }
            let serial = registry.takeSerial()
            let connection = PeerConnection(
                socket: socket, peerClusterID: remoteID, logger: context.logger,
                handler: { [weak self] frame in
                    self?.handlePeerRequest(frame, link: serial, peer: remoteID)
                        ?? PeerConnection.Reply(frame: nil, closeAfterwards: true)
                },
                inbox: inbox,
                onClose: { [weak self] reason in self?.linkClosed(serial: serial, peer: remoteID, reason: reason) })
            let link = PeerLink(serial: serial, remoteClusterID: remoteID, connection: connection, mappings: mappings)
            registry.links[remoteID] = link
            registry.lost[remoteID] = nil
            return link
        }
    }

    /// The connection of link `serial` closed: forget the link and release what its peer had pinned.
    private func linkClosed(serial: UInt64, peer: UInt64, reason: String) {
        links.withLock { registry in
            guard registry.links[peer]?.serial == serial else { return }
            registry.links[peer] = nil
            if !DeliberateClose.all.contains(reason) { registry.lost[peer] = reason }
        }
        table.withLock { $0.releasePins(of: serial) }
        context.logger.debug("link closed", metadata: ["peer": "\(peer)", "reason": "\(reason)"])
    }

    /// The pools this instance shares with peers: those the runtime can hand to another process.
    private var offeredPools: [(PoolDescriptor, Int32)] {
        sharedPools.compactMap { id, pool in
            guard let shared = pool.region.shared, shared.offset == 0 else { return nil }
            let placement: Placement = pool.placement == .host ? .host : .device
            return (PoolDescriptor(poolID: id, placement: placement, size: UInt64(pool.region.size)), shared.fd)
        }
    }

    private func sendPools(to unix: Socket) throws(Socket.Failure) {
        let pools = offeredPools
        var header = WireWriter()
        header.u32(UInt32(pools.count))
        try unix.send(header.bytes, passing: -1)
        for (descriptor, fd) in pools {
            var writer = WireWriter()
            descriptor.encode(into: &writer)
            try unix.send(writer.bytes, passing: fd)
        }
    }

    private func receivePools(from unix: Socket, until deadline: ContinuousClock.Instant) throws(Socket.Failure) -> [PeerMapping] {
        let (header, stray) = try unix.receive(count: 4, until: deadline)
        if stray >= 0 { _ = Glibc.close(stray) }
        var reader = WireReader(header[...])
        guard let count = try? reader.u32(), count <= 16 else { throw Socket.Failure(operation: "pool count", errno: EPROTO) }
        var mappings: [PeerMapping] = []
        for _ in 0..<count {
            let (bytes, fd) = try unix.receive(count: PoolDescriptor.encodedSize, until: deadline)
            var reader = WireReader(bytes[...])
            guard fd >= 0, let descriptor = try? PoolDescriptor(from: &reader) else {
                if fd >= 0 { _ = Glibc.close(fd) }
                throw Socket.Failure(operation: "pool descriptor", errno: EPROTO)
            }
            mappings.append(
                try PeerMapping(fd: fd, descriptor: descriptor, writable: context.config.enableRemoteCacheAccessible))
        }
        return mappings
    }

    /// Runs `body` for each element on its own thread (up to 16 at once) and returns the results in order.
    private func forEachInParallel<Element: Sendable>(
        _ elements: [Element], _ body: @escaping @Sendable (Element) -> LLMStatusCode
    ) -> [LLMStatusCode] {
        guard elements.count > 1 else { return elements.map(body) }
        let results = ResultSlots(count: elements.count)
        for batch in stride(from: 0, to: elements.count, by: 16) {
            let threads = (batch..<min(batch + 16, elements.count)).map { index in
                WorkerThread.start { results.set(index, body(elements[index])) }
            }
            threads.forEach { $0.join() }
        }
        return results.values
    }
}

/// Results written by worker threads, read after they are joined.
private final class ResultSlots: Sendable {
    private let slots: Mutex<[LLMStatusCode]>
    init(count: Int) { slots = Mutex(Array(repeating: .failed, count: count)) }
    func set(_ index: Int, _ value: LLMStatusCode) { slots.withLock { $0[index] = value } }
    var values: [LLMStatusCode] { slots.withLock { $0 } }
}
