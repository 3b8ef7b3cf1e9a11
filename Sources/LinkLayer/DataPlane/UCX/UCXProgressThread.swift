internal import CUCX
import DeviceRuntime
internal import Glibc
import Synchronization

/// The thread that progresses an instance's worker while no transfer of its own does: UCX over TCP carries a
/// peer's one-sided reads as messages the owner must answer. When nothing is pending it sleeps on the worker's
/// event fd (`ucp_worker_arm`), so an idle instance costs no CPU.
final class UCXProgressThread: Sendable {
    private let worker: UCXWorker
    private let stopping: StopFlag
    private let thread: JoinableThread

    private final class StopFlag: Sendable {
        let raised = Atomic<Bool>(false)
    }

    init(worker: UCXWorker) throws(LinkError) {
        let stopping = StopFlag()
        self.worker = worker
        self.stopping = stopping
        do {
            thread = try JoinableThread.start {
                Self.run(worker, until: stopping)
            }
        } catch {
            throw LinkError(.io, "UCX: \(error)")
        }
    }

    private static func run(_ worker: UCXWorker, until stopping: StopFlag) {
        while !stopping.raised.load(ordering: .acquiring) {
            if worker.progress() != 0 { continue }
            let status = ucp_worker_arm(worker.handle)
            if status == UCS_ERR_BUSY { continue }
            var descriptor = pollfd(fd: worker.eventFD, events: Int16(POLLIN), revents: 0)
            // Bounded only as a safeguard; `stop` wakes the thread with ucp_worker_signal.
            _ = poll(&descriptor, 1, 1000)
        }
    }

    /// Stops and joins the thread.
    func stop() {
        stopping.raised.store(true, ordering: .releasing)
        _ = ucp_worker_signal(worker.handle)
        thread.join()
    }
}
