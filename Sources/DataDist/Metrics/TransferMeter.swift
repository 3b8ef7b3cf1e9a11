import LinkLayer

/// One transfer's hooks into its link's meters: counted as started when made, timed from then; the resolve round
/// trip ends at `answered` (or at a refusal), the transfer at `failed` or after `finishing`'s last step.
struct TransferMeter {
    private let meters: LinkMeters
    private let start = ContinuousClock.now
    private var roundTrip: Duration?

    init(_ meters: LinkMeters) {
        self.meters = meters
        meters.transferStarted()
    }

    /// The grant arrived.
    mutating func answered() { roundTrip = .now - start }

    /// Ends the transfer as failed and returns `error` for the caller to throw; `answered` when the owner's refusal
    /// was the answer that ended the round trip.
    func failed(_ error: LLMError, answered: Bool = false) -> LLMError {
        let now = ContinuousClock.now
        meters.finish(failure: error.status, elapsed: now - start, roundTrip: answered ? now - start : roundTrip)
        return error
    }

    /// Runs the transfer's last step and ends the transfer as that step went.
    func finishing(_ last: () throws(LLMError) -> Void) throws(LLMError) {
        do throws(LLMError) {
            try last()
        } catch {
            throw failed(error)
        }
        meters.finish(failure: nil, elapsed: .now - start, roundTrip: roundTrip)
    }
}

extension LinkError {
    /// Whether the peer answered with a refusal (rather than the link failing or the wait running out).
    var isRefusal: Bool {
        if case .refused = kind { return true }
        return false
    }
}
