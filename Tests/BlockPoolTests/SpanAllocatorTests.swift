import BlockPool
import DataDistTestSupport
import Testing

@Suite struct SpanAllocatorTests {
    @Test func fourPagesFillAFourPagePoolAndNothingMoreFits() {
        var allocator = SpanAllocator(pageCount: 4)
        let starts = (0..<4).compactMap { _ in allocator.allocate(pages: 1) }
        #expect(starts.count == 4)
        #expect(Set(starts).count == 4)
        #expect(allocator.allocate(pages: 1) == nil)
        #expect(allocator.pagesFree == 0)
        #expect(allocator.verify() == nil)
    }

    @Test func takesTheTailOfTheSpanAndLeavesTheFrontFree() {
        var allocator = SpanAllocator(pageCount: 10)
        #expect(allocator.allocate(pages: 3) == 7)
        #expect(allocator.allocate(pages: 2) == 5)
        #expect(allocator.pagesInUse == 5)
    }

    @Test func releasedSpansMergeWithBothNeighbours() {
        var allocator = SpanAllocator(pageCount: 12)
        let a = allocator.allocate(pages: 4)!
        let b = allocator.allocate(pages: 4)!
        let c = allocator.allocate(pages: 4)!
        allocator.release(start: a)
        allocator.release(start: c)
        #expect(allocator.largestFreeSpan == 4)
        allocator.release(start: b)
        #expect(allocator.largestFreeSpan == 12)
        #expect(allocator.allocate(pages: 12) == 0)
        #expect(allocator.verify() == nil)
    }

    @Test func exhaustionChangesNothing() {
        var allocator = SpanAllocator(pageCount: 8)
        _ = allocator.allocate(pages: 5)
        #expect(allocator.allocate(pages: 4) == nil)
        #expect(allocator.pagesInUse == 5)
        #expect(allocator.verify() == nil)
    }

    @Test(arguments: [17, 100, 1000, 4099])
    func anExactFitInsideTheRequestsOwnClassIsFound(pages: Int) {
        // Leave exactly one free run of `pages` pages (other runs too small), then ask for all of it.
        var allocator = SpanAllocator(pageCount: pages + 2)
        let holder = allocator.allocate(pages: 1)!
        let rest = allocator.allocate(pages: pages + 1)!
        allocator.release(start: rest)
        _ = holder
        #expect(allocator.allocate(pages: pages + 1) != nil)
        #expect(allocator.verify() == nil)
    }

    @Test func randomSequencesKeepEveryInvariant() {
        var generator = SplitMix64(seed: 0xDA7A)
        for round in 0..<20 {
            let pageCount = Int(generator.next() % 4000) + 1
            var allocator = SpanAllocator(pageCount: pageCount)
            var live: [(start: Int, pages: Int)] = []
            for _ in 0..<1500 {
                if live.isEmpty || generator.next() % 3 != 0 {
                    let pages = Int(generator.next() % UInt64(max(1, pageCount / 8))) + 1
                    let freeBefore = allocator.pagesFree
                    if let start = allocator.allocate(pages: pages) {
                        #expect(start >= 0 && start + pages <= pageCount)
                        #expect(!live.contains { $0.start < start + pages && start < $0.start + $0.pages })
                        live.append((start, pages))
                    } else {
                        #expect(allocator.pagesFree == freeBefore)
                        #expect(allocator.largestFreeSpan < pages, "round \(round): a fit existed")
                    }
                } else {
                    let index = Int(generator.next() % UInt64(live.count))
                    allocator.release(start: live.remove(at: index).start)
                }
                #expect(allocator.pagesInUse == live.reduce(0) { $0 + $1.pages })
            }
            #expect(allocator.verify() == nil)
            for span in live { allocator.release(start: span.start) }
            #expect(allocator.largestFreeSpan == pageCount)
        }
    }
}
