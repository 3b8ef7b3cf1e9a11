import DeviceRuntime
import Logging

/// An established link as the requester uses it: typed requests over the control connection, and the data
/// plane that moves the bytes a grant allows.
package final class PeerChannel: Sendable {
    package let remoteClusterID: UInt64
    package let connection: ControlConnection
    package let dataPlane: any DataPlane
    /// When the peer lives in this process: the route its requests and releases take instead of the socket
    /// (none with injected faults, which act on the socket, nor where the owner delivers or receives the bytes).
    private let route: DirectRoute?
    private let side: DirectRoute.Side

    /// A channel over `socket` whose incoming requests `service` answers. Call `start()` to begin reading.
    /// `sendTimeout` bounds how long one frame's send waits for the peer to read (then the link fails);
    /// `pairing` names the handshake's meeting point, for a direct route to a peer in this process.
    package init(
        remoteClusterID: UInt64, socket: Socket, inbox: FrameInbox, dataPlane: any DataPlane,
        service: any LinkService, logger: Logger, faults: FaultPlan? = nil,
        sendTimeout: Duration = ControlConnection.defaultSendTimeout, pairing: DirectPairing? = nil
    ) {
        self.remoteClusterID = remoteClusterID
        self.dataPlane = dataPlane
        let direct =
            faults == nil && !dataPlane.ownerDeliversReads && !dataPlane.ownerReceivesWrites
            && pairing.map { !$0.name.isEmpty } == true
        route = direct ? pairing.map { DirectRoutes.route(named: $0.name) } : nil
        side = pairing?.side ?? .linking
        let dispatcher = ServiceDispatcher(
            service: service, dataPlane: dataPlane, peerClusterID: remoteClusterID, logger: logger, route: route)
        connection = ControlConnection(
            socket: socket, peerClusterID: remoteClusterID, logger: logger, handler: dispatcher, inbox: inbox,
            faults: faults, sendTimeout: sendTimeout)
        route?.join(dispatcher, as: side)
    }

    /// Frames this link's two sides served each other directly, without the socket (its peer lives in this
    /// process); 0 over a socket.
    package var directFrames: UInt64 { route?.servedFrames ?? 0 }

    package func start() throws(LinkError) { try connection.start() }

    package var isOpen: Bool { connection.isOpen }

    /// Why the link closed, or nil while it is open.
    package var closeReason: CloseReason? { connection.closeReason }

    /// Asks the owner to resolve and pin `request`.
    package func resolve(_ request: ResolveRequest, timeout: Duration, what: String) throws(LinkError) -> Grant {
        try grant(of: self.request(.resolve, request.encoded(), timeout: timeout, what: what), what: what)
    }

    /// A grant whose bytes the owner sent with it (`resolveDelivering`).
    package struct DeliveredGrant: Sendable {
        package var grant: Grant
        /// The bytes on their way, when the grant matched (`DeliveringResolve.matches`); the caller waits
        /// for them and finishes it. Nil: nothing was sent.
        package var delivery: (any IncomingDelivery)?
        /// When waiting for them must end (the request's timeout, counted from its start).
        package var deadline: ContinuousClock.Instant
    }

    /// Asks the owner to resolve and pin a slot read and to send its `bytesPerSlot` bytes of each tensor into
    /// `destinations` (one per tensor) before the grant: one round trip where two would be (`resolve`, then
    /// `deliver`). Only where the owner delivers reads (`DataPlane.ownerDeliversReads`).
    package func resolveDelivering(
        _ request: ResolveRequest, into destinations: [UInt], tensorCount: UInt32, timeout: Duration, what: String
    ) throws(LinkError) -> DeliveredGrant {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        let count = Int(request.bytesPerSlot)
        // Which extents the bytes come from is the owner's to pick; what is expected is where they land.
        let delivery = try dataPlane.expectDelivery(
            of: destinations.map {
                ExtentMove(local: $0, remote: Grant.Extent(regionID: 0, offset: 0, length: UInt64(count)), count: count)
            })
        let delivering = DeliveringResolve(
            resolve: request, token: delivery.token, tensorCount: tensorCount,
            destinations: destinations.map(UInt64.init))
        let grant: Grant
        do throws(LinkError) {
            grant = try self.grant(
                of: connection.request(.resolveDelivering, delivering.encoded(), timeout: timeout, what: what),
                what: what)
        } catch {
            delivery.finish()
            throw error
        }
        guard delivering.matches(grant) else {
            delivery.finish()
            return DeliveredGrant(grant: grant, delivery: nil, deadline: deadline)
        }
        return DeliveredGrant(grant: grant, delivery: delivery, deadline: deadline)
    }

    /// Asks the owner to resolve every item of `request` under one pin.
    package func resolveBatch(_ request: BatchResolveRequest, timeout: Duration, what: String) throws(LinkError)
        -> Grant
    {
        try grant(of: self.request(.batchResolve, request.encoded(), timeout: timeout, what: what), what: what)
    }

    /// Sends a request of `kind` and waits up to `timeout` for its reply (a refusal is thrown as `.refused`):
    /// served by the peer's dispatcher on this thread when the peer lives in this process and the link is open,
    /// otherwise over the connection. Package access for the tests of the direct route.
    package func request(_ kind: MessageKind, _ payload: [UInt8], timeout: Duration, what: String) throws(LinkError)
        -> Frame
    {
        guard let route, Self.travelsDirectly(kind) else {
            return try connection.request(kind, payload, timeout: timeout, what: what)
        }
        let start = ContinuousClock.now
        guard
            let outcome = connection.inPlaceOfSending({
                route.serve(Frame(kind: kind, requestID: 0, payload: payload), from: side)
            }), let served = outcome
        else {
            return try connection.request(kind, payload, timeout: timeout, what: what)
        }
        guard let reply = served.frame else {
            throw LinkError(.protocolViolation, "\(what): cluster \(remoteClusterID) did not answer the \(kind)")
        }
        if ContinuousClock.now - start > timeout {
            // As over the socket: a grant nobody waits for any more is given back at once.
            if reply.kind == .grant, let grant = try? Grant(payload: reply.payload) {
                release(pinID: grant.pinID, succeeded: false)
            }
            throw LinkError(.timedOut, "\(what): cluster \(remoteClusterID) did not answer within \(timeout)")
        }
        return try connection.answer(reply, what: what)
    }

    /// Carries out `moves` of grant `pinID` in `direction` within `timeout`: by the data plane, or, for a read
    /// where the owner delivers (`DataPlane.ownerDeliversReads`), by asking the owner to send them (one
    /// `deliver` round trip per `DeliveryRequest.maxMoves` moves) and waiting until they landed; for a write
    /// where the owner receives (`ownerReceivesWrites`), by having the owner open a delivery (`accept`), sending
    /// the bytes into it, and waiting for the owner to say they all landed (`landed`).
    package func transfer<CopyFailure: Error>(
        _ moves: [ExtentMove], _ direction: TransferDirection, pinID: UInt64, timeout: Duration, what: String,
        copy: ([CopySegment]) throws(CopyFailure) -> Void
    ) throws(TransferFailure<CopyFailure>) {
        let delivered = direction == .read ? dataPlane.ownerDeliversReads : dataPlane.ownerReceivesWrites
        guard delivered else {
            try dataPlane.transfer(moves, direction, copy: copy)
            return
        }
        let deadline = ContinuousClock.now.advanced(by: timeout)
        let moves = moves.filter { $0.count != 0 }
        var start = 0
        while start < moves.count {
            let end = min(moves.count, start + DeliveryRequest.maxMoves)
            do throws(LinkError) {
                let part = Array(moves[start..<end])
                if direction == .read {
                    try receive(part, pinID: pinID, until: deadline, what: what)
                } else {
                    try send(part, pinID: pinID, until: deadline, what: what)
                }
            } catch {
                throw .link(error)
            }
            start = end
        }
    }

    /// One `deliver` round trip: `moves` are expected, asked for, and waited for.
    private func receive(_ moves: [ExtentMove], pinID: UInt64, until deadline: ContinuousClock.Instant, what: String)
        throws(LinkError)
    {
        let delivery = try dataPlane.expectDelivery(of: moves)
        defer { delivery.finish() }
        let request = DeliveryRequest(
            pinID: pinID, token: delivery.token,
            moves: moves.map { move in
                DeliveryRequest.Move(
                    regionID: move.remote.regionID, offset: move.remote.offset, count: UInt64(move.count),
                    destination: UInt64(move.local))
            })
        let left = ContinuousClock.now.duration(to: deadline)
        guard left > .zero else { throw LinkError(.timedOut, "\(what): timed out before the delivery was asked for") }
        _ = try connection.request(.deliver, request.encoded(), timeout: left, what: what)
        try delivery.wait(until: deadline)
    }

    /// One write the owner receives: `accept` (the owner opens a delivery of exactly `moves`), the bytes sent
    /// tagged with its token, and `landed` (answered once they all arrived).
    private func send(_ moves: [ExtentMove], pinID: UInt64, until deadline: ContinuousClock.Instant, what: String)
        throws(LinkError)
    {
        let request = DeliveryRequest(
            pinID: pinID, token: 0,
            moves: moves.map { move in
                DeliveryRequest.Move(
                    regionID: move.remote.regionID, offset: move.remote.offset, count: UInt64(move.count),
                    destination: 0)
            })
        let reply = try connection.request(.accept, request.encoded(), timeout: left(until: deadline, what), what: what)
        var reader = WireReader(reply.payload[...])
        let token: UInt64
        do throws(ProtocolError) {
            token = try reader.u64()
            try reader.expectEnd()
        } catch {
            throw LinkError(
                .protocolViolation, "\(what): cluster \(remoteClusterID) accepted the write without a token: \(error)")
        }
        try dataPlane.send(moves, token: token)
        let landed = DeliveryRequest(pinID: pinID, token: token, moves: [])
        _ = try connection.request(.landed, landed.encoded(), timeout: left(until: deadline, what), what: what)
    }

    /// The time left until `deadline`; throws once it passed.
    private func left(until deadline: ContinuousClock.Instant, _ what: String) throws(LinkError) -> Duration {
        let left = ContinuousClock.now.duration(to: deadline)
        guard left > .zero else { throw LinkError(.timedOut, "\(what): timed out before the owner had the bytes") }
        return left
    }

    /// Tells the owner a grant's transfer is over (not awaited). False when the notice could not go out (the link
    /// closed, or is being unlinked): the owner then counts the transfer failed when the link closes.
    @discardableResult
    package func release(pinID: UInt64, succeeded: Bool) -> Bool {
        post(.release, ReleaseNotice(pinID: pinID, succeeded: succeeded).encoded())
    }

    /// Posts a message that gets no reply: directly to a peer in this process while the link is open, otherwise
    /// over the connection. False when it did not go out. Package access for the tests of the direct route.
    @discardableResult
    package func post(_ kind: MessageKind, _ payload: [UInt8]) -> Bool {
        if let route, Self.travelsDirectly(kind),
            case .some(.some) = connection.inPlaceOfSending({
                route.serve(Frame(kind: kind, requestID: 0, payload: payload), from: side)
            })
        {
            return true
        }
        return connection.post(kind, payload)
    }

    /// What a direct route carries: the pulls' and pushes' requests and releases. The link's own messages
    /// (ping, unlink) and the deliveries of an owner that moves the bytes itself always take the connection.
    private static func travelsDirectly(_ kind: MessageKind) -> Bool {
        kind == .resolve || kind == .batchResolve || kind == .release
    }

    /// Whether the peer answers a ping within `timeout`.
    package func answersPing(within timeout: Duration) -> Bool {
        (try? connection.request(.ping, [], timeout: timeout, what: "ping")) != nil
    }

    /// Asks the peer to close the link, as this cluster.
    package func requestUnlink(from clusterID: UInt64, timeout: Duration, what: String) throws(LinkError) {
        _ = try connection.request(.unlink, ClusterIdentifier(clusterID).encoded(), timeout: timeout, what: what)
    }

    /// Closes the link (the owner side's grants are void), and waits for its reader to finish.
    package func close(_ reason: CloseReason) {
        connection.close(reason)
        connection.join()
    }

    private func grant(of reply: Frame, what: String) throws(LinkError) -> Grant {
        do throws(ProtocolError) {
            return try Grant(payload: reply.payload)
        } catch {
            throw LinkError(.protocolViolation, "\(what): cluster \(remoteClusterID) sent a malformed grant: \(error)")
        }
    }
}
