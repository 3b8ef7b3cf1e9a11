import Foundation
import Testing

/// Pushers (`datadist pull --push-cache-id`) SIGKILLed mid-push, again and again, into one remote-accessible
/// `datadist bench-serve`: over UCX on TCP a push used to be one-sided writes the receiver's worker answers, and
/// UCX 1.13 aborts a process whose answer cannot reach a peer that just died.
@Suite("datadist pull --push-cache-id: pushers killed mid-push", .serialized, .timeLimit(.minutes(3)))
struct PushKillTests {
    /// Four slots of one tensor of 4 MiB (`--tokens 1024 --hidden 2048`).
    static let shape = ["--layers", "1", "--tokens", "1024", "--hidden", "2048", "--requests", "4"]
    static let slotBytes = 4 << 20

    @Test(
        "pushers SIGKILLed again and again, three at a time, mid-push: the receiver survives them all, takes a last verified push, and its audit is clean",
        arguments: KillTests.transportsWithLargeSegments)
    func repeatedPusherKills(transport: [String: String]) throws {
        let serve = try SpawnedCLI(
            ["bench-serve", "--remote-accessible", "--pool-bytes", "\(64 << 20)"], environment: transport)
        defer {
            serve.signal(SIGKILL)
            _ = try? serve.wait()
        }
        let port = try #require(try serve.nextJSON()["port"] as? Int)
        try serve.send("cache target \(Self.slotBytes) 4 none 0 touch")
        let created = try serve.nextJSON()
        let cacheID = try #require(created["cacheID"] as? Int, "\(created)")
        let push = ["pull", "--json", "--port", "\(port)", "--push-cache-id", "\(cacheID)"] + Self.shape
        // Before pushes were received by the owner, over UCX on TCP about one round in 13 aborted the receiver.
        let delays = [0.3, 0.5, 0.4, 0.6, 0.35, 0.45, 0.55, 0.3]
        let rounds = transport["DATADIST_TRANSPORT"] == "ucx" ? delays + delays + delays : Array(delays.prefix(3))
        for (round, delay) in rounds.enumerated() {
            let pushers = try (0..<3).map { index in
                try SpawnedCLI(
                    push + ["--repeat", "100000000", "--cluster-id", "\(10 + 3 * round + index)"],
                    environment: transport)
            }
            Thread.sleep(forTimeInterval: delay)
            for pusher in pushers { pusher.signal(SIGKILL) }
            for pusher in pushers { #expect(try pusher.wait() == SIGKILL) }
            Thread.sleep(forTimeInterval: 0.05)
            #expect(serve.isRunning, "the receiver died in round \(round): \(KillTests.ucxAbort(serve.standardError))")
            guard serve.isRunning else { return }
        }
        let last = try SpawnedCLI(push + ["--repeat", "2", "--cluster-id", "3"], environment: transport)
        #expect(try last.wait(timeout: .seconds(20)) == 0)
        let report = try last.nextJSON(timeout: .seconds(1))
        #expect(report["verified"] as? Bool == true && report["rounds"] as? Int == 2, "\(report)")
        #expect(report["bytes"] as? Int == 2 * 4 * Self.slotBytes, "\(report)")
        #expect(report["transport"] as? String == (transport["DATADIST_TRANSPORT"] == "ucx" ? "ucx" : "shm"))
        try serve.send("free target")
        #expect(try serve.nextJSON()["event"] as? String == "freed")
        serve.closeStandardInput()
        let exit = try serve.nextJSON()
        let audit = try #require(exit["audit"] as? [String: Any], "\(exit)")
        #expect(audit["clean"] as? Bool == true && audit["pinnedByPeers"] as? Int == 0, "\(audit)")
        #expect(try serve.wait() == 0)
    }

    @Test(
        "a push into a cache id the receiver does not hold fails with the owner's refusal and exit 1; the receiver's audit stays clean"
    )
    func pushIntoAnUnknownCacheID() throws {
        let serve = try SpawnedCLI(["bench-serve", "--remote-accessible", "--pool-bytes", "\(16 << 20)"])
        defer {
            serve.signal(SIGKILL)
            _ = try? serve.wait()
        }
        let port = try #require(try serve.nextJSON()["port"] as? Int)
        let push = try SpawnedCLI(
            ["pull", "--json", "--port", "\(port)", "--push-cache-id", "4242", "--layers", "1", "--requests", "2"])
        #expect(try push.wait(timeout: .seconds(20)) == 1)
        let report = try push.nextJSON(timeout: .seconds(1))
        let failure = try #require(report["failure"] as? [String: Any], "\(report)")
        #expect(failure["phase"] as? String == "pushCache", "\(failure)")
        #expect((failure["message"] as? String)?.contains("4242") == true, "\(failure)")
        #expect(report["ok"] as? Bool == false && report["bytes"] as? Int == 0)
        serve.closeStandardInput()
        let audit = try #require(try serve.nextJSON()["audit"] as? [String: Any])
        #expect(audit["clean"] as? Bool == true, "\(audit)")
        #expect(try serve.wait() == 0)
    }
}
