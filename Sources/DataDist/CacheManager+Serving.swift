import BlockPool
import DeviceRuntime
import Logging
import Synchronization

/// The owner's side of transfers: peers name a cache, the owner checks the request against its own table, pins
/// the memory and says where it lies in the shared pools. Nothing outside a named cache's bounds is granted.
extension CacheManager {
    /// Answers one request arriving on link `serial` (on that link's reader thread).
    func handlePeerRequest(_ frame: Frame, link serial: UInt64, peer: UInt64) -> PeerConnection.Reply {
        func reply(_ kind: MessageKind, _ payload: [UInt8]) -> PeerConnection.Reply {
            PeerConnection.Reply(frame: Frame(kind: kind, requestID: frame.requestID, payload: payload))
        }
        func granted(_ grant: GrantMessage) -> PeerConnection.Reply {
            var answer = reply(.grant, grant.encoded())
            answer.expectsMore = grant.grantedBytes < Self.longCopyBytes
            return answer
        }
        func refuse(_ error: LLMError) -> PeerConnection.Reply {
            context.logger.info("refused a request of cluster \(peer): \(error)")
            return reply(.failure, FailureMessage(error).encoded())
        }
        switch frame.kind {
        case .resolve:
            // A batch travels in a resolve frame too, marked by its first byte.
            let isBatch = frame.payload.first == ResolveBatchMessage.tag
            do throws(ProtocolError) {
                let outcome =
                    isBatch
                    ? resolveBatch(try ResolveBatchMessage(payload: frame.payload), link: serial)
                    : resolve(try ResolveMessage(payload: frame.payload), link: serial)
                switch outcome {
                case .success(let grant): return granted(grant)
                case .failure(let error): return refuse(error)
                }
            } catch {
                return refuse(.paramInvalid("\(isBatch ? "batch resolve" : "resolve"): \(error)"))
            }
        case .release:
            // Releases are posted, not awaited: nothing is sent back, problems are only logged.
            guard let release = try? ReleaseMessage(payload: frame.payload) else {
                context.logger.info("cluster \(peer) sent a malformed release")
                return PeerConnection.Reply(frame: nil)
            }
            if !table.withLock({ $0.release(pin: release.pinID, peer: serial, succeeded: release.succeeded) }) {
                context.logger.info("cluster \(peer) released pin \(release.pinID), which its link does not hold")
            }
            return PeerConnection.Reply(frame: nil)
        case .unlink:
            return PeerConnection.Reply(
                frame: Frame(kind: .ack, requestID: frame.requestID, payload: []), closeAfterwards: true)
        case .ping:
            return reply(.ack, [])
        case .hello, .welcome, .grant, .ack, .failure:
            return refuse(.paramInvalid("unexpected \(frame.kind) message on an established link"))
        }
    }

    /// Grants of at least this many bytes keep the peer copying about as long as `PeerConnection.serveSpin` or
    /// longer (1 MiB: 70–110 µs at DRAM speed), so the reader thread does not poll for its next request meanwhile.
    static let longCopyBytes: UInt64 = 1 << 20

    /// Finds what `request` names, checks the transfer it describes, and pins it for link `serial`.
    func resolve(_ request: ResolveMessage, link serial: UInt64) -> Result<GrantMessage, LLMError> {
        let remoteAccessible = context.config.enableRemoteCacheAccessible
        let pools = sharedPools
        return grantUnderLock { table throws(LLMError) in
            let (unpinned, memory, consumedKey) = try grant(for: request, in: table, remoteAccessible: remoteAccessible, pools: pools)
            // A pull through a request key of an owned cache takes those tensors now; the release settles it.
            let reservations = consumedKey.flatMap { table.reserve($0, tensors: request.tensors) }.map { [$0] } ?? []
            var grant = unpinned
            grant.pinID = table.pin(memory, peer: serial, reservations: reservations)
            return grant
        }
    }

    /// Runs `body` under the table lock, unless this instance is finalizing; a thrown error is the refusal.
    func grantUnderLock(_ body: (inout CacheTable) throws(LLMError) -> GrantMessage) -> Result<GrantMessage, LLMError> {
        table.withLock { table in
            do throws(LLMError) {
                guard !table.isClosed else { throw LLMError(.failed, "cluster \(context.clusterID) is finalizing") }
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
        for request: ResolveMessage, in table: CacheTable, remoteAccessible: Bool, pools: [(UInt32, BlockPool)]
    ) throws(LLMError) -> (GrantMessage, [CacheRecord], consumedKey: IndexKey?) {
        let (entry, slot, boundKey) = try target(of: request, in: table)
        try check(request, against: entry, remoteAccessible: remoteAccessible)
        var extents: [GrantMessage.Extent] = []
        try appendExtents(
            of: entry, tensors: request.tensors, slot: request.blocks.isEmpty ? slot : nil, pools: pools, to: &extents)
        let consumes = boundKey?.namespace == .request && entry.isOwned && !entry.isBlocks && !request.write && !remoteAccessible
        let grant = GrantMessage(
            pinID: 0, placement: entry.placement, isBlocks: entry.isBlocks, stride: UInt64(entry.stride),
            slots: UInt32(entry.slots), tensorCount: UInt32(entry.desc.numTensors), extents: extents)
        return (grant, entry.memory.map { [$0] } ?? [], consumes ? boundKey : nil)
    }

    /// Appends where `tensors` of `entry` lie in the shared pools: slot `slot` of each, or (nil) the whole tensor.
    func appendExtents(
        of entry: CacheEntry, tensors: Range<Int>, slot: Int?, pools: [(UInt32, BlockPool)],
        to extents: inout [GrantMessage.Extent]
    ) throws(LLMError) {
        for tensor in tensors {
            let base = entry.addresses[tensor]
            guard let (poolID, pool) = pools.first(where: { $0.1.region.contains(base, entry.tensorSize) }) else {
                throw LLMError(
                    .featureNotEnabled,
                    "cache \(entry.id) is not in a pool this host can share (registered memory is served only inside this process)")
            }
            let offset = UInt64(base - pool.region.address)
            extents.append(
                slot.map { .init(poolID: poolID, offset: offset + UInt64($0 * entry.stride), length: UInt64(entry.stride)) }
                    ?? .init(poolID: poolID, offset: offset, length: UInt64(entry.tensorSize)))
        }
    }

    /// The entry, slot and bound key a request names.
    func target(of request: ResolveMessage, in table: CacheTable) throws(LLMError) -> (CacheEntry, Int, IndexKey?) {
        switch request.target {
        case .key(let reqID, let prefixID, let modelID):
            guard (reqID != .max) != (prefixID != .max) else {
                throw .paramInvalid("a key needs exactly one of reqID and prefixID; got req \(reqID), prefix \(prefixID)")
            }
            let key = IndexKey(CacheKey(promptClusterID: 0, reqID: reqID, modelID: modelID, prefixID: prefixID))
            guard let binding = table.binding(key), let entry = table.entry(binding.cacheID) else {
                throw LLMError(.kvCacheNotExist, "no cache of cluster \(context.clusterID) is bound to \(key)")
            }
            return (entry, binding.slot, key)
        case .slot(let cacheID, let batchIndex):
            guard let entry = table.entry(cacheID), Int(batchIndex) < entry.slots else {
                throw LLMError(.kvCacheNotExist, "cluster \(context.clusterID) has no slot \(batchIndex) of a cache \(cacheID)")
            }
            let key = entry.keyBySlot[Int(batchIndex)]
            guard key != nil || entry.remoteAccessible else {
                throw LLMError(
                    .kvCacheNotExist,
                    "slot \(batchIndex) of cache \(cacheID) is bound to no key and the cache is not remote-accessible")
            }
            return (entry, Int(batchIndex), key)
        case .blocks(let modelID):
            let key = IndexKey(blocksModelID: modelID)
            guard let binding = table.binding(key), let entry = table.entry(binding.cacheID) else {
                throw LLMError(.kvCacheNotExist, "no blocks cache of cluster \(context.clusterID) is bound to model \(modelID)")
            }
            return (entry, 0, nil)
        }
    }

    /// The owner's checks: tensor range, slot size, block indices, the transfer support matrix, write access.
    func check(_ request: ResolveMessage, against entry: CacheEntry, remoteAccessible: Bool) throws(LLMError) {
        let tensors = entry.desc.numTensors
        guard request.tensors.upperBound <= tensors else {
            throw .paramInvalid("tensors \(request.tensors) exceed the \(tensors) tensors of cache \(entry.id)")
        }
        if request.blocks.isEmpty {
            guard !entry.isBlocks else {
                throw .paramInvalid("cache \(entry.id) is a blocks cache; blocks → contiguous transfers are not supported")
            }
            guard request.bytesPerSlot <= UInt64(entry.stride) else {
                throw .paramInvalid(
                    "transfer of \(request.bytesPerSlot) bytes per slot exceeds the \(entry.stride)-byte slots of cache \(entry.id)")
            }
        } else {
            guard entry.isBlocks else { throw .paramInvalid("cache \(entry.id) is not a blocks cache") }
            if let bad = request.blocks.first(where: { Int($0) >= entry.slots }) {
                throw .paramInvalid("block \(bad) is outside the \(entry.slots) blocks of cache \(entry.id)")
            }
        }
        switch (entry.placement, request.requesterPlacement) {
        case (.host, .host):
            throw LLMError(.featureNotEnabled, "host → host transfers are not supported (cache \(entry.id) is on the host)")
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

    /// Pools a peer has mapped, by the id the link handshake gave them.
    var sharedPools: [(UInt32, BlockPool)] {
        [(UInt32(0), context.devicePool), (UInt32(1), context.hostPool)].compactMap { id, pool in
            pool.flatMap { $0.region.shared == nil ? nil : (id, $0) }
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
