import DeviceRuntime
import LinkLayer
import Testing

/// Reads the owner delivers over UCX (eager active messages into what the requester's read expects): the bytes
/// land exactly at the expected destinations, bytes under a token the requester did not open land nowhere, and a
/// delivery from outside the owner's offered regions sends nothing.
@Suite(.timeLimit(.minutes(1))) struct UCXDeliveryTests {
    static let size = UCXDataPlaneTests.size

    /// Both sides' planes between `owner` (publishing `remote` as region 7) and `requester` (publishing `local` as
    /// region 2), as a link's handshake makes them.
    static func planes(
        owner: UCXNode, requester: UCXNode, remote: UnsafeMutableRawBufferPointer, local: UnsafeMutableRawBufferPointer
    ) throws -> (owner: UCXDataPlane, requester: UCXDataPlane) {
        func region(_ id: UInt32, _ memory: UnsafeMutableRawBufferPointer) -> PublishedRegion {
            PublishedRegion(
                descriptor: RegionDescriptor(regionID: id, kind: .host, size: UInt64(memory.count)), fd: -1,
                base: UInt(bitPattern: memory.baseAddress))
        }
        let ownerOffer = try owner.offer(of: [region(7, remote)], remoteWrite: false)
        let requesterOffer = try requester.offer(of: [region(2, local)], remoteWrite: false)
        let deadline = ContinuousClock.now.advanced(by: .seconds(5))
        let ownerPlane = try UCXDataPlane(
            node: owner, peerClusterID: 2, offer: requesterOffer, local: ownerOffer.regions, until: deadline)
        let requesterPlane = try UCXDataPlane(
            node: requester, peerClusterID: 1, offer: ownerOffer, local: requesterOffer.regions, until: deadline)
        return (ownerPlane, requesterPlane)
    }

    static func request(_ moves: [ExtentMove], token: UInt64) -> DeliveryRequest {
        DeliveryRequest(
            pinID: 1, token: token,
            moves: moves.map {
                .init(
                    regionID: $0.remote.regionID, offset: $0.remote.offset, count: UInt64($0.count),
                    destination: UInt64($0.local))
            })
    }

    @Test(arguments: [false, true])
    func deliveredBytesLandExactlyWhereTheReadExpectsThem(tcp: Bool) throws {
        let (ownerNode, requesterNode) = (try UCXDataPlaneTests.node(tcp: tcp), try UCXDataPlaneTests.node(tcp: tcp))
        let (remote, local) = (UCXDataPlaneTests.buffer(seed: 11), UCXDataPlaneTests.buffer(seed: 0))
        defer {
            remote.deallocate()
            local.deallocate()
        }
        let (owner, requester) = try Self.planes(
            owner: ownerNode, requester: requesterNode, remote: remote, local: local)
        #expect(owner.ownerDeliversReads && requester.ownerDeliversReads)
        let base = UInt(bitPattern: local.baseAddress)
        let moves = [
            ExtentMove(local: base, remote: Grant.Extent(regionID: 7, offset: 4096, length: 8192), count: 8192),
            ExtentMove(
                local: base + 20_000, remote: Grant.Extent(regionID: 7, offset: 60_000, length: 5536), count: 5536),
        ]
        let delivery = try requester.expectDelivery(of: moves)
        try owner.deliver(Self.request(moves, token: delivery.token))
        try delivery.wait(until: .now.advanced(by: .seconds(5)))
        delivery.finish()
        #expect(Array(local[0..<8192]) == Array(remote[4096..<12288]))
        #expect(Array(local[20_000..<25_536]) == Array(remote[60_000..<65_536]))
        #expect(local[8192..<20_000].allSatisfy { $0 == 0 } && local[25_536...].allSatisfy { $0 == 0 })
        owner.close(.unlinked)
        requester.close(.unlinked)
    }

    /// A delivery of many messages over TCP (at most 1 MiB each; moves whose last message is short): each lands
    /// where its move says, nothing else is written.
    @Test func aDeliveryOfManyMessagesLandsExactly() throws {
        let bytes = 12 << 20
        let (ownerNode, requesterNode) = (try UCXDataPlaneTests.node(tcp: true), try UCXDataPlaneTests.node(tcp: true))
        let remote = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 64)
        let local = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 64)
        defer {
            remote.deallocate()
            local.deallocate()
        }
        for index in 0..<bytes { remote[index] = UInt8(truncatingIfNeeded: (index >> 3) &* 131 &+ index) }
        local.initializeMemory(as: UInt8.self, repeating: 0)
        let (owner, requester) = try Self.planes(
            owner: ownerNode, requester: requesterNode, remote: remote, local: local)
        let base = UInt(bitPattern: local.baseAddress)
        // (local offset, remote offset, count): 5, 3 and 2 messages, the last of each short.
        let parts = [(0, 1 << 20, (4 << 20) + 7), (5 << 20, 100, (3 << 20) - 1), (9 << 20, 9 << 20, (1 << 20) + 4096)]
        let moves = parts.map { to, from, count in
            ExtentMove(
                local: base + UInt(to), remote: Grant.Extent(regionID: 7, offset: UInt64(from), length: UInt64(count)),
                count: count)
        }
        let delivery = try requester.expectDelivery(of: moves)
        try owner.deliver(Self.request(moves, token: delivery.token))
        try delivery.wait(until: .now.advanced(by: .seconds(20)))
        delivery.finish()
        var expected = [UInt8](repeating: 0, count: bytes)
        for (to, from, count) in parts { expected[to..<to + count] = ArraySlice(remote[from..<from + count]) }
        #expect(Array(local) == expected)
        owner.close(.unlinked)
        requester.close(.unlinked)
    }

    @Test func bytesUnderATokenNobodyOpenedLandNowhere() throws {
        let (ownerNode, requesterNode) = (try UCXDataPlaneTests.node(tcp: true), try UCXDataPlaneTests.node(tcp: true))
        let (remote, local) = (UCXDataPlaneTests.buffer(seed: 13), UCXDataPlaneTests.buffer(seed: 0))
        defer {
            remote.deallocate()
            local.deallocate()
        }
        let (owner, requester) = try Self.planes(
            owner: ownerNode, requester: requesterNode, remote: remote, local: local)
        let base = UInt(bitPattern: local.baseAddress)
        let stray = ExtentMove(local: base, remote: Grant.Extent(regionID: 7, offset: 0, length: 4096), count: 4096)
        let expected = ExtentMove(
            local: base + 8192, remote: Grant.Extent(regionID: 7, offset: 0, length: 64), count: 64)
        let delivery = try requester.expectDelivery(of: [expected])
        // Under another token (and a finished one), then the expected bytes: messages of one endpoint arrive in
        // order, so once those are in, the stray ones were dropped.
        try owner.deliver(Self.request([stray], token: delivery.token &+ 1))
        try owner.deliver(Self.request([expected], token: delivery.token))
        try delivery.wait(until: .now.advanced(by: .seconds(5)))
        delivery.finish()
        try owner.deliver(Self.request([stray], token: delivery.token))
        let probe = try requester.expectDelivery(of: [expected])
        try owner.deliver(Self.request([expected], token: probe.token))
        try probe.wait(until: .now.advanced(by: .seconds(5)))
        probe.finish()
        #expect(local[0..<8192].allSatisfy { $0 == 0 }, "bytes of no open delivery were written")
        #expect(Array(local[8192..<8256]) == Array(remote[0..<64]))
        owner.close(.unlinked)
        requester.close(.unlinked)
    }

    @Test func aDeliveryFromOutsideTheOwnersRegionsSendsNothing() throws {
        let (ownerNode, requesterNode) = (try UCXDataPlaneTests.node(tcp: true), try UCXDataPlaneTests.node(tcp: true))
        let (remote, local) = (UCXDataPlaneTests.buffer(seed: 17), UCXDataPlaneTests.buffer(seed: 0))
        defer {
            remote.deallocate()
            local.deallocate()
        }
        let (owner, requester) = try Self.planes(
            owner: ownerNode, requester: requesterNode, remote: remote, local: local)
        let base = UInt64(UInt(bitPattern: local.baseAddress))
        let good = DeliveryRequest.Move(regionID: 7, offset: 0, count: 64, destination: base)
        let bad: [DeliveryRequest.Move] = [
            .init(regionID: 8, offset: 0, count: 64, destination: base),  // no such region
            .init(regionID: 7, offset: UInt64(Self.size) - 8, count: 64, destination: base),  // past its end
            .init(regionID: 7, offset: UInt64(Self.size) + 1, count: 1, destination: base),
        ]
        for move in bad {
            let delivery = try requester.expectDelivery(of: [
                ExtentMove(
                    local: UInt(base), remote: Grant.Extent(regionID: 7, offset: 0, length: 64), count: 64)
            ])
            do throws(LinkError) {
                try owner.deliver(DeliveryRequest(pinID: 1, token: delivery.token, moves: [good, move]))
                Issue.record("\(move) was delivered")
            } catch {
                #expect(error.kind == .protocolViolation && error.message.contains("outside what this side offered"))
            }
            delivery.finish()
            #expect(local.allSatisfy { $0 == 0 }, "\(move)")
        }
        owner.close(.unlinked)
        requester.close(.unlinked)
    }

    @Test func aDeliveryRequestIsDecodedStrictly() throws {
        let valid = DeliveryRequest(
            pinID: 3, token: 9, moves: [.init(regionID: 1, offset: 64, count: 128, destination: 0x1000)])
        #expect(try DeliveryRequest(payload: valid.encoded()) == valid)
        let encoded = valid.encoded()
        for length in 0..<encoded.count {
            #expect(throws: ProtocolError.self) { try DeliveryRequest(payload: Array(encoded.prefix(length))) }
        }
        #expect(throws: ProtocolError.self) { try DeliveryRequest(payload: encoded + [0]) }
        let malformed: [DeliveryRequest.Move] = [
            .init(regionID: 1, offset: 0, count: 0, destination: 0x1000),  // empty
            .init(regionID: 1, offset: .max, count: 2, destination: 0x1000),  // wraps the source
            .init(regionID: 1, offset: 0, count: 2, destination: .max),  // wraps the destination
        ]
        for move in malformed {
            let payload = DeliveryRequest(pinID: 3, token: 9, moves: [move]).encoded()
            #expect(throws: ProtocolError.self, "\(move)") { try DeliveryRequest(payload: payload) }
        }
        var tooMany = WireWriter()
        tooMany.u64(3)
        tooMany.u64(9)
        tooMany.u32(UInt32(DeliveryRequest.maxMoves + 1))
        #expect(throws: ProtocolError.self) { try DeliveryRequest(payload: tooMany.bytes) }
    }
}
