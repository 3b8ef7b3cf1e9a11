import DeviceRuntime
import Synchronization
import Testing
import ThreadSanitizerSupport

@testable import DataDist

/// The threads that send `transferCacheAsync`'s layers, and the driver steps handed to them when they are idle.
@Suite(.timeLimit(.minutes(1))) struct TransferWorkersTests {
    /// Runs `count` jobs at once on `workers` (each waits for the others), so that `count` threads have started.
    private static func start(_ count: Int, of workers: TransferWorkers) async {
        let arrived = Atomic<Int>(0)
        for _ in 0..<count {
            #expect(
                workers.submit {
                    arrived.wrappingAdd(1, ordering: .relaxed)
                    let end = ContinuousClock.now + .seconds(10)
                    while arrived.load(ordering: .relaxed) < count, ContinuousClock.now < end {
                        JoinableThread.yield()
                    }
                })
        }
        #expect(await poll(until: .seconds(10)) { arrived.load(ordering: .relaxed) == count })
    }

    @Test func aJobHandedToAnIdleWorkerRunsThereAndWhatItQueuesRunsNextOnTheSameThread() async {
        let workers = TransferWorkers(threads: 2)
        await Self.start(2, of: workers)
        let threads = Lock<(handed: UInt?, queued: UInt?)>((nil, nil))
        // The workers go back to waiting after their jobs: then the hand-off is taken.
        var handed = false
        #expect(
            await poll(until: .seconds(10)) {
                handed =
                    handed
                    || workers.runIfIdle {
                        threads.withLock { $0.handed = JoinableThread.currentID }
                        _ = workers.submit { threads.withLock { $0.queued = JoinableThread.currentID } }
                    }
                return handed
            })
        #expect(await poll(until: .seconds(10)) { threads.withLock { $0.queued } != nil })
        let (first, second) = threads.withLock { ($0.handed, $0.queued) }
        #expect(first != nil && first == second)
        workers.stop()
    }

    @Test func nothingIsHandedWhileNoWorkerWaitsOrOnceStopped() async {
        let workers = TransferWorkers(threads: 1)
        // No thread has started yet.
        #expect(!workers.runIfIdle {})
        let release = Atomic<Bool>(false)
        #expect(
            workers.submit {
                let end = ContinuousClock.now + .seconds(10)
                while !release.load(ordering: .acquiring), ContinuousClock.now < end { JoinableThread.yield() }
            })
        // Its one thread is busy.
        #expect(!workers.runIfIdle {})
        release.store(true, ordering: .releasing)
        let ran = Atomic<Bool>(false)
        #expect(await poll(until: .seconds(10)) { workers.runIfIdle { ran.store(true, ordering: .releasing) } })
        #expect(await poll(until: .seconds(10)) { ran.load(ordering: .acquiring) })
        workers.stop()
        #expect(!workers.runIfIdle {})
        #expect(!workers.submit {})
    }
}
