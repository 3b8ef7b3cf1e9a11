/// Page-span bookkeeping for one pool: which page ranges are free, which are taken.
///
/// Free spans live in segregated lists (two-level: a power-of-two range, then 16 linear subranges), found
/// through bitmaps; the lists are threaded through per-page link arrays and every span is tagged at its first
/// and last page, so allocation and release are O(1) and touch a handful of words whatever the number of live
/// spans. A request takes the tail of the first span large enough; the front stays free. Released spans merge
/// with free neighbours on both sides. A value type (copy-on-write): no memory of the pool, no locking.
public struct SpanAllocator: Sendable {
    public let pageCount: Int
    private var table: PageTable
    private var firstLevelBitmap: UInt64 = 0
    public private(set) var pagesInUse = 0
    public private(set) var spansInUse = 0

    static let secondLevelBits = 4
    static let secondLevelCount = 1 << secondLevelBits
    static let firstLevelCount = 62
    static let classCount = firstLevelCount * secondLevelCount

    public init(pageCount: Int) {
        precondition(pageCount > 0, "a pool has at least one page")
        precondition(pageCount <= Int(Int32.max), "a pool has at most \(Int32.max) pages")
        self.pageCount = pageCount
        table = PageTable(pageCount: pageCount, classCount: Self.classCount, levelCount: Self.firstLevelCount)
        insertFree(start: 0, pages: pageCount)
    }

    public var pagesFree: Int { pageCount - pagesInUse }

    /// Takes `pages` contiguous pages; returns the first page, or nil when no free span is large enough.
    public mutating func allocate(pages: Int) -> Int? {
        precondition(pages > 0, "allocate at least one page")
        guard pages <= pageCount - pagesInUse, let start = findFree(atLeast: pages) else { return nil }
        makeUnique()
        let spanPages = -Int(table.length(start))
        removeFree(start: start, pages: spanPages)
        let remainder = spanPages - pages
        let taken = start + remainder
        if remainder > 0 { insertFree(start: start, pages: remainder) }
        tag(start: taken, pages: pages, free: false)
        pagesInUse += pages
        spansInUse += 1
        return taken
    }

    /// Returns the span starting at `start`, merging it with free neighbours. Traps on a page that does not
    /// start a span in use (a double free is a broken invariant).
    public mutating func release(start: Int) {
        guard start >= 0, start < pageCount, table.length(start) > 0 else {
            preconditionFailure("release of page \(start), which does not start a span in use")
        }
        makeUnique()
        let pages = Int(table.length(start))
        pagesInUse -= pages
        spansInUse -= 1
        table.setLength(start, 0)
        var mergedStart = start
        var mergedEnd = start + pages  // exclusive
        if mergedEnd < pageCount, table.length(mergedEnd) < 0 {
            let rightPages = -Int(table.length(mergedEnd))
            removeFree(start: mergedEnd, pages: rightPages)
            table.setLength(mergedEnd, 0)
            mergedEnd += rightPages
        }
        if start > 0 {
            let leftStart = Int(table.startOfSpan(endingAt: start - 1))
            if table.length(leftStart) < 0 {
                removeFree(start: leftStart, pages: -Int(table.length(leftStart)))
                mergedStart = leftStart
            }
        }
        insertFree(start: mergedStart, pages: mergedEnd - mergedStart)
    }

    /// The largest free span, in pages.
    public var largestFreeSpan: Int {
        guard firstLevelBitmap != 0 else { return 0 }
        let level = Int.bitWidth - 1 - firstLevelBitmap.leadingZeroBitCount
        let slot = UInt16.bitWidth - 1 - table.bitmap(level).leadingZeroBitCount
        var largest = 0
        var page = Int(table.head(level * Self.secondLevelCount + slot))
        while page >= 0 {
            largest = max(largest, -Int(table.length(page)))
            page = Int(table.next(page))
        }
        return largest
    }

    /// Checks every invariant; for tests. Returns a description of the first violation, or nil.
    public func verify() -> String? {
        var page = 0
        var used = 0
        var usedSpans = 0
        var freeSpans = 0
        var previousFree = false
        while page < pageCount {
            let length = Int(table.length(page))
            guard length != 0 else { return "no span starts at page \(page)" }
            let pages = abs(length)
            guard page + pages <= pageCount else { return "span \(page) of \(pages) pages overruns the pool" }
            if Int(table.startOfSpan(endingAt: page + pages - 1)) != page { return "end tag of span \(page) is wrong" }
            for interior in (page + 1)..<(page + pages) where table.length(interior) != 0 {
                return "page \(interior) inside span \(page) carries a start tag"
            }
            if length < 0 {
                if previousFree { return "adjacent free spans at page \(page)" }
                freeSpans += 1
                let (first, second) = Self.classIndex(of: pages)
                if table.bitmap(first) & (1 << UInt16(second)) == 0 || firstLevelBitmap & (1 << UInt64(first)) == 0 {
                    return "free span \(page) is in class (\(first), \(second)), which the bitmaps mark empty"
                }
            } else {
                used += pages
                usedSpans += 1
            }
            previousFree = length < 0
            page += pages
        }
        if used != pagesInUse { return "pagesInUse \(pagesInUse) but spans hold \(used)" }
        if usedSpans != spansInUse { return "spansInUse \(spansInUse) but \(usedSpans) spans are in use" }
        var listed = 0
        for index in 0..<Self.classCount {
            let (first, second) = (index / Self.secondLevelCount, index % Self.secondLevelCount)
            let marked = table.bitmap(first) & (1 << UInt16(second)) != 0
            var member = Int(table.head(index))
            if marked != (member >= 0) { return "bitmap bit of class (\(first), \(second)) disagrees with its list" }
            var previous = -1
            while member >= 0 {
                listed += 1
                if listed > freeSpans { return "the free lists hold more entries than the \(freeSpans) free spans" }
                let length = Int(table.length(member))
                guard length < 0 else { return "listed page \(member) does not start a free span" }
                guard Self.classIndex(of: -length) == (first, second) else {
                    return "free span \(member) is in the wrong list"
                }
                guard Int(table.previous(member)) == previous else {
                    return "back link of free span \(member) is wrong"
                }
                previous = member
                member = Int(table.next(member))
            }
        }
        if listed != freeSpans { return "\(listed) listed free spans, \(freeSpans) free spans" }
        return nil
    }

    // MARK: tags and segregated lists

    static func classIndex(of pages: Int) -> (Int, Int) {
        if pages < secondLevelCount { return (0, pages) }
        let log2 = Int.bitWidth - 1 - pages.leadingZeroBitCount
        let second = (pages >> (log2 - secondLevelBits)) & (secondLevelCount - 1)
        return (log2 - secondLevelBits + 1, second)
    }

    private mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&table) { table = PageTable(copying: table) }
    }

    /// Records a span at its first page (length, negative when free) and its last page (its first page).
    private func tag(start: Int, pages: Int, free: Bool) {
        table.setLength(start, Int32(truncatingIfNeeded: free ? -pages : pages))
        table.setStartOfSpan(endingAt: start + pages - 1, Int32(truncatingIfNeeded: start))
    }

    private mutating func insertFree(start: Int, pages: Int) {
        tag(start: start, pages: pages, free: true)
        let (first, second) = Self.classIndex(of: pages)
        let index = first * Self.secondLevelCount + second
        let head = table.head(index)
        table.setNext(start, head)
        table.setPrevious(start, -1)
        if head >= 0 { table.setPrevious(Int(head), Int32(truncatingIfNeeded: start)) }
        table.setHead(index, Int32(truncatingIfNeeded: start))
        firstLevelBitmap |= 1 << UInt64(first)
        table.setBitmap(first, table.bitmap(first) | 1 << UInt16(second))
    }

    /// Unlinks a free span from its list (its tags stay until the caller rewrites them).
    private mutating func removeFree(start: Int, pages: Int) {
        let (first, second) = Self.classIndex(of: pages)
        let index = first * Self.secondLevelCount + second
        let next = table.next(start)
        let previous = table.previous(start)
        if next >= 0 { table.setPrevious(Int(next), previous) }
        if previous >= 0 {
            table.setNext(Int(previous), next)
        } else {
            table.setHead(index, next)
            if next < 0 {
                let remaining = table.bitmap(first) & ~(1 << UInt16(second))
                table.setBitmap(first, remaining)
                if remaining == 0 { firstLevelBitmap &= ~(1 << UInt64(first)) }
            }
        }
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
        var page = Int(table.head(first * Self.secondLevelCount + second))
        while page >= 0 {
            if -Int(table.length(page)) >= pages { return page }
            page = Int(table.next(page))
        }
        return nil
    }

    private func firstInClass(atOrAbove index: (Int, Int)) -> Int? {
        let (first, second) = index
        guard first < Self.firstLevelCount else { return nil }
        let sameLevel = table.bitmap(first) & (UInt16.max << UInt16(second))
        if sameLevel != 0 {
            return Int(table.head(first * Self.secondLevelCount + sameLevel.trailingZeroBitCount))
        }
        guard first + 1 < Self.firstLevelCount else { return nil }
        let higher = firstLevelBitmap & (UInt64.max << UInt64(first + 1))
        guard higher != 0 else { return nil }
        let level = higher.trailingZeroBitCount
        let slot = table.bitmap(level).trailingZeroBitCount
        return Int(table.head(level * Self.secondLevelCount + slot))
    }
}
