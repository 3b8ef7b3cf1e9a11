import DeviceRuntime
import InMemoryLogging
import LinkLayer
import Logging
import Synchronization
import Testing
import ThreadSanitizerSupport

@testable import DataDist

/// Link authentication (`LLMConfig.linkSecret`): with a secret, only a peer proving the same secret links, so a
/// local process cannot claim another cluster's id and block the real one; without one on both sides, links work
/// as in the reference. Bad secrets are refused by the config.
@Suite(.timeLimit(.minutes(1))) struct LinkSecretTests {
    static let secret = "correct horse battery staple"

    /// An instance of cluster `clusterID` (no pools needed to link) with `secret`, or none.
    static func peer(_ clusterID: UInt64, secret: String?) throws -> LLMDataDist {
        var config = LLMConfig()
        config.memoryPool = MemoryPoolConfig(size: 1 << 20)
        config.linkSecret = secret
        let instance = LLMDataDist(role: .decoder, clusterID: clusterID)
        try instance.initialize(config, environment: emulatorEnvironment(faults: nil))
        return instance
    }

    @Test func withoutASecretASquatterBlocksTheRealClusterAsInTheReference() throws {
        let pair = try LinkedPair(link: false)
        let squatter = try Self.peer(2, secret: nil)
        defer { squatter.finalize() }
        #expect(squatter.linkClusters([pair.promptInfo]) == (.success, [.success]))
        #expect(pair.decoder.linkClusters([pair.promptInfo]) == (.alreadyLink, [.alreadyLink]))
        _ = squatter.unlinkClusters([pair.promptInfo])
        try pair.finish()
    }

    @Test func aSquatterWithoutTheSecretCannotBlockTheRealCluster() throws {
        let pair = try LinkedPair(
            link: false, configurePrompt: { $0.linkSecret = Self.secret },
            configureDecoder: { $0.linkSecret = Self.secret })
        for secret in [nil, "not the secret, but long enough"] {
            let squatter = try Self.peer(2, secret: secret)
            #expect(squatter.linkClusters([pair.promptInfo]) == (.linkFailed, [.linkFailed]), "\(secret ?? "nil")")
            squatter.finalize()
        }
        #expect(try pair.prompt.cacheManager.links.linkCount == 0)

        // A hand-written squatter that says hello as cluster 2 and then stalls on the challenge holds no id either.
        let deadline = ContinuousClock.now.advanced(by: .seconds(5))
        let stalled = try Socket.connectTCP(SocketEndpoint(pair.promptInfo.remoteIPInfos[0]), until: deadline)
        defer { stalled.close() }
        let hello = Hello(
            clusterID: 2, expectedClusterID: 1, remoteCacheAccessible: false, bootID: HostIdentity.bootID,
            unixSocket: "datadist.test.squatter")
        try stalled.sendAll(Frame(kind: .hello, requestID: 1, payload: hello.encoded()).encoded())
        var inbox = FrameInbox()
        #expect(try inbox.receiveFrame(from: stalled, until: deadline).kind == .challenge)

        #expect(pair.decoder.linkClusters([pair.promptInfo]) == (.success, [.success]))
        try PeerLimitTests.pullOne(pair, into: pair.decoder, reqID: 1)
        try pair.finish()
    }

    @Test func aWrongSecretOrAMissingOneIsRefusedEitherWay() throws {
        let cases: [(prompt: String?, decoder: String?)] = [
            (Self.secret, "another secret of enough bytes"), (Self.secret, nil), (nil, Self.secret),
        ]
        for (promptSecret, decoderSecret) in cases {
            let pair = try LinkedPair(
                link: false, configurePrompt: { $0.linkSecret = promptSecret },
                configureDecoder: { $0.linkSecret = decoderSecret })
            let what = "prompt \(promptSecret ?? "nil"), decoder \(decoderSecret ?? "nil")"
            #expect(pair.decoder.linkClusters([pair.promptInfo]) == (.linkFailed, [.linkFailed]), "\(what)")
            #expect(try pair.prompt.cacheManager.links.linkCount == 0, "\(what)")
            #expect(try pair.decoder.cacheManager.links.linkCount == 0, "\(what)")
            try pair.finish()
        }
    }

    @Test func theListenerLogsWhyItRefusedAPeerWithAnotherSecret() throws {
        let logs = InMemoryLogHandler()
        var config = LLMConfig()
        config.memoryPool = MemoryPoolConfig(size: 1 << 20)
        config.listenAddress = IPEndpoint(host: "127.0.0.1", port: 0)
        config.linkSecret = Self.secret
        let prompt = LLMDataDist(role: .prompt, clusterID: 1, logger: Logger(label: "test") { _ in logs })
        try prompt.initialize(config, environment: emulatorEnvironment())
        defer { prompt.finalize() }
        let squatter = try Self.peer(2, secret: "another secret of enough bytes")
        defer { squatter.finalize() }
        let info = LLMClusterInfo(remoteClusterID: 1, remoteIPInfos: [try #require(prompt.listenEndpoint)])
        #expect(squatter.linkClusters([info]) == (.linkFailed, [.linkFailed]))
        let refusals = { logs.entries.filter { "\($0.message)".contains("refused a link request") } }
        #expect(eventually { !refusals().isEmpty })
        let message = refusals().first.map { "\($0.message)" } ?? ""
        #expect(
            message.contains("cluster 2") && message.contains("link authentication failed")
                && message.contains("does not match this side's link secret") && !message.contains(Self.secret),
            "\(message)")
    }

    @Test func bothSidesWithTheSecretLinkAndPull() throws {
        let pair = try LinkedPair(
            configurePrompt: { $0.linkSecret = Self.secret }, configureDecoder: { $0.linkSecret = Self.secret })
        try PeerLimitTests.pullOne(pair, into: pair.decoder, reqID: 1)
        try PeerLimitTests.pullOne(pair, into: pair.decoder, reqID: 2)
        try pair.finish()
    }

    @Test func aWrongProofFailsTheLinkLayerWithAClearMessage() throws {
        // The honest side's own words: the link layer's server and client, one with another secret.
        let listener = try Socket.listenTCP(SocketEndpoint(host: "127.0.0.1", port: 0))
        defer { listener.0.close() }
        let deadline = ContinuousClock.now.advanced(by: .seconds(5))
        let client = try Socket.connectTCP(SocketEndpoint(host: "127.0.0.1", port: listener.port), until: deadline)
        defer { client.close() }
        let server = try #require(listener.0.accept())
        defer { server.close() }
        let hello = Array("a hello".utf8)
        let outcome = Lock("")
        let serverThread = try JoinableThread.start {
            do throws(LinkError) {
                _ = try LinkAuthentication.challenge(
                    hello: hello, secret: LinkSecret(Array(Self.secret.utf8)), on: server, until: deadline)
                outcome.withLock { $0 = "accepted" }
            } catch {
                outcome.withLock { $0 = error.message }
            }
        }
        var authentication = LinkAuthentication.Client(
            secret: LinkSecret(Array("another secret of enough bytes".utf8)), hello: hello)
        var inbox = FrameInbox()
        #expect(
            try authentication.answer(inbox.receiveFrame(from: client, until: deadline), on: client, until: deadline))
        serverThread.join()
        let message = outcome.withLock { $0 }
        #expect(message.contains("link authentication failed") && message.contains("link secret"), "\(message)")
    }

    @Test func badSecretsAreRefusedWithoutShowingThem() throws {
        for bad in ["", "fifteen bytes..", String(repeating: "x", count: 1025)] {
            do {
                _ = try LLMConfig(options: [LLMOptionKey.linkSecret: bad])
                Issue.record("a secret of \(bad.utf8.count) bytes was accepted")
            } catch {
                #expect(error.status == .paramInvalid)
                #expect(
                    error.message.contains(LLMOptionKey.linkSecret) && error.message.contains("\(bad.utf8.count) bytes")
                )
                #expect(bad.isEmpty || !error.message.contains(bad), "\(error.message)")
            }
            var config = LLMConfig()
            config.linkSecret = bad
            let instance = LLMDataDist(role: .prompt, clusterID: 1)
            #expect(throws: LLMError.self) {
                try instance.initialize(config, environment: emulatorEnvironment(faults: nil))
            }
            #expect(!instance.isInitialized)
        }
        let edge = String(repeating: "é", count: 512)  // 1024 bytes: the longest accepted
        #expect(try LLMConfig(options: [LLMOptionKey.linkSecret: edge]).linkSecret == edge)
        #expect(
            try LLMConfig(options: [LLMOptionKey.linkSecret: Self.secret]).options[LLMOptionKey.linkSecret]
                == Self.secret)
    }
}
