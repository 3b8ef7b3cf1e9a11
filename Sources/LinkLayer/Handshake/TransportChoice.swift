/// Which data plane one side lets a link use.
package enum TransportChoice: Sendable, Hashable {
    /// The memfd mapping when the peer is on this host and the exchange over the Unix socket works, else UCX.
    case automatic
    /// Only the memfd mapping; a link it cannot serve is refused.
    case sharedMemory
    /// Only UCX, even on one host.
    case ucx

    /// Whether a hello of this side names a Unix socket for the memfd exchange.
    var offersSharedMemory: Bool { self != .ucx }
    package var allowsUCX: Bool { self != .sharedMemory }
}

/// The UCX side of the application's say in setting links up; the defaults serve an application without UCX.
extension LinkAdmission {
    /// The instance's UCX node, created on first use; throws when UCX cannot be set up here.
    package func ucxNode() throws(LinkError) -> UCXNode {
        throw LinkError(.io, "UCX is not available to this link")
    }

    /// The refusal sent when the link needs a transport this side does not offer, for `problem`.
    package func refusal(forUnavailableTransport problem: String) -> Refusal { refusal(forFailedSetup: problem) }
}

/// Whether the server side makes the memfd exchange with a hello's sender.
enum MemfdExchange {
    case connected(Socket)
    /// Not made, and why (for a refusal when UCX may not stand in).
    case unavailable(String)
}

extension LinkHandshake {
    /// Connects to the Unix socket `hello` names when this side and the client both allow shared memory and the
    /// client is on this host. A client in another network namespace has the same boot id but an abstract
    /// socket this side cannot reach: then the exchange is unavailable, not failed.
    static func connectForMemfdExchange(_ hello: Hello, offer: LinkOffer, until deadline: ContinuousClock.Instant)
        -> MemfdExchange
    {
        let peer = "cluster \(hello.clusterID)"
        guard offer.transport.offersSharedMemory else { return .unavailable("this side's transport is UCX") }
        guard !hello.unixSocket.isEmpty else {
            return .unavailable("\(peer) links only over UCX, and this side's transport is shared memory")
        }
        guard hello.bootID == HostIdentity.bootID else {
            return .unavailable(
                "\(peer) runs on another host (boot id \(hello.bootID), this host \(HostIdentity.bootID)); shared memory serves only one host"
            )
        }
        do throws(Socket.Failure) {
            return .connected(try Socket.connectUnix(abstractName: hello.unixSocket, until: deadline))
        } catch {
            return .unavailable(
                "the memfd exchange with \(peer) cannot be made (\(error)): it shares this host's boot id but not its abstract Unix sockets (another network namespace?)"
            )
        }
    }
}
