import BlockPool

/// The owner's side of batched pulls (`pullCaches`): a whole batch of keys is checked under one lock and granted
/// under one pin, or refused without taking anything.
extension CacheManager {
    /// The owner's side: checks every item of `request` under one lock; grants all of them under one pin, or
    /// refuses with the first bad item and takes nothing.
    func resolveBatch(_ request: ResolveBatchMessage, link serial: UInt64) -> Result<GrantMessage, LLMError> {
        let remoteAccessible = context.config.enableRemoteCacheAccessible
        let pools = sharedPools
        return grantUnderLock { table throws(LLMError) in
            var extents: [GrantMessage.Extent] = []
            extents.reserveCapacity(request.extentCount)
            // Only what the grant needs, not the entries: a copy of an entry still alive when `reserve` edits the
            // table's entry would make that edit copy the entry's whole key map (one key per slot).
            var found: [(tensors: Int, reservable: Bool, key: IndexKey)] = []
            found.reserveCapacity(request.items.count)
            var labelByKey: [IndexKey: UInt32] = [:]
            var memory: [CacheRecord] = []
            var pinnedEntries = Set<Int64>()
            var (placement, stride) = (Placement.device, 0)
            for item in request.items {
                do throws(LLMError) {
                    let single = ResolveMessage(
                        target: .key(reqID: item.reqID, prefixID: item.prefixID, modelID: item.modelID), write: false,
                        tensors: 0..<Int(item.tensorCount), bytesPerSlot: item.bytesPerSlot,
                        requesterPlacement: item.requesterPlacement, requesterIsBlocks: false, blocks: [])
                    let (entry, slot, boundKey) = try target(of: single, in: table)
                    guard let key = boundKey else { throw LLMError(.kvCacheNotExist, "the key is bound to nothing") }
                    if let earlier = labelByKey.updateValue(item.label, forKey: key) {
                        throw .paramInvalid("\(key) is also pulls[\(earlier)] of this batch")
                    }
                    try check(single, against: entry, remoteAccessible: remoteAccessible)
                    guard entry.desc.numTensors == Int(item.tensorCount) else {
                        throw .paramInvalid(
                            "the remote cache \(entry.id) has \(entry.desc.numTensors) tensors, the local cache \(item.tensorCount)")
                    }
                    try appendExtents(of: entry, tensors: single.tensors, slot: slot, pools: pools, to: &extents)
                    let reservable = key.namespace == .request && entry.isOwned && !remoteAccessible
                    if let held = entry.memory, pinnedEntries.insert(entry.id).inserted { memory.append(held) }
                    if found.isEmpty { (placement, stride) = (entry.placement, entry.stride) }
                    found.append((entry.desc.numTensors, reservable, key))
                } catch {
                    throw LLMError(error.status, "pullCaches pulls[\(item.label)]: \(error.message)")
                }
            }
            // Every item is good: take the request keys now; the release settles them.
            var reservations: [Reservation] = []
            reservations.reserveCapacity(found.count)
            for item in found where item.reservable {
                if let reservation = table.reserve(item.key, tensors: 0..<item.tensors) { reservations.append(reservation) }
            }
            let pinID = table.pin(memory, peer: serial, reservations: reservations)
            return GrantMessage(
                pinID: pinID, placement: placement, isBlocks: false, stride: UInt64(stride),
                slots: UInt32(found.count), tensorCount: UInt32(extents.count), extents: extents)
        }
    }
}
