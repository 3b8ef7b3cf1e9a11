/// One side's UCX data plane as the other needs it (a `ucxOffer` frame of the handshake): its worker's address
/// and, per published region, where it lies in the publisher's address space and its packed remote key.
package struct UCXOffer: Sendable, Hashable {
    package struct Region: Sendable, Hashable {
        package var descriptor: RegionDescriptor
        package var base: UInt64
        /// Empty for a region not registered with UCX (device memory a `UCXStaging` node stages).
        package var remoteKey: [UInt8]

        package init(descriptor: RegionDescriptor, base: UInt64, remoteKey: [UInt8]) {
            self.descriptor = descriptor
            self.base = base
            self.remoteKey = remoteKey
        }
    }

    package var workerAddress: [UInt8]
    package var regions: [Region]

    /// A worker address of UCX 1.x over every transport of a large host takes a few KiB; more is no address.
    package static let maxWorkerAddress = 64 << 10
    /// A packed remote key takes tens to hundreds of bytes per memory domain.
    package static let maxRemoteKey = 4096
    /// The pools and, beside them, registered caller memory (one region per registered tensor: at most 240).
    package static let maxRegions = RegionExchange.maxRegions + 240
    /// The longest encoded offer: one frame (remote keys of tens of bytes each keep real offers far below it).
    package static let maxPayload = min(
        Frame.maxPayload, 4 + maxWorkerAddress + 4 + maxRegions * (RegionDescriptor.encodedSize + 8 + 2 + maxRemoteKey))

    package init(workerAddress: [UInt8], regions: [Region]) {
        self.workerAddress = workerAddress
        self.regions = regions
    }

    package func encoded() -> [UInt8] {
        var writer = WireWriter()
        writer.u32(UInt32(workerAddress.count))
        for byte in workerAddress { writer.u8(byte) }
        writer.u32(UInt32(regions.count))
        for region in regions {
            region.descriptor.encode(into: &writer)
            writer.u64(region.base)
            writer.u16(UInt16(region.remoteKey.count))
            for byte in region.remoteKey { writer.u8(byte) }
        }
        return writer.bytes
    }

    /// Decodes a peer's offer strictly: lengths within the limits above, regions of nonzero size that do not
    /// wrap the address space, a remote key for every host region, no region id twice, nothing after the end.
    package init(payload: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(payload[...])
        let addressLength = try reader.count(elementSize: 1, limit: Self.maxWorkerAddress)
        guard addressLength > 0 else { throw .malformed("an empty UCX worker address") }
        workerAddress = try Self.bytes(addressLength, from: &reader)
        let count = try reader.count(elementSize: RegionDescriptor.encodedSize + 10, limit: Self.maxRegions)
        var regions: [Region] = []
        for _ in 0..<count {
            let descriptor = try RegionDescriptor(from: &reader)
            let base = try reader.u64()
            let keyLength = Int(try reader.u16())
            // An empty key only for device memory UCX was not given (staged), reached only through deliveries.
            guard keyLength <= Self.maxRemoteKey, keyLength > 0 || descriptor.kind == .device else {
                throw .malformed("a remote key of \(keyLength) bytes")
            }
            let key = try Self.bytes(keyLength, from: &reader)
            guard descriptor.size > 0, descriptor.size <= UInt64(Int.max), base != 0,
                base <= UInt64.max - descriptor.size
            else {
                throw .malformed("region \(descriptor.regionID) of \(descriptor.size) bytes at \(base)")
            }
            guard !regions.contains(where: { $0.descriptor.regionID == descriptor.regionID }) else {
                throw .malformed("region \(descriptor.regionID) offered twice")
            }
            regions.append(Region(descriptor: descriptor, base: base, remoteKey: key))
        }
        self.regions = regions
        try reader.expectEnd()
    }

    private static func bytes(_ count: Int, from reader: inout WireReader) throws(ProtocolError) -> [UInt8] {
        guard reader.remaining >= count else { throw .malformed("\(count) bytes announced, \(reader.remaining) left") }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        for _ in 0..<count { bytes.append(try reader.u8()) }
        return bytes
    }
}
