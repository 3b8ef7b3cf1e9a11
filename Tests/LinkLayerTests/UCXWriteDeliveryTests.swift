import DeviceRuntime
import LinkLayer
import Testing

/// Writes the owner receives over UCX (the pusher's eager active messages into a delivery the owner opened): the
/// bytes land exactly in the owner's expected ranges, nothing lands once the delivery is finished, and a write
/// outside the owner's offered regions opens nothing.
@Suite(.timeLimit(.minutes(1))) struct UCXWriteDeliveryTests {
    static let size = UCXDataPlaneTests.size

    static func moves(_ moves: [ExtentMove]) -> [DeliveryRequest.Move] {
        moves.map {
            .init(regionID: $0.remote.regionID, offset: $0.remote.offset, count: UInt64($0.count), destination: 0)
        }
    }

    @Test(arguments: [false, true])
    func writtenBytesLandExactlyWhereTheOwnerExpectsThemAndNothingAfter(tcp: Bool) throws {
        let (ownerNode, pusherNode) = (try UCXDataPlaneTests.node(tcp: tcp), try UCXDataPlaneTests.node(tcp: tcp))
        let (remote, local) = (UCXDataPlaneTests.buffer(seed: 0), UCXDataPlaneTests.buffer(seed: 23))
        defer {
            remote.deallocate()
            local.deallocate()
        }
        let (owner, pusher) = try UCXDeliveryTests.planes(
            owner: ownerNode, requester: pusherNode, remote: remote, local: local)
        #expect(owner.ownerReceivesWrites && pusher.ownerReceivesWrites)
        let base = UInt(bitPattern: local.baseAddress)
        let writes = [
            ExtentMove(local: base, remote: Grant.Extent(regionID: 7, offset: 4096, length: 8192), count: 8192),
            ExtentMove(
                local: base + 20_000, remote: Grant.Extent(regionID: 7, offset: 40_000, length: 20_000), count: 12_000),
        ]
        let delivery = try owner.expectWrite(into: Self.moves(writes))
        try pusher.send(writes, token: delivery.token)
        try delivery.wait(until: .now.advanced(by: .seconds(5)))
        delivery.finish()
        #expect(Array(remote[4096..<12_288]) == Array(local[0..<8192]))
        #expect(Array(remote[40_000..<52_000]) == Array(local[20_000..<32_000]))
        #expect(remote[0..<4096].allSatisfy { $0 == 0 } && remote[12_288..<40_000].allSatisfy { $0 == 0 })
        #expect(remote[52_000...].allSatisfy { $0 == 0 })

        // The same write again under the finished token, then a probe under a fresh one: messages of one endpoint
        // arrive in order, so once the probe is in, the late write was dropped.
        let late = ExtentMove(local: base, remote: Grant.Extent(regionID: 7, offset: 0, length: 4096), count: 4096)
        let lateDelivery = try owner.expectWrite(into: Self.moves([late]))
        lateDelivery.finish()
        try pusher.send([late], token: lateDelivery.token)
        let probe = ExtentMove(
            local: base + 100, remote: Grant.Extent(regionID: 7, offset: 60_000, length: 64), count: 64)
        let probeDelivery = try owner.expectWrite(into: Self.moves([probe]))
        try pusher.send([probe], token: probeDelivery.token)
        try probeDelivery.wait(until: .now.advanced(by: .seconds(5)))
        probeDelivery.finish()
        #expect(remote[0..<4096].allSatisfy { $0 == 0 }, "bytes after the write ended were written")
        #expect(Array(remote[60_000..<60_064]) == Array(local[100..<164]))
        owner.close(.unlinked)
        pusher.close(.unlinked)
    }

    @Test func aWriteOutsideTheOwnersRegionsOpensNothing() throws {
        let (ownerNode, pusherNode) = (try UCXDataPlaneTests.node(tcp: true), try UCXDataPlaneTests.node(tcp: true))
        let (remote, local) = (UCXDataPlaneTests.buffer(seed: 0), UCXDataPlaneTests.buffer(seed: 29))
        defer {
            remote.deallocate()
            local.deallocate()
        }
        let (owner, pusher) = try UCXDeliveryTests.planes(
            owner: ownerNode, requester: pusherNode, remote: remote, local: local)
        let bad: [DeliveryRequest.Move] = [
            .init(regionID: 8, offset: 0, count: 64, destination: 0),  // no such region
            .init(regionID: 7, offset: UInt64(Self.size) - 8, count: 64, destination: 0),  // past its end
            .init(regionID: 7, offset: UInt64(Self.size) + 1, count: 1, destination: 0),
        ]
        for move in bad {
            do throws(LinkError) {
                let delivery = try owner.expectWrite(into: [
                    .init(regionID: 7, offset: 0, count: 64, destination: 0), move,
                ])
                delivery.finish()
                Issue.record("\(move) was opened")
            } catch {
                #expect(error.kind == .protocolViolation && error.message.contains("outside what this side offered"))
            }
        }
        owner.close(.unlinked)
        pusher.close(.unlinked)
    }
}
