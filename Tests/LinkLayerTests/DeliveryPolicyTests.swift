import DeviceRuntime
import LinkLayer
import Logging
import Synchronization
import Testing
import ThreadSanitizerSupport

/// The owner's side of `deliver` requests, over a real control connection: a delivery is sent only for a read
/// grant the link holds and has not released, and only for bytes inside that grant's extents; anything else is
/// refused and nothing is sent. A link whose plane has the requester read refuses every delivery.
@Suite(.timeLimit(.minutes(1))) struct DeliveryPolicyTests {
    static let readPin: UInt64 = 5
    static let writePin: UInt64 = 6
    static let extents = [
        Grant.Extent(regionID: 0, offset: 4096, length: 8192), Grant.Extent(regionID: 1, offset: 0, length: 512),
    ]

    /// Grants `readPin` (the extents above) for every read, `writePin` for every write.
    struct FixedGrants: LinkService {
        func resolve(_ request: ResolveRequest) -> Result<Grant, Refusal> {
            .success(
                Grant(
                    pinID: request.write ? DeliveryPolicyTests.writePin : DeliveryPolicyTests.readPin, kind: .host,
                    isBlocks: false, stride: 8192, slots: 1, tensorCount: 2, extents: DeliveryPolicyTests.extents))
        }
        func resolveBatch(_ request: BatchResolveRequest) -> Result<Grant, Refusal> {
            .failure(Refusal(status: 1, message: "no batches here"))
        }
        func release(_ notice: ReleaseNotice) {}
        func expectsPromptRequest(copying bytes: UInt64) -> Bool { false }
        func refusal(forMalformed problem: String) -> Refusal { Refusal(status: 1, message: problem) }
        func refusal(forFailedDelivery problem: String) -> Refusal { Refusal(status: 2, message: problem) }
        func linkClosed(_ reason: CloseReason) {}
    }

    /// A plane that records what it is asked to deliver.
    final class RecordingPlane: DataPlane {
        let delivers: Bool
        let delivered = Lock<[DeliveryRequest]>([])
        init(delivers: Bool) { self.delivers = delivers }
        var remoteRegions: [RegionDescriptor] { [] }
        func transfer<CopyFailure: Error>(
            _ moves: [ExtentMove], _ direction: TransferDirection, copy: ([CopySegment]) throws(CopyFailure) -> Void
        ) throws(TransferFailure<CopyFailure>) {}
        func close(_ reason: CloseReason) {}
        var ownerDeliversReads: Bool { delivers }
        func deliver(_ request: DeliveryRequest) throws(LinkError) { delivered.withLock { $0.append(request) } }
    }

    /// The owner's channel (serving `service` with `plane`) and the requester's (with `requesterPlane`), over a
    /// socket pair.
    static func link(
        _ plane: any DataPlane, service: any LinkService = FixedGrants(),
        requesterPlane: any DataPlane = RecordingPlane(delivers: false)
    ) throws -> (owner: PeerChannel, requester: PeerChannel) {
        let (ownerSocket, requesterSocket) = try DescriptorPassingTests.socketPair()
        let logger = Logger(label: "delivery-policy-tests")
        let owner = PeerChannel(
            remoteClusterID: 2, socket: ownerSocket, inbox: FrameInbox(), dataPlane: plane, service: service,
            logger: logger)
        let requester = PeerChannel(
            remoteClusterID: 1, socket: requesterSocket, inbox: FrameInbox(), dataPlane: requesterPlane,
            service: FixedGrants(), logger: logger)
        try owner.start()
        try requester.start()
        return (owner, requester)
    }

    static func resolve(write: Bool, on channel: PeerChannel) throws -> Grant {
        try channel.resolve(
            ResolveRequest(
                target: .slot(cacheID: 1, batchIndex: 0), write: write, tensors: 0..<2, bytesPerSlot: 8192,
                requesterKind: .host, requesterIsBlocks: false, blocks: []),
            timeout: .seconds(5), what: "test")
    }

    /// Sends a `deliver` of `moves` for `pin`; nil when acknowledged, else the refusal's status.
    static func deliver(_ moves: [DeliveryRequest.Move], pin: UInt64, on channel: PeerChannel) -> UInt32? {
        do throws(LinkError) {
            _ = try channel.connection.request(
                .deliver, DeliveryRequest(pinID: pin, token: 77, moves: moves).encoded(), timeout: .seconds(5),
                what: "test")
            return nil
        } catch {
            guard case .refused(let status) = error.kind else { return UInt32.max }
            return status
        }
    }

    static let inside = DeliveryRequest.Move(regionID: 0, offset: 4096 + 100, count: 8000, destination: 0x10_0000)

    @Test func onlyBytesInsideAHeldReadGrantAreSent() throws {
        let plane = RecordingPlane(delivers: true)
        let (owner, requester) = try Self.link(plane)
        defer {
            requester.close(.unlinked)
            owner.close(.unlinked)
        }
        // Before any grant.
        #expect(Self.deliver([Self.inside], pin: Self.readPin, on: requester) == 1)
        let grant = try Self.resolve(write: false, on: requester)
        #expect(grant.pinID == Self.readPin)
        let outside: [DeliveryRequest.Move] = [
            .init(regionID: 0, offset: 4096 + 100, count: 8093, destination: 0x10_0000),  // one byte past the end
            .init(regionID: 0, offset: 4095, count: 2, destination: 0x10_0000),  // one byte before the start
            .init(regionID: 2, offset: 4096, count: 1, destination: 0x10_0000),  // a region the grant lacks
            .init(regionID: 1, offset: 256, count: 512, destination: 0x10_0000),
        ]
        for move in outside {
            // The good move comes first: nothing of the request may be sent when any of it is outside.
            #expect(Self.deliver([Self.inside, move], pin: Self.readPin, on: requester) == 1, "\(move)")
        }
        #expect(plane.delivered.withLock { $0.isEmpty })
        let second = DeliveryRequest.Move(regionID: 1, offset: 0, count: 512, destination: 0x20_0000)
        #expect(Self.deliver([Self.inside, second], pin: Self.readPin, on: requester) == nil)
        #expect(plane.delivered.withLock { $0.map(\.moves) } == [[Self.inside, second]])
        // A write grant delivers nothing; a released read grant neither.
        _ = try Self.resolve(write: true, on: requester)
        #expect(Self.deliver([Self.inside], pin: Self.writePin, on: requester) == 1)
        requester.release(pinID: Self.readPin, succeeded: true)
        #expect(Self.deliver([Self.inside], pin: Self.readPin, on: requester) == 1)
        #expect(plane.delivered.withLock { $0.count } == 1)
    }

    @Test func aLinkWhoseRequesterReadsRefusesEveryDelivery() throws {
        let plane = RecordingPlane(delivers: false)
        let (owner, requester) = try Self.link(plane)
        defer {
            requester.close(.unlinked)
            owner.close(.unlinked)
        }
        _ = try Self.resolve(write: false, on: requester)
        #expect(Self.deliver([Self.inside], pin: Self.readPin, on: requester) == 1)
        #expect(plane.delivered.withLock { $0.isEmpty })
    }
}
