/// A pool's page bookkeeping: the span allocator, plus a few runs released recently and kept out of it.
///
/// A released run goes to `recent` first, still tagged in use inside the allocator; a request for exactly its
/// size takes the newest such run back without touching the allocator's free lists (for a cache allocated and
/// released in a loop, the common pattern, that is a few compares instead of four free-list updates and a
/// merge). A run may carry the addresses of its spans, which are the same values whoever takes it next in the
/// same split, so a cache's address array is built once and shared (arrays are values: nobody sees a change).
/// The runs' pages count as free in every figure this type reports, and they go back to the allocator
/// (merging with their neighbours) when `recent` is full, and before any request the allocator alone cannot
/// serve, so no request fails or reports less room because of them. A value type, used under the pool's lock.
struct PoolState: Sendable {
    private(set) var allocator: SpanAllocator
    private var recent = RecentRuns()

    init(pageCount: Int) { allocator = SpanAllocator(pageCount: pageCount) }

    /// Takes `pages` contiguous pages; returns the first page, or nil when no free run is large enough.
    mutating func allocate(pages: Int) -> Int? {
        allocateRun(pages: pages)?.start
    }

    /// `allocate(pages:)`, with the addresses the run was released with (empty if none).
    mutating func allocateRun(pages: Int) -> (start: Int, addresses: [UInt])? {
        if let run = recent.take(pages: pages) { return run }
        if let start = allocator.allocate(pages: pages) { return (start, []) }
        guard !recent.isEmpty else { return nil }
        flushRecent()
        return allocator.allocate(pages: pages).map { ($0, []) }
    }

    /// Returns the run of `pages` pages starting at `start` (a run this state handed out), with the addresses of
    /// its spans for the next request of the same size (empty: none).
    mutating func release(start: Int, pages: Int, addresses: consuming [UInt] = []) {
        if let evicted = recent.put(start: start, pages: pages, addresses: addresses) {
            allocator.release(start: evicted)
        }
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

/// Up to `capacity` released runs (first page, length, addresses of their spans or empty), newest last.
struct RecentRuns: Sendable {
    static let capacity = 4

    private struct Run: Sendable {
        var start = 0
        var length = 0
        var addresses: [UInt] = []
    }

    private var runs = InlineArray<4, Run>(repeating: Run())
    private(set) var count = 0
    /// Pages of all runs together.
    private(set) var pages = 0

    var isEmpty: Bool { count == 0 }

    /// The newest run of exactly `pages` pages, removed; nil when there is none.
    mutating func take(pages wanted: Int) -> (start: Int, addresses: [UInt])? {
        var index = count - 1
        while index >= 0 {
            if runs[index].length == wanted {
                count -= 1
                runs.swapAt(index, count)
                var run = Run()
                swap(&run, &runs[count])  // moved out, not copied
                pages -= wanted
                return (run.start, run.addresses)
            }
            index -= 1
        }
        return nil
    }

    /// Adds a run; when full, removes the oldest and returns its first page for the caller to release.
    mutating func put(start: Int, pages added: Int, addresses: consuming [UInt]) -> Int? {
        for index in 0..<count where runs[index].start == start {
            preconditionFailure("release of page \(start), which is already released")
        }
        var evicted: Int?
        if count == Self.capacity {
            evicted = runs[0].start
            pages -= runs[0].length
            for index in 1..<count { runs.swapAt(index - 1, index) }
            count -= 1
        }
        runs[count] = Run(start: start, length: added, addresses: addresses)
        count += 1
        pages += added
        return evicted
    }

    /// The first page of the newest run, removed; nil when empty.
    mutating func removeLast() -> Int? {
        guard count > 0 else { return nil }
        count -= 1
        var run = Run()
        swap(&run, &runs[count])
        pages -= run.length
        return run.start
    }
}
