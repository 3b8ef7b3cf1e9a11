import Synchronization
import ThreadSanitizerSupport

/// An instance's UCX side: one context and worker, the progress thread, and its local regions registered once
/// (`ucp_mem_map`) and kept registered while the node lives. Links made over UCX share it.
package final class UCXNode: Sendable {
    package let settings: UCXSettings
    let worker: UCXWorker
    private let progress: UCXProgressThread
    private let registrations = Lock<[UInt32: UCXRegistration]>([:])

    /// Creates the context, worker and progress thread; `environment` is the process's (for `defaults`).
    package init(settings: UCXSettings, environment: [String: String]) throws(LinkError) {
        self.settings = settings
        worker = try UCXWorker(settings: settings, environment: environment)
        progress = try UCXProgressThread(worker: worker)
    }

    deinit { progress.stop() }

    /// This node's offer of `regions`, each registered on first use (writable by peers when `remoteWrite`).
    /// A region registered before under the same id, base and size is not registered again.
    package func offer(of regions: [PublishedRegion], remoteWrite: Bool) throws(LinkError) -> UCXOffer {
        var offered: [UCXOffer.Region] = []
        for region in regions {
            guard let base = region.base else { continue }
            let size = Int(clamping: region.descriptor.size)
            let id = region.descriptor.regionID
            let known = registrations.withLock { $0[id] }
            let registration: UCXRegistration
            if let known, known.base == base, known.size == size {
                registration = known
            } else {
                registration = try UCXRegistration(worker: worker, base: base, size: size, remoteWrite: remoteWrite)
                registrations.withLock { $0[id] = registration }
            }
            offered.append(
                UCXOffer.Region(
                    descriptor: region.descriptor, base: UInt64(base), remoteKey: registration.packedKey))
        }
        return UCXOffer(workerAddress: worker.address, regions: offered)
    }
}
