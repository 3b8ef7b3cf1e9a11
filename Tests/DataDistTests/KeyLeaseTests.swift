import DataDist
import InMemoryLogging
import LinkLayer
import Logging
import Synchronization
import Testing
import ThreadSanitizerSupport

@testable import DataDist

#if canImport(Glibc)
import Glibc
#endif

/// `LLMConfig.requestKeyLease`: a request key bound and not pulled in time is unbound, counted and logged; a
/// pull in flight keeps its key, a failed one gives it back with a fresh lease, and finalize stops the sweeper.
@Suite(.timeLimit(.minutes(1))) struct KeyLeaseTests {
    static let desc = CacheDesc(numTensors: 2, shape: [1, 64], dataType: .int32)
    static let key = ExactlyOnceTests.key

    /// Every sweep of a manager's lease sweeper: when it ran (`KeyLeases.now()`) and how many keys it expired.
    final class Sweeps: Sendable {
        let log = Lock<[(now: UInt64, expired: Int)]>([])

        init(_ manager: CacheManager) throws {
            let sweeper = try #require(manager.leaseSweeper)
            sweeper.afterSweep.withLock { hook in
                hook = { [self] now, expired in log.withLock { $0.append((now, expired)) } }
            }
        }

        /// Waits until a sweep ran at `time` or later.
        func waitForSweep(after time: UInt64) -> Bool {
            eventually(within: .seconds(10)) { log.withLock { $0.contains { $0.now >= time } } }
        }

        /// When the sweeps that expired keys ran.
        var expiring: [UInt64] { log.withLock { $0.filter { $0.expired > 0 }.map(\.now) } }
        var count: Int { log.withLock { $0.count } }
    }

    static func lease(_ milliseconds: Int64) -> (inout LLMConfig) -> Void {
        { $0.requestKeyLease = .milliseconds(milliseconds) }
    }

    static func nanoseconds(_ milliseconds: UInt64) -> UInt64 { milliseconds * 1_000_000 }

    @Test func anUnpulledKeyExpiresItsMemoryReturnsAndTheExpiryIsCountedAndLogged() throws {
        let logs = InMemoryLogHandler()
        var config = LLMConfig()
        config.memoryPool = MemoryPoolConfig(size: 1 << 20)
        config.requestKeyLease = .milliseconds(100)
        let instance = LLMDataDist(role: .prompt, clusterID: 1, logger: Logger(label: "test") { _ in logs })
        try instance.initialize(config, environment: emulatorEnvironment())
        defer { instance.finalize() }
        let manager = try instance.cacheManager
        let keys = [CacheKey(promptClusterID: 1, reqID: 7), CacheKey(promptClusterID: 1, reqID: 8)]
        let cache = try manager.allocateCache(CacheDesc(numTensors: 2, shape: [2, 64], dataType: .int32), keys: keys)
        try manager.deallocateCache(cache)
        let prefix = CacheKey(promptClusterID: 1, reqID: 0, prefixID: 3)
        let kept = try manager.allocateCache(Self.desc, keys: [prefix])
        #expect(manager.audit().boundKeys == 3 && manager.audit().expiredKeys == 0)
        #expect(eventually(within: .seconds(10)) { manager.audit().expiredKeys == 2 }, "\(manager.audit())")
        let audit = manager.audit()
        #expect(audit.boundKeys == 1 && audit.liveCaches == 1 && audit.orphans == 0, "only the prefix key: \(audit)")
        #expect(audit.description.hasSuffix("expired 2"))
        // The line is logged just after the count changes, and a sweep between the two keys' deadlines (under
        // load) expires them in two sweeps: wait for the lines, one per sweep, naming both keys.
        let lines = { logs.entries.filter { "\($0.message)".contains("lease") } }
        let named = { lines().compactMap { $0.metadata["keys"].map { "\($0)" } }.joined(separator: " ") }
        #expect(
            eventually(within: .seconds(10)) { named().contains("req 7") && named().contains("req 8") }, "\(lines())")
        #expect((1...2).contains(lines().count) && lines().allSatisfy { $0.level == .notice }, "\(lines())")
        try manager.removeCacheKey(prefix)
        try manager.deallocateCache(kept)
        #expect(manager.audit().isClean, "\(manager.audit())")
    }

    @Test func aKeyHeldOnlyByItsCacheIDKeepsTheMemoryUntilDeallocate() throws {
        try withCacheManager(configure: Self.lease(50)) { manager in
            let cache = try manager.allocateCache(Self.desc, keys: [Self.key])
            #expect(eventually(within: .seconds(10)) { manager.audit().expiredKeys == 1 })
            #expect(manager.audit().boundKeys == 0 && manager.audit().liveCaches == 1, "the id still holds it")
            try manager.deallocateCache(cache)
            #expect(manager.audit().isClean, "\(manager.audit())")
        }
    }

    @Test(arguments: TestTransport.transfers) func aKeyPulledBeforeItsLeaseRunsOutIsDeliveredOnceAndNothingExpiresLater(
        transport: TestTransport
    ) throws {
        let pair = try LinkedPair(transport: transport, configurePrompt: Self.lease(400))
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let sweeps = try Sweeps(prompt)
        let bound = KeyLeases.now()
        try prompt.deallocateCache(try prompt.allocateCache(Self.desc, keys: [Self.key]))
        let destination = try decoder.allocateCache(Self.desc)
        try decoder.pullCache(Self.key, into: destination)
        #expect(sweeps.waitForSweep(after: bound + Self.nanoseconds(400)), "a sweep ran after the lease would end")
        #expect(prompt.audit().expiredKeys == 0 && prompt.audit().isClean, "\(prompt.audit())")
        #expect(caught { try decoder.pullCache(Self.key, into: destination) }?.status == .kvCacheNotExist)
        try decoder.deallocateCache(destination)
        try pair.finish()
    }

    /// The pull reserved the key (the decoder is held between its copy and its release by the link's seam) when
    /// its lease runs out: the sweeper passes it by, and the pull consumes it.
    @Test(arguments: TestTransport.transfers) func aPullInFlightWhenTheLeaseRunsOutWinsAndConsumesTheKey(
        transport: TestTransport
    ) throws {
        let pair = try LinkedPair(transport: transport, configurePrompt: Self.lease(100))
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let sweeps = try Sweeps(prompt)
        let bound = KeyLeases.now()
        try prompt.deallocateCache(try prompt.allocateCache(Self.desc, keys: [Self.key]))
        let destination = try decoder.allocateCache(Self.desc)
        let held = try ExactlyOnceTests.HeldPull(decoder, into: destination)
        #expect(sweeps.waitForSweep(after: bound + Self.nanoseconds(100)), "a sweep ran after the lease ended")
        #expect(prompt.audit().expiredKeys == 0 && prompt.audit().pinnedByPeers == 1, "\(prompt.audit())")
        #expect(held.resume() == .success)
        #expect(eventually { prompt.audit().isClean }, "consumed: \(prompt.audit())")
        #expect(prompt.audit().expiredKeys == 0)
        #expect(caught { try decoder.pullCache(Self.key, into: destination) }?.status == .kvCacheNotExist)
        try decoder.deallocateCache(destination)
        try pair.finish()
    }

    /// The expiry holds the owner's table lock while a pull is on its way to it: the pull finds no key.
    @Test(arguments: TestTransport.transfers) func aLeaseThatRunsOutBeforeAPullReservesItWinsAndThePullFindsNoKey(
        transport: TestTransport
    ) throws {
        let pair = try LinkedPair(transport: transport, configurePrompt: Self.lease(5000))  // only this test expires it
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        try prompt.deallocateCache(try prompt.allocateCache(Self.desc, keys: [Self.key]))
        let destination = try decoder.allocateCache(Self.desc)
        let status = Lock<LLMStatusCode?>(nil)
        let pull = TestThread {
            status.withLock { $0 = caught { try decoder.pullCache(Self.key, into: destination) }?.status ?? .success }
            return []
        }
        let (started, expired) = prompt.store.table.withLock { table in
            let started = (try? pull.start()) != nil
            usleep(50_000)  // the pull reaches the owner and waits for this lock (its outcome does not depend on it)
            return (started, table.expireLeases(now: KeyLeases.now() + Self.nanoseconds(5000)).expired)
        }
        #expect(started)
        pull.join()
        #expect(expired.count == 1)
        #expect(status.withLock { $0 } == .kvCacheNotExist)
        #expect(prompt.audit().expiredKeys == 1 && prompt.audit().isClean, "\(prompt.audit())")
        try decoder.deallocateCache(destination)
        try pair.finish()
    }

    /// A transfer that took the key and failed after its lease ran out gives it back with a lease from then.
    @Test func aKeyGivenBackByAFailedPullGetsAFreshLease() throws {
        try withCacheManager(configure: Self.lease(100)) { manager in
            let sweeps = try Sweeps(manager)
            let bound = KeyLeases.now()
            try manager.deallocateCache(try manager.allocateCache(Self.desc, keys: [Self.key]))
            let policy = manager.links.policy
            let grant = try policy.resolve(OwnerPolicyTests.pull(OwnerPolicyTests.key(1)), link: 1).get()
            #expect(sweeps.waitForSweep(after: bound + Self.nanoseconds(100)), "a sweep ran after the lease ended")
            #expect(manager.audit().expiredKeys == 0 && manager.audit().boundKeys == 0, "taken, not expired")
            let givenBack = KeyLeases.now()
            #expect(policy.release(ReleaseNotice(pinID: grant.pinID, succeeded: false), link: 1))
            #expect(eventually(within: .seconds(10)) { manager.audit().expiredKeys == 1 }, "\(manager.audit())")
            #expect(
                sweeps.expiring.allSatisfy { $0 >= givenBack + Self.nanoseconds(100) }, "a lease from the give-back")
            #expect(manager.audit().isClean, "\(manager.audit())")
        }
    }

    /// Layer-wise: a key with some layers pulled and a transfer of it in flight does not expire; once that
    /// transfer settles its lease starts again, and it expires with its memory if nobody pulls the rest.
    @Test func aPartlyPulledKeyExpiresOnlyALeaseAfterItsLastTransferSettled() throws {
        try withCacheManager(configure: Self.lease(100)) { manager in
            let sweeps = try Sweeps(manager)
            let bound = KeyLeases.now()
            try manager.deallocateCache(try manager.allocateCache(Self.desc, keys: [Self.key]))
            let policy = manager.links.policy
            let grant = try policy.resolve(OwnerPolicyTests.pull(OwnerPolicyTests.key(1), tensors: 0..<1), link: 1)
                .get()
            #expect(sweeps.waitForSweep(after: bound + Self.nanoseconds(100)))
            #expect(manager.audit().expiredKeys == 0 && manager.audit().boundKeys == 1, "in flight: kept")
            let settled = KeyLeases.now()
            #expect(policy.release(ReleaseNotice(pinID: grant.pinID, succeeded: true), link: 1))
            #expect(eventually(within: .seconds(10)) { manager.audit().expiredKeys == 1 }, "\(manager.audit())")
            #expect(sweeps.expiring.allSatisfy { $0 >= settled + Self.nanoseconds(100) })
            #expect(manager.audit().isClean, "\(manager.audit())")
        }
    }

    @Test func finalizeStopsTheSweeper() throws {
        let instance = try makeInstance(configure: Self.lease(50))
        let manager = try instance.cacheManager
        let sweeper = try #require(manager.leaseSweeper)
        let sweeps = try Sweeps(manager)
        #expect(sweeper.isRunning)
        #expect(sweeps.waitForSweep(after: KeyLeases.now()), "it sweeps")
        instance.finalize()
        #expect(!sweeper.isRunning)
        let after = sweeps.count
        usleep(200_000)  // four leases
        #expect(sweeps.count == after, "no sweep after finalize")
        #expect(try makeInstance().cacheManager.leaseSweeper == nil, "no lease, no sweeper")
    }

    @Test func stoppingTheSweeperWaitsForItsThreadToEnd() throws {
        let instance = try makeInstance(configure: Self.lease(50))
        defer { instance.finalize() }
        let sweeper = try #require(try instance.cacheManager.leaseSweeper)
        #expect(sweeper.isRunning)
        sweeper.stop()
        #expect(!sweeper.isRunning, "stop returned before the thread ended")
    }

    @Test func badLeaseValuesAreRefusedNamingTheOptionAndValue() throws {
        for bad in ["0", "000", "-5", "abc", "1.5", "", " 10", "2147483648", "99999999999999999999"] {
            let error = caught { _ = try LLMConfig(options: [LLMOptionKey.requestKeyLease: bad]) }
            #expect(error?.status == .paramInvalid, "\(bad)")
            #expect(
                error?.message.contains("\"llm.RequestKeyLeaseTime\" = \"\(bad)\"") == true, "\(error?.message ?? "")")
        }
        for bad: Duration in [.zero, .milliseconds(-5), .microseconds(1500), .seconds(Int64(Int32.max))] {
            var config = LLMConfig()
            config.requestKeyLease = bad
            let error = caught { try config.validate() }
            #expect(error?.status == .paramInvalid, "\(bad)")
            #expect(error?.message.contains("requestKeyLease (llm.RequestKeyLeaseTime) \(bad)") == true)
            let instance = LLMDataDist(role: .prompt, clusterID: 1)
            #expect(caught { try instance.initialize(config, environment: emulatorEnvironment()) } != nil)
            #expect(!instance.isInitialized)
        }
        var remote = LLMConfig()
        (remote.requestKeyLease, remote.enableRemoteCacheAccessible) = (.milliseconds(100), true)
        #expect(caught { try remote.validate() }?.message.contains("enableRemoteCacheAccessible") == true)
        let implied = caught {
            _ = try LLMConfig(options: [LLMOptionKey.requestKeyLease: "100", LLMOptionKey.transferBackend: "hixl"])
        }
        #expect(implied?.status == .paramInvalid && implied?.message.contains("llm.RequestKeyLeaseTime") == true)
    }

    @Test func theLeaseRoundTripsThroughTheOptionsAndIsOffByDefault() throws {
        #expect(LLMConfig().requestKeyLease == nil)
        #expect(LLMConfig().options[LLMOptionKey.requestKeyLease] == nil)
        let config = try LLMConfig(options: [LLMOptionKey.requestKeyLease: "150"])
        #expect(config.requestKeyLease == .milliseconds(150))
        #expect(config.options[LLMOptionKey.requestKeyLease] == "150")
        #expect(try LLMConfig(options: config.options) == config)
        var direct = LLMConfig()
        direct.requestKeyLease = .seconds(2)
        #expect(try LLMConfig(options: direct.options).requestKeyLease == .milliseconds(2000))
        var additional = LLMConfig()
        additional.additionalOptions[LLMOptionKey.requestKeyLease] = "100"
        #expect(caught { try additional.validate() }?.message.contains("set requestKeyLease instead") == true)
    }
}
