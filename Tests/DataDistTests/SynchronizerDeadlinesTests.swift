import Synchronization
import Testing
import ThreadSanitizerSupport

@testable import DataDist

/// The deadlines that bound `transferCacheAsync`'s waits for its synchronizer (one thread per instance).
@Suite(.timeLimit(.minutes(1))) struct SynchronizerDeadlinesTests {
    @Test func anEarlierDeadlineArmedLaterFiresAndACancelledOneNever() async throws {
        let deadlines = SynchronizerDeadlines()
        let fired = Lock<[String]>([])
        _ = deadlines.arm(after: .seconds(30)) { fired.withLock { $0.append("late") } }  // the thread sleeps until it
        let cancelled = deadlines.arm(after: .milliseconds(20)) { fired.withLock { $0.append("cancelled") } }
        deadlines.cancel(cancelled)
        _ = deadlines.arm(after: .milliseconds(60)) { fired.withLock { $0.append("early") } }
        #expect(await poll(until: .seconds(10)) { fired.withLock { $0 } == ["early"] })
        try await Task.sleep(for: .milliseconds(60))
        #expect(fired.withLock { $0 } == ["early"])
        deadlines.stop()
    }
}
