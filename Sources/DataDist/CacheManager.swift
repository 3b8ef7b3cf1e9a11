import BlockPool
import DeviceCaps
import DeviceRuntime
import Logging
import Synchronization
import ThreadSanitizerSupport

/// Allocates caches in the instance's memory pools, binds them to request keys, copies and swaps them, and
/// serves them to peers. Obtain it from `LLMDataDist.cacheManager`. Thread-safe. Every operation taking a `Cache`
/// refuses (`.paramInvalid`) one issued by another instance or before this one was last initialised (see `Cache`).
public final class CacheManager: Sendable {
    /// The cache table and the instance's resources.
    let store: CacheStore
    /// The links to other clusters; their peers' requests are answered by its `OwnerPolicy`.
    let links: LinkTable
    /// Pulls and pushes over those links.
    let requester: Requester
    /// The instance's runtime, gates, configuration and pools (also `store.resources`; kept here too so that the
    /// hot local calls reach it with one load, not two and a retain of the store).
    let resources: InstanceResources
    /// Expires unpulled request keys; nil without `LLMConfig.requestKeyLease`.
    let leaseSweeper: LeaseSweeper?
    /// The running `transferCacheAsync` tasks.
    let asyncTransfers = AsyncTransfers()

    init(resources: InstanceResources) {
        self.resources = resources
        let store = CacheStore(resources: resources)
        self.store = store
        links = LinkTable(store: store)
        requester = Requester(store: store, links: links)
        leaseSweeper = resources.config.requestKeyLease.map { LeaseSweeper(store: store, lease: $0) }
    }

    /// Starts expiring leased keys, when a lease is configured (initialize).
    func startLeases() throws(LLMError) {
        do {
            try leaseSweeper?.start()
        } catch {
            throw LLMError(.failed, "cannot start the request key lease sweeper: \(error)")
        }
    }

    // MARK: contiguous caches

    /// Allocates `desc.numTensors` tensors from the pool matching `desc.placement` and binds `keys[i]` to batch
    /// slot `i` (placeholders keep their slot empty).
    public func allocateCache(_ desc: CacheDesc, keys: [CacheKey] = []) throws(LLMError) -> Cache {
        try resources.gate(.allocateCache)
        try requirePool(for: desc, operation: "allocateCache")
        let tensorSize = try desc.validatedTensorSize(operation: "allocateCache")
        guard !keys.isEmpty else {  // the common case, kept short
            return try store.table.withLock { table throws(LLMError) in
                try store.ensureOpen(table)
                return try insertOwned(
                    desc, tensorSize: tensorSize, isBlocks: false, keyBySlot: [Int: IndexKey](), into: &table)
            }
        }
        let slots = Int(desc.shape[0])
        guard keys.count <= slots else {
            throw .paramInvalid("allocateCache got \(keys.count) keys for batch size shape[0] = \(slots)")
        }
        var keyBySlot: [Int: IndexKey] = [:]
        var seen: [IndexKey: Int] = [:]
        for (slot, key) in keys.enumerated() where !key.isPlaceholder {
            let indexKey = IndexKey(key)
            if let earlier = seen.updateValue(slot, forKey: indexKey) {
                throw .paramInvalid("allocateCache keys[\(earlier)] and keys[\(slot)] are the same key \(key)")
            }
            keyBySlot[slot] = indexKey
        }
        return try store.table.withLock { table throws(LLMError) in
            try store.ensureOpen(table)
            if !keyBySlot.isEmpty { try checkFree(keyBySlot, in: table) }
            return try insertOwned(desc, tensorSize: tensorSize, isBlocks: false, keyBySlot: keyBySlot, into: &table)
        }
    }

    /// Refuses keys already bound or being pulled (allocateCache).
    private func checkFree(_ keyBySlot: [Int: IndexKey], in table: CacheTable) throws(LLMError) {
        for (slot, key) in keyBySlot {
            if let bound = table.binding(key) {
                throw .paramInvalid("allocateCache keys[\(slot)] \(key) is already bound to cache \(bound.cacheID)")
            }
            if table.isReserved(key) {
                throw .paramInvalid("allocateCache keys[\(slot)] \(key) is being pulled by a peer")
            }
        }
    }

    /// Drops the cache's id reference. Its memory is released now if no key is bound to it, else when the
    /// last key is pulled or removed. Unknown or registered caches: no-op.
    public func deallocateCache(_ cache: Cache) throws(LLMError) {
        try resources.gate(.deallocateCache)
        try resources.issuer.admit(cache, "cache", in: "deallocateCache")
        guard !cache.isBlocksCache else {
            throw .paramInvalid("deallocateCache got blocks cache \(cache.cacheID); use deallocateBlocksCache")
        }
        try requireAnyPool("deallocateCache")
        try store.table.withLock { table throws(LLMError) in
            try store.ensureOpen(table)
            table.dropIDReference(cache.cacheID)
        }
    }

    /// Unbinds `key`: the cache can no longer be pulled by it. No-op if the key is absent, already consumed,
    /// or bound to a registered cache (only `unregisterCache` drops those).
    public func removeCacheKey(_ key: CacheKey) throws(LLMError) {
        try resources.gate(.removeCacheKey)
        try requireAnyPool("removeCacheKey")
        try store.table.withLock { table throws(LLMError) in
            try store.ensureOpen(table)
            let indexKey = IndexKey(key)
            if table.cancelReservation(of: indexKey) { return }  // in flight: it stays consumed whatever happens
            // No copy of the entry may live on into `unbind`: its slot-map update would then copy the whole map
            // (copy-on-write), which made removing every key of a cache of n slots O(n²) in a debug build.
            guard let binding = table.binding(indexKey), table.entry(binding.cacheID)?.isOwned == true else { return }
            table.unbind(indexKey)
        }
    }

    // MARK: blocks caches

    /// Allocates a blocks (PagedAttention) cache of `shape[0]` blocks per tensor, optionally bound to a key
    /// (one blocks key per model id).
    public func allocateBlocksCache(_ desc: CacheDesc, key: BlocksCacheKey? = nil) throws(LLMError) -> Cache {
        try resources.gate(.allocateBlocksCache)
        try requirePool(for: desc, operation: "allocateBlocksCache")
        let tensorSize = try desc.validatedTensorSize(operation: "allocateBlocksCache")
        return try store.table.withLock { table throws(LLMError) in
            try store.ensureOpen(table)
            var keyBySlot: [Int: IndexKey] = [:]
            if let key {
                let indexKey = IndexKey(blocksModelID: key.modelID)
                if let bound = table.binding(indexKey) {
                    throw .paramInvalid(
                        "allocateBlocksCache key for model \(key.modelID) is already bound to cache \(bound.cacheID)")
                }
                keyBySlot[0] = indexKey
            }
            return try insertOwned(desc, tensorSize: tensorSize, isBlocks: true, keyBySlot: keyBySlot, into: &table)
        }
    }

    /// Releases a blocks cache and its key now (blocks keys hold no reference). Unknown or registered: no-op.
    public func deallocateBlocksCache(_ cache: Cache) throws(LLMError) {
        try resources.gate(.deallocateBlocksCache)
        try resources.issuer.admit(cache, "cache", in: "deallocateBlocksCache")
        guard cache.isBlocksCache else {
            throw .paramInvalid("deallocateBlocksCache got contiguous cache \(cache.cacheID); use deallocateCache")
        }
        try requireAnyPool("deallocateBlocksCache")
        try store.table.withLock { table throws(LLMError) in
            try store.ensureOpen(table)
            guard let entry = table.entry(cache.cacheID), entry.isOwned else { return }
            table.erase(cache.cacheID)
        }
    }

    // MARK: caller-owned memory

    /// Registers caller memory as a contiguous cache; keys bind batch slots by position (a repeated key: the
    /// last position wins). The memory is never freed by DataDist.
    public func registerCache(
        _ desc: CacheDesc, addresses: [UInt], keys: [CacheKey] = [], remoteAccessible: Bool? = nil
    ) throws(LLMError) -> Cache {
        try resources.gate(.registerCache)
        let tensorSize = try desc.validatedCallerMemory(at: addresses, operation: "registerCache")
        let slots = Int(desc.shape[0])
        guard keys.count <= slots else {
            throw .paramInvalid("registerCache got \(keys.count) keys for batch size shape[0] = \(slots)")
        }
        var keyBySlot: [Int: IndexKey] = [:]
        var slotOfKey: [IndexKey: Int] = [:]
        for (slot, key) in keys.enumerated() where !key.isPlaceholder {
            let indexKey = IndexKey(key)
            if let earlier = slotOfKey.updateValue(slot, forKey: indexKey) { keyBySlot[earlier] = nil }
            keyBySlot[slot] = indexKey
        }
        return try store.table.withLock { table throws(LLMError) in
            try store.ensureOpen(table)
            try checkRegistrationRoom(table, adding: addresses.count, operation: "registerCache")
            for (slot, key) in keyBySlot {
                if let bound = table.binding(key) {
                    throw .paramInvalid("registerCache keys[\(slot)] \(key) is already bound to cache \(bound.cacheID)")
                }
                if table.isReserved(key) {
                    throw .paramInvalid("registerCache keys[\(slot)] \(key) is being pulled by a peer")
                }
            }
            let entry = CacheEntry(
                id: table.takeCacheID(), desc: desc, isBlocks: false, isOwned: false, spans: nil,
                addresses: addresses, tensorSize: tensorSize, slots: slots, stride: tensorSize / slots,
                remoteAccessible: remoteAccessible ?? (desc.placement == .device), holdsIDReference: false,
                keyBySlot: keyBySlot)
            table.insert(entry)
            return Cache(
                cacheID: entry.id, desc: desc, tensorAddresses: addresses, isBlocksCache: false,
                issuer: resources.issuer)
        }
    }

    /// Registers caller memory as a blocks cache; a key replaces any earlier binding of its model id.
    public func registerBlocksCache(
        _ desc: CacheDesc, addresses: [UInt], key: BlocksCacheKey? = nil, remoteAccessible: Bool? = nil
    ) throws(LLMError) -> Cache {
        try resources.gate(.registerBlocksCache)
        let tensorSize = try desc.validatedCallerMemory(at: addresses, operation: "registerBlocksCache")
        let blocks = Int(desc.shape[0])
        return try store.table.withLock { table throws(LLMError) in
            try store.ensureOpen(table)
            try checkRegistrationRoom(table, adding: addresses.count, operation: "registerBlocksCache")
            let entry = CacheEntry(
                id: table.takeCacheID(), desc: desc, isBlocks: true, isOwned: false, spans: nil,
                addresses: addresses, tensorSize: tensorSize, slots: blocks, stride: tensorSize / blocks,
                remoteAccessible: remoteAccessible ?? (desc.placement == .device), holdsIDReference: false)
            table.insert(entry)
            if let key { table.rebind(IndexKey(blocksModelID: key.modelID), to: entry.id, slot: 0) }
            return Cache(
                cacheID: entry.id, desc: desc, tensorAddresses: addresses, isBlocksCache: true, issuer: resources.issuer
            )
        }
    }

    /// Drops a cache and every key bound to it (registered or allocated). Unknown ids: no-op. For a registered
    /// cache, when it returns no peer moves bytes of it any more: a peer's transfer of it in flight is waited for,
    /// up to `LLMConfig.syncKVTimeout`, and then fails (its link is closed), so the caller may free the memory.
    public func unregisterCache(_ cacheID: Int64) throws(LLMError) {
        try resources.gate(.unregisterCache)
        let (registered, withdrawn) = try store.table.withLock { table throws(LLMError) -> (Bool, [UInt32]) in
            try store.ensureOpen(table)
            let registered = table.entry(cacheID).map { !$0.isOwned } ?? false
            table.erase(cacheID)
            return (registered, table.takeWithdrawnRegions())
        }
        // A peer's pin keeps pool memory alive by itself; caller memory is the caller's to free once this returns.
        if registered { links.settlePeerTransfers(ofUnregistered: cacheID, withdrawing: withdrawn) }
    }

    // MARK: diagnostics

    /// A consistent snapshot of caches, keys and pool pages. `orphans` counts pages held by nothing the
    /// table knows, keys pointing nowhere, and keys lost (neither bound, nor taken by a transfer in flight, nor
    /// consumed, nor removed): it must always be 0. `expiredKeys` counts the keys whose lease ran out.
    public func audit() -> CacheAudit {
        store.table.withLock { table in
            let usages = resources.pools.map(\.usage)
            let spare = table.spares.pages
            let pagesInUse = usages.reduce(0) { $0 + $1.pagesInUse } - spare
            let (reachablePages, danglingKeys, lostKeys) = table.reachability()
            return CacheAudit(
                liveCaches: table.entries.count, boundKeys: table.keys.count, pagesInUse: pagesInUse,
                pagesFree: usages.reduce(0) { $0 + $1.pagesFree } + spare,
                pinnedByPeers: table.pins.count,
                orphans: abs(pagesInUse - reachablePages) + danglingKeys + lostKeys,
                expiredKeys: table.leases?.expired ?? 0)
        }
    }

    /// Unlinks every peer, stops listening and releases every cache, key and pin (finalize). Later calls
    /// throw `.failed`.
    func close() {
        leaseSweeper?.stop()
        let tasks = asyncTransfers.abortAll()
        links.closeAll()
        asyncTransfers.waitAndStop(tasks)
        store.table.withLock { $0.removeAll() }
    }

    // MARK: shared validation

    @inline(__always)
    private func requireAnyPool(_ operation: @autoclosure () -> String) throws(LLMError) {
        if !resources.hasAnyPool { throw noPool(operation()) }
    }

    private func noPool(_ operation: String) -> LLMError {
        LLMError(.featureNotEnabled, "\(operation) needs a memory pool; set LLMConfig.memoryPool or hostMemoryPool")
    }

    /// Refuses a desc whose placement has no pool. (Callers look the pool up again where they use it rather than
    /// keep it: a reference held across calls costs a retain and a release.)
    @inline(__always)
    private func requirePool(for desc: CacheDesc, operation: @autoclosure () -> String) throws(LLMError) {
        if resources.pool(for: desc.placement) == nil { throw noPoolForAllocation(desc, operation: operation()) }
    }

    private func noPoolForAllocation(_ desc: CacheDesc, operation: String) -> LLMError {
        guard resources.hasAnyPool else { return noPool(operation) }
        let field = desc.placement == .device ? "memoryPool" : "hostMemoryPool"
        return .paramInvalid("\(operation) desc.placement .\(desc.placement) needs LLMConfig.\(field)")
    }

    private func checkRegistrationRoom(_ table: CacheTable, adding count: Int, operation: String) throws(LLMError) {
        let limit = CacheTable.registeredAddressLimit
        guard table.registeredAddresses + count <= limit else {
            throw .paramInvalid(
                "\(operation) would register \(table.registeredAddresses + count) addresses in total; the limit is \(limit)"
            )
        }
    }

    /// Allocates the tensors of `desc` from its pool and adds the cache, holding its id reference and `keyBySlot`.
    private func insertOwned(
        _ desc: CacheDesc, tensorSize: Int, isBlocks: Bool, keyBySlot: [Int: IndexKey], into table: inout CacheTable
    ) throws(LLMError) -> Cache {
        let remoteAccessible = resources.config.enableRemoteCacheAccessible
        let entry: CacheEntry
        let (id, addresses): (Int64, [UInt])
        if let spare = table.takeSpare(
            fitting: desc, tensorSize: tensorSize, isBlocks: isBlocks, remoteAccessible: remoteAccessible)
        {
            (id, addresses) = (table.takeCacheID(), spare.addresses)
            spare.reissue(as: id)
            entry = CacheEntry(record: spare, holdsIDReference: true, keyBySlot: keyBySlot)
        } else {
            let spans = try allocateTensors(desc, tensorSize: tensorSize, isBlocks: isBlocks, table: &table)
            let slots = Int(desc.shape[0])
            (id, addresses) = (table.takeCacheID(), spans.addresses)
            entry = CacheEntry(
                id: id, desc: desc, isBlocks: isBlocks, isOwned: true, spans: spans, addresses: [],
                tensorSize: tensorSize, slots: slots, stride: tensorSize / slots, remoteAccessible: remoteAccessible,
                holdsIDReference: true, keyBySlot: keyBySlot)
        }
        if entry.keyBySlot.isEmpty {
            table.insertUnbound(entry)
        } else {
            table.insert(entry)
        }
        return Cache(
            cacheID: id, desc: desc, tensorAddresses: addresses, isBlocksCache: isBlocks, issuer: resources.issuer)
    }

    /// One span per tensor, taken together; on failure nothing is taken and nothing changes (but for the spares,
    /// whose memory goes back to the pools before a request the pools alone cannot serve fails).
    private func allocateTensors(_ desc: CacheDesc, tensorSize: Int, isBlocks: Bool, table: inout CacheTable)
        throws(LLMError) -> TensorSpans
    {
        guard let pool = resources.pool(for: desc.placement) else {
            throw noPoolForAllocation(desc, operation: isBlocks ? "allocateBlocksCache" : "allocateCache")
        }
        guard desc.numTensors <= pool.pageCount else {
            allocationFailed(in: desc.placement)
            throw LLMError(
                .outOfMemory,
                "cannot allocate \(desc.numTensors) tensors from the \(desc.placement) pool of \(pool.pageCount) pages: each takes a page at least"
            )
        }
        do {
            return try pool.allocate(count: desc.numTensors, bytes: tensorSize)
        } catch {
            var failure = error
            if table.dropSpares() {  // their pages may be what was missing
                do {
                    return try pool.allocate(count: desc.numTensors, bytes: tensorSize)
                } catch {
                    failure = error
                }
            }
            allocationFailed(in: desc.placement)
            throw LLMError(
                .outOfMemory,
                "cannot allocate \(desc.numTensors) tensors of \(tensorSize) bytes (shape \(desc.shape)) from the \(desc.placement) pool: \(failure)"
            )
        }
    }

    private func allocationFailed(in placement: Placement) {
        (placement == .device ? resources.devicePoolMeters : resources.hostPoolMeters)?.allocationFailed()
    }
}

/// A consistent snapshot of what a cache manager holds.
public struct CacheAudit: Sendable, Hashable, CustomStringConvertible {
    /// Caches not yet fully released (owned and registered).
    public var liveCaches: Int
    /// Keys still bound (request, prefix and blocks keys).
    public var boundKeys: Int
    /// Pool pages held by caches, keys or in-flight transfers (all pools).
    public var pagesInUse: Int
    public var pagesFree: Int
    /// Slots pinned for in-flight remote transfers.
    public var pinnedByPeers: Int
    /// Pages or keys reachable from nothing, and keys lost (bound once, now neither bound, nor taken by a
    /// transfer in flight, nor consumed, nor removed): must always be 0.
    public var orphans: Int
    /// Request keys unbound because their lease (`LLMConfig.requestKeyLease`) ran out before they were pulled,
    /// since `initialize`. Not a fault: `isClean` ignores it.
    public var expiredKeys: Int

    public init(
        liveCaches: Int, boundKeys: Int, pagesInUse: Int, pagesFree: Int, pinnedByPeers: Int, orphans: Int,
        expiredKeys: Int = 0
    ) {
        self.expiredKeys = expiredKeys
        self.liveCaches = liveCaches
        self.boundKeys = boundKeys
        self.pagesInUse = pagesInUse
        self.pagesFree = pagesFree
        self.pinnedByPeers = pinnedByPeers
        self.orphans = orphans
    }

    /// Nothing live, nothing pinned, nothing orphaned.
    public var isClean: Bool {
        liveCaches == 0 && boundKeys == 0 && pagesInUse == 0 && pinnedByPeers == 0 && orphans == 0
    }

    public var description: String {
        "caches \(liveCaches), keys \(boundKeys), pages in use \(pagesInUse), free \(pagesFree), pinned \(pinnedByPeers), orphans \(orphans)"
            + (expiredKeys > 0 ? ", expired \(expiredKeys)" : "")
    }
}
