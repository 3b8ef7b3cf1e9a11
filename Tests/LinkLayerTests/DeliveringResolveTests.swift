import DeviceRuntime
import LinkLayer
import Synchronization
import Testing
import ThreadSanitizerSupport

/// A slot read's resolve that brings its bytes (`resolveDelivering`, where the owner delivers reads): decoded
/// strictly; the owner sends exactly the first `bytesPerSlot` bytes of each granted extent into the named
/// destinations before the grant, nothing when the grant does not match or the link's requester reads for itself,
/// and gives the grant back when the delivery fails; over UCX the bytes land exactly there.
@Suite(.timeLimit(.minutes(1))) struct DeliveringResolveTests {
    typealias Policy = DeliveryPolicyTests

    static func read(bytesPerSlot: UInt64 = 512, tensors: Range<Int> = 0..<2) -> ResolveRequest {
        ResolveRequest(
            target: .key(reqID: 4, prefixID: .max, modelID: 0), write: false, tensors: tensors,
            bytesPerSlot: bytesPerSlot, requesterKind: .host, requesterIsBlocks: false, blocks: [])
    }

    static let destinations: [UInt64] = [0x10_0000, 0x20_0000]

    @Test func aDeliveringResolveRoundTripsAndIsDecodedStrictly() throws {
        let good = DeliveringResolve(resolve: Self.read(), token: 9, tensorCount: 2, destinations: Self.destinations)
        #expect(try DeliveringResolve(payload: good.encoded()) == good)
        var write = Self.read()
        write.write = true
        var blocks = Self.read()
        blocks.requesterIsBlocks = true
        blocks.blocks = [1]
        let refused: [(String, [UInt8])] = [
            (
                "a write",
                DeliveringResolve(resolve: write, token: 9, tensorCount: 0, destinations: Self.destinations)
                    .encoded()
            ),
            (
                "blocks",
                DeliveringResolve(resolve: blocks, token: 9, tensorCount: 0, destinations: Self.destinations)
                    .encoded()
            ),
            (
                "0 bytes per slot",
                DeliveringResolve(
                    resolve: Self.read(bytesPerSlot: 0), token: 9, tensorCount: 0, destinations: Self.destinations
                ).encoded()
            ),
            (
                "one destination for two tensors",
                DeliveringResolve(
                    resolve: Self.read(), token: 9, tensorCount: 0, destinations: [0x10_0000]
                ).encoded()
            ),
            ("a trailing byte", good.encoded() + [0]),
            ("a short resolve", Array(good.encoded().dropLast())),
        ]
        for (name, payload) in refused {
            #expect(throws: ProtocolError.self, "\(name)") { try DeliveringResolve(payload: payload) }
        }
    }

    /// The moves sent under a grant of `Policy.extents` (4096 + 8192 bytes of region 0, 512 of region 1).
    @Test func theOwnerSendsTheGrantedSlotsBeforeItsGrantAndNothingWhenTheyDoNotMatch() throws {
        let plane = Policy.RecordingPlane(delivers: true)
        let (owner, requester) = try Policy.link(plane)
        defer {
            requester.close(.unlinked)
            owner.close(.unlinked)
        }
        let answer = try requester.grantOrRefusal(
            DeliveringResolve(resolve: Self.read(), token: 9, tensorCount: 2, destinations: Self.destinations))
        #expect(try answer.get().pinID == Policy.readPin)
        let expected = DeliveryRequest(
            pinID: Policy.readPin, token: 9,
            moves: [
                .init(regionID: 0, offset: 4096, count: 512, destination: Self.destinations[0]),
                .init(regionID: 1, offset: 0, count: 512, destination: Self.destinations[1]),
            ])
        #expect(plane.delivered.withLock { $0 } == [expected])
        // Granted, but not as required: another tensor count, or a slot longer than an extent. Nothing is sent.
        let mismatched = [
            DeliveringResolve(resolve: Self.read(), token: 10, tensorCount: 3, destinations: Self.destinations),
            DeliveringResolve(
                resolve: Self.read(bytesPerSlot: 513), token: 11, tensorCount: 0, destinations: Self.destinations),
        ]
        for request in mismatched {
            let grant = try requester.grantOrRefusal(request).get()
            #expect(grant.pinID == Policy.readPin)
            #expect(request.delivery(for: grant) == nil)
        }
        #expect(plane.delivered.withLock { $0 } == [expected])
    }

    @Test func aLinkWhoseRequesterReadsRefusesEveryDeliveringResolve() throws {
        let plane = Policy.RecordingPlane(delivers: false)
        let (owner, requester) = try Policy.link(plane)
        defer {
            requester.close(.unlinked)
            owner.close(.unlinked)
        }
        let answer = try requester.grantOrRefusal(
            DeliveringResolve(resolve: Self.read(), token: 9, tensorCount: 0, destinations: Self.destinations))
        #expect(answer.refusalStatus == 1)
        #expect(plane.delivered.withLock { $0.isEmpty })
    }

    /// A plane whose deliveries fail.
    final class FailingPlane: DataPlane {
        var remoteRegions: [RegionDescriptor] { [] }
        func transfer<CopyFailure: Error>(
            _ moves: [ExtentMove], _ direction: TransferDirection, copy: ([CopySegment]) throws(CopyFailure) -> Void
        ) throws(TransferFailure<CopyFailure>) {}
        func close(_ reason: CloseReason) {}
        var ownerDeliversReads: Bool { true }
        func deliver(_ request: DeliveryRequest) throws(LinkError) {
            throw LinkError(.closed, "the peer's endpoint failed")
        }
    }

    /// Grants `grant` to every resolve and records the releases it is told of.
    final class RecordingService: LinkService {
        let grant: Grant
        let releases = Lock<[ReleaseNotice]>([])
        init(granting grant: Grant) { self.grant = grant }
        func resolve(_ request: ResolveRequest) -> Result<Grant, Refusal> { .success(grant) }
        func resolveBatch(_ request: BatchResolveRequest) -> Result<Grant, Refusal> {
            Policy.FixedGrants().resolveBatch(request)
        }
        func release(_ notice: ReleaseNotice) { releases.withLock { $0.append(notice) } }
        func expectsPromptRequest(copying bytes: UInt64) -> Bool { false }
        func refusal(forMalformed problem: String) -> Refusal { Refusal(status: 1, message: problem) }
        func refusal(forFailedDelivery problem: String) -> Refusal { Refusal(status: 2, message: problem) }
        func linkClosed(_ reason: CloseReason) {}
    }

    @Test func aDeliveryThatFailsIsRefusedAndItsGrantGivenBack() throws {
        let service = RecordingService(
            granting: Grant(
                pinID: Policy.readPin, kind: .host, isBlocks: false, stride: 8192, slots: 1, tensorCount: 2,
                extents: Policy.extents))
        let (owner, requester) = try Policy.link(FailingPlane(), service: service)
        defer {
            requester.close(.unlinked)
            owner.close(.unlinked)
        }
        let answer = try requester.grantOrRefusal(
            DeliveringResolve(resolve: Self.read(), token: 9, tensorCount: 0, destinations: Self.destinations))
        #expect(answer.refusalStatus == 2)
        #expect(service.releases.withLock { $0 } == [ReleaseNotice(pinID: Policy.readPin, succeeded: false)])
    }

    /// Over UCX (TCP), through `PeerChannel.resolveDelivering`: the grant's slots land exactly at the destinations.
    @Test func overUCXTheGrantedSlotsLandExactlyWithTheGrant() throws {
        let (ownerNode, requesterNode) = (try UCXDataPlaneTests.node(tcp: true), try UCXDataPlaneTests.node(tcp: true))
        let (remote, local) = (UCXDataPlaneTests.buffer(seed: 17), UCXDataPlaneTests.buffer(seed: 0))
        defer {
            remote.deallocate()
            local.deallocate()
        }
        let (ownerPlane, requesterPlane) = try UCXDeliveryTests.planes(
            owner: ownerNode, requester: requesterNode, remote: remote, local: local)
        let region7 = Grant(
            pinID: 3, kind: .host, isBlocks: false, stride: 4096, slots: 1, tensorCount: 2,
            extents: [.init(regionID: 7, offset: 4096, length: 4096), .init(regionID: 7, offset: 20_000, length: 4096)])
        let (owner, requester) = try Policy.link(
            ownerPlane, service: RecordingService(granting: region7), requesterPlane: requesterPlane)
        defer {
            requester.close(.unlinked)
            owner.close(.unlinked)
        }
        let base = UInt(bitPattern: local.baseAddress)
        let answer = try requester.resolveDelivering(
            Self.read(bytesPerSlot: 3000), into: [base + 100, base + 9000], tensorCount: 2, timeout: .seconds(5),
            what: "test")
        let delivery = try #require(answer.delivery)
        try delivery.wait(until: answer.deadline)
        delivery.finish()
        requester.release(pinID: answer.grant.pinID, succeeded: true)
        var expected = [UInt8](repeating: 0, count: local.count)
        expected[100..<3100] = ArraySlice(remote[4096..<7096])
        expected[9000..<12_000] = ArraySlice(remote[20_000..<23_000])
        #expect(Array(local) == expected)
        // A grant that does not match brings nothing, and says so.
        let unmatched = try requester.resolveDelivering(
            Self.read(bytesPerSlot: 3000), into: [base, base + 9000], tensorCount: 3, timeout: .seconds(5),
            what: "test")
        #expect(unmatched.delivery == nil)
        requester.release(pinID: unmatched.grant.pinID, succeeded: false)
        #expect(Array(local) == expected)
    }
}

extension PeerChannel {
    /// Sends `request` as a `resolveDelivering` frame: the grant, or the refusal as a failure.
    fileprivate func grantOrRefusal(_ request: DeliveringResolve) throws -> Result<Grant, LinkError> {
        let reply: Frame
        do throws(LinkError) {
            reply = try connection.request(.resolveDelivering, request.encoded(), timeout: .seconds(5), what: "test")
        } catch {
            return .failure(error)
        }
        return .success(try Grant(payload: reply.payload))
    }
}

extension Result<Grant, LinkError> {
    /// The refusal's status, nil for a grant or another failure.
    fileprivate var refusalStatus: UInt32? {
        guard case .failure(let error) = self, case .refused(let status) = error.kind else { return nil }
        return status
    }
}
