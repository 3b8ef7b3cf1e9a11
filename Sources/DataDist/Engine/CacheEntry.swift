import BlockPool
import Synchronization

/// Which index a key lives in. Request and prefix keys are separate namespaces, as in the reference;
/// blocks keys (one per model id) are kept apart from request keys so a placeholder can never collide.
enum KeyNamespace: Hashable, Sendable {
    case request
    case prefix
    case blocks
}

/// The engine's identity of a key: namespace, id, model id. The cluster id of a `CacheKey` only routes
/// pulls and is ignored when binding.
struct IndexKey: Hashable, Sendable, CustomStringConvertible {
    let namespace: KeyNamespace
    let id: UInt64
    let modelID: UInt64

    init(_ key: CacheKey) {
        if key.prefixID != .max {
            self.namespace = .prefix
            self.id = key.prefixID
        } else {
            self.namespace = .request
            self.id = key.reqID
        }
        self.modelID = key.modelID
    }

    init(blocksModelID: UInt64) {
        namespace = .blocks
        id = .max
        modelID = blocksModelID
    }

    var description: String {
        switch namespace {
        case .request: "request key (req \(id), model \(modelID))"
        case .prefix: "prefix key (prefix \(id), model \(modelID))"
        case .blocks: "blocks key (model \(modelID))"
        }
    }
}

/// A key bound to one slot of a cache.
struct KeyBinding: Sendable {
    let cacheID: Int64
    let slot: Int
    /// Tensors of the slot already pulled through this key (layer-wise pulls); the key is consumed once
    /// every tensor has been pulled.
    var pulledTensors = TensorSet()
    /// Transfers in flight that took tensors of the slot through this key and have not settled yet.
    var transfersInFlight = 0
    /// The stamp of the key's current lease (`KeyLeases`); 0 without one.
    var lease: UInt64 = 0

    /// Whether `reservation` was taken from this binding (not from an earlier binding of the same key).
    func holds(_ reservation: Reservation) -> Bool {
        cacheID == reservation.cacheID && slot == reservation.slot && transfersInFlight > 0
    }

    /// Ends `reservation`'s transfer: a failed one gives its tensors back.
    mutating func settle(_ reservation: Reservation, succeeded: Bool) {
        transfersInFlight -= 1
        if !succeeded { pulledTensors.subtract(reservation.tensors) }
    }
}

/// One cache: its geometry and memory (in `record`, fixed for its life) and who holds it (the mutable rest).
struct CacheEntry: Sendable {
    /// Everything fixed at creation, the pool memory included: one object per cache.
    let record: CacheRecord
    /// The reference taken by allocate and dropped by deallocate.
    var holdsIDReference: Bool
    var keyBySlot: [Int: IndexKey]
    /// Transfers in flight that may give a consumed key back (if they fail): the entry must outlive them.
    var reservations = 0

    /// `addresses`: those of a registered cache; empty with `spans` (they hold the addresses).
    init(
        id: Int64, desc: CacheDesc, isBlocks: Bool, isOwned: Bool, spans: consuming TensorSpans?, addresses: [UInt],
        tensorSize: Int, slots: Int, stride: Int, remoteAccessible: Bool, holdsIDReference: Bool,
        keyBySlot: [Int: IndexKey] = [:]
    ) {
        self.init(
            record: CacheRecord(
                id: id, desc: desc, isBlocks: isBlocks, isOwned: isOwned, memory: spans, addresses: addresses,
                tensorSize: tensorSize, slots: slots, stride: stride, remoteAccessible: remoteAccessible),
            holdsIDReference: holdsIDReference, keyBySlot: keyBySlot)
    }

    /// An entry around an existing record (a spare reissued for a new cache).
    init(record: CacheRecord, holdsIDReference: Bool, keyBySlot: [Int: IndexKey]) {
        self.record = record
        self.holdsIDReference = holdsIDReference
        self.keyBySlot = keyBySlot
    }

    var id: Int64 { record.id }
    var desc: EntryDesc { record.desc }
    var isBlocks: Bool { record.isBlocks }
    /// Allocated from a pool (true) or registered caller memory (false).
    var isOwned: Bool { record.isOwned }
    /// The record, when it holds pool memory (owned caches; nil for registered ones). Holding it keeps the memory.
    var memory: CacheRecord? { record.hasMemory ? record : nil }
    var addresses: [UInt] { record.addresses }
    var tensorSize: Int { record.tensorSize }
    /// Batch slots (contiguous caches) or blocks (blocks caches): `shape[0]`.
    var slots: Int { record.slots }
    /// Bytes of one batch slot or one block.
    var stride: Int { record.stride }
    var remoteAccessible: Bool { record.remoteAccessible }
    var placement: Placement { record.desc.placement }
    var isRemovable: Bool { !holdsIDReference && keyBySlot.isEmpty && reservations == 0 }
    var pages: Int { record.pages }
}

/// The parts of a cache's `CacheDesc` the engine reads after creating it (no shape array: nothing to retain).
struct EntryDesc: Sendable {
    let numTensors: Int
    let placement: Placement
}

/// The fixed part of a cache and its pool memory, in one object: whoever holds it (the table's entry, a peer's
/// pin, the table's draining list) keeps the memory, which returns to the pool when the last holder lets go.
final class CacheRecord: Sendable {
    /// Local copies using the memory (lock-free; see `LocalPin`).
    private let pins = PinCount()
    /// The cache id; changes only while the record is a spare (`SpareRecords`), under the table's lock, when
    /// the table holds the only reference.
    private let currentID: Atomic<Int64>
    var id: Int64 { currentID.load(ordering: .relaxed) }
    let desc: EntryDesc
    let isBlocks: Bool
    let isOwned: Bool
    /// The addresses of a registered cache (owned caches: empty, their spans hold them).
    private let registeredAddresses: [UInt]
    let tensorSize: Int
    let slots: Int
    let stride: Int
    let remoteAccessible: Bool
    /// Pool memory of the tensors, one span each (nil for registered caches).
    private let memory: TensorSpans?
    /// `memory != nil`, fixed at creation (lock-free pin paths never look into the optional).
    let hasMemory: Bool

    init(
        id: Int64, desc: CacheDesc, isBlocks: Bool, isOwned: Bool, memory: consuming TensorSpans?, addresses: [UInt],
        tensorSize: Int, slots: Int, stride: Int, remoteAccessible: Bool
    ) {
        self.currentID = Atomic(id)
        self.desc = EntryDesc(numTensors: desc.numTensors, placement: desc.placement)
        self.isBlocks = isBlocks
        self.isOwned = isOwned
        self.registeredAddresses = addresses
        self.hasMemory = memory != nil
        self.memory = memory
        self.tensorSize = tensorSize
        self.slots = slots
        self.stride = stride
        self.remoteAccessible = remoteAccessible
    }

    /// Gives a spare record the id of the cache it now holds the memory of (see `currentID`).
    func reissue(as id: Int64) { currentID.store(id, ordering: .relaxed) }

    /// Whether a cache of this geometry would get exactly this record's memory and fields (owned, with memory).
    func fits(_ desc: CacheDesc, tensorSize: Int, isBlocks: Bool, remoteAccessible: Bool) -> Bool {
        hasMemory && isOwned && self.tensorSize == tensorSize && self.isBlocks == isBlocks
            && self.desc.numTensors == desc.numTensors && self.desc.placement == desc.placement
            && slots == Int(desc.shape[0]) && self.remoteAccessible == remoteAccessible
    }

    /// One address per tensor.
    var addresses: [UInt] {
        switch memory {
        case .some(let memory): memory.addresses
        case .none: registeredAddresses
        }
    }

    /// Pool pages held (0 without memory).
    var pages: Int {
        switch memory {
        case .some(let memory): memory.pages
        case .none: 0
        }
    }

    /// `PinCount.pin()` of the memory (no-op without memory).
    func pin() { if hasMemory { pins.pin() } }
    /// `PinCount.unpin()` of the memory.
    func unpin() -> Bool { hasMemory ? pins.unpin() : false }
    /// `PinCount.retire()` of the memory.
    func retire() -> Bool { hasMemory ? pins.retire() : false }
    /// `PinCount.count` of the memory.
    var pinCount: Int { pins.count }
}

/// Memory held for a peer's transfer in flight, so the bytes outlive a concurrent deallocate.
struct Pin: Sendable {
    /// The memory of every cache the transfer touches (a batched pull may name several).
    let memory: [CacheRecord]
    /// The serial of the link the pin was taken for.
    let link: UInt64
    /// What the transfer took from request keys (one per key; a batched pull takes several), to give back if
    /// it fails.
    var reservations: [Reservation] = []
}

/// Tensors of a key's slot that a transfer in flight has taken. If the transfer fails they become pullable
/// again; if they were the key's last tensors the key was unbound and is bound again (unless it was removed).
struct Reservation: Sendable {
    let key: IndexKey
    let cacheID: Int64
    let slot: Int
    /// Tensors this transfer marked as pulled.
    let tensors: TensorSet
}

/// A cache's view with the memory a local copy pins. The memory is held unretained: while its pin count is not
/// 0 the table keeps it (in the entry, or after a deallocate in its draining list), and only the table ever drops
/// it, under its lock, so pages never leave the pool unseen by `audit`.
struct LocalPin: @unchecked Sendable {
    let view: CacheView
    private let memory: Unmanaged<CacheRecord>?

    init(view: CacheView, memory: CacheRecord?) {
        self.view = view
        self.memory = memory.map { Unmanaged.passUnretained($0) }
    }

    /// Call under the table lock, while the cache is in the table.
    func pin() { memory?._withUnsafeGuaranteedRef { $0.pin() } }

    /// True when the table must now drop the memory (`CacheTable.endRetiredPin`). The memory is not touched after.
    func unpin() -> Bool { memory?._withUnsafeGuaranteedRef { $0.unpin() } ?? false }
}

/// What a copy needs to know about a cache, without holding its memory (pins do that).
struct CacheView: Sendable {
    let id: Int64
    let addresses: [UInt]
    let numTensors: Int
    let tensorSize: Int
    let slots: Int
    let stride: Int
    let placement: Placement
    let isBlocks: Bool
    let isOwned: Bool

    /// Address of byte `offset` of slot (or block) `slot` of tensor `tensor`.
    func address(tensor: Int, slot: Int, offset: Int = 0) -> UInt {
        addresses[tensor] + UInt(slot * stride + offset)
    }
}

extension CacheEntry {
    var view: CacheView {
        CacheView(
            id: id, addresses: addresses, numTensors: desc.numTensors, tensorSize: tensorSize, slots: slots,
            stride: stride, placement: placement, isBlocks: isBlocks, isOwned: isOwned)
    }
}
