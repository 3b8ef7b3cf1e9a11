import LinkLayer
import Testing

@testable import DataDist

#if canImport(Glibc)
import Glibc
#endif

/// A pull through a request key takes it when the owner grants the pull: exactly one of several concurrent
/// pulls gets it, and a transfer that fails or whose peer dies gives it back (unless the owner removed it).
@Suite(.timeLimit(.minutes(1))) struct ReservationTests {
    typealias RawPeer = MaliciousClientTests.RawPeer

    @Test(arguments: TestTransport.transfers) func concurrentPullsOfTheSameKeysSucceedExactlyOnceEach(
        transport: TestTransport
    ) throws {
        let pair = try LinkedPair(transport: transport)
        let second = LLMDataDist(role: .decoder, clusterID: 3)
        var config = LLMConfig()
        config.memoryPool = MemoryPoolConfig(size: 1 << 20)
        config.transport = transport.preference
        try second.initialize(config, environment: emulatorEnvironment().merging(transport.environment) { $1 })
        defer { second.finalize() }
        #expect(second.linkClusters([pair.promptInfo]) == (.success, [.success]))
        let prompt = try pair.prompt.cacheManager
        let requests = (0..<64).map { CacheKey(promptClusterID: 1, reqID: UInt64($0)) }
        let source = try prompt.allocateCache(
            CacheDesc(numTensors: 2, shape: [64, 32], dataType: .int32), keys: requests)
        try prompt.deallocateCache(source)
        let managers = [try pair.decoder.cacheManager, try second.cacheManager]
        let threads = managers.map { manager in
            TestThread {
                var failures: [String] = []
                let destination = try! manager.allocateCache(
                    CacheDesc(numTensors: 2, shape: [1, 32], dataType: .int32))
                for key in requests {
                    do {
                        try manager.pullCache(key, into: destination)
                        failures.append("pulled \(key.reqID)")
                    } catch let error as LLMError where error.status == .kvCacheNotExist {
                    } catch {
                        failures.append("unexpected \(error)")
                    }
                }
                try? manager.deallocateCache(destination)
                return failures
            }
        }
        for thread in threads { try thread.start() }
        for thread in threads { thread.join() }
        let outcomes = threads.flatMap { $0.failures }
        #expect(!outcomes.contains { $0.hasPrefix("unexpected") }, "\(outcomes.filter { $0.hasPrefix("unexpected") })")
        let pulled = outcomes.filter { $0.hasPrefix("pulled") }
        #expect(pulled.count == 64, "each key exactly once")
        #expect(Set(pulled).count == 64)
        #expect(eventually { prompt.audit().isClean })
        _ = second.unlinkClusters([pair.promptInfo])
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func aKeyRemovedWhileInFlightStaysRemovedWhenTheTransferFails(
        transport: TestTransport
    ) throws {
        let pair = try LinkedPair(link: false, transport: transport)
        let prompt = try pair.prompt.cacheManager
        let key = CacheKey(promptClusterID: 1, reqID: 7)
        let source = try prompt.allocateCache(CacheDesc(numTensors: 1, shape: [1, 16], dataType: .int32), keys: [key])
        var peer = try RawPeer(
            endpoint: pair.promptInfo.remoteIPInfos[0], clusterID: 5, expecting: 1, transport: transport)
        let grant = try Grant(
            payload: try peer.request(
                .resolve,
                MaliciousClientTests.resolve(.key(reqID: 7, prefixID: .max, modelID: 0), tensors: 0..<1).encoded()
            ).payload)
        #expect(prompt.audit().boundKeys == 0)
        expectRefusal(.paramInvalid, mentioning: ["being pulled"], in: prompt) {
            _ = try prompt.allocateCache(CacheDesc(numTensors: 1, shape: [1, 16], dataType: .int32), keys: [key])
        }
        try prompt.removeCacheKey(key)
        try peer.post(.release, ReleaseNotice(pinID: grant.pinID, succeeded: false).encoded())
        #expect(try peer.request(.ping, []).kind == .ack)
        #expect(prompt.audit().boundKeys == 0, "removed while in flight: not given back")
        peer.channel.close()
        try prompt.deallocateCache(source)
        #expect(eventually { prompt.audit().isClean })
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func aPeerThatDiesHoldingAKeyGivesItBack(transport: TestTransport) throws
    {
        let pair = try LinkedPair(transport: transport)
        let prompt = try pair.prompt.cacheManager
        let key = CacheKey(promptClusterID: 1, reqID: 8)
        let source = try prompt.allocateCache(CacheDesc(numTensors: 1, shape: [1, 16], dataType: .int32), keys: [key])
        fill(source, seed: 40, ints: 16)
        var peer = try RawPeer(
            endpoint: pair.promptInfo.remoteIPInfos[0], clusterID: 6, expecting: 1, transport: transport)
        _ = try peer.request(
            .resolve, MaliciousClientTests.resolve(.key(reqID: 8, prefixID: .max, modelID: 0), tensors: 0..<1).encoded()
        )
        #expect(prompt.audit().boundKeys == 0)
        peer.channel.close()
        #expect(eventually { prompt.audit().boundKeys == 1 && prompt.audit().pinnedByPeers == 0 })
        let decoder = try pair.decoder.cacheManager
        let destination = try decoder.allocateCache(CacheDesc(numTensors: 1, shape: [1, 16], dataType: .int32))
        try decoder.pullCache(key, into: destination)
        #expect(readInt32s(at: destination.tensorAddresses[0], count: 16) == ascending(from: 40, count: 16))
        try prompt.deallocateCache(source)
        try decoder.deallocateCache(destination)
        try pair.finish()
    }
}
