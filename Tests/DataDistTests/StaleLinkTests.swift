import LinkLayer
import Testing

@testable import DataDist

/// A cluster that links again while the owner still holds a link to it whose peer is gone without a close (a cut
/// network, a peer killed while cut): the owner pings the old link, and replaces it when it does not answer.
@Suite(.timeLimit(.minutes(1))) struct StaleLinkTests {
    @Test(arguments: TestTransport.transfers)
    func aRelinkReplacesAnOldLinkThatNoLongerAnswers(transport: TestTransport) throws {
        let pair = try LinkedPair(link: false, transport: transport)
        let endpoint = try #require(pair.prompt.listenEndpoint)
        // Linked as cluster 2, then silent: it never reads again, as a peer on the far side of a cut cable.
        let silent = try MaliciousClientTests.RawPeer(
            endpoint: endpoint, clusterID: 2, expecting: 1, transport: transport)
        defer { silent.channel.close() }
        #expect(try pair.prompt.cacheManager.links.linkCount == 1)

        #expect(pair.decoder.linkClusters([pair.promptInfo]) == (.success, [.success]))
        #expect(try pair.prompt.cacheManager.links.linkCount == 1, "the silent link was replaced, not kept beside")
        try PeerLimitTests.pullOne(pair, into: pair.decoder, reqID: 1)
        try pair.finish()
    }

    @Test func aLiveLinkStillRefusesASecondLinkOfTheSameCluster() throws {
        let pair = try LinkedPair()
        let second = try LinkSecretTests.peer(2, secret: nil)
        defer { second.finalize() }
        #expect(second.linkClusters([pair.promptInfo]) == (.alreadyLink, [.alreadyLink]))
        try PeerLimitTests.pullOne(pair, into: pair.decoder, reqID: 1)
        try pair.finish()
    }
}
