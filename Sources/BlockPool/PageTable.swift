/// The per-page words of a `SpanAllocator`, in one allocation:
/// - `length`: at the first page of a span, its length in pages (negative when free); 0 on every other page;
/// - `startOfSpan(endingAt:)`: at the last page of a span, its first page (stale elsewhere, never read there);
/// - `next` / `previous`: at the first page of a free span, its neighbours in its free list (-1: none);
/// - `head`: per size class, the first free span of its list (-1: empty);
/// - `bitmap`: per first-level class, which of its 16 second-level lists are not empty.
///
/// Unchecked on purpose (this is the allocator's hot path); `SpanAllocator` passes only pages inside the pool
/// and keeps the table uniquely referenced before writing (copy-on-write), which is what makes it `Sendable`.
final class PageTable: @unchecked Sendable {
    private let pageCount: Int
    private let classCount: Int
    private let levelCount: Int
    private let words: UnsafeMutablePointer<Int32>

    private var wordCount: Int { 4 * pageCount + classCount + levelCount }

    init(pageCount: Int, classCount: Int, levelCount: Int) {
        self.pageCount = pageCount
        self.classCount = classCount
        self.levelCount = levelCount
        words = .allocate(capacity: 4 * pageCount + classCount + levelCount)
        words.initialize(repeating: 0, count: 2 * pageCount)
        (words + 2 * pageCount).initialize(repeating: -1, count: 2 * pageCount + classCount)
        (words + 4 * pageCount + classCount).initialize(repeating: 0, count: levelCount)
    }

    init(copying other: PageTable) {
        pageCount = other.pageCount
        classCount = other.classCount
        levelCount = other.levelCount
        words = .allocate(capacity: other.wordCount)
        words.initialize(from: other.words, count: other.wordCount)
    }

    deinit { words.deallocate() }

    @inline(__always) func length(_ page: Int) -> Int32 { words[page] }
    @inline(__always) func setLength(_ page: Int, _ value: Int32) { words[page] = value }
    @inline(__always) func startOfSpan(endingAt page: Int) -> Int32 { words[pageCount + page] }
    @inline(__always) func setStartOfSpan(endingAt page: Int, _ value: Int32) { words[pageCount + page] = value }
    @inline(__always) func next(_ page: Int) -> Int32 { words[2 * pageCount + page] }
    @inline(__always) func setNext(_ page: Int, _ value: Int32) { words[2 * pageCount + page] = value }
    @inline(__always) func previous(_ page: Int) -> Int32 { words[3 * pageCount + page] }
    @inline(__always) func setPrevious(_ page: Int, _ value: Int32) { words[3 * pageCount + page] = value }
    @inline(__always) func head(_ sizeClass: Int) -> Int32 { words[4 * pageCount + sizeClass] }
    @inline(__always) func setHead(_ sizeClass: Int, _ value: Int32) { words[4 * pageCount + sizeClass] = value }
    @inline(__always) func bitmap(_ level: Int) -> UInt16 {
        UInt16(truncatingIfNeeded: words[4 * pageCount + classCount + level])
    }
    @inline(__always) func setBitmap(_ level: Int, _ value: UInt16) {
        words[4 * pageCount + classCount + level] = Int32(truncatingIfNeeded: value)
    }
}
