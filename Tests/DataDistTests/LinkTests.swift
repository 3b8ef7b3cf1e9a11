import DataDist
import InMemoryLogging
import Logging
import Testing

/// Spec §15.2 link cases, in one process over loopback.
@Suite(.timeLimit(.minutes(1))) struct LinkTests {
    @Test(arguments: TestTransport.transfers) func b20LinkAndUnlinkAndRelink(transport: TestTransport) throws {
        let pair = try LinkedPair(transport: transport)
        #expect(pair.decoder.unlinkClusters([pair.promptInfo], timeout: .seconds(5)) == (.success, [.success]))
        #expect(pair.decoder.linkClusters([pair.promptInfo]) == (.success, [.success]))
        try pair.finish()
    }

    /// The peer closes its end once it acknowledged an unlink; that close is part of the unlink, not a broken link.
    @Test(arguments: TestTransport.transfers) func aPullRightAfterACleanUnlinkIsNotYetLinkEveryTime(
        transport: TestTransport
    ) throws {
        let pair = try LinkedPair(transport: transport)
        let manager = try pair.decoder.cacheManager
        let cache = try manager.allocateCache(CacheDesc(numTensors: 1, shape: [1, 4], dataType: .int8))
        for round in 0..<30 {
            #expect(pair.decoder.unlinkClusters([pair.promptInfo]) == (.success, [.success]), "round \(round)")
            do {
                try manager.pullCache(CacheKey(promptClusterID: 1, reqID: 1), into: cache)
                Issue.record("round \(round): a pull without a link succeeded")
            } catch {
                #expect(error.status == .notYetLink, "round \(round): \(error)")
            }
            #expect(pair.decoder.linkClusters([pair.promptInfo]) == (.success, [.success]), "round \(round)")
        }
        try manager.deallocateCache(cache)
        try pair.finish()
    }

    /// The owner unlinks; the decoder links again at once, while its side of the old link may still be tearing down
    /// (over IPC keys that takes closing what it imported): the old link is not a live link, so never `.alreadyLink`.
    @Test(arguments: TestTransport.transfers) func aRelinkRightAfterThePeerUnlinkedSucceedsEveryTime(
        transport: TestTransport
    ) throws {
        let pair = try LinkedPair(transport: transport)
        let decoderInfo = LLMClusterInfo(remoteClusterID: pair.decoder.clusterID)
        for round in 0..<20 {
            #expect(pair.prompt.unlinkClusters([decoderInfo]) == (.success, [.success]), "round \(round)")
            #expect(pair.decoder.linkClusters([pair.promptInfo]) == (.success, [.success]), "round \(round)")
        }
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func b21LinkingTwiceIsAlreadyLink(transport: TestTransport) throws {
        let pair = try LinkedPair(transport: transport)
        #expect(pair.decoder.linkClusters([pair.promptInfo]) == (.alreadyLink, [.alreadyLink]))
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func b22AnEmptyListAndABadTimeoutAreParamInvalid(transport: TestTransport)
        throws
    {
        let pair = try LinkedPair(link: false, transport: transport)
        #expect(pair.decoder.linkClusters([]) == (.paramInvalid, []))
        #expect(pair.decoder.linkClusters([pair.promptInfo], timeout: .zero) == (.paramInvalid, []))
        #expect(pair.decoder.unlinkClusters([pair.promptInfo], timeout: .zero) == (.paramInvalid, []))
        let noEndpoint = LLMClusterInfo(remoteClusterID: 1)
        #expect(pair.decoder.linkClusters([noEndpoint]) == (.paramInvalid, [.paramInvalid]))
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func anEnormousTimeoutIsAcceptedNotATrap(transport: TestTransport) throws
    {
        let pair = try LinkedPair(link: false, transport: transport)
        #expect(pair.decoder.linkClusters([pair.promptInfo], timeout: .seconds(Int64.max)) == (.success, [.success]))
        #expect(pair.decoder.unlinkClusters([pair.promptInfo], timeout: .seconds(Int64.max)) == (.success, [.success]))
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func b19AnUnreachablePeerIsLinkFailedWithinTheTimeout(
        transport: TestTransport
    ) throws {
        let pair = try LinkedPair(link: false, transport: transport)
        let port = pair.prompt.listenEndpoint!.port
        try pair.prompt.switchRole(.prompt, listenAddress: nil)
        let clock = ContinuousClock()
        let start = clock.now
        let dead = LLMClusterInfo(remoteClusterID: 1, remoteIPInfos: [IPEndpoint(host: "127.0.0.1", port: port)])
        #expect(pair.decoder.linkClusters([dead], timeout: .milliseconds(500)) == (.linkFailed, [.linkFailed]))
        #expect(clock.now - start < .seconds(2))
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func aPeerWithAnotherClusterIDIsLinkFailedNamingBothIDs(
        transport: TestTransport
    ) throws {
        let pair = try LinkedPair(link: false, transport: transport)
        let logs = InMemoryLogHandler()
        let decoder = LLMDataDist(role: .decoder, clusterID: 3, logger: Logger(label: "test") { _ in logs })
        try decoder.initialize(LLMConfig(), environment: emulatorEnvironment())
        defer { decoder.finalize() }
        let wrong = LLMClusterInfo(remoteClusterID: 99, remoteIPInfos: [pair.prompt.listenEndpoint!])
        #expect(decoder.linkClusters([wrong]) == (.linkFailed, [.linkFailed]))
        #expect(logs.entries.contains { "\($0.message)".contains("99") && "\($0.message)".contains("cluster 1") })
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func b23PeersMustAgreeOnRemoteCacheAccess(transport: TestTransport) throws
    {
        let pair = try LinkedPair(
            remoteAccessible: true, decoderRemoteAccessible: false, link: false, transport: transport)
        #expect(pair.decoder.linkClusters([pair.promptInfo]) == (.paramInvalid, [.paramInvalid]))
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func aLinkWorksInBothDirections(transport: TestTransport) throws {
        let pair = try LinkedPair(decoderPool: 4 << 20, transport: transport)
        let decoderCache = try pair.decoder.cacheManager.allocateCache(
            CacheDesc(numTensors: 2, shape: [1, 64], dataType: .int32), keys: [CacheKey(promptClusterID: 2, reqID: 5)])
        fill(decoderCache, seed: 7, ints: 64)
        let promptCache = try pair.prompt.cacheManager.allocateCache(
            CacheDesc(numTensors: 2, shape: [1, 64], dataType: .int32))
        try pair.prompt.cacheManager.pullCache(CacheKey(promptClusterID: 2, reqID: 5), into: promptCache)
        #expect(readInt32s(at: promptCache.tensorAddresses[1], count: 64) == (0..<64).map { 7 + 10_000 + $0 })
        try pair.prompt.cacheManager.deallocateCache(promptCache)
        try pair.decoder.cacheManager.deallocateCache(decoderCache)
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func b16SwitchRoleNeedsNoLinks(transport: TestTransport) throws {
        let pair = try LinkedPair(transport: transport)
        #expect { try pair.decoder.switchRole(.prompt) } throws: { ($0 as? LLMError)?.status == .existLink }
        #expect(pair.decoder.role == .decoder)
        _ = pair.decoder.unlinkClusters([pair.promptInfo])
        try pair.decoder.switchRole(.prompt, listenAddress: IPEndpoint(host: "127.0.0.1", port: 0))
        #expect(pair.decoder.role == .prompt)
        #expect(pair.decoder.listenEndpoint != nil)
        try pair.decoder.switchRole(.decoder)
        #expect(pair.decoder.listenEndpoint == nil)
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func forceUnlinkTearsDownThisSideAndThePeerNotices(
        transport: TestTransport
    ) throws {
        let pair = try LinkedPair(transport: transport)
        #expect(pair.decoder.unlinkClusters([pair.promptInfo], force: true) == (.success, [.success]))
        // The prompt sees the connection close and forgets the link; relinking works.
        var relinked = (LLMStatusCode.failed, [LLMStatusCode]())
        for _ in 0..<50 {
            relinked = pair.decoder.linkClusters([pair.promptInfo])
            if relinked.0 == .success { break }
        }
        #expect(relinked.0 == .success)
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func finalizeUnlinksEverything(transport: TestTransport) throws {
        let pair = try LinkedPair(transport: transport)
        pair.decoder.finalize()
        var linked = true
        for _ in 0..<100 where linked {
            let key = CacheKeyByIdAndIndex(clusterID: 2, cacheID: 1)
            let cache = try pair.prompt.cacheManager.allocateCache(
                CacheDesc(numTensors: 1, shape: [1, 4], dataType: .int8))
            do {
                try pair.prompt.cacheManager.pullCache(key, into: cache)
            } catch {
                linked = error.status != .notYetLink
            }
            try pair.prompt.cacheManager.deallocateCache(cache)
        }
        #expect(!linked, "the prompt still has a link to the finalized decoder")
        pair.prompt.finalize()
    }
}
