import Logging

/// Decodes a peer's request frames into calls on the owner's `LinkService` and encodes the answers; releases
/// a grant whose requester stopped waiting for it; closes the data plane with the connection. Where the owner
/// delivers reads or receives writes, it keeps the link's grants and sends only bytes inside its read grants,
/// and takes bytes only inside its write grants, and only until each write ended.
struct ServiceDispatcher: ControlHandler {
    let service: any LinkService
    let dataPlane: any DataPlane
    let peerClusterID: UInt64
    let logger: Logger
    /// The link's direct route when both its sides live in this process; closed before the service hears of the
    /// close, so no direct call grants anything after it.
    let route: DirectRoute?
    private let ledger = GrantLedger()
    private let writes = OpenWrites()

    init(
        service: any LinkService, dataPlane: any DataPlane, peerClusterID: UInt64, logger: Logger,
        route: DirectRoute? = nil
    ) {
        self.service = service
        self.route = route
        self.dataPlane = dataPlane
        self.peerClusterID = peerClusterID
        self.logger = logger
    }

    func serve(_ frame: Frame) -> ControlReply {
        switch frame.kind {
        case .resolve:
            do throws(ProtocolError) {
                let request = try ResolveRequest(payload: frame.payload)
                return answer(frame, service.resolve(request), read: !request.write, blocks: request.blocks.count)
            } catch {
                return refuse(frame, service.refusal(forMalformed: "resolve: \(error)"))
            }
        case .batchResolve:
            do throws(ProtocolError) {
                return answer(frame, service.resolveBatch(try BatchResolveRequest(payload: frame.payload)), read: true)
            } catch {
                return refuse(frame, service.refusal(forMalformed: "batch resolve: \(error)"))
            }
        case .resolveDelivering:
            return resolveDelivering(frame)
        case .deliver:
            return deliver(frame)
        case .accept:
            return accept(frame)
        case .landed:
            return landed(frame)
        case .release:
            // Posted, not awaited: nothing is sent back, a malformed one is only logged.
            do throws(ProtocolError) {
                let notice = try ReleaseNotice(payload: frame.payload)
                // The write's delivery takes nothing once its grant is given back.
                writes.finish(pinID: notice.pinID)
                ledger.forget(pinID: notice.pinID)
                service.release(notice)
            } catch {
                logger.info("cluster \(peerClusterID) sent a malformed release: \(error)")
            }
            return ControlReply(frame: nil)
        case .unlink:
            return ControlReply(
                frame: Frame(kind: .ack, requestID: frame.requestID, payload: []), closeAfterwards: true)
        case .ping:
            return ControlReply(frame: Frame(kind: .ack, requestID: frame.requestID, payload: []))
        case .hello, .welcome, .grant, .ack, .refusal, .challenge, .proof, .ucxOffer:
            return refuse(
                frame, service.refusal(forMalformed: "unexpected \(frame.kind) message on an established link"))
        }
    }

    func unclaimedReply(_ frame: Frame, on connection: ControlConnection) {
        // A grant for a request that timed out: give the pin back at once.
        guard frame.kind == .grant, let grant = try? Grant(payload: frame.payload) else { return }
        connection.post(.release, ReleaseNotice(pinID: grant.pinID, succeeded: false).encoded())
    }

    func closed(_ reason: CloseReason) {
        route?.close()
        dataPlane.close(reason)
        writes.finishAll()
        ledger.clear()
        service.linkClosed(reason)
    }

    /// Resolves a delivering resolve as a `resolve`, sends the granted bytes when the grant matches
    /// (`DeliveringResolve.matches`), then answers with the grant; a delivery that fails gives the grant
    /// back and is refused.
    private func resolveDelivering(_ frame: Frame) -> ControlReply {
        guard dataPlane.ownerDeliversReads else {
            return refuse(
                frame, service.refusal(forMalformed: "delivering resolve: this link's requester reads for itself"))
        }
        let request: DeliveringResolve
        do throws(ProtocolError) {
            request = try DeliveringResolve(payload: frame.payload)
        } catch {
            return refuse(frame, service.refusal(forMalformed: "delivering resolve: \(error)"))
        }
        let outcome = service.resolve(request.resolve)
        if case .success(let grant) = outcome, let delivery = request.delivery(for: grant) {
            do throws(LinkError) {
                try dataPlane.deliver(delivery)
            } catch {
                service.release(ReleaseNotice(pinID: grant.pinID, succeeded: false))
                return refuse(frame, service.refusal(forFailedDelivery: error.message))
            }
        }
        return answer(frame, outcome, read: true)
    }

    /// Sends the bytes a `deliver` request names, once they are checked against the grant it names.
    private func deliver(_ frame: Frame) -> ControlReply {
        guard dataPlane.ownerDeliversReads else {
            return refuse(frame, service.refusal(forMalformed: "deliver: this link's requester reads for itself"))
        }
        return withDeliveryRequest(frame, "deliver") { request in
            if let problem = ledger.problem(with: request, .read) {
                return refuse(frame, service.refusal(forMalformed: "deliver: \(problem)"))
            }
            do throws(LinkError) {
                try dataPlane.deliver(request)
            } catch {
                return refuse(frame, service.refusal(forFailedDelivery: error.message))
            }
            return ControlReply(frame: Frame(kind: .ack, requestID: frame.requestID, payload: []))
        }
    }

    /// Opens a delivery into the bytes an `accept` request names, once they are checked against the write grant
    /// it names; answers with the delivery's token.
    private func accept(_ frame: Frame) -> ControlReply {
        guard dataPlane.ownerReceivesWrites else {
            return refuse(frame, service.refusal(forMalformed: "accept: this link's requester writes for itself"))
        }
        return withDeliveryRequest(frame, "accept") { request in
            guard request.token == 0, request.moves.allSatisfy({ $0.destination == 0 }), !request.moves.isEmpty
            else {
                return refuse(
                    frame,
                    service.refusal(
                        forMalformed: "accept: a token or destinations set, or no moves (the owner picks them)"))
            }
            if let problem = ledger.problem(with: request, .write) {
                return refuse(frame, service.refusal(forMalformed: "accept: \(problem)"))
            }
            let delivery: any IncomingDelivery
            do throws(LinkError) {
                delivery = try dataPlane.expectWrite(into: request.moves)
            } catch {
                return refuse(frame, service.refusal(forFailedDelivery: error.message))
            }
            writes.add(delivery, pinID: request.pinID)
            var token = WireWriter()
            token.u64(delivery.token)
            return ControlReply(frame: Frame(kind: .ack, requestID: frame.requestID, payload: token.bytes))
        }
    }

    /// Waits until every byte of the write a `landed` request names arrived (within the transfer timeout), then
    /// finishes its delivery; answers with an ack, or a refusal when they did not all arrive.
    private func landed(_ frame: Frame) -> ControlReply {
        withDeliveryRequest(frame, "landed") { request in
            guard request.moves.isEmpty, let delivery = writes.take(request.token, pinID: request.pinID) else {
                return refuse(
                    frame,
                    service.refusal(forMalformed: "landed: no write of pin \(request.pinID) is open under that token"))
            }
            defer { delivery.finish() }
            do throws(LinkError) {
                try delivery.wait(until: .now.advanced(by: dataPlane.receiveTimeout))
            } catch {
                return refuse(frame, service.refusal(forFailedDelivery: error.message))
            }
            return ControlReply(frame: Frame(kind: .ack, requestID: frame.requestID, payload: []))
        }
    }

    /// Answers a `what` frame (deliver, accept, landed) with `body` of the `DeliveryRequest` it carries, or with a
    /// refusal when its payload does not decode.
    private func withDeliveryRequest(
        _ frame: Frame, _ what: String, _ body: (DeliveryRequest) -> ControlReply
    ) -> ControlReply {
        do throws(ProtocolError) {
            return body(try DeliveryRequest(payload: frame.payload))
        } catch {
            return refuse(frame, service.refusal(forMalformed: "\(what): \(error)"))
        }
    }

    /// `blocks`: how many blocks the request named (a blocks grant spans whole tensors, the peer copies only those).
    private func answer(_ frame: Frame, _ outcome: Result<Grant, Refusal>, read: Bool, blocks: Int = 0)
        -> ControlReply
    {
        switch outcome {
        case .success(let grant):
            if read ? dataPlane.ownerDeliversReads : dataPlane.ownerReceivesWrites {
                ledger.record(grant, read ? .read : .write)
            }
            return ControlReply(
                frame: Frame(kind: .grant, requestID: frame.requestID, payload: grant.encoded()),
                expectsMore: service.expectsPromptRequest(copying: grant.copiedBytes(blocks: blocks)))
        case .failure(let refusal):
            return refuse(frame, refusal)
        }
    }

    private func refuse(_ frame: Frame, _ refusal: Refusal) -> ControlReply {
        logger.info("refused a request of cluster \(peerClusterID): \(refusal.message)")
        return ControlReply(frame: Frame(kind: .refusal, requestID: frame.requestID, payload: refusal.encoded()))
    }
}
