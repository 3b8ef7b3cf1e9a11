/// A pool one side offers to its peer: the peer maps it through the descriptor passed over the Unix socket.
struct PoolDescriptor: Sendable, Hashable {
    var poolID: UInt32
    var placement: Placement
    var size: UInt64

    func encode(into writer: inout WireWriter) {
        writer.u32(poolID)
        writer.u8(UInt8(placement.rawValue))
        writer.u64(size)
    }

    static let encodedSize = 13

    init(poolID: UInt32, placement: Placement, size: UInt64) {
        self.poolID = poolID
        self.placement = placement
        self.size = size
    }

    init(from reader: inout WireReader) throws(ProtocolError) {
        poolID = try reader.u32()
        let rawPlacement = try reader.u8()
        guard let placement = Placement(rawValue: UInt32(rawPlacement)) else {
            throw .malformed("placement \(rawPlacement)")
        }
        self.placement = placement
        size = try reader.u64()
    }
}

/// Client → server: open a link.
struct HelloMessage: Sendable, Hashable {
    var clusterID: UInt64
    /// The cluster id the client expects the server to have.
    var expectedClusterID: UInt64
    var remoteCacheAccessible: Bool
    var bootID: String
    /// The client's abstract Unix socket: the server connects to it to exchange pool descriptors.
    var unixSocket: String

    func encoded() -> [UInt8] {
        var writer = WireWriter()
        writer.u64(clusterID)
        writer.u64(expectedClusterID)
        writer.bool(remoteCacheAccessible)
        writer.string(bootID)
        writer.string(unixSocket)
        return writer.bytes
    }

    init(clusterID: UInt64, expectedClusterID: UInt64, remoteCacheAccessible: Bool, bootID: String, unixSocket: String) {
        self.clusterID = clusterID
        self.expectedClusterID = expectedClusterID
        self.remoteCacheAccessible = remoteCacheAccessible
        self.bootID = bootID
        self.unixSocket = unixSocket
    }

    init(payload: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(payload[...])
        clusterID = try reader.u64()
        expectedClusterID = try reader.u64()
        remoteCacheAccessible = try reader.bool()
        bootID = try reader.string()
        unixSocket = try reader.string()
        try reader.expectEnd()
    }
}

/// What a resolve names on the owner's side.
enum ResolveTarget: Sendable, Hashable {
    /// A request or prefix key (`CacheKey`).
    case key(reqID: UInt64, prefixID: UInt64, modelID: UInt64)
    /// A slot addressed directly (`CacheKeyByIdAndIndex`).
    case slot(cacheID: Int64, batchIndex: UInt32)
    /// The blocks cache bound to a model id (`BlocksCacheKey`).
    case blocks(modelID: UInt64)
}

/// Requester → owner: find the cache `target` names, check the transfer fits, pin it, say where it is.
struct ResolveMessage: Sendable, Hashable {
    var target: ResolveTarget
    /// Write access (push) instead of read (pull).
    var write: Bool
    /// Tensors of the source to transfer.
    var tensors: Range<Int>
    /// Bytes of each slot to transfer (slot transfers); the owner refuses if its slots are smaller.
    var bytesPerSlot: UInt64
    /// Where the requester's side of the copy lives, for the transfer support matrix.
    var requesterPlacement: Placement
    var requesterIsBlocks: Bool
    /// Source blocks for a block transfer (empty for slot transfers).
    var blocks: [UInt32]

    static let maxBlocks = 1 << 16

    func encoded() -> [UInt8] {
        var writer = WireWriter()
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
        }
        writer.bool(write)
        writer.u32(UInt32(tensors.lowerBound))
        writer.u32(UInt32(tensors.count))
        writer.u64(bytesPerSlot)
        writer.u8(UInt8(requesterPlacement.rawValue))
        writer.bool(requesterIsBlocks)
        writer.u32(UInt32(blocks.count))
        for block in blocks { writer.u32(block) }
        return writer.bytes
    }

    init(
        target: ResolveTarget, write: Bool, tensors: Range<Int>, bytesPerSlot: UInt64, requesterPlacement: Placement,
        requesterIsBlocks: Bool, blocks: [UInt32]
    ) {
        self.target = target
        self.write = write
        self.tensors = tensors
        self.bytesPerSlot = bytesPerSlot
        self.requesterPlacement = requesterPlacement
        self.requesterIsBlocks = requesterIsBlocks
        self.blocks = blocks
    }

    init(payload: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(payload[...])
        switch try reader.u8() {
        case 0: target = .key(reqID: try reader.u64(), prefixID: try reader.u64(), modelID: try reader.u64())
        case 1: target = .slot(cacheID: try reader.i64(), batchIndex: try reader.u32())
        case 2: target = .blocks(modelID: try reader.u64())
        case let other: throw .malformed("resolve target \(other)")
        }
        write = try reader.bool()
        let start = Int(try reader.u32())
        let count = Int(try reader.u32())
        guard count > 0, count <= 1 << 20 else { throw .malformed("tensor count \(count)") }
        tensors = start..<start + count
        bytesPerSlot = try reader.u64()
        let rawPlacement = try reader.u8()
        guard let placement = Placement(rawValue: UInt32(rawPlacement)) else {
            throw .malformed("placement \(rawPlacement)")
        }
        requesterPlacement = placement
        requesterIsBlocks = try reader.bool()
        let blockCount = try reader.count(elementSize: 4, limit: Self.maxBlocks)
        var blocks: [UInt32] = []
        blocks.reserveCapacity(blockCount)
        for _ in 0..<blockCount { blocks.append(try reader.u32()) }
        self.blocks = blocks
        try reader.expectEnd()
    }
}

/// Owner → requester: the resolved cache, pinned until the matching release.
struct GrantMessage: Sendable, Hashable {
    /// One tensor's accessible bytes inside an owner pool.
    struct Extent: Sendable, Hashable {
        var poolID: UInt32
        var offset: UInt64
        var length: UInt64
    }

    var pinID: UInt64
    var placement: Placement
    var isBlocks: Bool
    /// Bytes of one slot (contiguous) or one block.
    var stride: UInt64
    /// Slots or blocks per tensor.
    var slots: UInt32
    /// Tensors of the source cache.
    var tensorCount: UInt32
    /// The extent of each requested tensor: the slot (slot transfers) or the whole tensor (block transfers).
    var extents: [Extent]

    func encoded() -> [UInt8] {
        var writer = WireWriter()
        writer.u64(pinID)
        writer.u8(UInt8(placement.rawValue))
        writer.bool(isBlocks)
        writer.u64(stride)
        writer.u32(slots)
        writer.u32(tensorCount)
        writer.u32(UInt32(extents.count))
        for extent in extents {
            writer.u32(extent.poolID)
            writer.u64(extent.offset)
            writer.u64(extent.length)
        }
        return writer.bytes
    }

    init(
        pinID: UInt64, placement: Placement, isBlocks: Bool, stride: UInt64, slots: UInt32, tensorCount: UInt32,
        extents: [Extent]
    ) {
        self.pinID = pinID
        self.placement = placement
        self.isBlocks = isBlocks
        self.stride = stride
        self.slots = slots
        self.tensorCount = tensorCount
        self.extents = extents
    }

    init(payload: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(payload[...])
        pinID = try reader.u64()
        let rawPlacement = try reader.u8()
        guard let placement = Placement(rawValue: UInt32(rawPlacement)) else {
            throw .malformed("placement \(rawPlacement)")
        }
        self.placement = placement
        isBlocks = try reader.bool()
        stride = try reader.u64()
        slots = try reader.u32()
        tensorCount = try reader.u32()
        let count = try reader.count(elementSize: 20, limit: 1 << 20)
        var extents: [Extent] = []
        extents.reserveCapacity(count)
        for _ in 0..<count {
            extents.append(Extent(poolID: try reader.u32(), offset: try reader.u64(), length: try reader.u64()))
        }
        self.extents = extents
        try reader.expectEnd()
    }
}

/// Requester → owner, no reply: the transfer is over. On failure the owner gives back what the resolve took.
struct ReleaseMessage: Sendable, Hashable {
    var pinID: UInt64
    var succeeded: Bool

    func encoded() -> [UInt8] {
        var writer = WireWriter()
        writer.u64(pinID)
        writer.bool(succeeded)
        return writer.bytes
    }

    init(pinID: UInt64, succeeded: Bool) {
        self.pinID = pinID
        self.succeeded = succeeded
    }

    init(payload: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(payload[...])
        pinID = try reader.u64()
        succeeded = try reader.bool()
        try reader.expectEnd()
    }
}

/// A refused request: the status and why.
struct FailureMessage: Sendable, Hashable {
    var status: LLMStatusCode
    var message: String

    func encoded() -> [UInt8] {
        var writer = WireWriter()
        writer.u32(status.rawValue)
        writer.string(message)
        return writer.bytes
    }

    init(_ error: LLMError) {
        status = error.status
        message = error.message
    }

    init(payload: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(payload[...])
        status = LLMStatusCode(rawValue: try reader.u32())
        message = try reader.string()
        try reader.expectEnd()
    }

    var error: LLMError { LLMError(status, message) }
}

/// A message that is only a cluster id (welcome, unlink).
struct IdentifierMessage: Sendable, Hashable {
    var value: UInt64

    func encoded() -> [UInt8] {
        var writer = WireWriter()
        writer.u64(value)
        return writer.bytes
    }

    init(_ value: UInt64) { self.value = value }

    init(payload: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(payload[...])
        value = try reader.u64()
        try reader.expectEnd()
    }
}

/// Requester → owner: resolve many whole-slot pulls by key at once (`CacheManager.pullCaches`), all or none.
///
/// It travels as a `resolve` frame whose payload starts with `tag` (a single `ResolveMessage` starts with its
/// target tag, 0 to 2), and is answered by one `grant` frame carrying a `GrantMessage` for the whole batch: one
/// pin, `slots` = the item count, and the items' extents one after the other (item `i` contributes `tensorCount`
/// extents, tensors `0..<tensorCount` of its slot). Reusing the single-resolve frame kinds keeps the connection's
/// dispatch unchanged, including its rule that a grant arriving after its request timed out is released at once.
///
/// Caps (the frame payload is at most 1 MiB): `maxItems` items and `maxExtents` tensors over all items, so the
/// grant (30 + 20 bytes per extent) stays under 1 MiB. Larger batches are split by the requester.
struct ResolveBatchMessage: Sendable, Hashable {
    /// One pull of the batch: a key (exactly one of `reqID`, `prefixID` is not `UInt64.max`) and what to copy.
    struct Item: Sendable, Hashable {
        var reqID: UInt64
        var prefixID: UInt64
        var modelID: UInt64
        /// The requester's tensor count: the owner's cache must have exactly as many; every tensor is granted.
        var tensorCount: UInt32
        /// Bytes of each slot to transfer; the owner refuses if its slots are smaller.
        var bytesPerSlot: UInt64
        /// Where the requester's slot lives, for the transfer support matrix.
        var requesterPlacement: Placement
        /// The requester's index for this item (`pulls[label]`), named in refusals.
        var label: UInt32

        static let encodedSize = 41
    }

    static let tag: UInt8 = 3
    static let maxItems = 1024
    static let maxExtents = 1 << 15

    var items: [Item]

    func encoded() -> [UInt8] {
        var writer = WireWriter()
        writer.u8(Self.tag)
        writer.u32(UInt32(items.count))
        for item in items {
            writer.u64(item.reqID)
            writer.u64(item.prefixID)
            writer.u64(item.modelID)
            writer.u32(item.tensorCount)
            writer.u64(item.bytesPerSlot)
            writer.u8(UInt8(item.requesterPlacement.rawValue))
            writer.u32(item.label)
        }
        return writer.bytes
    }

    init(items: [Item]) { self.items = items }

    init(payload: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(payload[...])
        let tag = try reader.u8()
        guard tag == Self.tag else { throw .malformed("batch resolve tag \(tag)") }
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
            let rawPlacement = try reader.u8()
            guard let placement = Placement(rawValue: UInt32(rawPlacement)) else {
                throw .malformed("placement \(rawPlacement)")
            }
            items.append(
                Item(
                    reqID: reqID, prefixID: prefixID, modelID: modelID, tensorCount: tensorCount,
                    bytesPerSlot: bytesPerSlot, requesterPlacement: placement, label: try reader.u32()))
        }
        self.items = items
        try reader.expectEnd()
    }

    /// The extents a grant for this batch must hold.
    var extentCount: Int { items.reduce(0) { $0 + Int($1.tensorCount) } }
}

extension GrantMessage {
    /// Bytes the grant lets the peer copy (an upper bound for block transfers, which take some of them).
    var grantedBytes: UInt64 { extents.reduce(0) { $0 &+ $1.length } }
}
