import DeviceRuntime
import Dispatch
import Synchronization
import ThreadSanitizerSupport

/// When the synchronizers of one instance's `transferCacheAsync` tasks run out of time. One thread sleeps until the
/// earliest deadline; arming and cancelling take a lock and wake it only when the new deadline is earlier than the
/// one it sleeps until, which with the instance's one `syncKVTimeout` happens only after it went idle. (A Dispatch
/// timer armed per layer wakes Dispatch's timer thread each time: 25 µs to 8 ms before layer 0 was asked, seen
/// under load.)
final class SynchronizerDeadlines: Sendable {
    /// An armed deadline, for `cancel`.
    struct Token: Sendable { fileprivate let id: UInt64 }

    private struct State {
        var pending: [UInt64: (deadline: ContinuousClock.Instant, fire: @Sendable () -> Void)] = [:]
        var nextID: UInt64 = 0
        /// When the thread wakes by itself next; nil: it sleeps until signalled (or has not started).
        var wakesAt: ContinuousClock.Instant?
        var started = false
        /// The thread could not start: deadlines go to Dispatch instead.
        var threadless = false
        var stopping = false
    }

    private let state = Lock(State())
    private let wake = DispatchSemaphore(value: 0)
    private static let fallback = DispatchQueue(label: "datadist.transfer-deadlines")

    /// Runs `fire` after `timeout` unless cancelled first.
    func arm(after timeout: Duration, _ fire: @escaping @Sendable () -> Void) -> Token {
        let deadline = ContinuousClock.now + timeout
        let (id, start, signal, threadless) = state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            state.pending[id] = (deadline, fire)
            let start = !state.started && !state.threadless
            state.started = state.started || start
            let signal = !start && state.wakesAt.map { deadline < $0 } ?? true
            return (id, start, signal, state.threadless)
        }
        if start {
            do throws(JoinableThread.StartFailure) {
                try JoinableThread.detach { [self] in loop() }
            } catch {
                state.withLock { $0.threadless = true }
                viaDispatch(id, at: deadline)
            }
        } else if threadless {
            viaDispatch(id, at: deadline)
        } else if signal {
            wake.signal()
        }
        return Token(id: id)
    }

    /// Drops `token`'s deadline; its `fire` has not run and will not (or has already run).
    func cancel(_ token: Token) {
        _ = state.withLock { $0.pending.removeValue(forKey: token.id) }
    }

    /// Ends the thread (finalize; the tasks are over).
    func stop() {
        state.withLock { $0.stopping = true }
        wake.signal()
    }

    private func take(_ id: UInt64) -> (@Sendable () -> Void)? {
        state.withLock { $0.pending.removeValue(forKey: id)?.fire }
    }

    private func viaDispatch(_ id: UInt64, at deadline: ContinuousClock.Instant) {
        let delay = max(.zero, deadline - .now)
        Self.fallback.asyncAfter(deadline: .now() + .nanoseconds(delay.clampedNanoseconds)) { [self] in take(id)?() }
    }

    private func loop() {
        while true {
            let next = state.withLock { state -> (due: [@Sendable () -> Void], next: ContinuousClock.Instant?)? in
                guard !state.stopping else { return nil }
                let now = ContinuousClock.now
                let due = state.pending.filter { $0.value.deadline <= now }
                for id in due.keys { state.pending[id] = nil }
                state.wakesAt = state.pending.values.map(\.deadline).min()
                return (due.values.map(\.fire), state.wakesAt)
            }
            guard let (due, next) = next else { return }
            for fire in due { fire() }
            if let next {
                let delay = max(.zero, next - .now)
                _ = wake.wait(timeout: .now() + .nanoseconds(delay.clampedNanoseconds))
            } else {
                wake.wait()
            }
        }
    }
}
