import BlockPool
import DataDistTestSupport
import Testing

/// The flat-array allocator against a page-by-page reference model: every page is free or owned by one live
/// span, so overlaps, leaks and missed coalescing show up as a disagreement.
@Suite struct SpanAllocatorModelTests {
    /// Owner of each page (-1: free) and the live spans, checked after every step.
    struct Model {
        var owner: [Int]
        var live: [(start: Int, pages: Int)] = []
        init(pageCount: Int) { owner = Array(repeating: -1, count: pageCount) }

        var pagesInUse: Int { live.reduce(0) { $0 + $1.pages } }

        /// The longest run of free pages: after full coalescing the allocator must be able to serve it.
        var longestFreeRun: Int {
            var (best, run) = (0, 0)
            for page in owner {
                run = page < 0 ? run + 1 : 0
                best = max(best, run)
            }
            return best
        }

        mutating func take(start: Int, pages: Int) -> Bool {
            guard start >= 0, start + pages <= owner.count, owner[start..<(start + pages)].allSatisfy({ $0 < 0 }) else {
                return false
            }
            for page in start..<(start + pages) { owner[page] = start }
            live.append((start, pages))
            return true
        }

        mutating func give(at index: Int) -> Int {
            let span = live.remove(at: index)
            for page in span.start..<(span.start + span.pages) { owner[page] = -1 }
            return span.start
        }
    }

    @Test(arguments: [(1, 7), (16, 11), (97, 23), (1000, 5), (4099, 19), (65_537, 3)])
    func randomAllocateAndReleaseAgreeWithAPageModel(pageCount: Int, seed: UInt64) {
        var generator = SplitMix64(seed: seed)
        var allocator = SpanAllocator(pageCount: pageCount)
        var model = Model(pageCount: pageCount)
        let steps = pageCount > 10_000 ? 600 : 3000
        for step in 0..<steps {
            // Mostly small requests, sometimes large ones, so the pool fragments and runs near exhaustion.
            let limit = generator.next() % 8 == 0 ? pageCount : max(1, pageCount / 16)
            if model.live.isEmpty || generator.next() % 5 < 3 {
                let pages = Int(generator.next() % UInt64(limit)) + 1
                if let start = allocator.allocate(pages: pages) {
                    let fits = model.take(start: start, pages: pages)
                    #expect(fits, "step \(step): span \(start)+\(pages) overlaps or overruns")
                } else {
                    // Full coalescing: a free run that long would exist only as one span, which must be found.
                    #expect(
                        model.longestFreeRun < pages,
                        "step \(step): \(pages) pages refused, free run \(model.longestFreeRun)")
                }
            } else {
                allocator.release(start: model.give(at: Int(generator.next() % UInt64(model.live.count))))
            }
            #expect(allocator.pagesInUse == model.pagesInUse)
            #expect(allocator.spansInUse == model.live.count)
            #expect(allocator.largestFreeSpan == model.longestFreeRun, "step \(step)")
            if step % 97 == 0 { #expect(allocator.verify() == nil, "step \(step)") }
        }
        #expect(allocator.verify() == nil)
        while !model.live.isEmpty {
            allocator.release(start: model.give(at: Int(generator.next() % UInt64(model.live.count))))
        }
        #expect(allocator.pagesInUse == 0 && allocator.spansInUse == 0)
        #expect(allocator.largestFreeSpan == pageCount, "everything released coalesces back into one span")
        #expect(allocator.allocate(pages: pageCount) == 0)
        #expect(allocator.verify() == nil)
    }

    @Test(arguments: [1, 3, 64, 1000])
    func exhaustionReturnsNilAndChangesNothing(pageCount: Int) {
        var allocator = SpanAllocator(pageCount: pageCount)
        #expect(allocator.allocate(pages: pageCount + 1) == nil)
        let all = (0..<pageCount).compactMap { _ in allocator.allocate(pages: 1) }
        #expect(Set(all) == Set(0..<pageCount))
        #expect(allocator.allocate(pages: 1) == nil)
        #expect(allocator.pagesInUse == pageCount && allocator.pagesFree == 0 && allocator.largestFreeSpan == 0)
        // Free every other page: plenty of free pages, no run of two.
        for page in stride(from: 0, to: pageCount, by: 2) { allocator.release(start: page) }
        if pageCount > 2 { #expect(allocator.allocate(pages: 2) == nil) }
        #expect(allocator.verify() == nil)
    }

    @Test func aCopyIsIndependentOfItsOriginal() {
        var original = SpanAllocator(pageCount: 64)
        let a = original.allocate(pages: 10)!
        var copy = original
        let b = copy.allocate(pages: 20)!
        copy.release(start: a)
        #expect(original.pagesInUse == 10 && copy.pagesInUse == 20)
        #expect(original.verify() == nil && copy.verify() == nil)
        original.release(start: a)
        copy.release(start: b)
        #expect(original.largestFreeSpan == 64 && copy.largestFreeSpan == 64)
    }
}
