import Dispatch
import Testing

@testable import DataDist

/// A task's outcome as its waiters see it: before it is closing, while closing (waiters poll, then sleep), done.
@Suite(.timeLimit(.minutes(1))) struct TaskOutcomeTests {
    @Test func aWaiterGetsTheResultsWhetherTheEndComesDuringItsPollOrAfter() async throws {
        for delay in [Duration.zero, .microseconds(200), TaskOutcome.closingPoll * 20] {
            let outcome = TaskOutcome()
            outcome.record(.success, for: 7)
            let waiter = Task.detached { outcome.wait(nil) }
            outcome.beginClosing()
            try await Task.sleep(for: delay)
            outcome.record(.timeout, for: 8)
            outcome.finish()
            outcome.record(.failed, for: 7)  // after the end: ignored
            #expect(await waiter.value == [7: .success, 8: .timeout])
            #expect(outcome.isDone)
        }
    }

    @Test func aTimedWaitEndsAtItsTimeoutBeforeAndWhileClosing() {
        let outcome = TaskOutcome()
        #expect(outcome.wait(.milliseconds(20)) == nil)
        #expect(outcome.wait(.zero) == nil)
        outcome.beginClosing()
        outcome.beginClosing()  // twice is harmless
        let started = ContinuousClock.now
        #expect(outcome.wait(.milliseconds(20)) == nil)
        #expect(outcome.wait(.zero) == nil)
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(!outcome.isDone)
        outcome.finish()
        #expect(outcome.wait(.zero) == [:])
    }

    @Test func finishingWithoutClosingWakesEveryKindOfWaiter() async {
        let outcome = TaskOutcome()
        outcome.record(.paramInvalid, for: 1)
        let blocked = Task.detached { outcome.wait(.seconds(30)) }
        let suspended = Task.detached { await outcome.results() }
        outcome.finish()
        #expect(await blocked.value == [1: .paramInvalid])
        #expect(await suspended.value == [1: .paramInvalid])
    }
}
