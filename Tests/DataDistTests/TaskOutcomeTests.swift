import Dispatch
import Testing

@testable import DataDist

/// A task's outcome as its waiters see it: timed waits while it runs, every kind of waiter woken at its end, and
/// results that no longer change once it ended.
@Suite(.timeLimit(.minutes(1))) struct TaskOutcomeTests {
    @Test func aTimedWaitEndsAtItsTimeoutWhileTheTaskRuns() {
        let outcome = TaskOutcome()
        outcome.record(.success, for: 7)
        let started = ContinuousClock.now
        #expect(outcome.wait(.milliseconds(20)) == nil)
        #expect(outcome.wait(.zero) == nil)
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(!outcome.isDone)
        outcome.finish()
        #expect(outcome.wait(.zero) == [7: .success])
    }

    @Test func theEndWakesBlockedAndSuspendedWaitersAndFixesTheResults() async {
        let outcome = TaskOutcome()
        outcome.record(.paramInvalid, for: 1)
        let blocked = Task.detached { outcome.wait(.seconds(30)) }
        let unbounded = Task.detached { outcome.wait(nil) }
        let suspended = Task.detached { await outcome.results() }
        outcome.record(.timeout, for: 2)
        outcome.finish()
        outcome.finish()  // twice is harmless
        outcome.record(.failed, for: 1)  // after the end: ignored
        let expected: [UInt64: LLMStatusCode] = [1: .paramInvalid, 2: .timeout]
        #expect(await blocked.value == expected)
        #expect(await unbounded.value == expected)
        #expect(await suspended.value == expected)
        #expect(outcome.isDone)
    }
}
