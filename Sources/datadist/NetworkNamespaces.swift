import Foundation

/// Two network namespaces joined by a veth pair: two "hosts" on one machine, for `demo --cross-host` and the
/// cross-host tests. Each namespace has loopback and one end of the pair, addressed in a private /24 that exists
/// only inside them. Creating one needs root (`CAP_NET_ADMIN`) and iproute2's `ip`.
struct NamespacePair {
    /// The namespaces' names (`ip netns exec NAME …`).
    let first: String
    let second: String
    /// The veth ends' interface names, in `first` and `second`.
    let firstInterface: String
    let secondInterface: String
    /// The addresses of the veth ends.
    let firstAddress: String
    let secondAddress: String

    /// Why a pair cannot be made on this machine, or nil when it can (root and `ip` present).
    static var unavailableReason: String? {
        guard geteuid() == 0 else { return "network namespaces need root (CAP_NET_ADMIN); this process is not root" }
        guard IPCommand.path != nil else { return "network namespaces need iproute2's `ip` (apt-get install iproute2)" }
        return nil
    }

    /// Creates both namespaces and the veth between them, named after `tag` (short: interface names are at most
    /// 15 bytes) and this process. Removes what it made if a step fails.
    static func create(tag: String = "dd") throws(NamespaceError) -> NamespacePair {
        if let reason = unavailableReason { throw NamespaceError(message: reason) }
        removeStale(tag: tag)
        let suffix = "\(tag)\(getpid() % 100_000)"
        let pair = NamespacePair(
            first: "\(suffix)a", second: "\(suffix)b", firstInterface: "v\(suffix)a", secondInterface: "v\(suffix)b",
            firstAddress: "10.213.0.1", secondAddress: "10.213.0.2")
        do {
            try pair.setUp()
        } catch {
            pair.destroy()
            throw error
        }
        return pair
    }

    /// Deletes the pairs of `tag` whose process is gone: one that exited without destroying its pair (a test
    /// process ends before the last instance of its suite is released) leaves it behind.
    static func removeStale(tag: String) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/run/netns")) ?? []
        for name in names where name.hasPrefix(tag) && (name.hasSuffix("a") || name.hasSuffix("b")) {
            guard let pid = Int32(name.dropFirst(tag.count).dropLast()), kill(pid, 0) != 0, errno == ESRCH else {
                continue
            }
            try? IPCommand.run(["netns", "delete", name], quiet: true)
        }
    }

    private func setUp() throws(NamespaceError) {
        try IPCommand.run(["netns", "add", first])
        try IPCommand.run(["netns", "add", second])
        try IPCommand.run(["link", "add", firstInterface, "type", "veth", "peer", "name", secondInterface])
        for (namespace, interface, address) in [
            (first, firstInterface, firstAddress), (second, secondInterface, secondAddress),
        ] {
            try IPCommand.run(["link", "set", interface, "netns", namespace])
            try IPCommand.run(["-n", namespace, "address", "add", "\(address)/24", "dev", interface])
            try IPCommand.run(["-n", namespace, "link", "set", interface, "up"])
            try IPCommand.run(["-n", namespace, "link", "set", "lo", "up"])
        }
    }

    /// Deletes both namespaces (the veth pair goes with them). Safe to call twice.
    func destroy() {
        for namespace in [first, second] { try? IPCommand.run(["netns", "delete", namespace], quiet: true) }
    }

    /// Takes the veth down (`up: false`) or up again in both namespaces: a cut cable.
    func setLink(up: Bool) throws(NamespaceError) {
        for (namespace, interface) in [(first, firstInterface), (second, secondInterface)] {
            try IPCommand.run(["-n", namespace, "link", "set", interface, up ? "up" : "down"])
        }
    }

    /// A bad network between the two: each side drops `lossPercent` % of the packets it receives (an nftables rule
    /// on the input hook) and sends at most `rateMbit` Mbit/s through its veth end (a `tc tbf` shaper, whose queue
    /// also delays). Not `tc netem`: the kernels of this project's CI machines are built without it.
    func impair(lossPercent: Int, rateMbit: Int? = nil) throws(NamespaceError) {
        for (namespace, interface) in [(first, firstInterface), (second, secondInterface)] {
            let nft = ["netns", "exec", namespace, "nft"]
            try IPCommand.run(nft + ["add", "table", "inet", "datadist_loss"])
            try IPCommand.run(
                nft + ["add", "chain", "inet", "datadist_loss", "in", "{ type filter hook input priority 0; }"])
            try IPCommand.run(
                nft + [
                    "add", "rule", "inet", "datadist_loss", "in", "numgen", "random", "mod", "100", "<",
                    "\(lossPercent)", "drop",
                ])
            if let rateMbit {
                try IPCommand.run(
                    [
                        "netns", "exec", namespace, "tc", "qdisc", "replace", "dev", interface, "root", "tbf", "rate",
                        "\(rateMbit)mbit", "burst", "64kb", "latency", "100ms",
                    ])
            }
        }
    }
}

/// A failed namespace step: the command and what it printed.
struct NamespaceError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// iproute2's `ip`, run to completion.
enum IPCommand {
    static let path: String? = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    static func run(_ arguments: [String], quiet: Bool = false) throws(NamespaceError) {
        guard let path else { throw NamespaceError(message: "iproute2's `ip` is not installed") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw NamespaceError(message: "cannot run \(path): \(error)")
        }
        let printed = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: printed, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw NamespaceError(
                message: "`ip \(arguments.joined(separator: " "))` exited \(process.terminationStatus)"
                    + (quiet || text.isEmpty ? "" : ": \(text)"))
        }
    }
}
