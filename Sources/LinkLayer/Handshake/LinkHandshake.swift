internal import Glibc

/// Sets links up. The client says hello over TCP; the server refuses there at once, or connects to the Unix
/// socket the hello names, where both exchange their regions (memfds) and the server welcomes the client. From
/// then on the Unix socket is the link's control connection; the TCP one only found the peer.
package enum LinkHandshake {
    /// How long the server side of a handshake may take.
    package static let serverTimeout: Duration = .seconds(10)

    /// The client side: links to the cluster `remoteID` expected at `endpoint`; `admission` registers the
    /// established link. The channel is started before it is returned.
    package static func connect(
        to endpoint: SocketEndpoint, expecting remoteID: UInt64, offer: LinkOffer, timeout: Duration,
        admission: some LinkAdmission
    ) throws(LinkError) -> PeerChannel {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        func io<T>(_ body: () throws(Socket.Failure) -> T) throws(LinkError) -> T {
            do {
                return try body()
            } catch {
                let what = error.timedOut ? "timed out after \(timeout)" : "\(error)"
                throw LinkError(.io, "link to cluster \(remoteID) at \(endpoint): \(what)")
            }
        }
        let unixName =
            offer.transport.offersSharedMemory
            ? "datadist.\(HostIdentity.processID).\(offer.clusterID).\(UInt64.random(in: 0...UInt64.max))" : ""
        // No Unix socket when only UCX may serve the link: the empty name tells the server so.
        let unixListener =
            unixName.isEmpty
            ? nil : try io { () throws(Socket.Failure) in try Socket.listenUnix(abstractName: unixName) }
        defer { unixListener?.close() }
        let tcp = try io { () throws(Socket.Failure) in try Socket.connectTCP(endpoint, until: deadline) }
        var tcpHandedOver = false
        defer { if !tcpHandedOver { tcp.close() } }
        let hello = Hello(
            clusterID: offer.clusterID, expectedClusterID: remoteID,
            remoteCacheAccessible: offer.remoteCacheAccessible, bootID: HostIdentity.bootID, unixSocket: unixName)
        let helloPayload = hello.encoded()
        try io { () throws(Socket.Failure) in
            try tcp.sendAll(Frame(kind: .hello, requestID: 1, payload: helloPayload).encoded())
        }
        var authentication = LinkAuthentication.Client(secret: offer.secret, hello: helloPayload)
        var tcpInbox = FrameInbox()
        // The server refuses at once (a refusal frame), challenges us first if it has a secret (then refuses or goes
        // on), and then either connects to our Unix socket to exchange regions or answers over TCP with its proof
        // (with a secret) and its UCX offer.
        while true {
            // Frames the server sent back to back (its proof and its UCX offer) may both be in the inbox already.
            let ready =
                tcpInbox.hasBufferedBytes
                ? 0
                : try io { () throws(Socket.Failure) in
                    try Socket.poll([tcp] + (unixListener.map { [$0] } ?? []), events: Int16(POLLIN), until: deadline)
                }
            guard let ready else {
                throw LinkError(.io, "link to cluster \(remoteID) at \(endpoint): timed out after \(timeout)")
            }
            if ready == 1 { break }
            let reply = try io { () throws(Socket.Failure) in
                try tcpInbox.receiveFrame(from: tcp, until: deadline, limit: UCXOffer.maxPayload)
            }
            do throws(LinkError) {
                if try authentication.answer(reply, on: tcp, until: deadline) { continue }
                if reply.kind == .proof {
                    try authentication.checkServerProof(reply)
                    continue
                }
                if reply.kind == .ucxOffer { try authentication.requireServerProven() }
            } catch {
                throw LinkError(error.kind, "link to cluster \(remoteID) at \(endpoint): \(error.message)")
            }
            if reply.kind == .ucxOffer {
                let channel = try UCXHandshake.join(
                    reply, on: tcp, inbox: tcpInbox, expecting: remoteID, at: endpoint, offer: offer,
                    admission: admission, until: deadline)
                tcpHandedOver = true
                return channel
            }
            try checkWelcome(reply, remoteID: remoteID, endpoint: endpoint)
            throw LinkError(
                .protocolViolation, "link to cluster \(remoteID) at \(endpoint): welcomed before the region exchange")
        }
        guard let unixListener else {
            throw LinkError(
                .protocolViolation, "link to cluster \(remoteID) at \(endpoint): no Unix socket to accept on")
        }
        let unix = try io { () throws(Socket.Failure) in
            guard let unix = unixListener.accept() else { throw Socket.Failure(operation: "accept", errno: errno) }
            return unix
        }
        var handedOver = false
        defer { if !handedOver { unix.close() } }
        do throws(LinkError) {
            try authentication.verifyServer(on: unix, until: deadline)
        } catch {
            throw LinkError(error.kind, "link to cluster \(remoteID) at \(endpoint): \(error.message)")
        }
        let (peerRegions, serverSharesKeys) = try io { () throws(Socket.Failure) in
            try RegionExchange.receiveAnnounced(
                from: unix, writable: offer.remoteCacheAccessible, budget: admission.mappingBudget, until: deadline)
        }
        try io { () throws(Socket.Failure) in
            try RegionExchange.send(
                offer.memfdRegions, to: unix, peerMayWrite: offer.remoteCacheAccessible,
                announcingKeys: offer.sharesKeys)
        }
        // Keys only when both sides share by key; otherwise the handshake is the memfd one alone.
        let keys = try io { () throws(Socket.Failure) -> IPCExchange.Keys in
            guard serverSharesKeys, offer.sharesKeys else { return IPCExchange.Keys() }
            let serverPID = try IPCExchange.receivePID(from: unix, until: deadline)
            try IPCExchange.sendPID(offer.deviceSharing, to: unix)
            return try IPCExchange.exchangeKeys(offer, peerPID: serverPID, on: unix, until: deadline)
        }
        // From here the data plane owns the keys: dropping it (a failed welcome) closes them.
        let dataPlane = SharedMemoryDataPlane(
            peerClusterID: remoteID, mappings: peerRegions, imports: keys.imports, exports: keys.exports,
            sharing: offer.deviceSharing)
        var inbox = FrameInbox()
        let welcome = try io { () throws(Socket.Failure) in try inbox.receiveFrame(from: unix, until: deadline) }
        try checkWelcome(welcome, remoteID: remoteID, endpoint: endpoint)
        // Whatever the peer sent right after the welcome is already in `inbox`; the connection reads on from there.
        let established = EstablishedLink(
            remoteClusterID: remoteID, socket: unix, inbox: inbox, dataPlane: dataPlane,
            pairing: DirectPairing(name: unixName, side: .linking))
        let channel = try admission.register(established).mapError { LinkError($0) }.get()
        handedOver = true
        try channel.start()
        return channel
    }

    /// Accepts `frame` only as a welcome from cluster `remoteID`; a refusal throws the peer's refusal, anything
    /// else a protocol violation. Package access for the handshake fuzz target.
    package static func checkWelcome(_ frame: Frame, remoteID: UInt64, endpoint: SocketEndpoint) throws(LinkError) {
        switch frame.kind {
        case .refusal:
            guard let refusal = try? Refusal(payload: frame.payload) else { break }
            throw LinkError(refusal)
        case .welcome:
            guard let welcome = try? ClusterIdentifier(payload: frame.payload) else { break }
            guard welcome.value == remoteID else {
                throw LinkError(
                    .protocolViolation,
                    "the peer at \(endpoint) is cluster \(welcome.value), but cluster \(remoteID) was asked for")
            }
            return
        default: break
        }
        throw LinkError(
            .protocolViolation, "the peer at \(endpoint) answered the link request with a malformed \(frame.kind) frame"
        )
    }

    /// The server side, on an accepted TCP connection (run it on its own thread; it closes `socket`).
    /// `admission` may refuse the hello and registers the established link. Refusals go back to the client;
    /// the outcome is returned for logging (nil: the connection was no link request, or a hello longer than
    /// `Hello.maxPayload`). Every step together takes at most `timeout`. `ticket`, the handshake's place among
    /// the listener's pending ones, is told when the hello arrived and finished before `socket` is closed.
    package static func accept(
        on socket: Socket, offer: LinkOffer, admission: some LinkAdmission, timeout: Duration = serverTimeout,
        ticket: PendingHandshakes.Ticket? = nil
    ) -> Result<PeerChannel, Refusal>? {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        // Closed here unless a link over UCX keeps it as its control connection.
        var keepSocket = false
        defer {
            ticket?.finish()
            if !keepSocket { socket.close() }
        }
        func refuse(_ refusal: Refusal, on channel: Socket) -> Result<PeerChannel, Refusal> {
            try? channel.sendAll(Frame(kind: .refusal, requestID: 1, payload: refusal.encoded()).encoded())
            return .failure(refusal)
        }
        var inbox = FrameInbox(capacity: Frame.headerSize + Hello.maxPayload)
        guard
            let frame = try? inbox.receiveFrame(from: socket, until: deadline, limit: Hello.maxPayload),
            frame.kind == .hello, let hello = try? Hello(payload: frame.payload)
        else { return nil }
        ticket?.receivedHello()
        let proof: LinkAuthentication.ServerProof?
        do throws(LinkError) {
            proof = try LinkAuthentication.challenge(
                hello: frame.payload, secret: offer.secret, on: socket, until: deadline)
        } catch {
            return refuse(admission.refusal(forFailedSetup: "cluster \(hello.clusterID): \(error.message)"), on: socket)
        }
        if let refusal = admission.screen(hello) { return refuse(refusal, on: socket) }
        let unix: Socket
        switch connectForMemfdExchange(hello, offer: offer, until: deadline) {
        case .connected(let connected):
            unix = connected
        case .unavailable(let why):
            guard offer.transport.allowsUCX else {
                return refuse(admission.refusal(forUnavailableTransport: why), on: socket)
            }
            let outcome = UCXHandshake.serve(
                on: socket, hello: hello, offer: offer, proof: proof, admission: admission, until: deadline)
            if case .success = outcome { keepSocket = true }
            return outcome
        }
        let peerRegions: [PeerMapping]
        let keys: IPCExchange.Keys
        do throws(Socket.Failure) {
            let pushes = offer.remoteCacheAccessible && hello.remoteCacheAccessible
            try proof?.send(on: unix, until: deadline)
            try RegionExchange.send(
                offer.memfdRegions, to: unix, peerMayWrite: pushes, announcingKeys: offer.sharesKeys)
            let clientSharesKeys: Bool
            (peerRegions, clientSharesKeys) = try RegionExchange.receiveAnnounced(
                from: unix, writable: pushes, budget: admission.mappingBudget, until: deadline)
            // The side without keys is an emulator when it maps its pools by memfd: then neither side can reach
            // the other's device pool. (A peer announcing nothing at all may still link: it has nothing to reach.)
            let emulatorSide = offer.sharesKeys ? !peerRegions.isEmpty : !offer.memfdRegions.isEmpty
            if clientSharesKeys != offer.sharesKeys, emulatorSide {
                // On the Unix socket, where the client now waits for its welcome.
                defer { unix.close() }
                return refuse(
                    admission.refusal(
                        forUnavailableTransport: mixedBackends(
                            client: hello.clusterID, clientSharesKeys: clientSharesKeys, offer: offer)),
                    on: unix)
            }
            if clientSharesKeys, offer.sharesKeys {
                try IPCExchange.sendPID(offer.deviceSharing, to: unix)
                let clientPID = try IPCExchange.receivePID(from: unix, until: deadline)
                keys = try IPCExchange.exchangeKeys(offer, peerPID: clientPID, on: unix, until: deadline)
            } else {
                keys = IPCExchange.Keys()
            }
        } catch {
            unix.close()
            return refuse(
                admission.refusal(forFailedSetup: "region exchange with cluster \(hello.clusterID) failed: \(error)"),
                on: socket)
        }
        let established = EstablishedLink(
            remoteClusterID: hello.clusterID, socket: unix, inbox: FrameInbox(),
            dataPlane: SharedMemoryDataPlane(
                peerClusterID: hello.clusterID, mappings: peerRegions, imports: keys.imports, exports: keys.exports,
                sharing: offer.deviceSharing),
            pairing: DirectPairing(name: hello.unixSocket, side: .listening))
        return admit(established, offer: offer, admission: admission) { refusal in
            defer { unix.close() }
            return refuse(refusal, on: unix)
        }
    }

    /// Why a same-host link between a side that shares its device pool by IPC key (the ACL backend) and one
    /// that maps its pools by memfd instead (the emulator) is refused at once: neither could reach the other's
    /// device pool, so every grant would fail.
    static func mixedBackends(client: UInt64, clientSharesKeys: Bool, offer: LinkOffer) -> String {
        func says(_ keys: Bool) -> String {
            keys
                ? "shares its device pool by IPC key (the acl backend)"
                : "shares its pools by memfd, not by IPC key (the emulator backend)"
        }
        return
            "cluster \(client) \(says(clientSharesKeys)) and cluster \(offer.clusterID) \(says(offer.sharesKeys)): the memfd mapping cannot join them; link over UCX (DATADIST_TRANSPORT=ucx), which stages the acl side's device memory"
    }

    /// The server's last steps, on either data plane: registers `established` (or answers `refuse` with the
    /// admission's refusal), starts its reader and welcomes the client.
    static func admit(
        _ established: EstablishedLink, offer: LinkOffer, admission: some LinkAdmission,
        refuse: (Refusal) -> Result<PeerChannel, Refusal>
    ) -> Result<PeerChannel, Refusal> {
        let channel: PeerChannel
        switch admission.register(established) {
        case .success(let registered): channel = registered
        case .failure(let refusal): return refuse(refusal)
        }
        // The reader may start first: the client sends nothing before it has the welcome.
        do throws(LinkError) {
            try channel.start()
        } catch {
            return .failure(admission.refusal(forFailedSetup: error.message))
        }
        do throws(Socket.Failure) {
            try channel.connection.send(
                Frame(kind: .welcome, requestID: 1, payload: ClusterIdentifier(offer.clusterID).encoded()))
        } catch {
            channel.connection.close(.failed("sending the welcome failed: \(error)"))
        }
        return .success(channel)
    }
}

/// The application's say in setting up links: `DataDist` implements it.
package protocol LinkAdmission {
    /// A refusal for a hello this side will not link with, or nil.
    func screen(_ hello: Hello) -> Refusal?
    /// Makes the established link a channel (answering requests with the application's `LinkService`) and
    /// records it, or refuses it (e.g. the cluster is linked already).
    func register(_ link: EstablishedLink) -> Result<PeerChannel, Refusal>
    /// The refusal sent when setting the link up failed on this side, for `problem`.
    func refusal(forFailedSetup problem: String) -> Refusal
    /// What the peer's regions may take of this process's address space.
    var mappingBudget: MappingBudget { get }
    /// The instance's UCX node (see `TransportChoice.swift` for the default of an application without UCX).
    func ucxNode() throws(LinkError) -> UCXNode
    /// The refusal sent when the link needs a transport this side does not offer.
    func refusal(forUnavailableTransport problem: String) -> Refusal
}
