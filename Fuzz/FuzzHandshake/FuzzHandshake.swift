import Glibc
import LinkLayer

/// libFuzzer entry point: the handshake's parsing of what a peer sends. The first byte picks the step, the rest
/// arrives on a socket as the peer's bytes (then the peer stops writing):
/// - 0: the server side of `LinkHandshake.accept` on the TCP connection (the hello; every hello is refused, so
///   no connection is made to the socket it names);
/// - 1: the client side, the reply to its hello (`checkWelcome`);
/// - 2: the region exchange's receiving side (no descriptor is attached, so no region may be accepted).
/// Every socket is closed after each input; a leaked descriptor would end the run with `EMFILE`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHandshake(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    // At most what a socket buffer holds, so the single write never blocks.
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: min(size - 1, 1 << 16)))
    let (peer, local) = socketPair()
    defer { peer.close() }
    if !bytes.isEmpty {
        do { try peer.sendAll(bytes) } catch { preconditionFailure("writing the input: \(error)") }
    }
    _ = Glibc.shutdown(peer.fd, Int32(SHUT_WR))
    let deadline = ContinuousClock.now.advanced(by: .seconds(5))
    switch data[0] % 3 {
    case 0:
        let outcome = LinkHandshake.accept(
            on: local, offer: LinkOffer(clusterID: 1, remoteCacheAccessible: false, regions: []),
            admission: RefuseEveryone(), timeout: .seconds(5))
        if case .success = outcome { preconditionFailure("a hello was admitted") }
        precondition((outcome != nil) == isHello(bytes), "outcome \(String(describing: outcome))")
    case 1:
        defer { local.close() }
        var inbox = FrameInbox()
        guard let frame = try? inbox.receiveFrame(from: local, until: deadline) else { return 0 }
        let endpoint = SocketEndpoint(host: "127.0.0.1", port: 1)
        if (try? LinkHandshake.checkWelcome(frame, remoteID: 7, endpoint: endpoint)) != nil {
            precondition(frame.kind == .welcome && frame.payload == ClusterIdentifier(7).encoded(), "\(frame)")
        }
    default:
        defer { local.close() }
        if let regions = try? RegionExchange.receive(from: local, writable: false, until: deadline) {
            precondition(regions.isEmpty, "\(regions.count) regions accepted without a descriptor")
        }
    }
    return 0
}

/// Whether `bytes` start with a hello frame whose payload decodes.
private func isHello(_ bytes: [UInt8]) -> Bool {
    guard case .frame(let frame, _) = Frame.decode(bytes[...]), frame.kind == .hello else { return false }
    return (try? Hello(payload: frame.payload)) != nil
}

private func socketPair() -> (Socket, Socket) {
    var fds: [Int32] = [-1, -1]
    let result = socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds)
    precondition(result == 0, "socketpair: errno \(errno)")
    return (Socket(fd: fds[0]), Socket(fd: fds[1]))
}

/// An admission that refuses every hello, as a server that links with no one.
private struct RefuseEveryone: LinkAdmission {
    func screen(_ hello: Hello) -> Refusal? { Refusal(status: 1, message: "cluster \(hello.clusterID) refused") }
    func register(_ link: EstablishedLink) -> Result<PeerChannel, Refusal> {
        preconditionFailure("register after a refused hello")
    }
    func refusal(forFailedSetup problem: String) -> Refusal { Refusal(status: 1, message: problem) }
    var mappingBudget: MappingBudget { .process }
}
