import CoreMetrics
import Synchronization

/// One pool's figures: its allocation failures (counted as they happen) and its page gauges (set when the
/// instance's metrics are read). Made once per pool, when `initialize` builds it.
final class PoolMeters: Sendable {
    /// `device` or `host`.
    let pool: String
    private let failures = Atomic<Int>(0)
    private let failuresCounter: Counter
    private let inUseGauge: Gauge
    private let freeGauge: Gauge
    private let pinnedGauge: Gauge

    init(clusterID: UInt64, pool: String, factory: any MetricsFactory) {
        self.pool = pool
        let dimensions = [("cluster", "\(clusterID)"), ("pool", pool)]
        failuresCounter = Counter(label: MetricName.poolAllocationFailures, dimensions: dimensions, factory: factory)
        inUseGauge = Gauge(label: MetricName.poolPagesInUse, dimensions: dimensions, factory: factory)
        freeGauge = Gauge(label: MetricName.poolPagesFree, dimensions: dimensions, factory: factory)
        pinnedGauge = Gauge(label: MetricName.poolPagesPinned, dimensions: dimensions, factory: factory)
    }

    /// An allocation this pool could not serve (the caller got `.outOfMemory`).
    func allocationFailed() {
        failures.add(1, ordering: .relaxed)
        failuresCounter.increment()
    }

    /// Sets the gauges to `pagesInUse`, `pagesFree` and `pagesPinned` and returns the pool's figures.
    func sample(pagesInUse: Int, pagesFree: Int, pagesPinned: Int, pageSize: Int) -> PoolMetricsSnapshot {
        inUseGauge.record(pagesInUse)
        freeGauge.record(pagesFree)
        pinnedGauge.record(pagesPinned)
        return PoolMetricsSnapshot(
            pool: pool, pageSize: pageSize, pagesInUse: pagesInUse, pagesFree: pagesFree,
            allocationFailures: failures.load(ordering: .relaxed), pagesPinnedByPeers: pagesPinned)
    }
}
