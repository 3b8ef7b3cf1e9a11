import Synchronization
import Testing
import ThreadSanitizerSupport

@testable import DataDist

/// The deadlines that bound `transferCacheAsync`'s waits for its synchronizer (one thread per instance).
@Suite(.timeLimit(.minutes(1))) struct SynchronizerDeadlinesTests {
    @Test func anEarlierDeadlineArmedLaterFiresAndACancelledOneNever() async throws {
        let deadlines = SynchronizerDeadlines()
        let fired = Lock<[String]>([])
        // The thread sleeps until this one; an hour, so that no stall of a loaded (sanitized, parallel) run reaches it.
        _ = deadlines.arm(after: .seconds(3600)) { fired.withLock { $0.append("late") } }
        let cancelled = deadlines.arm(after: .milliseconds(150)) { fired.withLock { $0.append("cancelled") } }
        deadlines.cancel(cancelled)
        _ = deadlines.arm(after: .milliseconds(300)) { fired.withLock { $0.append("early") } }
        #expect(await poll(until: .seconds(10)) { fired.withLock { $0 } == ["early"] })
        try await Task.sleep(for: .milliseconds(60))
        #expect(fired.withLock { $0 } == ["early"])
        deadlines.stop()
    }
}
