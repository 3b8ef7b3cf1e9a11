import BlockPool
import DeviceRuntime
import LinkLayer
import Testing

@testable import DataDist

#if canImport(Glibc)
import Glibc
#endif

/// Limits a peer cannot exceed: what its pools may make the owner map (per peer and for all peers together),
/// and how many handshakes, holding how much, may be pending. Each hostile peer is refused or cut off, and the
/// owner goes on serving a real decoder with a clean audit.
@Suite(.timeLimit(.minutes(1))) struct PeerLimitTests {
    static let mebibyte = 1 << 20

    /// A scripted peer that says hello to the owner at `endpoint` as cluster `clusterID`, then offers `pools`
    /// (region id, size), each backed by `fd`, and returns the owner's answer on the TCP connection.
    static func offerPools(
        to endpoint: IPEndpoint, clusterID: UInt64, pools: [(UInt32, Int)], fd: Int32
    ) throws -> Refusal? {
        let deadline = ContinuousClock.now.advanced(by: .seconds(5))
        let (tcp, unix) = try scriptedHello(to: endpoint, clusterID: clusterID, expecting: 1, until: deadline)
        defer {
            tcp.close()
            unix.close()
        }
        let (header, _) = try unix.receive(count: 4, until: deadline)
        for _ in 0..<Int(header[0]) {
            let (_, received) = try unix.receive(count: RegionDescriptor.encodedSize, until: deadline)
            Socket(fd: received).close()
        }
        try unix.send([UInt8(pools.count), 0, 0, 0], passing: -1)
        for (regionID, size) in pools {
            // Region id (u32), kind (u8, 0: host memory), size (u64), little-endian.
            let descriptor =
                withUnsafeBytes(of: regionID.littleEndian, Array.init) + [0]
                + withUnsafeBytes(of: UInt64(size).littleEndian, Array.init)
            try unix.send(descriptor, passing: fd)
        }
        var inbox = FrameInbox()
        let reply = try inbox.receiveFrame(from: tcp, until: deadline)
        return reply.kind == .refusal ? try Refusal(payload: reply.payload) : nil
    }

    /// The memfd of `instance`'s device pool (sealed against shrinking and growing, as peers require).
    static func poolDescriptor(of instance: LLMDataDist) throws -> (fd: Int32, size: Int) {
        let region = try #require(try instance.cacheManager.resources.devicePool).region
        let shared = try #require(region.shared)
        return (shared.fd, region.size)
    }

    /// Pulls one freshly keyed request from `pair.prompt` into `decoder` and checks both audits.
    static func pullOne(_ pair: LinkedPair, into decoder: LLMDataDist, reqID: UInt64) throws {
        let prompt = try pair.prompt.cacheManager
        let desc = CacheDesc(numTensors: 2, shape: [1, 16], dataType: .int32)
        let key = CacheKey(promptClusterID: 1, reqID: reqID)
        let source = try prompt.allocateCache(desc, keys: [key])
        fill(source, seed: Int32(reqID), ints: 16)
        let destination = try decoder.cacheManager.allocateCache(desc)
        try decoder.cacheManager.pullCache(key, into: destination)
        let pulled = readInt32s(at: destination.tensorAddresses[1], count: 16)
        #expect(pulled == readInt32s(at: source.tensorAddresses[1], count: 16))
        try decoder.cacheManager.deallocateCache(destination)
        try prompt.deallocateCache(source)
        #expect(try decoder.cacheManager.audit().isClean)
        // The release is posted, not awaited: the owner settles it shortly after the pull returned.
        #expect(eventually { prompt.audit().isClean }, "\(prompt.audit())")
    }

    @Test func aPeerAnnouncingPoolsBeyondThePerPeerLimitIsRefused() throws {
        let pair = try LinkedPair(link: false)
        let budget = MappingBudget(perPeer: UInt64(6 * Self.mebibyte), total: UInt64(64 * Self.mebibyte))
        try pair.prompt.cacheManager.links.mappingBudget = budget
        let pool = try Self.poolDescriptor(of: pair.decoder)
        let refusal = try #require(
            try Self.offerPools(
                to: pair.promptInfo.remoteIPInfos[0], clusterID: 9, pools: [(0, pool.size), (1, pool.size)],
                fd: pool.fd),
            "two pools of 4 MiB were accepted under a 6 MiB per-peer limit")
        #expect(refusal.status == LLMStatusCode.linkFailed.rawValue)
        #expect(
            refusal.message.contains(
                "pool 1 of 4194304 bytes: the peer's pools would take 4194304 + 4194304 bytes, above the per-peer mapping limit of 6291456 bytes"
            ), "\(refusal.message)")
        #expect(eventually { budget.mappedBytes == 0 }, "the refused peer's first pool stayed mapped")

        // The real decoder (4 MiB device and 1 MiB host pool) is within the limit.
        #expect(pair.decoder.linkClusters([pair.promptInfo], timeout: .seconds(3)) == (.success, [.success]))
        #expect(budget.mappedBytes == UInt64(5 * Self.mebibyte))
        try Self.pullOne(pair, into: pair.decoder, reqID: 1)
        try pair.finish()
        #expect(eventually { budget.mappedBytes == 0 }, "the decoder's pools stayed mapped after it unlinked")
    }

    @Test func linksWithinThePerPeerLimitAreRefusedOnceTheTotalIsReached() throws {
        let pair = try LinkedPair(link: false)
        let budget = MappingBudget(perPeer: UInt64(6 * Self.mebibyte), total: UInt64(12 * Self.mebibyte))
        try pair.prompt.cacheManager.links.mappingBudget = budget
        var decoders = [pair.decoder]
        for clusterID in UInt64(3)...4 {
            var config = LLMConfig()
            config.memoryPool = MemoryPoolConfig(size: 4 * Self.mebibyte)
            config.hostMemoryPool = MemoryPoolConfig(size: Self.mebibyte)
            let decoder = LLMDataDist(role: .decoder, clusterID: clusterID)
            try decoder.initialize(config, environment: emulatorEnvironment())
            decoders.append(decoder)
        }
        defer { for decoder in decoders.dropFirst() { decoder.finalize() } }
        // Each decoder maps 5 MiB: two fit in 12 MiB, the third does not.
        #expect(decoders[0].linkClusters([pair.promptInfo], timeout: .seconds(3)) == (.success, [.success]))
        #expect(decoders[1].linkClusters([pair.promptInfo], timeout: .seconds(3)) == (.success, [.success]))
        #expect(decoders[2].linkClusters([pair.promptInfo], timeout: .seconds(3)) == (.linkFailed, [.linkFailed]))
        #expect(try decoders[2].cacheManager.audit().isClean)
        let pool = try Self.poolDescriptor(of: decoders[2])
        let refusal = try #require(
            try Self.offerPools(
                to: pair.promptInfo.remoteIPInfos[0], clusterID: 9, pools: [(0, pool.size)], fd: pool.fd))
        #expect(refusal.status == LLMStatusCode.linkFailed.rawValue)
        #expect(
            refusal.message.contains(
                "pool 0 of 4194304 bytes: peers' pools already take 10485760 bytes, and the mapping limit of all peers together is 12582912 bytes"
            ), "\(refusal.message)")
        #expect(budget.mappedBytes == UInt64(10 * Self.mebibyte))

        // Linked decoders are served; once one unlinks, its share is free for the third.
        try Self.pullOne(pair, into: decoders[1], reqID: 1)
        #expect(decoders[1].unlinkClusters([pair.promptInfo]) == (.success, [.success]))
        #expect(eventually { budget.mappedBytes == UInt64(5 * Self.mebibyte) }, "\(budget.mappedBytes) bytes mapped")
        #expect(decoders[2].linkClusters([pair.promptInfo], timeout: .seconds(3)) == (.success, [.success]))
        try Self.pullOne(pair, into: decoders[2], reqID: 2)
        #expect(decoders[2].unlinkClusters([pair.promptInfo]) == (.success, [.success]))
        try pair.finish()
        #expect(eventually { budget.mappedBytes == 0 }, "\(budget.mappedBytes) bytes still mapped")
    }

    /// Whether the owner closes `socket` (end of stream or a reset) before `deadline`.
    static func isClosedByPeer(_ socket: Socket, before deadline: ContinuousClock.Instant) -> Bool {
        var inbox = FrameInbox(capacity: 64 << 10)
        while true {
            guard (try? socket.waitReadable(until: deadline)) == true else { return false }
            guard let count = try? inbox.fill(from: socket) else { return true }
            if count == 0 { return true }
        }
    }

    /// Connects to `endpoint` and sends the first `sent` bytes of a hello frame whose header announces
    /// `payload` bytes, then stalls.
    static func stalledHello(to endpoint: IPEndpoint, payload: Int, sent: Int) throws -> Socket {
        let socket = try Socket.connectTCP(SocketEndpoint(endpoint), until: .now + .seconds(3))
        let frame = Frame(kind: .hello, requestID: 1, payload: [UInt8](repeating: 7, count: payload)).encoded()
        try socket.sendAll(Array(frame.prefix(sent)))
        return socket
    }

    @Test func aHelloLongerThanAnyHelloIsCutOffAtItsHeader() throws {
        let pair = try LinkedPair(link: false)
        let endpoint = pair.promptInfo.remoteIPInfos[0]
        let socket = try Self.stalledHello(to: endpoint, payload: Frame.maxPayload, sent: 64 << 10)
        defer { socket.close() }
        // The handshake deadline is 10 s; a partial 1 MiB hello is dropped as soon as its header is read.
        #expect(Self.isClosedByPeer(socket, before: .now + .seconds(5)), "the owner kept a partial 1 MiB hello")
        #expect(pair.decoder.linkClusters([pair.promptInfo], timeout: .seconds(3)) == (.success, [.success]))
        try pair.finish()
    }

    @Test func aFloodOfStalledHandshakesDoesNotKeepADecoderOut() throws {
        let pair = try LinkedPair(link: false)
        let endpoint = pair.promptInfo.remoteIPInfos[0]
        let capacity = PendingHandshakes.defaultCapacity
        let flood = try (0..<capacity + 16).map { _ in
            try Self.stalledHello(to: endpoint, payload: 256, sent: 40)
        }
        defer { for socket in flood { socket.close() } }
        // The decoder's handshake takes the place of the oldest stalled one.
        let (status, statuses) = pair.decoder.linkClusters([pair.promptInfo], timeout: .seconds(5))
        #expect(status == .success && statuses == [.success])
        // 81 handshakes, 64 places: 17 stalled ones (the oldest, unless the kernel reordered connections that
        // overflowed the listen backlog) were closed to make room, and the others are still waiting.
        var closed = 0
        _ = eventually(within: .seconds(5)) {
            closed = flood.filter { Self.isClosedByPeer($0, before: .now + .milliseconds(1)) }.count
            return closed >= 17
        }
        #expect(closed == 17, "\(closed) stalled handshakes were closed")
        #expect(try pair.prompt.cacheManager.links.handshakes.count <= capacity)
        try Self.pullOne(pair, into: pair.decoder, reqID: 1)
        try pair.finish()
    }
}
