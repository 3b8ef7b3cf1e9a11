import DeviceRuntime
import LinkLayer
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The server side of a handshake keeps its deadline when the client names a Unix socket that never accepts
/// and whose backlog is full: connecting to it gives up at the deadline instead of waiting for the listener.
@Suite(.timeLimit(.minutes(1))) struct HandshakeDeadlineTests {
    /// Admits every hello; refusals for failed setups carry status 1 and the problem.
    struct Admission: LinkAdmission {
        func screen(_ hello: Hello) -> Refusal? { nil }
        func register(_ link: EstablishedLink) -> Result<PeerChannel, Refusal> {
            .failure(Refusal(status: 2, message: "registered a link that could not be set up"))
        }
        func refusal(forFailedSetup problem: String) -> Refusal { Refusal(status: 1, message: problem) }
        var mappingBudget: MappingBudget { .process }
    }

    /// A Unix listener that never accepts, its backlog filled with connections. It is closed (which fails any
    /// connect still waiting) when `finish` is called, or after 10 s if a connect ignores its deadline, so
    /// that such a bug fails the test instead of hanging it.
    final class FullListener: Sendable {
        let name = "datadist.test.full.\(UInt64.random(in: 0...UInt64.max))"
        private let stop: (Socket, Socket)
        private let watchdog: JoinableThread
        /// The connections that filled the backlog, and how the first one that found it full failed.
        let filling: [Socket]
        let overflow: Socket.Failure?

        init() throws {
            let listener = try Socket.listenUnix(abstractName: name)
            stop = try DescriptorPassingTests.socketPair()
            let stop = stop
            watchdog = try JoinableThread.start {
                _ = try? stop.1.waitReadable(until: .now + .seconds(10))
                listener.close()
            }
            var filling: [Socket] = []
            var overflow: Socket.Failure?
            while overflow == nil, filling.count < 64 {
                do {
                    filling.append(try Socket.connectUnix(abstractName: name, until: .now + .milliseconds(100)))
                } catch {
                    overflow = error
                }
            }
            self.filling = filling
            self.overflow = overflow
        }

        func finish() {
            try? stop.0.sendAll([1])
            watchdog.join()
            for socket in filling + [stop.0, stop.1] { socket.close() }
        }
    }

    @Test func connectingToAFullBacklogTimesOutAtTheDeadline() throws {
        let listener = try FullListener()
        defer { listener.finish() }
        #expect(listener.overflow?.timedOut == true, "\(String(describing: listener.overflow))")
        #expect(!listener.filling.isEmpty)
    }

    @Test func aHandshakeNamingAFullBacklogFailsWithinItsDeadline() throws {
        let listener = try FullListener()
        defer { listener.finish() }
        let (client, server) = try DescriptorPassingTests.socketPair()
        defer { client.close() }
        let hello = Hello(
            clusterID: 2, expectedClusterID: 1, remoteCacheAccessible: false, bootID: HostIdentity.bootID,
            unixSocket: listener.name)
        try client.sendAll(Frame(kind: .hello, requestID: 1, payload: hello.encoded()).encoded())

        let started = ContinuousClock.now
        let outcome = LinkHandshake.accept(
            on: server, offer: LinkOffer(clusterID: 1, remoteCacheAccessible: false, regions: []),
            admission: Admission(), timeout: .milliseconds(300))
        #expect(ContinuousClock.now - started < .seconds(5))
        guard case .failure(let refusal)? = outcome else {
            Issue.record("the handshake ended with \(String(describing: outcome))")
            return
        }
        #expect(refusal.status == 1)
        #expect(refusal.message.contains("connect @\(listener.name) timed out"))
        // The client is told as well.
        var inbox = FrameInbox()
        let reply = try inbox.receiveFrame(from: client, until: .now + .seconds(5))
        #expect(reply.kind == .refusal)
        #expect(try Refusal(payload: reply.payload) == refusal)
    }
}
