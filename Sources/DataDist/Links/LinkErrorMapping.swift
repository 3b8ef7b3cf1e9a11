import LinkLayer

// The one place where the link layer's errors and names meet DataDist's.

extension LLMError {
    /// A link-layer failure as the caller sees it: the peer's refusal keeps its status, a timeout is
    /// `.timeout`, anything else a failed link.
    init(_ error: LinkError) {
        switch error.kind {
        case .refused(let status): self.init(LLMStatusCode(rawValue: status), error.message)
        case .timedOut: self.init(.timeout, error.message)
        case .closed, .protocolViolation, .io: self.init(.linkFailed, error.message)
        }
    }
}

extension Refusal {
    /// An owner's refusal, sent to the peer with its status.
    init(_ error: LLMError) {
        self.init(status: error.status.rawValue, message: error.message)
    }
}

extension MemoryKind {
    init(_ placement: Placement) {
        self = placement == .host ? .host : .device
    }
}

extension SocketEndpoint {
    init(_ endpoint: IPEndpoint) {
        self.init(host: endpoint.host, port: endpoint.port)
    }
}

extension IPEndpoint {
    init(_ endpoint: SocketEndpoint) {
        self.init(host: endpoint.host, port: endpoint.port)
    }
}
