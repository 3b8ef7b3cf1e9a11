import DeviceRuntime
import Dispatch
import Synchronization
import ThreadSanitizerSupport

/// The transfers in flight over one link, so that an unlink lets them post their releases first: frames on a
/// link arrive in order, so a release sent before the unlink settles its transfer at the owner before the link
/// closes, and what a finished pull consumed stays consumed.
final class TransferGate: Sendable {
    private struct State {
        var inFlight = 0
        var isClosing = false
        /// Unlinks waiting for the transfers in flight to finish.
        var idleWaiters: [DispatchSemaphore] = []
    }

    private let state = Lock(State())
    /// Test seam: runs after a transfer's copy succeeded and before its release is posted.
    let beforeRelease = Lock<(@Sendable () -> Void)?>(nil)

    /// Counts a transfer in; false once the link is being unlinked.
    func enter() -> Bool {
        state.withLock { state in
            guard !state.isClosing else { return false }
            state.inFlight += 1
            return true
        }
    }

    /// Counts a transfer out, once its release was posted (or it never got a grant).
    func leave() {
        let waiters = state.withLock { state -> [DispatchSemaphore] in
            state.inFlight -= 1
            guard state.inFlight == 0 else { return [] }
            defer { state.idleWaiters.removeAll() }
            return state.idleWaiters
        }
        for waiter in waiters { waiter.signal() }
    }

    /// Refuses new transfers and waits up to `timeout` for those in flight to finish; false if some still run.
    func close(waitingUpTo timeout: Duration) -> Bool {
        let waiter = state.withLock { state -> DispatchSemaphore? in
            state.isClosing = true
            guard state.inFlight > 0 else { return nil }
            let waiter = DispatchSemaphore(value: 0)
            state.idleWaiters.append(waiter)
            return waiter
        }
        guard let waiter else { return true }
        let wait = min(timeout, LinkTable.longestTimeout).clampedNanoseconds
        if waiter.wait(timeout: .now() + .nanoseconds(wait)) == .success { return true }
        state.withLock { state in state.idleWaiters.removeAll { $0 === waiter } }
        return false
    }

    /// Whether an unlink is waiting for transfers in flight right now.
    var hasWaitingUnlink: Bool { state.withLock { !$0.idleWaiters.isEmpty } }

    /// Runs the test seam, if one is set.
    func runBeforeRelease() { beforeRelease.withLock { $0 }?() }
}
