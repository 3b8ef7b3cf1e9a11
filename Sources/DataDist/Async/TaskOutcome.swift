import DeviceRuntime
import Dispatch
import Synchronization
import ThreadSanitizerSupport

/// The results of a task by destination cluster, and its completion.
///
/// A blocked waiter sleeps until the task is closing (every layer was released: only sends remain), then polls
/// for the end for up to `closingPoll`, yielding the core between looks, before it sleeps again. The wake-up the
/// closing phase costs happens while the last layer is still on the wire; a wake-up at the end would come after
/// it (34-97 µs seen here, a large share of one layer's transfer).
final class TaskOutcome: Sendable {
    /// How long a waiter polls once the task is closing: a few layers' transfers here.
    static let closingPoll: Duration = .milliseconds(1)

    private let state = Lock<(results: [UInt64: LLMStatusCode], done: Bool)>(([:], false))
    private let group = DispatchGroup()
    /// Left once, when the task is closing or done.
    private let closingGroup = DispatchGroup()
    private let closing = Atomic<Bool>(false)
    /// `state.done`, readable without the lock (polled).
    private let ended = Atomic<Bool>(false)

    init() {
        group.enter()
        closingGroup.enter()
    }

    /// Records `status` for `cluster` (a later record replaces an earlier one) unless the task is done.
    func record(_ status: LLMStatusCode, for cluster: UInt64) {
        state.withLock { state in
            if !state.done { state.results[cluster] = status }
        }
    }

    var isDone: Bool { state.withLock { $0.done } }

    /// Every layer was released (or none will be): what is left is sending; waiters start polling.
    func beginClosing() {
        if !closing.exchange(true, ordering: .acquiringAndReleasing) { closingGroup.leave() }
    }

    /// Marks the task done (once) and wakes its waiters.
    func finish() {
        let first = state.withLock { state in
            defer { state.done = true }
            return !state.done
        }
        guard first else { return }
        ended.store(true, ordering: .releasing)
        beginClosing()
        group.leave()
    }

    /// The results once done, waiting up to `timeout`; nil if still running then.
    func wait(_ timeout: Duration?) -> [UInt64: LLMStatusCode]? {
        let deadline = timeout.map { DispatchTime.now() + .nanoseconds($0.clampedNanoseconds) } ?? .distantFuture
        guard closingGroup.wait(timeout: deadline) == .success else { return nil }
        let pollEnd = ContinuousClock.now + Self.closingPoll
        var turns = 0
        while !ended.load(ordering: .acquiring) {
            turns += 1
            if turns % 16 == 0, ContinuousClock.now >= pollEnd || DispatchTime.now() >= deadline { break }
            JoinableThread.yield()
        }
        guard group.wait(timeout: deadline) == .success else { return nil }
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
