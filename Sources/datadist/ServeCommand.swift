import ArgumentParser
import DataDist
import Dispatch
import Foundation
import Synchronization
import ThreadSanitizerSupport

/// `datadist serve`: a prompt cluster holding keyed KV caches filled with `KVPattern`, serving pulls until told
/// to stop.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve keyed KV caches filled with a known pattern (the prompt side of the demo).",
        discussion: """
            Allocates one cache per request (ids 0..<requests), binds it to CacheKey(promptClusterID: \
            <cluster-id>, reqID: id) (or prefix id with --prefix-keys), fills every byte with the pattern \
            `datadist pull` checks, removes the keys of --remove, prints `READY <port>` (a JSON line with --json) \
            and serves until stdin closes, SIGTERM or SIGINT arrives, or --linger-seconds pass. A line `audit` on \
            stdin prints the current audit. At exit it removes the remaining keys, deallocates, prints its audit \
            as a JSON line and exits 0 only if the audit is clean. With --registered the caches are memory this \
            process allocates itself, registered with registerCache (remote-accessible): only UCX serves them, \
            so links go over UCX (automatic transport).
            """)

    @Option(help: "Requests to serve (ids 0..<requests), one cache each.")
    var requests = 8

    @OptionGroup var shape: KVShapeOptions

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on; 0 picks a free one.")
    var port: UInt16 = 0

    @Option(name: .customLong("cluster-id"), help: "This (prompt) cluster's id.")
    var clusterID: UInt64 = 1

    @Option(
        parsing: .singleValue,
        help: ArgumentHelp("Remove this request's key after filling (repeatable or comma-separated).", valueName: "id"))
    var remove: [String] = []

    @Flag(help: "Bind prefix keys (never consumed by a pull) instead of request keys.")
    var prefixKeys = false

    @Flag(
        help:
            "Serve memory this process allocates itself, registered with registerCache (needs --prefix-keys: keys of registered caches are never consumed)."
    )
    var registered = false

    @Option(help: "Stop serving after this many seconds.")
    var lingerSeconds: Double?

    @Flag(help: "Do not stop when stdin closes (for running in the background).")
    var ignoreStdin = false

    /// A test hook: flips one byte after filling, so a pull's verification must catch it.
    @Option(help: .hidden)
    var corruptByte: String?

    @Flag(help: "Print the READY line as JSON.")
    var json = false

    @OptionGroup var metrics: MetricsOptions

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        guard (1...100_000).contains(requests) else {
            throw ValidationError("--requests \(requests) must be in 1...100000")
        }
        guard clusterID != .max else { throw ValidationError("--cluster-id \(clusterID) is reserved") }
        guard IPEndpoint("\(host.contains(":") ? "[\(host)]" : host):0") != nil else {
            throw ValidationError("--host \(host) is not an address")
        }
        let removed = try removedRequests()
        if let bad = removed.first(where: { $0 >= UInt64(requests) }) {
            throw ValidationError("--remove \(bad) is not a request id (0..<\(requests))")
        }
        if let corruptByte, corruptSpot(corruptByte) == nil {
            throw ValidationError("--corrupt-byte \(corruptByte) must be request:tensor:byte inside the caches")
        }
        if let linger = lingerSeconds, !(linger > 0) { throw ValidationError("--linger-seconds \(linger) must be > 0") }
        if registered, !prefixKeys {
            throw ValidationError(
                "--registered needs --prefix-keys: pulls never consume the keys of a registered cache, as prefix keys")
        }
        if registered, requests * shape.tensors > 240 {
            throw ValidationError(
                "--registered registers \(requests * shape.tensors) tensors (--requests × 2 × --layers); at most 240 addresses can be registered"
            )
        }
        if registered, !removed.isEmpty {
            throw ValidationError("--registered cannot --remove: removeCacheKey leaves the keys of registered caches")
        }
    }

    func removedRequests() throws -> [UInt64] {
        try parseRequestList(remove, option: "--remove")
    }

    func run() throws {
        global.bootstrapLogging()
        let stop = StopSignal()
        let signalSources = stop.watchSignals([SIGTERM, SIGINT])
        defer { for item in signalSources { item.cancel() } }

        let exporter = try metrics.startExporter()
        defer { exporter?.stop() }
        let prompt = LLMDataDist(role: .prompt, clusterID: clusterID)
        exporter?.sampleBeforeScrapes { _ = prompt.metrics() }
        var config = LLMConfig()
        config.memoryPool = shape.pool(caches: registered ? 1 : requests)
        config.listenAddress = IPEndpoint(host: host, port: port)
        try LinkSecretVariable.apply(to: &config)
        let removed = try removedRequests()
        let caches: [Cache]
        let manager: CacheManager
        var memory: [UInt] = []
        defer { for address in memory { BenchMemory.free(address) } }
        do {
            try prompt.initialize(config)
            manager = try prompt.cacheManager
            caches = try allocateFilled(manager, memory: &memory)
            for request in removed {
                try manager.removeCacheKey(demoKey(request, promptCluster: clusterID, prefix: prefixKeys))
            }
        } catch {
            prompt.finalize()
            Output.jsonLine(ServeEvent(event: "exit", reason: "setup failed", clean: false, error: "\(error)"))
            throw ExitCode.failure
        }
        guard let endpoint = prompt.listenEndpoint else {
            prompt.finalize()
            Output.jsonLine(ServeEvent(event: "exit", reason: "setup failed", clean: false, error: "not listening"))
            throw ExitCode.failure
        }
        if json {
            Output.jsonLine(
                ServeEvent(
                    event: "ready", port: endpoint.port, clusterID: clusterID,
                    pid: ProcessInfo.processInfo.processIdentifier, requests: requests, removed: removed,
                    prefixKeys: prefixKeys, bytesPerRequest: shape.requestBytes, metricsPort: exporter?.port))
        } else {
            if let exporter { Output.line("METRICS \(exporter.port)") }
            Output.line("READY \(endpoint.port)")
        }

        if !ignoreStdin {
            stop.watchStandardInput { command in
                switch command {
                case "audit": Output.jsonLine(ServeEvent(event: "audit", audit: AuditReport(manager.audit())))
                case "": break
                default: printToStandardError("datadist serve: unknown command '\(command)' on stdin (known: audit)")
                }
            }
        }
        let reason = stop.wait(seconds: lingerSeconds) ?? "--linger-seconds \(lingerSeconds ?? 0) passed"

        let before = manager.audit()
        var cleanupError: String?
        do {
            for request in 0..<UInt64(requests) {
                try manager.removeCacheKey(demoKey(request, promptCluster: clusterID, prefix: prefixKeys))
            }
            for cache in caches {
                if registered { try manager.unregisterCache(cache.cacheID) } else { try manager.deallocateCache(cache) }
            }
        } catch {
            cleanupError = "\(error)"
        }
        let after = AuditReport(manager.audit())
        prompt.finalize()
        let clean = after.clean && cleanupError == nil
        Output.jsonLine(
            ServeEvent(
                event: "exit", reason: reason, keysLeft: before.boundKeys, auditBeforeCleanup: AuditReport(before),
                audit: after, clean: clean, error: cleanupError))
        if !clean { throw ExitCode.failure }
    }

    /// One cache per request, each bound to its key and filled with the pattern: allocated, or (--registered)
    /// registered from buffers of this process, whose addresses go to `memory`.
    private func allocateFilled(_ manager: CacheManager, memory: inout [UInt]) throws -> [Cache] {
        var caches: [Cache] = []
        for request in 0..<UInt64(requests) {
            let key = demoKey(request, promptCluster: clusterID, prefix: prefixKeys)
            let cache: Cache
            if registered {
                var addresses: [UInt] = []
                for _ in 0..<shape.tensors {
                    guard let address = BenchMemory.allocate(shape.tensorBytes) else {
                        throw ValidationError("cannot allocate \(shape.tensorBytes) bytes to register")
                    }
                    memory.append(address)
                    addresses.append(address)
                }
                cache = try manager.registerCache(shape.desc, addresses: addresses, keys: [key], remoteAccessible: true)
            } else {
                cache = try manager.allocateCache(shape.desc, keys: [key])
            }
            caches.append(cache)
            for (tensor, address) in cache.tensorAddresses.enumerated() {
                KVPattern.fill(address: address, bytes: shape.tensorBytes, request: request, tensor: UInt64(tensor))
            }
        }
        if let corruptByte, let (request, tensor, byte) = corruptSpot(corruptByte) {
            let pointer = UnsafeMutablePointer<UInt8>(bitPattern: caches[request].tensorAddresses[tensor] + UInt(byte))!
            pointer.pointee ^= 0xFF
        }
        return caches
    }

    /// `request:tensor:byte` of `--corrupt-byte`, if it names a byte of the caches.
    private func corruptSpot(_ text: String) -> (Int, Int, Int)? {
        let parts = text.split(separator: ":").compactMap { Int($0) }
        guard parts.count == 3, (0..<requests).contains(parts[0]), (0..<shape.tensors).contains(parts[1]),
            (0..<shape.tensorBytes).contains(parts[2])
        else { return nil }
        return (parts[0], parts[1], parts[2])
    }
}

/// Request ids given as repeated options and/or comma-separated lists.
func parseRequestList(_ values: [String], option: String) throws -> [UInt64] {
    var ids: [UInt64] = []
    for value in values {
        for part in value.split(separator: ",", omittingEmptySubsequences: false) {
            let text = part.trimmingCharacters(in: .whitespaces)
            guard let id = UInt64(text) else {
                throw ValidationError("\(option) \(value): '\(text)' is not a request id")
            }
            if !ids.contains(id) { ids.append(id) }
        }
    }
    return ids
}

/// The first of: a watched signal, stdin closing, a deadline.
final class StopSignal: Sendable {
    private let reason = Lock<String?>(nil)
    private let semaphore = DispatchSemaphore(value: 0)

    func stop(_ why: String) {
        let first = reason.withLock { reason in
            guard reason == nil else { return false }
            reason = why
            return true
        }
        if first { semaphore.signal() }
    }

    /// Turns each signal into a stop (instead of killing the process).
    func watchSignals(_ signals: [Int32]) -> [any DispatchSourceSignal] {
        signals.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in
                stop(number == SIGTERM ? "SIGTERM" : number == SIGINT ? "SIGINT" : "signal \(number)")
            }
            source.resume()
            return source
        }
    }

    /// Reads stdin lines on a thread, handing each (trimmed) to `command`; stops when stdin closes.
    func watchStandardInput(_ command: @escaping @Sendable (String) -> Void) {
        Thread.detachNewThread { [self] in
            while let line = readLine() { command(line.trimmingCharacters(in: .whitespaces)) }
            stop("stdin closed")
        }
    }

    /// Waits for a stop (forever when `seconds` is nil); the reason, or nil when the time ran out.
    func wait(seconds: Double?) -> String? {
        if let seconds {
            guard semaphore.wait(timeout: .now() + seconds) == .success else { return nil }
        } else {
            semaphore.wait()
        }
        return reason.withLock { $0 }
    }
}
