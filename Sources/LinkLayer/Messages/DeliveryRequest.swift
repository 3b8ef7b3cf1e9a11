/// Requester → owner, over a data plane where the owner writes what a read grant allows into the requester's
/// memory (`DataPlane.ownerDeliversReads`): send these bytes of grant `pinID` to the requester, tagged `token`
/// (which the requester's data plane expects). Answered with an `ack` once the bytes are sent, or a refusal.
///
/// Where the owner receives writes (`DataPlane.ownerReceivesWrites`) the same message, as an `accept`, asks the
/// owner to open a delivery into the moves of write grant `pinID` (token 0, destinations 0: the owner picks the
/// token and sends it back); as a `landed` (no moves) it says every byte of delivery `token` is sent.
package struct DeliveryRequest: Sendable, Hashable {
    /// `count` bytes at `offset` of the owner's region `regionID`, for the requester's memory at `destination`.
    package struct Move: Sendable, Hashable {
        package var regionID: UInt32
        package var offset: UInt64
        package var count: UInt64
        package var destination: UInt64

        package init(regionID: UInt32, offset: UInt64, count: UInt64, destination: UInt64) {
            self.regionID = regionID
            self.offset = offset
            self.count = count
            self.destination = destination
        }
    }

    package var pinID: UInt64
    package var token: UInt64
    package var moves: [Move]

    /// Moves per request: its frame stays under `Frame.maxPayload`. Longer transfers take several requests.
    package static let maxMoves = 32768
    static let encodedMoveSize = 28

    package init(pinID: UInt64, token: UInt64, moves: [Move]) {
        self.pinID = pinID
        self.token = token
        self.moves = moves
    }

    package func encoded() -> [UInt8] {
        var writer = WireWriter()
        writer.u64(pinID)
        writer.u64(token)
        writer.u32(UInt32(moves.count))
        for move in moves {
            writer.u32(move.regionID)
            writer.u64(move.offset)
            writer.u64(move.count)
            writer.u64(move.destination)
        }
        return writer.bytes
    }

    /// Decodes strictly: at most `maxMoves` moves, none empty or wrapping, nothing after the end.
    package init(payload: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(payload[...])
        pinID = try reader.u64()
        token = try reader.u64()
        let count = try reader.count(elementSize: Self.encodedMoveSize, limit: Self.maxMoves)
        var moves: [Move] = []
        moves.reserveCapacity(count)
        for _ in 0..<count {
            let move = Move(
                regionID: try reader.u32(), offset: try reader.u64(), count: try reader.u64(),
                destination: try reader.u64())
            guard move.count > 0, move.count <= UInt64.max - move.offset,
                move.count <= UInt64.max - move.destination
            else {
                throw .malformed("a delivery of \(move.count) bytes from offset \(move.offset) to \(move.destination)")
            }
            moves.append(move)
        }
        self.moves = moves
        try reader.expectEnd()
    }

    /// Bytes the request moves.
    package var byteCount: UInt64 { moves.reduce(0) { $0 &+ $1.count } }
}
