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
    /// Memory of owned caches released recently that nothing else held, for the next allocation of the same
    /// geometry (`SpareRecords`); not reachable, and counted free.
    private(set) var spares = SpareRecords()
    /// Keys unbound by transfers in flight, with their binding, until those transfers settle.
    private var reservedKeys: [IndexKey: KeyBinding] = [:]
    /// Keys ever bound, and keys gone for good (consumed by pulls, removed, or dropped with their cache): every
    /// key bound and not gone is in `keys` or `reservedKeys`, else it was lost (`reachability`).
    private var keysBound = 0
    private var keysGone = 0
    private var nextCacheID: Int64 = 1
    private var nextPinID: UInt64 = 1
    /// Addresses registered through registerCache / registerBlocksCache (the reference caps them at 240).
    private(set) var registeredAddresses = 0
    /// The regions of remote-accessible registered caches, as links publish them over UCX.
    private(set) var registeredRegions = RegisteredRegions()
    var isClosed = false
    /// Leases of unpulled request keys; nil when `LLMConfig.requestKeyLease` is not set.
    private(set) var leases: KeyLeases?

    init(lease: Duration? = nil) {
        leases = lease.map(KeyLeases.init(duration:))
    }

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
        for (slot, key) in entry.keyBySlot {
            if keys.updateValue(KeyBinding(cacheID: id, slot: slot), forKey: key) != nil { keysGone += 1 }
            keysBound += 1
        }
        if !entry.isOwned {
            registeredAddresses += entry.addresses.count
            if entry.remoteAccessible {
                registeredRegions.add(
                    cache: id, addresses: entry.addresses, size: entry.tensorSize, placement: entry.placement)
            }
        }
        let leased = leases != nil && entry.isOwned
        let keyBySlot = leased ? entry.keyBySlot : [:]
        let previous = entries.updateValue(entry, forKey: id)
        precondition(previous == nil, "cache id \(id) reused")
        if leased {
            let now = KeyLeases.now()
            for key in keyBySlot.values { lease(key, now: now) }
        }
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
        let removed = entries.modifyOrTake(id) { entry in
            guard entry.isOwned else { return false }
            entry.holdsIDReference = false
            return entry.isRemovable
        }
        if let removed { retireMemory(of: removed) }  // removable: no key left to unbind
    }

    /// Unbinds `key` from its cache; the cache goes if nothing else holds it.
    mutating func unbind(_ key: IndexKey) {
        guard let binding = keys.removeValue(forKey: key) else { return }
        keysGone += 1
        entries.modify(binding.cacheID) { entry in
            if entry.keyBySlot[binding.slot] == key { entry.keyBySlot[binding.slot] = nil }
        }
        eraseIfRemovable(binding.cacheID)
    }

    /// Marks `tensors` of a key's slot as pulled by a transfer in flight; once every tensor of the slot is
    /// pulled the key is unbound, so no other transfer can take it. Returns what to give back if the transfer
    /// fails.
    mutating func reserve(_ key: IndexKey, tensors: Range<Int>) -> Reservation? {
        guard var binding = keys[key] else { return nil }
        let taken = TensorSet(tensors).subtracting(binding.pulledTensors)
        binding.pulledTensors.formUnion(taken)
        binding.transfersInFlight += 1
        let slot = binding.slot
        let found = entries.modify(binding.cacheID) { entry -> Bool in
            let complete = binding.pulledTensors.count >= entry.desc.numTensors
            if complete, entry.keyBySlot[slot] == key { entry.keyBySlot[slot] = nil }
            entry.reservations += 1
            return complete
        }
        guard let complete = found else { return nil }
        if complete {
            keys[key] = nil
            reservedKeys[key] = binding
        } else {
            keys[key] = binding
        }
        return Reservation(key: key, cacheID: binding.cacheID, slot: binding.slot, tensors: taken)
    }

    /// Ends a reservation: on success the pulled tensors stay pulled; on failure they are given back. A key that
    /// is whole again after a failure is bound again if nobody removed or rebound it meanwhile; a key whose
    /// tensors were all pulled is consumed once the last of its transfers settles.
    private mutating func settle(_ reservation: Reservation, succeeded: Bool) {
        let key = reservation.key
        if var binding = keys[key], binding.holds(reservation) {
            binding.settle(reservation, succeeded: succeeded)
            keys[key] = binding
            if leases != nil, binding.transfersInFlight == 0 { lease(key, now: KeyLeases.now()) }
        } else if var binding = reservedKeys.removeValue(forKey: key) {
            if binding.holds(reservation) {
                binding.settle(reservation, succeeded: succeeded)
                settleReserved(key, binding)
            } else {
                reservedKeys[key] = binding  // another cache's pull of the key, bound after this one's was removed
            }
        }
        guard entries.modify(reservation.cacheID, { $0.reservations -= 1 }) != nil else { return }
        eraseIfRemovable(reservation.cacheID)
    }

    /// The rest of `settle` for a key every tensor of which was taken: it stays reserved while other transfers
    /// of it are in flight, is consumed when none is and every tensor stayed pulled, or else is bound again.
    private mutating func settleReserved(_ key: IndexKey, _ binding: KeyBinding) {
        // Only what is needed, not the entry: a copy of it alive across `modify` would copy its slot map.
        guard
            let (tensors, slotIsFree) = entries[binding.cacheID].map({
                ($0.desc.numTensors, $0.keyBySlot[binding.slot] == nil)
            })
        else {
            keysGone += 1  // its cache was erased meanwhile
            return
        }
        if binding.pulledTensors.count >= tensors {
            if binding.transfersInFlight > 0 { reservedKeys[key] = binding } else { keysGone += 1 }
        } else if keys[key] == nil, slotIsFree {
            keys[key] = binding
            entries.modify(binding.cacheID) { $0.keyBySlot[binding.slot] = key }
            if leases != nil { lease(key, now: KeyLeases.now()) }
        } else {
            keysGone += 1  // the slot (or the key) was bound again meanwhile
        }
    }

    /// A key taken by a transfer in flight (for removeCacheKey: removing it cancels giving it back).
    mutating func cancelReservation(of key: IndexKey) -> Bool {
        guard reservedKeys.removeValue(forKey: key) != nil else { return false }
        keysGone += 1
        return true
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
        for key in entry.keyBySlot.values where keys[key]?.cacheID == entry.id {
            keys[key] = nil
            keysGone += 1
        }
        retireMemory(of: entry)
    }

    /// The part of `retire` after the keys: keeps the memory reachable while local copies still use it; memory
    /// nothing else holds (no peer's pin) becomes a spare.
    private mutating func retireMemory(of entry: CacheEntry) {
        if !entry.isOwned {
            registeredAddresses -= entry.addresses.count
            registeredRegions.remove(cache: entry.id)
        }
        let record = entry.record
        if record.retire() {
            draining[entry.id] = record
        } else if record.isOwned, record.hasMemory, !isPinnedByPeer(record) {
            spares.put(record)
        }
    }

    /// Whether a peer's transfer in flight holds `record`. The table's entries, pins and draining list are the only
    /// places a record is kept (a grant takes its records and pins them under one lock), so a record that is in
    /// none of them once its entry is gone is held by nothing else. Beyond a few pins this does not look and
    /// answers true: such a record is released as usual rather than searched for.
    private func isPinnedByPeer(_ record: CacheRecord) -> Bool {
        guard !pins.isEmpty else { return false }
        guard pins.count <= 16 else { return true }
        return pins.values.contains { pin in pin.memory.contains { $0 === record } }
    }

    /// A spare record for a cache of this geometry (the caller reissues it under the new cache's id); nil when
    /// none fits.
    mutating func takeSpare(fitting desc: CacheDesc, tensorSize: Int, isBlocks: Bool, remoteAccessible: Bool)
        -> CacheRecord?
    {
        guard !spares.isEmpty else { return nil }
        return spares.take(
            fitting: desc, tensorSize: tensorSize, isBlocks: isBlocks, remoteAccessible: remoteAccessible)
    }

    /// Returns every spare's memory to its pool; false when there was none.
    mutating func dropSpares() -> Bool {
        guard !spares.isEmpty else { return false }
        spares.removeAll()
        return true
    }

    /// The regions of registered caches erased since the last call that no cache uses any more.
    mutating func takeWithdrawnRegions() -> [UInt32] { registeredRegions.takeWithdrawn() }

    /// The links (serials) whose transfers in flight pin cache `cacheID`.
    func linksPinning(_ cacheID: Int64) -> Set<UInt64> {
        Set(pins.values.lazy.filter { $0.memory.contains { $0.id == cacheID } }.map(\.link))
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
        if let previous = keys[key] {
            entries.modify(previous.cacheID) { $0.keyBySlot[previous.slot] = nil }
            keysGone += 1
        }
        keys[key] = KeyBinding(cacheID: id, slot: slot)
        keysBound += 1
        entries.modify(id) { $0.keyBySlot[slot] = key }
    }

    /// Pins `memory` for a transfer of link `link` (its serial), with what the transfer reserved. A registered
    /// cache's record holds no pool memory; pinned, it tells an unregister that a peer still moves its bytes.
    mutating func pin(_ memory: [CacheRecord], link: UInt64, reservations: [Reservation] = []) -> UInt64 {
        defer { nextPinID += 1 }
        pins[nextPinID] = Pin(memory: memory, link: link, reservations: reservations)
        return nextPinID
    }

    mutating func unpin(_ id: UInt64) { pins[id] = nil }

    /// Ends a peer's transfer, settling its reservation. False when link `link` holds no such pin.
    mutating func release(pin id: UInt64, link: UInt64, succeeded: Bool) -> Bool {
        guard let pin = pins[id], pin.link == link else { return false }
        for reservation in pin.reservations { settle(reservation, succeeded: succeeded) }
        pins[id] = nil
        return true
    }

    /// Drops every pin a link held (the peer unlinked or died): their transfers count as failed.
    mutating func releasePins(of link: UInt64) {
        for id in pins.filter({ $0.value.link == link }).map(\.key) {
            _ = release(pin: id, link: link, succeeded: false)
        }
    }

    /// Drops everything (finalize).
    mutating func removeAll() {
        // Memory that local copies still use stays (in `draining`) until they unpin it: they hold it unretained.
        for entry in entries.values { if let memory = entry.memory, memory.retire() { draining[entry.id] = memory } }
        entries.removeAll()
        spares.removeAll()
        keys.removeAll()
        pins.removeAll()
        reservedKeys.removeAll()
        leases?.removeAll()
        (keysBound, keysGone) = (0, 0)
        registeredAddresses = 0
        registeredRegions.removeAll()
        isClosed = true
    }

    /// Pages reachable from entries and pins (each span counted once), keys that point nowhere, and keys lost:
    /// bound once, never consumed nor removed, and now neither bound nor reserved by a transfer.
    func reachability() -> (pages: Int, danglingKeys: Int, lostKeys: Int) {
        var seen = Set<ObjectIdentifier>()
        var pages = 0
        let held = entries.values.lazy.compactMap(\.memory) + pins.values.lazy.flatMap(\.memory) + draining.values
        for memory in held where seen.insert(ObjectIdentifier(memory)).inserted {
            pages += memory.pages
        }
        let dangling = keys.lazy.filter { key, binding in
            self.entries[binding.cacheID]?.keyBySlot[binding.slot] != key
        }.count
        return (pages, dangling, abs(keysBound - keysGone - keys.count - reservedKeys.count))
    }
}

extension CacheTable {
    /// Gives request key `key` (bound, with no transfer in flight) a fresh lease from `now`.
    private mutating func lease(_ key: IndexKey, now: UInt64) {
        guard key.namespace == .request, keys[key] != nil, let stamp = leases?.grant(key, now: now) else { return }
        keys[key]?.lease = stamp
        compactLeasesIfStale()
    }

    /// Drops stale leases once they outnumber the bound keys, so a long lease under many quick pulls keeps
    /// memory proportional to the keys bound, not to the keys ever bound.
    private mutating func compactLeasesIfStale() {
        guard let pending = leases?.pending, pending > 2 * keys.count + 1024 else { return }
        let keys = self.keys
        leases?.compact { keys[$0.key]?.lease == $0.stamp }
    }

    /// Unbinds every leased request key whose lease ran out at `now`, unless a transfer in flight took tensors
    /// of it (its settling leases it again). Returns the keys expired and the deadline of the next lease.
    mutating func expireLeases(now: UInt64) -> (expired: [IndexKey], next: UInt64?) {
        guard leases != nil else { return ([], nil) }
        var expired: [IndexKey] = []
        while let due = leases?.takeDue(now: now) {
            guard let binding = keys[due.key], binding.lease == due.stamp, binding.transfersInFlight == 0 else {
                continue
            }
            unbind(due.key)
            leases?.countExpired()
            expired.append(due.key)
        }
        return (expired, leases?.nextDeadline)
    }
}
