import LinkLayer
import Testing

@testable import DataDist

/// A peer that pipelines requests and never reads the replies: the owner's replies fill both socket buffers and
/// its reader thread cannot send. The owner must cut that link off after its send timeout, release every pin the
/// peer's grants hold, and go on serving a real decoder.
@Suite(.timeLimit(.minutes(1))) struct UnreadRepliesTests {
    @Test func aPeerThatNeverReadsItsRepliesIsCutOffAndItsPinsReleased() throws {
        let pair = try LinkedPair(link: false)
        let prompt = try pair.prompt.cacheManager
        prompt.links.sendTimeout = .seconds(1)
        let blocks = try prompt.allocateBlocksCache(
            CacheDesc(numTensors: 2, shape: [8, 16], dataType: .int32), key: BlocksCacheKey(clusterID: 1, modelID: 4))
        let peer = try MaliciousClientTests.RawPeer(
            endpoint: pair.promptInfo.remoteIPInfos[0], clusterID: 66, expecting: 1)

        // Blocks keys are never consumed: every resolve is granted and pins the cache until its release.
        let resolve = MaliciousClientTests.resolve(.blocks(modelID: 4), blocks: [1]).encoded()
        var requests = 0
        pipelining: while requests < 50_000 {
            let burst = (0..<100).flatMap {
                Frame(kind: .resolve, requestID: UInt64(requests + $0 + 1), payload: resolve).encoded()
            }
            do {
                try peer.channel.sendAll(burst, until: .now.advanced(by: .milliseconds(200)))
            } catch {
                #expect(error.timedOut, "\(error)")
                break pipelining
            }
            requests += 100
        }
        #expect(requests >= 1000, "the owner stopped reading after \(requests) requests")
        #expect(requests < 50_000, "the owner's replies never filled the socket")

        // Meanwhile the owner serves a real decoder.
        #expect(pair.decoder.linkClusters([pair.promptInfo]) == (.success, [.success]))
        let desc = CacheDesc(numTensors: 2, shape: [1, 16], dataType: .int32)
        let key = CacheKey(promptClusterID: 1, reqID: 1)
        let source = try prompt.allocateCache(desc, keys: [key])
        fill(source, seed: 7, ints: 16)
        let destination = try pair.decoder.cacheManager.allocateCache(desc)
        try pair.decoder.cacheManager.pullCache(key, into: destination)
        #expect(
            readInt32s(at: destination.tensorAddresses[1], count: 16)
                == readInt32s(at: source.tensorAddresses[1], count: 16))
        try pair.decoder.cacheManager.deallocateCache(destination)
        try prompt.deallocateCache(source)
        #expect(prompt.audit().pinnedByPeers > 0, "the unread grants hold their pins until the link is cut")

        // Once the send timeout passed, the link is closed as failed and its grants' pins are gone.
        #expect(
            eventually(within: .seconds(5)) { prompt.audit().pinnedByPeers == 0 && prompt.links.linkCount == 1 },
            "\(prompt.audit()), \(prompt.links.linkCount) links")
        peer.channel.close()
        try prompt.deallocateBlocksCache(blocks)
        try PeerLimitTests.pullOne(pair, into: pair.decoder, reqID: 2)
        try pair.finish()
    }
}
