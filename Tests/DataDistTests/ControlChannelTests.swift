import Dispatch
import Foundation
import LinkLayer
import Testing

@testable import DataDist

#if canImport(Glibc)
import Glibc
import Synchronization
import ThreadSanitizerSupport
#endif

/// The shared reading of a control connection: a requester reads its own reply while it polls, hands reading
/// back to the reader thread when it stops polling, and replies reach the right requester whoever read them.
/// The owner here is hand-written so it can answer late on purpose.
@Suite(.timeLimit(.minutes(1))) struct ControlChannelTests {
    /// An owner that links like a DataDist instance (no pools) and refuses every resolve with
    /// `.kvCacheNotExist`, naming the request id it was asked for, after `delay(reqID)`.
    final class SlowOwner: Sendable {
        let endpoint: IPEndpoint
        private let listener: Socket
        /// Frames sent; the lock keeps the delayed replies, sent from their own threads, whole on the socket.
        private let sent = Lock(0)

        init(delay: @escaping @Sendable (UInt64) -> Duration) throws {
            let (listener, port) = try Socket.listenTCP(SocketEndpoint(host: "127.0.0.1", port: 0))
            self.listener = listener
            endpoint = IPEndpoint(host: "127.0.0.1", port: port)
            Thread.detachNewThread { [self] in
                guard let tcp = listener.accept() else { return }
                defer { tcp.close() }
                try? serve(tcp, delay: delay)
            }
        }

        func stop() { listener.shutdown() }

        private func serve(_ tcp: Socket, delay: @escaping @Sendable (UInt64) -> Duration) throws {
            // Reads until the peer closes, which ends `serve` by throwing.
            var inbox = FrameInbox()
            let helloFrame = try inbox.receiveFrame(from: tcp, until: nil)
            let hello = try Hello(payload: helloFrame.payload)
            let unix = try Socket.connectUnix(abstractName: hello.unixSocket, until: .now + .seconds(3))
            defer { unix.close() }
            try unix.send([0, 0, 0, 0], passing: -1)  // no pools
            let deadline = ContinuousClock.now.advanced(by: .seconds(3))
            let (header, _) = try unix.receive(count: 4, until: deadline)
            for _ in 0..<Int(header[0]) {
                let (_, fd) = try unix.receive(count: RegionDescriptor.encodedSize, until: deadline)
                if fd >= 0 { Socket(fd: fd).close() }
            }
            inbox = FrameInbox()
            try send(Frame(kind: .welcome, requestID: 1, payload: ClusterIdentifier(1).encoded()), on: unix)
            while true {
                let frame = try inbox.receiveFrame(from: unix, until: nil)
                switch frame.kind {
                case .resolve:
                    let reqID: UInt64? =
                        if case .key(let reqID, _, _)? = (try? ResolveRequest(payload: frame.payload))?.target {
                            reqID
                        } else { nil }
                    let refusal = LLMError(
                        .kvCacheNotExist, "slow owner: no cache for req \(reqID.map(String.init) ?? "?")")
                    let reply = Frame(kind: .refusal, requestID: frame.requestID, payload: Refusal(refusal).encoded())
                    let wait = delay(reqID ?? 0)
                    let microseconds = UInt32(wait.components.attoseconds / 1_000_000_000_000)
                    Thread.detachNewThread { [self] in
                        usleep(microseconds)
                        try? send(reply, on: unix)
                    }
                case .unlink:
                    try send(Frame(kind: .ack, requestID: frame.requestID, payload: []), on: unix)
                    return
                default:
                    continue
                }
            }
        }

        private func send(_ frame: Frame, on socket: Socket) throws {
            try sent.withLock { count in
                try socket.sendAll(frame.encoded())
                count += 1
            }
        }
    }

    static func decoder() throws -> LLMDataDist {
        var config = LLMConfig()
        config.memoryPool = MemoryPoolConfig(size: 1 << 20)
        config.syncKVTimeout = .seconds(5)
        let decoder = LLMDataDist(role: .decoder, clusterID: 2)
        try decoder.initialize(config, environment: emulatorEnvironment())
        return decoder
    }

    static func pullStatus(_ decoder: LLMDataDist, reqID: UInt64, into cache: Cache) -> LLMError? {
        do {
            try decoder.cacheManager.pullCache(CacheKey(promptClusterID: 1, reqID: reqID), into: cache)
            return nil
        } catch {
            return error
        }
    }

    @Test func aReplyArrivingAfterTheRequesterStoppedPollingStillReachesIt() throws {
        let owner = try SlowOwner { _ in .milliseconds(30) }
        defer { owner.stop() }
        let decoder = try Self.decoder()
        defer { decoder.finalize() }
        let info = LLMClusterInfo(remoteClusterID: 1, remoteIPInfos: [owner.endpoint])
        #expect(decoder.linkClusters([info], timeout: .seconds(3)) == (.success, [.success]))
        let cache = try decoder.cacheManager.allocateCache(CacheDesc(numTensors: 1, shape: [1, 64], dataType: .int32))
        let started = ContinuousClock.now
        let error = try #require(Self.pullStatus(decoder, reqID: 7, into: cache))
        let elapsed = ContinuousClock.now - started
        #expect(error.status == .kvCacheNotExist, "\(error)")
        #expect(error.message.contains("req 7"), "\(error)")
        #expect(elapsed >= .milliseconds(30) && elapsed < .seconds(2), "answered after \(elapsed)")
        try decoder.cacheManager.deallocateCache(cache)
        _ = decoder.unlinkClusters([info])
        #expect(try decoder.cacheManager.audit().orphans == 0)
    }

    @Test func concurrentRequestersEachGetTheirOwnReplyWhoeverReadsIt() throws {
        // Every third reply comes late (after the requesters stop polling); the others at once.
        let owner = try SlowOwner { reqID in reqID % 3 == 0 ? .milliseconds(5) : .zero }
        defer { owner.stop() }
        let decoder = try Self.decoder()
        defer { decoder.finalize() }
        let info = LLMClusterInfo(remoteClusterID: 1, remoteIPInfos: [owner.endpoint])
        #expect(decoder.linkClusters([info], timeout: .seconds(3)) == (.success, [.success]))
        let desc = CacheDesc(numTensors: 1, shape: [1, 64], dataType: .int32)
        let caches = try (0..<4).map { _ in try decoder.cacheManager.allocateCache(desc) }
        let misrouted = Lock<[String]>([])
        DispatchQueue.concurrentPerform(iterations: caches.count) { thread in
            for round in 0..<30 {
                let reqID = UInt64(thread * 1000 + round)
                let error = Self.pullStatus(decoder, reqID: reqID, into: caches[thread])
                if error?.status != .kvCacheNotExist || error?.message.contains("req \(reqID)") != true {
                    misrouted.withLock { $0.append("req \(reqID): \(String(describing: error))") }
                }
            }
        }
        #expect(misrouted.withLock { $0 } == [])
        for cache in caches { try decoder.cacheManager.deallocateCache(cache) }
        _ = decoder.unlinkClusters([info])
        #expect(try decoder.cacheManager.audit().orphans == 0)
    }
}
