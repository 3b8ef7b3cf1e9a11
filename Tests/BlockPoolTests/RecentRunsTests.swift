import BlockPool
import DeviceRuntime
import Testing

/// Runs a pool keeps back after release (for the next request of the same size): their pages count as free in
/// every figure, and they never make a request fail or report less room.
@Suite struct RecentRunsTests {
    let runtime = TestRuntime()

    @Test func aReleasedRunServesTheNextRequestOfItsSizeAndCountsAsFree() throws {
        let pool = try BlockPool(runtime: runtime, placement: .host, size: 64 * 1024, pageShift: 10)
        // A scope, not an optional: `optional!.property` would move a noncopyable value out (and release it).
        let (first, addresses): (Int, [UInt])
        do {
            let spans = try pool.allocate(count: 4, bytes: 2048)
            (first, addresses) = (spans.firstPage(0), spans.addresses)
            #expect(counts(pool) == [8, 56, 1] && spans.count == 4)
        }
        #expect(counts(pool) == [0, 64, 0])
        let again = try pool.allocate(count: 4, bytes: 2048)
        #expect(again.firstPage(0) == first && again.addresses == addresses)
        #expect(counts(pool) == [8, 56, 1])
        #expect(pool.verify() == nil)
    }

    @Test func anotherSplitOfTheSameRunGetsItsOwnAddresses() throws {
        let pool = try BlockPool(runtime: runtime, placement: .host, size: 16 * 1024, pageShift: 10)
        let first = try pool.allocate(count: 4, bytes: 1024).firstPage(0)
        let halves = try pool.allocate(count: 2, bytes: 2048)
        #expect(halves.firstPage(0) == first, "the same four pages, split in two")
        #expect(halves.addresses == [halves.address(0), halves.address(1)])
        #expect(halves.address(1) - halves.address(0) == 2048)
    }

    @Test func aRequestThatNeedsTheRecentRunsMergedStillSucceeds() throws {
        let pool = try BlockPool(runtime: runtime, placement: .device(0), size: 8 * 1024, pageShift: 10)
        // Eight single pages, all released: they sit apart (four kept back, four merged) until needed.
        var singles: [HeldSpan] = try (0..<8).map { _ in try HeldSpan(pool, bytes: 1024) }
        singles.removeAll()
        #expect(pool.usage.pagesFree == 8)
        let whole = try HeldSpan(pool, bytes: 8 * 1024)
        #expect(whole.pages == 8 && pool.usage.pagesFree == 0)
        #expect(pool.verify() == nil)
    }

    @Test func exhaustionReportsTheRecentRunsAsFreeRoom() throws {
        let pool = try BlockPool(runtime: runtime, placement: .host, size: 8 * 1024, pageShift: 10)
        let held = try HeldSpan(pool, bytes: 4 * 1024)
        var released: HeldSpan? = try HeldSpan(pool, bytes: 2 * 1024)
        released = nil
        #expect(
            throws: PoolError.exhausted(requestedBytes: 5 * 1024, requestedPages: 5, freePages: 4, largestFreePages: 4)
        ) {
            try HeldSpan(pool, bytes: 5 * 1024)
        }
        #expect(pool.usage.pagesInUse == 4 && pool.verify() == nil)
        _ = (held, released)
    }

    @Test(arguments: [1, 4, 5, 9])
    func manyReleasesKeepTheCountsExact(releases: Int) throws {
        let pool = try BlockPool(runtime: runtime, placement: .host, size: 64 * 1024, pageShift: 10)
        var spans: [HeldSpan] = try (0..<12).map { try HeldSpan(pool, bytes: ($0 % 3 + 1) * 1024) }
        let releasedPages = spans.prefix(releases).reduce(0) { $0 + $1.pages }
        let before = pool.usage
        spans.removeFirst(releases)
        #expect(pool.usage.pagesInUse == before.pagesInUse - releasedPages)
        #expect(pool.usage.pagesFree == before.pagesFree + releasedPages)
        #expect(pool.usage.spansInUse == 12 - releases)
        #expect(pool.verify() == nil)
        spans.removeAll()
        #expect(counts(pool) == [0, 64, 0])
        #expect(pool.verify() == nil)
    }
}

/// Pages in use, pages free, spans in use.
private func counts(_ pool: BlockPool) -> [Int] {
    let usage = pool.usage
    return [usage.pagesInUse, usage.pagesFree, usage.spansInUse]
}
