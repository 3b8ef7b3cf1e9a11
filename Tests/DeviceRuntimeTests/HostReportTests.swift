import Foundation
import Testing

@testable import DeviceRuntime

@Suite("Host checks")
struct HostReportTests {
    /// The "Max locked memory" soft and hard limits from /proc/self/limits (nil = unlimited).
    static func limitsFromProc() throws -> (soft: UInt64?, hard: UInt64?) {
        let handle = try #require(FileHandle(forReadingAtPath: "/proc/self/limits"))
        defer { try? handle.close() }
        let text = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("Max locked memory") })
        let fields = line.dropFirst("Max locked memory".count).split(separator: " ")
        try #require(fields.count >= 2)
        return (UInt64(fields[0]), UInt64(fields[1]))
    }

    @Test("the memlock limits match /proc/self/limits")
    func memlock() throws {
        let report = HostReport.current()
        let proc = try Self.limitsFromProc()
        #expect(report.memlockSoftLimit == proc.soft)
        #expect(report.memlockHardLimit == proc.hard)
        if let soft = report.memlockSoftLimit, let hard = report.memlockHardLimit {
            #expect(soft <= hard)
        }
        if report.memlockHardLimit != nil {
            #expect(report.memlockSoftLimit != nil)
        }
    }

    @Test("huge page numbers are consistent")
    func hugePages() {
        let report = HostReport.current()
        if let total = report.hugePagesTotal, let free = report.hugePagesFree {
            #expect(total >= 0)
            #expect(free <= total)
        }
        if let size = report.hugePageSizeBytes {
            #expect(size >= 4096)
            #expect(size & (size - 1) == 0)
        }
    }

    @Test("NUMA nodes match /sys/devices/system/node")
    func numa() throws {
        let report = HostReport.current()
        #expect(report.numaNodes >= 1)
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/devices/system/node")) ?? []
        let nodes = entries.filter { $0.hasPrefix("node") && Int($0.dropFirst(4)) != nil }
        if report.numaAvailable {
            #expect(report.numaNodes == nodes.count)
        } else {
            #expect(report.numaNodes == 1)
        }
    }

    @Test("/proc/meminfo huge page lines are parsed")
    func meminfoParsing() {
        let text = """
            MemTotal:        4549120 kB
            HugePages_Total:      12
            HugePages_Free:        5
            HugePages_Rsvd:        1
            Hugepagesize:       2048 kB
            Hugetlb:           24576 kB
            """
        let parsed = Meminfo(text: text)
        #expect(parsed.hugePagesTotal == 12)
        #expect(parsed.hugePagesFree == 5)
        #expect(parsed.hugePageSizeBytes == 2 << 20)

        let gigantic = Meminfo(text: "Hugepagesize:    1048576 kB\n")
        #expect(gigantic.hugePageSizeBytes == 1 << 30)
        #expect(gigantic.hugePagesTotal == nil)

        let empty = Meminfo(text: "garbage\nHugePages_Total: many\n")
        #expect(empty == Meminfo(text: ""))
        #expect(empty.hugePagesTotal == nil)
    }

    @Test("the report round-trips through JSON, unlimited as null")
    func codable() throws {
        let report = HostReport(
            memlockSoftLimit: nil, memlockHardLimit: 65536, hugePagesTotal: 4, hugePagesFree: 2,
            hugePageSizeBytes: 2 << 20, numaNodes: 2, numaAvailable: true)
        let data = try JSONEncoder().encode(report)
        #expect(try JSONDecoder().decode(HostReport.self, from: data) == report)
        let current = HostReport.current()
        #expect(try JSONDecoder().decode(HostReport.self, from: JSONEncoder().encode(current)) == current)
    }
}
