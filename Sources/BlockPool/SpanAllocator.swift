/// Page-span bookkeeping for one pool: which page ranges are free, which are taken.
///
/// Free spans live in segregated lists (two-level: a power-of-two range, then 16 linear subranges), found
/// through bitmaps, so allocation and release cost O(1) map operations whatever the number of live spans.
/// A request takes the tail of the first span large enough; the front stays free. Released spans merge with
/// free neighbours on both sides. Pure value type: no memory, no locking.
public struct SpanAllocator: Sendable {
    public let pageCount: Int
    /// Start page → span.
    private var spans: [Int: Span] = [:]
    /// Last page → start page, to find the left neighbour of a span.
    private var startOfSpanEndingAt: [Int: Int] = [:]
    private var freeLists: [Set<Int>]
    private var firstLevelBitmap: UInt64 = 0
    private var secondLevelBitmaps: [UInt16]
    public private(set) var pagesInUse = 0
    public private(set) var spansInUse = 0

    private struct Span {
        var pages: Int
        var isFree: Bool
    }

    private static let secondLevelBits = 4
    private static let secondLevelCount = 1 << secondLevelBits
    private static let firstLevelCount = 62

    public init(pageCount: Int) {
        precondition(pageCount > 0, "a pool has at least one page")
        self.pageCount = pageCount
        freeLists = Array(repeating: [], count: Self.firstLevelCount * Self.secondLevelCount)
        secondLevelBitmaps = Array(repeating: 0, count: Self.firstLevelCount)
        insertFree(start: 0, pages: pageCount)
    }

    public var pagesFree: Int { pageCount - pagesInUse }

    /// Takes `pages` contiguous pages; returns the first page, or nil when no free span is large enough.
    public mutating func allocate(pages: Int) -> Int? {
        precondition(pages > 0, "allocate at least one page")
        guard pages <= pageCount - pagesInUse, let start = findFree(atLeast: pages) else { return nil }
        let span = spans[start]!
        removeFree(start: start, pages: span.pages)
        let remainder = span.pages - pages
        let taken = start + remainder
        if remainder > 0 { insertFree(start: start, pages: remainder) }
        spans[taken] = Span(pages: pages, isFree: false)
        startOfSpanEndingAt[taken + pages - 1] = taken
        pagesInUse += pages
        spansInUse += 1
        return taken
    }

    /// Returns the span starting at `start`, merging it with free neighbours. Traps on a page that does not
    /// start a span in use (a double free is a broken invariant).
    public mutating func release(start: Int) {
        guard let span = spans[start], !span.isFree else {
            preconditionFailure("release of page \(start), which does not start a span in use")
        }
        pagesInUse -= span.pages
        spansInUse -= 1
        spans[start] = nil
        startOfSpanEndingAt[start + span.pages - 1] = nil
        var mergedStart = start
        var mergedPages = span.pages
        let next = start + span.pages
        if let right = spans[next], right.isFree {
            removeFree(start: next, pages: right.pages)
            mergedPages += right.pages
        }
        if start > 0, let leftStart = startOfSpanEndingAt[start - 1], let left = spans[leftStart], left.isFree {
            removeFree(start: leftStart, pages: left.pages)
            mergedStart = leftStart
            mergedPages += left.pages
        }
        insertFree(start: mergedStart, pages: mergedPages)
    }

    /// The largest free span, in pages.
    public var largestFreeSpan: Int {
        spans.values.lazy.filter(\.isFree).map(\.pages).max() ?? 0
    }

    /// Checks every invariant; for tests. Returns a description of the first violation, or nil.
    public func verify() -> String? {
        var page = 0
        var used = 0
        var previousFree = false
        while page < pageCount {
            guard let span = spans[page] else { return "no span starts at page \(page)" }
            if startOfSpanEndingAt[page + span.pages - 1] != page { return "end tag of span \(page) is wrong" }
            if span.isFree {
                if previousFree { return "adjacent free spans at page \(page)" }
                let (first, second) = Self.classIndex(of: span.pages)
                if !freeLists[first * Self.secondLevelCount + second].contains(page) {
                    return "free span \(page) missing from its list"
                }
            } else {
                used += span.pages
            }
            previousFree = span.isFree
            page += span.pages
        }
        if page != pageCount { return "spans overrun the pool" }
        if used != pagesInUse { return "pagesInUse \(pagesInUse) but spans hold \(used)" }
        let listed = freeLists.reduce(0) { $0 + $1.count }
        let free = spans.values.filter(\.isFree).count
        if listed != free { return "\(listed) listed free spans, \(free) free spans" }
        return nil
    }

    // MARK: segregated lists

    private static func classIndex(of pages: Int) -> (Int, Int) {
        if pages < secondLevelCount { return (0, pages) }
        let log2 = Int.bitWidth - 1 - pages.leadingZeroBitCount
        let second = (pages >> (log2 - secondLevelBits)) & (secondLevelCount - 1)
        return (log2 - secondLevelBits + 1, second)
    }

    private mutating func insertFree(start: Int, pages: Int) {
        spans[start] = Span(pages: pages, isFree: true)
        startOfSpanEndingAt[start + pages - 1] = start
        let (first, second) = Self.classIndex(of: pages)
        freeLists[first * Self.secondLevelCount + second].insert(start)
        firstLevelBitmap |= 1 << UInt64(first)
        secondLevelBitmaps[first] |= 1 << UInt16(second)
    }

    private mutating func removeFree(start: Int, pages: Int) {
        let (first, second) = Self.classIndex(of: pages)
        let index = first * Self.secondLevelCount + second
        freeLists[index].remove(start)
        if freeLists[index].isEmpty {
            secondLevelBitmaps[first] &= ~(1 << UInt16(second))
            if secondLevelBitmaps[first] == 0 { firstLevelBitmap &= ~(1 << UInt64(first)) }
        }
        spans[start] = nil
        startOfSpanEndingAt[start + pages - 1] = nil
    }

    private func findFree(atLeast pages: Int) -> Int? {
        // Round the request up to the next class boundary: every span listed from there on is large enough.
        var rounded = pages
        if pages >= Self.secondLevelCount {
            let log2 = Int.bitWidth - 1 - pages.leadingZeroBitCount
            rounded += (1 << (log2 - Self.secondLevelBits)) - 1
        }
        if rounded <= pageCount, let start = firstInClass(atOrAbove: Self.classIndex(of: rounded)) {
            return start
        }
        // Near exhaustion the only fit may share the request's own class: look there before giving up.
        let (first, second) = Self.classIndex(of: pages)
        let list = freeLists[first * Self.secondLevelCount + second]
        return list.first { spans[$0]!.pages >= pages }
    }

    private func firstInClass(atOrAbove index: (Int, Int)) -> Int? {
        let (first, second) = index
        guard first < Self.firstLevelCount else { return nil }
        let sameLevel = secondLevelBitmaps[first] & (UInt16.max << UInt16(second))
        if sameLevel != 0 {
            return freeLists[first * Self.secondLevelCount + sameLevel.trailingZeroBitCount].first
        }
        guard first + 1 < Self.firstLevelCount else { return nil }
        let higher = firstLevelBitmap & (UInt64.max << UInt64(first + 1))
        guard higher != 0 else { return nil }
        let level = higher.trailingZeroBitCount
        let slot = secondLevelBitmaps[level].trailingZeroBitCount
        return freeLists[level * Self.secondLevelCount + slot].first
    }
}
