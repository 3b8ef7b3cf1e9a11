import Dispatch
import Logging
import MetricsTestKit
import Synchronization
import Testing
import ThreadSanitizerSupport

@testable import DataDist

/// What an instance reports through swift-metrics (read back from MetricsTestKit's `TestMetrics`) and through
/// `metrics()`, after a known sequence of transfers.
@Suite(.timeLimit(.minutes(1))) struct MetricsTests {
    static let desc = CacheDesc(numTensors: 2, shape: [1, 64], dataType: .int32)
    static let bytesPerPull = 2 * 64 * 4

    @Test func threePullsOneRefusedOneTimedOutAreCountedExactly() throws {
        let metrics = TestMetrics()
        let served = TestMetrics()
        let pair = try LinkedPair(timeout: .milliseconds(300), promptMetrics: served, decoderMetrics: metrics)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let keys = (1...4).map { CacheKey(promptClusterID: 1, reqID: UInt64($0)) }
        let sources = try keys.map { try prompt.allocateCache(Self.desc, keys: [$0]) }
        let destination = try decoder.allocateCache(Self.desc)

        for key in keys.prefix(3) { try decoder.pullCache(key, into: destination) }
        #expect(throws: LLMError.self) {
            try decoder.pullCache(CacheKey(promptClusterID: 1, reqID: 99), into: destination)
        }
        Self.whilePromptStalls(prompt, upToSeconds: 5) {
            let error = #expect(throws: LLMError.self) { try decoder.pullCache(keys[3], into: destination) }
            #expect(error?.status == .timeout, "\(String(describing: error))")
        }
        // Too large for the decoder's pool: one refused allocation.
        #expect(throws: LLMError.self) {
            try decoder.allocateCache(CacheDesc(numTensors: 1, shape: [1, 8 << 20], dataType: .int8))
        }

        let link = [("cluster", "2"), ("peer_cluster", "1"), ("transport", "shm")]
        #expect(try metrics.expectCounter(MetricName.transfersStarted, link).totalValue == 5)
        #expect(try metrics.expectCounter(MetricName.transfersSucceeded, link).totalValue == 3)
        #expect(
            try metrics.expectCounter(MetricName.transfersFailed, link + [("status", "LLM_KV_CACHE_NOT_EXIST")])
                .totalValue == 1)
        #expect(
            try metrics.expectCounter(MetricName.transfersFailed, link + [("status", "LLM_TIMEOUT")]).totalValue == 1)
        #expect(metrics.counterTotal(label: MetricName.transfersFailed) == 2)
        #expect(try metrics.expectCounter(MetricName.transferBytes, link).totalValue == Int64(3 * Self.bytesPerPull))
        #expect(try metrics.expectTimer(MetricName.transferSeconds, link).values.count == 5)
        // The timed-out resolve got no answer: four round trips.
        let roundTrips = try metrics.expectTimer(MetricName.roundTripSeconds, link).values
        #expect(roundTrips.count == 4 && roundTrips.allSatisfy { $0 > 0 })
        #expect(try metrics.expectCounter(MetricName.linksEstablished, link).totalValue == 1)
        #expect(
            try metrics.expectCounter(MetricName.poolAllocationFailures, [("cluster", "2"), ("pool", "device")])
                .totalValue == 1)

        let snapshot = pair.decoder.metrics()
        let figures = try #require(snapshot.link(toCluster: 1))
        #expect(figures.transfersStarted == 5 && figures.transfersSucceeded == 3)
        #expect(figures.transfersFailed == ["LLM_KV_CACHE_NOT_EXIST": 1, "LLM_TIMEOUT": 1])
        #expect(figures.bytes == 3 * Self.bytesPerPull && figures.transfers.count == 5 && figures.roundTrips.count == 4)
        #expect(figures.transport == "shm" && figures.linksEstablished == 1 && figures.linksClosed == 0)
        #expect(snapshot.linksOpen == 1 && snapshot.auditOrphans == 0 && snapshot.keysBound == 0)
        let device = try #require(snapshot.pools.first { $0.pool == "device" })
        #expect(device.allocationFailures == 1 && device.pagesInUse > 0)
        #expect(
            try metrics.expectGauge(MetricName.poolPagesInUse, [("cluster", "2"), ("pool", "device")]).lastValue
                == Double(device.pagesInUse))
        #expect(try metrics.expectGauge(MetricName.auditOrphans, [("cluster", "2")]).lastValue == 0)

        // The prompt answers the timed-out resolve once its table is free again; that late grant is given back: key 4
        // is still bound at the prompt, which counts four grants (the late one too) and one refusal.
        let owner = [("cluster", "1"), ("peer_cluster", "2"), ("transport", "shm")]
        let lateGrantCounted = eventually(within: .seconds(20)) {
            (try? served.expectCounter(MetricName.grantsServed, owner).totalValue) == 4
                && prompt.audit().pinnedByPeers == 0
        }
        #expect(lateGrantCounted)
        #expect(prompt.audit().boundKeys == 1)
        #expect(try served.expectCounter(MetricName.grantsServed, owner).totalValue == 4)
        #expect(
            try served.expectCounter(MetricName.refusalsServed, owner + [("status", "LLM_KV_CACHE_NOT_EXIST")])
                .totalValue == 1)
        #expect(served.counterTotal(label: MetricName.refusalsServed) == 1)
        #expect(served.counterTotal(label: MetricName.transfersStarted) == 0, "the prompt only served")
        let ownerFigures = try #require(pair.prompt.metrics().link(toCluster: 2))
        #expect(ownerFigures.grantsServed == 4 && ownerFigures.refusalsServed == ["LLM_KV_CACHE_NOT_EXIST": 1])
        #expect(figures.grantsServed == 0 && figures.refusalsServed.isEmpty, "the decoder granted nothing")
        try decoder.deallocateCache(destination)
        for source in sources { try prompt.deallocateCache(source) }
        try prompt.removeCacheKey(keys[3])
        try pair.finish()
        #expect(try metrics.expectCounter(MetricName.linksClosed, link).totalValue == 1)
        #expect(pair.decoder.metrics().link(toCluster: 1)?.linksClosed == 1)
        #expect(pair.decoder.metrics().pools.isEmpty)
    }

    @Test func aBatchedPullCountsOneTransferPerCluster() throws {
        let metrics = TestMetrics()
        let pair = try LinkedPair(decoderMetrics: metrics)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let keys = (1...3).map { CacheKey(promptClusterID: 1, reqID: UInt64($0)) }
        let sources = try keys.map { try prompt.allocateCache(Self.desc, keys: [$0]) }
        let destination = try decoder.allocateCache(CacheDesc(numTensors: 2, shape: [3, 64], dataType: .int32))
        try decoder.pullCaches(keys.enumerated().map { CachePull($1, into: destination, batchIndex: $0) })

        let figures = try #require(pair.decoder.metrics().link(toCluster: 1))
        #expect(figures.transfersStarted == 1 && figures.transfersSucceeded == 1 && figures.failedTotal == 0)
        #expect(figures.bytes == 3 * Self.bytesPerPull && figures.roundTrips.count == 1)
        #expect(metrics.counterTotal(label: MetricName.transferBytes) == Int64(3 * Self.bytesPerPull))
        try decoder.deallocateCache(destination)
        for source in sources { try prompt.deallocateCache(source) }
        try pair.finish()
    }

    @Test func pagesAPeersTransferHoldsPinnedAreReportedPerPoolUntilItsRelease() throws {
        let served = TestMetrics()
        let pair = try LinkedPair(promptMetrics: served)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        func devicePool() -> PoolMetricsSnapshot? { pair.prompt.metrics().pools.first { $0.pool == "device" } }
        let before = try #require(devicePool()).pagesInUse
        let source = try prompt.allocateCache(ExactlyOnceTests.desc, keys: [ExactlyOnceTests.key])
        let sourcePages = try #require(devicePool()).pagesInUse - before
        #expect(sourcePages > 0)
        let destination = try decoder.allocateCache(ExactlyOnceTests.desc)
        #expect(try #require(devicePool()).pagesPinnedByPeers == 0)

        // Held between its copy and its release: the owner still pins the source for it.
        let pull = try ExactlyOnceTests.HeldPull(decoder, into: destination)
        let held = try #require(devicePool())
        #expect(held.pagesPinnedByPeers == sourcePages)
        #expect(pair.prompt.metrics().pools.first { $0.pool == "host" }?.pagesPinnedByPeers ?? 0 == 0)
        let gauge = try served.expectGauge(MetricName.poolPagesPinned, [("cluster", "1"), ("pool", "device")])
        #expect(gauge.lastValue == Double(sourcePages))
        #expect(pull.resume() == .success)
        #expect(eventually { devicePool()?.pagesPinnedByPeers == 0 })
        try prompt.deallocateCache(source)
        try decoder.deallocateCache(destination)
        try pair.finish()
    }

    @Test func anUninitializedInstanceReportsNoPoolsAndNoLinks() {
        let instance = LLMDataDist(
            role: .decoder, clusterID: 9, logger: .init(label: "metrics"), metricsFactory: TestMetrics())
        let snapshot = instance.metrics()
        #expect(snapshot.clusterID == 9 && snapshot.links.isEmpty && snapshot.pools.isEmpty)
        #expect(snapshot.linksOpen == 0 && snapshot.auditOrphans == 0)
        #expect(snapshot.json.contains("\"clusterID\":9"))
    }

    /// Runs `body` while another thread holds the prompt's cache table, so its link service answers nothing.
    static func whilePromptStalls(_ prompt: CacheManager, upToSeconds stall: Int, _ body: () -> Void) {
        let holding = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            prompt.store.table.withLock { _ in
                holding.signal()
                _ = done.wait(timeout: .now() + .seconds(stall))
            }
        }
        holding.wait()
        defer { done.signal() }
        body()
    }
}
