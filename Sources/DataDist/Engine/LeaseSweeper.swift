import DeviceRuntime
import Dispatch
import Logging
import Synchronization
import ThreadSanitizerSupport

/// Expires request keys whose lease ran out (`LLMConfig.requestKeyLease`): a thread of the instance that sleeps
/// until the next lease's deadline, unbinds what is due under the table lock, and logs one line per sweep that
/// expired keys. `stop()` (finalize) ends the thread and waits for it.
final class LeaseSweeper: Sendable {
    private weak let store: CacheStore?
    private let lease: UInt64
    private let logger: Logger
    private let wake = DispatchSemaphore(value: 0)
    private let stopping = Atomic<Bool>(false)
    private let thread = Lock<JoinableThread?>(nil)
    /// True from `start` until the thread's loop has returned.
    private let running = Atomic<Bool>(false)
    /// Test seam: runs after every sweep with the time it swept at (`KeyLeases.now()`) and the keys it expired.
    let afterSweep = Lock<(@Sendable (_ now: UInt64, _ expired: Int) -> Void)?>(nil)

    init(store: CacheStore, lease: Duration) {
        self.store = store
        self.lease = KeyLeases(duration: lease).duration
        self.logger = store.resources.logger
    }

    /// Starts the thread; throws when the process cannot start one.
    func start() throws(JoinableThread.StartFailure) {
        running.store(true, ordering: .releasing)
        do {
            let started = try JoinableThread.start { [self] in
                while !stopping.load(ordering: .acquiring), let wakeAt = sweep() {
                    _ = wake.wait(timeout: DispatchTime(uptimeNanoseconds: wakeAt))
                }
                running.store(false, ordering: .releasing)
            }
            thread.withLock { $0 = started }
        } catch {
            running.store(false, ordering: .releasing)
            throw error
        }
    }

    /// Whether the thread was started and its loop has not returned.
    var isRunning: Bool { running.load(ordering: .acquiring) }

    /// Ends the thread and waits for it to return. Idempotent.
    func stop() {
        stopping.store(true, ordering: .releasing)
        wake.signal()
        let running = thread.withLock { thread in
            defer { thread = nil }
            return thread
        }
        running?.join()
    }

    /// Expires what is due now; returns when to sweep next, nil once the store is gone.
    private func sweep() -> UInt64? {
        guard let store else { return nil }
        let now = KeyLeases.now()
        let (expired, next) = store.table.withLock { $0.expireLeases(now: now) }
        if !expired.isEmpty {
            let shown = expired.prefix(8).map(\.description).joined(separator: ", ")
            logger.notice(
                "request key lease ran out: unbound \(expired.count) unpulled key(s)",
                metadata: [
                    "cluster": "\(store.resources.clusterID)", "lease_ms": "\(lease / 1_000_000)",
                    "keys": "\(shown)\(expired.count > 8 ? ", …" : "")",
                ])
        }
        afterSweep.withLock { $0 }?(now, expired.count)
        return next ?? now + lease
    }
}
