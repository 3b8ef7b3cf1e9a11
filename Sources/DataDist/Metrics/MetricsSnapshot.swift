internal import FoundationEssentials

/// What one instance reports (the figures it also hands to swift-metrics), read by `LLMDataDist.metrics()`.
/// Transfer figures count since the instance was made; pool figures since the last `initialize`.
public struct MetricsSnapshot: Sendable, Hashable, Codable {
    public var clusterID: UInt64
    /// One entry per peer cluster and transport this instance linked with, by peer then transport.
    public var links: [LinkMetricsSnapshot]
    /// The pools of the initialised instance (none before `initialize` or after `finalize`).
    public var pools: [PoolMetricsSnapshot]
    public var linksOpen: Int
    /// Pins held for peers' transfers in flight (the audit's `pinnedByPeers`).
    public var pinnedByPeers: Int
    public var keysBound: Int
    /// The audit's orphan count: must always be 0.
    public var auditOrphans: Int

    public init(
        clusterID: UInt64, links: [LinkMetricsSnapshot], pools: [PoolMetricsSnapshot], linksOpen: Int,
        pinnedByPeers: Int, keysBound: Int, auditOrphans: Int
    ) {
        self.clusterID = clusterID
        self.links = links
        self.pools = pools
        self.linksOpen = linksOpen
        self.pinnedByPeers = pinnedByPeers
        self.keysBound = keysBound
        self.auditOrphans = auditOrphans
    }

    /// The figures of links to `peerClusterID` (over any transport) added up; nil when it never linked.
    public func link(toCluster peerClusterID: UInt64) -> LinkMetricsSnapshot? {
        let matching = links.filter { $0.peerClusterID == peerClusterID }
        guard var total = matching.first else { return nil }
        for other in matching.dropFirst() { total.add(other) }
        return total
    }

    /// The snapshot as one JSON object (keys sorted; durations as `count` and `seconds`).
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding plain integers, strings and doubles cannot fail.
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }
}

/// The transfers over this instance's links to one peer cluster over one transport (`shm` or `ucx`). A transfer
/// is one `pullCache`, `pushCache`, `pullBlocks`, `pushBlocks` or layer of `transferCacheAsync`, or one cluster's
/// share of a `pullCaches`; it counts once it found its link.
public struct LinkMetricsSnapshot: Sendable, Hashable, Codable {
    public var peerClusterID: UInt64
    public var transport: String
    public var transfersStarted: Int
    public var transfersSucceeded: Int
    /// Failed transfers by the reference's status name (`LLM_TIMEOUT`); statuses with none are left out.
    public var transfersFailed: [String: Int]
    /// Payload bytes the data plane moved.
    public var bytes: Int
    /// Every finished transfer: resolve, copy and release.
    public var transfers: DurationSummary
    /// The resolve round trips that got an answer (a grant or a refusal).
    public var roundTrips: DurationSummary
    public var linksEstablished: Int
    public var linksClosed: Int
    /// As the owner: the peer's requests (a pull, push or batch round trip each) this instance granted.
    public var grantsServed: Int
    /// As the owner: the peer's requests it refused, by status name; statuses with none are left out.
    public var refusalsServed: [String: Int]

    public init(
        peerClusterID: UInt64, transport: String, transfersStarted: Int, transfersSucceeded: Int,
        transfersFailed: [String: Int], bytes: Int, transfers: DurationSummary, roundTrips: DurationSummary,
        linksEstablished: Int, linksClosed: Int, grantsServed: Int = 0, refusalsServed: [String: Int] = [:]
    ) {
        self.peerClusterID = peerClusterID
        self.transport = transport
        self.transfersStarted = transfersStarted
        self.transfersSucceeded = transfersSucceeded
        self.transfersFailed = transfersFailed
        self.bytes = bytes
        self.transfers = transfers
        self.roundTrips = roundTrips
        self.linksEstablished = linksEstablished
        self.linksClosed = linksClosed
        self.grantsServed = grantsServed
        self.refusalsServed = refusalsServed
    }

    /// All failed transfers, whatever their status.
    public var failedTotal: Int { transfersFailed.values.reduce(0, +) }

    mutating func add(_ other: LinkMetricsSnapshot) {
        transport = transport == other.transport ? transport : "\(transport)+\(other.transport)"
        transfersStarted += other.transfersStarted
        transfersSucceeded += other.transfersSucceeded
        transfersFailed.merge(other.transfersFailed, uniquingKeysWith: +)
        bytes += other.bytes
        transfers.add(other.transfers)
        roundTrips.add(other.roundTrips)
        linksEstablished += other.linksEstablished
        linksClosed += other.linksClosed
        grantsServed += other.grantsServed
        refusalsServed.merge(other.refusalsServed, uniquingKeysWith: +)
    }
}

/// How many durations were recorded and their sum.
public struct DurationSummary: Sendable, Hashable, Codable {
    public var count: Int
    public var seconds: Double

    public init(count: Int, seconds: Double) {
        self.count = count
        self.seconds = seconds
    }

    init(count: Int, nanoseconds: Int) { self.init(count: count, seconds: Double(nanoseconds) / 1e9) }

    mutating func add(_ other: DurationSummary) {
        count += other.count
        seconds += other.seconds
    }
}

/// One pool's pages and the allocations it refused.
public struct PoolMetricsSnapshot: Sendable, Hashable, Codable {
    /// `device` or `host`.
    public var pool: String
    public var pageSize: Int
    public var pagesInUse: Int
    public var pagesFree: Int
    /// Allocations refused for want of pages (`.outOfMemory`) since `initialize`.
    public var allocationFailures: Int
    /// Pages of this pool's caches that peers' transfers in flight hold pinned (a cache pinned twice counts once).
    public var pagesPinnedByPeers: Int

    public init(
        pool: String, pageSize: Int, pagesInUse: Int, pagesFree: Int, allocationFailures: Int,
        pagesPinnedByPeers: Int = 0
    ) {
        self.pool = pool
        self.pageSize = pageSize
        self.pagesInUse = pagesInUse
        self.pagesFree = pagesFree
        self.pagesPinnedByPeers = pagesPinnedByPeers
        self.allocationFailures = allocationFailures
    }
}
