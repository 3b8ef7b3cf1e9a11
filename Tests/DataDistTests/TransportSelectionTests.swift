import DataDist
import LinkLayer
import Testing

@testable import DataDist

/// Which data plane a link gets (`LLMConfig.transport`), seen from a hand-written client's hello: the memfd
/// exchange only when it can be made, UCX otherwise, and `.sharedMemory` refusing what it cannot serve.
@Suite(.timeLimit(.minutes(1))) struct TransportSelectionTests {
    /// The owner's first answer to a hello from `bootID` naming the Unix socket `unixSocket`.
    static func answer(of pair: LinkedPair, bootID: String, unixSocket: String) throws -> Frame {
        let deadline = ContinuousClock.now.advanced(by: .seconds(3))
        let tcp = try Socket.connectTCP(SocketEndpoint(pair.promptInfo.remoteIPInfos[0]), until: deadline)
        defer { tcp.close() }
        let hello = Hello(
            clusterID: 9, expectedClusterID: 1, remoteCacheAccessible: false, bootID: bootID, unixSocket: unixSocket)
        try tcp.sendAll(Frame(kind: .hello, requestID: 1, payload: hello.encoded()).encoded())
        var inbox = FrameInbox()
        return try inbox.receiveFrame(from: tcp, until: deadline, limit: UCXOffer.maxPayload)
    }

    static func pair(_ preference: TransportPreference) throws -> LinkedPair {
        try LinkedPair(link: false) { $0.transport = preference }
    }

    @Test func sharedMemoryRefusesAPeerOnAnotherHostSayingWhy() throws {
        let pair = try Self.pair(.sharedMemory)
        let reply = try Self.answer(of: pair, bootID: "another-host", unixSocket: "none")
        #expect(reply.kind == .refusal)
        let refusal = try Refusal(payload: reply.payload)
        #expect(refusal.status == LLMStatusCode.featureNotEnabled.rawValue)
        #expect(refusal.message.contains("transport shm") && refusal.message.contains("runs on another host"))
        try pair.finish()
    }

    /// Another network namespace: the same boot id, but the client's abstract Unix socket is out of reach.
    @Test func sharedMemoryRefusesWhenTheMemfdExchangeCannotBeMade() throws {
        let pair = try Self.pair(.sharedMemory)
        let reply = try Self.answer(of: pair, bootID: HostIdentity.bootID, unixSocket: "datadist.test.nobody.listens")
        let refusal = try Refusal(payload: reply.payload)
        #expect(refusal.status == LLMStatusCode.featureNotEnabled.rawValue)
        #expect(refusal.message.contains("memfd exchange") && refusal.message.contains("cannot be made"))
        try pair.finish()
    }

    @Test func sharedMemoryRefusesAPeerThatLinksOnlyOverUCX() throws {
        let pair = try Self.pair(.sharedMemory)
        let reply = try Self.answer(of: pair, bootID: HostIdentity.bootID, unixSocket: "")
        let refusal = try Refusal(payload: reply.payload)
        #expect(refusal.status == LLMStatusCode.featureNotEnabled.rawValue)
        #expect(refusal.message.contains("links only over UCX"))
        try pair.finish()
    }

    @Test(arguments: [
        ("another-host", "none"), (HostIdentity.bootID, "datadist.test.nobody.listens"), (HostIdentity.bootID, ""),
    ])
    func automaticFallsBackToUCXWhenTheMemfdExchangeCannotBeMade(bootID: String, unixSocket: String) throws {
        let pair = try Self.pair(.automatic)
        let reply = try Self.answer(of: pair, bootID: bootID, unixSocket: unixSocket)
        #expect(reply.kind == .ucxOffer)
        let offer = try UCXOffer(payload: reply.payload)
        #expect(offer.regions.map(\.descriptor.regionID).count == 1 && !offer.workerAddress.isEmpty)
        try pair.finish()
    }

    @Test func ucxIsUsedEvenWhenTheMemfdExchangeCouldBeMade() throws {
        let pair = try Self.pair(.ucx)
        let unixName = "datadist.test.\(UInt64.random(in: 0...UInt64.max))"
        let listener = try Socket.listenUnix(abstractName: unixName)
        defer { listener.close() }
        let reply = try Self.answer(of: pair, bootID: HostIdentity.bootID, unixSocket: unixName)
        #expect(reply.kind == .ucxOffer)
        try pair.finish()
    }

    /// A shared-memory client linking to an owner that offers only UCX is told why, and nothing stays linked.
    @Test func aSharedMemoryClientRefusesAUCXOnlyOwner() throws {
        let pair = try LinkedPair(link: false) { $0.transport = .ucx }
        let (status, statuses) = pair.decoder.linkClusters([pair.promptInfo], timeout: .seconds(3))
        #expect(status == .featureNotEnabled && statuses == [.featureNotEnabled])
        #expect(try pair.decoder.cacheManager.links.linkCount == 0)
        #expect(eventually { (try? pair.prompt.cacheManager.links.linkCount) == 0 })
        try pair.finish()
    }

    /// A whole link and pull between two instances over UCX on TCP only (as between hosts).
    @Test func aPullOverUCXOnTCPOnly() throws {
        let pair = try LinkedPair(transport: .ucxTCP)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let desc = CacheDesc(numTensors: 2, shape: [1, 4096], dataType: .int32)
        let source = try prompt.allocateCache(desc, keys: [CacheKey(promptClusterID: 1, reqID: 3)])
        fill(source, seed: 11, ints: 4096)
        let destination = try decoder.allocateCache(desc)
        try decoder.pullCache(CacheKey(promptClusterID: 1, reqID: 3), into: destination)
        #expect(readInt32s(at: destination.tensorAddresses[1], count: 4096) == ascending(from: 10_011, count: 4096))
        try prompt.deallocateCache(source)
        try decoder.deallocateCache(destination)
        try pair.finish()
    }

    @Test(arguments: TestTransport.all)
    func linkTransportNamesTheDataPlaneOfTheLink(transport: TestTransport) throws {
        let pair = try LinkedPair(transport: transport)
        #expect(pair.decoder.linkTransport(toCluster: 1) == transport.preference)
        #expect(pair.prompt.linkTransport(toCluster: 2) == transport.preference)
        #expect(pair.decoder.linkTransport(toCluster: 77) == nil, "not linked")
        try pair.finish()
        #expect(pair.decoder.linkTransport(toCluster: 1) == nil, "unlinked and finalized")
    }

    // MARK: the knob

    @Test(arguments: TransportPreference.allCases)
    func theTransportOptionRoundTrips(preference: TransportPreference) throws {
        var config = LLMConfig()
        config.transport = preference
        let options = config.options
        #expect(options[LLMOptionKey.transport] == (preference == .automatic ? nil : preference.optionValue))
        #expect(try LLMConfig(options: options) == config)
        #expect(try LLMConfig(options: [LLMOptionKey.transport: preference.optionValue]).transport == preference)
        #expect(TransportPreference(optionValue: preference.optionValue) == preference)
    }

    @Test(arguments: ["", "UCX", "rdma", "automatic", "sharedMemory", " shm", "shm "])
    func aBadTransportOptionIsRefusedNamingKeyAndValue(value: String) {
        #expect {
            _ = try LLMConfig(options: [LLMOptionKey.transport: value])
        } throws: { error in
            guard let error = error as? LLMError else { return false }
            return error.status == .paramInvalid && error.message.contains(LLMOptionKey.transport)
                && error.message.contains("\"\(value)\"") && error.message.contains("auto, shm or ucx")
        }
    }

    @Test(arguments: ["", "UCX", "tcp", "1"])
    func aBadDatadistTransportRefusesInitializeAndLeavesTheInstanceUninitialized(value: String) {
        let instance = LLMDataDist(role: .prompt, clusterID: 1)
        defer { instance.finalize() }
        var environment = emulatorEnvironment()
        environment[TransportPreference.environmentVariable] = value
        #expect {
            try instance.initialize(LLMConfig(), environment: environment)
        } throws: { error in
            guard let error = error as? LLMError else { return false }
            return error.status == .paramInvalid && error.message.contains("DATADIST_TRANSPORT is \"\(value)\"")
        }
        #expect(throws: LLMError.self) { _ = try instance.cacheManager }
    }

    /// `DATADIST_TRANSPORT` decides only where the configuration leaves `.automatic`.
    @Test func datadistTransportOverridesOnlyAutomatic() throws {
        let environment = [TransportPreference.environmentVariable: "ucx"]
        #expect(try TransportPreference.effective(.automatic, environment: environment) == .ucx)
        #expect(try TransportPreference.effective(.sharedMemory, environment: environment) == .sharedMemory)
        #expect(try TransportPreference.effective(.automatic, environment: [:]) == .automatic)
    }
}
