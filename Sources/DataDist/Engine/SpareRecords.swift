import BlockPool

/// The records (pool memory, spans and address array together) of a few owned caches released recently, kept
/// whole for the next allocation of the same geometry: that allocation then takes no pool lock and allocates
/// no object, and the release before it freed none (allocate+deallocate in a loop, the common pattern, is one
/// table lock each and no heap allocation). A value type, used under the table's lock.
///
/// Only a record nothing else holds becomes a spare (no peer's pin, no local copy: its pin count was retired with
/// no holder, which leaves it counting from 0), so a spare's memory is reachable from nowhere but here. Its pages count as free in every figure the manager reports (`audit`,
/// `metrics`), and spares go back to their pool when evicted, before any allocation the pools alone cannot
/// serve, and at finalize, so no allocation fails or reports less room because of them.
struct SpareRecords: Sendable {
    static let capacity = 4

    /// Newest last; its buffer is reserved once, so adding and taking never allocate.
    private var records: [CacheRecord]

    init() {
        records = []
        records.reserveCapacity(Self.capacity)
    }

    var isEmpty: Bool { records.isEmpty }
    var count: Int { records.count }

    /// Pages of all spares.
    var pages: Int { records.reduce(0) { $0 + $1.pages } }

    /// Pages of the spares from the pool of `placement`.
    func pages(in placement: Placement) -> Int {
        records.reduce(0) { $0 + ($1.desc.placement == placement ? $1.pages : 0) }
    }

    /// The newest spare that `fits` a cache of this geometry, removed; nil when none does.
    mutating func take(fitting desc: CacheDesc, tensorSize: Int, isBlocks: Bool, remoteAccessible: Bool)
        -> CacheRecord?
    {
        var index = records.count - 1
        while index >= 0 {
            if records[index].fits(desc, tensorSize: tensorSize, isBlocks: isBlocks, remoteAccessible: remoteAccessible)
            {
                return records.remove(at: index)
            }
            index -= 1
        }
        return nil
    }

    /// Keeps `record` (owned, with memory, held by nothing else); when full the oldest spare goes, and its memory
    /// back to its pool.
    mutating func put(_ record: CacheRecord) {
        if records.count == Self.capacity { records.removeFirst() }
        records.append(record)
    }

    /// Every spare goes, and its memory back to its pool.
    mutating func removeAll() { records.removeAll(keepingCapacity: true) }
}
