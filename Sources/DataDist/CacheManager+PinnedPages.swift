import BlockPool
import Synchronization
import ThreadSanitizerSupport

extension CacheManager {
    /// Pool pages of the caches that peers' transfers in flight hold pinned, per pool (placement); a cache
    /// pinned by several transfers counts once. Registered caches hold no pool pages.
    func pagesPinnedByPeers() -> [Placement: Int] {
        store.table.withLock { table in
            var seen = Set<Int64>()
            var pages: [Placement: Int] = [:]
            for pin in table.pins.values {
                for record in pin.memory where seen.insert(record.id).inserted {
                    pages[record.desc.placement, default: 0] += record.pages
                }
            }
            return pages
        }
    }
}

extension CacheManager {
    /// Pages in use and free of the pool of `placement`, the spares' pages counted free (as `audit` does); read
    /// under the table's lock, where pool pages change.
    func poolPages(_ placement: Placement) -> (inUse: Int, free: Int)? {
        guard let pool = resources.pool(for: placement) else { return nil }
        return store.table.withLock { table in
            let (usage, spare) = (pool.usage, table.spares.pages(in: placement))
            return (usage.pagesInUse - spare, usage.pagesFree + spare)
        }
    }
}
