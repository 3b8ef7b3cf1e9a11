/// A memory region one side publishes to its peer (a pool): the peer reaches it through the data plane.
package struct RegionDescriptor: Sendable, Hashable {
    package var regionID: UInt32
    package var kind: MemoryKind
    package var size: UInt64

    package static let encodedSize = 13

    package init(regionID: UInt32, kind: MemoryKind, size: UInt64) {
        self.regionID = regionID
        self.kind = kind
        self.size = size
    }

    package func encode(into writer: inout WireWriter) {
        writer.u32(regionID)
        writer.u8(kind.rawValue)
        writer.u64(size)
    }

    package init(from reader: inout WireReader) throws(ProtocolError) {
        regionID = try reader.u32()
        kind = try MemoryKind(from: &reader)
        size = try reader.u64()
    }
}
