import BlockPool
import DataDistTestSupport
import DeviceRuntime
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
import ThreadSanitizerSupport
#endif

@Suite struct BlockPoolTests {
    let runtime = TestRuntime()

    @Test func fourTensorsOf64KiBFillA256KiBPool() throws {
        let pool = try BlockPool(runtime: runtime, placement: .device(0), size: 262_144, pageShift: 16)
        let spans = try (0..<4).map { _ in try pool.allocate(bytes: 65_536) }
        #expect(pool.usage.pagesFree == 0)
        #expect(throws: PoolError.self) { try pool.allocate(bytes: 1) }
        #expect(Set(spans.map(\.address)).count == 4)
        #expect(spans.allSatisfy { $0.address % 65_536 == pool.region.address % 65_536 })
    }

    @Test func everyAllocationTakesWholePages() throws {
        let pool = try BlockPool(runtime: runtime, placement: .device(0), size: 65_536, pageShift: 16)
        let first = try pool.allocate(bytes: 2048)
        #expect(first.pages == 1)
        #expect(throws: PoolError.self) { try pool.allocate(bytes: 2048) }
    }

    @Test func tenHalfPageAllocationsFillATenPagePool() throws {
        let pool = try BlockPool(runtime: runtime, placement: .host, size: 10 * 65_536, pageShift: 16)
        let spans = try (0..<10).map { _ in try pool.allocate(bytes: 32_768) }
        #expect(spans.count == 10)
        #expect(pool.usage.pagesFree == 0)
    }

    @Test func pagesReturnWhenTheLastHolderLetsGo() throws {
        let pool = try BlockPool(runtime: runtime, placement: .device(0), size: 4 * 1024, pageShift: 10)
        var span: PoolSpan? = try pool.allocate(bytes: 3000)
        var secondHolder = span
        #expect(pool.usage.pagesInUse == 3)
        span = nil
        #expect(pool.usage.pagesInUse == 3)
        secondHolder = nil
        #expect(pool.usage.pagesInUse == 0)
        _ = secondHolder
    }

    @Test func theRegionReturnsToTheRuntimeAfterPoolAndSpansAreGone() throws {
        var pool: BlockPool? = try BlockPool(runtime: runtime, placement: .device(0), size: 8192, pageShift: 12)
        var span: PoolSpan? = try pool!.allocate(bytes: 10)
        pool = nil
        #expect(runtime.live.withLock { $0.count } == 1, "a live span keeps the region")
        span = nil
        #expect(runtime.live.withLock { $0.count } == 0)
        _ = span
    }

    @Test(arguments: [(9, 1 << 20), (31, 1 << 31), (16, 65_535)])
    func invalidConfigurationsNameTheField(pageShift: Int, size: Int) {
        #expect {
            _ = try BlockPool(runtime: runtime, placement: .device(0), size: size, pageShift: pageShift)
        } throws: { error in
            guard case .invalidConfiguration(let field, let message) = error as? PoolError else { return false }
            return message.contains(field)
        }
        #expect(runtime.live.withLock { $0.isEmpty })
    }

    @Test func aRuntimeThatCannotProvideThePoolIsReported() {
        #expect {
            _ = try BlockPool(runtime: TestRuntime(refuseAllocations: true), placement: .device(0), size: 4096, pageShift: 10)
        } throws: { error in
            if case .runtime(let inner) = error as? PoolError { return inner.aclCode == ACLCode.memoryAllocation }
            return false
        }
    }

    @Test func aWaitingAllocationSucceedsOnceAnotherThreadReleases() throws {
        let pool = try BlockPool(runtime: runtime, placement: .device(0), size: 10 * 65_536, pageShift: 16)
        let held = Lock<[PoolSpan]>(try (0..<10).map { _ in try pool.allocate(bytes: 32_768) })
        let releaser = Thread {
            usleep(100_000)
            held.withLock { $0.removeAll() }
        }
        releaser.start()
        let spans = try (0..<10).map { _ in try pool.allocate(bytes: 32_768, timeout: .seconds(3)) }
        #expect(spans.count == 10)
        releaser.join()
    }

    @Test func aWaitingAllocationGivesUpAfterItsTimeout() throws {
        let pool = try BlockPool(runtime: runtime, placement: .device(0), size: 65_536, pageShift: 16)
        let held = try pool.allocate(bytes: 65_536)
        let clock = ContinuousClock()
        let start = clock.now
        #expect(throws: PoolError.self) { try pool.allocate(bytes: 32_768, timeout: .milliseconds(200)) }
        #expect(clock.now - start >= .milliseconds(200))
        #expect(throws: PoolError.self) { try pool.allocate(bytes: 32_768, timeout: .zero) }
        _ = held
    }

    @Test func eightThreadsAllocatingAndReleasingLeaveAConsistentPool() throws {
        let pool = try BlockPool(runtime: runtime, placement: .device(0), size: 1 << 22, pageShift: 12)
        let threads = (0..<8).map { seed in
            Thread {
                var generator = SplitMix64(seed: UInt64(seed))
                var mine: [PoolSpan] = []
                for _ in 0..<2000 {
                    if mine.count < 16, let span = try? pool.allocate(bytes: Int(generator.next() % 40_000) + 1) {
                        mine.append(span)
                    } else if !mine.isEmpty {
                        mine.remove(at: Int(generator.next() % UInt64(mine.count)))
                    }
                }
            }
        }
        threads.forEach { $0.start() }
        threads.forEach { $0.join() }
        #expect(pool.usage.pagesInUse == 0)
        #expect(pool.verify() == nil)
    }
}

/// A joinable POSIX thread running a closure.
final class Thread: @unchecked Sendable {
    private var handle = pthread_t()
    private let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    func start() {
        let box = Unmanaged.passRetained(self)
        pthread_create(&handle, nil, { raw in
            let thread = Unmanaged<Thread>.fromOpaque(raw!).takeRetainedValue()
            thread.body()
            return nil
        }, box.toOpaque())
    }
    func join() { pthread_join(handle, nil) }
}
