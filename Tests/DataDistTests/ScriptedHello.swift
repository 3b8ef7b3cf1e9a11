import LinkLayer
import Testing

@testable import DataDist

/// The first steps of a hand-written peer's handshake: a hello over TCP to the owner at `endpoint` (cluster `owner`)
/// as cluster `clusterID`, then the owner's connection to the Unix socket the hello named. The caller closes both
/// sockets it gets back.
func scriptedHello(
    to endpoint: IPEndpoint, clusterID: UInt64, expecting owner: UInt64, until deadline: ContinuousClock.Instant
) throws -> (tcp: Socket, unix: Socket) {
    let name = "datadist.test.\(UInt64.random(in: 0...UInt64.max))"
    let unixListener = try Socket.listenUnix(abstractName: name)
    defer { unixListener.close() }
    let tcp = try Socket.connectTCP(SocketEndpoint(endpoint), until: deadline)
    do {
        let hello = Hello(
            clusterID: clusterID, expectedClusterID: owner, remoteCacheAccessible: false,
            bootID: HostIdentity.bootID, unixSocket: name)
        try tcp.sendAll(Frame(kind: .hello, requestID: 1, payload: hello.encoded()).encoded())
        #expect(try Socket.poll([unixListener], events: 1, until: deadline) == 0)
        return (tcp, try #require(unixListener.accept()))
    } catch {
        tcp.close()
        throw error
    }
}

/// A hand-written peer's handshake over UCX: a hello naming no Unix socket, the owner's `ucxOffer` over TCP,
/// and an answer offering no regions from a worker of the peer's own. The owner's welcome follows on `tcp`,
/// which the caller closes.
func scriptedUCXHello(
    to endpoint: IPEndpoint, clusterID: UInt64, expecting owner: UInt64, transport: TestTransport,
    until deadline: ContinuousClock.Instant
) throws -> (tcp: Socket, offer: UCXOffer, node: UCXNode) {
    let tcp = try Socket.connectTCP(SocketEndpoint(endpoint), until: deadline)
    do {
        let hello = Hello(
            clusterID: clusterID, expectedClusterID: owner, remoteCacheAccessible: false,
            bootID: HostIdentity.bootID, unixSocket: "")
        try tcp.sendAll(Frame(kind: .hello, requestID: 1, payload: hello.encoded()).encoded())
        var inbox = FrameInbox()
        let frame = try inbox.receiveFrame(from: tcp, until: deadline, limit: UCXOffer.maxPayload)
        try #require(frame.kind == .ucxOffer, "the owner answered \(frame.kind)")
        let offer = try UCXOffer(payload: frame.payload)
        let overrides = transport.environment.reduce(into: [String: String]()) {
            $0[String($1.key.dropFirst(4))] = $1.value
        }
        let node = try UCXNode(
            settings: UCXSettings(overrides: overrides, transferTimeout: .seconds(2)), environment: [:])
        let mine = try node.offer(of: [], remoteWrite: false)
        try tcp.sendAll(Frame(kind: .ucxOffer, requestID: 1, payload: mine.encoded()).encoded())
        return (tcp, offer, node)
    } catch {
        tcp.close()
        throw error
    }
}
