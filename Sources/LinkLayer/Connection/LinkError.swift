/// Why a request over a link, a handshake or a transfer did not succeed. `DataDist` maps it to an `LLMError`
/// once: `refused` keeps the peer's status, `timedOut` is a timeout, everything else a failed link.
package struct LinkError: Error, Sendable, Hashable, CustomStringConvertible {
    package enum Kind: Sendable, Hashable {
        /// The link is closed or closed while waiting.
        case closed
        /// The peer did not answer in time.
        case timedOut
        /// The peer refused, with a status in `LLMStatusCode`'s numbering.
        case refused(status: UInt32)
        /// The peer broke the protocol (a malformed reply, a grant outside what it published).
        case protocolViolation
        /// A socket or mapping operation failed.
        case io
    }

    package var kind: Kind
    package var message: String

    package init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    package init(_ refusal: Refusal) {
        self.init(.refused(status: refusal.status), refusal.message)
    }

    package var description: String { message }
}
