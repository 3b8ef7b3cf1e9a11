import DataDist
import Foundation

/// One row of `datadist bench`: an operation at one size, beside the memcpy ceilings of the same bytes and copy
/// pattern measured in the same run. GB/s = 10^9 bytes/s. Rows that measured per-call latency carry `p50us` and
/// `p99us`; bandwidth rows never do.
struct BenchRow: Codable {
    var operation: String
    /// Bytes one call moves (allocate: bytes of the cache's tensors).
    var bytes: Int
    var gbps: Double
    /// Single-thread memcpy of the same bytes and pattern.
    var ceilingGBps: Double
    var ratio: Double
    /// memcpy split over all cores (persistent threads, contiguous shares).
    var allCoresCeilingGBps: Double?
    var allCoresRatio: Double?
    /// A single-thread copy with non-temporal stores, as the emulator's large copies: a reference, not a goal.
    var streamingCeilingGBps: Double?
    var streamingRatio: Double?
    var p50us: Double?
    var p99us: Double?
    /// The ceiling's own p50/p99 (allocate: glibc malloc+free).
    var ceilingP50us: Double?
    var ceilingP99us: Double?
    var iterations: Int
    var seconds: Double
    /// Which keys the pulls resolved: `prefix` (never consumed), `request` (consumed; re-bound between
    /// generations, outside the timing), `slot` (by cache id and batch index), `blocks`, or `local`.
    var keys: String
    /// The shape of one call.
    var pattern: String
    /// `LLMConfig.copyThreads` of the instance that ran the row (nil: every core).
    var copyThreads: Int?
    /// Pulls per call of a batched row (pull_caches): each pull moves `bytes / batch`.
    var batch: Int?
    var verified: Bool
    var notes: String?
    /// The transport of the link that moved the row's bytes (`shm` or `ucx`); nil for local rows.
    var transport: String?
}

/// The human-readable table.
enum BenchTable {
    static func render(_ rows: [BenchRow], header: String) -> String {
        let titles = [
            "operation", "size", "GB/s", "memcpy 1T", "ratio", "memcpy all", "ratio", "stream 1T", "ratio", "p50 µs",
            "p99 µs", "iters", "keys", "via", "pattern",
        ]
        var lines: [[String]] = [titles]
        for row in rows {
            let name = row.copyThreads.map { "\(row.operation) (\($0)T)" } ?? row.operation
            lines.append([
                name, ByteSize(bytes: row.bytes).description, f(row.gbps, 2), f(row.ceilingGBps, 2),
                f(row.ratio, 2) + "×",
                row.allCoresCeilingGBps.map { f($0, 2) } ?? "-", row.allCoresRatio.map { f($0, 2) + "×" } ?? "-",
                row.streamingCeilingGBps.map { f($0, 2) } ?? "-", row.streamingRatio.map { f($0, 2) + "×" } ?? "-",
                row.p50us.map { f($0, 1) } ?? "-", row.p99us.map { f($0, 1) } ?? "-", "\(row.iterations)",
                row.keys, row.transport ?? "-", row.pattern + (row.verified ? "" : "  VERIFY FAILED"),
            ])
        }
        let widths = titles.indices.map { column in lines.map { $0[column].count }.max() ?? 0 }
        var text = header + "\n"
        for line in lines {
            let cells = line.enumerated().map { column, cell in
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                return column == 0 || column >= 12 ? cell + pad : pad + cell
            }
            text += cells.joined(separator: "  ").trimmingCharacters(in: .whitespaces) + "\n"
        }
        return text
    }

    static func f(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
}
