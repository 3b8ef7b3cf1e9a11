import DataDist
import Foundation
import Synchronization
import Testing

/// A `transferCacheAsync` whose receiver (a `datadist bench-serve` process) is SIGKILLed in the middle of the task.
@Suite("transferCacheAsync: the receiving peer killed mid-task", .serialized, .timeLimit(.minutes(1)))
struct TransferAsyncKillTests {
    static let syncTimeout = Duration.milliseconds(500)

    /// Releases layers 0 and 1 at once; layer 2 only after the test says the peer is dead.
    final class KillSynchronizer: LayerSynchronizer {
        let askedForLayer2 = Atomic<Bool>(false)
        let peerKilled = Atomic<Bool>(false)

        /// Runs on the library's driver executor. Bounded, so a test that ends early leaves no endless loop there.
        func synchronize(layer: Int, timeout: Duration?) async -> Bool {
            guard layer >= 2 else { return true }
            askedForLayer2.store(true, ordering: .releasing)
            let giveUp = ContinuousClock.now + .seconds(30)
            while !peerKilled.load(ordering: .acquiring) && ContinuousClock.now < giveUp {
                try? await Task.sleep(for: .milliseconds(2))
            }
            return true
        }
    }

    /// Over the memfd mapping and over UCX on TCP, both processes alike (as `KillTests`). Synchronous, as
    /// `KillTests`: once started it needs no thread of Swift's cooperative pool, which the suite's blocking tests
    /// can hold for tens of seconds (both of its threads on this 2-core host); every resumption of an async body
    /// waited for them, and the case ran into its time limit. `synchronize()` blocks this thread by design (the
    /// task's driver runs on the library's own executor).
    @Test(
        "the task fails with LLM_LINK_FAILED or LLM_TIMEOUT within syncKVTimeout + 1 s, and the audit stays clean",
        arguments: KillTests.transports)
    func receiverKilled(transport: [String: String]) throws {
        let serve = try SpawnedCLI(
            ["bench-serve", "--remote-accessible", "--pool-bytes", "\(16 << 20)"], environment: transport)
        defer {
            serve.signal(SIGKILL)
            _ = try? serve.wait()
        }
        let ready = try serve.nextJSON()
        let port = try #require(ready["port"] as? Int)
        try serve.send("blocks target 16 4 65536 7")  // 8 layers of 4 blocks of 64 KiB, BlocksCacheKey model 7
        #expect(try serve.nextJSON()["event"] as? String == "blocks")

        let decoder = LLMDataDist(role: .decoder, clusterID: 2)
        var config = LLMConfig()
        config.memoryPool = MemoryPoolConfig(size: 16 << 20)
        config.enableRemoteCacheAccessible = true
        config.syncKVTimeout = Self.syncTimeout
        try decoder.initialize(config, environment: ["DATADIST_BACKEND": "emulator"].merging(transport) { $1 })
        defer { decoder.finalize() }
        let prompt = LLMClusterInfo(
            remoteClusterID: 1, remoteIPInfos: [IPEndpoint(host: "127.0.0.1", port: UInt16(port))])
        #expect(decoder.linkClusters([prompt], timeout: .seconds(5)).0 == .success)
        let expected: TransportPreference = transport["DATADIST_TRANSPORT"] == "ucx" ? .ucx : .sharedMemory
        #expect(decoder.linkTransport(toCluster: 1) == expected)
        let manager = try decoder.cacheManager
        let source = try manager.allocateBlocksCache(
            CacheDesc(numTensors: 16, shape: [4, 32768], dataType: .float16))
        let sync = KillSynchronizer()
        let task = try manager.transferCacheAsync(
            source, synchronizer: sync,
            configs: [
                TransferWithCacheKeyConfig(
                    key: BlocksCacheKey(clusterID: 1, modelID: 7), sourceLayers: 0..<8, destinationLayers: 0..<8)
            ])
        let deadline = ContinuousClock.now + .seconds(10)
        while !sync.askedForLayer2.load(ordering: .acquiring) && ContinuousClock.now < deadline { usleep(2_000) }
        let asked = sync.askedForLayer2.load(ordering: .acquiring)
        #expect(asked)
        serve.signal(SIGKILL)
        let killed = ContinuousClock.now
        sync.peerKilled.store(true, ordering: .releasing)
        let status = task.synchronize()
        let elapsed = ContinuousClock.now - killed
        #expect([LLMStatusCode.linkFailed, .timeout].contains(status), "\(status)")
        #expect(elapsed <= Self.syncTimeout + .seconds(1), "the task took \(elapsed) to fail")
        #expect(task.results() == [status])
        try manager.deallocateBlocksCache(source)
        let audit = manager.audit()
        #expect(audit.orphans == 0 && audit.pinnedByPeers == 0 && audit.pagesInUse == 0, "\(audit)")
    }
}
