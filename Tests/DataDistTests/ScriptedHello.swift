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
