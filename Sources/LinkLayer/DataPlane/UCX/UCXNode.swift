import DeviceRuntime
import Synchronization
import ThreadSanitizerSupport

/// An instance's UCX side: one context and worker, the progress thread, and its local regions registered once
/// (`ucp_mem_map`) and kept registered while the node lives. Links made over UCX share it.
package final class UCXNode: Sendable {
    package let settings: UCXSettings
    /// How device memory moves, when host code cannot address it (the ACL backend); nil when all is host memory.
    package let staging: UCXStaging?
    let worker: UCXWorker
    private let progress: UCXProgressThread
    private let registrations = Lock(Registrations())

    private struct Registrations {
        var byRegion: [UInt32: UCXRegistration] = [:]
        /// Regions withdrawn for good (`withdraw`): never registered again, even by an offer made just before.
        var withdrawn: Set<UInt32> = []
    }

    /// Creates the context, worker and progress thread; `environment` is the process's (for `defaults`).
    package init(settings: UCXSettings, environment: [String: String], staging: UCXStaging? = nil) throws(LinkError) {
        self.settings = settings
        self.staging = staging
        UCXLog.installed
        worker = try UCXWorker(settings: settings, environment: environment)
        progress = try UCXProgressThread(worker: worker)
    }

    deinit { progress.stop() }

    /// This node's offer of `regions`, each registered on first use (writable by peers when `remoteWrite`).
    /// A region registered before under the same id, base and size is not registered again; a withdrawn one is
    /// left out. With `staging`, a device region is offered without a remote key and never registered: UCX is
    /// not given device memory (its bytes are staged, `UCXDataPlane`).
    package func offer(of regions: [PublishedRegion], remoteWrite: Bool) throws(LinkError) -> UCXOffer {
        var offered: [UCXOffer.Region] = []
        for region in regions {
            guard let base = region.base else { continue }
            let size = Int(clamping: region.descriptor.size)
            let id = region.descriptor.regionID
            let (known, withdrawn) = registrations.withLock { ($0.byRegion[id], $0.withdrawn.contains(id)) }
            guard !withdrawn else { continue }
            if staging != nil, region.descriptor.kind == .device {
                offered.append(UCXOffer.Region(descriptor: region.descriptor, base: UInt64(base), remoteKey: []))
                continue
            }
            let registration: UCXRegistration
            if let known, known.base == base, known.size == size {
                registration = known
            } else {
                let made = try UCXRegistration(worker: worker, base: base, size: size, remoteWrite: remoteWrite)
                // Registered outside the lock (ucp_mem_map may pin pages); one withdrawn meanwhile is dropped again.
                guard
                    registrations.withLock({ state -> Bool in
                        guard !state.withdrawn.contains(id) else { return false }
                        state.byRegion[id] = made
                        return true
                    })
                else { continue }
                registration = made
            }
            offered.append(
                UCXOffer.Region(
                    descriptor: region.descriptor, base: UInt64(base), remoteKey: registration.packedKey))
        }
        return UCXOffer(workerAddress: worker.address, regions: offered)
    }

    /// The local ranges registered with UCX (`ucp_mem_map`) now.
    package var registeredRanges: [Range<UInt>] {
        registrations.withLock { $0.byRegion.values.map { $0.base..<($0.base + UInt($0.size)) } }
    }

    /// Unregisters `regionIDs` (`ucp_mem_unmap`) for good: the memory behind them may go once this returns. The
    /// caller must know that no peer is moving bytes of them any more; later offers leave them out.
    package func withdraw(_ regionIDs: [UInt32]) {
        // The registrations taken out are unmapped when the last reference goes: here, outside the lock.
        let dropped = registrations.withLock { state -> [UCXRegistration] in
            state.withdrawn.formUnion(regionIDs)
            return regionIDs.compactMap { state.byRegion.removeValue(forKey: $0) }
        }
        withExtendedLifetime(dropped) {}
    }
}
