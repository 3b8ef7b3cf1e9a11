import DeviceRuntime
import LinkLayer
import Synchronization
import Testing
import ThreadSanitizerSupport

/// The order of the UCX handshake's client side: it opens its endpoint to the listener's worker, and waits for
/// that connection, before it answers with its own offer; only then does the listener open its endpoint, whose
/// wireup request the client's worker then answers at once. (When the listener's endpoint came first, the
/// client's answer waited for the client's connection back to the listener, and UCX 1.13 aborted a decoder whose
/// prompt was SIGKILLed meanwhile: README, Transports.)
@Suite(.timeLimit(.minutes(1))) struct UCXHandshakeOrderTests {
    /// Admits every hello with a UCX node of its own (TCP only); registers nothing.
    struct Admission: LinkAdmission {
        let node: UCXNode
        func screen(_ hello: Hello) -> Refusal? { nil }
        func register(_ link: EstablishedLink) -> Result<PeerChannel, Refusal> {
            .failure(Refusal(status: 2, message: "registered a link that could not be set up"))
        }
        func refusal(forFailedSetup problem: String) -> Refusal { Refusal(status: 1, message: problem) }
        var mappingBudget: MappingBudget { .process }
        func ucxNode() throws(LinkError) -> UCXNode { node }
    }

    static func node() throws -> UCXNode {
        try UCXNode(settings: UCXSettings(overrides: ["TLS": "tcp"], transferTimeout: .seconds(2)), environment: [:])
    }

    @Test func aClientWhoseEndpointToTheListenersWorkerCannotConnectRefusesBeforeOfferingItsOwn() throws {
        // The listener offers the address of a worker that is gone: nothing accepts UCX's connection to it.
        let goneAddress = try { () throws -> [UInt8] in
            let gone = try Self.node()
            return try gone.offer(of: [], remoteWrite: false).encoded()
        }()
        let (listener, port) = try Socket.listenTCP(SocketEndpoint(host: "127.0.0.1", port: 0))
        defer { listener.close() }
        let deadline = ContinuousClock.now.advanced(by: .seconds(10))
        // The kind of the client's answer to the listener's offer, or what went wrong reading it.
        let answer = Lock<String>("the client sent nothing")
        let server = try JoinableThread.start {
            do {
                guard let tcp = listener.accept() else { throw Socket.Failure(operation: "accept", errno: 0) }
                defer { tcp.close() }
                var inbox = FrameInbox()
                _ = try Hello(payload: try inbox.receiveFrame(from: tcp, until: deadline).payload)
                try tcp.sendAll(Frame(kind: .ucxOffer, requestID: 1, payload: goneAddress).encoded())
                let reply = try inbox.receiveFrame(from: tcp, until: deadline, limit: UCXOffer.maxPayload)
                answer.withLock { $0 = "\(reply.kind)" }
                if reply.kind == .ucxOffer {
                    // What the listener of an old client did next; the client then waits for a welcome.
                    try tcp.sendAll(
                        Frame(kind: .refusal, requestID: 1, payload: Refusal(status: 3, message: "test").encoded())
                            .encoded())
                }
            } catch {
                answer.withLock { $0 = "\(error)" }
            }
        }
        let admission = Admission(node: try Self.node())
        let started = ContinuousClock.now
        var failure: LinkError?
        do throws(LinkError) {
            _ = try LinkHandshake.connect(
                to: SocketEndpoint(host: "127.0.0.1", port: port), expecting: 1,
                offer: LinkOffer(clusterID: 2, remoteCacheAccessible: false, regions: [], transport: .ucx),
                timeout: .seconds(3), admission: admission)
        } catch {
            failure = error
        }
        server.join()
        let elapsed = ContinuousClock.now - started
        let error = try #require(failure, "the client linked with a listener whose worker is gone")
        #expect(error.message.contains("UCX:"), "\(error)")
        #expect(elapsed < .seconds(4), "the client took \(elapsed)")
        let kind = answer.withLock { $0 }
        #expect(kind == "\(MessageKind.refusal)", "the client answered the listener's offer with \(kind)")
    }
}
