import ArgumentParser
import Foundation

/// `datadist demo`: `serve` and `pull` as two processes of this executable, linked over loopback.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a prompt (`serve`) and a decoder (`pull`) as two processes and transfer KV caches between them.",
        discussion: """
            The prompt fills one cache per request with a known pattern and removes the key of the last request; \
            the decoder pulls every request (even ids whole, odd ids layer by layer), checks every byte, expects \
            LLM_KV_CACHE_NOT_EXIST for the removed key and for a second pull of each consumed key, and unlinks. \
            Both audits must be clean. Exits 1 when anything failed. GB/s = bytes pulled / time spent in pullCache.
            """)

    @Option(help: "Requests (at least 2: the last one's key is removed before the pulls).")
    var requests = 8

    @OptionGroup var shape: KVShapeOptions

    @Option(help: "Give up (and kill the children) after this many seconds.")
    var timeoutSeconds = 60

    @Flag(help: "Print one JSON object instead of the summary.")
    var json = false

    @Flag(
        help: """
            Run the prompt and the decoder in two network namespaces joined by a veth pair (two hosts on one \
            machine; needs root and iproute2). UCX moves the bytes, over TCP unless UCX_TLS says otherwise.
            """)
    var crossHost = false

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        guard (2...10_000).contains(requests) else {
            throw ValidationError("--requests \(requests) must be in 2...10000")
        }
        guard timeoutSeconds > 0 else { throw ValidationError("--timeout-seconds \(timeoutSeconds) must be > 0") }
    }

    func run() throws {
        global.bootstrapLogging()
        let report = runDemo()
        if json {
            print(Output.jsonString(report, pretty: true))
        } else {
            print(DemoText.render(report, shape: shape), terminator: "")
        }
        if !report.ok { throw ExitCode.failure }
    }

    private func runDemo() -> DemoReport {
        let removed = UInt64(requests - 1)
        var report = DemoReport(requests: requests, removedRequest: removed, bytesPerRequest: shape.requestBytes)
        guard crossHost else { return runDemo(report, removed: removed, hosts: nil) }
        let hosts: NamespacePair
        do {
            hosts = try NamespacePair.create(tag: "demo")
        } catch {
            report.problems.append("cannot make two hosts for --cross-host: \(error)")
            return report
        }
        defer { hosts.destroy() }
        return runDemo(report, removed: removed, hosts: hosts)
    }

    /// Runs both sides, on loopback (`hosts` nil) or the prompt in `hosts.first` and the decoder in `hosts.second`.
    private func runDemo(_ started: DemoReport, removed: UInt64, hosts: NamespacePair?) -> DemoReport {
        var report = started
        let address = hosts?.firstAddress ?? "127.0.0.1"
        report.address = address
        report.namespaces = hosts.map { [$0.first, $0.second] }
        // Two namespaces of one machine look like one host to UCX's shared-memory transports: keep it on TCP.
        let userChoseTransports = ProcessInfo.processInfo.environment["UCX_TLS"] != nil
        let environment = hosts == nil || userChoseTransports ? [:] : ["UCX_TLS": "tcp"]
        let deadline = ContinuousClock.now + .seconds(timeoutSeconds)
        func left() -> Duration { max(.zero, ContinuousClock.now.duration(to: deadline)) }
        let shapeArguments = [
            "--layers", "\(shape.layers)", "--tokens", "\(shape.tokens)", "--hidden", "\(shape.hidden)",
        ]
        let verbose = global.verbose ? ["--verbose"] : []

        let serve: ChildProcess
        do {
            serve = try ChildProcess(
                arguments: [
                    "serve", "--json", "--host", address, "--requests", "\(requests)", "--remove", "\(removed)",
                ] + shapeArguments + verbose,
                stdinPipe: true, namespace: hosts?.first, environment: environment)
        } catch {
            report.problems.append("cannot start `datadist serve`: \(error)")
            return report
        }
        defer { serve.kill() }
        report.servePID = serve.pid
        guard case .line(let readyLine) = serve.lines.next(timeout: left()),
            let ready = decode(ServeEvent.self, readyLine), ready.event == "ready", let port = ready.port
        else {
            report.problems.append("`datadist serve` did not print its ready line")
            serve.kill()
            report.serveExitStatus = serve.wait(timeout: .seconds(1))
            return report
        }
        report.port = port

        var pullStatus: Int32?
        do {
            let pull = try ChildProcess(
                arguments: [
                    "pull", "--json", "--host", address, "--port", "\(port)", "--requests", "\(requests)",
                    "--removed", "\(removed)", "--layer-wise", "alternate",
                ] + shapeArguments + verbose,
                stdinPipe: false, namespace: hosts?.second, environment: environment)
            defer { pull.kill() }
            report.pullPID = pull.pid
            pullStatus = pull.wait(timeout: left())
            if pullStatus == nil {
                report.problems.append("`datadist pull` did not finish within \(timeoutSeconds) s; killed")
                pull.kill()
            }
            if case .line(let line) = pull.lines.next(timeout: .seconds(1)) {
                report.pull = decode(PullReport.self, line)
            }
        } catch {
            report.problems.append("cannot start `datadist pull`: \(error)")
        }
        report.pullExitStatus = pullStatus

        serve.closeStandardInput()
        report.serveExitStatus = serve.wait(timeout: min(left(), .seconds(10)) + .seconds(1))
        if report.serveExitStatus == nil {
            report.problems.append("`datadist serve` did not exit after its stdin closed; killed")
            serve.kill()
        }
        while case .line(let line) = serve.lines.next(timeout: .seconds(1)) {
            if let event = decode(ServeEvent.self, line), event.event == "exit" { report.serve = event }
        }
        report.evaluate()
        return report
    }

    private func decode<T: Decodable>(_ type: T.Type, _ line: String) -> T? {
        try? JSONDecoder().decode(type, from: Data(line.utf8))
    }
}

/// What `datadist demo --json` prints.
struct DemoReport: Codable {
    var requests: Int
    var removedRequest: UInt64
    var bytesPerRequest: Int
    /// The prompt's listen address, and the namespaces of prompt and decoder with `--cross-host`.
    var address = "127.0.0.1"
    var namespaces: [String]?
    var port: UInt16?
    var servePID: Int32?
    var pullPID: Int32?
    /// Bytes pulled (and each one checked).
    var bytes = 0
    var verified = false
    var auditsClean = false
    var gbps = 0.0
    var pullSeconds = 0.0
    var wholePulls = 0
    var layerWisePulls = 0
    var removedKeyRefused = false
    var consumedKeysRefused = 0
    /// Keys the prompt still had bound when it stopped: 0 when every key was consumed or removed.
    var promptKeysLeft: Int?
    var pullExitStatus: Int32?
    var serveExitStatus: Int32?
    var pull: PullReport?
    var serve: ServeEvent?
    var problems: [String] = []
    var ok = false

    mutating func evaluate() {
        guard let pull else {
            problems.append("`datadist pull` printed no report")
            return
        }
        bytes = pull.bytes
        gbps = pull.gbps
        pullSeconds = pull.pullSeconds
        wholePulls = pull.wholePulls
        layerWisePulls = pull.layerWisePulls
        verified = pull.verified && pull.bytesVerified == pull.bytes && pull.bytes == bytesPerRequest * (requests - 1)
        removedKeyRefused = pull.expectedRefusals.contains {
            $0.request == removedRequest && $0.reason == "removeCacheKey"
        }
        consumedKeysRefused = pull.expectedRefusals.count { $0.reason == "already consumed" }
        promptKeysLeft = serve?.keysLeft
        auditsClean = pull.auditClean && serve?.clean == true
        if let failure = pull.failure {
            problems.append(
                "pull failed in \(failure.phase)\(failure.request.map { " of request \($0)" } ?? ""): "
                    + "\(failure.status?.name ?? "") \(failure.message)")
        }
        if !verified { problems.append("not every byte of the \(requests - 1) pulled requests was verified") }
        if !removedKeyRefused {
            problems.append("the pull after removeCacheKey did not fail with LLM_KV_CACHE_NOT_EXIST")
        }
        if consumedKeysRefused != requests - 1 {
            problems.append("\(consumedKeysRefused) of \(requests - 1) second pulls failed with LLM_KV_CACHE_NOT_EXIST")
        }
        if wholePulls == 0 || layerWisePulls == 0 { problems.append("expected both whole and layer-wise pulls") }
        if promptKeysLeft != 0 {
            problems.append("the prompt still had \(promptKeysLeft.map(String.init) ?? "?") keys bound")
        }
        if !pull.auditClean { problems.append("the decoder's audit is not clean: \(pull.audit?.summary ?? "none")") }
        if serve?.clean != true {
            problems.append("the prompt's final audit is not clean: \(serve?.audit?.summary ?? "none")")
        }
        if pullExitStatus != 0 { problems.append("`datadist pull` exited \(pullExitStatus.map(String.init) ?? "-")") }
        if serveExitStatus != 0 {
            problems.append("`datadist serve` exited \(serveExitStatus.map(String.init) ?? "-")")
        }
        ok = problems.isEmpty
    }
}

/// The human summary of a demo run.
enum DemoText {
    static func render(_ report: DemoReport, shape: KVShapeOptions) -> String {
        var out = ""
        func line(_ text: String = "") { out += text + "\n" }
        func mark(_ ok: Bool) -> String { ok ? "✓" : "✗" }
        let pulled = report.requests - 1
        line(
            "DataDist demo: a prompt and a decoder in two processes, linked over \(report.address):\(report.port.map(String.init) ?? "?")"
                + (report.namespaces.map { " (network namespaces \($0.joined(separator: " and ")))" } ?? ""))
        line(
            "  prompt  cluster 1, pid \(report.servePID.map(String.init) ?? "-"): \(report.requests) requests × \(shape.summary)"
        )
        line(
            "          = \(ProbeText.bytes(report.bytesPerRequest)) per request; key of request \(report.removedRequest) removed before the pulls"
        )
        line(
            "  decoder cluster 2, pid \(report.pullPID.map(String.init) ?? "-")"
                + (report.pull?.linkMilliseconds.map { String(format: ": linked in %.1f ms", $0) } ?? "")
                + (report.pull?.transport.map { ", data over \($0)" } ?? ""))
        line()
        if let pull = report.pull {
            line(
                "  \(mark(pull.wholePulls + pull.layerWisePulls == pulled)) \(pull.wholePulls + pull.layerWisePulls) of \(pulled) requests pulled: "
                    + "\(pull.wholePulls) whole, \(pull.layerWisePulls) layer by layer (\(pull.layerCalls) pullCache calls of one layer)"
            )
        }
        line(
            "  \(mark(report.removedKeyRefused)) request \(report.removedRequest) after removeCacheKey: "
                + (report.removedKeyRefused ? "LLM_KV_CACHE_NOT_EXIST, as expected" : "not refused as expected"))
        line(
            "  \(mark(report.consumedKeysRefused == pulled)) second pull of each consumed key: LLM_KV_CACHE_NOT_EXIST "
                + "(\(report.consumedKeysRefused) of \(pulled))")
        line(
            "  \(mark(report.verified)) every byte verified: \(ProbeText.bytes(report.pull?.bytesVerified ?? 0)) "
                + "against the pattern of (request, tensor, offset)")
        line(
            "  \(mark(report.promptKeysLeft == 0)) prompt keys left when it stopped: \(report.promptKeysLeft.map(String.init) ?? "unknown")"
        )
        line("  \(mark(report.pull?.auditClean == true)) decoder audit: \(report.pull?.audit?.summary ?? "none")")
        line("  \(mark(report.serve?.clean == true)) prompt audit:  \(report.serve?.audit?.summary ?? "none")")
        line()
        line(
            String(
                format: "  bandwidth: %@ in %.2f ms of pullCache = %.2f GB/s", ProbeText.bytes(report.bytes),
                report.pullSeconds * 1000, report.gbps))
        line()
        for problem in report.problems { line("  problem: \(problem)") }
        line(report.ok ? "RESULT: OK" : "RESULT: FAILED")
        return out
    }
}
