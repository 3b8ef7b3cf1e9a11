import DataDist
import Dispatch
import LinkLayer
import Synchronization
import Testing
import ThreadSanitizerSupport

@testable import DataDist

/// A pull that returned success consumed its key for good, whatever unlink or finalize ran right after it: the
/// race between its posted release and the link's close is forced with the link's `beforeRelease` seam.
@Suite(.timeLimit(.minutes(1))) struct ExactlyOnceTests {
    static let desc = CacheDesc(numTensors: 2, shape: [1, 64], dataType: .int32)
    static let key = CacheKey(promptClusterID: 1, reqID: 1)

    /// A pull on its own thread that stops between its copy and its release until `resume()`.
    final class HeldPull: Sendable {
        let copied = DispatchSemaphore(value: 0)
        let go = DispatchSemaphore(value: 0)
        let thread: TestThread
        let outcome = Outcome()

        final class Outcome: Sendable {
            let status = Lock<LLMStatusCode?>(nil)
        }

        /// `batched`: through `pullCaches` instead of `pullCache`.
        init(_ decoder: CacheManager, into destination: Cache, batched: Bool = false) throws {
            let link = try decoder.links.link(to: 1, for: "test")
            let (copied, go) = (copied, go)
            link.transfers.beforeRelease.withLock { hook in
                hook = {
                    copied.signal()
                    _ = go.wait(timeout: .now() + .seconds(20))
                }
            }
            let outcome = outcome
            thread = TestThread {
                do throws(LLMError) {
                    if batched {
                        try decoder.pullCaches([CachePull(ExactlyOnceTests.key, into: destination)])
                    } else {
                        try decoder.pullCache(ExactlyOnceTests.key, into: destination)
                    }
                    outcome.status.withLock { $0 = .success }
                } catch {
                    outcome.status.withLock { $0 = error.status }
                }
                return []
            }
            try thread.start()
            #expect(copied.wait(timeout: .now() + .seconds(20)) == .success, "the pull copied")
        }

        /// Lets the release go and waits for the pull's outcome.
        func resume() -> LLMStatusCode? {
            go.signal()
            thread.join()
            return outcome.status.withLock { $0 }
        }
    }

    /// A second pull over a new link: `.kvCacheNotExist` if the first one consumed the key.
    static func pullAgain(_ pair: LinkedPair, into destination: Cache) throws -> LLMStatusCode {
        #expect(pair.decoder.linkClusters([pair.promptInfo]) == (.success, [.success]))
        let decoder = try pair.decoder.cacheManager
        do throws(LLMError) {
            try decoder.pullCache(key, into: destination)
            return .success
        } catch {
            return error.status
        }
    }

    @Test(arguments: [false, true], TestTransport.transfers)
    func anUnlinkLetsAFinishedPullReleaseFirstSoItsKeyStaysConsumed(batched: Bool, transport: TestTransport) throws {
        let pair = try LinkedPair(transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let source = try prompt.allocateCache(Self.desc, keys: [Self.key])
        let destination = try decoder.allocateCache(Self.desc)
        let link = try decoder.links.link(to: 1, for: "test")
        let pull = try HeldPull(decoder, into: destination, batched: batched)
        let unlink = TestThread {
            let status = pair.decoder.unlinkClusters([pair.promptInfo], timeout: .seconds(20))
            return status == (.success, [.success]) ? [] : ["unlink: \(status)"]
        }
        try unlink.start()
        // The unlink waits for the pull; without that wait it would close the link before the release.
        #expect(eventually(within: .seconds(20)) { link.transfers.hasWaitingUnlink || !link.channel.isOpen })
        #expect(pull.resume() == .success)
        unlink.join()
        #expect(unlink.failures.isEmpty, "\(unlink.failures)")
        #expect(try Self.pullAgain(pair, into: destination) == .kvCacheNotExist, "the key was delivered once")
        try prompt.deallocateCache(source)
        try decoder.deallocateCache(destination)
        #expect(eventually { prompt.audit().isClean }, "\(prompt.audit())")
        try pair.finish()
    }

    @Test(arguments: [false, true], TestTransport.transfers)
    func aPullWhoseOwnerUnlinksBeforeItsReleaseFailsAndTheKeyIsPulledOnce(batched: Bool, transport: TestTransport)
        throws
    {
        let pair = try LinkedPair(transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let source = try prompt.allocateCache(Self.desc, keys: [Self.key])
        let destination = try decoder.allocateCache(Self.desc)
        let pull = try HeldPull(decoder, into: destination, batched: batched)
        let decoderInfo = LLMClusterInfo(remoteClusterID: pair.decoder.clusterID)
        #expect(pair.prompt.unlinkClusters([decoderInfo], timeout: .seconds(20)) == (.success, [.success]))
        #expect(prompt.audit().boundKeys == 1, "the link closed with the pull unreleased: its key is back")
        #expect(pull.resume() == .linkFailed, "its release can no longer reach the owner")
        #expect(try Self.pullAgain(pair, into: destination) == .success, "the one pull that counts")
        try prompt.deallocateCache(source)
        try decoder.deallocateCache(destination)
        #expect(eventually { prompt.audit().isClean }, "\(prompt.audit())")
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func aPullStillRunningWhenItsUnlinkStopsWaitingFailsAndTheKeyIsPulledOnce(
        transport: TestTransport
    ) throws {
        let pair = try LinkedPair(transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let source = try prompt.allocateCache(Self.desc, keys: [Self.key])
        let destination = try decoder.allocateCache(Self.desc)
        let pull = try HeldPull(decoder, into: destination)
        #expect(pair.decoder.unlinkClusters([pair.promptInfo], timeout: .milliseconds(200)) == (.success, [.success]))
        #expect(pull.resume() == .linkFailed, "its release would follow the unlink")
        #expect(try Self.pullAgain(pair, into: destination) == .success, "the one pull that counts")
        try prompt.deallocateCache(source)
        try decoder.deallocateCache(destination)
        #expect(eventually { prompt.audit().isClean }, "\(prompt.audit())")
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func finalizeLetsAFinishedPullReleaseFirstSoItsKeyStaysConsumed(
        transport: TestTransport
    ) throws {
        let pair = try LinkedPair(transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let source = try prompt.allocateCache(Self.desc, keys: [Self.key])
        let destination = try decoder.allocateCache(Self.desc)
        let link = try decoder.links.link(to: 1, for: "test")
        let pull = try HeldPull(decoder, into: destination)
        let finalize = TestThread {
            pair.decoder.finalize()
            return []
        }
        try finalize.start()
        #expect(eventually(within: .seconds(20)) { link.transfers.hasWaitingUnlink || !link.channel.isOpen })
        #expect(pull.resume() == .success)
        finalize.join()
        #expect(eventually { prompt.audit().pinnedByPeers == 0 })
        #expect(prompt.audit().boundKeys == 0, "the key was consumed: \(prompt.audit())")
        try prompt.deallocateCache(source)
        #expect(prompt.audit().isClean, "\(prompt.audit())")
        pair.prompt.finalize()
    }
}
