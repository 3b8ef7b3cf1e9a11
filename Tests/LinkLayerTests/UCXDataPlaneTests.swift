import DeviceRuntime
import LinkLayer
import Testing

/// The UCX data plane between two nodes of this process: a peer's offer is decoded strictly, a transfer moves
/// exactly the granted bytes, a grant outside the peer's published regions moves nothing, and a closed plane
/// refuses with `.closed`. UCX is pinned to TCP in some cases (the nodes' own configuration).
@Suite(.timeLimit(.minutes(1))) struct UCXDataPlaneTests {
    static let size = 64 << 10

    /// A buffer of `size` bytes, byte `i` = `(i &* seed) & 0xff`.
    static func buffer(seed: Int) -> UnsafeMutableRawBufferPointer {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
        for index in 0..<size { buffer[index] = UInt8(truncatingIfNeeded: index &* seed) }
        return buffer
    }

    static func node(tcp: Bool) throws -> UCXNode {
        try UCXNode(
            settings: UCXSettings(overrides: tcp ? ["TLS": "tcp"] : [:], transferTimeout: .seconds(5)),
            environment: [:])
    }

    /// `owner` publishes `memory` as region 7; the returned plane of `requester` reaches it.
    static func plane(from requester: UCXNode, to owner: UCXNode, memory: UnsafeMutableRawBufferPointer) throws
        -> UCXDataPlane
    {
        let region = PublishedRegion(
            descriptor: RegionDescriptor(regionID: 7, kind: .host, size: UInt64(size)), fd: -1,
            base: UInt(bitPattern: memory.baseAddress))
        let offer = try owner.offer(of: [region], remoteWrite: true)
        return try UCXDataPlane(
            node: requester, peerClusterID: 1, offer: UCXOffer(payload: offer.encoded()),
            until: .now.advanced(by: .seconds(5)))
    }

    static func transfer(_ plane: UCXDataPlane, _ moves: [ExtentMove], _ direction: TransferDirection)
        throws(TransferFailure<Never>)
    {
        try plane.transfer(moves, direction) { (_: [CopySegment]) throws(Never) in
            Issue.record("UCX moves the bytes itself; the copy engine is never asked")
        }
    }

    @Test(arguments: [false, true])
    func pullsAndPushesMoveExactlyTheGrantedBytes(tcp: Bool) throws {
        let (owner, requester) = (try Self.node(tcp: tcp), try Self.node(tcp: tcp))
        let (remote, local) = (Self.buffer(seed: 7), Self.buffer(seed: 0))
        defer {
            remote.deallocate()
            local.deallocate()
        }
        let plane = try Self.plane(from: requester, to: owner, memory: remote)
        let base = UInt(bitPattern: local.baseAddress)
        let moves = [
            ExtentMove(local: base, remote: Grant.Extent(regionID: 7, offset: 4096, length: 8192), count: 8192),
            ExtentMove(
                local: base + 20_000, remote: Grant.Extent(regionID: 7, offset: 60_000, length: 5536), count: 5536),
        ]
        try Self.transfer(plane, moves, .read)
        #expect(Array(local[0..<8192]) == Array(remote[4096..<12288]))
        #expect(Array(local[20_000..<25_536]) == Array(remote[60_000..<65_536]))
        #expect(local[8192..<20_000].allSatisfy { $0 == 0 } && local[25_536...].allSatisfy { $0 == 0 })
        // Push the pulled bytes elsewhere in the owner's region.
        try Self.transfer(
            plane, [ExtentMove(local: base, remote: Grant.Extent(regionID: 7, offset: 0, length: 100), count: 100)],
            .write)
        #expect(Array(remote[0..<100]) == Array(remote[4096..<4196]))
        plane.close(.unlinked)
    }

    @Test func aGrantOutsideThePublishedRegionsMovesNothing() throws {
        let (owner, requester) = (try Self.node(tcp: false), try Self.node(tcp: false))
        let (remote, local) = (Self.buffer(seed: 3), Self.buffer(seed: 0))
        defer {
            remote.deallocate()
            local.deallocate()
        }
        let plane = try Self.plane(from: requester, to: owner, memory: remote)
        let base = UInt(bitPattern: local.baseAddress)
        let good = ExtentMove(local: base, remote: Grant.Extent(regionID: 7, offset: 0, length: 64), count: 64)
        let bad: [ExtentMove] = [
            ExtentMove(local: base, remote: Grant.Extent(regionID: 8, offset: 0, length: 64), count: 64),  // no region
            ExtentMove(
                local: base, remote: Grant.Extent(regionID: 7, offset: UInt64(Self.size) - 8, length: 64), count: 64),
            ExtentMove(local: base, remote: Grant.Extent(regionID: 7, offset: .max, length: 64), count: 64),
            ExtentMove(local: base, remote: Grant.Extent(regionID: 7, offset: 0, length: 32), count: 64),  // > grant
            ExtentMove(local: base, remote: Grant.Extent(regionID: 7, offset: 0, length: 64), count: -1),
        ]
        for move in bad {
            // The good move comes first: nothing of the batch may move when any of it is outside.
            do throws(TransferFailure<Never>) {
                try Self.transfer(plane, [good, move], .read)
                Issue.record("\(move) was moved")
            } catch {
                guard case .link(let failure) = error else { return }
                #expect(failure.kind == .protocolViolation && failure.message.contains("outside what it shared"))
            }
            #expect(local.allSatisfy { $0 == 0 }, "\(move)")
        }
        try Self.transfer(plane, [good], .read)
        #expect(Array(local[0..<64]) == Array(remote[0..<64]))
        plane.close(.unlinked)
    }

    @Test func aClosedPlaneRefusesWithClosed() throws {
        let (owner, requester) = (try Self.node(tcp: false), try Self.node(tcp: false))
        let (remote, local) = (Self.buffer(seed: 5), Self.buffer(seed: 0))
        defer {
            remote.deallocate()
            local.deallocate()
        }
        let plane = try Self.plane(from: requester, to: owner, memory: remote)
        plane.close(.peerClosed)
        let move = ExtentMove(
            local: UInt(bitPattern: local.baseAddress), remote: Grant.Extent(regionID: 7, offset: 0, length: 64),
            count: 64)
        do throws(TransferFailure<Never>) {
            try Self.transfer(plane, [move], .read)
            Issue.record("a closed plane moved bytes")
        } catch {
            guard case .link(let failure) = error else { return }
            #expect(failure.kind == .closed)
        }
        #expect(local.allSatisfy { $0 == 0 })
    }

    // MARK: the offer

    static func validOffer() -> UCXOffer {
        UCXOffer(
            workerAddress: [1, 2, 3, 4],
            regions: [
                UCXOffer.Region(
                    descriptor: RegionDescriptor(regionID: 1, kind: .device, size: 4096), base: 1 << 20,
                    remoteKey: [9, 9])
            ])
    }

    @Test func anOfferRoundTripsAndEveryTruncationIsRefused() throws {
        let bytes = Self.validOffer().encoded()
        #expect(try UCXOffer(payload: bytes) == Self.validOffer())
        for length in 0..<bytes.count {
            #expect(throws: ProtocolError.self, "\(length) bytes") {
                _ = try UCXOffer(payload: Array(bytes.prefix(length)))
            }
        }
        #expect(throws: ProtocolError.self) { _ = try UCXOffer(payload: bytes + [0]) }
    }

    static func region(id: UInt32 = 1, size: UInt64 = 4096, base: UInt64 = 1 << 20, key: [UInt8] = [9])
        -> UCXOffer.Region
    {
        UCXOffer.Region(descriptor: RegionDescriptor(regionID: id, kind: .host, size: size), base: base, remoteKey: key)
    }

    @Test(arguments: [
        UCXOffer(workerAddress: [], regions: []),
        UCXOffer(workerAddress: [UInt8](repeating: 1, count: UCXOffer.maxWorkerAddress + 1), regions: []),
        UCXOffer(workerAddress: [1], regions: [region(size: 0)]),
        UCXOffer(workerAddress: [1], regions: [region(base: 0)]),
        UCXOffer(workerAddress: [1], regions: [region(size: 4096, base: .max - 100)]),
        UCXOffer(workerAddress: [1], regions: [region(size: .max)]),
        UCXOffer(workerAddress: [1], regions: [region(key: [])]),
        UCXOffer(workerAddress: [1], regions: [region(key: [UInt8](repeating: 2, count: UCXOffer.maxRemoteKey + 1))]),
        UCXOffer(workerAddress: [1], regions: [region(id: 3), region(id: 3)]),
        UCXOffer(
            workerAddress: [1], regions: (0...UInt32(UCXOffer.maxRegions)).map { region(id: $0) }),
    ])
    func anOfferOutsideTheBoundsIsRefused(offer: UCXOffer) {
        #expect(throws: ProtocolError.self) { _ = try UCXOffer(payload: offer.encoded()) }
    }

    @Test func aDeviceRegionWithoutARemoteKeyDecodesAHostOneDoesNot() throws {
        // Staged device memory is offered without a key (UCX was never given it); host memory always has one.
        let staged = UCXOffer.Region(
            descriptor: RegionDescriptor(regionID: 2, kind: .device, size: 4096), base: 1 << 20, remoteKey: [])
        let offer = UCXOffer(workerAddress: [1], regions: [staged, Self.region(id: 3)])
        #expect(try UCXOffer(payload: offer.encoded()) == offer)
        #expect(throws: ProtocolError.self) {
            _ = try UCXOffer(payload: UCXOffer(workerAddress: [1], regions: [Self.region(key: [])]).encoded())
        }
    }

    @Test func anOfferOfThePoolsAndEveryRegisteredTensorDecodes() throws {
        let offer = UCXOffer(
            workerAddress: [1], regions: (0..<UInt32(UCXOffer.maxRegions)).map { Self.region(id: $0, key: [1, 2, 3]) })
        #expect(try UCXOffer(payload: offer.encoded()) == offer)
        #expect(UCXOffer.maxRegions >= RegionExchange.maxRegions + 240)
    }

    /// Registered caller memory is withdrawn once its cache is unregistered: unmapped, and left out of every
    /// later offer, also one that still lists it (made from a snapshot taken before).
    @Test func aWithdrawnRegionIsNeverOfferedAgain() throws {
        let (owner, requester) = (try Self.node(tcp: true), try Self.node(tcp: true))
        let (remote, local) = (Self.buffer(seed: 11), Self.buffer(seed: 0))
        defer {
            remote.deallocate()
            local.deallocate()
        }
        let region = PublishedRegion(
            descriptor: RegionDescriptor(regionID: 20, kind: .device, size: UInt64(Self.size)), fd: -1,
            base: UInt(bitPattern: remote.baseAddress), isCallerMemory: true)
        let offer = try owner.offer(of: [region], remoteWrite: false)
        #expect(offer.regions.map(\.descriptor.regionID) == [20])
        let plane = try UCXDataPlane(
            node: requester, peerClusterID: 1, offer: UCXOffer(payload: offer.encoded()),
            until: .now.advanced(by: .seconds(5)))
        let move = ExtentMove(
            local: UInt(bitPattern: local.baseAddress), remote: Grant.Extent(regionID: 20, offset: 64, length: 512),
            count: 512)
        try Self.transfer(plane, [move], .read)
        #expect(Array(local[0..<512]) == Array(remote[64..<576]))
        plane.close(.unlinked)
        owner.withdraw([20])
        #expect(try owner.offer(of: [region], remoteWrite: false).regions.isEmpty)
    }

    @Test func aHugeAnnouncedAddressLengthIsRefusedWithoutReadingOn() {
        var writer = WireWriter()
        writer.u32(.max)
        #expect(throws: ProtocolError.self) { _ = try UCXOffer(payload: writer.bytes + [1, 2, 3]) }
    }

    static let segments = ["TCP_TX_SEG_SIZE": "512k", "TCP_RX_SEG_SIZE": "512k"]

    @Test func defaultsApplyOnlyWhereNeitherTheEnvironmentNorAnOverrideSetsThem() {
        let settings = UCXSettings(
            overrides: ["TLS": "tcp", "TCP_RX_SEG_SIZE": "128k"], defaults: Self.segments, transferTimeout: .seconds(1))
        let untouched = Dictionary(uniqueKeysWithValues: settings.effective(environment: [:]).map { ($0.0, $0.1) })
        #expect(untouched == ["TLS": "tcp", "TCP_RX_SEG_SIZE": "128k", "TCP_TX_SEG_SIZE": "512k"])
        let userSet = settings.effective(environment: ["UCX_TCP_TX_SEG_SIZE": "16k"])
        #expect(userSet.map(\.0) == ["TCP_RX_SEG_SIZE", "TLS"])
        // TCP's defaults only where UCX may use TCP: a warning on stdout otherwise ("invalid configurations").
        let defaultsOnly = UCXSettings(defaults: Self.segments, transferTimeout: .seconds(1))
        #expect(defaultsOnly.effective(environment: ["UCX_TLS": "shm,cma"]).isEmpty)
        #expect(defaultsOnly.effective(environment: ["UCX_TLS": "^tcp"]).isEmpty)
        #expect(defaultsOnly.effective(environment: ["UCX_TLS": "^shm"]).count == 2)
        #expect(defaultsOnly.effective(environment: ["UCX_TLS": "sm, TCP"]).count == 2)
        #expect(defaultsOnly.effective(environment: [:]).count == 2)
        #expect(UCXSettings.allowsTCP("all") && !UCXSettings.allowsTCP("rc,ud"))
        // DataDist's own defaults are these segments and nonblocking connects, set only where the user left them
        // unset.
        #expect(UCXSettings.tunedDefaults == Self.segments.merging(["TCP_CONN_NB": "y"]) { $1 })
        #expect(UCXSettings(transferTimeout: .seconds(1)).effective(environment: [:]).count == 3)
        #expect(
            UCXSettings(transferTimeout: .seconds(1)).effective(environment: [
                "UCX_TCP_TX_SEG_SIZE": "8k", "UCX_TCP_RX_SEG_SIZE": "64k", "UCX_TCP_CONN_NB": "n",
            ]).isEmpty)
    }

    @Test func aReadOfManyLargeSegmentsOnTCPMovesEveryByte() throws {
        // A transport's variable reaches it (UCX 1.13 takes it without the TCP_ prefix; the context is made).
        let settings = UCXSettings(overrides: ["TLS": "tcp"], defaults: Self.segments, transferTimeout: .seconds(5))
        let (owner, requester) = (
            try UCXNode(settings: settings, environment: [:]), try UCXNode(settings: settings, environment: [:])
        )
        // 4 MiB + 3 bytes: eight 512 KiB segments and a short one.
        let count = (4 << 20) + 3
        let remote = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 64)
        let local = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 64)
        defer {
            remote.deallocate()
            local.deallocate()
        }
        for index in 0..<count { remote[index] = UInt8(truncatingIfNeeded: index &* 13 &+ index >> 12) }
        local.initializeMemory(as: UInt8.self, repeating: 0)
        let region = PublishedRegion(
            descriptor: RegionDescriptor(regionID: 9, kind: .host, size: UInt64(count)), fd: -1,
            base: UInt(bitPattern: remote.baseAddress))
        let offer = try owner.offer(of: [region], remoteWrite: false)
        let plane = try UCXDataPlane(
            node: requester, peerClusterID: 1, offer: UCXOffer(payload: offer.encoded()),
            until: .now.advanced(by: .seconds(5)))
        defer { plane.close(.unlinked) }
        try Self.transfer(
            plane,
            [
                ExtentMove(
                    local: UInt(bitPattern: local.baseAddress),
                    remote: Grant.Extent(regionID: 9, offset: 0, length: UInt64(count)), count: count)
            ], .read)
        #expect(Array(local) == Array(remote))
    }
}
