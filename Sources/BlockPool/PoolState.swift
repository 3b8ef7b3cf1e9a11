/// A pool's page bookkeeping: the span allocator, plus a few runs released recently and kept out of it.
///
/// A released run goes to `recent` first, still tagged in use inside the allocator; a request for exactly its
/// size takes the newest such run back without touching the allocator's free lists (for a cache allocated and
/// released in a loop, the common pattern, that is a few compares instead of four free-list updates and a
/// merge). The runs' pages count as free in every figure this type reports, and they go back to the allocator
/// (merging with their neighbours) when `recent` is full, and before any request the allocator alone cannot
/// serve, so no request fails or reports less room because of them. A value type, used under the pool's lock.
struct PoolState: Sendable {
    private(set) var allocator: SpanAllocator
    private var recent = RecentRuns()

    init(pageCount: Int) { allocator = SpanAllocator(pageCount: pageCount) }

    /// Takes `pages` contiguous pages; returns the first page, or nil when no free run is large enough.
    mutating func allocate(pages: Int) -> Int? {
        if let start = recent.take(pages: pages) { return start }
        if let start = allocator.allocate(pages: pages) { return start }
        guard !recent.isEmpty else { return nil }
        flushRecent()
        return allocator.allocate(pages: pages)
    }

    /// Returns the run of `pages` pages starting at `start` (a run this state handed out).
    mutating func release(start: Int, pages: Int) {
        if let evicted = recent.put(start: start, pages: pages) { allocator.release(start: evicted) }
    }

    /// Hands every recent run back to the allocator.
    mutating func flushRecent() {
        while let start = recent.removeLast() { allocator.release(start: start) }
    }

    var pagesInUse: Int { allocator.pagesInUse - recent.pages }
    var pagesFree: Int { allocator.pagesFree + recent.pages }
    var spansInUse: Int { allocator.spansInUse - recent.count }

    /// The largest free run, in pages; call `flushRecent()` first for a figure that counts recent runs.
    var largestFreeSpan: Int { allocator.largestFreeSpan }
}

/// Up to `capacity` released runs (first page and length), newest last.
struct RecentRuns: Sendable {
    static let capacity = 4
    private var starts = InlineArray<4, Int>(repeating: 0)
    private var lengths = InlineArray<4, Int>(repeating: 0)
    private(set) var count = 0
    /// Pages of all runs together.
    private(set) var pages = 0

    var isEmpty: Bool { count == 0 }

    /// The first page of the newest run of exactly `pages` pages, removed; nil when there is none.
    mutating func take(pages wanted: Int) -> Int? {
        var index = count - 1
        while index >= 0 {
            if lengths[index] == wanted {
                let start = starts[index]
                count -= 1
                starts[index] = starts[count]
                lengths[index] = lengths[count]
                pages -= wanted
                return start
            }
            index -= 1
        }
        return nil
    }

    /// Adds a run; when full, removes the oldest and returns its first page for the caller to release.
    mutating func put(start: Int, pages added: Int) -> Int? {
        for index in 0..<count where starts[index] == start {
            preconditionFailure("release of page \(start), which is already released")
        }
        var evicted: Int?
        if count == Self.capacity {
            evicted = starts[0]
            pages -= lengths[0]
            for index in 1..<count {
                starts[index - 1] = starts[index]
                lengths[index - 1] = lengths[index]
            }
            count -= 1
        }
        starts[count] = start
        lengths[count] = added
        count += 1
        pages += added
        return evicted
    }

    /// The first page of the newest run, removed; nil when empty.
    mutating func removeLast() -> Int? {
        guard count > 0 else { return nil }
        count -= 1
        pages -= lengths[count]
        return starts[count]
    }
}
