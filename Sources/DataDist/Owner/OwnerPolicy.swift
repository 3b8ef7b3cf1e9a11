import BlockPool
import DeviceRuntime
import LinkLayer
import Synchronization
import ThreadSanitizerSupport

/// The owner's rules for its peers: what a resolve may reach, the checks a transfer must pass, the grant (the
/// extents of exactly the bytes named) and the pin that keeps them alive, the request key a pull consumes, and
/// the release that settles it. Works on the cache table alone: no socket, no peer.
struct OwnerPolicy: Sendable {
    let store: CacheStore

    /// Finds what `request` names, checks the transfer it describes, and pins it for link `serial`, whose peer
    /// reaches registered memory as `reach` says.
    func resolve(_ request: ResolveRequest, link serial: UInt64, reach: LinkReach? = nil) -> Result<Grant, LLMError> {
        let remoteAccessible = store.resources.config.enableRemoteCacheAccessible
        let reach = reach ?? .poolsOnly(peer: 0)
        let pools = store.sharedPools(overUCX: reach.overUCX)
        return grantUnderLock { table throws(LLMError) in
            let (unpinned, memory, consumedKey) = try grant(
                for: request, in: table, remoteAccessible: remoteAccessible, pools: pools, reach: reach)
            // A pull through a request key of an owned cache takes those tensors now; the release settles it.
            let reservations = consumedKey.flatMap { table.reserve($0, tensors: request.tensors) }.map { [$0] } ?? []
            var grant = unpinned
            grant.pinID = table.pin(memory, link: serial, reservations: reservations)
            return grant
        }
    }

    /// Checks every item of `request` under one lock; grants all of them under one pin, or refuses with the
    /// first bad item and takes nothing.
    func resolveBatch(_ request: BatchResolveRequest, link serial: UInt64, reach: LinkReach? = nil) -> Result<
        Grant, LLMError
    > {
        let remoteAccessible = store.resources.config.enableRemoteCacheAccessible
        let reach = reach ?? .poolsOnly(peer: 0)
        let pools = store.sharedPools(overUCX: reach.overUCX)
        return grantUnderLock { table throws(LLMError) in
            var extents: [Grant.Extent] = []
            extents.reserveCapacity(request.extentCount)
            // Only what the grant needs, not the entries: a copy of an entry still alive when `reserve` edits the
            // table's entry would make that edit copy the entry's whole key map (one key per slot).
            var found: [(tensors: Int, reservable: Bool, key: IndexKey)] = []
            found.reserveCapacity(request.items.count)
            var labelByKey: [IndexKey: UInt32] = [:]
            var memory: [CacheRecord] = []
            var pinnedEntries = Set<Int64>()
            var (kind, stride) = (MemoryKind.device, 0)
            for item in request.items {
                do throws(LLMError) {
                    let single = ResolveRequest(
                        target: .key(reqID: item.reqID, prefixID: item.prefixID, modelID: item.modelID), write: false,
                        tensors: 0..<Int(item.tensorCount), bytesPerSlot: item.bytesPerSlot,
                        requesterKind: item.requesterKind, requesterIsBlocks: false, blocks: [])
                    let (entry, slot, boundKey) = try target(of: single, in: table)
                    guard let key = boundKey else { throw LLMError(.kvCacheNotExist, "the key is bound to nothing") }
                    if let earlier = labelByKey.updateValue(item.label, forKey: key) {
                        throw .paramInvalid("\(key) is also pulls[\(earlier)] of this batch")
                    }
                    try check(single, against: entry, remoteAccessible: remoteAccessible)
                    guard entry.desc.numTensors == Int(item.tensorCount) else {
                        throw .paramInvalid(
                            "the remote cache \(entry.id) has \(entry.desc.numTensors) tensors, the local cache \(item.tensorCount)"
                        )
                    }
                    try appendExtents(
                        of: entry, tensors: single.tensors, slot: slot, pools: pools, table: table, reach: reach,
                        to: &extents)
                    let reservable = key.namespace == .request && entry.isOwned && !remoteAccessible
                    if pinnedEntries.insert(entry.id).inserted { memory.append(entry.record) }
                    if found.isEmpty { (kind, stride) = (MemoryKind(entry.placement), entry.stride) }
                    found.append((entry.desc.numTensors, reservable, key))
                } catch {
                    throw LLMError(error.status, "pullCaches pulls[\(item.label)]: \(error.message)")
                }
            }
            // Every item is good: take the request keys now; the release settles them.
            var reservations: [Reservation] = []
            reservations.reserveCapacity(found.count)
            for item in found where item.reservable {
                if let reservation = table.reserve(item.key, tensors: 0..<item.tensors) {
                    reservations.append(reservation)
                }
            }
            let pinID = table.pin(memory, link: serial, reservations: reservations)
            return Grant(
                pinID: pinID, kind: kind, isBlocks: false, stride: UInt64(stride), slots: UInt32(found.count),
                tensorCount: UInt32(extents.count), extents: extents)
        }
    }

    /// Ends link `serial`'s transfer under `notice`: unpins, and settles what the resolve reserved (a failed
    /// transfer gives a consumed key back). False when the link holds no such pin.
    func release(_ notice: ReleaseNotice, link serial: UInt64) -> Bool {
        store.table.withLock { $0.release(pin: notice.pinID, link: serial, succeeded: notice.succeeded) }
    }

    /// Voids every grant of link `serial` (it closed): its transfers count as failed.
    func releaseAll(of serial: UInt64) {
        store.table.withLock { $0.releasePins(of: serial) }
    }

    /// Grants of at least this many bytes keep the peer copying about as long as `ControlConnection.serveSpin` or
    /// longer (1 MiB: 70–110 µs at DRAM speed), so the connection does not poll for its next request meanwhile.
    static let longCopyBytes: UInt64 = 1 << 20

    /// Whether the peer is expected back soon after a grant under which it copies `bytes`
    /// (`LinkService.expectsPromptRequest`).
    static func expectsPromptRequest(copying bytes: UInt64) -> Bool { bytes < longCopyBytes }

    // MARK: checks

    /// Runs `body` under the table lock, unless this instance is finalizing; a thrown error is the refusal.
    private func grantUnderLock(_ body: (inout CacheTable) throws(LLMError) -> Grant) -> Result<Grant, LLMError> {
        store.table.withLock { table in
            do throws(LLMError) {
                guard !table.isClosed else {
                    throw LLMError(.failed, "cluster \(store.resources.clusterID) is finalizing")
                }
                return .success(try body(&table))
            } catch {
                return .failure(error)
            }
        }
    }

    /// The grant for `request` (without its pin), the memory to pin and the request key the pull consumes.
    /// Returns no entry: a copy of it still alive when the reservation updates the table would make that update
    /// copy the entry's slot map (copy-on-write), a cost proportional to the cache's slots on every pull.
    private func grant(
        for request: ResolveRequest, in table: CacheTable, remoteAccessible: Bool, pools: [(UInt32, BlockPool)],
        reach: LinkReach
    ) throws(LLMError) -> (Grant, [CacheRecord], consumedKey: IndexKey?) {
        if case .address(let address) = request.target {
            let (grant, memory) = try addressGrant(
                address, request, in: table, remoteAccessible: remoteAccessible, pools: pools, reach: reach)
            return (grant, memory, nil)
        }
        let (entry, slot, boundKey) = try target(of: request, in: table)
        try check(request, against: entry, remoteAccessible: remoteAccessible)
        var extents: [Grant.Extent] = []
        try appendExtents(
            of: entry, tensors: request.tensors, slot: request.blocks.isEmpty ? slot : nil, pools: pools, table: table,
            reach: reach, to: &extents)
        let consumes =
            boundKey?.namespace == .request && entry.isOwned && !entry.isBlocks && !request.write && !remoteAccessible
        // `slots` only informs the peer (a batch of more than UInt32.max slots says UInt32.max).
        let grant = Grant(
            pinID: 0, kind: MemoryKind(entry.placement), isBlocks: entry.isBlocks, stride: UInt64(entry.stride),
            slots: UInt32(clamping: entry.slots), tensorCount: UInt32(entry.desc.numTensors), extents: extents)
        // The record: a cache's pool memory, or (registered) what an unregister waits for.
        return (grant, [entry.record], consumes ? boundKey : nil)
    }

    /// The grant of a push to a raw address: `request.bytesPerSlot` bytes from `address`, which must lie inside one
    /// tensor of a cache that accepts pushes (the extent never reaches past that tensor).
    private func addressGrant(
        _ raw: UInt64, _ request: ResolveRequest, in table: CacheTable, remoteAccessible: Bool,
        pools: [(UInt32, BlockPool)], reach: LinkReach
    ) throws(LLMError) -> (Grant, [CacheRecord]) {
        let clusterID = store.resources.clusterID
        let hex = "0x" + String(raw, radix: 16)
        guard request.write else { throw .paramInvalid("a resolve by address (\(hex)) is for pushes only") }
        guard request.tensors.count == 1, request.blocks.isEmpty, request.bytesPerSlot > 0,
            let count = Int(exactly: request.bytesPerSlot), let address = UInt(exactly: raw)
        else {
            throw .paramInvalid(
                "a push to \(hex) must name one tensor and 1 or more bytes; got \(request.tensors.count) tensors, \(request.bytesPerSlot) bytes"
            )
        }
        var found: (entry: CacheEntry, base: UInt)?
        for entry in table.entries.values {
            if let base = entry.addresses.first(where: { address >= $0 && address - $0 < UInt(entry.tensorSize) }) {
                found = (entry, base)
                break
            }
        }
        guard let (entry, base) = found else {
            throw .paramInvalid("no cache of cluster \(clusterID) holds address \(hex)")
        }
        guard remoteAccessible, entry.remoteAccessible else {
            throw .paramInvalid(
                "cache \(entry.id) (address \(hex)) does not accept pushes: it is not remote-accessible")
        }
        guard UInt(count) <= UInt(entry.tensorSize) - (address - base) else {
            throw .paramInvalid(
                "\(count) bytes at \(hex) run past the end of a \(entry.tensorSize)-byte tensor of cache \(entry.id)")
        }
        if entry.placement == .host, request.requesterKind == .host {
            throw LLMError(
                .featureNotEnabled, "host → host transfers are not supported (cache \(entry.id) is on the host)")
        }
        let extent: Grant.Extent
        if let (regionID, pool) = pools.first(where: { $0.1.region.contains(address, count) }) {
            extent = Grant.Extent(
                regionID: regionID, offset: UInt64(address - pool.region.address), length: UInt64(count))
        } else if !entry.isOwned, let tensor = entry.addresses.firstIndex(of: base) {
            let regions = try reach.regions(of: entry.id, ids: table.registeredRegions.ids(of: entry.id))
            extent = Grant.Extent(regionID: regions[tensor], offset: UInt64(address - base), length: UInt64(count))
        } else {
            throw unshareable(entry, at: base)
        }
        let grant = Grant(
            pinID: 0, kind: MemoryKind(entry.placement), isBlocks: entry.isBlocks, stride: UInt64(entry.stride),
            slots: UInt32(clamping: entry.slots), tensorCount: 1, extents: [extent])
        return (grant, [entry.record])
    }

    /// Appends where `tensors` of `entry` lie in the shared pools, or for registered memory in the regions
    /// published for it: slot `slot` of each, or (nil) the whole tensor.
    private func appendExtents(
        of entry: CacheEntry, tensors: Range<Int>, slot: Int?, pools: [(UInt32, BlockPool)], table: CacheTable,
        reach: LinkReach, to extents: inout [Grant.Extent]
    ) throws(LLMError) {
        var registered: [UInt32]?
        for tensor in tensors {
            let base = entry.addresses[tensor]
            let regionID: UInt32
            let offset: UInt64
            if let (id, pool) = pools.first(where: { $0.1.region.contains(base, entry.tensorSize) }) {
                (regionID, offset) = (id, UInt64(base - pool.region.address))
            } else if !entry.isOwned {
                // A registered tensor is a region of its own, whole.
                let ids: [UInt32]
                if let registered {
                    ids = registered
                } else {
                    ids = try reach.regions(of: entry.id, ids: table.registeredRegions.ids(of: entry.id))
                    registered = ids
                }
                (regionID, offset) = (ids[tensor], 0)
            } else {
                throw unshareable(entry, at: base)
            }
            extents.append(
                slot.map {
                    .init(regionID: regionID, offset: offset + UInt64($0 * entry.stride), length: UInt64(entry.stride))
                } ?? .init(regionID: regionID, offset: offset, length: UInt64(entry.tensorSize)))
        }
    }

    /// Why `entry`'s pool memory at `base` cannot go to a peer: a pool the runtime cannot hand to another process
    /// over the memfd mapping (the ACL backend's host pool, or its device pool without IPC).
    private func unshareable(_ entry: CacheEntry, at base: UInt) -> LLMError {
        let resources = store.resources
        let backend = resources.runtime.backend
        if let host = resources.hostPool, host.region.contains(base, entry.tensorSize) {
            return LLMError(
                .featureNotEnabled,
                "cache \(entry.id) is in the host pool, which the \(backend) backend cannot share with another process over the shared-memory transport (its pinned host memory has no memfd); a link over UCX reaches it (DATADIST_TRANSPORT=ucx)"
            )
        }
        if let device = resources.devicePool, device.region.contains(base, entry.tensorSize) {
            let why = resources.runtime.availability(of: .ipc).reason ?? "its device memory has no memfd"
            return LLMError(
                .featureNotEnabled,
                "cache \(entry.id) is in the device pool, which the \(backend) backend cannot share with another process over the shared-memory transport: \(why); a link over UCX stages it (DATADIST_TRANSPORT=ucx or auto)"
            )
        }
        return LLMError(.featureNotEnabled, "cache \(entry.id) is not in a pool this host can share")
    }

    /// The entry, slot and bound key a request names.
    private func target(of request: ResolveRequest, in table: CacheTable) throws(LLMError) -> (
        CacheEntry, Int, IndexKey?
    ) {
        let clusterID = store.resources.clusterID
        switch request.target {
        case .key(let reqID, let prefixID, let modelID):
            guard (reqID != .max) != (prefixID != .max) else {
                throw .paramInvalid(
                    "a key needs exactly one of reqID and prefixID; got req \(reqID), prefix \(prefixID)")
            }
            let key = IndexKey(CacheKey(promptClusterID: 0, reqID: reqID, modelID: modelID, prefixID: prefixID))
            guard let binding = table.binding(key), let entry = table.entry(binding.cacheID) else {
                throw LLMError(.kvCacheNotExist, "no cache of cluster \(clusterID) is bound to \(key)")
            }
            return (entry, binding.slot, key)
        case .slot(let cacheID, let batchIndex):
            guard let entry = table.entry(cacheID), Int(batchIndex) < entry.slots else {
                // Spec §6.1: past the batch of an existing cache, a push is PARAM_INVALID, a pull KV_CACHE_NOT_EXIST.
                if request.write, let entry = table.entry(cacheID) {
                    throw .paramInvalid(
                        "push to batch index \(batchIndex) of cache \(cacheID) of cluster \(clusterID), which has \(entry.slots) slots"
                    )
                }
                throw LLMError(.kvCacheNotExist, "cluster \(clusterID) has no slot \(batchIndex) of a cache \(cacheID)")
            }
            let key = entry.keyBySlot[Int(batchIndex)]
            guard key != nil || entry.remoteAccessible else {
                throw LLMError(
                    .kvCacheNotExist,
                    "slot \(batchIndex) of cache \(cacheID) is bound to no key and the cache is not remote-accessible")
            }
            return (entry, Int(batchIndex), key)
        case .address(let address):
            throw .paramInvalid("address 0x\(String(address, radix: 16)) names no cache slot")
        case .blocks(let modelID):
            let key = IndexKey(blocksModelID: modelID)
            guard let binding = table.binding(key), let entry = table.entry(binding.cacheID) else {
                throw LLMError(.kvCacheNotExist, "no blocks cache of cluster \(clusterID) is bound to model \(modelID)")
            }
            return (entry, 0, nil)
        }
    }

    /// The owner's checks: tensor range, slot size, block indices, the transfer support matrix, write access.
    private func check(_ request: ResolveRequest, against entry: CacheEntry, remoteAccessible: Bool) throws(LLMError) {
        let tensors = entry.desc.numTensors
        guard request.tensors.upperBound <= tensors else {
            throw .paramInvalid("tensors \(request.tensors) exceed the \(tensors) tensors of cache \(entry.id)")
        }
        if request.blocks.isEmpty {
            guard !entry.isBlocks else {
                throw .paramInvalid(
                    "cache \(entry.id) is a blocks cache; blocks → contiguous transfers are not supported")
            }
            guard request.bytesPerSlot <= UInt64(entry.stride) else {
                throw .paramInvalid(
                    "transfer of \(request.bytesPerSlot) bytes per slot exceeds the \(entry.stride)-byte slots of cache \(entry.id)"
                )
            }
        } else {
            guard entry.isBlocks else { throw .paramInvalid("cache \(entry.id) is not a blocks cache") }
            if let bad = request.blocks.first(where: { Int($0) >= entry.slots }) {
                throw .paramInvalid("block \(bad) is outside the \(entry.slots) blocks of cache \(entry.id)")
            }
        }
        switch (entry.placement, request.requesterKind) {
        case (.host, .host):
            throw LLMError(
                .featureNotEnabled, "host → host transfers are not supported (cache \(entry.id) is on the host)")
        case (.host, .device) where !entry.isBlocks && request.requesterIsBlocks:
            throw .paramInvalid("host contiguous → device blocks transfers are not supported (cache \(entry.id))")
        default: break
        }
        if request.write {
            guard remoteAccessible, entry.remoteAccessible else {
                throw .paramInvalid("cache \(entry.id) does not accept pushes: it is not remote-accessible")
            }
        }
    }
}

extension DeviceMemory {
    /// Whether `count` bytes at `address` lie inside this memory.
    func contains(_ address: UInt, _ count: Int) -> Bool {
        address >= self.address && count >= 0 && address - self.address <= UInt(size)
            && UInt(count) <= UInt(size) - (address - self.address)
    }
}
