@testable import DataDist
import Testing

/// The control protocol's codecs: round trips, and no input of any shape traps or is accepted when malformed.
@Suite struct ProtocolTests {
    static let messages: [(MessageKind, [UInt8])] = [
        (.hello, HelloMessage(clusterID: 1, expectedClusterID: 2, remoteCacheAccessible: true, bootID: "b", unixSocket: "u").encoded()),
        (.welcome, IdentifierMessage(7).encoded()),
        (.resolve, ResolveMessage(
            target: .key(reqID: 5, prefixID: .max, modelID: 3), write: false, tensors: 2..<6, bytesPerSlot: 4096,
            requesterPlacement: .host, requesterIsBlocks: false, blocks: []).encoded()),
        (.resolve, ResolveMessage(
            target: .slot(cacheID: -4, batchIndex: 9), write: true, tensors: 0..<1, bytesPerSlot: 1,
            requesterPlacement: .device, requesterIsBlocks: false, blocks: []).encoded()),
        (.resolve, ResolveMessage(
            target: .blocks(modelID: 11), write: false, tensors: 0..<122, bytesPerSlot: 0, requesterPlacement: .device,
            requesterIsBlocks: true, blocks: [1, 5, 7, UInt32.max]).encoded()),
        (.grant, GrantMessage(
            pinID: 3, placement: .device, isBlocks: true, stride: 131_072, slots: 64, tensorCount: 122,
            extents: [.init(poolID: 0, offset: 65_536, length: 131_072)]).encoded()),
        (.release, ReleaseMessage(pinID: 3, succeeded: true).encoded()),
        (.failure, FailureMessage(LLMError(.kvCacheNotExist, "gone")).encoded()),
        (.ack, []),
    ]

    @Test func everyMessageRoundTrips() throws {
        #expect(try HelloMessage(payload: Self.messages[0].1).unixSocket == "u")
        #expect(try ResolveMessage(payload: Self.messages[2].1).tensors == 2..<6)
        #expect(try ResolveMessage(payload: Self.messages[3].1).target == .slot(cacheID: -4, batchIndex: 9))
        #expect(try ResolveMessage(payload: Self.messages[4].1).blocks == [1, 5, 7, UInt32.max])
        #expect(try GrantMessage(payload: Self.messages[5].1).extents.first?.offset == 65_536)
        #expect(try ReleaseMessage(payload: Self.messages[6].1).succeeded)
        #expect(try FailureMessage(payload: Self.messages[7].1).error == LLMError(.kvCacheNotExist, "gone"))
        for (kind, payload) in Self.messages {
            let frame = Frame(kind: kind, requestID: 42, payload: payload)
            let bytes = frame.encoded()
            #expect(Frame.decode(bytes[...]) == .frame(frame, consumed: bytes.count))
            // Every strict prefix is incomplete, never an error or a frame.
            for cut in 0..<bytes.count { #expect(Frame.decode(bytes[..<cut]) == .incomplete) }
        }
    }

    @Test func truncatedOrExtendedPayloadsAreRejected() {
        for (kind, payload) in Self.messages where !payload.isEmpty {
            for cut in 0..<payload.count {
                #expect(!Self.decodes(kind, Array(payload[..<cut])), "\(kind) cut at \(cut)")
            }
            #expect(!Self.decodes(kind, payload + [0]), "\(kind) with a trailing byte")
        }
    }

    @Test func headersOutOfRangeAreInvalid() {
        var bytes = Frame(kind: .ack, requestID: 1, payload: []).encoded()
        for (index, value) in [(0, UInt8(0x00)), (4, 2), (5, 0), (5, 200), (6, 1)] {
            var corrupted = bytes
            corrupted[index] = value
            guard case .invalid = Frame.decode(corrupted[...]) else {
                Issue.record("byte \(index) = \(value) was accepted")
                continue
            }
        }
        bytes.replaceSubrange(16..<20, with: [0xFF, 0xFF, 0xFF, 0x7F])  // 2 GiB payload
        if case .invalid = Frame.decode(bytes[...]) {} else { Issue.record("an oversized payload was accepted") }
        #expect(Frame.decode([0x44, 0x44, 0x4C, 0x31][...]) == .incomplete)
        if case .invalid = Frame.decode([0x47, 0x45, 0x54, 0x20][...]) {} else { Issue.record("HTTP was accepted") }
    }

    @Test func randomBytesNeverTrapAndWhateverDecodesEncodesBack() {
        var generator = SplitMix64(seed: 77)
        var framesDecoded = 0
        for round in 0..<20_000 {
            let count = Int(generator.next() % 64)
            var bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            if round % 2 == 0, count >= 4 { bytes.replaceSubrange(0..<4, with: [0x44, 0x44, 0x4C, 0x31]) }
            if round % 4 == 0, count >= 6 { bytes[4] = 1 }
            if round % 8 == 0, count >= 20 { bytes.replaceSubrange(5..<20, with: [8, 0, 0] + Array(repeating: 0, count: 8) + [0, 0, 0, 0]) }
            if case .frame(let frame, let consumed) = Frame.decode(bytes[...]) {
                framesDecoded += 1
                #expect(frame.encoded() == Array(bytes.prefix(consumed)))
            }
            for kind in MessageKind.allCases {
                if let encoded = Self.reencoded(kind, bytes) { #expect(encoded == bytes, "\(kind)") }
            }
        }
        #expect(framesDecoded > 0, "the generator never produced a valid frame")
    }

    /// The payload decoded as `kind` and encoded again, nil when it does not decode.
    static func reencoded(_ kind: MessageKind, _ payload: [UInt8]) -> [UInt8]? {
        switch kind {
        case .hello: (try? HelloMessage(payload: payload))?.encoded()
        case .welcome, .unlink: (try? IdentifierMessage(payload: payload))?.encoded()
        case .resolve: (try? ResolveMessage(payload: payload))?.encoded()
        case .grant: (try? GrantMessage(payload: payload))?.encoded()
        case .release: (try? ReleaseMessage(payload: payload))?.encoded()
        case .failure: (try? FailureMessage(payload: payload))?.encoded()
        case .ping, .ack: payload.isEmpty ? [] : nil
        }
    }

    static func decodes(_ kind: MessageKind, _ payload: [UInt8]) -> Bool { reencoded(kind, payload) != nil }
}
