import Synchronization
import ThreadSanitizerSupport

/// The running `transferCacheAsync` tasks of one instance and the workers that send their layers; finalize
/// fails the tasks and waits only for the layers already being sent.
final class AsyncTransfers: Sendable {
    /// Layers of different tasks sent at once, at most (the rest wait their turn).
    static let workerThreads = 2

    let workers = TransferWorkers(threads: AsyncTransfers.workerThreads)
    let deadlines = SynchronizerDeadlines()
    private let state = Lock<(runs: [ObjectIdentifier: AsyncTransferRun], closed: Bool)>(([:], false))

    /// Registers and starts `run`; false once finalizing.
    func start(_ run: AsyncTransferRun) -> Bool {
        let admitted = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.runs[ObjectIdentifier(run)] = run
            return true
        }
        if admitted { run.start() }
        return admitted
    }

    func finished(_ run: AsyncTransferRun) {
        _ = state.withLock { $0.runs.removeValue(forKey: ObjectIdentifier(run)) }
    }

    /// Fails every running task (finalize) and refuses new ones; their layers in flight still finish.
    func abortAll() -> [AsyncTransferRun] {
        let runs = state.withLock { state in
            state.closed = true
            return Array(state.runs.values)
        }
        for run in runs { run.abort(.failed) }
        return runs
    }

    /// Waits until `runs` are done (their last layers in flight have ended: the links are closed by then, so
    /// this is short), then stops the workers.
    func waitAndStop(_ runs: [AsyncTransferRun]) {
        for run in runs { _ = run.outcome.wait(nil) }
        workers.stop()
        deadlines.stop()
    }
}
