import Glibc

/// A POSIX thread for long-running loops (listeners, connection readers, copy workers). Starting one can fail
/// (the process is out of threads or memory): that is reported, never trapped on.
package final class JoinableThread: @unchecked Sendable {
    /// Why a thread could not start: the `pthread_create` error.
    package struct StartFailure: Error, Sendable, CustomStringConvertible {
        package let code: Int32
        package var description: String { "cannot start a thread: \(String(cString: strerror(code)))" }
    }

    // Written once in `start` before the thread runs, read in `join`.
    private var handle = pthread_t()
    // Set before the thread starts, taken by the thread: once `body` has run, nothing it captured is kept alive by
    // this object (a holder of the thread that `body` captures would otherwise never be freed).
    private var body: (@Sendable () -> Void)?

    private init(_ body: @escaping @Sendable () -> Void) { self.body = body }

    /// Starts a thread running `body`; join it with `join()`.
    package static func start(_ body: @escaping @Sendable () -> Void) throws(StartFailure) -> JoinableThread {
        let thread = JoinableThread(body)
        let context = Unmanaged.passRetained(thread)
        let result = pthread_create(
            &thread.handle, nil,
            { raw in
                let thread = Unmanaged<JoinableThread>.fromOpaque(raw!).takeRetainedValue()
                let body = thread.body.take()
                body?()
                return nil
            }, context.toOpaque())
        guard result == 0 else {
            context.release()
            throw StartFailure(code: result)
        }
        return thread
    }

    package func join() { pthread_join(handle, nil) }

    /// Runs `body` on a thread nobody joins (it cleans up after itself when `body` returns).
    package static func detach(_ body: @escaping @Sendable () -> Void) throws(StartFailure) {
        let thread = try JoinableThread.start(body)
        pthread_detach(thread.handle)
    }

    /// Gives the core to another runnable thread, for a wait that is known to be short.
    package static func yield() { sched_yield() }

    /// An identifier of the calling thread, to tell whether code runs on a given thread.
    package static var currentID: UInt { UInt(pthread_self()) }
}
