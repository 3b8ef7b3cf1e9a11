import Foundation
import Testing

/// `datadist bench-pull`: the Swift decoder the Python bench drives over stdin, against `bench-serve`.
@Suite("bench-pull", .serialized)
struct BenchPullCommandTests {
    /// A `bench-serve` (JSON mode) and a `bench-pull` linked to it.
    private static func pair(corrupt: Bool = false) throws -> (serve: SpawnedCLI, pull: SpawnedCLI) {
        let serve = try SpawnedCLI(["bench-serve", "--pool-bytes", "\(64 << 20)"] + (corrupt ? ["--corrupt"] : []))
        let port = try #require(try serve.nextJSON()["port"] as? Int)
        let pull = try SpawnedCLI(["bench-pull", "--port", "\(port)", "--pool-bytes", "\(64 << 20)"])
        #expect(try pull.nextJSON()["event"] as? String == "ready")
        return (serve, pull)
    }

    private static func ask(_ child: SpawnedCLI, _ line: String) throws -> [String: Any] {
        try child.send(line)
        return try child.nextJSON()
    }

    @Test("bursts and request-key pulls through the Swift API, every checked byte right, both audits clean")
    func burstsAndRequestPulls() throws {
        let (serve, pull) = try Self.pair()
        #expect(try Self.ask(serve, "cache ring 65536 16 prefix 100 pattern")["event"] as? String != "error")
        #expect(try Self.ask(pull, "ring 65536 16 100")["event"] as? String == "ok")
        let burst = try Self.ask(pull, "burst 5000000")
        #expect(burst["event"] as? String == "burst", "\(burst)")
        #expect((burst["count"] as? Int ?? 0) > 0 && (burst["nanoseconds"] as? Int ?? 0) >= 5_000_000, "\(burst)")
        #expect(try Self.ask(serve, "cache latency 16384 8 request 500 pattern")["event"] as? String != "error")
        #expect(try Self.ask(pull, "requests 16384 4")["event"] as? String == "ok")
        let pulled = try Self.ask(pull, "pull 500 8 0")
        #expect((pulled["samples"] as? [Int])?.count == 8, "\(pulled)")
        #expect(try Self.ask(pull, "check")["event"] as? String == "ok")
        // Request keys are consumed: the same keys again fail, and say so.
        let again = try Self.ask(pull, "pull 500 1 0")
        #expect(again["event"] as? String == "error" && (again["error"] as? String ?? "").contains("pull 500 1 0"))
        #expect(try Self.ask(pull, "free")["event"] as? String == "ok")
        pull.closeStandardInput()
        let exit = try pull.nextJSON()
        #expect(exit["event"] as? String == "exit" && (exit["audit"] as? [String: Any])?["clean"] as? Bool == true)
        // The failed pull above is reported in the exit status.
        #expect(try pull.wait() != 0)
        serve.closeStandardInput()
        #expect(try serve.wait() == 0, "\(serve.standardError)")
    }

    @Test("a source whose bytes differ from the pattern is reported by ring's first check")
    func corruptedSourceIsReported() throws {
        let (serve, pull) = try Self.pair(corrupt: true)
        _ = try Self.ask(serve, "cache ring 65536 4 prefix 7 pattern")
        let reply = try Self.ask(pull, "ring 65536 4 7")
        #expect(reply["event"] as? String == "error" && (reply["error"] as? String ?? "").contains("first pull"))
        pull.closeStandardInput()
        #expect(try pull.wait() != 0)
        serve.closeStandardInput()
        _ = try serve.wait()
    }

    /// Bad commands and what each reply must name.
    static let badCommands: [(line: String, named: String)] = [
        ("teleport", "unknown command: teleport"), ("burst 1000", "no ring"), ("pull 1 1 0", "no request ring"),
        ("ring 0 4 1", "slot bytes 0"), ("ring 65536 0 1", "slots 0"), ("ring 12 4 1", "slot bytes 12"),
        ("requests 16384 x", "x is not a number"), ("burst -5", "no ring"), ("ring 65536", "unknown command"),
    ]

    @Test("bad commands are answered with an error naming them; nothing changes and the audit stays clean")
    func refusesBadCommands() throws {
        // One pair for all of them: every child process a test waits on holds one of the test run's few threads.
        let (serve, pull) = try Self.pair()
        for (line, named) in Self.badCommands {
            let reply = try Self.ask(pull, line)
            #expect(
                reply["event"] as? String == "error" && (reply["error"] as? String ?? "").contains(named),
                "\(line): \(reply)")
        }
        pull.closeStandardInput()
        let exit = try pull.nextJSON()
        #expect((exit["audit"] as? [String: Any])?["clean"] as? Bool == true, "\(exit)")
        #expect(try pull.wait() != 0)
        serve.closeStandardInput()
        #expect(try serve.wait() == 0)
    }

    @Test("a bench-serve that is not there: bench-pull exits 1 saying the link failed")
    func noPrompt() throws {
        let output = try CLI.run(["bench-pull", "--port", "1"], timeout: .seconds(30))
        #expect(output.status != 0 && output.stdout.contains("linkClusters"), "\(output.stdout) \(output.stderr)")
    }
}
