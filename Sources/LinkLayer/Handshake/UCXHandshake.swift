/// The UCX part of a link's handshake, over the TCP connection of the hello, which then stays the link's control
/// connection. The server sends its `ucxOffer` (worker address, regions, remote keys); the client opens its
/// endpoint to the server's worker (connected, no wireup requested) and answers with its own offer (or a
/// refusal); the server opens its endpoint to the client's worker, which runs UCX's wireup (the client's worker
/// answers it at once, over the connection its endpoint made), and welcomes it.
enum UCXHandshake {
    /// The server side, after the hello was accepted and the memfd exchange was not made. On success the channel
    /// owns `tcp`.
    static func serve(
        on tcp: Socket, hello: Hello, offer: LinkOffer, proof: LinkAuthentication.ServerProof?,
        admission: some LinkAdmission, until deadline: ContinuousClock.Instant
    ) -> Result<PeerChannel, Refusal> {
        func refuse(_ refusal: Refusal) -> Result<PeerChannel, Refusal> {
            try? tcp.sendAll(Frame(kind: .refusal, requestID: 1, payload: refusal.encoded()).encoded())
            return .failure(refusal)
        }
        let peer = hello.clusterID
        let node: UCXNode
        let mine: UCXOffer
        do throws(LinkError) {
            node = try admission.ucxNode()
            mine = try node.offer(
                of: offer.regions, remoteWrite: offer.remoteCacheAccessible && hello.remoteCacheAccessible)
        } catch {
            return refuse(admission.refusal(forUnavailableTransport: "cluster \(peer): \(error.message)"))
        }
        var inbox = FrameInbox()
        let reply: Frame
        do throws(Socket.Failure) {
            try proof?.send(on: tcp, until: deadline)
            try tcp.sendAll(Frame(kind: .ucxOffer, requestID: 1, payload: mine.encoded()).encoded())
            reply = try inbox.receiveFrame(from: tcp, until: deadline, limit: UCXOffer.maxPayload)
        } catch {
            return refuse(admission.refusal(forFailedSetup: "UCX exchange with cluster \(peer) failed: \(error)"))
        }
        if reply.kind == .refusal, let refusal = try? Refusal(payload: reply.payload) { return .failure(refusal) }
        guard reply.kind == .ucxOffer, let theirs = try? UCXOffer(payload: reply.payload) else {
            return refuse(
                admission.refusal(
                    forFailedSetup: "cluster \(peer) answered the UCX offer with a malformed \(reply.kind)"))
        }
        let dataPlane: UCXDataPlane
        do throws(LinkError) {
            dataPlane = try UCXDataPlane(
                node: node, peerClusterID: peer, offer: theirs, local: mine.regions, wiresUp: true, until: deadline)
        } catch {
            return refuse(admission.refusal(forFailedSetup: "cluster \(peer): \(error.message)"))
        }
        let established = EstablishedLink(
            remoteClusterID: peer, socket: tcp, inbox: inbox, dataPlane: dataPlane)
        return LinkHandshake.admit(established, offer: offer, admission: admission, refuse: refuse)
    }

    /// The client side, given the server's `ucxOffer` frame read from `inbox`. On success the channel owns `tcp`.
    static func join(
        _ frame: Frame, on tcp: Socket, inbox: FrameInbox, expecting remoteID: UInt64, at endpoint: SocketEndpoint,
        offer: LinkOffer, admission: some LinkAdmission, until deadline: ContinuousClock.Instant
    ) throws(LinkError) -> PeerChannel {
        let what = "link to cluster \(remoteID) at \(endpoint)"
        func refuse(_ refusal: Refusal) -> LinkError {
            try? tcp.sendAll(Frame(kind: .refusal, requestID: 1, payload: refusal.encoded()).encoded())
            return LinkError(refusal)
        }
        guard offer.transport.allowsUCX else {
            throw refuse(
                admission.refusal(
                    forUnavailableTransport:
                        "\(what): the peer offers only UCX (it is on another host, or its memfd exchange failed), and this side's transport is shared memory"
                ))
        }
        guard let theirs = try? UCXOffer(payload: frame.payload) else {
            throw refuse(admission.refusal(forFailedSetup: "\(what): a malformed UCX offer"))
        }
        let node: UCXNode
        let mine: UCXOffer
        do throws(LinkError) {
            node = try admission.ucxNode()
            mine = try node.offer(of: offer.regions, remoteWrite: offer.remoteCacheAccessible)
        } catch {
            throw refuse(admission.refusal(forUnavailableTransport: "\(what): \(error.message)"))
        }
        // This side's endpoint first, connected (its flush waits for UCX's TCP connection to the server's worker)
        // but requesting no wireup; the server's endpoint, made once it has this side's offer, requests it, and
        // this worker answers at once over that connection. UCX 1.13 aborts a process that holds such an answer
        // unsent when its peer fails ("ucp_request.c: Assertion ... got REP message"): the server never answers
        // one (a decoder killed while linking cannot take the prompt down), and this side's answer never waits
        // for a connection to a prompt that may be dying (when the server's endpoint came first, the answer
        // waited for this worker's connection back to it, and a prompt SIGKILLed then aborted the decoder).
        let dataPlane: UCXDataPlane
        do throws(LinkError) {
            dataPlane = try UCXDataPlane(
                node: node, peerClusterID: remoteID, offer: theirs, local: mine.regions, wiresUp: false,
                until: deadline)
        } catch {
            throw refuse(admission.refusal(forFailedSetup: "\(what): \(error.message)"))
        }
        var inbox = inbox
        let welcome: Frame
        do throws(Socket.Failure) {
            try tcp.sendAll(Frame(kind: .ucxOffer, requestID: 1, payload: mine.encoded()).encoded())
            welcome = try inbox.receiveFrame(from: tcp, until: deadline)
        } catch {
            throw LinkError(.io, "\(what): \(error.timedOut ? "timed out" : "\(error)")")
        }
        try LinkHandshake.checkWelcome(welcome, remoteID: remoteID, endpoint: endpoint)
        let established = EstablishedLink(remoteClusterID: remoteID, socket: tcp, inbox: inbox, dataPlane: dataPlane)
        let channel = try admission.register(established).mapError { LinkError($0) }.get()
        try channel.start()
        return channel
    }
}
