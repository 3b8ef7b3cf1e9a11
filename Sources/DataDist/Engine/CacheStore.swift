import BlockPool
import DeviceRuntime
import Synchronization
import ThreadSanitizerSupport

/// The instance's resources and its cache table, with the steps every operation on the table shares: refusing
/// once finalized, and pinning caches while their bytes are copied without holding the lock.
final class CacheStore: Sendable {
    let resources: InstanceResources
    let table: Lock<CacheTable>

    init(resources: InstanceResources) {
        self.resources = resources
        table = Lock(CacheTable(lease: resources.config.requestKeyLease))
    }

    /// Runs `body` with views of the caches `ids`, their memory pinned so a concurrent deallocate cannot free it.
    /// The lock is not held while `body` copies.
    func withPinned<R>(
        _ ids: [Int64], operation: String, _ body: ([CacheView]) throws(LLMError) -> R
    ) throws(LLMError) -> R {
        let pinned = try table.withLock { table throws(LLMError) in
            try ensureOpen(table)
            var pinned: [LocalPin] = []
            pinned.reserveCapacity(ids.count)
            for id in ids {
                guard let view = table.pinnedView(id) else {
                    throw LLMError(.kvCacheNotExist, "\(operation): cache \(id) does not exist")
                }
                pinned.append(view)
            }
            for pin in pinned { pin.pin() }
            return pinned
        }
        defer { for pin in pinned { unpin(pin) } }
        return try body(pinned.map(\.view))
    }

    /// `withPinned` for two caches, without arrays: one lock round trip, no heap allocation.
    func withPinned<R>(
        _ first: Int64, _ second: Int64, operation: String, _ body: (CacheView, CacheView) throws(LLMError) -> R
    ) throws(LLMError) -> R {
        let (a, b) = try table.withLock { table throws(LLMError) in
            try ensureOpen(table)
            guard let a = table.pinnedView(first), let b = table.pinnedView(second) else {
                let missing = table.entry(first) == nil ? first : second
                throw LLMError(.kvCacheNotExist, "\(operation): cache \(missing) does not exist")
            }
            a.pin()
            b.pin()
            return (a, b)
        }
        defer {
            unpin(a)
            unpin(b)
        }
        return try body(a.view, b.view)
    }

    /// Pins cache `id` until `release(_:)`, for a task that reads it over time (`transferCacheAsync`): a
    /// deallocate meanwhile drops the id, and the memory goes back to the pool at the release.
    func hold(_ id: Int64, operation: String) throws(LLMError) -> LocalPin {
        try table.withLock { table throws(LLMError) in
            try ensureOpen(table)
            guard let pin = table.pinnedView(id) else {
                throw LLMError(.kvCacheNotExist, "\(operation): cache \(id) does not exist")
            }
            pin.pin()
            return pin
        }
    }

    /// Ends a pin taken with `hold`.
    func release(_ pin: LocalPin) { unpin(pin) }

    /// Ends a local pin; the last one on an erased cache's memory lets the table drop it (taking the lock only then).
    private func unpin(_ pin: LocalPin) {
        if pin.unpin() { table.withLock { $0.endRetiredPin(cacheID: pin.view.id) } }
    }

    @inline(__always)
    func ensureOpen(_ table: CacheTable) throws(LLMError) {
        if table.isClosed { throw finalized() }
    }

    private func finalized() -> LLMError {
        LLMError(.failed, "the LLMDataDist of cluster \(resources.clusterID) was finalized")
    }

    /// Pools a peer may reach, by the region id the link handshake gave them. Over the memfd mapping (`overUCX`
    /// false): those with a memfd, and the device pool when the runtime exports device memory by key (the ACL
    /// backend's IPC). Over UCX: every pool, since UCX reaches host memory directly and stages device memory
    /// through pinned host buffers (`UCXStaging`), which needs no IPC.
    func sharedPools(overUCX: Bool) -> [(UInt32, BlockPool)] {
        var pools: [(UInt32, BlockPool)] = []
        if let device = resources.devicePool, overUCX || device.region.shared != nil || sharesDevicePoolByKey {
            pools.append((0, device))
        }
        if let host = resources.hostPool, overUCX || host.region.shared != nil { pools.append((1, host)) }
        return pools
    }

    /// Whether device memory goes to (and comes from) same-host peers by IPC key: the ACL backend, when its library
    /// has the IPC entry points (the emulator's pools are memfds).
    var sharesDevicePoolByKey: Bool {
        resources.runtime.backend == .acl && resources.runtime.availability(of: .ipc).isAvailable
    }
}
