import Foundation
import Testing

/// `datadist serve`, `pull` and `demo`: KV caches moved between separate processes over loopback.
@Suite("datadist serve / pull / demo", .serialized)
struct TransferCommandTests {
    static let smallShape = ["--layers", "3", "--tokens", "32", "--hidden", "64"]
    /// Bytes of one request of `smallShape`: 6 tensors of 32 × 64 float16.
    static let smallRequestBytes = 6 * 32 * 64 * 2

    /// Starts `serve --json` and returns it with its port, read from the ready line.
    static func startServe(_ arguments: [String], environment: [String: String] = [:]) throws -> (SpawnedCLI, Int) {
        let serve = try SpawnedCLI(["serve", "--json"] + arguments, environment: environment)
        let ready = try serve.nextJSON()
        #expect(ready["event"] as? String == "ready")
        #expect(ready["pid"] as? Int == Int(serve.pid))
        let port = try #require(ready["port"] as? Int, "ready line without a port: \(ready)")
        return (serve, port)
    }

    /// Runs `pull --json` to completion and returns its exit status and report.
    static func runPull(_ arguments: [String], environment: [String: String] = [:]) throws -> (Int32, [String: Any]) {
        let pull = try SpawnedCLI(["pull", "--json"] + arguments, environment: environment)
        let status = try pull.wait(timeout: .seconds(20))
        let report = try pull.nextJSON(timeout: .seconds(1))
        return (status, report)
    }

    static func int(_ object: [String: Any]?, _ key: String) -> Int? { object?[key] as? Int }

    @Test("demo --json: every byte verified, both audits clean, exit 0")
    func demoJSON() throws {
        let output = try CLI.run(["demo", "--json"], timeout: .seconds(60))
        #expect(output.status == 0, "stderr: \(output.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        #expect(report["verified"] as? Bool == true)
        #expect(report["auditsClean"] as? Bool == true)
        #expect(report["ok"] as? Bool == true, "problems: \(report["problems"] ?? "none")")
        #expect(report["requests"] as? Int == 8)
        #expect((report["pull"] as? [String: Any])?["transport"] as? String == "shm", "one host: the memfd mapping")
        let perRequest = 8 * 256 * 1024 * 2
        #expect(report["bytesPerRequest"] as? Int == perRequest)
        #expect(report["bytes"] as? Int == 7 * perRequest, "7 requests pulled, the 8th key was removed")
        #expect((report["gbps"] as? Double).map { $0 > 0 } == true)
        #expect(report["removedKeyRefused"] as? Bool == true)
        #expect(report["consumedKeysRefused"] as? Int == 7)
        #expect(report["wholePulls"] as? Int == 4)
        #expect(report["layerWisePulls"] as? Int == 3)
        #expect(report["promptKeysLeft"] as? Int == 0)
        let pull = try #require(report["pull"] as? [String: Any])
        #expect(pull["layerCalls"] as? Int == 12, "3 requests × 4 layers")
        #expect(pull["bytesVerified"] as? Int == 7 * perRequest)
        let pids = [report["servePID"] as? Int, report["pullPID"] as? Int]
        #expect(pids[0] != nil && pids[1] != nil && pids[0] != pids[1], "two processes: \(pids)")
    }

    @Test("demo prints a human summary with the checks and the bandwidth")
    func demoText() throws {
        let output = try CLI.run(["demo", "--requests", "3"] + Self.smallShape, timeout: .seconds(60))
        #expect(output.status == 0, "stdout: \(output.stdout) stderr: \(output.stderr)")
        for text in [
            "2 of 2 requests pulled: 1 whole, 1 layer by layer",
            "request 2 after removeCacheKey: LLM_KV_CACHE_NOT_EXIST",
            "every byte verified", "GB/s", "RESULT: OK",
        ] {
            #expect(output.stdout.contains(text), "missing \"\(text)\" in:\n\(output.stdout)")
        }
        #expect(!output.stdout.contains("✗"))
    }

    @Test("serve + two pull processes: layer-wise and whole pulls, removed keys, consumption, audits")
    func serveAndPulls() throws {
        let (serve, port) = try Self.startServe(["--requests", "6", "--remove", "2,4"] + Self.smallShape)
        let common = ["--port", "\(port)", "--requests", "3"] + Self.smallShape

        let (firstStatus, first) = try Self.runPull(common + ["--removed", "2", "--layer-wise", "all"])
        #expect(firstStatus == 0, "\(first)")
        #expect(first["ok"] as? Bool == true && first["verified"] as? Bool == true)
        #expect(first["layerWisePulls"] as? Int == 2 && first["wholePulls"] as? Int == 0)
        #expect(first["layerCalls"] as? Int == 6)
        #expect(first["bytes"] as? Int == 2 * Self.smallRequestBytes)
        #expect(first["bytesVerified"] as? Int == 2 * Self.smallRequestBytes)
        let refusals = try #require(first["expectedRefusals"] as? [[String: Any]])
        let described = refusals.map { "\($0["request"] ?? "?") \($0["reason"] ?? "?")" }
        #expect(described == ["0 already consumed", "1 already consumed", "2 removeCacheKey"])
        #expect(
            refusals.allSatisfy { ($0["status"] as? [String: Any])?["name"] as? String == "LLM_KV_CACHE_NOT_EXIST" })

        let audit = { () throws -> [String: Any] in
            try serve.send("audit")
            let line = try serve.nextJSON()
            #expect(line["event"] as? String == "audit")
            return try #require(line["audit"] as? [String: Any])
        }
        #expect(Self.int(try audit(), "boundKeys") == 2, "keys 3 and 5: 6 - 2 removed - 2 consumed")

        // A second decoder (another cluster id) takes the rest, whole.
        let (secondStatus, second) = try Self.runPull(
            common + ["--first-request", "3", "--removed", "4", "--layer-wise", "none", "--cluster-id", "3"])
        #expect(secondStatus == 0, "\(second)")
        #expect(
            second["ok"] as? Bool == true && second["wholePulls"] as? Int == 2 && second["layerWisePulls"] as? Int == 0)
        let now = try audit()
        #expect(Self.int(now, "boundKeys") == 0 && Self.int(now, "pinnedByPeers") == 0 && Self.int(now, "orphans") == 0)
        #expect(Self.int(now, "liveCaches") == 6, "the caches stay allocated until serve exits")

        serve.closeStandardInput()
        let exit = try serve.nextJSON()
        #expect(try serve.wait() == 0)
        #expect(exit["event"] as? String == "exit" && exit["reason"] as? String == "stdin closed")
        #expect(exit["keysLeft"] as? Int == 0)
        #expect(exit["clean"] as? Bool == true)
        #expect((exit["audit"] as? [String: Any])?["clean"] as? Bool == true)
    }

    @Test("pull fails, naming the spot, when a byte differs or a key that should be gone is pulled")
    func pullDetectsWrongData() throws {
        let (serve, port) = try Self.startServe(["--requests", "2", "--corrupt-byte", "1:5:777"] + Self.smallShape)
        let common = ["--port", "\(port)", "--requests", "1"] + Self.smallShape
        let (firstStatus, first) = try Self.runPull(common + ["--removed", "0"])
        #expect(firstStatus != 0)
        let refusalFailure = try #require(first["failure"] as? [String: Any])
        #expect((refusalFailure["phase"] as? String)?.contains("expect LLM_KV_CACHE_NOT_EXIST") == true)
        #expect(first["ok"] as? Bool == false)

        let (secondStatus, second) = try Self.runPull(
            common + ["--first-request", "1", "--layer-wise", "all", "--cluster-id", "3"])
        #expect(secondStatus != 0)
        #expect(second["verified"] as? Bool == false)
        let failure = try #require(second["failure"] as? [String: Any])
        #expect(failure["phase"] as? String == "verify" && failure["request"] as? Int == 1)
        #expect(
            (failure["message"] as? String)?.contains("tensor 5 differs from the pattern at byte 777") == true,
            "\(failure)")
        #expect(second["auditClean"] as? Bool == true, "a failed verification leaves the decoder clean")

        serve.signal(SIGTERM)
        let exit = try serve.nextJSON()
        #expect(exit["reason"] as? String == "SIGTERM")
        #expect(exit["clean"] as? Bool == true)
        #expect(try serve.wait() == 0)
    }

    @Test("serve without --json prints READY <port>; bad options are refused")
    func readyLineAndValidation() throws {
        let serve = try SpawnedCLI(["serve", "--requests", "1"] + Self.smallShape)
        let ready = try serve.nextLine()
        let parts = ready.split(separator: " ")
        #expect(parts.count == 2 && parts[0] == "READY" && UInt16(parts[1]).map { $0 > 0 } == true, "\(ready)")
        serve.closeStandardInput()
        #expect(try serve.wait() == 0)

        for (arguments, named) in [
            (["serve", "--remove", "9", "--requests", "2"], "--remove 9"),
            (["serve", "--hidden", "6"], "--hidden 6"),
            (["serve", "--registered"], "--prefix-keys"),
            (["serve", "--registered", "--prefix-keys", "--requests", "40"], "240"),
            (["pull", "--port", "1", "--repeat", "2"], "--prefix-keys"),
            (["pull", "--port", "1", "--cluster-id", "1"], "--cluster-id 1"),
            (["demo", "--requests", "1"], "--requests 1"),
        ] {
            let output = try CLI.run(arguments, timeout: .seconds(20))
            #expect(output.status != 0 && output.stderr.contains(named), "\(arguments): \(output.stderr)")
        }
    }

    @Test("DATADIST_LINK_SECRET: the same secret links and pulls, none or another is refused, a short one rejected")
    func linkSecretVariable() throws {
        let secret = ["DATADIST_LINK_SECRET": "sixteen bytes or more"]
        let serve = try SpawnedCLI(["serve", "--json", "--requests", "3"] + Self.smallShape, environment: secret)
        let port = try #require(try serve.nextJSON()["port"] as? Int)
        for (request, environment) in [(0, [:]), (1, ["DATADIST_LINK_SECRET": "another secret, long enough"])] {
            let pull = try SpawnedCLI(
                ["pull", "--json", "--port", "\(port)", "--requests", "1", "--first-request", "\(request)"]
                    + Self.smallShape, environment: environment)
            #expect(try pull.wait() != 0)
            let failure = try #require(try pull.nextJSON(timeout: .seconds(1))["failure"] as? [String: Any])
            #expect((failure["status"] as? [String: Any])?["name"] as? String == "LLM_LINK_FAILED", "\(failure)")
        }
        let pull = try SpawnedCLI(
            ["pull", "--json", "--port", "\(port)", "--requests", "3"] + Self.smallShape, environment: secret)
        #expect(try pull.wait() == 0, "\(pull.standardError)")
        #expect(try pull.nextJSON(timeout: .seconds(1))["verified"] as? Bool == true)
        serve.closeStandardInput()
        #expect(try serve.wait() == 0)

        let short = try CLI.run(["serve", "--requests", "1"], environment: ["DATADIST_LINK_SECRET": "too short"])
        #expect(short.status != 0 && short.stderr.contains("DATADIST_LINK_SECRET"), "\(short.stderr)")
        #expect(!short.stderr.contains("too short"), "the secret is shown: \(short.stderr)")
    }

    @Test(
        "serve --registered: caller memory pulled by another process over UCX (automatic selection), every byte; refused over shm only",
        arguments: [[:], ["UCX_TLS": "tcp"]])
    func registeredMemoryAcrossProcesses(environment: [String: String]) throws {
        let (serve, port) = try Self.startServe(
            ["--registered", "--prefix-keys", "--requests", "3"] + Self.smallShape, environment: environment)
        let common = ["--port", "\(port)", "--prefix-keys", "--requests", "3"] + Self.smallShape
        let (status, report) = try Self.runPull(common + ["--repeat", "2"], environment: environment)
        #expect(status == 0, "\(report)")
        #expect(report["ok"] as? Bool == true && report["verified"] as? Bool == true, "\(report)")
        #expect(report["transport"] as? String == "ucx", "\(report)")
        #expect(report["bytesVerified"] as? Int == 2 * 3 * Self.smallRequestBytes)

        let (refusedStatus, refused) = try Self.runPull(
            common + ["--cluster-id", "3"], environment: environment.merging(["DATADIST_TRANSPORT": "shm"]) { $1 })
        #expect(refusedStatus != 0)
        let failure = try #require(refused["failure"] as? [String: Any], "\(refused)")
        #expect((failure["status"] as? [String: Any])?["name"] as? String == "LLM_FEATURE_NOT_ENABLED", "\(failure)")

        serve.closeStandardInput()
        let exit = try serve.nextJSON()
        #expect(try serve.wait() == 0)
        #expect(exit["clean"] as? Bool == true, "\(exit)")
        #expect((exit["audit"] as? [String: Any])?["liveCaches"] as? Int == 0, "every registration was dropped")
    }

    @Test("pull to a port nobody serves: LLM_LINK_FAILED, exit non-zero")
    func pullWithoutServer() throws {
        let (serve, port) = try Self.startServe(["--requests", "1"] + Self.smallShape)
        serve.closeStandardInput()
        #expect(try serve.wait() == 0)
        let (status, report) = try Self.runPull(["--port", "\(port)", "--requests", "1"] + Self.smallShape)
        #expect(status != 0)
        let failure = try #require(report["failure"] as? [String: Any])
        #expect(failure["phase"] as? String == "link")
        #expect((failure["status"] as? [String: Any])?["name"] as? String == "LLM_LINK_FAILED")
    }
}
