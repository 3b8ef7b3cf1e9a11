import LinkLayer
import Logging

/// The owner's side of one link, as the link layer calls it: the policy's answers for this link's peer, as
/// grants and refusals.
struct OwnerService: LinkService {
    let policy: OwnerPolicy
    /// The link's serial: the pins its peer takes carry it.
    let linkSerial: UInt64
    let peerClusterID: UInt64
    /// What of registered memory this link's peer reaches.
    let reach: LinkReach
    let logger: Logger
    /// Counts what this side granted and refused the peer (atomics: no lock on the resolve path).
    let meters: LinkMeters
    /// Forgets the link once it closed (the link table's bookkeeping).
    let onClose: @Sendable (CloseReason) -> Void

    func resolve(_ request: ResolveRequest) -> Result<Grant, Refusal> {
        counted(policy.resolve(request, link: linkSerial, reach: reach)).mapError(Refusal.init)
    }

    func resolveBatch(_ request: BatchResolveRequest) -> Result<Grant, Refusal> {
        counted(policy.resolveBatch(request, link: linkSerial, reach: reach)).mapError(Refusal.init)
    }

    private func counted(_ answer: Result<Grant, LLMError>) -> Result<Grant, LLMError> {
        switch answer {
        case .success: meters.served(refusal: nil)
        case .failure(let error): meters.served(refusal: error.status)
        }
        return answer
    }

    func release(_ notice: ReleaseNotice) {
        if !policy.release(notice, link: linkSerial) {
            logger.info("cluster \(peerClusterID) released pin \(notice.pinID), which its link does not hold")
        }
    }

    func expectsPromptRequest(copying bytes: UInt64) -> Bool { OwnerPolicy.expectsPromptRequest(copying: bytes) }

    func refusal(forMalformed problem: String) -> Refusal { Refusal(.paramInvalid(problem)) }

    func refusal(forFailedDelivery problem: String) -> Refusal { Refusal(LLMError(.linkFailed, problem)) }

    func linkClosed(_ reason: CloseReason) {
        policy.releaseAll(of: linkSerial)
        onClose(reason)
    }
}
