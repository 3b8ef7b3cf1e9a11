import DataDist
import DeviceCaps

/// The human-readable form of a `ProbeReport`.
enum ProbeText {
    /// A memlock soft limit below this is reported as low: pinned host pools are usually gigabytes.
    static let lowMemlockLimit: UInt64 = 1 << 30

    static func render(_ report: ProbeReport) -> String {
        var out = ""
        func line(_ text: String = "") { out += text + "\n" }

        line("Backend    \(report.backend)")
        line("           \(report.backendReason)")
        line("Library    \(report.library ?? "none")")
        if report.library == nil, let attempted = report.attemptedLibrary {
            line("           tried \(attempted)")
        }
        line("SoC        \(report.socName ?? "not reported")")
        line("Board id   \(report.boardID.map(hex) ?? "not reported")")
        line("Product    \(report.product) (\(report.productName))")
        if let candidates = report.ambiguous {
            line("           ambiguous, could be: \(candidates.joined(separator: ", ")); gated as the strictest")
            line("           set DATADIST_PRODUCT to the exact product id to lift the ambiguity")
        }
        line("           \(report.detectionNote)")

        line()
        line("Devices (\(report.devices.count))")
        let rows = report.devices.map { device in
            [
                String(device.index), device.numaNode.map(String.init) ?? "-", bytes(device.memoryBytes),
                bytes(device.freeBytes),
            ]
        }
        for row in table(header: ["index", "NUMA node", "memory", "free"], rows: rows) { line("  " + row) }

        let gates = Operation.allCases.map { ($0.rawValue, report.operations[$0.rawValue]) }
        let allowed = gates.count { $0.1?.supported == true }
        line()
        line("Operations on \(report.product) (\(allowed) of \(gates.count) supported)")
        let width = gates.map(\.0.count).max() ?? 0
        for (name, gate) in gates {
            let mark = gate.map { $0.supported ? "✓" : "✗" } ?? "?"
            line("  \(mark) \(padded(name, width))  \(gate?.reason ?? "no gate reported")")
        }

        line()
        line("Device transfers")
        for row in transferRows(report.transfers) {
            line("  \(row.ok ? "✓" : "✗") \(padded(row.name, 13))  \(row.text)")
        }

        line()
        line("Host")
        for check in hostChecks(report.host) {
            line("  \(check.ok ? "✓" : "!") \(padded(check.name, 9))  \(check.text)")
            if let hint = check.hint { line("    \(padded("", 9))  hint: \(hint)") }
        }
        return out
    }

    struct TransferRow {
        var name: String
        var ok: Bool
        var text: String
    }

    static func transferRows(_ transfers: ProbeReport.Transfers) -> [TransferRow] {
        func feature(_ name: String, _ feature: ProbeReport.Feature, _ what: String) -> TransferRow {
            TransferRow(name: name, ok: feature.available, text: feature.reason ?? what)
        }
        var rows = [
            feature("IPC", transfers.ipc, "available: device memory can be exported to other processes by key")
        ]
        let peer = transfers.peerAccess
        if peer.available {
            let reachable = peer.pairs.filter(\.accessible)
            var text = "\(reachable.count) of \(peer.pairs.count) device pairs reach each other"
            let unreachable = peer.pairs.filter { !$0.accessible }.prefix(8).map { "\($0.device)→\($0.peer)" }
            if !unreachable.isEmpty { text += "; not: " + unreachable.joined(separator: ", ") }
            if peer.pairs.count - reachable.count > unreachable.count { text += ", …" }
            rows.append(TransferRow(name: "peer access", ok: !peer.pairs.isEmpty && unreachable.isEmpty, text: text))
        } else {
            rows.append(TransferRow(name: "peer access", ok: false, text: peer.reason ?? "not available"))
        }
        rows.append(
            feature(
                "async copy", transfers.asyncCopy, "available: copies queued on streams, awaited with a stream sync"))
        rows.append(
            feature("host register", transfers.hostRegister, "available: host memory can be registered for a device"))
        let hcomm = transfers.hcomm
        rows.append(
            TransferRow(
                name: "libhcomm", ok: hcomm.present,
                text: hcomm.present
                    ? "\(hcomm.name) present (the vendor's one-sided library; detected only, not used)"
                    : "\(hcomm.name) not found (the vendor's one-sided library; detected only): \(hcomm.detail ?? "dlopen failed")"
            ))
        let ucx = transfers.ucx
        let selection = ucx.selection.map { "; UCX_TLS=\($0) picks among them" } ?? ""
        rows.append(
            TransferRow(
                name: "UCX", ok: ucx.available,
                text: ucx.available
                    ? ucx.transports.joined(separator: ", ") + selection : ucx.reason ?? "not available"))
        if let staging = ucx.stagingBytesPerLink {
            rows.append(
                TransferRow(
                    name: "UCX staging", ok: true,
                    text:
                        "device memory goes over UCX through \(ByteSize(bytes: staging)) of pinned host buffers per link (DATADIST_UCX_STAGING_BYTES)"
                ))
        }
        return rows
    }

    struct HostCheck {
        var name: String
        var ok: Bool
        var text: String
        var hint: String?
    }

    static func hostChecks(_ host: ProbeReport.Host) -> [HostCheck] {
        var checks: [HostCheck] = []
        let soft = host.memlockSoftLimit.map { bytes(Int(clamping: $0)) } ?? "unlimited"
        let hard = host.memlockHardLimit.map { bytes(Int(clamping: $0)) } ?? "unlimited"
        if let limit = host.memlockSoftLimit, limit < lowMemlockLimit {
            checks.append(
                HostCheck(
                    name: "memlock", ok: false, text: "soft limit \(soft) (hard \(hard)) is low for pinned host pools",
                    hint: "raise it with `ulimit -l unlimited` or a memlock line in /etc/security/limits.conf"))
        } else {
            checks.append(HostCheck(name: "memlock", ok: true, text: "soft limit \(soft), hard \(hard)"))
        }
        switch (host.hugePagesTotal, host.hugePagesFree, host.hugePageSizeBytes) {
        case (let total?, let free?, let size) where total > 0:
            let sizeText = size.map { " of \(bytes(Int(clamping: $0)))" } ?? ""
            checks.append(HostCheck(name: "hugepages", ok: true, text: "\(total) reserved\(sizeText), \(free) free"))
        case (0?, _, let size):
            let sizeText = size.map { " (\(bytes(Int(clamping: $0))) pages)" } ?? ""
            checks.append(
                HostCheck(
                    name: "hugepages", ok: false, text: "none reserved\(sizeText); pools use base pages",
                    hint: "reserve some with `sysctl vm.nr_hugepages=<count>`"))
        default:
            checks.append(HostCheck(name: "hugepages", ok: false, text: "unknown (/proc/meminfo unreadable)"))
        }
        if !host.numaAvailable {
            checks.append(
                HostCheck(
                    name: "NUMA", ok: false,
                    text: "the kernel's NUMA calls are unavailable; memory is not bound to nodes",
                    hint: "emulated device placement still follows HWLOC_SYNTHETIC / HWLOC_XMLFILE"))
        } else if host.numaNodes < 2 {
            checks.append(
                HostCheck(
                    name: "NUMA", ok: true, text: "1 node",
                    hint: "set HWLOC_SYNTHETIC (e.g. \"pack:2 numa:2 core:4 pu:1\") to emulate a multi-node host"))
        } else {
            checks.append(HostCheck(name: "NUMA", ok: true, text: "\(host.numaNodes) nodes"))
        }
        return checks
    }

    /// `0x40`-style board id, as the vendor docs write them.
    static func hex(_ id: UInt32) -> String {
        let digits = String(id, radix: 16, uppercase: true)
        return "0x" + (digits.count < 2 ? "0" + digits : digits) + " (\(id))"
    }

    /// Bytes in binary units with at most one decimal, e.g. `64 GiB`, `1.5 MiB`, `512 B`.
    static func bytes(_ count: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        let tenths = (value * 10).rounded()
        let text = tenths.truncatingRemainder(dividingBy: 10) == 0 ? String(Int(tenths / 10)) : String(tenths / 10)
        return "\(text) \(units[unit])"
    }

    private static func padded(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }

    private static func table(header: [String], rows: [[String]]) -> [String] {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.indices.map { padded(row[$0], widths[$0]) }.joined(separator: "  ").trimmingTrailingSpaces
        }
    }
}

extension String {
    fileprivate var trimmingTrailingSpaces: String {
        var text = self
        while text.last == " " { text.removeLast() }
        return text
    }
}
