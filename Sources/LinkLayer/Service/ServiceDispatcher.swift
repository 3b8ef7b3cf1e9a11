import Logging

/// Decodes a peer's request frames into calls on the owner's `LinkService` and encodes the answers; releases
/// a grant whose requester stopped waiting for it; closes the data plane with the connection.
struct ServiceDispatcher: ControlHandler {
    let service: any LinkService
    let dataPlane: any DataPlane
    let peerClusterID: UInt64
    let logger: Logger

    func serve(_ frame: Frame) -> ControlReply {
        switch frame.kind {
        case .resolve:
            do throws(ProtocolError) {
                return answer(frame, service.resolve(try ResolveRequest(payload: frame.payload)))
            } catch {
                return refuse(frame, service.refusal(forMalformed: "resolve: \(error)"))
            }
        case .batchResolve:
            do throws(ProtocolError) {
                return answer(frame, service.resolveBatch(try BatchResolveRequest(payload: frame.payload)))
            } catch {
                return refuse(frame, service.refusal(forMalformed: "batch resolve: \(error)"))
            }
        case .release:
            // Posted, not awaited: nothing is sent back, a malformed one is only logged.
            do throws(ProtocolError) {
                service.release(try ReleaseNotice(payload: frame.payload))
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
        dataPlane.close(reason)
        service.linkClosed(reason)
    }

    private func answer(_ frame: Frame, _ outcome: Result<Grant, Refusal>) -> ControlReply {
        switch outcome {
        case .success(let grant):
            ControlReply(
                frame: Frame(kind: .grant, requestID: frame.requestID, payload: grant.encoded()),
                expectsMore: service.expectsPromptRequest(after: grant))
        case .failure(let refusal):
            refuse(frame, refusal)
        }
    }

    private func refuse(_ frame: Frame, _ refusal: Refusal) -> ControlReply {
        logger.info("refused a request of cluster \(peerClusterID): \(refusal.message)")
        return ControlReply(frame: Frame(kind: .refusal, requestID: frame.requestID, payload: refusal.encoded()))
    }
}
