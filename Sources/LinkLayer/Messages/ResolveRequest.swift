/// What a resolve names on the owner's side.
package enum ResolveTarget: Sendable, Hashable {
    /// A request or prefix key (`CacheKey`).
    case key(reqID: UInt64, prefixID: UInt64, modelID: UInt64)
    /// A slot addressed directly (`CacheKeyByIdAndIndex`).
    case slot(cacheID: Int64, batchIndex: UInt32)
    /// The blocks cache bound to a model id (`BlocksCacheKey`).
    case blocks(modelID: UInt64)
    /// The `bytesPerSlot` bytes at an address of the owner's memory, which must lie inside one tensor of one of
    /// its caches (a push to raw destination addresses).
    case address(UInt64)
}

/// Requester → owner: find the cache `target` names, check the transfer fits, pin it, say where it is.
package struct ResolveRequest: Sendable, Hashable {
    package var target: ResolveTarget
    /// Write access (push) instead of read (pull).
    package var write: Bool
    /// Tensors of the source to transfer.
    package var tensors: Range<Int>
    /// Bytes of each slot to transfer (slot transfers); the owner refuses if its slots are smaller.
    package var bytesPerSlot: UInt64
    /// Where the requester's side of the copy lives, for the transfer support matrix.
    package var requesterKind: MemoryKind
    package var requesterIsBlocks: Bool
    /// Source blocks for a block transfer (empty for slot transfers).
    package var blocks: [UInt32]

    package static let maxBlocks = 1 << 16

    package init(
        target: ResolveTarget, write: Bool, tensors: Range<Int>, bytesPerSlot: UInt64, requesterKind: MemoryKind,
        requesterIsBlocks: Bool, blocks: [UInt32]
    ) {
        self.target = target
        self.write = write
        self.tensors = tensors
        self.bytesPerSlot = bytesPerSlot
        self.requesterKind = requesterKind
        self.requesterIsBlocks = requesterIsBlocks
        self.blocks = blocks
    }

    package func encoded() -> [UInt8] {
        var writer = WireWriter(capacity: 48 + 4 * blocks.count)
        switch target {
        case .key(let reqID, let prefixID, let modelID):
            writer.u8(0)
            writer.u64(reqID)
            writer.u64(prefixID)
            writer.u64(modelID)
        case .slot(let cacheID, let batchIndex):
            writer.u8(1)
            writer.i64(cacheID)
            writer.u32(batchIndex)
        case .blocks(let modelID):
            writer.u8(2)
            writer.u64(modelID)
        case .address(let address):
            writer.u8(3)
            writer.u64(address)
        }
        writer.bool(write)
        writer.u32(UInt32(tensors.lowerBound))
        writer.u32(UInt32(tensors.count))
        writer.u64(bytesPerSlot)
        writer.u8(requesterKind.rawValue)
        writer.bool(requesterIsBlocks)
        writer.u32(UInt32(blocks.count))
        for block in blocks { writer.u32(block) }
        return writer.bytes
    }

    package init(payload: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(payload[...])
        switch try reader.u8() {
        case 0: target = .key(reqID: try reader.u64(), prefixID: try reader.u64(), modelID: try reader.u64())
        case 1: target = .slot(cacheID: try reader.i64(), batchIndex: try reader.u32())
        case 2: target = .blocks(modelID: try reader.u64())
        case 3: target = .address(try reader.u64())
        case let other: throw .malformed("resolve target \(other)")
        }
        write = try reader.bool()
        let start = Int(try reader.u32())
        let count = Int(try reader.u32())
        guard count > 0, count <= 1 << 20 else { throw .malformed("tensor count \(count)") }
        tensors = start..<start + count
        bytesPerSlot = try reader.u64()
        requesterKind = try MemoryKind(from: &reader)
        requesterIsBlocks = try reader.bool()
        let blockCount = try reader.count(elementSize: 4, limit: Self.maxBlocks)
        var blocks: [UInt32] = []
        blocks.reserveCapacity(blockCount)
        for _ in 0..<blockCount { blocks.append(try reader.u32()) }
        self.blocks = blocks
        try reader.expectEnd()
    }
}
