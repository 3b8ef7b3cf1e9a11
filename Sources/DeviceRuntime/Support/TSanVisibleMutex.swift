#if DATADIST_TSAN
import Glibc

/// ThreadSanitizer cannot see inside `Synchronization.Mutex` on Linux (its futex lock is not instrumented),
/// so every access under it is reported as a race. Builds made for TSan (`-Xswiftc -DDATADIST_TSAN`, see
/// `make tsan`) replace `Mutex` with this pthread-backed lock of the same shape, which TSan understands.
package final class TSanVisibleMutex<Value>: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var value: Value

    package init(_ value: Value) {
        self.value = value
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    package func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}

typealias Mutex = TSanVisibleMutex
#endif
