/// The names DataDist reports its metrics under (swift-metrics labels, written for Prometheus: counters end in
/// `_total`, durations are `_seconds` histograms, byte counts `_bytes_total`). Every metric carries the label
/// `cluster` (this instance's id); per-link metrics also `peer_cluster` and `transport` (`shm` or `ucx`).
public enum MetricName {
    public static let transfersStarted = "datadist_transfers_started_total"
    public static let transfersSucceeded = "datadist_transfers_succeeded_total"
    /// Also labelled `status`, the reference's name of the status the transfer failed with (`LLM_TIMEOUT`).
    public static let transfersFailed = "datadist_transfers_failed_total"
    public static let transferBytes = "datadist_transfer_bytes_total"
    /// Resolve, copy and release of one transfer (one round trip of a batched pull and its share of the copy).
    public static let transferSeconds = "datadist_transfer_seconds"
    /// The resolve round trip alone (request sent to grant or refusal received).
    public static let roundTripSeconds = "datadist_transfer_round_trip_seconds"
    /// The owner's side: requests of the peer this instance granted, and refused (labelled `status`).
    public static let grantsServed = "datadist_served_grants_total"
    public static let refusalsServed = "datadist_served_refusals_total"
    public static let linksEstablished = "datadist_links_established_total"
    public static let linksClosed = "datadist_links_closed_total"
    /// Sampled gauges (set by `LLMDataDist.metrics()`).
    public static let linksOpen = "datadist_links_open"
    /// Labelled `pool` (`device` or `host`).
    public static let poolPagesInUse = "datadist_pool_pages_in_use"
    public static let poolPagesFree = "datadist_pool_pages_free"
    /// Pages of the pool's caches that peers' transfers in flight hold pinned (each cache once).
    public static let poolPagesPinned = "datadist_pool_pages_pinned_by_peers"
    public static let poolAllocationFailures = "datadist_pool_allocation_failures_total"
    public static let pinnedByPeers = "datadist_pinned_by_peers"
    public static let keysBound = "datadist_keys_bound"
    public static let auditOrphans = "datadist_audit_orphans"

    /// The duration histograms, for a backend that takes buckets per name.
    public static let durationHistograms = [transferSeconds, roundTripSeconds]
}
