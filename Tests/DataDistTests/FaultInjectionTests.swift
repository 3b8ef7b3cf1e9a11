import DataDist
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `DATADIST_FAULTS` through the public API: each injected fault gives the status a real failure of that kind
/// gives, and leaves no pin, page or key behind.
@Suite(.timeLimit(.minutes(1))) struct FaultInjectionTests {
    let desc = CacheDesc(numTensors: 2, shape: [1, 256], dataType: .int32)

    func initialize(faults: String, hostPool: Bool = false) -> LLMError? {
        var config = LLMConfig()
        config.memoryPool = MemoryPoolConfig(size: 1 << 20)
        config.hostMemoryPool = hostPool ? MemoryPoolConfig(size: 1 << 20) : nil
        let instance = LLMDataDist(role: .prompt, clusterID: 1)
        defer { instance.finalize() }
        do {
            try instance.initialize(config, environment: emulatorEnvironment(faults: faults))
            return nil
        } catch {
            #expect(throws: LLMError.self, "not initialized") { _ = try instance.cacheManager }
            return error
        }
    }

    @Test func anAllocationFaultFailsInitializeWithDeviceOutOfMemory() throws {
        let device = try #require(initialize(faults: "alloc@1"))
        #expect(device.status == .deviceOutOfMemory)
        #expect(device.message.contains("LLMConfig.memoryPool"), "\(device)")
        #expect(device.message.contains("injected fault (DATADIST_FAULTS alloc)"), "\(device)")
        let host = try #require(initialize(faults: "alloc@2", hostPool: true))
        #expect(host.status == .deviceOutOfMemory)
        #expect(host.message.contains("LLMConfig.hostMemoryPool"), "\(host)")
        #expect(initialize(faults: "alloc@3", hostPool: true) == nil, "two pools, two allocations")
    }

    @Test func aBadSpecRefusesInitializeNamingTheToken() throws {
        let error = try #require(initialize(faults: "copy@3,recieve@1"))
        #expect(error.status == .failed)
        #expect(error.message.contains("DATADIST_FAULTS") && error.message.contains("\"recieve@1\""), "\(error)")
    }

    @Test func aCopyFaultFailsCopyCacheAndChangesNothing() throws {
        var config = LLMConfig()
        config.memoryPool = MemoryPoolConfig(size: 1 << 20)
        let instance = LLMDataDist(role: .prompt, clusterID: 1)
        try instance.initialize(config, environment: emulatorEnvironment(faults: "copy@1"))
        defer { instance.finalize() }
        let manager = try instance.cacheManager
        let source = try manager.allocateCache(desc)
        let destination = try manager.allocateCache(desc)
        fill(source, seed: 5, ints: 256)
        expectRefusal(.failed, mentioning: ["injected fault (DATADIST_FAULTS copy)", "507013"], in: manager) {
            try manager.copyCache(dst: destination, src: source)
        }
        try manager.copyCache(dst: destination, src: source)
        #expect(readInt32s(at: destination.tensorAddresses[1], count: 256) == ascending(from: 10_005, count: 256))
        try manager.deallocateCache(source)
        try manager.deallocateCache(destination)
        #expect(manager.audit().isClean, "\(manager.audit())")
    }

    /// Pulls request key 7 after a pull the fault failed with `status`: the failed pull gave the key back.
    func expectFailedPullGivesTheKeyBack(
        _ status: LLMStatusCode, faults: (prompt: String?, decoder: String?), mentioning: [String] = [],
        relink: Bool, transport: TestTransport = .sharedMemory, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let pair = try LinkedPair(faults: faults, transport: transport)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let source = try prompt.allocateCache(desc, keys: [key(7)])
        fill(source, seed: 3, ints: 256)
        let destination = try decoder.allocateCache(desc)
        expectRefusal(status, mentioning: mentioning, in: decoder, sourceLocation: sourceLocation) {
            try decoder.pullCache(key(7), into: destination)
        }
        #expect(eventually { prompt.audit().pinnedByPeers == 0 }, "\(prompt.audit())", sourceLocation: sourceLocation)
        #expect(prompt.audit().boundKeys == 1, "the key was given back", sourceLocation: sourceLocation)
        if relink {
            _ = pair.decoder.unlinkClusters([pair.promptInfo])
            let (linked, _) = pair.decoder.linkClusters([pair.promptInfo], timeout: .seconds(3))
            #expect(linked == .success, sourceLocation: sourceLocation)
        }
        try decoder.pullCache(key(7), into: destination)
        #expect(
            readInt32s(at: destination.tensorAddresses[1], count: 256) == ascending(from: 10_003, count: 256),
            sourceLocation: sourceLocation)
        #expect(prompt.audit().boundKeys == 0, sourceLocation: sourceLocation)
        try prompt.deallocateCache(source)
        try decoder.deallocateCache(destination)
        try pair.finish(sourceLocation: sourceLocation)
        #expect(prompt.audit().isClean && decoder.audit().isClean, sourceLocation: sourceLocation)
    }

    /// Over shared memory only: UCX moves the bytes itself, the runtime's copy (where the fault fires) never runs.
    @Test func aDataPlaneCopyFaultFailsThePullAndGivesTheKeyBack() throws {
        try expectFailedPullGivesTheKeyBack(
            .failed, faults: (nil, "copy@1"), mentioning: ["injected fault (DATADIST_FAULTS copy)"], relink: false)
    }

    @Test(arguments: TestTransport.transfers) func aSendFaultFailsTheLink(transport: TestTransport) throws {
        try expectFailedPullGivesTheKeyBack(.linkFailed, faults: (nil, "send@1"), relink: true, transport: transport)
    }

    @Test(arguments: TestTransport.transfers) func aFailedReleaseFailsThePullAndGivesTheKeyBack(
        transport: TestTransport
    ) throws {
        // The decoder's first send is the resolve request (over UCX one that brings the bytes with the grant), its
        // second the release of the grant.
        try expectFailedPullGivesTheKeyBack(
            .linkFailed, faults: (nil, "send@2"), mentioning: ["before the release of its grant was sent"],
            relink: true, transport: transport)
    }

    @Test(arguments: TestTransport.transfers) func aReceiveFaultFailsTheLink(transport: TestTransport) throws {
        try expectFailedPullGivesTheKeyBack(.linkFailed, faults: (nil, "receive@1"), relink: true, transport: transport)
    }

    @Test(arguments: TestTransport.transfers) func anOwnersSendFaultFailsTheLinkForTheRequester(
        transport: TestTransport
    ) throws {
        // The owner's first send is the welcome of the link, its second the grant.
        try expectFailedPullGivesTheKeyBack(.linkFailed, faults: ("send@2", nil), relink: true, transport: transport)
    }

    @Test(arguments: TestTransport.transfers) func aFailedWelcomeFailsLinkClustersAndTheNextLinkWorks(
        transport: TestTransport
    ) throws {
        let pair = try LinkedPair(link: false, faults: ("send@1", nil), transport: transport)
        let (failed, failures) = pair.decoder.linkClusters([pair.promptInfo], timeout: .seconds(3))
        #expect(failed != .success && failures != [.success], "\(failed) \(failures)")
        #expect(eventually { (try? pair.prompt.cacheManager.audit().isClean) == true })
        let (linked, statuses) = pair.decoder.linkClusters([pair.promptInfo], timeout: .seconds(3))
        #expect(linked == .success && statuses == [.success], "\(linked) \(statuses)")
        try pair.finish()
    }

    @Test(arguments: TestTransport.all) func aPeerDeathFailsTheLink(transport: TestTransport) throws {
        try expectFailedPullGivesTheKeyBack(
            .linkFailed, faults: (nil, "peer-death@1"), relink: true, transport: transport)
    }

    @Test(arguments: TestTransport.all) func aTimedPeerDeathOfTheOwnerDropsTheLink(transport: TestTransport)
        throws
    {
        let pair = try LinkedPair(faults: ("peer-death@after=100ms", nil), transport: transport)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let destination = try decoder.allocateCache(desc)
        func pullStatus() -> LLMStatusCode {
            do {
                try decoder.pullCache(key(404), into: destination)
                return .success
            } catch {
                return error.status
            }
        }
        #expect(
            eventually(within: .seconds(5)) {
                usleep(20_000)  // a refused pull a turn, not a thousand
                return pullStatus() == .linkFailed
            })
        #expect(eventually { prompt.audit().pinnedByPeers == 0 })
        try decoder.deallocateCache(destination)
        try pair.finish()
        #expect(prompt.audit().isClean && decoder.audit().isClean)
    }

    @Test(arguments: TestTransport.transfers) func withoutASpecNothingFails(transport: TestTransport) throws {
        let pair = try LinkedPair(transport: transport)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let destination = try decoder.allocateCache(desc)
        for round in 0..<50 {
            let source = try prompt.allocateCache(desc, keys: [key(UInt64(round))])
            try decoder.pullCache(key(UInt64(round)), into: destination)
            try prompt.deallocateCache(source)
        }
        try decoder.deallocateCache(destination)
        try pair.finish()
        #expect(prompt.audit().isClean && decoder.audit().isClean)
    }
}
