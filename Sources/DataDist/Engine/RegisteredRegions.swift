import DeviceRuntime
import LinkLayer

/// The regions links publish over UCX for remote-accessible registered caches: one per distinct (address, size)
/// of a registered tensor (identical registrations share one, as the reference registers identical pairs once).
/// Ids come from a counter above the pools' (0 and 1) and are not reused, so a remote key a peer still holds never
/// names memory registered later.
struct RegisteredRegions: Sendable {
    private struct Span: Hashable {
        let address: UInt
        let size: Int
    }

    private struct Region {
        let id: UInt32
        let kind: MemoryKind
        var users: Int
    }

    private var bySpan: [Span: Region] = [:]
    /// Each registered cache's region ids, one per tensor.
    private var byCache: [Int64: [UInt32]] = [:]
    private var nextID = Self.firstID
    /// Ids of regions no cache uses any more, for the owner to withdraw from UCX (`takeWithdrawn`).
    private var withdrawn: [UInt32] = []

    /// Region ids below this are the pools'.
    static let firstID: UInt32 = 16

    /// Adds the tensors of registered cache `cacheID`, each `size` bytes.
    mutating func add(cache cacheID: Int64, addresses: [UInt], size: Int, placement: Placement) {
        byCache[cacheID] = addresses.map { address in
            let span = Span(address: address, size: size)
            if let known = bySpan[span] {
                bySpan[span]?.users += 1
                return known.id
            }
            let id = nextID
            // 4 billion registrations wrap around; the ids of that many earlier ones are long withdrawn.
            nextID = nextID == .max ? Self.firstID : nextID + 1
            bySpan[span] = Region(id: id, kind: placement == .host ? .host : .device, users: 1)
            return id
        }
    }

    /// Drops cache `cacheID`; a region it was the last user of is queued for withdrawal.
    mutating func remove(cache cacheID: Int64) {
        guard let ids = byCache.removeValue(forKey: cacheID) else { return }
        let gone = Set(ids)
        for (span, region) in bySpan where gone.contains(region.id) {
            let users = region.users - ids.lazy.filter { $0 == region.id }.count
            if users > 0 {
                bySpan[span]?.users = users
            } else {
                bySpan[span] = nil
                withdrawn.append(region.id)
            }
        }
    }

    /// The region ids of cache `cacheID`'s tensors, nil when it has none (not registered remote-accessible).
    func ids(of cacheID: Int64) -> [UInt32]? { byCache[cacheID] }

    /// Every region, as a link publishes it (UCX only).
    var published: [PublishedRegion] {
        bySpan.map { span, region in
            PublishedRegion(
                descriptor: RegionDescriptor(regionID: region.id, kind: region.kind, size: UInt64(span.size)), fd: -1,
                base: span.address, isCallerMemory: true)
        }.sorted { $0.descriptor.regionID < $1.descriptor.regionID }
    }

    /// The regions queued for withdrawal since the last call.
    mutating func takeWithdrawn() -> [UInt32] {
        defer { withdrawn.removeAll() }
        return withdrawn
    }

    /// Forgets every region (finalize: the UCX node goes with the instance); ids are still not reused.
    mutating func removeAll() {
        bySpan.removeAll()
        byCache.removeAll()
        withdrawn.removeAll()
    }
}
