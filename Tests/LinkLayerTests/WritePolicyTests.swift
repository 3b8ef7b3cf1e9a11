import DeviceRuntime
import LinkLayer
import Synchronization
import Testing
import ThreadSanitizerSupport

/// The owner's side of `accept` and `landed` requests, over a real control connection: a delivery is opened only
/// for a write grant the link holds and has not released, and only for bytes inside that grant's extents; it is
/// finished when the write landed, its grant is released, or the link closes. A link whose plane has the
/// requester write refuses every accept.
@Suite(.timeLimit(.minutes(1))) struct WritePolicyTests {
    /// A delivery that has every byte at once (or never, with `arrives` false) and records its finish.
    final class InstantDelivery: IncomingDelivery {
        let token: UInt64
        let arrives: Bool
        let finished = Atomic<Int>(0)
        init(token: UInt64, arrives: Bool) {
            self.token = token
            self.arrives = arrives
        }
        func wait(until deadline: ContinuousClock.Instant) throws(LinkError) {
            if !arrives { throw LinkError(.timedOut, "the bytes did not arrive") }
        }
        func finish() { finished.add(1, ordering: .relaxed) }
    }

    /// A plane that records the writes it is asked to expect.
    final class ReceivingPlane: DataPlane {
        let receives: Bool
        let arrives: Bool
        let opened = Lock<[(moves: [DeliveryRequest.Move], delivery: InstantDelivery)]>([])
        init(receives: Bool, arrives: Bool = true) {
            self.receives = receives
            self.arrives = arrives
        }
        var remoteRegions: [RegionDescriptor] { [] }
        func transfer<CopyFailure: Error>(
            _ moves: [ExtentMove], _ direction: TransferDirection, copy: ([CopySegment]) throws(CopyFailure) -> Void
        ) throws(TransferFailure<CopyFailure>) {}
        func close(_ reason: CloseReason) {}
        var ownerReceivesWrites: Bool { receives }
        func expectWrite(into moves: [DeliveryRequest.Move]) throws(LinkError) -> any IncomingDelivery {
            opened.withLock { list in
                let delivery = InstantDelivery(token: 1000 + UInt64(list.count), arrives: arrives)
                list.append((moves, delivery))
                return delivery
            }
        }
        var deliveries: [InstantDelivery] { opened.withLock { $0.map(\.delivery) } }
    }

    /// What the owner answered an `accept` with.
    enum Answer: Equatable {
        case token(UInt64)
        case refused(UInt32)
        var token: UInt64? { if case .token(let token) = self { token } else { nil } }
    }

    /// Sends an `accept` of `moves` for `pin`: the token the owner answered with, or the refusal's status.
    static func accept(_ moves: [DeliveryRequest.Move], pin: UInt64, token: UInt64 = 0, on channel: PeerChannel)
        -> Answer
    {
        do throws(LinkError) {
            let reply = try channel.connection.request(
                .accept, DeliveryRequest(pinID: pin, token: token, moves: moves).encoded(), timeout: .seconds(5),
                what: "test")
            guard reply.payload.count == 8 else { return .refused(UInt32.max - 1) }
            return .token(reply.payload.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        } catch {
            guard case .refused(let status) = error.kind else { return .refused(UInt32.max) }
            return .refused(status)
        }
    }

    /// Sends a `landed` for delivery `token` of `pin`; nil when acknowledged, else the refusal's status.
    static func landed(_ token: UInt64, pin: UInt64, on channel: PeerChannel) -> UInt32? {
        do throws(LinkError) {
            _ = try channel.connection.request(
                .landed, DeliveryRequest(pinID: pin, token: token, moves: []).encoded(), timeout: .seconds(5),
                what: "test")
            return nil
        } catch {
            guard case .refused(let status) = error.kind else { return UInt32.max }
            return status
        }
    }

    static let inside = DeliveryRequest.Move(regionID: 0, offset: 4096 + 100, count: 8000, destination: 0)
    static let readPin = DeliveryPolicyTests.readPin
    static let writePin = DeliveryPolicyTests.writePin

    @Test func onlyBytesInsideAHeldWriteGrantAreTakenUntilTheWriteLanded() throws {
        let plane = ReceivingPlane(receives: true)
        let (owner, requester) = try DeliveryPolicyTests.link(plane)
        defer {
            requester.close(.unlinked)
            owner.close(.unlinked)
        }
        // Before any grant; then under a read grant.
        #expect(Self.accept([Self.inside], pin: Self.writePin, on: requester) == .refused(1))
        _ = try DeliveryPolicyTests.resolve(write: false, on: requester)
        #expect(Self.accept([Self.inside], pin: Self.readPin, on: requester) == .refused(1))
        let grant = try DeliveryPolicyTests.resolve(write: true, on: requester)
        #expect(grant.pinID == Self.writePin)
        let outside: [DeliveryRequest.Move] = [
            .init(regionID: 0, offset: 4096 + 100, count: 8093, destination: 0),  // one byte past the end
            .init(regionID: 0, offset: 4095, count: 2, destination: 0),  // one byte before the start
            .init(regionID: 2, offset: 4096, count: 1, destination: 0),  // a region the grant lacks
            .init(regionID: 1, offset: 256, count: 512, destination: 0),
        ]
        for move in outside {
            // The good move comes first: nothing of the request may be opened when any of it is outside.
            #expect(Self.accept([Self.inside, move], pin: Self.writePin, on: requester) == .refused(1), "\(move)")
        }
        // The owner picks the token; a requester naming one, or destinations, or nothing, is refused.
        #expect(Self.accept([Self.inside], pin: Self.writePin, token: 9, on: requester) == .refused(1))
        var aimed = Self.inside
        aimed.destination = 0x10_0000
        #expect(Self.accept([aimed], pin: Self.writePin, on: requester) == .refused(1))
        #expect(Self.accept([], pin: Self.writePin, on: requester) == .refused(1))
        #expect(plane.deliveries.isEmpty)

        let second = DeliveryRequest.Move(regionID: 1, offset: 0, count: 512, destination: 0)
        let token = try #require(Self.accept([Self.inside, second], pin: Self.writePin, on: requester).token)
        #expect(plane.opened.withLock { $0.map(\.moves) } == [[Self.inside, second]])
        let delivery = try #require(plane.deliveries.first)
        #expect(token == delivery.token)
        // A landed for another token or pin is refused and leaves the delivery open.
        #expect(Self.landed(token &+ 1, pin: Self.writePin, on: requester) == 1)
        #expect(Self.landed(token, pin: Self.readPin, on: requester) == 1)
        #expect(delivery.finished.load(ordering: .relaxed) == 0)
        #expect(Self.landed(token, pin: Self.writePin, on: requester) == nil)
        #expect(delivery.finished.load(ordering: .relaxed) == 1)
        // Once landed it is gone; a released write grant opens nothing more.
        #expect(Self.landed(token, pin: Self.writePin, on: requester) == 1)
        requester.release(pinID: Self.writePin, succeeded: true)
        #expect(Self.accept([Self.inside], pin: Self.writePin, on: requester) == .refused(1))
        #expect(plane.deliveries.count == 1)
    }

    @Test func aWriteThatDoesNotLandIsRefusedAndFinished() throws {
        let plane = ReceivingPlane(receives: true, arrives: false)
        let (owner, requester) = try DeliveryPolicyTests.link(plane)
        defer {
            requester.close(.unlinked)
            owner.close(.unlinked)
        }
        _ = try DeliveryPolicyTests.resolve(write: true, on: requester)
        let token = try #require(Self.accept([Self.inside], pin: Self.writePin, on: requester).token)
        #expect(Self.landed(token, pin: Self.writePin, on: requester) == 2)
        #expect(plane.deliveries.first?.finished.load(ordering: .relaxed) == 1)
    }

    @Test func aReleaseOrTheLinkClosingFinishesAnOpenWrite() throws {
        let plane = ReceivingPlane(receives: true)
        let (owner, requester) = try DeliveryPolicyTests.link(plane)
        _ = try DeliveryPolicyTests.resolve(write: true, on: requester)
        _ = try #require(Self.accept([Self.inside], pin: Self.writePin, on: requester).token)
        requester.release(pinID: Self.writePin, succeeded: false)
        // The release is posted; a ping behind it on the same connection is answered after it was handled.
        #expect(requester.answersPing(within: .seconds(5)))
        #expect(plane.deliveries.first?.finished.load(ordering: .relaxed) == 1)

        _ = try DeliveryPolicyTests.resolve(write: true, on: requester)
        _ = try #require(Self.accept([Self.inside], pin: Self.writePin, on: requester).token)
        requester.close(.unlinked)
        owner.close(.unlinked)
        #expect(plane.deliveries.map { $0.finished.load(ordering: .relaxed) } == [1, 1])
    }

    @Test func aLinkWhoseRequesterWritesRefusesEveryAccept() throws {
        let plane = ReceivingPlane(receives: false)
        let (owner, requester) = try DeliveryPolicyTests.link(plane)
        defer {
            requester.close(.unlinked)
            owner.close(.unlinked)
        }
        _ = try DeliveryPolicyTests.resolve(write: true, on: requester)
        #expect(Self.accept([Self.inside], pin: Self.writePin, on: requester) == .refused(1))
        #expect(plane.deliveries.isEmpty)
    }
}
