/// The cache table's entries by cache id: a `Dictionary` whose key hashes with one multiplication instead of
/// SipHash (callgrind: ~90 instructions per lookup, two lookups per copyCache and per allocate+deallocate).
/// Safe without a keyed hash because the table's keys are ids the table itself hands out in sequence; a peer
/// can only look ids up, never choose which ones are stored.
struct EntryMap: Sendable {
    struct CacheID: Hashable, Sendable {
        let raw: Int64

        func hash(into hasher: inout Hasher) { hasher.combine(raw) }

        func _rawHashValue(seed: Int) -> Int {
            let product = UInt64(bitPattern: raw) &* 0x9E37_79B9_7F4A_7C15
            return Int(truncatingIfNeeded: product ^ (product >> 32)) ^ seed
        }
    }

    private var storage: [CacheID: CacheEntry] = [:]

    subscript(id: Int64) -> CacheEntry? {
        get { storage[CacheID(raw: id)] }
        set { storage[CacheID(raw: id)] = newValue }
    }

    var count: Int { storage.count }
    var values: Dictionary<CacheID, CacheEntry>.Values { storage.values }

    @discardableResult
    mutating func removeValue(forKey id: Int64) -> CacheEntry? { storage.removeValue(forKey: CacheID(raw: id)) }

    @discardableResult
    mutating func updateValue(_ entry: consuming CacheEntry, forKey id: Int64) -> CacheEntry? {
        storage.updateValue(entry, forKey: CacheID(raw: id))
    }

    mutating func removeAll() { storage.removeAll() }

    /// Changes entry `id` in place; nil (and `body` does not run) when there is none. The entry is taken out
    /// while `body` runs: with a copy left in the map, a write would copy its whole `keyBySlot` (one key per
    /// slot), and in-place `self[id]?.…` costs three coroutine-frame mallocs.
    @discardableResult
    mutating func modify<R>(_ id: Int64, _ body: (inout CacheEntry) -> R) -> R? {
        guard var entry = storage.removeValue(forKey: CacheID(raw: id)) else { return nil }
        let result = body(&entry)
        storage[CacheID(raw: id)] = entry
        return result
    }

    /// `modify` for a change after which the entry may have to go: when `body` returns true the entry is not put
    /// back but returned (one hash lookup for the common deallocate, not three).
    mutating func modifyOrTake(_ id: Int64, _ body: (inout CacheEntry) -> Bool) -> CacheEntry? {
        guard var entry = storage.removeValue(forKey: CacheID(raw: id)) else { return nil }
        if body(&entry) { return entry }
        storage[CacheID(raw: id)] = entry
        return nil
    }
}
