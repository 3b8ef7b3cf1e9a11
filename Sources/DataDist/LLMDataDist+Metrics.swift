import BlockPool
import Synchronization
import ThreadSanitizerSupport

extension LLMDataDist {
    /// Every figure this instance reports through swift-metrics: the transfers of each link (by peer cluster and
    /// transport), each pool's pages and refused allocations, keys bound, pins held for peers and the audit's
    /// orphan count. Reading it also sets the sampled gauges (pool pages, links open, keys, pins, orphans) in
    /// the metrics backend, so an exporter calls it before each scrape. Works in any state: before
    /// `initialize` and after `finalize` it has the transfer figures only.
    public func metrics() -> MetricsSnapshot {
        guard let manager = state.withLock({ $0.manager }) else {
            return meters.snapshot(audit: nil, linksOpen: 0, pools: [])
        }
        let resources = manager.resources
        let pinned = manager.pagesPinnedByPeers()
        let pools = [
            (resources.devicePool, resources.devicePoolMeters, Placement.device),
            (resources.hostPool, resources.hostPoolMeters, Placement.host),
        ]
        .compactMap { pool, meters, placement -> PoolMetricsSnapshot? in
            guard let pool, let meters, let pages = manager.poolPages(placement) else { return nil }
            return meters.sample(
                pagesInUse: pages.inUse, pagesFree: pages.free, pagesPinned: pinned[placement] ?? 0,
                pageSize: pool.pageSize)
        }
        return meters.snapshot(audit: manager.audit(), linksOpen: manager.links.linkCount, pools: pools)
    }
}
