import ArgumentParser
import DataDist
import Foundation

/// `datadist bench`: transfer bandwidth and latency between a prompt process and this (decoder) process on
/// loopback, each row beside the memcpy ceilings of the same bytes and copy pattern measured in the same run.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure pull/push/swap/copy bandwidth and latency beside the memcpy ceiling of this machine.",
        discussion: """
            Starts a prompt process (`datadist bench-serve`) that allocates and fills what each row needs; this \
            process is the decoder: it links and pulls over the zero-copy loopback path. Every row is measured \
            beside single-thread memcpy and memcpy split over all cores, for the same bytes and copy pattern, \
            between host buffers larger than the last-level cache (sources and destinations rotate over rings \
            of max(4 × LLC, 128 MiB)). GB/s = 10^9 bytes/s; ratio = GB/s over the single-thread ceiling. A third \
            reference, a single-thread copy with streaming (non-temporal) stores as the emulator's large copies \
            use, is shown beside them (stream 1T).

            Operations (--operations): pull_cache (one tensor per size, prefix keys; and latency rows at 16 KiB \
            and 1 MiB with request keys, p50/p99 of the whole call), pull_small (16 KiB pulls by request key, p50/p99, \
            beside their floor measured between them: a polled round trip over a Unix socket plus a memcpy of the \
            same bytes; two processes with 1 K, 1 M and again 1 K keys bound, and two engines in this process; and pullBlocks of \
            32 scattered 16 KiB / 64 KiB blocks of one tensor per call beside memcpy of the same blocks), pull_caches (per size up to 16 MiB: \
            pullCaches of 32 request keys per call, one round trip; bytes and GB/s are the whole batch's), copy_engine (pull_cache with \
            LLMConfig.copyThreads = 1 vs every core at 256 KiB, 1, 2 and 4 MiB), pull_blocks (61 layers × 2 \
            tensors, 64 of 128 blocks of 128 KiB, scattered and adjacent), push_cache (per size, \
            enableRemoteCacheAccessible on both sides), transfer_cache_async (61 layers × 2 tensors of 2 MiB, \
            layer l released at l × one layer's push time: how long after the last release the cache is complete, \
            beside the same releases pushed directly by the bench thread without a task, and one push of the same \
            bytes after the last layer), swap_blocks (device ↔ host, both directions), copy_cache \
            (per size, local), allocate (allocateCache+deallocateCache of 4 tensors of 4 KiB, 256 KiB and 1 MiB vs \
            glibc malloc+free of the same tensors, in alternating slices).

            Progress goes to stderr. Exits 1 if any checked transfer (the first and last call of every row) \
            moved wrong bytes, an operation failed, or an audit was not clean.
            """)

    static let allOperations = [
        "pull_cache", "pull_small", "pull_caches", "copy_engine", "pull_blocks", "push_cache", "transfer_cache_async",
        "swap_blocks", "copy_cache", "allocate",
    ]
    static let defaultSizes = "16KiB,64KiB,256KiB,1MiB,4MiB,16MiB,64MiB"

    @Flag(help: "Print one JSON array of rows instead of the table.")
    var json = false

    @Option(
        help: "Comma-separated sizes for the per-size rows, each \(ByteSize.grammar); multiples of 8 up to 256 MiB.")
    var sizes = BenchCommand.defaultSizes

    @Option(help: "Seconds each measurement runs (the operation, and each ceiling the first time it is needed).")
    var duration = 0.5

    @Option(
        help:
            "Comma-separated operations (default: all of \(BenchCommand.allOperations.joined(separator: ",")); with --connect: pull_cache,pull_caches, and pull_blocks, push_cache on request)."
    )
    var operations: String?

    @Option(
        help: """
            Pull from a `datadist bench-serve --host` started elsewhere, at HOST:PORT ([v6]:PORT; a numeric \
            address), instead of starting a prompt process: the pull_cache bandwidth rows of --sizes, and pull_caches \
            (32 of its prefix keys per call) up to 16 MiB; with --operations also pull_blocks (a bench-serve \
            --blocks) and push_cache (a bench-serve --remote-accessible). Rows name the transport that moved them.
            """)
    var connect: String?

    @Option(help: "With --connect: the cluster id of that bench-serve (its --cluster-id).")
    var promptClusterID: UInt64 = 1

    /// Operations `--connect` can run: those whose keys or caches a standalone bench-serve holds, which no row
    /// consumes.
    static let connectOperations: Set<String> = ["pull_cache", "pull_caches", "pull_blocks", "push_cache"]
    /// What `--connect` runs without `--operations` (what every standalone bench-serve can answer).
    static let connectDefaultOperations = ["pull_cache", "pull_caches"]
    /// What `--connect --remote-accessible` can run (remote cache access pulls by cache id, not by key).
    static let remoteConnectOperations: Set<String> = ["pull_blocks", "push_cache"]

    @Flag(
        help:
            "With --connect: remote cache access on this side, as on a bench-serve --remote-accessible (both sides must match), for push_cache (the default then) and pull_blocks."
    )
    var remoteAccessible = false

    @Option(
        help:
            "The transport of the bench's links: auto, shm or ucx (sets DATADIST_TRANSPORT for this process and its prompt process)."
    )
    var transport: String?

    /// A test hook: the prompt flips a byte of every source it fills, so verification must fail.
    @Flag(help: .hidden)
    var corruptSource = false

    @OptionGroup var global: GlobalOptions

    func validate() throws {
        _ = try parsedSizes()
        let operations = try parsedOperations()
        if let endpoint = try parsedConnect() {
            guard operations.isSubset(of: Self.connectOperations) else {
                throw ValidationError(
                    "--operations \(operations.sorted().joined(separator: ",")) with --connect \(endpoint): only "
                        + "\(Self.connectOperations.sorted().joined(separator: ", ")) runs against a bench-serve elsewhere"
                )
            }
            guard promptClusterID != 2 else {
                throw ValidationError("--prompt-cluster-id 2 is the decoder's own cluster id; give the bench-serve's")
            }
            if remoteAccessible {
                guard operations.isSubset(of: Self.remoteConnectOperations) else {
                    throw ValidationError(
                        "--operations \(operations.sorted().joined(separator: ",")) with --remote-accessible: pulls by "
                            + "key need a bench-serve without it; only \(Self.remoteConnectOperations.sorted().joined(separator: ", ")) runs"
                    )
                }
            } else if operations.contains("push_cache") {
                throw ValidationError(
                    "--operations push_cache with --connect \(endpoint) needs --remote-accessible (and a bench-serve --remote-accessible)"
                )
            }
        } else if remoteAccessible {
            throw ValidationError("--remote-accessible needs --connect (bench's own push rows enable it themselves)")
        }
        if let transport, TransportPreference(optionValue: transport) == nil {
            throw ValidationError("--transport \(transport) must be auto, shm or ucx")
        }
        guard duration > 0, duration <= 60 else {
            throw ValidationError("--duration \(duration) must be in (0, 60] seconds")
        }
    }

    func parsedSizes() throws -> [Int] { try Self.parseSizes(sizes, option: "--sizes") }

    /// The distinct sizes of a comma-separated list, each a multiple of 8 bytes up to 256 MiB.
    static func parseSizes(_ sizes: String, option: String) throws -> [Int] {
        var result: [Int] = []
        for part in sizes.split(separator: ",", omittingEmptySubsequences: false) {
            let text = part.trimmingCharacters(in: .whitespaces)
            guard let bytes = ByteSize(text)?.bytes, bytes > 0, bytes % 8 == 0, bytes <= 256 << 20 else {
                throw ValidationError(
                    "\(option) \(sizes): '\(text)' is not a size (a multiple of 8 bytes up to 256MiB, e.g. 16KiB)")
            }
            if !result.contains(bytes) { result.append(bytes) }
        }
        return result
    }

    /// `--connect` as an endpoint with a numeric address and a port other than 0, or nil when not given.
    func parsedConnect() throws -> IPEndpoint? {
        guard let connect else { return nil }
        guard let endpoint = IPEndpoint(connect) else {
            throw ValidationError("--connect \(connect) is not HOST:PORT (or [IPv6]:PORT)")
        }
        guard BenchServeCommand.isNumericAddress(endpoint.host) else {
            throw ValidationError("--connect \(connect): \(endpoint.host) is not a numeric IPv4 or IPv6 address")
        }
        guard endpoint.port != 0 else {
            throw ValidationError("--connect \(connect): port 0 names no listener; give the port bench-serve printed")
        }
        return endpoint
    }

    func parsedOperations() throws -> Set<String> {
        let operations =
            self.operations
            ?? (connect == nil
            ? Self.allOperations : remoteAccessible ? ["push_cache"] : Self.connectDefaultOperations).joined(
                separator: ",")
        var result: Set<String> = []
        for part in operations.split(separator: ",", omittingEmptySubsequences: false) {
            let name = part.trimmingCharacters(in: .whitespaces)
            guard Self.allOperations.contains(name) else {
                throw ValidationError(
                    "--operations \(operations): '\(name)' is not an operation (one of \(Self.allOperations.joined(separator: ", ")))"
                )
            }
            result.insert(name)
        }
        return result
    }

    func run() throws {
        global.bootstrapLogging()
        signal(SIGPIPE, SIG_IGN)
        // The prompt process inherits it; this process's decoders read it at initialize.
        if let transport { setenv(TransportPreference.environmentVariable, transport, 1) }
        let run = BenchRun(
            sizes: try parsedSizes(), operations: try parsedOperations(), duration: duration, verbose: global.verbose,
            corruptSource: corruptSource, connect: try parsedConnect().map { ($0, promptClusterID) },
            remoteAccessible: remoteAccessible)
        let outcome = run.execute()
        if json {
            print(Output.jsonString(outcome.rows, pretty: true))
        } else {
            print(BenchTable.render(outcome.rows, header: outcome.header), terminator: "")
            for note in outcome.notes { print(note) }
        }
        for problem in outcome.problems { printToStandardError("datadist bench: FAILED: \(problem)") }
        if !outcome.problems.isEmpty { throw ExitCode.failure }
    }
}
