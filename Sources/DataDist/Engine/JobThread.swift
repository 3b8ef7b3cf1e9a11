import DeviceRuntime
import Dispatch
import Synchronization
import ThreadSanitizerSupport

/// A persistent thread that runs one submitted job at a time: the copy engine's workers.
final class JobThread: Sendable {
    private let wake = DispatchSemaphore(value: 0)
    private let job = Lock<(@Sendable () -> Void)?>(nil)
    private let stopping = Atomic<Bool>(false)

    /// Starts the thread; throws when the process cannot start one.
    init() throws(JoinableThread.StartFailure) {
        try JoinableThread.detach { [self] in
            while true {
                wake.wait()
                if stopping.load(ordering: .acquiring) { return }
                job.withLock { job in
                    defer { job = nil }
                    return job
                }?()
            }
        }
    }

    func submit(_ body: @escaping @Sendable () -> Void) {
        job.withLock { $0 = body }
        wake.signal()
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        wake.signal()
    }
}
