import DeviceRuntime
import Dispatch
import Synchronization
import ThreadSanitizerSupport

/// A layer-wise push started by `CacheManager.transferCacheAsync`: its layers go out in the background as its
/// synchronizer releases them. Results are kept per destination cluster (two configs to one cluster share one).
public final class CacheTask: Sendable {
    private let clusters: [UInt64]
    private let outcome: TaskOutcome

    init(clusters: [UInt64], outcome: TaskOutcome) {
        self.clusters = clusters
        self.outcome = outcome
    }

    /// Waits up to `timeout` (nil: until done) for the task; `.timeout` if it is still running then (it goes on),
    /// else the first result that is neither success nor missing, in config order, else `.success`.
    public func synchronize(timeout: Duration? = nil) -> LLMStatusCode {
        guard let results = outcome.wait(timeout) else { return .timeout }
        return Self.summary(clusters.map { results[$0] })
    }

    /// Waits as `synchronize(timeout:)` does; one result per config, in order: `.timeout` for all while still
    /// running, nil for a config whose last layer was never sent.
    public func results(timeout: Duration? = nil) -> [LLMStatusCode?] {
        guard let results = outcome.wait(timeout) else { return clusters.map { _ in .timeout } }
        return clusters.map { results[$0] }
    }

    /// Whether the task has ended: its results are final and its synchronizer is asked about no further layer.
    public var isDone: Bool { outcome.isDone }

    /// `synchronize()` for Swift concurrency callers: suspends, without blocking a thread, until the task is done.
    public func wait() async -> LLMStatusCode {
        let results = await outcome.results()
        return Self.summary(clusters.map { results[$0] })
    }

    private static func summary(_ results: [LLMStatusCode?]) -> LLMStatusCode {
        results.first { $0 != nil && $0 != .success }.flatMap { $0 } ?? .success
    }
}

/// The results of a task by destination cluster, and its completion.
final class TaskOutcome: Sendable {
    private let state = Lock<(results: [UInt64: LLMStatusCode], done: Bool)>(([:], false))
    private let group = DispatchGroup()

    init() { group.enter() }

    /// Records `status` for `cluster` (a later record replaces an earlier one) unless the task is done.
    func record(_ status: LLMStatusCode, for cluster: UInt64) {
        state.withLock { state in
            if !state.done { state.results[cluster] = status }
        }
    }

    var isDone: Bool { state.withLock { $0.done } }

    /// Marks the task done (once) and wakes its waiters.
    func finish() {
        let first = state.withLock { state in
            defer { state.done = true }
            return !state.done
        }
        if first { group.leave() }
    }

    /// The results once done, waiting up to `timeout`; nil if still running then.
    func wait(_ timeout: Duration?) -> [UInt64: LLMStatusCode]? {
        if let timeout {
            guard group.wait(timeout: .now() + .nanoseconds(timeout.clampedNanoseconds)) == .success else {
                return nil
            }
        } else {
            group.wait()
        }
        return state.withLock { $0.results }
    }

    /// Where waiters are resumed: a queue of its own, not the global concurrent pool, whose few threads (one per
    /// core) other code may be blocking; a waiter must not depend on one coming free.
    private static let notifications = DispatchQueue(label: "datadist.task-outcomes")

    func results() async -> [UInt64: LLMStatusCode] {
        await withCheckedContinuation { continuation in
            group.notify(queue: Self.notifications) { continuation.resume() }
        }
        return state.withLock { $0.results }
    }
}
