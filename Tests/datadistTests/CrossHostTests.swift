import Foundation
import Testing

@testable import datadist

/// Two hosts on one machine: `serve` in one network namespace, `pull` in another, joined by a veth pair. UCX moves
/// the bytes over TCP: two namespaces of one machine share /dev/shm and the PID namespace, so UCX's shared-memory
/// transports would otherwise treat them as one host.
@Suite(
    "two hosts: serve and pull in two network namespaces", .serialized, .timeLimit(.minutes(3)),
    .enabled(if: NamespacePair.unavailableReason == nil, "needs root and iproute2 (network namespaces)"))
final class CrossHostTests {
    static let shape = ["--layers", "2", "--tokens", "64", "--hidden", "256"]
    static let syncTimeoutMilliseconds = 500
    let hosts: NamespacePair

    init() throws {
        hosts = try NamespacePair.create(tag: "xh")
    }

    /// What both sides get besides the test's own settings: UCX on TCP over the veth.
    static func environment(_ transport: String = "auto") -> [String: String] {
        ["UCX_TLS": "tcp", "DATADIST_TRANSPORT": transport]
    }

    /// `serve --json` in the first namespace, listening on its veth address; returns it and its port.
    func startServe(_ arguments: [String], transport: String = "auto") throws -> (SpawnedCLI, Int) {
        let serve = try SpawnedCLI(
            ["serve", "--json", "--host", hosts.firstAddress] + arguments, environment: Self.environment(transport),
            namespace: hosts.first)
        let ready = try serve.nextJSON()
        #expect(ready["event"] as? String == "ready")
        return (serve, try #require(ready["port"] as? Int, "ready line without a port: \(ready)"))
    }

    /// `pull --json` in the second namespace against the first one's address.
    func startPull(port: Int, _ arguments: [String], transport: String = "auto") throws -> SpawnedCLI {
        try SpawnedCLI(
            ["pull", "--json", "--host", hosts.firstAddress, "--port", "\(port)"] + arguments,
            environment: Self.environment(transport), namespace: hosts.second)
    }

    /// A decoder pulling the prompt's prefix keys again and again across the veth, announcing when it is linked.
    func startStream(port: Int, paceMilliseconds: Int = 0) throws -> SpawnedCLI {
        let pull = try startPull(
            port: port,
            [
                "--announce", "--prefix-keys", "--requests", "4", "--repeat", "100000000", "--sync-timeout-ms",
                "\(Self.syncTimeoutMilliseconds)", "--pace-ms", "\(paceMilliseconds)",
            ] + Self.shape)
        let linked = try pull.nextJSON()
        #expect(linked["event"] as? String == "linked", "\(linked)")
        return pull
    }

    /// After `cut`, the stream's pull fails within syncKVTimeout + 1 s with LLM_LINK_FAILED or LLM_TIMEOUT and the
    /// decoder exits non-zero with its own audit clean.
    func expectStreamFails(_ pull: SpawnedCLI, after cut: () throws -> Void) throws {
        Thread.sleep(forTimeInterval: 0.3)
        try cut()
        let cutAt = ContinuousClock.now
        let failed = try pull.nextJSON(timeout: .seconds(10))
        let elapsed = ContinuousClock.now - cutAt
        #expect(failed["event"] as? String == "failed", "\(failed)")
        #expect(
            elapsed <= .milliseconds(Self.syncTimeoutMilliseconds) + .seconds(1),
            "the decoder took \(elapsed) to report the failure")
        #expect(try pull.wait(timeout: .seconds(10)) != 0)
        let report = try pull.nextJSON(timeout: .seconds(1))
        let failure = try #require(report["failure"] as? [String: Any], "\(report)")
        let name = (failure["status"] as? [String: Any])?["name"] as? String
        #expect(name == "LLM_LINK_FAILED" || name == "LLM_TIMEOUT", "failure: \(failure)")
        #expect((report["bytes"] as? Int).map { $0 > 0 } == true, "nothing was pulled before the cut: \(report)")
        #expect(report["auditClean"] as? Bool == true, "the decoder's own audit: \(report["audit"] ?? "none")")
    }

    /// The prompt's audit over its stdin: no pins left for a lost decoder, no orphans.
    func expectPromptClean(_ serve: SpawnedCLI, boundKeys: Int) throws {
        try serve.send("audit")
        let audit = try #require(try serve.nextJSON()["audit"] as? [String: Any])
        #expect(audit["pinnedByPeers"] as? Int == 0, "pins of the lost decoder are released: \(audit)")
        #expect(audit["orphans"] as? Int == 0, "\(audit)")
        #expect(audit["boundKeys"] as? Int == boundKeys, "\(audit)")
    }

    @Test("demo --cross-host: every byte verified across the namespaces, both audits clean")
    func demo() throws {
        defer { hosts.destroy() }  // not in deinit: the last test's suite instance may outlive the process
        let output = try CLI.run(
            ["demo", "--cross-host", "--json", "--requests", "4"] + Self.shape, environment: ["UCX_TLS": "tcp"],
            timeout: .seconds(60))
        #expect(output.status == 0, "stderr: \(output.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        #expect(report["ok"] as? Bool == true, "problems: \(report["problems"] ?? "none")")
        #expect(report["verified"] as? Bool == true)
        #expect(report["auditsClean"] as? Bool == true)
        #expect((report["namespaces"] as? [String])?.count == 2)
        #expect(report["address"] as? String == "10.213.0.1")
        #expect((report["pull"] as? [String: Any])?["transport"] as? String == "ucx")
    }

    @Test("automatic selection: the memfd exchange cannot cross namespaces, so UCX carries the pulls")
    func automaticFallsBackToUCX() throws {
        defer { hosts.destroy() }  // not in deinit: the last test's suite instance may outlive the process
        let (serve, port) = try startServe(["--requests", "4", "--remove", "3"] + Self.shape)
        let pull = try startPull(port: port, ["--requests", "4", "--removed", "3"] + Self.shape)
        #expect(try pull.wait(timeout: .seconds(30)) == 0, "stderr: \(pull.standardError)")
        let report = try pull.nextJSON(timeout: .seconds(1))
        #expect(report["ok"] as? Bool == true, "\(report)")
        #expect(report["bytes"] as? Int == 3 * 2 * 2 * 64 * 256 * 2, "3 requests × 2 layers × K,V × 64 × 256 × fp16")
        #expect(report["verified"] as? Bool == true)
        #expect(report["transport"] as? String == "ucx")
        try expectPromptClean(serve, boundKeys: 0)
        serve.closeStandardInput()
        #expect(try serve.nextJSON()["clean"] as? Bool == true)
    }

    @Test("registered caller memory (serve --registered) pulled across the veth over UCX, every byte")
    func registeredMemory() throws {
        defer { hosts.destroy() }  // not in deinit: the last test's suite instance may outlive the process
        let (serve, port) = try startServe(["--registered", "--prefix-keys", "--requests", "4"] + Self.shape)
        let pull = try startPull(port: port, ["--prefix-keys", "--requests", "4", "--repeat", "2"] + Self.shape)
        #expect(try pull.wait(timeout: .seconds(30)) == 0, "stderr: \(pull.standardError)")
        let report = try pull.nextJSON(timeout: .seconds(1))
        #expect(report["ok"] as? Bool == true && report["verified"] as? Bool == true, "\(report)")
        #expect(report["bytesVerified"] as? Int == 2 * 4 * 2 * 2 * 64 * 256 * 2, "2 rounds × 4 requests")
        #expect(report["transport"] as? String == "ucx")
        try expectPromptClean(serve, boundKeys: 4)
        serve.closeStandardInput()
        #expect(try serve.nextJSON()["clean"] as? Bool == true)
    }

    @Test("DATADIST_TRANSPORT=shm across namespaces: the link is refused with LLM_FEATURE_NOT_ENABLED")
    func sharedMemoryOnlyIsRefused() throws {
        defer { hosts.destroy() }  // not in deinit: the last test's suite instance may outlive the process
        let (serve, port) = try startServe(["--requests", "2"] + Self.shape)
        let pull = try startPull(port: port, ["--requests", "2"] + Self.shape, transport: "shm")
        #expect(try pull.wait(timeout: .seconds(30)) != 0)
        let report = try pull.nextJSON(timeout: .seconds(1))
        let failure = try #require(report["failure"] as? [String: Any], "\(report)")
        #expect((failure["status"] as? [String: Any])?["name"] as? String == "LLM_FEATURE_NOT_ENABLED", "\(failure)")
        #expect((failure["message"] as? String)?.isEmpty == false)
        try expectPromptClean(serve, boundKeys: 2)
    }

    @Test("the prompt is SIGKILLed mid-stream across the veth: the decoder fails within syncKVTimeout + 1 s")
    func promptKilled() throws {
        defer { hosts.destroy() }  // not in deinit: the last test's suite instance may outlive the process
        let (serve, port) = try startServe(["--prefix-keys", "--requests", "4"] + Self.shape)
        let pull = try startStream(port: port)
        try expectStreamFails(pull) { serve.signal(SIGKILL) }
        #expect(try serve.wait() == SIGKILL)
    }

    @Test(
        "decoders SIGKILLed mid-stream across the veth, three at a time, again and again: the prompt survives, serves, and is clean"
    )
    func decoderKilled() throws {
        defer { hosts.destroy() }  // not in deinit: the last test's suite instance may outlive the process
        let bigger = ["--layers", "2", "--tokens", "256", "--hidden", "1024"]
        let (serve, port) = try startServe(["--prefix-keys", "--requests", "4"] + bigger)
        for (round, delay) in [0.3, 0.15, 0.45, 0.25, 0.5].enumerated() {
            let streams = try (0..<3).map { index in
                try startPull(
                    port: port,
                    [
                        "--prefix-keys", "--requests", "4", "--repeat", "100000000", "--cluster-id",
                        "\(10 + 3 * round + index)",
                    ] + bigger)
            }
            Thread.sleep(forTimeInterval: delay)
            for stream in streams { stream.signal(SIGKILL) }
            for stream in streams { #expect(try stream.wait() == SIGKILL) }
            Thread.sleep(forTimeInterval: 0.05)
            #expect(serve.isRunning, "the prompt died in round \(round): \(KillTests.ucxAbort(serve.standardError))")
            guard serve.isRunning else { return }
        }
        let again = try startPull(port: port, ["--prefix-keys", "--requests", "4", "--repeat", "3"] + bigger)
        #expect(try again.wait(timeout: .seconds(30)) == 0, "stderr: \(again.standardError)")
        let report = try again.nextJSON(timeout: .seconds(1))
        #expect(report["verified"] as? Bool == true && report["rounds"] as? Int == 3, "\(report)")
        try KillTests.expectPromptClean(serve, boundKeys: 4)
        serve.closeStandardInput()
        #expect(try serve.nextJSON()["clean"] as? Bool == true)
    }

    @Test("the link goes down mid-stream: the decoder fails in time, the prompt releases its pins, a relink works")
    func linkDownThenRelink() throws {
        defer { hosts.destroy() }  // not in deinit: the last test's suite instance may outlive the process
        let (serve, port) = try startServe(["--prefix-keys", "--requests", "4"] + Self.shape)
        // Unpaced: the cut falls in the middle of a pull as often as not.
        let pull = try startStream(port: port)
        try expectStreamFails(pull) { try hosts.setLink(up: false) }
        try hosts.setLink(up: true)

        let again = try startPull(port: port, ["--prefix-keys", "--requests", "4", "--repeat", "3"] + Self.shape)
        #expect(
            try again.wait(timeout: .seconds(30)) == 0,
            "stderr: \(again.standardError)\nthe prompt's: \(serve.standardError)")
        let report = try again.nextJSON(timeout: .seconds(1))
        #expect(report["ok"] as? Bool == true && report["rounds"] as? Int == 3, "\(report)")
        // The lost decoder's link ends on the prompt's side within its own deadlines; wait for the pins to go.
        let deadline = ContinuousClock.now + .seconds(15)
        var audit: [String: Any] = [:]
        repeat {
            try serve.send("audit")
            audit = try #require(try serve.nextJSON()["audit"] as? [String: Any])
            if audit["pinnedByPeers"] as? Int == 0 { break }
            Thread.sleep(forTimeInterval: 0.2)
        } while ContinuousClock.now < deadline
        #expect(audit["pinnedByPeers"] as? Int == 0, "\(audit)")
        #expect(audit["orphans"] as? Int == 0, "\(audit)")
        serve.closeStandardInput()
        #expect(try serve.nextJSON()["clean"] as? Bool == true)
    }

    /// Both sides on the ACL backend over the fake vendor library: device memory staged through pinned host buffers.
    static func aclEnvironment() throws -> [String: String] {
        let library = try #require(CLI.fakeLibrary, "lib_FakeAscendCL.so not found")
        return environment("ucx").merging(["DATADIST_BACKEND": "acl", "DATADIST_ACL_LIBRARY": library]) { $1 }
    }

    @Test("the ACL backend (the fake on both sides): pulls staged through pinned host buffers, every byte verified")
    func aclStagedPull() throws {
        defer { hosts.destroy() }  // not in deinit: the last test's suite instance may outlive the process
        let environment = try Self.aclEnvironment()
        let bigger = ["--layers", "2", "--tokens", "512", "--hidden", "1024"]
        let serve = try SpawnedCLI(
            ["serve", "--json", "--host", hosts.firstAddress, "--requests", "3"] + bigger, environment: environment,
            namespace: hosts.first)
        let ready = try serve.nextJSON()
        let port = try #require(ready["port"] as? Int, "ready line without a port: \(ready)")
        let pull = try SpawnedCLI(
            ["pull", "--json", "--host", hosts.firstAddress, "--port", "\(port)", "--requests", "3"] + bigger,
            environment: environment, namespace: hosts.second)
        #expect(try pull.wait(timeout: .seconds(30)) == 0, "stderr: \(pull.standardError)")
        let report = try pull.nextJSON(timeout: .seconds(1))
        #expect(report["ok"] as? Bool == true && report["verified"] as? Bool == true, "\(report)")
        #expect(
            report["bytes"] as? Int == 3 * 2 * 2 * 512 * 1024 * 2, "3 requests × 2 layers × K,V × 512 × 1024 × fp16")
        #expect(report["transport"] as? String == "ucx")
        try expectPromptClean(serve, boundKeys: 0)
        serve.closeStandardInput()
        #expect(try serve.nextJSON()["clean"] as? Bool == true)
    }

    @Test("the ACL backend (the fake on both sides): pushes staged both ways, each checked by pulling the slot back")
    func aclStagedPush() throws {
        defer { hosts.destroy() }  // not in deinit: the last test's suite instance may outlive the process
        let environment = try Self.aclEnvironment()
        let serve = try SpawnedCLI(
            ["bench-serve", "--remote-accessible", "--listen", hosts.firstAddress, "--pool-bytes", "\(64 << 20)"],
            environment: environment, namespace: hosts.first)
        defer {
            serve.signal(SIGKILL)
            _ = try? serve.wait()
        }
        let port = try #require(try serve.nextJSON()["port"] as? Int)
        let slotBytes = 2 << 20
        try serve.send("cache target \(slotBytes) 4 none 0 touch")
        let created = try serve.nextJSON()
        let cacheID = try #require(created["cacheID"] as? Int, "\(created)")
        let push = try SpawnedCLI(
            [
                "pull", "--json", "--host", hosts.firstAddress, "--port", "\(port)", "--push-cache-id", "\(cacheID)",
                "--layers", "1", "--tokens", "512", "--hidden", "2048", "--requests", "4", "--repeat", "2",
            ], environment: environment, namespace: hosts.second)
        #expect(try push.wait(timeout: .seconds(30)) == 0, "stderr: \(push.standardError)")
        let report = try push.nextJSON(timeout: .seconds(1))
        #expect(report["verified"] as? Bool == true && report["rounds"] as? Int == 2, "\(report)")
        #expect(report["bytes"] as? Int == 2 * 4 * slotBytes, "\(report)")
        #expect(report["transport"] as? String == "ucx")
        try serve.send("free target")
        #expect(try serve.nextJSON()["event"] as? String == "freed")
        serve.closeStandardInput()
        let exit = try serve.nextJSON()
        let audit = try #require(exit["audit"] as? [String: Any], "\(exit)")
        #expect(audit["clean"] as? Bool == true && audit["pinnedByPeers"] as? Int == 0, "\(audit)")
    }

    @Test("packets dropped (2 % each way) and the link shaped to 200 Mbit/s: every pull still arrives intact")
    func lossyNetwork() throws {
        defer { hosts.destroy() }  // not in deinit: the last test's suite instance may outlive the process
        try hosts.impair(lossPercent: 2, rateMbit: 200)
        let (serve, port) = try startServe(["--requests", "6"] + Self.shape)
        let pull = try startPull(port: port, ["--requests", "6", "--sync-timeout-ms", "10000"] + Self.shape)
        #expect(try pull.wait(timeout: .seconds(60)) == 0, "stderr: \(pull.standardError)")
        let report = try pull.nextJSON(timeout: .seconds(1))
        #expect(report["ok"] as? Bool == true, "\(report)")
        #expect(report["verified"] as? Bool == true)
        try expectPromptClean(serve, boundKeys: 0)
    }
}
