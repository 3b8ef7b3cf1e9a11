import DataDist
import Foundation

/// One `datadist bench` run: starts the prompt process(es), makes the decoder instances, runs the rows.
final class BenchRun {
    struct Outcome {
        var rows: [BenchRow]
        var header: String
        var notes: [String]
        var problems: [String]
    }

    let sizes: [Int]
    let operations: Set<String>
    let duration: Double
    let verbose: Bool
    let corruptSource: Bool
    /// A standalone `bench-serve` to pull from, and its cluster id; nil: this run starts its own.
    let connect: (endpoint: IPEndpoint, cluster: UInt64)?
    /// With `connect`: the decoder has remote cache access (as the bench-serve must), for push_cache.
    let remoteAccessible: Bool
    let cores = ProcessInfo.processInfo.activeProcessorCount
    let ringBytes = max(4 * BenchMemory.lastLevelCacheBytes, 128 << 20)
    var rows: [BenchRow] = []
    var notes: [String] = []
    var problems: [String] = []
    var ceilings: CopyCeilings!
    /// The transport of the link the current rows run over (nil: local rows).
    var linkTransport: String?
    private var nextName = 0

    static let latencySizes = [16 << 10, 1 << 20]
    static let copyEngineSizes = [256 << 10, 1 << 20, 2 << 20, 4 << 20]
    static let promptCluster: UInt64 = 1
    static let remotePromptCluster: UInt64 = 11

    init(
        sizes: [Int], operations: Set<String>, duration: Double, verbose: Bool, corruptSource: Bool = false,
        connect: (endpoint: IPEndpoint, cluster: UInt64)? = nil, remoteAccessible: Bool = false
    ) {
        self.remoteAccessible = remoteAccessible
        self.corruptSource = corruptSource
        self.connect = connect
        self.sizes = sizes
        self.operations = operations
        self.duration = duration
        self.verbose = verbose
    }

    func execute() -> Outcome {
        let peer = connect.map { "bench-serve (cluster \($0.cluster)) at \($0.endpoint)" } ?? "prompt process"
        let place = connect == nil ? " on 127.0.0.1" : ""
        let rings =
            connect == nil
            ? "sources and destinations rotate over \(ByteSize(bytes: ringBytes)) rings"
            : "sources and destinations rotate over the bench-serve's rings (its --ring-bytes), ceilings over \(ByteSize(bytes: ringBytes)) rings"
        var header = """
            datadist bench: \(peer) ↔ decoder (this process)\(place); \(cores) cores, LLC \
            \(ByteSize(bytes: BenchMemory.lastLevelCacheBytes)); \(rings); \(duration) s per measurement; GB/s = 10^9 B/s; \
            ratio = GB/s ÷ single-thread memcpy of the same bytes and pattern, timed in slices interleaved with the operation
            """
        do {
            ceilings = try CopyCeilings(ringBytes: ringBytes, threads: cores)
        } catch {
            return Outcome(rows: [], header: header, notes: [], problems: ["memcpy ceilings: \(error)"])
        }
        header +=
            "\nkeys: prefix = prefix keys (never consumed; resolved on every call), request = request keys "
            + "(consumed; fresh keys bound between generations, untimed), slot = CacheKeyByIdAndIndex, local = no peer"
        do {
            if let connect {
                try runConnectedRows(to: connect.endpoint, promptCluster: connect.cluster)
            } else {
                try runPeerRows()
                try runLocalRows()
            }
        } catch {
            problems.append("\(error)")
        }
        return Outcome(rows: rows, header: header, notes: notes, problems: problems)
    }

    // MARK: rows with a peer

    private func runPeerRows() throws {
        let needsPrompt = !operations.isDisjoint(with: [
            "pull_cache", "pull_small", "pull_caches", "copy_engine", "pull_blocks",
        ])
        if needsPrompt {
            let server = try BenchPrompt(
                clusterID: Self.promptCluster, poolBytes: 3 << 30, remoteAccessible: false, verbose: verbose,
                corrupt: corruptSource)
            let decoder = try BenchDecoder(
                clusterID: 2, to: server, poolBytes: 3 << 30, copyThreads: nil, remoteAccessible: false)
            linkTransport = decoder.engine.linkTransport(toCluster: server.clusterID)?.optionValue
            defer { linkTransport = nil }
            var single: BenchDecoder?
            defer {
                if let problem = single?.finish() { problems.append(problem) }
                if let problem = decoder.finish() { problems.append(problem) }
                if let problem = server.finish() { problems.append(problem) }
            }
            if operations.contains("pull_cache") {
                for size in sizes { try record { try pullCacheBandwidth(size, server: server, decoder: decoder) } }
                for size in sizes where Self.latencySizes.contains(size) {
                    try record { try pullCacheLatency(size, server: server, decoder: decoder) }
                }
            }
            if operations.contains("pull_small") { try smallPullRows(server: server, decoder: decoder) }
            if operations.contains("pull_caches") {
                for size in sizes {
                    try recordIfAny { try pullCachesBandwidth(size, server: server, decoder: decoder) }
                }
            }
            if operations.contains("copy_engine") {
                let one = try BenchDecoder(
                    clusterID: 3, to: server, poolBytes: 1 << 30, copyThreads: 1, remoteAccessible: false)
                single = one
                try copyEngineRows(server: server, all: decoder, one: one)
            }
            if operations.contains("pull_blocks") {
                for scattered in [true, false] {
                    try record { try pullBlocks(scattered: scattered, server: server, decoder: decoder) }
                }

            }
        }
        if !operations.isDisjoint(with: ["push_cache", "transfer_cache_async"]) {
            let server = try BenchPrompt(
                clusterID: Self.remotePromptCluster, poolBytes: 1 << 30, remoteAccessible: true, verbose: verbose)
            let decoder = try BenchDecoder(
                clusterID: 12, to: server, poolBytes: 1 << 30, copyThreads: nil, remoteAccessible: true)
            linkTransport = decoder.engine.linkTransport(toCluster: server.clusterID)?.optionValue
            defer { linkTransport = nil }
            defer {
                if let problem = decoder.finish() { problems.append(problem) }
                if let problem = server.finish() { problems.append(problem) }
            }
            for size in sizes where operations.contains("push_cache") {
                try record { try pushCache(size, server: server, decoder: decoder) }
            }
            if operations.contains("transfer_cache_async") {
                try record { try transferCacheAsync(server: server, decoder: decoder) }
            }
        }
    }

    /// Runs local rows on their own decoder instance (no link needed).
    private func runLocalRows() throws {
        guard !operations.isDisjoint(with: ["swap_blocks", "copy_cache", "allocate"]) else { return }
        let engine = LLMDataDist(role: .decoder, clusterID: 21)
        var config = LLMConfig()
        config.memoryPool = MemoryPoolConfig(size: 3 << 30)
        try engine.initialize(config)
        defer { engine.finalize() }
        let manager = try engine.cacheManager
        if operations.contains("swap_blocks") { try swapBlocks(manager) }
        if operations.contains("copy_cache") {
            for size in sizes { try record { try copyCache(size, manager: manager) } }
        }
        if operations.contains("allocate") {
            for tensorBytes in Self.allocateTensorBytes {
                try record { try allocate(manager, tensorBytes: tensorBytes) }
            }
        }
        let audit = manager.audit()
        if !audit.isClean { problems.append("local instance audit not clean: \(AuditReport(audit).summary)") }
    }

    // MARK: helpers

    /// Appends the row `make` returns, prints progress, and notes a failed verification.
    func record(_ make: () throws -> BenchRow) throws {
        let row = try make()
        rows.append(row)
        if !row.verified {
            problems.append("\(row.operation) \(ByteSize(bytes: row.bytes)): \(row.notes ?? "verification failed")")
        }
        var line =
            "bench: \(row.operation)\(row.copyThreads.map { " (copyThreads \($0))" } ?? "") "
            + "\(ByteSize(bytes: row.bytes)) [\(row.pattern)]: \(BenchTable.f(row.gbps, 2)) GB/s = "
            + "\(BenchTable.f(row.ratio, 2))× memcpy (\(BenchTable.f(row.ceilingGBps, 2)) GB/s)"
        if let all = row.allCoresCeilingGBps { line += ", all cores \(BenchTable.f(all, 2)) GB/s" }
        if let streaming = row.streamingCeilingGBps { line += ", streaming copy \(BenchTable.f(streaming, 2)) GB/s" }
        if let p50 = row.p50us, let p99 = row.p99us {
            line += ", p50 \(BenchTable.f(p50, 1)) µs p99 \(BenchTable.f(p99, 1)) µs"
        }
        line += row.verified ? "" : "  VERIFY FAILED"
        printToStandardError(line)
    }

    /// `record` for a row that may not apply (nil: skipped, with a note).
    func recordIfAny(_ make: () throws -> BenchRow?) throws {
        guard let row = try make() else { return }
        try record { row }
    }

    func uniqueName() -> String {
        nextName += 1
        return "c\(nextName)"
    }

    /// A first id for keys no earlier row used.
    func uniqueKeyBase() -> UInt64 { UInt64(nextName + 1) << 32 }

    /// Times `op(i)` (i = 0, 1, …) and every ceiling of `copy` in `rounds` interleaved slices of
    /// `duration / rounds` each (each ceiling, then the operation), so machine noise hits them all alike.
    /// At least `minIterations` of `op` run in total.
    func measure(
        _ copy: CopyCeilings.Pattern, rounds: Int = 3, minIterations: Int = 2, _ op: (Int) throws -> Void
    ) throws -> Measured {
        var timing = BenchTiming.Result(iterations: 0, seconds: 0)
        var totals: [CopyCeilings.Kind: (iterations: Int, seconds: Double)] = [:]
        let slice = duration / Double(rounds)
        for round in 0..<rounds {
            for kind in CopyCeilings.Kind.allCases {
                let result = try ceilings.measure(copy, kind: kind, duration: slice)
                let total = totals[kind] ?? (0, 0)
                totals[kind] = (total.iterations + result.iterations, total.seconds + result.seconds)
            }
            let done = timing.iterations
            let needed = round == rounds - 1 ? max(1, minIterations - done) : 1
            let part = try BenchTiming.loop(duration: slice, minIterations: needed) { try op(done + $0) }
            timing.iterations += part.iterations
            timing.seconds += part.seconds
        }
        let ceilings = try Ceilings { kind in
            let total = totals[kind]!
            return Double(copy.bytes) * Double(total.iterations) / total.seconds / 1e9
        }
        return Measured(timing: timing, ceilings: ceilings)
    }

    struct Measured {
        var timing: BenchTiming.Result
        var ceilings: Ceilings
    }

    /// A row for `bytes` per call, with its ceilings and ratios; with `latency`, GB/s and p50/p99 come from the
    /// per-call samples.
    func row(
        _ operation: String, bytes: Int, measured: Measured, keys: String, pattern: String, copyThreads: Int? = nil,
        mismatch: String?, latency: Bool = false
    ) -> BenchRow {
        let (timing, single, allCores) = (measured.timing, measured.ceilings.single, measured.ceilings.allCores)
        let streaming = measured.ceilings.streaming
        let seconds = latency ? timing.samples.reduce(0, +) : timing.seconds
        let gbps = Double(bytes) * Double(timing.iterations) / seconds / 1e9
        return BenchRow(
            operation: operation, bytes: bytes, gbps: gbps, ceilingGBps: single, ratio: gbps / single,
            allCoresCeilingGBps: allCores, allCoresRatio: gbps / allCores, streamingCeilingGBps: streaming,
            streamingRatio: gbps / streaming,
            p50us: latency ? BenchTiming.quantileMicroseconds(timing.samples, 0.5) : nil,
            p99us: latency ? BenchTiming.quantileMicroseconds(timing.samples, 0.99) : nil,
            iterations: timing.iterations, seconds: seconds, keys: keys, pattern: pattern, copyThreads: copyThreads,
            verified: mismatch == nil, notes: mismatch, transport: linkTransport)
    }

    /// The first mismatch of slot `slot` of a 1-tensor ring at `base` against `KVPattern(request: id)`.
    static func check(base: UInt, slot: Int, bytes: Int, id: UInt64, what: String) -> String? {
        KVPattern.firstMismatch(address: base + UInt(slot * bytes), bytes: bytes, request: id, tensor: 0)
            .map { "\(what): slot \(slot) differs from key \(id)'s pattern at byte \($0) of \(bytes)" }
    }

    /// A 1-tensor device cache of `slots` slots of `bytes`, every byte written once.
    static func ring(_ manager: CacheManager, slots: Int, bytes: Int) throws -> Cache {
        let cache = try manager.allocateCache(
            CacheDesc(numTensors: 1, shape: [Int64(slots), Int64(bytes / 2)], dataType: .float16))
        BenchMemory.zero(address: cache.tensorAddresses[0], bytes: slots * bytes)
        return cache
    }
}
