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
        var stopping = false
    }

    private let limit: Int
    private let state = Lock(State())
    private let wake = DispatchSemaphore(value: 0)

    init(threads: Int) { limit = max(1, threads) }

    /// Queues `job`; false when no thread could run it (stopped, or none could be started).
    func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        let startOne = state.withLock { state -> Bool? in
            guard !state.stopping else { return nil }
            state.jobs.append(job)
            guard state.started < limit else { return false }
            state.started += 1
            return true
        }
        guard let startOne else { return false }
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
        wake.signal()
        return true
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
        while true {
            wake.wait()
            let job = state.withLock { state -> (@Sendable () -> Void)?? in
                guard state.head < state.jobs.count else { return state.stopping ? .some(nil) : nil }
                let job = state.jobs[state.head]
                state.head += 1
                if state.head == state.jobs.count { (state.jobs, state.head) = ([], 0) }
                return job
            }
            switch job {
            case .some(.some(let job)): job()
            case .some(.none): return
            case .none: continue
            }
        }
    }
}
