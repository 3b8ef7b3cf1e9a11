/// Why a link's connection closed.
package enum CloseReason: Sendable, Hashable, CustomStringConvertible {
    /// One side unlinked it.
    case unlinked
    /// This side tore it down without telling the peer (a forced unlink).
    case forcedLocally
    /// This instance finalized.
    case finalized
    /// The peer closed the connection without unlinking (it died or dropped the link).
    case peerClosed
    /// The peer sent bytes that are no frame of this protocol.
    case protocolViolation(String)
    /// Reading or writing the connection failed, or a thread for it could not start.
    case failed(String)

    /// Whether the link was closed on purpose; anything else means it broke.
    package var isDeliberate: Bool {
        switch self {
        case .unlinked, .forcedLocally, .finalized: true
        case .peerClosed, .protocolViolation, .failed: false
        }
    }

    package var description: String {
        switch self {
        case .unlinked: "unlinked"
        case .forcedLocally: "force-unlinked locally"
        case .finalized: "finalized"
        case .peerClosed: "peer closed the connection"
        case .protocolViolation(let problem): "protocol violation: \(problem)"
        case .failed(let problem): problem
        }
    }
}
