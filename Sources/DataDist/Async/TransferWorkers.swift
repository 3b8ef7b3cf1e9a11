import DeviceRuntime
import Dispatch
import Synchronization
import ThreadSanitizerSupport

/// A fixed set of threads that run the layer transfers of every `transferCacheAsync` task of one instance, in
/// submission order. Transfers block (a round trip to the owner, then the copy), so they run here and not on
/// Swift's cooperative pool; the tasks' waits for their synchronizers stay there. Threads start on first use.
final class TransferWorkers: Sendable {
    private struct State {
        var jobs: [@Sendable () -> Void] = []
        var head = 0
        var started = 0
        /// Threads waiting for a job.
        var idle = 0
        /// The threads running a job that `runIfIdle` handed them (a driver's step), by thread ID.
        var runningHandedJob: Set<UInt> = []
        var stopping = false
    }

    private let limit: Int
    private let state = Lock(State())
    private let wake = DispatchSemaphore(value: 0)

    init(threads: Int) { limit = max(1, threads) }

    /// Queues `job`; false when no thread could run it (stopped, or none could be started). Queued from a thread
    /// of these workers that runs a job `runIfIdle` handed it, nobody is woken: that thread takes it next.
    func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        let caller = JoinableThread.currentID
        let startOne = state.withLock { state -> (start: Bool, wake: Bool)? in
            guard !state.stopping else { return nil }
            state.jobs.append(job)
            let wake = !state.runningHandedJob.contains(caller)
            guard state.started < limit else { return (false, wake) }
            state.started += 1
            return (true, wake)
        }
        guard let (startOne, wakeOne) = startOne else { return false }
        if startOne {
            do throws(JoinableThread.StartFailure) {
                try JoinableThread.detach { [self] in loop() }
            } catch {
                let none = state.withLock { state in
                    state.started -= 1
                    return state.started == 0
                }
                // With no thread at all, nobody would run the job: take it back.
                if none {
                    state.withLock { state in
                        if state.jobs.count > state.head { state.jobs.removeLast() }
                    }
                    return false
                }
            }
        }
        if wakeOne { wake.signal() }
        return true
    }

    /// Queues `job` only if a thread is waiting for work and nothing is queued before it, so that `job` starts
    /// on that thread's wake-up; false otherwise (the caller runs it elsewhere).
    func runIfIdle(_ job: @escaping @Sendable () -> Void) -> Bool {
        let queued = state.withLock { state -> Bool in
            guard !state.stopping, state.jobs.count - state.head < state.idle else { return false }
            state.jobs.append { [self] in
                let thread = JoinableThread.currentID
                self.state.withLock { _ = $0.runningHandedJob.insert(thread) }
                job()
                self.state.withLock { _ = $0.runningHandedJob.remove(thread) }
            }
            return true
        }
        if queued { wake.signal() }
        return queued
    }

    /// Whether the calling thread is one of these workers running a job `runIfIdle` handed it.
    var callerRunsHandedJob: Bool {
        let caller = JoinableThread.currentID
        return state.withLock { $0.runningHandedJob.contains(caller) }
    }

    /// Lets every thread end once the queue is empty (the instance is finalizing; its tasks are over).
    func stop() {
        let threads = state.withLock { state in
            state.stopping = true
            return state.started
        }
        for _ in 0..<threads { wake.signal() }
    }

    private func loop() {
        var waited = false
        while true {
            // A job queued by the job just run (a driver's step queues its layer's send) is taken without a wait.
            let job = state.withLock { state -> (@Sendable () -> Void)?? in
                if waited { state.idle -= 1 }
                guard state.head < state.jobs.count else {
                    if state.stopping { return .some(nil) }
                    state.idle += 1
                    return nil
                }
                let job = state.jobs[state.head]
                state.head += 1
                if state.head == state.jobs.count { (state.jobs, state.head) = ([], 0) }
                return job
            }
            waited = false
            switch job {
            case .some(.some(let job)): job()
            case .some(.none): return
            case .none:
                wake.wait()
                waited = true
            }
        }
    }
}
