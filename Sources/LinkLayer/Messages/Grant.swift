/// Owner → requester: the resolved cache, pinned until the matching release.
package struct Grant: Sendable, Hashable {
    /// One tensor's accessible bytes inside a region the owner published.
    package struct Extent: Sendable, Hashable {
        package var regionID: UInt32
        package var offset: UInt64
        package var length: UInt64

        package init(regionID: UInt32, offset: UInt64, length: UInt64) {
            self.regionID = regionID
            self.offset = offset
            self.length = length
        }
    }

    package var pinID: UInt64
    package var kind: MemoryKind
    package var isBlocks: Bool
    /// Bytes of one slot (contiguous) or one block.
    package var stride: UInt64
    /// Slots or blocks per tensor (a batch grant: its item count).
    package var slots: UInt32
    /// Tensors of the source cache (a batch grant: all extents).
    package var tensorCount: UInt32
    /// The extent of each requested tensor: the slot (slot transfers) or the whole tensor (block transfers).
    package var extents: [Extent]

    package init(
        pinID: UInt64, kind: MemoryKind, isBlocks: Bool, stride: UInt64, slots: UInt32, tensorCount: UInt32,
        extents: [Extent]
    ) {
        self.pinID = pinID
        self.kind = kind
        self.isBlocks = isBlocks
        self.stride = stride
        self.slots = slots
        self.tensorCount = tensorCount
        self.extents = extents
    }

    /// Bytes the grant lets the peer copy (an upper bound for block transfers, which take some of them).
    package var grantedBytes: UInt64 { extents.reduce(0) { $0 &+ $1.length } }

    /// Bytes the peer copies under this grant when it asked for `blocks` blocks (ignored for slot grants):
    /// `blocks` strides of every granted tensor, at most `grantedBytes`.
    package func copiedBytes(blocks: Int) -> UInt64 {
        guard isBlocks else { return grantedBytes }
        let (perTensor, overflow) = UInt64(blocks).multipliedReportingOverflow(by: stride)
        let (all, overflowAll) = perTensor.multipliedReportingOverflow(by: UInt64(extents.count))
        return overflow || overflowAll ? grantedBytes : min(all, grantedBytes)
    }

    package func encoded() -> [UInt8] {
        var writer = WireWriter(capacity: 30 + 20 * extents.count)
        writer.u64(pinID)
        writer.u8(kind.rawValue)
        writer.bool(isBlocks)
        writer.u64(stride)
        writer.u32(slots)
        writer.u32(tensorCount)
        writer.u32(UInt32(extents.count))
        for extent in extents {
            writer.u32(extent.regionID)
            writer.u64(extent.offset)
            writer.u64(extent.length)
        }
        return writer.bytes
    }

    package init(payload: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(payload[...])
        pinID = try reader.u64()
        kind = try MemoryKind(from: &reader)
        isBlocks = try reader.bool()
        stride = try reader.u64()
        slots = try reader.u32()
        tensorCount = try reader.u32()
        let count = try reader.count(elementSize: 20, limit: 1 << 20)
        var extents: [Extent] = []
        extents.reserveCapacity(count)
        for _ in 0..<count {
            extents.append(Extent(regionID: try reader.u32(), offset: try reader.u64(), length: try reader.u64()))
        }
        self.extents = extents
        try reader.expectEnd()
    }
}
