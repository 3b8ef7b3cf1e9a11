import BlockPool
import DataDistTestSupport
import DeviceRuntime
import Synchronization
import Testing
import ThreadSanitizerSupport

@Suite struct BlockPoolTests {
    let runtime = TestRuntime()

    @Test func fourTensorsOf64KiBFillA256KiBPool() throws {
        let pool = try BlockPool(runtime: runtime, placement: .device(0), size: 262_144, pageShift: 16)
        let spans = try (0..<4).map { _ in try HeldSpan(pool, bytes: 65_536) }
        #expect(pool.usage.pagesFree == 0)
        #expect(throws: PoolError.self) { try HeldSpan(pool, bytes: 1) }
        #expect(Set(spans.map(\.address)).count == 4)
        #expect(spans.allSatisfy { $0.address % 65_536 == pool.region.address % 65_536 })
    }

    @Test func everyAllocationTakesWholePages() throws {
        let pool = try BlockPool(runtime: runtime, placement: .device(0), size: 65_536, pageShift: 16)
        let first = try HeldSpan(pool, bytes: 2048)
        #expect(first.pages == 1)
        #expect(throws: PoolError.self) { try HeldSpan(pool, bytes: 2048) }
    }

    @Test func tenHalfPageAllocationsFillATenPagePool() throws {
        let pool = try BlockPool(runtime: runtime, placement: .host, size: 10 * 65_536, pageShift: 16)
        let spans = try (0..<10).map { _ in try HeldSpan(pool, bytes: 32_768) }
        #expect(spans.count == 10)
        #expect(pool.usage.pagesFree == 0)
    }

    @Test func pagesReturnWhenTheOwnerLetsGo() throws {
        let pool = try BlockPool(runtime: runtime, placement: .device(0), size: 4 * 1024, pageShift: 10)
        do {
            let spans = try pool.allocate(count: 1, bytes: 3000)
            #expect(spans.pages == 3 && pool.usage.pagesInUse == 3 && pool.usage.spansInUse == 1)
        }
        #expect(pool.usage.pagesInUse == 0 && pool.usage.spansInUse == 0)
        #expect(pool.verify() == nil)
    }

    @Test func theRegionReturnsToTheRuntimeAfterPoolAndSpansAreGone() throws {
        var pool: BlockPool? = try BlockPool(runtime: runtime, placement: .device(0), size: 8192, pageShift: 12)
        do {
            let spans = try pool!.allocate(count: 1, bytes: 10)
            pool = nil
            #expect(spans.pages == 1 && runtime.live.withLock { $0.count } == 1, "a live span keeps the region")
        }
        #expect(runtime.live.withLock { $0.count } == 0)
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
            _ = try BlockPool(
                runtime: TestRuntime(refuseAllocations: true), placement: .device(0), size: 4096, pageShift: 10)
        } throws: { error in
            if case .runtime(let inner) = error as? PoolError { return inner.aclCode == ACLCode.memoryAllocation }
            return false
        }
    }

    @Test func eightThreadsAllocatingAndReleasingLeaveAConsistentPool() throws {
        let pool = try BlockPool(runtime: runtime, placement: .device(0), size: 1 << 22, pageShift: 12)
        let threads = try (0..<8).map { seed in
            try JoinableThread.start {
                var generator = SplitMix64(seed: UInt64(seed))
                var mine: [HeldSpan] = []
                for _ in 0..<2000 {
                    if mine.count < 16, let span = try? HeldSpan(pool, bytes: Int(generator.next() % 40_000) + 1) {
                        mine.append(span)
                    } else if !mine.isEmpty {
                        mine.remove(at: Int(generator.next() % UInt64(mine.count)))
                    }
                }
            }
        }
        for thread in threads { thread.join() }
        #expect(pool.usage.pagesInUse == 0)
        #expect(pool.verify() == nil)
    }
}
