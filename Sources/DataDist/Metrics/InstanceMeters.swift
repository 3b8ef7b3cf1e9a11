import CoreMetrics
import Synchronization
import ThreadSanitizerSupport

/// Everything one `LLMDataDist` reports through swift-metrics, with the backend the application chose (the
/// library never picks one): the meters of each peer and transport it linked with (kept across links, unlinks
/// and `initialize`s), and the gauges sampled from its state when `metrics()` is read.
final class InstanceMeters: Sendable {
    let clusterID: UInt64
    let factory: any MetricsFactory
    private let links = Lock<[LinkKey: LinkMeters]>([:])
    private let linksOpenGauge: Gauge
    private let pinnedGauge: Gauge
    private let keysGauge: Gauge
    private let orphansGauge: Gauge

    init(clusterID: UInt64, factory: any MetricsFactory) {
        self.clusterID = clusterID
        self.factory = factory
        let dimensions = [("cluster", "\(clusterID)")]
        linksOpenGauge = Gauge(label: MetricName.linksOpen, dimensions: dimensions, factory: factory)
        pinnedGauge = Gauge(label: MetricName.pinnedByPeers, dimensions: dimensions, factory: factory)
        keysGauge = Gauge(label: MetricName.keysBound, dimensions: dimensions, factory: factory)
        orphansGauge = Gauge(label: MetricName.auditOrphans, dimensions: dimensions, factory: factory)
    }

    /// The meters of links to `peerClusterID` over `transport` (made on the first such link: link time, never
    /// a transfer's).
    func link(to peerClusterID: UInt64, transport: String) -> LinkMeters {
        links.withLock { links in
            let key = LinkKey(peerClusterID: peerClusterID, transport: transport)
            if let meters = links[key] { return meters }
            let meters = LinkMeters(
                clusterID: clusterID, peerClusterID: peerClusterID, transport: transport, factory: factory)
            links[key] = meters
            return meters
        }
    }

    /// The meters of a pool `initialize` just built (`device` or `host`).
    func pool(_ pool: String) -> PoolMeters { PoolMeters(clusterID: clusterID, pool: pool, factory: factory) }

    /// Sets the sampled gauges from `audit` and `linksOpen`, and returns every figure.
    func snapshot(audit: CacheAudit?, linksOpen: Int, pools: [PoolMetricsSnapshot]) -> MetricsSnapshot {
        linksOpenGauge.record(linksOpen)
        pinnedGauge.record(audit?.pinnedByPeers ?? 0)
        keysGauge.record(audit?.boundKeys ?? 0)
        orphansGauge.record(audit?.orphans ?? 0)
        let links = links.withLock { Array($0.values) }
            .sorted { ($0.peerClusterID, $0.transport) < ($1.peerClusterID, $1.transport) }
        return MetricsSnapshot(
            clusterID: clusterID, links: links.map(\.snapshot), pools: pools, linksOpen: linksOpen,
            pinnedByPeers: audit?.pinnedByPeers ?? 0, keysBound: audit?.boundKeys ?? 0,
            auditOrphans: audit?.orphans ?? 0)
    }
}

private struct LinkKey: Hashable {
    let peerClusterID: UInt64
    let transport: String
}
