import BlockPool
import DeviceRuntime
import LinkLayer
import Testing

@testable import DataDist

#if canImport(Glibc)
import Glibc
#endif

/// A hand-written client speaking the control protocol asks for what it must not get. The owner refuses each
/// request with the right status, grants exactly the bytes of a named slot when it does grant, keeps the link
/// usable after a malformed request, and drops a connection that breaks the framing without losing state.
///
/// The linked peer maps the owner's pools read-only (as an RDMA or HCCS peer has the registered memory): the
/// protection is that a DataDist peer only ever copies what a grant covers, and a grant never exceeds a cache the
/// peer named.
@Suite(.timeLimit(.minutes(1))) struct MaliciousClientTests {
    /// A raw protocol client: does the handshake by hand and offers no pools. After the handshake its control
    /// channel is the Unix socket the owner connected to (memfd exchange), or the TCP connection of its hello
    /// (UCX), as for a real peer.
    struct RawPeer {
        let channel: Socket
        var inbox = FrameInbox()
        var nextID: UInt64 = 100
        var poolCount = 0
        /// Over UCX, the peer's own worker (the owner connects an endpoint to it during the handshake).
        var node: UCXNode?
        /// Over UCX, the owner's offer (its regions and where they lie).
        var offer: UCXOffer?

        init(endpoint: IPEndpoint, clusterID: UInt64, expecting owner: UInt64, transport: TestTransport = .sharedMemory)
            throws
        {
            let deadline = ContinuousClock.now.advanced(by: .seconds(3))
            guard transport == .sharedMemory || transport == .aclIPC else {
                let (tcp, offer, node) = try scriptedUCXHello(
                    to: endpoint, clusterID: clusterID, expecting: owner, transport: transport, until: deadline)
                (channel, poolCount, self.node, self.offer) = (tcp, offer.regions.count, node, offer)
                let welcome = try nextFrame()
                #expect(welcome.kind == .welcome)
                return
            }
            let (tcp, unix) = try scriptedHello(
                to: endpoint, clusterID: clusterID, expecting: owner, until: deadline)
            defer { tcp.close() }
            channel = unix
            let (header, _) = try unix.receive(count: 4, until: deadline)
            poolCount = Int(header[0])
            for _ in 0..<poolCount {
                let (_, fd) = try unix.receive(count: RegionDescriptor.encodedSize, until: deadline)
                #expect(fd >= 0)
                Socket(fd: fd).close()  // this client never maps anything
            }
            try unix.send([0, 0, 0, 0], passing: -1)
            let welcome = try nextFrame()
            #expect(welcome.kind == .welcome)
        }

        mutating func nextFrame() throws -> Frame {
            while true {
                if case .frame(let frame, _) = inbox.next() { return frame }
                _ = try channel.waitReadable(until: nil)
                try #require(try inbox.fill(from: channel) != 0, "the owner closed the connection")
            }
        }

        /// Sends a message that gets no reply (a release).
        func post(_ kind: MessageKind, _ payload: [UInt8]) throws {
            try channel.sendAll(Frame(kind: kind, requestID: 0, payload: payload).encoded())
        }

        mutating func request(_ kind: MessageKind, _ payload: [UInt8]) throws -> Frame {
            nextID += 1
            try channel.sendAll(Frame(kind: kind, requestID: nextID, payload: payload).encoded())
            let reply = try nextFrame()
            #expect(reply.requestID == nextID)
            return reply
        }

        /// The status of a refused request (nil if it was granted).
        mutating func refusal(of request: ResolveRequest) throws -> LLMStatusCode? {
            let reply = try self.request(.resolve, request.encoded())
            guard reply.kind == .refusal else { return nil }
            return LLMStatusCode(rawValue: try Refusal(payload: reply.payload).status)
        }
    }

    static func resolve(
        _ target: ResolveTarget, tensors: Range<Int> = 0..<2, bytes: UInt64 = 64, write: Bool = false,
        blocks: [UInt32] = []
    ) -> ResolveRequest {
        ResolveRequest(
            target: target, write: write, tensors: tensors, bytesPerSlot: bytes, requesterKind: .device,
            requesterIsBlocks: !blocks.isEmpty, blocks: blocks)
    }

    @Test(arguments: TestTransport.all) func everyForbiddenRequestIsRefusedAndGrantsAreExact(
        transport: TestTransport
    ) throws {
        let pair = try LinkedPair(link: false, transport: transport)
        let prompt = try pair.prompt.cacheManager
        let keyed = try prompt.allocateCache(
            CacheDesc(numTensors: 2, shape: [4, 16], dataType: .int32), keys: [CacheKey(promptClusterID: 1, reqID: 1)])
        let unkeyed = try prompt.allocateCache(CacheDesc(numTensors: 2, shape: [4, 16], dataType: .int32))
        let blocks = try prompt.allocateBlocksCache(
            CacheDesc(numTensors: 2, shape: [8, 16], dataType: .int32), key: BlocksCacheKey(clusterID: 1, modelID: 4))
        var peer = try RawPeer(
            endpoint: pair.promptInfo.remoteIPInfos[0], clusterID: 66, expecting: 1, transport: transport)
        // Over ACL IPC the pool goes only by key, and only to a peer that announces key sharing (this one does not).
        #expect(peer.poolCount == (transport == .aclIPC ? 0 : 1))

        let refused: [(ResolveRequest, LLMStatusCode)] = [
            (Self.resolve(.key(reqID: 2, prefixID: .max, modelID: 0)), .kvCacheNotExist),  // unbound key
            (Self.resolve(.key(reqID: 1, prefixID: .max, modelID: 9)), .kvCacheNotExist),  // other model
            (Self.resolve(.key(reqID: 1, prefixID: 3, modelID: 0)), .paramInvalid),  // two ids
            (Self.resolve(.slot(cacheID: 999, batchIndex: 0)), .kvCacheNotExist),  // foreign cache id
            // not bound, not accessible
            (Self.resolve(.slot(cacheID: unkeyed.cacheID, batchIndex: 0)), .kvCacheNotExist),
            (Self.resolve(.slot(cacheID: keyed.cacheID, batchIndex: 4)), .kvCacheNotExist),  // slot out of range
            (Self.resolve(.key(reqID: 1, prefixID: .max, modelID: 0), tensors: 1..<3), .paramInvalid),  // tensor 2
            (Self.resolve(.key(reqID: 1, prefixID: .max, modelID: 0), bytes: 65), .paramInvalid),  // beyond the slot
            (Self.resolve(.key(reqID: 1, prefixID: .max, modelID: 0), write: true), .paramInvalid),  // write
            (Self.resolve(.blocks(modelID: 4), blocks: [8]), .paramInvalid),  // block out of range
            (Self.resolve(.blocks(modelID: 5), blocks: [0]), .kvCacheNotExist),  // other model's blocks
        ]
        for (request, status) in refused {
            #expect(try peer.refusal(of: request) == status, "\(request.target)")
        }
        #expect(prompt.audit().pinnedByPeers == 0)

        // Malformed requests are refused and the link stays usable.
        #expect(try peer.request(.resolve, [1, 2, 3]).kind == .refusal)
        try peer.post(.release, ReleaseNotice(pinID: 12345, succeeded: true).encoded())
        try peer.post(.release, [9, 9])
        #expect(try peer.request(.ping, []).kind == .ack)

        // A grant covers exactly the named slot of each tensor, inside the shared pool.
        let pool = try #require(prompt.resources.devicePool)
        let grantFrame = try peer.request(
            .resolve, Self.resolve(.slot(cacheID: keyed.cacheID, batchIndex: 0)).encoded())
        let grant = try Grant(payload: grantFrame.payload)
        #expect(grant.extents.count == 2)
        for (tensor, extent) in grant.extents.enumerated() {
            #expect(extent.offset == UInt64(keyed.tensorAddresses[tensor] - pool.region.address))
            #expect(extent.length == 64)
        }
        #expect(prompt.audit().pinnedByPeers == 1)
        #expect(prompt.audit().boundKeys == 1, "the grant took the key")
        try peer.post(.release, ReleaseNotice(pinID: grant.pinID, succeeded: false).encoded())
        #expect(try peer.request(.ping, []).kind == .ack, "releases are handled in order, before this ping")
        #expect(prompt.audit().pinnedByPeers == 0)
        #expect(prompt.audit().boundKeys == 2, "a failed transfer gives the key back")

        // Breaking the framing drops the connection; the owner keeps serving and holds nothing for it.
        _ = try peer.request(.resolve, Self.resolve(.blocks(modelID: 4), blocks: [1]).encoded())
        #expect(prompt.audit().pinnedByPeers == 1)
        try peer.channel.sendAll(Array("GET / HTTP/1.1\r\n\r\n".utf8))
        var dropped = false
        for _ in 0..<200 where !dropped {
            dropped = prompt.audit().pinnedByPeers == 0
            if !dropped { usleep(5000) }
        }
        #expect(dropped, "the pin of the dropped connection was not released")
        peer.channel.close()
        #expect(pair.decoder.linkClusters([pair.promptInfo]) == (.success, [.success]))

        try prompt.deallocateCache(keyed)
        try prompt.deallocateCache(unkeyed)
        try prompt.deallocateBlocksCache(blocks)
        try prompt.removeCacheKey(CacheKey(promptClusterID: 1, reqID: 1))
        try pair.finish()
    }

    static func batchItem(_ reqID: UInt64, tensors: UInt32 = 2, bytes: UInt64 = 64, label: UInt32)
        -> BatchResolveRequest.Item
    {
        .init(
            reqID: reqID, prefixID: .max, modelID: 0, tensorCount: tensors, bytesPerSlot: bytes, requesterKind: .device,
            label: label)
    }

    /// Batch resolves: a bad item refuses the whole batch and takes nothing; a grant covers exactly the named
    /// slots, in order; a peer that dies holding a batch grant gives every key back.
    @Test(arguments: TestTransport.all) func batchResolvesGrantExactlyTheNamedSlotsOrNothing(
        transport: TestTransport
    ) throws {
        let pair = try LinkedPair(link: false, transport: transport)
        let prompt = try pair.prompt.cacheManager
        let keys = (1...4).map { CacheKey(promptClusterID: 1, reqID: UInt64($0)) }
        let cache = try prompt.allocateCache(CacheDesc(numTensors: 2, shape: [4, 16], dataType: .int32), keys: keys)
        var peer = try RawPeer(
            endpoint: pair.promptInfo.remoteIPInfos[0], clusterID: 66, expecting: 1, transport: transport)
        func refusal(_ items: [BatchResolveRequest.Item]) throws -> Refusal? {
            let reply = try peer.request(.batchResolve, BatchResolveRequest(items: items).encoded())
            return reply.kind == .refusal ? try Refusal(payload: reply.payload) : nil
        }
        let refused: [([BatchResolveRequest.Item], LLMStatusCode, String)] = [
            ([Self.batchItem(1, label: 0), Self.batchItem(9, label: 1)], .kvCacheNotExist, "pulls[1]"),  // unbound key
            ([Self.batchItem(1, label: 0), Self.batchItem(1, label: 7)], .paramInvalid, "pulls[7]"),  // same key twice
            // 1 of 2 tensors
            ([Self.batchItem(2, tensors: 1, label: 3), Self.batchItem(1, label: 4)], .paramInvalid, "pulls[3]"),
            // beyond the slot
            ([Self.batchItem(2, label: 0), Self.batchItem(1, bytes: 65, label: 5)], .paramInvalid, "pulls[5]"),
        ]
        for (items, status, mention) in refused {
            let failure = try #require(try refusal(items), "\(mention) was granted")
            #expect(failure.status == status.rawValue && failure.message.contains(mention), "\(failure.message)")
            #expect(
                prompt.audit().pinnedByPeers == 0 && prompt.audit().boundKeys == 4, "a refused batch took something")
        }
        #expect(try peer.request(.batchResolve, [1, 0, 0, 0]).kind == .refusal, "truncated batch")

        let pool = try #require(prompt.resources.devicePool)
        let slots = [3, 1]
        let reply = try peer.request(
            .batchResolve,
            BatchResolveRequest(items: slots.map { Self.batchItem(UInt64($0 + 1), label: UInt32($0)) }).encoded())
        let grant = try Grant(payload: reply.payload)
        #expect(grant.slots == 2 && grant.extents.count == 4)
        for (item, slot) in slots.enumerated() {
            for tensor in 0..<2 {
                let extent = grant.extents[item * 2 + tensor]
                #expect(
                    extent.offset == UInt64(cache.tensorAddresses[tensor] - pool.region.address) + UInt64(slot * 64))
                #expect(extent.length == 64)
            }
        }
        #expect(prompt.audit().pinnedByPeers == 1, "one pin for the batch")
        #expect(prompt.audit().boundKeys == 2, "the grant took keys 4 and 2")
        peer.channel.close()
        #expect(
            eventually { prompt.audit().pinnedByPeers == 0 && prompt.audit().boundKeys == 4 },
            "the dead peer's batch was given back: \(prompt.audit())")
        for key in keys { try prompt.removeCacheKey(key) }
        try prompt.deallocateCache(cache)
        #expect(prompt.audit().isClean)
        try pair.finish()
    }

    /// A peer whose region exchange offers a pool the owner could not rely on: a file that is not sealed
    /// against shrinking (so the peer could truncate it under the owner's copies).
    /// Registered caller memory over UCX: the owner publishes each remote-accessible registered tensor as a
    /// region of exactly its bytes, grants exactly the named slot inside it, refuses what lies outside it or is
    /// not remote-accessible, and after an unregister grants nothing of it.
    @Test(arguments: [TestTransport.ucx, .ucxTCP]) func registeredMemoryIsGrantedOnlyInsideTheNamedSlot(
        transport: TestTransport
    ) throws {
        let pair = try LinkedPair(link: false, transport: transport)
        let prompt = try pair.prompt.cacheManager
        let desc = CacheDesc(numTensors: 2, shape: [4, 16], dataType: .int32)
        let (memory, hidden) = (CallerMemory(tensors: 2, bytes: 256), CallerMemory(tensors: 2, bytes: 256))
        defer {
            memory.free()
            hidden.free()
        }
        let registered = try prompt.registerCache(
            desc, addresses: memory.addresses, keys: [CacheKey(promptClusterID: 1, reqID: 1)])
        let unshared = try prompt.registerCache(
            desc, addresses: hidden.addresses, keys: [CacheKey(promptClusterID: 1, reqID: 2)], remoteAccessible: false)
        var peer = try RawPeer(
            endpoint: pair.promptInfo.remoteIPInfos[0], clusterID: 66, expecting: 1, transport: transport)
        let offer = try #require(peer.offer)
        let published = offer.regions.filter { $0.descriptor.regionID >= 16 }
        #expect(published.map(\.base) == memory.addresses.map(UInt64.init), "only the remote-accessible tensors")
        #expect(published.allSatisfy { $0.descriptor.size == 256 }, "each region is exactly one tensor")

        let grant = try Grant(
            payload: try peer.request(
                .resolve, Self.resolve(.slot(cacheID: registered.cacheID, batchIndex: 2)).encoded()
            )
            .payload)
        #expect(grant.extents.map(\.regionID) == published.map(\.descriptor.regionID))
        #expect(grant.extents.allSatisfy { $0.offset == 128 && $0.length == 64 })
        try peer.post(.release, ReleaseNotice(pinID: grant.pinID, succeeded: true).encoded())

        let refused: [(ResolveRequest, LLMStatusCode)] = [
            (Self.resolve(.slot(cacheID: registered.cacheID, batchIndex: 4)), .kvCacheNotExist),  // past the batch
            // past the slot
            (Self.resolve(.slot(cacheID: registered.cacheID, batchIndex: 3), bytes: 65), .paramInvalid),
            (Self.resolve(.slot(cacheID: registered.cacheID, batchIndex: 0), tensors: 1..<3), .paramInvalid),
            (Self.resolve(.slot(cacheID: registered.cacheID, batchIndex: 0), write: true), .paramInvalid),
            (Self.resolve(.key(reqID: 2, prefixID: .max, modelID: 0)), .featureNotEnabled),  // not remote-accessible
            (Self.resolve(.slot(cacheID: unshared.cacheID, batchIndex: 0)), .featureNotEnabled),
        ]
        for (request, status) in refused {
            #expect(try peer.refusal(of: request) == status, "\(request.target)")
        }
        #expect(try peer.request(.ping, []).kind == .ack)
        #expect(prompt.audit().pinnedByPeers == 0)
        try prompt.unregisterCache(registered.cacheID)
        #expect(try peer.refusal(of: Self.resolve(.key(reqID: 1, prefixID: .max, modelID: 0))) == .kvCacheNotExist)
        #expect(
            try peer.refusal(of: Self.resolve(.slot(cacheID: registered.cacheID, batchIndex: 0))) == .kvCacheNotExist)
        peer.channel.close()
        try prompt.unregisterCache(unshared.cacheID)
        try pair.finish()
    }

    @Test func aPeerOfferingAnUnsealedPoolIsRefusedAndTheOwnerServesOn() throws {
        let pair = try LinkedPair(link: false)
        let deadline = ContinuousClock.now.advanced(by: .seconds(3))
        let name = "datadist.test.\(UInt64.random(in: 0...UInt64.max))"
        let unixListener = try Socket.listenUnix(abstractName: name)
        defer { unixListener.close() }
        let tcp = try Socket.connectTCP(SocketEndpoint(pair.promptInfo.remoteIPInfos[0]), until: deadline)
        defer { tcp.close() }
        let hello = Hello(
            clusterID: 9, expectedClusterID: 1, remoteCacheAccessible: false, bootID: HostIdentity.bootID,
            unixSocket: name)
        try tcp.sendAll(Frame(kind: .hello, requestID: 1, payload: hello.encoded()).encoded())
        let unix = try #require(unixListener.accept())
        defer { unix.close() }
        let (header, _) = try unix.receive(count: 4, until: deadline)
        for _ in 0..<Int(header[0]) {
            let (_, fd) = try unix.receive(count: RegionDescriptor.encodedSize, until: deadline)
            Socket(fd: fd).close()
        }
        let path = "/dev/shm/datadist-unsealed-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let file = open(path, O_RDWR | O_CREAT | O_EXCL, 0o600)
        try #require(file >= 0)
        unlink(path)
        defer { close(file) }
        try #require(ftruncate(file, 1 << 20) == 0)
        try unix.send([1, 0, 0, 0], passing: -1)
        // Region 0, host memory, 1 MiB.
        try unix.send([0, 0, 0, 0, 0] + [0, 0, 0x10, 0, 0, 0, 0, 0], passing: file)

        var inbox = FrameInbox()
        let reply = try inbox.receiveFrame(from: tcp, until: deadline)
        #expect(reply.kind == .refusal)
        let refusal = try Refusal(payload: reply.payload)
        #expect(refusal.status == LLMStatusCode.linkFailed.rawValue)
        #expect(refusal.message.contains("pool 0: its descriptor is not sealed against shrinking and growing"))
        let (status, statuses) = pair.decoder.linkClusters([pair.promptInfo], timeout: .seconds(3))
        #expect(status == .success && statuses == [.success])
        try pair.finish()
    }
}
