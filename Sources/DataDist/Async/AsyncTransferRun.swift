import DeviceRuntime
import Logging
import Synchronization
import ThreadSanitizerSupport

/// The background part of one `transferCacheAsync` task. Its driver (Swift concurrency, on `DriverExecutor`)
/// asks the synchronizer about each covered layer in ascending order and queues the layer; one sender at a time
/// (on the instance's `TransferWorkers`) sends what is queued, so layer `l` is on the wire while the driver waits
/// for layer `l + 1`. The first transfer failure ends the task: nothing queued after it is sent. The source stays
/// pinned until the task is done.
final class AsyncTransferRun: Sendable {
    private struct State {
        var queued: [Int] = []
        var sending = false
        var driverDone = false
        /// A transfer failed or the task was aborted: nothing more is sent.
        var ended = false
        /// The synchronizer refused (or did not answer) this layer: nothing more is queued; what is queued still
        /// goes, as in the reference where each layer is sent before the next is asked for.
        var refused: (layer: Int, status: LLMStatusCode)?
        /// The layer the synchronizer is being asked about.
        var awaiting: Int?
        var finished = false
    }

    let outcome = TaskOutcome()
    private let configs: [LayerTransfer]
    private let sender: LayerSender
    private let source: LocalPin
    private let store: CacheStore
    private let workers: TransferWorkers
    private let deadlines: SynchronizerDeadlines
    private let synchronizer: any LayerSynchronizer
    private let state = Lock(State())
    private let onFinish: @Sendable (AsyncTransferRun) -> Void

    init(
        configs: [LayerTransfer], sender: LayerSender, source: LocalPin, store: CacheStore, workers: TransferWorkers,
        deadlines: SynchronizerDeadlines, synchronizer: any LayerSynchronizer,
        onFinish: @escaping @Sendable (AsyncTransferRun) -> Void
    ) {
        self.configs = configs
        self.sender = sender
        self.source = source
        self.store = store
        self.workers = workers
        self.deadlines = deadlines
        self.synchronizer = synchronizer
        self.onFinish = onFinish
    }

    /// Starts the driver on the calling thread: it runs there until its first real suspension (a synchronizer
    /// that releases layer 0 at once has it queued before this returns), then on `DriverExecutor`. Starting it on
    /// the executor instead cost a thread hop before layer 0 was asked (up to milliseconds under load), a lag that a
    /// transfer running at the compute's pace never makes up.
    func start() {
        Task.immediateDetached(executorPreference: DriverExecutor.shared) { [self] in await drive() }
    }

    /// Ends the task now with `status` for every config (finalize); what is being sent, if anything, finishes
    /// first.
    func abort(_ status: LLMStatusCode) {
        state.withLock { state in
            state.ended = true
            state.driverDone = true
            state.awaiting = nil
        }
        recordAll(status)
        finishIfIdle()
    }

    // MARK: driver

    private func drive() async {
        let timeout = store.resources.config.syncKVTimeout
        let layers = Set(configs.flatMap { Array($0.sourceLayers) }).sorted()
        for layer in layers {
            let proceed = state.withLock { state -> Bool in
                guard !state.ended, !state.driverDone else { return false }
                state.awaiting = layer
                return true
            }
            guard proceed else { break }
            // The wait is bounded by a deadline on a thread of its own, not by the synchronizer's cooperation (nor
            // by Dispatch's shared threads, which blocking callbacks may hold).
            let deadline = deadlines.arm(after: timeout) { [self] in giveUp(on: layer, after: timeout) }
            let answer = await synchronizer.synchronize(layer: layer, timeout: timeout)
            deadlines.cancel(deadline)
            let current = state.withLock { state -> Bool in
                guard state.awaiting == layer else { return false }
                state.awaiting = nil
                if !answer { state.refused = (layer, .paramInvalid) }
                return true
            }
            guard current else { return }  // timed out or aborted meanwhile: that ended the driver's part
            guard answer else { break }
            enqueue(layer)
        }
        state.withLock { $0.driverDone = true }
        finishIfIdle()
    }

    /// The synchronizer did not answer for `layer` within `timeout`: the configs covering it time out, and the
    /// driver's part is over (its late answer is ignored).
    private func giveUp(on layer: Int, after timeout: Duration) {
        let gaveUp = state.withLock { state -> Bool in
            guard state.awaiting == layer else { return false }
            state.awaiting = nil
            state.refused = (layer, .timeout)
            state.driverDone = true
            return true
        }
        guard gaveUp else { return }
        store.resources.logger.warning(
            "transferCacheAsync: the synchronizer did not release layer \(layer) within \(timeout)")
        finishIfIdle()
    }

    private func enqueue(_ layer: Int) {
        let startSending = state.withLock { state -> Bool in
            guard !state.ended else { return false }
            state.queued.append(layer)
            guard !state.sending else { return false }
            state.sending = true
            return true
        }
        if startSending, !workers.submit({ [self] in sendQueued() }) {
            state.withLock {
                $0.sending = false
                $0.ended = true
            }
            recordAll(.failed)
        }
    }

    // MARK: sending (on a worker)

    /// Sends what is queued, all of it at once: a sender that fell behind catches up with one push per config
    /// instead of one per layer (each config's share of the queue is one run of layers: the queue is a run of the
    /// covered layers, and a config's range has no gaps).
    private func sendQueued() {
        while let layers = nextLayers() {
            let source = self.source.view
            sending: for config in configs {
                let covered = layers.filter(config.sourceLayers.contains)
                guard let first = covered.first, let last = covered.last else { continue }
                do throws(LLMError) {
                    try sender.send(layers: first..<last + 1, of: source, to: config)
                } catch {
                    store.resources.logger.debug("transferCacheAsync layers \(first)...\(last): \(error)")
                    outcome.record(error.status, for: config.cluster)
                    state.withLock { $0.ended = true }
                    break sending
                }
                if last == config.sourceLayers.upperBound - 1 { outcome.record(.success, for: config.cluster) }
            }
        }
        finishIfIdle()
    }

    /// The queued layers, or nil (and the sender stops) when none is left or the task ended.
    private func nextLayers() -> [Int]? {
        state.withLock { state in
            guard !state.ended, !state.queued.isEmpty else {
                state.sending = false
                return nil
            }
            defer { state.queued = [] }
            return state.queued
        }
    }

    // MARK: completion

    private func recordAll(_ status: LLMStatusCode) {
        for config in configs { outcome.record(status, for: config.cluster) }
    }

    /// Finishes the task once the driver is done and nothing is being sent: unpins the source, then wakes the
    /// waiters.
    private func finishIfIdle() {
        let (finish, refused) = state.withLock { state -> (Bool, (layer: Int, status: LLMStatusCode)?) in
            guard state.driverDone, !state.sending, !state.finished else { return (false, nil) }
            state.finished = true
            return (true, state.ended ? nil : state.refused)
        }
        guard finish else { return }
        if let refused {
            for config in configs where config.sourceLayers.contains(refused.layer) {
                outcome.record(refused.status, for: config.cluster)
            }
        }
        store.release(source)
        outcome.finish()
        onFinish(self)
    }
}
