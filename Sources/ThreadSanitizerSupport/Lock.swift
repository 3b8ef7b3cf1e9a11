// ThreadSanitizer cannot see inside `Synchronization.Mutex` on Linux (its futex lock is not instrumented), so every
// access made under it would be reported as a race. Every lock in this package is therefore a `Lock`: in ordinary
// builds exactly `Synchronization.Mutex`, in the build made for TSan (`-Xswiftc -DDATADIST_TSAN`, `make tsan`) a
// pthread-backed lock of the same shape, which TSan understands. The module declares the same name either way.
import Synchronization

#if DATADIST_TSAN
import Glibc

/// `Synchronization.Mutex`'s shape over a `pthread_mutex_t`, for ThreadSanitizer builds.
public final class Lock<Value>: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var value: Value

    public init(_ value: Value) {
        self.value = value
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure)
        -> Result
    {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
#else
/// The package's lock: `Synchronization.Mutex` (a pthread lock in ThreadSanitizer builds, see above).
public typealias Lock<Value: ~Copyable> = Mutex<Value>
#endif
