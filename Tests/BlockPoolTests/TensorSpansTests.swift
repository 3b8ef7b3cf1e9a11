import BlockPool
import DeviceRuntime
import Testing

/// `BlockPool.allocate(count:bytes:)`: several spans in one call, all or nothing, released together.
@Suite struct TensorSpansTests {
    let runtime = TestRuntime()

    @Test func spansAreAdjacentWhenOneRunHoldsThemAll() throws {
        let pool = try BlockPool(runtime: runtime, placement: .device(0), size: 16 * 1024, pageShift: 10)
        let spans = try pool.allocate(count: 4, bytes: 1500)
        #expect(spans.count == 4 && spans.pagesPerSpan == 2 && spans.pages == 8)
        #expect((0..<4).map { spans.firstPage($0) } == (0..<4).map { spans.firstPage(0) + 2 * $0 })
        #expect(spans.addresses == (0..<4).map { spans.address($0) })
        #expect(pool.usage.pagesInUse == 8 && pool.usage.pagesFree == 8 && pool.usage.spansInUse == 1)
        #expect(pool.verify() == nil)
    }

    @Test func aFragmentedPoolPlacesEachSpanOnItsOwn() throws {
        let pool = try BlockPool(runtime: runtime, placement: .device(0), size: 8 * 1024, pageShift: 10)
        let singles = try (0..<8).map { _ in try HeldSpan(pool, bytes: 1024) }
        // Keep every other page: four free pages, no two adjacent.
        var kept = singles.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
        _ = consume singles
        #expect(pool.usage.pagesFree == 4)
        var spans: TensorSpans? = try pool.allocate(count: 4, bytes: 1024)
        let pages = Set((0..<4).map { spans!.firstPage($0) })
        #expect(pages.count == 4 && pages.isDisjoint(with: kept.map(\.firstPage)))
        #expect(pool.usage.pagesFree == 0 && pool.verify() == nil)
        spans = nil
        #expect(pool.usage.pagesFree == 4)
        kept.removeAll()
        #expect(pool.usage.pagesInUse == 0 && pool.verify() == nil)
    }

    @Test func exhaustionTakesNothing() throws {
        let pool = try BlockPool(runtime: runtime, placement: .host, size: 8 * 1024, pageShift: 10)
        let held = try HeldSpan(pool, bytes: 3 * 1024)
        #expect(throws: PoolError.self) { _ = try pool.allocate(count: 3, bytes: 2 * 1024) }
        #expect(pool.usage.pagesInUse == 3 && pool.verify() == nil)
        _ = held
    }

    @Test func pinsAndRetirementTellWhoFinishes() {
        let pins = PinCount()
        pins.pin()
        pins.pin()
        #expect(pins.unpin() == false, "not retired: nothing to finish")
        #expect(pins.retire() == true, "one holder left")
        #expect(pins.unpin() == true, "the last holder after retirement finishes")
        #expect(pins.count == 0)
        let unpinned = PinCount()
        #expect(unpinned.retire() == false)
    }
}
