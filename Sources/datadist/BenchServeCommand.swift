import ArgumentParser
import DataDist
import Foundation

/// `datadist bench-serve`: the prompt process of `datadist bench`.
///
/// With `--host ADDR [--port P]` it stands alone, for a `datadist bench --connect ADDR:PORT` started elsewhere:
/// it allocates and fills a ring of prefix-keyed slots per `--sizes` size (`StandaloneBenchServer`), prints
/// `READY <port>` as `serve` does, and serves until stdin closes; then it frees everything, prints `EXIT` with its
/// audit, and exits 0 only if the audit is clean.
///
/// Without `--host` it is `bench`'s own child on 127.0.0.1: it allocates, fills and frees caches when told to on
/// stdin, one command per line, and answers each with one JSON line on stdout:
///
/// - `cache <name> <slotBytes> <slots> <keys> <firstID> <fill>`: a 1-tensor cache of `slots` batch slots of
///   `slotBytes` bytes. `keys` is `prefix`, `request` or `none`; slot `s` gets key id `firstID + s` and, with
///   `fill` = `pattern`, the bytes `KVPattern(request: firstID + s, tensor: 0)` (`touch`: zeros, written).
/// - `blocks <name> <tensors> <blocks> <blockBytes> <modelID>`: a blocks cache bound to `BlocksCacheKey(modelID:)`;
///   block `b` of tensor `t` holds `KVPattern(request: b, tensor: t)`.
/// - `free <name>`: removes the cache's remaining keys and deallocates it.
///
/// Stdin closing ends it: everything is freed and the audit printed; exit 0 only if the audit is clean.
struct BenchServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-serve",
        abstract: "The prompt side of `datadist bench`: with --host, a server for `bench --connect` elsewhere.")

    @Option(name: .customLong("cluster-id"), help: "This (prompt) cluster's id.")
    var clusterID: UInt64 = 1

    @Option(help: "Device pool size in bytes.")
    var poolBytes = 1 << 30

    @Flag(
        help:
            "Enable remote cache access (pushes; slot pulls by cache id); with --host, also a zeroed ring per size to push into."
    )
    var remoteAccessible = false

    @Option(
        help:
            "With --host: also a blocks cache for `bench --connect` pull_blocks: 61 layers × 2 tensors, 128 blocks of this size each (\(ByteSize.grammar); a multiple of 8 up to 1MiB; 128KiB, as bench's own, takes 2 GiB)."
    )
    var blocks: String?

    @Option(
        help: "Stand alone: listen on this numeric IPv4 or IPv6 address for `bench --connect` (prints READY <port>).")
    var host: String?

    @Option(help: "Without --host: the numeric address to listen on (another network namespace's peers need its own).")
    var listen = "127.0.0.1"

    @Option(help: "With --host: the port to listen on (0 picks a free one).")
    var port: UInt16 = 0

    @Option(help: "With --host: comma-separated sizes to serve, each \(ByteSize.grammar); as `bench --sizes`.")
    var sizes = BenchCommand.defaultSizes

    @Option(help: "With --host: bytes of each size's ring of slots (as `bench`, at least one slot).")
    var ringBytes = "128MiB"

    /// A test hook: flips the last byte of slot 0 of every `pattern` cache after filling, so the bench's check must fail.
    @Flag(help: .hidden)
    var corrupt = false

    @OptionGroup var metrics: MetricsOptions

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        guard Self.isNumericAddress(listen) else {
            throw ValidationError("--listen \(listen) is not a numeric IPv4 or IPv6 address")
        }
        guard let host else {
            if let blocks {
                throw ValidationError(
                    "--blocks \(blocks) needs --host (bench's own bench-serve makes its blocks caches itself)")
            }
            return
        }
        _ = try parsedBlockBytes()
        guard Self.isNumericAddress(host) else {
            throw ValidationError("--host \(host) is not a numeric IPv4 or IPv6 address")
        }
        _ = try BenchCommand.parseSizes(sizes, option: "--sizes")
        _ = try parsedRingBytes()
    }

    /// Whether `LLMConfig` accepts `host` as a listen address (a numeric IPv4 or IPv6 address).
    static func isNumericAddress(_ host: String) -> Bool {
        var config = LLMConfig()
        config.listenAddress = IPEndpoint(host: host, port: 0)
        return (try? config.validate()) != nil
    }

    /// `--blocks` as a block size, or nil when not given.
    private func parsedBlockBytes() throws -> Int? {
        guard let blocks else { return nil }
        guard let bytes = ByteSize(blocks)?.bytes, bytes > 0, bytes % 8 == 0, bytes <= 1 << 20 else {
            throw ValidationError(
                "--blocks \(blocks) is not a block size (a multiple of 8 bytes up to 1MiB, e.g. 128KiB)")
        }
        return bytes
    }

    private func parsedRingBytes() throws -> Int {
        guard let bytes = ByteSize(ringBytes)?.bytes, bytes > 0, bytes <= 1 << 30 else {
            throw ValidationError("--ring-bytes \(ringBytes) is not a size in 1B...1GiB (\(ByteSize.grammar))")
        }
        return bytes
    }

    func run() throws {
        global.bootstrapLogging()
        let exporter = try metrics.startExporter()
        defer { exporter?.stop() }
        if let host { return try serveStandalone(on: host, exporter: exporter) }
        let prompt = LLMDataDist(role: .prompt, clusterID: clusterID)
        exporter?.sampleBeforeScrapes { _ = prompt.metrics() }
        var config = LLMConfig()
        config.memoryPool = MemoryPoolConfig(size: poolBytes)
        config.listenAddress = IPEndpoint(host: listen, port: 0)
        config.enableRemoteCacheAccessible = remoteAccessible
        config.syncKVTimeout = .seconds(30)
        try LinkSecretVariable.apply(to: &config)
        let manager: CacheManager
        do {
            try prompt.initialize(config)
            manager = try prompt.cacheManager
        } catch {
            prompt.finalize()
            Output.jsonLine(BenchServeReply(event: "exit", error: "\(error)"))
            throw ExitCode.failure
        }
        Output.jsonLine(
            BenchServeReply(event: "ready", port: prompt.listenEndpoint?.port, metricsPort: exporter?.port))
        var server = BenchServer(manager: manager, clusterID: clusterID, corrupt: corrupt)
        while let line = readLine() {
            let words = line.split(separator: " ").map(String.init)
            guard !words.isEmpty else { continue }
            Output.jsonLine(server.handle(words))
        }
        var failure: String?
        for name in Array(server.caches.keys) {
            if let error = server.free(name) { failure = failure ?? error }
        }
        let audit = AuditReport(manager.audit())
        prompt.finalize()
        Output.jsonLine(BenchServeReply(event: "exit", audit: audit, error: failure))
        if !audit.clean || failure != nil { throw ExitCode.failure }
    }
}

extension BenchServeCommand {
    /// `--host`: fills the rings, prints `READY <port>`, serves until stdin closes, then frees and audits.
    private func serveStandalone(on host: String, exporter: MetricsExporter?) throws {
        let sizes = try BenchCommand.parseSizes(sizes, option: "--sizes")
        let ringBytes = try parsedRingBytes()
        let blocks = try parsedBlockBytes().map(StandaloneBenchServer.blocksShape(blockBytes:))
        let prompt = LLMDataDist(role: .prompt, clusterID: clusterID)
        exporter?.sampleBeforeScrapes { _ = prompt.metrics() }
        var config = LLMConfig()
        config.memoryPool = MemoryPoolConfig(
            size: StandaloneBenchServer.poolBytes(
                sizes: sizes, ringBytes: ringBytes, blocks: blocks, pushRings: remoteAccessible
            ).roundedUp(toMultipleOf: 1 << 16))
        config.listenAddress = IPEndpoint(host: host, port: port)
        config.enableRemoteCacheAccessible = remoteAccessible
        config.syncKVTimeout = .seconds(30)
        try LinkSecretVariable.apply(to: &config)
        let server: StandaloneBenchServer
        do {
            try prompt.initialize(config)
            server = try StandaloneBenchServer(
                manager: try prompt.cacheManager, clusterID: clusterID, sizes: sizes, ringBytes: ringBytes,
                blocks: blocks, pushRings: remoteAccessible, corrupt: corrupt)
        } catch {
            prompt.finalize()
            printToStandardError("datadist bench-serve: \(error)")
            throw ExitCode.failure
        }
        if let exporter { Output.line("METRICS \(exporter.port)") }
        Output.line("READY \(prompt.listenEndpoint?.port ?? 0)")
        while readLine() != nil {}
        let failure = server.free()
        let audit = server.manager.audit()
        prompt.finalize()
        Output.line("EXIT audit \(audit)\(failure.map { ", \($0)" } ?? "")")
        if !audit.isClean || failure != nil { throw ExitCode.failure }
    }
}

extension Int {
    fileprivate func roundedUp(toMultipleOf step: Int) -> Int { (self + step - 1) / step * step }
}

/// One JSON line `bench-serve` prints.
struct BenchServeReply: Codable {
    var event: String
    var name: String?
    var port: UInt16?
    var cacheID: Int64?
    var audit: AuditReport?
    var error: String?
    /// The port of the Prometheus endpoint (`ready`, with `--metrics-port`).
    var metricsPort: Int?
}

/// The caches of a `bench-serve` (or of `bench`'s in-process prompt), by the names the bench gave them.
struct BenchServer {
    let manager: CacheManager
    let clusterID: UInt64
    let corrupt: Bool
    var caches: [String: (cache: Cache, keys: [CacheKey])] = [:]

    mutating func handle(_ words: [String]) -> BenchServeReply {
        let name = words.count > 1 ? words[1] : ""
        do {
            switch (words[0], words.count) {
            case ("cache", 7):
                guard let slotBytes = Int(words[2]), let slots = Int(words[3]), let first = UInt64(words[5]),
                    slotBytes > 0, slotBytes % 8 == 0, slots > 0, ["prefix", "request", "none"].contains(words[4]),
                    ["pattern", "touch"].contains(words[6])
                else { return BenchServeReply(event: "error", name: name, error: "bad command: \(words)") }
                let keys: [CacheKey] =
                    switch words[4] {
                    case "prefix":
                        (0..<UInt64(slots)).map {
                            CacheKey(promptClusterID: clusterID, reqID: .max, prefixID: first + $0)
                        }
                    case "request": (0..<UInt64(slots)).map { CacheKey(promptClusterID: clusterID, reqID: first + $0) }
                    default: []
                    }
                let desc = CacheDesc(numTensors: 1, shape: [Int64(slots), Int64(slotBytes / 2)], dataType: .float16)
                let cache = try manager.allocateCache(desc, keys: keys)
                let base = cache.tensorAddresses[0]
                for slot in 0..<slots {
                    let address = base + UInt(slot * slotBytes)
                    if words[6] == "pattern" {
                        KVPattern.fill(address: address, bytes: slotBytes, request: first + UInt64(slot), tensor: 0)
                    } else {
                        BenchMemory.zero(address: address, bytes: slotBytes)
                    }
                }
                if corrupt && words[6] == "pattern" { BenchMemory.flipByte(at: base + UInt(slotBytes - 1)) }
                caches[name] = (cache, keys)
                return BenchServeReply(event: "cache", name: name, cacheID: cache.cacheID)
            case ("blocks", 6):
                guard let tensors = Int(words[2]), let blocks = Int(words[3]), let blockBytes = Int(words[4]),
                    let modelID = UInt64(words[5]), tensors > 0, blocks > 0, blockBytes > 0, blockBytes % 8 == 0
                else { return BenchServeReply(event: "error", name: name, error: "bad command: \(words)") }
                let cache = try manager.allocateBlocksCache(
                    BenchBlocks.desc(tensors: tensors, blocks: blocks, blockBytes: blockBytes, placement: .device),
                    key: BlocksCacheKey(clusterID: clusterID, modelID: modelID))
                BenchBlocks.fill(cache.tensorAddresses, blocks: 0..<blocks, blockBytes: blockBytes)
                caches[name] = (cache, [])
                return BenchServeReply(event: "blocks", name: name, cacheID: cache.cacheID)
            case ("free", 2):
                if let error = free(name) { return BenchServeReply(event: "error", name: name, error: error) }
                return BenchServeReply(event: "freed", name: name)
            default:
                return BenchServeReply(event: "error", name: name, error: "unknown command: \(words)")
            }
        } catch {
            return BenchServeReply(event: "error", name: name, error: "\(error)")
        }
    }

    /// Removes the keys of cache `name` and deallocates it; an error message, or nil.
    mutating func free(_ name: String) -> String? {
        guard let (cache, keys) = caches.removeValue(forKey: name) else { return "no cache named \(name)" }
        do {
            if cache.isBlocksCache {
                try manager.deallocateBlocksCache(cache)
            } else {
                for key in keys { try manager.removeCacheKey(key) }
                try manager.deallocateCache(cache)
            }
            return nil
        } catch {
            return "\(error)"
        }
    }
}
