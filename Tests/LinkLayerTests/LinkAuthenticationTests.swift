import DeviceRuntime
import LinkLayer
import Synchronization
import Testing
import ThreadSanitizerSupport

/// The client side of the link authentication: a client with a secret links only with a listener that proves the
/// same secret on the control connection. A listener that answers with a wrong proof, or one that never challenges
/// (no secret, or a process that connected to the client's Unix socket first), is refused before the client maps
/// or sends anything, with a message saying so.
@Suite(.timeLimit(.minutes(1))) struct LinkAuthenticationTests {
    static let secret = LinkSecret(Array("correct horse battery staple".utf8))

    /// How a hand-written listener behaves after the hello.
    enum Listener: Sendable {
        /// Challenges, reads the client's proof, then sends a proof with the right nonce and a wrong MAC.
        case wrongProof
        /// Connects to the client's Unix socket at once and starts the region exchange, as one without a secret.
        case noChallenge
    }

    /// Runs `LinkHandshake.connect` with the secret against a hand-written listener; the client's error.
    static func clientError(against behaviour: Listener) throws -> LinkError {
        let (listener, port) = try Socket.listenTCP(SocketEndpoint(host: "127.0.0.1", port: 0))
        defer { listener.close() }
        let deadline = ContinuousClock.now.advanced(by: .seconds(5))
        let problem = Lock<String?>(nil)
        let server = try JoinableThread.start {
            do {
                guard let tcp = listener.accept() else { throw Socket.Failure(operation: "accept", errno: 0) }
                defer { tcp.close() }
                var inbox = FrameInbox()
                let hello = try Hello(payload: try inbox.receiveFrame(from: tcp, until: deadline).payload)
                let nonce = [UInt8](repeating: 7, count: LinkChallenge.nonceSize)
                if case .wrongProof = behaviour {
                    try tcp.sendAll(
                        Frame(kind: .challenge, requestID: 1, payload: LinkChallenge(nonce: nonce).encoded()).encoded())
                    _ = try LinkProof(payload: try inbox.receiveFrame(from: tcp, until: deadline).payload)
                }
                let unix = try Socket.connectUnix(abstractName: hello.unixSocket, until: deadline)
                defer { unix.close() }
                switch behaviour {
                case .wrongProof:
                    let proof = LinkProof(nonce: nonce, mac: [UInt8](repeating: 0, count: 32))
                    try unix.sendAll(Frame(kind: .proof, requestID: 1, payload: proof.encoded()).encoded())
                case .noChallenge:
                    try unix.send([0, 0, 0, 0], passing: -1)
                }
                // Hold the connection until the client gave up on it.
                _ = try unix.waitReadable(until: deadline)
            } catch {
                problem.withLock { $0 = "\(error)" }
            }
        }
        defer { server.join() }
        do {
            _ = try LinkHandshake.connect(
                to: SocketEndpoint(host: "127.0.0.1", port: port), expecting: 1,
                offer: LinkOffer(clusterID: 2, remoteCacheAccessible: false, regions: [], secret: secret),
                timeout: .seconds(5), admission: HandshakeDeadlineTests.Admission())
        } catch {
            return error
        }
        Issue.record("the client linked with a listener that did not prove the secret")
        return LinkError(.io, "linked")
    }

    @Test func aListenerWithAWrongProofIsRefused() throws {
        let error = try Self.clientError(against: .wrongProof)
        #expect(error.kind == .io)
        #expect(error.message.contains("the peer's proof does not match this side's link secret"), "\(error)")
    }

    @Test func aListenerThatNeverChallengesIsRefused() throws {
        let error = try Self.clientError(against: .noChallenge)
        #expect(error.message.contains("the peer did not challenge this side"), "\(error)")
    }

    @Test func challengesAndProofsDecodeOnlyAtTheirExactLength() throws {
        let server = LinkChallenge(nonce: Array(repeating: 1, count: 32))
        let proof = LinkProof(nonce: Array(repeating: 2, count: 32), mac: Array(repeating: 3, count: 32))
        #expect(try LinkChallenge(payload: server.encoded()) == server)
        #expect(try LinkProof(payload: proof.encoded()) == proof)
        #expect(throws: ProtocolError.self) { try LinkChallenge(payload: Array(repeating: 0, count: 31)) }
        #expect(throws: ProtocolError.self) { try LinkProof(payload: Array(repeating: 0, count: 65)) }
    }
}
