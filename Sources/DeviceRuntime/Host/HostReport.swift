internal import CNuma
internal import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Host facts that decide whether device-sized host memory can be pinned and placed: the memlock limit,
/// huge pages and the physical NUMA layout.
public struct HostReport: Sendable, Codable, Hashable {
    /// `RLIMIT_MEMLOCK` soft limit in bytes; nil when unlimited.
    public var memlockSoftLimit: UInt64?
    /// `RLIMIT_MEMLOCK` hard limit in bytes; nil when unlimited.
    public var memlockHardLimit: UInt64?
    /// `HugePages_Total` of `/proc/meminfo` (pages of the default huge page size); nil when unreadable.
    public var hugePagesTotal: Int?
    /// `HugePages_Free` of `/proc/meminfo`; nil when unreadable.
    public var hugePagesFree: Int?
    /// `Hugepagesize` of `/proc/meminfo` in bytes; nil when unreadable.
    public var hugePageSizeBytes: UInt64?
    /// Physical NUMA nodes libnuma reports (1 without libnuma support).
    public var numaNodes: Int
    /// Whether the kernel supports the NUMA calls (`numa_available()`).
    public var numaAvailable: Bool

    public init(
        memlockSoftLimit: UInt64?, memlockHardLimit: UInt64?, hugePagesTotal: Int?, hugePagesFree: Int?,
        hugePageSizeBytes: UInt64?, numaNodes: Int, numaAvailable: Bool
    ) {
        self.memlockSoftLimit = memlockSoftLimit
        self.memlockHardLimit = memlockHardLimit
        self.hugePagesTotal = hugePagesTotal
        self.hugePagesFree = hugePagesFree
        self.hugePageSizeBytes = hugePageSizeBytes
        self.numaNodes = numaNodes
        self.numaAvailable = numaAvailable
    }

    /// Reads the limits of this process and the state of this host.
    public static func current() -> HostReport {
        var limit = rlimit()
        let haveLimit = getrlimit(__rlimit_resource_t(__RLIMIT_MEMLOCK.rawValue), &limit) == 0
        let meminfo = Meminfo(text: readSmallFile("/proc/meminfo") ?? "")
        let numaAvailable = numa_available() >= 0
        return HostReport(
            memlockSoftLimit: haveLimit ? finite(limit.rlim_cur) : nil,
            memlockHardLimit: haveLimit ? finite(limit.rlim_max) : nil,
            hugePagesTotal: meminfo.hugePagesTotal,
            hugePagesFree: meminfo.hugePagesFree,
            hugePageSizeBytes: meminfo.hugePageSizeBytes,
            numaNodes: numaAvailable ? max(1, Int(numa_num_configured_nodes())) : 1,
            numaAvailable: numaAvailable)
    }

    private static func finite(_ value: rlim_t) -> UInt64? {
        value == rlim_t.max ? nil : UInt64(value)  // RLIM_INFINITY is ~0
    }
}

/// The huge-page lines of `/proc/meminfo`.
struct Meminfo: Sendable, Hashable {
    var hugePagesTotal: Int?
    var hugePagesFree: Int?
    var hugePageSizeBytes: UInt64?

    /// Parses lines like `HugePages_Total:       4` and `Hugepagesize:       2048 kB`; unknown lines are ignored.
    init(text: String) {
        for line in text.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == ":" || $0 == " " || $0 == "\t" })
            guard parts.count >= 2, let value = UInt64(parts[1]) else { continue }
            let scale: UInt64 = parts.count >= 3 && parts[2] == "kB" ? 1024 : 1
            switch parts[0] {
            case "HugePages_Total": hugePagesTotal = Int(exactly: value)
            case "HugePages_Free": hugePagesFree = Int(exactly: value)
            case "Hugepagesize":
                let (bytes, overflow) = value.multipliedReportingOverflow(by: scale)
                hugePageSizeBytes = overflow ? nil : bytes
            default: continue
            }
        }
    }
}

/// The contents of a small text file (procfs), or nil when it cannot be read.
private func readSmallFile(_ path: String) -> String? {
    guard let file = try? FileDescriptor.open(FilePath(path), .readOnly, options: .closeOnExec) else { return nil }
    defer { try? file.close() }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        guard let count = try? chunk.withUnsafeMutableBytes({ try file.read(into: $0) }) else { return nil }
        guard count > 0 else { return String(decoding: bytes, as: UTF8.self) }
        bytes.append(contentsOf: chunk[..<count])
    }
}
