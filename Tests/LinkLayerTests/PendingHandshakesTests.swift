import LinkLayer
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A listener's pending handshakes: bounded in number, a stalled one (no hello yet) gives its place to a new
/// connection, and one past its hello is never cut off for a newcomer.
@Suite struct PendingHandshakesTests {
    /// Whether the other end of `socket` was shut down (reading it gives end of stream at once).
    static func isShutDown(_ socket: Socket, waiting: Duration = .seconds(2)) throws -> Bool {
        var inbox = FrameInbox(capacity: 64)
        guard try socket.waitReadable(until: .now + waiting) else { return false }
        return try inbox.fill(from: socket) == 0
    }

    @Test func theOldestStalledHandshakeMakesRoomAndOnesPastTheirHelloAreKept() throws {
        let pending = PendingHandshakes(capacity: 2)
        let pairs = try (0..<4).map { _ in try DescriptorPassingTests.socketPair() }
        defer { for socket in pairs.flatMap({ [$0.0, $0.1] }) { socket.close() } }
        func admit(_ index: Int) -> PendingHandshakes.Ticket? {
            guard case .admitted(let ticket, _) = pending.admit(pairs[index].0) else { return nil }
            return ticket
        }
        let first = try #require(admit(0))
        first.receivedHello()
        let second = try #require(admit(1))
        guard case .admitted(let third, evicted: true) = pending.admit(pairs[2].0) else {
            Issue.record("a third handshake was not admitted in place of the stalled second")
            return
        }
        #expect(try Self.isShutDown(pairs[1].1), "the stalled handshake's connection was not shut down")
        #expect(pending.count == 2)
        second.finish()
        #expect(pending.count == 2, "the evicted handshake's end must not free a second place")
        third.receivedHello()
        guard case .full(let reason) = pending.admit(pairs[3].0) else {
            Issue.record("a handshake past its hello was cut off for a newcomer")
            return
        }
        #expect(reason.contains("2 link handshakes are in progress"), "\(reason)")
        first.finish()
        first.finish()
        #expect(pending.count == 1, "finishing twice frees one place")
        #expect(admit(3) != nil)
        #expect(try !Self.isShutDown(pairs[0].1, waiting: .zero), "a handshake past its hello was shut down")
    }

    @Test func aFrameLongerThanTheLimitIsInvalidOnceItsHeaderIsIn() {
        let header = Array(
            Frame(kind: .hello, requestID: 1, payload: [UInt8](repeating: 0, count: 100)).encoded()
                .prefix(Frame.headerSize))
        #expect(Frame.decode(header[...], limit: 100) == .incomplete)
        guard case .invalid(let reason) = Frame.decode(header[...], limit: 99) else {
            Issue.record("a 100-byte payload passed a 99-byte limit")
            return
        }
        #expect(reason == "payload of 100 bytes exceeds 99")
    }
}
