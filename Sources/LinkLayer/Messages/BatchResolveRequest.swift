/// Requester → owner: resolve many whole-slot pulls by key at once (`CacheManager.pullCaches`), all or none.
///
/// It travels in a `batchResolve` frame and is answered by one `grant` frame carrying a `Grant` for the whole
/// batch: one pin, `slots` = the item count, and the items' extents one after the other (item `i` contributes
/// `tensorCount` extents, tensors `0..<tensorCount` of its slot).
///
/// Caps (the frame payload is at most 1 MiB): `maxItems` items and `maxExtents` tensors over all items, so the
/// grant (30 + 20 bytes per extent) stays under 1 MiB. Larger batches are split by the requester.
package struct BatchResolveRequest: Sendable, Hashable {
    /// One pull of the batch: a key (exactly one of `reqID`, `prefixID` is not `UInt64.max`) and what to copy.
    package struct Item: Sendable, Hashable {
        package var reqID: UInt64
        package var prefixID: UInt64
        package var modelID: UInt64
        /// The requester's tensor count: the owner's cache must have exactly as many; every tensor is granted.
        package var tensorCount: UInt32
        /// Bytes of each slot to transfer; the owner refuses if its slots are smaller.
        package var bytesPerSlot: UInt64
        /// Where the requester's slot lives, for the transfer support matrix.
        package var requesterKind: MemoryKind
        /// The requester's index for this item (`pulls[label]`), named in refusals.
        package var label: UInt32

        static let encodedSize = 41

        package init(
            reqID: UInt64, prefixID: UInt64, modelID: UInt64, tensorCount: UInt32, bytesPerSlot: UInt64,
            requesterKind: MemoryKind, label: UInt32
        ) {
            self.reqID = reqID
            self.prefixID = prefixID
            self.modelID = modelID
            self.tensorCount = tensorCount
            self.bytesPerSlot = bytesPerSlot
            self.requesterKind = requesterKind
            self.label = label
        }
    }

    package static let maxItems = 1024
    package static let maxExtents = 1 << 15

    package var items: [Item]

    package init(items: [Item]) { self.items = items }

    /// The extents a grant for this batch must hold.
    package var extentCount: Int { items.reduce(0) { $0 + Int($1.tensorCount) } }

    package func encoded() -> [UInt8] {
        var writer = WireWriter(capacity: 4 + Item.encodedSize * items.count)
        writer.u32(UInt32(items.count))
        for item in items {
            writer.u64(item.reqID)
            writer.u64(item.prefixID)
            writer.u64(item.modelID)
            writer.u32(item.tensorCount)
            writer.u64(item.bytesPerSlot)
            writer.u8(item.requesterKind.rawValue)
            writer.u32(item.label)
        }
        return writer.bytes
    }

    package init(payload: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(payload[...])
        let count = try reader.count(elementSize: Item.encodedSize, limit: Self.maxItems)
        guard count > 0 else { throw .malformed("empty batch resolve") }
        var items: [Item] = []
        items.reserveCapacity(count)
        var extents = 0
        for _ in 0..<count {
            let reqID = try reader.u64()
            let prefixID = try reader.u64()
            let modelID = try reader.u64()
            let tensorCount = try reader.u32()
            guard tensorCount > 0 else { throw .malformed("batch item of 0 tensors") }
            extents += Int(tensorCount)
            guard extents <= Self.maxExtents else { throw .malformed("batch of more than \(Self.maxExtents) tensors") }
            let bytesPerSlot = try reader.u64()
            let kind = try MemoryKind(from: &reader)
            items.append(
                Item(
                    reqID: reqID, prefixID: prefixID, modelID: modelID, tensorCount: tensorCount,
                    bytesPerSlot: bytesPerSlot, requesterKind: kind, label: try reader.u32()))
        }
        self.items = items
        try reader.expectEnd()
    }
}
