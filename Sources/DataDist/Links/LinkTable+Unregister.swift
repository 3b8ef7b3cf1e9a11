import DeviceRuntime
import Dispatch
import LinkLayer
import Logging
import Synchronization
import ThreadSanitizerSupport

extension LinkTable {
    /// After cache `cacheID` was erased: waits until no peer's transfer pins it any more (they post their releases
    /// once their bytes moved), up to `syncKVTimeout`; a link still pinning it then is closed as failed (its
    /// endpoint is closed first, so its transfer fails and moves nothing more, then its pins go). Then `regions`,
    /// which no cache uses any more, are unregistered from UCX, and the caller may free the memory.
    func settlePeerTransfers(ofUnregistered cacheID: Int64, withdrawing regions: [UInt32]) {
        let timeout = store.resources.config.syncKVTimeout
        var deadline = ContinuousClock.now.advanced(by: timeout)
        var failed = false
        var rounds = 0
        while true {
            let serials = store.table.withLock { $0.linksPinning(cacheID) }
            if serials.isEmpty { break }
            if ContinuousClock.now >= deadline {
                guard !failed else {
                    // A link that never finished closing: its memory stays registered rather than unmapped in use.
                    store.resources.logger.error(
                        "cache \(cacheID) is still pinned by links \(serials.sorted()) after they were closed; its UCX registration is kept"
                    )
                    return
                }
                failLinks(
                    serials,
                    reason:
                        "cache \(cacheID) was unregistered while the peer's transfer of it was still in flight after \(timeout)"
                )
                (failed, deadline) = (true, ContinuousClock.now.advanced(by: Self.closeWait))
            }
            // A pull's release follows its copy within microseconds; a long copy gets 1 ms sleeps.
            rounds += 1
            if rounds < 64 {
                JoinableThread.yield()
            } else {
                _ = DispatchSemaphore(value: 0).wait(timeout: .now() + .milliseconds(1))
            }
        }
        if !regions.isEmpty { ucx.withdraw(regions) }
    }

    /// How long links closed by an unregister get to finish closing (their endpoint's close is bounded by 2 s).
    static let closeWait: Duration = .seconds(5)

    /// Closes the links `serials` as failed for `reason`; closing voids the pins they held.
    private func failLinks(_ serials: Set<UInt64>, reason: String) {
        let links = registry.withLock { registry in registry.links.values.filter { serials.contains($0.serial) } }
        for link in links {
            store.resources.logger.warning("closing the link to cluster \(link.remoteClusterID): \(reason)")
            link.channel.close(.failed(reason))
        }
    }
}
