import DataDistTestSupport
import LinkLayer
import Testing

/// The control protocol's codecs: round trips, and no input of any shape traps or is accepted when malformed.
@Suite struct ProtocolTests {
    static let messages: [(MessageKind, [UInt8])] = [
        (
            .hello,
            Hello(clusterID: 1, expectedClusterID: 2, remoteCacheAccessible: true, bootID: "b", unixSocket: "u")
                .encoded()
        ),
        (.welcome, ClusterIdentifier(7).encoded()),
        (
            .resolve,
            ResolveRequest(
                target: .key(reqID: 5, prefixID: .max, modelID: 3), write: false, tensors: 2..<6, bytesPerSlot: 4096,
                requesterKind: .host, requesterIsBlocks: false, blocks: []
            ).encoded()
        ),
        (
            .resolve,
            ResolveRequest(
                target: .slot(cacheID: -4, batchIndex: 9), write: true, tensors: 0..<1, bytesPerSlot: 1,
                requesterKind: .device, requesterIsBlocks: false, blocks: []
            ).encoded()
        ),
        (
            .resolve,
            ResolveRequest(
                target: .blocks(modelID: 11), write: false, tensors: 0..<122, bytesPerSlot: 0, requesterKind: .device,
                requesterIsBlocks: true, blocks: [1, 5, 7, UInt32.max]
            ).encoded()
        ),
        (
            .grant,
            Grant(
                pinID: 3, kind: .device, isBlocks: true, stride: 131_072, slots: 64, tensorCount: 122,
                extents: [.init(regionID: 0, offset: 65_536, length: 131_072)]
            ).encoded()
        ),
        (.release, ReleaseNotice(pinID: 3, succeeded: true).encoded()),
        (.refusal, Refusal(status: 7, message: "gone").encoded()),
        (.ack, []),
        (
            .batchResolve,
            BatchResolveRequest(items: [
                .init(
                    reqID: 5, prefixID: .max, modelID: 3, tensorCount: 122, bytesPerSlot: 16_384,
                    requesterKind: .device, label: 0),
                .init(
                    reqID: .max, prefixID: 9, modelID: 0, tensorCount: 2, bytesPerSlot: 1, requesterKind: .host,
                    label: 31),
            ]).encoded()
        ),
        (
            .deliver,
            DeliveryRequest(
                pinID: 12, token: .max,
                moves: [
                    .init(regionID: 0, offset: 4096, count: 8192, destination: 0x7f00_0000_0000),
                    .init(regionID: 3, offset: 0, count: 1, destination: 1),
                ]
            ).encoded()
        ),
    ]

    static func batchItem(tensors: UInt32 = 1, label: UInt32 = 0) -> BatchResolveRequest.Item {
        .init(
            reqID: 1, prefixID: .max, modelID: 0, tensorCount: tensors, bytesPerSlot: 64, requesterKind: .device,
            label: label)
    }

    @Test func everyMessageRoundTrips() throws {
        #expect(try Hello(payload: Self.messages[0].1).unixSocket == "u")
        #expect(try ResolveRequest(payload: Self.messages[2].1).tensors == 2..<6)
        #expect(try ResolveRequest(payload: Self.messages[3].1).target == .slot(cacheID: -4, batchIndex: 9))
        #expect(try ResolveRequest(payload: Self.messages[4].1).blocks == [1, 5, 7, UInt32.max])
        #expect(try Grant(payload: Self.messages[5].1).extents.first?.offset == 65_536)
        #expect(try ReleaseNotice(payload: Self.messages[6].1).succeeded)
        #expect(try Refusal(payload: Self.messages[7].1) == Refusal(status: 7, message: "gone"))
        let batch = try BatchResolveRequest(payload: Self.messages[9].1)
        #expect(batch.items.map(\.label) == [0, 31] && batch.items[1].prefixID == 9 && batch.extentCount == 124)
        for (kind, payload) in Self.messages {
            let frame = Frame(kind: kind, requestID: 42, payload: payload)
            let bytes = frame.encoded()
            #expect(Frame.decode(bytes[...]) == .frame(frame, consumed: bytes.count))
            // Every strict prefix is incomplete, never an error or a frame.
            for cut in 0..<bytes.count { #expect(Frame.decode(bytes[..<cut]) == .incomplete) }
        }
    }

    @Test func integersReadLittleEndianFromAnyOffsetOfASlice() throws {
        var writer = WireWriter(capacity: 4)
        writer.u8(0xAB)
        writer.u16(0x0102)
        writer.u32(0x0304_0506)
        writer.u64(0x0708_090A_0B0C_0D0E)
        writer.i64(-2)
        #expect(Array(writer.bytes.prefix(7)) == [0xAB, 0x02, 0x01, 0x06, 0x05, 0x04, 0x03])
        for lead in 0..<9 {
            let bytes = [UInt8](repeating: 0xEE, count: lead) + writer.bytes + [0xEE]
            var reader = WireReader(bytes[lead..<bytes.count - 1])
            #expect(try reader.u8() == 0xAB)
            #expect(try reader.u16() == 0x0102)
            #expect(try reader.u32() == 0x0304_0506)
            #expect(try reader.u64() == 0x0708_090A_0B0C_0D0E)
            #expect(try reader.i64() == -2)
            #expect(throws: ProtocolError.self) { _ = try reader.u8() }
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

    /// The caps keep a batch and its grant inside one frame; beyond them, or empty, a batch does not decode.
    @Test func batchResolvesAreBoundedToOneFrame() throws {
        let largest = BatchResolveRequest(
            items: (0..<BatchResolveRequest.maxItems).map {
                Self.batchItem(tensors: $0 == 0 ? UInt32(BatchResolveRequest.maxExtents - 1023) : 1)
            })
        #expect(largest.extentCount == BatchResolveRequest.maxExtents)
        #expect(largest.encoded().count <= Frame.maxPayload)
        #expect(try BatchResolveRequest(payload: largest.encoded()) == largest)
        let grant = Grant(
            pinID: 1, kind: .device, isBlocks: false, stride: 1, slots: UInt32(BatchResolveRequest.maxItems),
            tensorCount: UInt32(BatchResolveRequest.maxExtents),
            extents: Array(repeating: .init(regionID: 0, offset: 0, length: 1), count: BatchResolveRequest.maxExtents))
        #expect(grant.encoded().count <= Frame.maxPayload)
        let refused: [(String, BatchResolveRequest)] = [
            ("empty", BatchResolveRequest(items: [])),
            (
                "too many items",
                BatchResolveRequest(items: Array(repeating: Self.batchItem(), count: BatchResolveRequest.maxItems + 1))
            ),
            (
                "too many tensors",
                BatchResolveRequest(items: [
                    Self.batchItem(tensors: UInt32(BatchResolveRequest.maxExtents)), Self.batchItem(),
                ])
            ),
            ("0 tensors", BatchResolveRequest(items: [Self.batchItem(tensors: 0)])),
        ]
        for (what, message) in refused {
            #expect(throws: ProtocolError.self, "\(what)") { try BatchResolveRequest(payload: message.encoded()) }
        }
        var badPlacement = BatchResolveRequest(items: [Self.batchItem()]).encoded()
        badPlacement[4 + 36] = 9
        #expect(throws: ProtocolError.self) { try BatchResolveRequest(payload: badPlacement) }
        var lyingCount = BatchResolveRequest(items: [Self.batchItem()]).encoded()
        lyingCount[0] = 2
        #expect(throws: ProtocolError.self) { try BatchResolveRequest(payload: lyingCount) }
    }

    @Test func headersOutOfRangeAreInvalid() {
        var bytes = Frame(kind: .ack, requestID: 1, payload: []).encoded()
        for (index, value) in [
            (0, UInt8(0x00)), (4, Frame.version - 1), (4, Frame.version + 1), (5, 0), (5, 200), (6, 1),
        ] {
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
            if round % 4 == 0, count >= 6 { bytes[4] = Frame.version }
            if round % 8 == 0, count >= 20 {
                bytes.replaceSubrange(5..<20, with: [8, 0, 0] + Array(repeating: 0, count: 8) + [0, 0, 0, 0])
            }
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
        case .hello: (try? Hello(payload: payload))?.encoded()
        case .welcome, .unlink: (try? ClusterIdentifier(payload: payload))?.encoded()
        case .resolve: (try? ResolveRequest(payload: payload))?.encoded()
        case .batchResolve: (try? BatchResolveRequest(payload: payload))?.encoded()
        case .grant: (try? Grant(payload: payload))?.encoded()
        case .release: (try? ReleaseNotice(payload: payload))?.encoded()
        case .refusal: (try? Refusal(payload: payload))?.encoded()
        case .ucxOffer: (try? UCXOffer(payload: payload))?.encoded()
        case .ping, .ack: payload.isEmpty ? [] : nil
        case .challenge: (try? LinkChallenge(payload: payload))?.encoded()
        case .proof: (try? LinkProof(payload: payload))?.encoded()
        case .deliver, .accept, .landed: (try? DeliveryRequest(payload: payload))?.encoded()
        case .resolveDelivering: (try? DeliveringResolve(payload: payload))?.encoded()
        }
    }

    static func decodes(_ kind: MessageKind, _ payload: [UInt8]) -> Bool { reencoded(kind, payload) != nil }
}
