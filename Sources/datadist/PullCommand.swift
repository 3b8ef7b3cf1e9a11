import ArgumentParser
import DataDist
import Foundation

/// `datadist pull`: a decoder cluster that links to a `datadist serve`, pulls its requests whole or layer by
/// layer, checks every byte against `KVPattern` and the expected refusals, then unlinks.
struct PullCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Link to a `datadist serve`, pull its requests and verify every byte (the decoder side of the demo).",
        discussion: """
            Pulls requests first-request..<first-request+requests into one destination cache and checks every \
            byte. Requests named by --removed must fail with LLM_KV_CACHE_NOT_EXIST; with request keys, a second \
            pull of every consumed key must fail the same way. Stops at the first failure. Prints one JSON line \
            (a summary without --json) and exits 0 only if everything was as expected and its own audit is clean.
            """)

    @Option(help: "Port of the serving prompt cluster.")
    var port: UInt16

    @Option(help: "Address of the serving prompt cluster.")
    var host = "127.0.0.1"

    @Option(help: "Requests to pull.")
    var requests = 8

    @Option(help: "First request id to pull.")
    var firstRequest: UInt64 = 0

    @OptionGroup var shape: KVShapeOptions

    @Option(name: .customLong("cluster-id"), help: "This (decoder) cluster's id.")
    var clusterID: UInt64 = 2

    @Option(name: .customLong("prompt-cluster-id"), help: "The serving cluster's id.")
    var promptClusterID: UInt64 = 1

    @Option(
        parsing: .singleValue,
        help: ArgumentHelp("A request whose key the server removed: expect LLM_KV_CACHE_NOT_EXIST.", valueName: "id"))
    var removed: [String] = []

    @Option(help: "Which requests to pull layer by layer: none, alternate (odd ids) or all.")
    var layerWise: LayerWiseMode = .alternate

    @Flag(help: "Pull prefix keys (never consumed) instead of request keys.")
    var prefixKeys = false

    @Option(help: "Pull the requests this many times (only with --prefix-keys: request keys are consumed).")
    var `repeat` = 1

    @Option(help: "syncKVTimeout: the deadline of every pull, in milliseconds.")
    var syncTimeoutMs = 1000

    @Option(help: "Pause between requests, in milliseconds.")
    var paceMs = 0

    @Flag(
        help: """
            Print JSON lines as things happen: `{"event":"linked"}` when the link is up, `{"event":"failed",…}` at the \
            first failure (before unlinking and cleaning up).
            """)
    var announce = false

    @Flag(help: "Print the result as one JSON line.")
    var json = false

    @Option(
        help: """
            Push instead of pull: into the remote-accessible cache with this id on the serving cluster (one tensor of \
            --requests slots of --tokens × --hidden float16, as `bench-serve`'s `cache NAME BYTES SLOTS none 0 touch`); \
            slot by slot, --repeat rounds, each push checked by pulling the slot back.
            """)
    var pushCacheID: Int64?

    @OptionGroup var global: GlobalOptions

    enum LayerWiseMode: String, ExpressibleByArgument, CaseIterable {
        case none, alternate, all
    }

    func validate() throws {
        guard (1...100_000).contains(requests) else {
            throw ValidationError("--requests \(requests) must be in 1...100000")
        }
        guard self.repeat >= 1 else { throw ValidationError("--repeat \(self.repeat) must be >= 1") }
        guard self.repeat == 1 || prefixKeys || pushCacheID != nil else {
            throw ValidationError("--repeat \(self.repeat) needs --prefix-keys: a pull consumes a request key")
        }
        guard (1...Int(Int32.max)).contains(syncTimeoutMs) else {
            throw ValidationError("--sync-timeout-ms \(syncTimeoutMs) must be in 1...\(Int32.max)")
        }
        guard paceMs >= 0 else { throw ValidationError("--pace-ms \(paceMs) must be >= 0") }
        guard clusterID != promptClusterID else {
            throw ValidationError("--cluster-id \(clusterID) equals --prompt-cluster-id; cluster ids must be unique")
        }
        _ = try parseRequestList(removed, option: "--removed")
    }

    func run() throws {
        global.bootstrapLogging()
        let report = try pull()
        if json {
            Output.jsonLine(report)
        } else {
            Output.line(Self.summary(report))
        }
        if !report.ok { throw ExitCode.failure }
    }

    static func summary(_ report: PullReport) -> String {
        var text = """
            pulled \(report.wholePulls) whole, \(report.layerWisePulls) layer by layer; \
            \(report.expectedRefusals.count) expected refusals; \(ProbeText.bytes(report.bytes)) in \
            \(String(format: "%.1f", report.pullSeconds * 1000)) ms = \(String(format: "%.2f", report.gbps)) GB/s; \
            verified \(report.verified); audit clean \(report.auditClean)
            """
        if let failure = report.failure {
            text +=
                "\nFAILED in \(failure.phase)\(failure.request.map { " of request \($0)" } ?? ""): "
                + "\(failure.status?.name ?? "") \(failure.message)"
        }
        return text
    }

    private func pull() throws -> PullReport {
        let removedSet = Set(try parseRequestList(removed, option: "--removed"))
        let endpoint = IPEndpoint(host: host, port: port)
        var report = PullReport(clusterID: clusterID, promptClusterID: promptClusterID, endpoint: endpoint.description)
        report.requests = (0..<UInt64(requests)).map { firstRequest + $0 }

        let decoder = LLMDataDist(role: .decoder, clusterID: clusterID)
        defer { decoder.finalize() }
        var config = LLMConfig()
        // Pushing: room for the source ring (one slot per request) and the slot pulled back, too.
        config.memoryPool = shape.pool(caches: pushCacheID == nil ? 1 : 2 + requests)
        config.enableRemoteCacheAccessible = pushCacheID != nil
        config.syncKVTimeout = .milliseconds(syncTimeoutMs)
        try LinkSecretVariable.apply(to: &config)
        let manager: CacheManager
        let destination: Cache
        do {
            try decoder.initialize(config)
            manager = try decoder.cacheManager
            destination = try manager.allocateCache(shape.desc)
        } catch {
            report.failure = .init(phase: "setup", status: StatusReport(error.status), message: error.message)
            return report
        }

        let prompt = LLMClusterInfo(
            remoteClusterID: promptClusterID, remoteRoleType: .prompt, remoteIPInfos: [endpoint])
        let linkStart = ContinuousClock.now
        let (linkStatus, _) = decoder.linkClusters([prompt], timeout: .seconds(5))
        if linkStatus == .success {
            report.linkMilliseconds = (ContinuousClock.now - linkStart).milliseconds
            report.transport = decoder.linkTransport(toCluster: promptClusterID)?.optionValue
            if announce { Output.line("{\"event\":\"linked\"}") }
            if let pushCacheID {
                var push = PushRun(
                    manager: manager, shape: shape, promptClusterID: promptClusterID, cacheID: pushCacheID,
                    report: report)
                push.run(rounds: self.repeat, paceMs: paceMs)
                report = push.report
            }
            var run = PullRun(
                manager: manager, destination: destination, shape: shape, promptClusterID: promptClusterID,
                prefixKeys: prefixKeys, report: report)
            streaming: for round in 0..<self.repeat where pushCacheID == nil {
                run.report.rounds = round + 1
                for request in report.requests {
                    let pulled: Bool
                    if removedSet.contains(request) {
                        pulled = run.expectNotExist(request, reason: "removeCacheKey")
                    } else {
                        pulled =
                            run.pull(request, layerWise: layerWise.applies(to: request))
                            && (prefixKeys || run.expectNotExist(request, reason: "already consumed"))
                    }
                    guard pulled else {
                        if announce, let failure = run.report.failure { Output.jsonLine(FailedEvent(failure: failure)) }
                        break streaming
                    }
                    if paceMs > 0 { Thread.sleep(forTimeInterval: Double(paceMs) / 1000) }
                }
            }
            report = run.report
        } else {
            report.failure = .init(
                phase: "link", status: StatusReport(linkStatus), message: "linkClusters to \(endpoint) failed",
                callMilliseconds: (ContinuousClock.now - linkStart).milliseconds)
        }

        // A broken link is torn down locally only: the peer may be dead or silent.
        let broken: Set<UInt32> = [
            LLMStatusCode.timeout.rawValue, LLMStatusCode.linkFailed.rawValue, LLMStatusCode.notYetLink.rawValue,
        ]
        let linkBroken =
            report.failure.map { $0.phase == "link" || $0.status.map { broken.contains($0.code) } == true } ?? false
        let (unlinkStatus, _) = decoder.unlinkClusters([prompt], timeout: .seconds(2), force: linkBroken)
        report.unlink = StatusReport(unlinkStatus)
        do {
            try manager.deallocateCache(destination)
        } catch {
            if report.failure == nil {
                report.failure = .init(phase: "deallocate", status: StatusReport(error.status), message: error.message)
            }
        }
        let audit = manager.audit()
        report.audit = AuditReport(audit)
        report.auditClean = audit.isClean
        report.metrics = decoder.metrics()
        report.verified = report.failure == nil && report.bytesVerified == report.bytes && report.bytes > 0
        report.gbps = report.pullSeconds > 0 ? Double(report.bytes) / report.pullSeconds / 1e9 : 0
        report.ok = report.verified && report.auditClean && unlinkStatus == .success
        return report
    }
}

/// The line `pull --announce` prints at the first failure.
private struct FailedEvent: Encodable {
    var event = "failed"
    var failure: PullReport.Failure
}

extension PullCommand.LayerWiseMode {
    func applies(to request: UInt64) -> Bool {
        switch self {
        case .none: false
        case .alternate: request % 2 == 1
        case .all: true
        }
    }
}

/// The pulls of one `datadist pull`, recording into its report.
private struct PullRun {
    let manager: CacheManager
    let destination: Cache
    let shape: KVShapeOptions
    let promptClusterID: UInt64
    let prefixKeys: Bool
    var report: PullReport

    func key(_ request: UInt64) -> CacheKey { demoKey(request, promptCluster: promptClusterID, prefix: prefixKeys) }

    /// Pulls `request` whole or layer by layer, then checks every byte. False (with `report.failure`) on failure.
    mutating func pull(_ request: UInt64, layerWise: Bool) -> Bool {
        let calls: [LayerRange?] =
            layerWise ? (0..<shape.layers).map { LayerRange(source: $0..<$0 + 1, destination: $0..<$0 + 1) } : [nil]
        for layers in calls {
            let start = ContinuousClock.now
            do {
                try manager.pullCache(key(request), into: destination, layers: layers)
                report.pullSeconds += (ContinuousClock.now - start).seconds
            } catch {
                let phase = layers.map { "pullCache layer \($0.source.lowerBound)" } ?? "pullCache"
                report.failure = .init(
                    request: request, phase: phase, status: StatusReport(error.status), message: error.message,
                    callMilliseconds: (ContinuousClock.now - start).milliseconds)
                return false
            }
        }
        if layerWise {
            report.layerWisePulls += 1
            report.layerCalls += calls.count
        } else {
            report.wholePulls += 1
        }
        report.bytes += shape.requestBytes
        for (tensor, address) in destination.tensorAddresses.enumerated() {
            if let offset = KVPattern.firstMismatch(
                address: address, bytes: shape.tensorBytes, request: request, tensor: UInt64(tensor))
            {
                report.failure = .init(
                    request: request, phase: "verify",
                    message: "tensor \(tensor) differs from the pattern at byte \(offset) of \(shape.tensorBytes)")
                return false
            }
            report.bytesVerified += shape.tensorBytes
        }
        return true
    }

    /// Pulls `request` expecting `.kvCacheNotExist`. False (with `report.failure`) on anything else.
    mutating func expectNotExist(_ request: UInt64, reason: String) -> Bool {
        let start = ContinuousClock.now
        do {
            try manager.pullCache(key(request), into: destination)
            report.failure = .init(
                request: request, phase: "expect LLM_KV_CACHE_NOT_EXIST (\(reason))",
                message: "the pull succeeded, but the key should be gone (\(reason))")
            return false
        } catch  where error.status == .kvCacheNotExist {
            report.expectedRefusals.append(.init(request: request, reason: reason, status: StatusReport(error.status)))
            return true
        } catch {
            report.failure = .init(
                request: request, phase: "expect LLM_KV_CACHE_NOT_EXIST (\(reason))",
                status: StatusReport(error.status),
                message: error.message, callMilliseconds: (ContinuousClock.now - start).milliseconds)
            return false
        }
    }
}
