import DataDist
import Foundation

/// A failure that stops a row (or the run), with what went wrong.
struct BenchFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A prompt cluster the bench drives with `bench-serve`'s commands (see `BenchServeCommand`).
protocol BenchPromptSide: AnyObject {
    var clusterID: UInt64 { get }
    /// The port it listens on, on 127.0.0.1.
    var port: UInt16 { get }
    /// Runs `command` and returns the reply; throws if it reports an error.
    @discardableResult
    func send(_ command: String, timeout: Duration) throws -> BenchServeReply
}

extension BenchPromptSide {
    @discardableResult
    func send(_ command: String) throws -> BenchServeReply { try send(command, timeout: .seconds(120)) }
}

/// The `bench-serve` child: a prompt cluster driven line by line over its stdin.
final class BenchPrompt: BenchPromptSide {
    let clusterID: UInt64
    let port: UInt16
    private let child: ChildProcess

    init(clusterID: UInt64, poolBytes: Int, remoteAccessible: Bool, verbose: Bool, corrupt: Bool = false) throws {
        self.clusterID = clusterID
        var arguments = ["bench-serve", "--cluster-id", "\(clusterID)", "--pool-bytes", "\(poolBytes)"]
        if remoteAccessible { arguments.append("--remote-accessible") }
        if verbose { arguments.append("--verbose") }
        if corrupt { arguments.append("--corrupt") }
        child = try ChildProcess(arguments: arguments, stdinPipe: true)
        guard case .line(let line) = child.lines.next(timeout: .seconds(30)), let ready = Self.decode(line),
            ready.event == "ready", let port = ready.port
        else {
            child.kill()
            throw BenchFailure("`datadist bench-serve` did not print its ready line")
        }
        self.port = port
    }

    deinit { child.kill() }

    /// Sends `command` and returns the reply; throws if the server reports an error or says nothing in time.
    @discardableResult
    func send(_ command: String, timeout: Duration) throws -> BenchServeReply {
        try child.send(command)
        guard case .line(let line) = child.lines.next(timeout: timeout), let reply = Self.decode(line) else {
            throw BenchFailure("bench-serve gave no answer to '\(command)'")
        }
        if reply.event == "error" { throw BenchFailure("bench-serve '\(command)': \(reply.error ?? "error")") }
        return reply
    }

    /// Closes stdin and waits for the exit line; a problem (unclean audit, bad exit), or nil.
    func finish() -> String? {
        child.closeStandardInput()
        var exitLine: BenchServeReply?
        while case .line(let line) = child.lines.next(timeout: .seconds(30)) {
            if let reply = Self.decode(line), reply.event == "exit" { exitLine = reply }
        }
        let status = child.wait(timeout: .seconds(10))
        if status == nil { child.kill() }
        guard status == 0, let exitLine, exitLine.audit?.clean == true else {
            return "bench-serve (cluster \(clusterID)) exited \(status.map { "\($0)" } ?? "late, killed"): "
                + "audit \(exitLine?.audit?.summary ?? "missing")\(exitLine?.error.map { ", \($0)" } ?? "")"
        }
        return nil
    }

    private static func decode(_ line: String) -> BenchServeReply? {
        try? JSONDecoder().decode(BenchServeReply.self, from: Data(line.utf8))
    }
}

/// A prompt instance in this process (two engines in one process, as a `mix` deployment or a test harness has),
/// driven with the same commands as `bench-serve`.
final class BenchLocalPrompt: BenchPromptSide {
    let clusterID: UInt64
    let port: UInt16
    private let engine: LLMDataDist
    private var server: BenchServer

    init(clusterID: UInt64, poolBytes: Int) throws {
        self.clusterID = clusterID
        engine = LLMDataDist(role: .prompt, clusterID: clusterID)
        var config = LLMConfig()
        config.memoryPool = MemoryPoolConfig(size: poolBytes)
        config.listenAddress = IPEndpoint(host: "127.0.0.1", port: 0)
        config.syncKVTimeout = .seconds(30)
        do {
            try LinkSecretVariable.apply(to: &config)
            try engine.initialize(config)
            server = BenchServer(manager: try engine.cacheManager, clusterID: clusterID, corrupt: false)
        } catch {
            engine.finalize()
            throw BenchFailure("in-process prompt \(clusterID): \(error)")
        }
        guard let port = engine.listenEndpoint?.port else {
            engine.finalize()
            throw BenchFailure("in-process prompt \(clusterID) has no listen endpoint")
        }
        self.port = port
    }

    @discardableResult
    func send(_ command: String, timeout: Duration) throws -> BenchServeReply {
        let words = command.split(separator: " ").map(String.init)
        let reply = server.handle(words)
        if reply.event == "error" { throw BenchFailure("in-process prompt '\(command)': \(reply.error ?? "error")") }
        return reply
    }

    /// Frees what is left, checks the audit, finalizes; a problem, or nil.
    func finish() -> String? {
        var failure: String?
        for name in Array(server.caches.keys) {
            if let error = server.free(name) { failure = failure ?? error }
        }
        let audit = server.manager.audit()
        engine.finalize()
        if let failure { return "in-process prompt: \(failure)" }
        if !audit.isClean { return "in-process prompt audit not clean: \(AuditReport(audit).summary)" }
        return nil
    }
}

/// A decoder instance in this process, linked to a `BenchPrompt`.
final class BenchDecoder {
    let engine: LLMDataDist
    let manager: CacheManager
    let prompt: LLMClusterInfo
    let copyThreads: Int?

    convenience init(
        clusterID: UInt64, to server: any BenchPromptSide, poolBytes: Int, copyThreads: Int?, remoteAccessible: Bool
    ) throws {
        try self.init(
            clusterID: clusterID, promptCluster: server.clusterID, at: IPEndpoint(host: "127.0.0.1", port: server.port),
            poolBytes: poolBytes, copyThreads: copyThreads, remoteAccessible: remoteAccessible)
    }

    /// A decoder linked to the prompt cluster `promptCluster` listening at `endpoint`.
    init(
        clusterID: UInt64, promptCluster: UInt64, at endpoint: IPEndpoint, poolBytes: Int, copyThreads: Int?,
        remoteAccessible: Bool
    ) throws {
        engine = LLMDataDist(role: .decoder, clusterID: clusterID)
        self.copyThreads = copyThreads
        var config = LLMConfig()
        config.memoryPool = MemoryPoolConfig(size: poolBytes)
        config.copyThreads = copyThreads
        config.enableRemoteCacheAccessible = remoteAccessible
        config.syncKVTimeout = .seconds(30)
        do {
            try LinkSecretVariable.apply(to: &config)
            try engine.initialize(config)
            manager = try engine.cacheManager
        } catch {
            engine.finalize()
            throw BenchFailure("decoder \(clusterID): \(error)")
        }
        prompt = LLMClusterInfo(remoteClusterID: promptCluster, remoteRoleType: .prompt, remoteIPInfos: [endpoint])
        let (status, _) = engine.linkClusters([prompt], timeout: .seconds(10))
        guard status == .success else {
            engine.finalize()
            throw BenchFailure(
                "decoder \(clusterID): linkClusters to cluster \(promptCluster) at \(endpoint) failed: \(status)")
        }
    }

    /// Unlinks, checks the audit, finalizes; a problem, or nil.
    func finish() -> String? {
        let (status, _) = engine.unlinkClusters([prompt], timeout: .seconds(5))
        let audit = manager.audit()
        engine.finalize()
        if status != .success { return "decoder: unlinkClusters returned \(status)" }
        if !audit.isClean { return "decoder audit not clean: \(AuditReport(audit).summary)" }
        return nil
    }
}
