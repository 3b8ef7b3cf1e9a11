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

    /// Runs `body` on a thread nobody joins (it cleans up after itself when `body` returns).
    static func detach(_ body: @escaping @Sendable () -> Void) {
        let thread = WorkerThread.start(body)
        pthread_detach(thread.handle)
    }

    /// An identifier of the calling thread, to tell whether code runs on a given thread.
    static var currentID: UInt { UInt(pthread_self()) }

}
