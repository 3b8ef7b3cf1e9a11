import LinkLayer
import Synchronization
import Testing
import ThreadSanitizerSupport

#if canImport(Glibc)
import Glibc
#endif

/// The listener's accept loop outlives a shortage of descriptors: accepts failing with EMFILE or ENFILE (as
/// when a flood of connections used the process's limit up) are waited out, and the next connection is served.
@Suite(.timeLimit(.minutes(1))) struct ListenerTests {
    @Test func acceptsAgainAfterRunningOutOfDescriptors() throws {
        // The first accepts fail as the system's do when the process or the system has no descriptor left.
        let failures = Lock([EMFILE, ENFILE, EMFILE])
        let accepted = Lock(0)
        let listener = try Listener(
            on: SocketEndpoint(host: "127.0.0.1", port: 0),
            accept: { socket throws(Socket.Failure) in
                if let code = failures.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
                    throw Socket.Failure(operation: "accept", errno: code)
                }
                return try socket.acceptConnection()
            },
            onAccept: { connection in
                accepted.withLock { $0 += 1 }
                connection.close()
            })
        defer { listener.stop() }

        let deadline = ContinuousClock.now + .seconds(10)
        let client = try Socket.connectTCP(listener.endpoint, until: deadline)
        defer { client.close() }
        while accepted.withLock({ $0 }) == 0, ContinuousClock.now < deadline { usleep(1_000) }
        #expect(failures.withLock { $0.isEmpty })
        #expect(accepted.withLock { $0 } == 1)
    }

    @Test func aFailureWaitingCannotMendEndsTheLoop() throws {
        let attempts = Lock(0)
        let listener = try Listener(
            on: SocketEndpoint(host: "127.0.0.1", port: 0),
            accept: { _ throws(Socket.Failure) in
                attempts.withLock { $0 += 1 }
                throw Socket.Failure(operation: "accept", errno: EBADF)
            },
            onAccept: { $0.close() })
        listener.stop()  // joins the loop: it ended after the first failure
        #expect(attempts.withLock { $0 } == 1)
    }
}
