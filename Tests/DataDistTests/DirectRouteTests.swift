import BlockPool
import DeviceRuntime
import LinkLayer
import Testing

@testable import DataDist

/// Two engines of one process: their link's requests and releases go straight to the owner's dispatcher (no
/// socket round trip), and the owner answers exactly as over the socket: the malicious client's requests are
/// refused with the same statuses, grants are exact, keys are taken once, and the owner's close voids them.
@Suite(.timeLimit(.minutes(1))) struct DirectRouteTests {
    static let desc = CacheDesc(numTensors: 2, shape: [4, 16], dataType: .int32)
    static let key = CacheKey(promptClusterID: 1, reqID: 1)

    static func status(of request: ResolveRequest, over channel: PeerChannel) -> LLMStatusCode? {
        do throws(LinkError) {
            _ = try channel.request(.resolve, request.encoded(), timeout: .seconds(2), what: "test")
            return nil
        } catch {
            return LLMError(error).status
        }
    }

    @Test(arguments: [TestTransport.sharedMemory, .aclIPC])
    func everyForbiddenRequestIsRefusedOnTheDirectRouteAndGrantsAreExact(transport: TestTransport) throws {
        let pair = try LinkedPair(transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let keyed = try prompt.allocateCache(Self.desc, keys: [Self.key])
        let unkeyed = try prompt.allocateCache(Self.desc)
        let blocks = try prompt.allocateBlocksCache(
            CacheDesc(numTensors: 2, shape: [8, 16], dataType: .int32), key: BlocksCacheKey(clusterID: 1, modelID: 4))
        let channel = try decoder.links.link(to: 1, for: "test").channel
        let resolve = MaliciousClientTests.resolve
        let refused: [(ResolveRequest, LLMStatusCode)] = [
            (resolve(.key(reqID: 2, prefixID: .max, modelID: 0), 0..<2, 64, false, []), .kvCacheNotExist),
            (resolve(.key(reqID: 1, prefixID: .max, modelID: 9), 0..<2, 64, false, []), .kvCacheNotExist),
            (resolve(.key(reqID: 1, prefixID: 3, modelID: 0), 0..<2, 64, false, []), .paramInvalid),
            (resolve(.slot(cacheID: 999, batchIndex: 0), 0..<2, 64, false, []), .kvCacheNotExist),
            (resolve(.slot(cacheID: unkeyed.cacheID, batchIndex: 0), 0..<2, 64, false, []), .kvCacheNotExist),
            (resolve(.slot(cacheID: keyed.cacheID, batchIndex: 4), 0..<2, 64, false, []), .kvCacheNotExist),
            (resolve(.key(reqID: 1, prefixID: .max, modelID: 0), 1..<3, 64, false, []), .paramInvalid),
            (resolve(.key(reqID: 1, prefixID: .max, modelID: 0), 0..<2, 65, false, []), .paramInvalid),
            (resolve(.key(reqID: 1, prefixID: .max, modelID: 0), 0..<2, 64, true, []), .paramInvalid),
            (resolve(.blocks(modelID: 4), 0..<2, 64, false, [8]), .paramInvalid),
            (resolve(.blocks(modelID: 5), 0..<2, 64, false, [0]), .kvCacheNotExist),
        ]
        let before = channel.directFrames
        for (request, status) in refused {
            #expect(Self.status(of: request, over: channel) == status, "\(request.target)")
        }
        #expect(channel.directFrames == before + UInt64(refused.count), "every request took the direct route")
        #expect(prompt.audit().pinnedByPeers == 0)

        // Malformed requests are refused; releases of pins the link does not hold change nothing.
        #expect(throws: LinkError.self) {
            try channel.request(.resolve, [1, 2, 3], timeout: .seconds(2), what: "test")
        }
        #expect(channel.post(.release, ReleaseNotice(pinID: 12345, succeeded: true).encoded()))
        #expect(channel.post(.release, [9, 9]))
        #expect(prompt.audit().pinnedByPeers == 0 && prompt.audit().boundKeys == 2)

        // A grant covers exactly the named slot of each tensor; a failed release gives the key back.
        let pool = try #require(prompt.resources.devicePool)
        let grant = try Grant(
            payload: channel.request(
                .resolve, resolve(.slot(cacheID: keyed.cacheID, batchIndex: 0), 0..<2, 64, false, []).encoded(),
                timeout: .seconds(2), what: "test"
            ).payload)
        #expect(grant.extents.count == 2)
        for (tensor, extent) in grant.extents.enumerated() {
            #expect(extent.offset == UInt64(keyed.tensorAddresses[tensor] - pool.region.address))
            #expect(extent.length == 64)
        }
        #expect(prompt.audit().pinnedByPeers == 1)
        #expect(prompt.audit().boundKeys == 1, "the grant took the key")
        #expect(channel.release(pinID: grant.pinID, succeeded: false))
        #expect(prompt.audit().pinnedByPeers == 0, "the direct release is served before it returns")
        #expect(prompt.audit().boundKeys == 2, "a failed transfer gives the key back")

        // Through the public API the key is pulled exactly once.
        let destination = try decoder.allocateCache(Self.desc)
        let beforePull = channel.directFrames
        try decoder.pullCache(Self.key, into: destination)
        #expect(channel.directFrames == beforePull + 2, "the resolve and the release went directly")
        #expect(throws: LLMError.self) { try decoder.pullCache(Self.key, into: destination) }

        // A grant the peer still holds when the link closes is voided; the route serves nothing after the close.
        _ = try channel.request(
            .resolve, resolve(.blocks(modelID: 4), 0..<2, 64, false, [1]).encoded(), timeout: .seconds(2), what: "test")
        #expect(prompt.audit().pinnedByPeers == 1)
        #expect(pair.decoder.unlinkClusters([pair.promptInfo]) == (.success, [.success]))
        #expect(eventually { prompt.audit().pinnedByPeers == 0 })
        let afterClose = channel.directFrames
        #expect(Self.status(of: resolve(.blocks(modelID: 4), 0..<2, 64, false, [1]), over: channel) == .linkFailed)
        #expect(channel.directFrames == afterClose)

        try prompt.deallocateCache(keyed)
        try prompt.deallocateCache(unkeyed)
        try prompt.deallocateBlocksCache(blocks)
        try decoder.deallocateCache(destination)
        try pair.finish()
    }

    /// Grants taken on the direct route while the owner closes the link are all voided by the close: none is made
    /// after the owner released the link's pins (the close waits for the calls inside the route), whether the
    /// owner closes it alone (`force`) or unlinks it.
    @Test(arguments: [true, false]) func grantsRacingTheOwnersCloseAreAllVoided(force: Bool) throws {
        let pair = try LinkedPair()
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let blocks = try prompt.allocateBlocksCache(
            CacheDesc(numTensors: 2, shape: [8, 16], dataType: .int32), key: BlocksCacheKey(clusterID: 1, modelID: 4))
        let channel = try decoder.links.link(to: 1, for: "test").channel
        let request = MaliciousClientTests.resolve(.blocks(modelID: 4), blocks: [1]).encoded()
        let threads = (0..<3).map { _ in
            TestThread {
                var granted = 0
                // Until the close: each grant is held, never released.
                while granted < 5_000,
                    (try? channel.request(.resolve, request, timeout: .seconds(2), what: "test")) != nil
                {
                    granted += 1
                }
                return []
            }
        }
        for thread in threads { try thread.start() }
        #expect(eventually { prompt.audit().pinnedByPeers > 0 })
        let decoderInfo = LLMClusterInfo(remoteClusterID: 2, remoteIPInfos: [])
        #expect(pair.prompt.unlinkClusters([decoderInfo], force: force) == (.success, [.success]))
        for thread in threads { thread.join() }
        #expect(channel.directFrames > 0)
        #expect(eventually { prompt.audit().pinnedByPeers == 0 }, "\(prompt.audit())")
        try prompt.deallocateBlocksCache(blocks)
        try pair.finish()
    }

    /// Over UCX the requests keep the control connection (the owner may deliver the bytes itself).
    @Test func aLinkOverUCXHasNoDirectRoute() throws {
        let pair = try LinkedPair(transport: .ucx)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let source = try prompt.allocateCache(Self.desc, keys: [Self.key])
        let destination = try decoder.allocateCache(Self.desc)
        try decoder.pullCache(Self.key, into: destination)
        #expect(try decoder.links.link(to: 1, for: "test").channel.directFrames == 0)
        try prompt.deallocateCache(source)
        try decoder.deallocateCache(destination)
        try pair.finish()
    }
}
