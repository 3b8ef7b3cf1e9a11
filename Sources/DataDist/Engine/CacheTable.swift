import BlockPool

/// The cache manager's state: caches, key indices, pins. A value type mutated only under the manager's lock;
/// dropping an entry or a pin here is what returns pool pages, so page accounting is always consistent with it.
struct CacheTable: Sendable {
    private(set) var entries = EntryMap()
    private(set) var keys: [IndexKey: KeyBinding] = [:]
    private(set) var pins: [UInt64: Pin] = [:]
    /// Memory of erased caches that local copies still use (their pin count is not 0), by cache id,
    /// until the last of those copies unpins it (`endRetiredPin`): it stays reachable, so `audit` counts it. The
    /// table is the only owner of pinned memory (copies hold it unretained), so pages go back to the pool only
    /// under the table's lock and `audit` is exact at every moment.
    private var draining: [Int64: CacheRecord] = [:]
    /// Keys unbound by transfers in flight, with their binding, until those transfers settle.
    private var reservedKeys: [IndexKey: KeyBinding] = [:]
    private var nextCacheID: Int64 = 1
    private var nextPinID: UInt64 = 1
    /// Addresses registered through registerCache / registerBlocksCache (the reference caps them at 240).
    private(set) var registeredAddresses = 0
    var isClosed = false

    static let registeredAddressLimit = 240

    func entry(_ id: Int64) -> CacheEntry? { entries[id] }
    func binding(_ key: IndexKey) -> KeyBinding? { keys[key] }

    /// The view and memory of a cache, for a local copy.
    func pinnedView(_ id: Int64) -> LocalPin? {
        guard let entry = entries[id] else { return nil }
        return LocalPin(view: entry.view, memory: entry.memory)
    }

    mutating func takeCacheID() -> Int64 {
        defer { nextCacheID += 1 }
        return nextCacheID
    }

    /// Adds an entry and binds its keys (already validated).
    mutating func insert(_ entry: consuming CacheEntry) {
        let id = entry.id
        for (slot, key) in entry.keyBySlot { keys[key] = KeyBinding(cacheID: id, slot: slot) }
        if !entry.isOwned { registeredAddresses += entry.addresses.count }
        let previous = entries.updateValue(entry, forKey: id)
        precondition(previous == nil, "cache id \(id) reused")
    }

    /// `insert` for an owned entry without keys (most allocations): nothing to bind, no dictionary to walk.
    mutating func insertUnbound(_ entry: consuming CacheEntry) {
        precondition(entry.isOwned && entry.keyBySlot.isEmpty, "insertUnbound of a registered or keyed cache")
        let id = entry.id
        let previous = entries.updateValue(entry, forKey: id)
        precondition(previous == nil, "cache id \(id) reused")
    }

    /// Drops the id reference of an owned cache; the entry goes now if no key holds it.
    mutating func dropIDReference(_ id: Int64) {
        // One hash lookup when the cache goes now (no key holds it), two when it stays.
        guard var entry = entries.removeValue(forKey: id) else { return }
        guard entry.isOwned else {
            entries[id] = entry
            return
        }
        entry.holdsIDReference = false
        if entry.isRemovable {
            retireMemory(of: entry)  // removable: no key left to unbind
        } else {
            entries[id] = entry
        }
    }

    /// Unbinds `key` from its cache; the cache goes if nothing else holds it.
    mutating func unbind(_ key: IndexKey) {
        guard let binding = keys.removeValue(forKey: key) else { return }
        // Take the entry out to change it: with a copy left in the table, the write would copy its whole
        // keyBySlot (one key per slot). (In-place `entries[id]?.…` costs three coroutine-frame mallocs.)
        guard var entry = entries.removeValue(forKey: binding.cacheID) else { return }
        if entry.keyBySlot[binding.slot] == key { entry.keyBySlot[binding.slot] = nil }
        entries[binding.cacheID] = entry
        eraseIfRemovable(binding.cacheID)
    }

    /// Marks `tensors` of a key's slot as pulled by a transfer in flight; once every tensor of the slot is
    /// pulled the key is unbound, so no other transfer can take it. Returns what to give back if the transfer
    /// fails.
    mutating func reserve(_ key: IndexKey, tensors: Range<Int>) -> Reservation? {
        guard var binding = keys[key], var entry = entries.removeValue(forKey: binding.cacheID) else { return nil }
        let taken = Set(tensors).subtracting(binding.pulledTensors)
        binding.pulledTensors.formUnion(taken)
        let complete = binding.pulledTensors.count >= entry.desc.numTensors
        if complete {
            keys[key] = nil
            reservedKeys[key] = binding
            if entry.keyBySlot[binding.slot] == key { entry.keyBySlot[binding.slot] = nil }
        } else {
            keys[key] = binding
        }
        entry.reservations += 1
        entries[binding.cacheID] = entry
        return Reservation(key: key, cacheID: binding.cacheID, slot: binding.slot, tensors: taken, unboundKey: complete)
    }

    /// Ends a reservation: on success the pulled tensors stay pulled; on failure they are given back, and an
    /// unbound key is bound again if nobody removed or rebound it meanwhile.
    private mutating func settle(_ reservation: Reservation, succeeded: Bool) {
        let key = reservation.key
        let wasReserved = reservedKeys.removeValue(forKey: key)
        if !succeeded {
            if reservation.unboundKey, var binding = wasReserved, keys[key] == nil,
                entries[reservation.cacheID]?.keyBySlot[reservation.slot] == nil
            {
                binding.pulledTensors.subtract(reservation.tensors)
                keys[key] = binding
                entries[reservation.cacheID]?.keyBySlot[reservation.slot] = key
            } else if !reservation.unboundKey, var binding = keys[key], binding.cacheID == reservation.cacheID {
                binding.pulledTensors.subtract(reservation.tensors)
                keys[key] = binding
            }
        }
        guard var entry = entries.removeValue(forKey: reservation.cacheID) else { return }
        entry.reservations -= 1
        entries[reservation.cacheID] = entry
        eraseIfRemovable(reservation.cacheID)
    }

    /// A key taken by a transfer in flight (for removeCacheKey: removing it cancels giving it back).
    mutating func cancelReservation(of key: IndexKey) -> Bool {
        reservedKeys.removeValue(forKey: key) != nil
    }

    func isReserved(_ key: IndexKey) -> Bool { reservedKeys[key] != nil }

    /// Removes an entry and every key bound to it, whoever holds it.
    mutating func erase(_ id: Int64) {
        guard let entry = entries.removeValue(forKey: id) else { return }
        retire(entry)
    }

    /// Unbinds the keys of an entry already taken out of `entries`, and keeps its memory reachable while local
    /// copies still use it.
    private mutating func retire(_ entry: CacheEntry) {
        for key in entry.keyBySlot.values where keys[key]?.cacheID == entry.id { keys[key] = nil }
        retireMemory(of: entry)
    }

    /// The part of `retire` after the keys: keeps the memory reachable while local copies still use it.
    private mutating func retireMemory(of entry: CacheEntry) {
        if !entry.isOwned { registeredAddresses -= entry.addresses.count }
        let record = entry.record
        if record.retire() { draining[entry.id] = record }
    }

    /// Called after `CacheRecord.unpin()` returned true: the last local copy of an erased
    /// cache finished, so its memory may go.
    mutating func endRetiredPin(cacheID: Int64) {
        if let memory = draining[cacheID], memory.pinCount == 0 { draining[cacheID] = nil }
    }

    private mutating func eraseIfRemovable(_ id: Int64) {
        if let entry = entries[id], entry.isOwned, entry.isRemovable { erase(id) }
    }

    /// Rebinds a blocks key to `id` (registerBlocksCache: the last registration wins).
    mutating func rebind(_ key: IndexKey, to id: Int64, slot: Int) {
        if let previous = keys[key], var old = entries[previous.cacheID] {
            old.keyBySlot[previous.slot] = nil
            entries[previous.cacheID] = old
        }
        keys[key] = KeyBinding(cacheID: id, slot: slot)
        entries[id]?.keyBySlot[slot] = key
    }

    mutating func pin(_ memory: [CacheRecord], peer: UInt64, reservations: [Reservation] = []) -> UInt64 {
        defer { nextPinID += 1 }
        pins[nextPinID] = Pin(memory: memory, peer: peer, reservations: reservations)
        return nextPinID
    }

    mutating func unpin(_ id: UInt64) { pins[id] = nil }

    /// Ends a peer's transfer, settling its reservation. False when `peer` holds no such pin.
    mutating func release(pin id: UInt64, peer: UInt64, succeeded: Bool) -> Bool {
        guard let pin = pins[id], pin.peer == peer else { return false }
        for reservation in pin.reservations { settle(reservation, succeeded: succeeded) }
        pins[id] = nil
        return true
    }

    /// Drops every pin a link held (the peer unlinked or died): their transfers count as failed.
    mutating func releasePins(of peer: UInt64) {
        for id in pins.filter({ $0.value.peer == peer }).map(\.key) { _ = release(pin: id, peer: peer, succeeded: false) }
    }

    /// Drops everything (finalize).
    mutating func removeAll() {
        // Memory that local copies still use stays (in `draining`) until they unpin it: they hold it unretained.
        for entry in entries.values { if let memory = entry.memory, memory.retire() { draining[entry.id] = memory } }
        entries.removeAll()
        keys.removeAll()
        pins.removeAll()
        reservedKeys.removeAll()
        registeredAddresses = 0
        isClosed = true
    }

    /// Pages reachable from entries and pins (each span counted once), and keys that point nowhere.
    func reachability() -> (pages: Int, danglingKeys: Int) {
        var seen = Set<ObjectIdentifier>()
        var pages = 0
        let held = entries.values.lazy.compactMap(\.memory) + pins.values.lazy.flatMap(\.memory) + draining.values
        for memory in held where seen.insert(ObjectIdentifier(memory)).inserted {
            pages += memory.pages
        }
        let dangling = keys.lazy.filter { key, binding in
            self.entries[binding.cacheID]?.keyBySlot[binding.slot] != key
        }.count
        return (pages, dangling)
    }
}
