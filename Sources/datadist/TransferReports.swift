import DataDist
import Foundation
import Synchronization
import ThreadSanitizerSupport

/// A `CacheAudit` as JSON.
struct AuditReport: Codable, Equatable {
    var liveCaches: Int
    var boundKeys: Int
    var pagesInUse: Int
    var pagesFree: Int
    var pinnedByPeers: Int
    var orphans: Int
    var clean: Bool

    init(_ audit: CacheAudit) {
        liveCaches = audit.liveCaches
        boundKeys = audit.boundKeys
        pagesInUse = audit.pagesInUse
        pagesFree = audit.pagesFree
        pinnedByPeers = audit.pinnedByPeers
        orphans = audit.orphans
        clean = audit.isClean
    }

    var summary: String {
        "caches \(liveCaches), keys \(boundKeys), pages in use \(pagesInUse), pinned \(pinnedByPeers), orphans \(orphans)"
    }
}

/// A status code as JSON: its reference name and value.
struct StatusReport: Codable, Equatable {
    var name: String
    var code: UInt32

    init(_ status: LLMStatusCode) {
        name = status.name
        code = status.rawValue
    }
}

/// The lines `datadist serve` prints (one JSON object each with `--json`).
struct ServeEvent: Codable {
    /// `ready`, `audit` (asked for on stdin) or `exit`.
    var event: String
    var port: UInt16?
    var clusterID: UInt64?
    var pid: Int32?
    var requests: Int?
    var removed: [UInt64]?
    var prefixKeys: Bool?
    var bytesPerRequest: Int?
    /// The port of the Prometheus endpoint (`ready`, with `--metrics-port`).
    var metricsPort: Int?
    /// Why serving stopped (`exit`).
    var reason: String?
    /// Keys still bound when serving stopped, before the cleanup (`exit`).
    var keysLeft: Int?
    /// The audit before the cleanup (`exit`) or now (`audit`).
    var auditBeforeCleanup: AuditReport?
    var audit: AuditReport?
    var clean: Bool?
    var error: String?
}

/// What `datadist pull` did, printed as its one JSON line.
struct PullReport: Codable {
    /// One `.kvCacheNotExist` the puller expected: after `removeCacheKey`, or a second pull of a consumed key.
    struct ExpectedRefusal: Codable {
        var request: UInt64
        var reason: String
        var status: StatusReport
    }

    /// The first thing that went wrong; the pull stops there.
    struct Failure: Codable {
        var request: UInt64?
        var phase: String
        var status: StatusReport?
        var message: String
        /// How long the failing call took.
        var callMilliseconds: Double?
    }

    var event = "pulled"
    var pid: Int32 = ProcessInfo.processInfo.processIdentifier
    var clusterID: UInt64
    var promptClusterID: UInt64
    var endpoint: String
    var linkMilliseconds: Double?
    /// Which data plane the link uses (`shm` or `ucx`).
    var transport: String?
    /// Requests attempted, including the expected refusals.
    var requests: [UInt64] = []
    var rounds = 0
    var wholePulls = 0
    var layerWisePulls = 0
    /// `pullCache` calls made for layer-wise pulls (one per layer).
    var layerCalls = 0
    var expectedRefusals: [ExpectedRefusal] = []
    var bytes = 0
    var bytesVerified = 0
    var pullSeconds = 0.0
    var gbps = 0.0
    var verified = false
    var failure: Failure?
    var unlink: StatusReport?
    var audit: AuditReport?
    var auditClean = false
    var ok = false
    /// The decoder's metrics at the end (`LLMDataDist.metrics()`, after the unlink).
    var metrics: MetricsSnapshot?
}

/// Writes whole lines to stdout at once, unbuffered, from any thread.
enum Output {
    /// Standard output, behind a lock (a lock over a real value: TSan builds misreport locks over `()`).
    private static let standardOutput = Lock(FileHandle.standardOutput)

    static func line(_ text: String) {
        standardOutput.withLock { $0.write(Data((text + "\n").utf8)) }
    }

    /// `value` as one line of JSON with sorted keys.
    static func jsonLine(_ value: some Encodable) {
        line(jsonString(value, pretty: false))
    }

    static func jsonString(_ value: some Encodable, pretty: Bool) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting =
            pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return "{\"error\":\"unencodable report\"}" }
        return String(decoding: data, as: UTF8.self)
    }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    var milliseconds: Double { seconds * 1000 }

    /// Whole nanoseconds (what `bench-pull` reports).
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
