import Foundation
import Testing

/// Peers dying or stalling in the middle of a stream of pulls, as separate processes killed with signals.
@Suite("datadist serve / pull: killed and stalled peers", .serialized, .timeLimit(.minutes(3)))
struct KillTests {
    static let shape = ["--layers", "2", "--tokens", "64", "--hidden", "256"]
    static let syncTimeoutMilliseconds = 500
    static let syncTimeout = Duration.milliseconds(syncTimeoutMilliseconds)
    /// Each test runs over the memfd mapping and over UCX on TCP (as between hosts), both processes alike.
    static let transports: [[String: String]] = [
        ["DATADIST_TRANSPORT": "shm"], ["DATADIST_TRANSPORT": "ucx", "UCX_TLS": "tcp"],
    ]

    /// A decoder pulling the prompt's prefix keys again and again, announcing when it is linked.
    static func startStream(port: Int, extra: [String] = [], environment: [String: String]) throws -> SpawnedCLI {
        let pull = try SpawnedCLI(
            [
                "pull", "--json", "--announce", "--port", "\(port)", "--prefix-keys", "--requests", "4",
                "--repeat", "100000000", "--sync-timeout-ms", "\(syncTimeoutMilliseconds)",
            ] + shape + extra, environment: environment)
        let linked = try pull.nextJSON()
        #expect(linked["event"] as? String == "linked")
        return pull
    }

    /// Waits for the stream to fail after `stopPrompt`: the decoder must report the failure within syncKVTimeout
    /// + 1 s of the stop, with one of `statuses`, and exit non-zero soon after (never hang).
    static func expectStreamFails(
        _ pull: SpawnedCLI, after stopPrompt: () -> Void, with statuses: Set<String>
    ) throws -> [String: Any] {
        Thread.sleep(forTimeInterval: 0.3)  // let the stream run
        stopPrompt()
        let stopped = ContinuousClock.now
        let failed = try pull.nextJSON(timeout: .seconds(10))
        let elapsed = ContinuousClock.now - stopped
        #expect(failed["event"] as? String == "failed", "\(failed)")
        #expect(elapsed <= syncTimeout + .seconds(1), "the decoder took \(elapsed) to report the failure")
        let status = try pull.wait(timeout: .seconds(10))
        #expect(status != 0)
        let report = try pull.nextJSON(timeout: .seconds(1))
        #expect(
            (report["bytes"] as? Int).map { $0 > 0 } == true, "no pull finished before the prompt stopped: \(report)")
        #expect(report["ok"] as? Bool == false)
        let failure = try #require(report["failure"] as? [String: Any])
        let name = (failure["status"] as? [String: Any])?["name"] as? String
        #expect(name.map(statuses.contains) == true, "failure: \(failure)")
        #expect((failed["failure"] as? [String: Any])?["phase"] as? String == failure["phase"] as? String)
        #expect((failure["callMilliseconds"] as? Double).map { $0 <= 1500 } == true, "failure: \(failure)")
        #expect(report["auditClean"] as? Bool == true, "the decoder's own audit: \(report["audit"] ?? "none")")
        return report
    }

    @Test(
        "the prompt is SIGKILLed during a stream of pulls: the decoder fails with LLM_LINK_FAILED or LLM_TIMEOUT within syncKVTimeout + 1 s",
        arguments: [0, 20], transports)
    func promptKilled(paceMilliseconds: Int, transport: [String: String]) throws {
        let (serve, port) = try TransferCommandTests.startServe(
            ["--prefix-keys", "--requests", "4"] + Self.shape, environment: transport)
        let pull = try Self.startStream(
            port: port, extra: ["--pace-ms", "\(paceMilliseconds)"], environment: transport)
        _ = try Self.expectStreamFails(
            pull, after: { serve.signal(SIGKILL) }, with: ["LLM_LINK_FAILED", "LLM_TIMEOUT"])
        #expect(try serve.wait() == SIGKILL)
    }

    @Test(
        "the prompt stops answering (SIGSTOP): the decoder's pull times out with LLM_TIMEOUT within syncKVTimeout + 1 s",
        arguments: transports)
    func promptStalled(transport: [String: String]) throws {
        let (serve, port) = try TransferCommandTests.startServe(
            ["--prefix-keys", "--requests", "4"] + Self.shape, environment: transport)
        let pull = try Self.startStream(port: port, environment: transport)
        defer {
            serve.signal(SIGKILL)
            _ = try? serve.wait()
        }
        _ = try Self.expectStreamFails(pull, after: { serve.signal(SIGSTOP) }, with: ["LLM_TIMEOUT"])
    }

    /// Over UCX the prompt sends a pull's bytes itself (eager messages, which no side answers): a one-sided read
    /// would have the prompt answer the decoder's messages, and UCX 1.13 aborted the prompt answering a decoder
    /// that was just killed (seen within 2-4 kills over TCP).
    @Test(
        "the decoder is SIGKILLed mid-stream: the prompt serves other decoders and its audit is clean",
        arguments: transports)
    func decoderKilled(transport: [String: String]) throws {
        let bigger = ["--layers", "2", "--tokens", "256", "--hidden", "1024"]
        let (serve, port) = try TransferCommandTests.startServe(
            ["--prefix-keys", "--requests", "4"] + bigger, environment: transport)
        let stream = try SpawnedCLI(
            [
                "pull", "--json", "--announce", "--port", "\(port)", "--prefix-keys", "--requests", "4",
                "--repeat", "100000000",
            ] + bigger, environment: transport)
        #expect(try stream.nextJSON()["event"] as? String == "linked")
        Thread.sleep(forTimeInterval: 0.3)
        stream.signal(SIGKILL)
        #expect(try stream.wait() == SIGKILL)

        // Another decoder, then the killed decoder's cluster id again (a restarted decoder).
        for clusterID in [3, 2] {
            let (status, report) = try TransferCommandTests.runPull(
                [
                    "--port", "\(port)", "--prefix-keys", "--requests", "4", "--repeat", "3", "--cluster-id",
                    "\(clusterID)",
                ]
                    + bigger, environment: transport)
            #expect(status == 0, "cluster \(clusterID): \(report)")
            #expect(report["ok"] as? Bool == true && report["rounds"] as? Int == 3)
            #expect(report["bytes"] as? Int == 3 * 4 * 4 * 256 * 1024 * 2)
        }

        try serve.send("audit")
        let line = try serve.nextJSON()
        let audit = try #require(line["audit"] as? [String: Any])
        #expect(audit["pinnedByPeers"] as? Int == 0, "pins of the killed decoder are released: \(audit)")
        #expect(audit["orphans"] as? Int == 0)
        #expect(audit["boundKeys"] as? Int == 4, "prefix keys are never consumed")
        #expect(audit["liveCaches"] as? Int == 4)

        serve.closeStandardInput()
        let exit = try serve.nextJSON()
        #expect(exit["clean"] as? Bool == true, "\(exit)")
        #expect(try serve.wait() == 0)
    }

    /// UCX's own abort message in a child's stderr (the first line of it), or the end of the stderr.
    static func ucxAbort(_ standardError: String) -> String {
        let lines = standardError.split(separator: "\n")
        return lines.first { $0.contains("Fatal") || $0.contains("Assertion") }.map(String.init)
            ?? String(standardError.suffix(500))
    }

    /// The prompt's audit over its stdin, once the pins of killed decoders are gone (each link ends on the
    /// prompt's side when it sees the connection close).
    static func expectPromptClean(_ serve: SpawnedCLI, boundKeys: Int) throws {
        let deadline = ContinuousClock.now + .seconds(10)
        var audit: [String: Any] = [:]
        repeat {
            try serve.send("audit")
            audit = try #require(try serve.nextJSON()["audit"] as? [String: Any])
            if audit["pinnedByPeers"] as? Int == 0 { break }
            Thread.sleep(forTimeInterval: 0.1)
        } while ContinuousClock.now < deadline
        #expect(audit["pinnedByPeers"] as? Int == 0, "pins of the killed decoders are released: \(audit)")
        #expect(audit["orphans"] as? Int == 0, "\(audit)")
        #expect(audit["boundKeys"] as? Int == boundKeys, "\(audit)")
    }

    /// Over UCX on TCP with 512 KiB segments (a setting users make for speed), which before owner-delivered
    /// reads made the prompt's answers to reads long, and its abort likely (README, Transports).
    static let transportsWithLargeSegments =
        transports + [transports[1].merging(["UCX_TCP_TX_SEG_SIZE": "512k", "UCX_TCP_RX_SEG_SIZE": "512k"]) { $1 }]

    @Test(
        "decoders SIGKILLed again and again, three at a time, while linking and mid-pull: one prompt survives them all and serves a last verified pull",
        arguments: transportsWithLargeSegments)
    func repeatedDecoderKills(transport: [String: String]) throws {
        let bigger = ["--layers", "2", "--tokens", "256", "--hidden", "1024"]
        let (serve, port) = try TransferCommandTests.startServe(
            ["--prefix-keys", "--requests", "4"] + bigger, environment: transport)
        defer {
            serve.signal(SIGKILL)
            _ = try? serve.wait()
        }
        // Kills at spread-out moments: some before the link is up, most in the middle of the stream.
        for (round, delay) in [0.1, 0.4, 0.25, 0.5, 0.3, 0.6].enumerated() {
            let streams = try (0..<3).map { index in
                try SpawnedCLI(
                    [
                        "pull", "--json", "--port", "\(port)", "--prefix-keys", "--requests", "4", "--repeat",
                        "100000000", "--cluster-id", "\(10 + 3 * round + index)",
                    ] + bigger, environment: transport)
            }
            Thread.sleep(forTimeInterval: delay)
            for stream in streams { stream.signal(SIGKILL) }
            for stream in streams { #expect(try stream.wait() == SIGKILL) }
            Thread.sleep(forTimeInterval: 0.05)
            #expect(serve.isRunning, "the prompt died in round \(round): \(Self.ucxAbort(serve.standardError))")
            guard serve.isRunning else { return }
        }
        let (status, report) = try TransferCommandTests.runPull(
            ["--port", "\(port)", "--prefix-keys", "--requests", "4", "--repeat", "3"] + bigger, environment: transport)
        #expect(status == 0, "\(report)")
        #expect(report["verified"] as? Bool == true && report["rounds"] as? Int == 3, "\(report)")
        try Self.expectPromptClean(serve, boundKeys: 4)
        serve.closeStandardInput()
        #expect(try serve.nextJSON()["clean"] as? Bool == true)
        #expect(try serve.wait() == 0)
    }
}
