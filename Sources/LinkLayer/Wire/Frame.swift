/// One control-protocol frame: a fixed header and a payload.
///
/// Header (little-endian, 20 bytes): magic `DDL1` (u32), version (u8), kind (u8), reserved (u16, zero),
/// request id (u64), payload length (u32). Requests carry a fresh id; replies carry the id of their request.
package struct Frame: Sendable, Hashable {
    package static let magic: UInt32 = 0x314C_4444  // "DDL1"
    /// 3 since `resolveDelivering`: a peer of another version is refused at its hello, not at its first pull.
    package static let version: UInt8 = 3
    package static let headerSize = 20
    package static let maxPayload = 1 << 20

    package var kind: MessageKind
    package var requestID: UInt64
    package var payload: [UInt8]

    package init(kind: MessageKind, requestID: UInt64, payload: [UInt8]) {
        self.kind = kind
        self.requestID = requestID
        self.payload = payload
    }

    package func encoded() -> [UInt8] {
        var writer = WireWriter(capacity: Self.headerSize + payload.count)
        writer.u32(Self.magic)
        writer.u8(Self.version)
        writer.u8(kind.rawValue)
        writer.u16(0)
        writer.u64(requestID)
        writer.u32(UInt32(payload.count))
        writer.raw(payload)
        return writer.bytes
    }

    package enum Decoded: Sendable, Hashable {
        /// A whole frame and how many bytes it took.
        case frame(Frame, consumed: Int)
        /// More bytes are needed; nothing is wrong yet.
        case incomplete
        /// The bytes cannot be a frame of this protocol; the connection must be dropped.
        case invalid(String)
    }

    /// Decodes the frame at the start of `bytes`; a payload longer than `limit` (at most `maxPayload`) is
    /// invalid as soon as the header is in. Pure; never traps on any input.
    package static func decode(_ bytes: ArraySlice<UInt8>, limit: Int = maxPayload) -> Decoded {
        var reader = WireReader(bytes)
        guard reader.remaining >= headerSize else {
            // Reject a wrong magic as soon as its bytes are in.
            let prefix = Array(bytes.prefix(4))
            let expected = withUnsafeBytes(of: magic.littleEndian) { Array($0.prefix(prefix.count)) }
            return prefix == expected ? .incomplete : .invalid("bad magic")
        }
        do {
            guard try reader.u32() == magic else { return .invalid("bad magic") }
            let version = try reader.u8()
            guard version == Self.version else {
                return .invalid("protocol version \(version), expected \(Self.version)")
            }
            let rawKind = try reader.u8()
            guard let kind = MessageKind(rawValue: rawKind) else { return .invalid("unknown message kind \(rawKind)") }
            guard try reader.u16() == 0 else { return .invalid("reserved header bits set") }
            let requestID = try reader.u64()
            let length = Int(try reader.u32())
            let limit = min(limit, maxPayload)
            guard length <= limit else { return .invalid("payload of \(length) bytes exceeds \(limit)") }
            guard reader.remaining >= length else { return .incomplete }
            let start = bytes.startIndex + headerSize
            let frame = Frame(kind: kind, requestID: requestID, payload: Array(bytes[start..<start + length]))
            return .frame(frame, consumed: headerSize + length)
        } catch {
            return .invalid("\(error)")
        }
    }
}

/// What a frame carries.
package enum MessageKind: UInt8, Sendable, CaseIterable {
    case hello = 1
    case welcome = 2
    case resolve = 3
    case grant = 4
    case release = 5
    case unlink = 6
    case ping = 7
    case ack = 8
    /// A refused request (`Refusal`).
    case refusal = 9
    /// A batch of resolves answered by one grant (`BatchResolveRequest`).
    case batchResolve = 10
    /// Link authentication, server → client: a nonce to prove the link secret over (`LinkChallenge`).
    case challenge = 11
    /// Link authentication, either way: a proof of the link secret (`LinkProof`).
    case proof = 12
    /// One side's UCX worker address and regions, in the handshake of a link over UCX (`UCXOffer`).
    case ucxOffer = 13
    /// Requester → owner: send these granted bytes into my memory (`DeliveryRequest`), answered by an ack.
    case deliver = 14
    /// Requester → owner, where the owner receives writes: open a delivery into these granted bytes of mine
    /// (`DeliveryRequest`, token 0), answered by an ack carrying the delivery's token (u64).
    case accept = 15
    /// Requester → owner: every byte of delivery `token` of grant `pinID` is sent (`DeliveryRequest`, no moves),
    /// answered by an ack once they all landed.
    case landed = 16
    /// Requester → owner, where the owner delivers reads: resolve a slot read and send its bytes before the grant
    /// (`DeliveringResolve`), answered by the grant or a refusal.
    case resolveDelivering = 17
}
