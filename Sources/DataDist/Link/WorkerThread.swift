internal import Glibc

/// A joinable POSIX thread for the link layer's long-running loops (listener, connection readers).
final class WorkerThread: @unchecked Sendable {
    // Written once in `start` before the thread runs, read in `join`.
    private var handle = pthread_t()
    private let body: @Sendable () -> Void

    private init(_ body: @escaping @Sendable () -> Void) { self.body = body }

    static func start(_ body: @escaping @Sendable () -> Void) -> WorkerThread {
        let thread = WorkerThread(body)
        let context = Unmanaged.passRetained(thread).toOpaque()
        let result = pthread_create(&thread.handle, nil, { raw in
            let thread = Unmanaged<WorkerThread>.fromOpaque(raw!).takeRetainedValue()
            thread.body()
            return nil
        }, context)
        precondition(result == 0, "pthread_create failed: \(result)")
        return thread
    }

    func join() { pthread_join(handle, nil) }

    /// Whether the calling thread is this one (a thread must not join itself).
    var isCurrent: Bool { pthread_equal(handle, pthread_self()) != 0 }
}
