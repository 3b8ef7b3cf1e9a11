import DeviceRuntime
import Synchronization

/// Several equal-sized spans taken from one pool together (one per tensor of a cache). Not copyable: exactly one
/// owner holds them, and every span returns to the pool when that owner lets them go. An owner that must share
/// the memory stores them in an object of its own (a cache manager keeps them inline in its cache record, so one
/// allocation holds both); one that lends the memory to copies without handing out references counts those
/// with a `PinCount` beside the spans.
public struct TensorSpans: ~Copyable, Sendable {
    public let pool: BlockPool
    /// Pages of each span.
    public let pagesPerSpan: Int
    /// Bytes requested per span.
    public let byteCount: Int
    /// Number of spans.
    public let count: Int
    private let layout: Layout
    /// Addresses of every span, in order.
    public let addresses: [UInt]

    /// Where the spans lie: one run of `count * pagesPerSpan` pages (the common case: no array), or one run each.
    enum Layout: Sendable {
        case adjacent(firstPage: Int)
        case scattered(firstPages: [Int])
    }

    /// Spans placed on their own.
    init(pool: BlockPool, firstPages: [Int], pagesPerSpan: Int, byteCount: Int) {
        let layout = Layout.scattered(firstPages: firstPages)
        self.pool = pool
        self.layout = layout
        self.count = firstPages.count
        self.pagesPerSpan = pagesPerSpan
        self.byteCount = byteCount
        addresses = Self.addresses(of: layout, count: firstPages.count, pagesPerSpan: pagesPerSpan, pool: pool)
    }

    /// Adjacent spans; `addresses` those of a run of the same split released earlier, or empty.
    init(pool: BlockPool, firstPage: Int, count: Int, pagesPerSpan: Int, byteCount: Int, addresses: [UInt]) {
        let layout = Layout.adjacent(firstPage: firstPage)
        self.pool = pool
        self.layout = layout
        self.count = count
        self.pagesPerSpan = pagesPerSpan
        self.byteCount = byteCount
        self.addresses =
            addresses.count == count
            ? addresses : Self.addresses(of: layout, count: count, pagesPerSpan: pagesPerSpan, pool: pool)
    }

    deinit { pool.release(layout, pagesPerSpan: pagesPerSpan, count: count, addresses: addresses) }

    /// Pages of all spans together.
    public var pages: Int { pagesPerSpan * count }

    /// First page of span `index`.
    public func firstPage(_ index: Int) -> Int {
        precondition((0..<count).contains(index), "span \(index) of \(count)")
        return Self.firstPage(index, of: layout, pagesPerSpan: pagesPerSpan)
    }

    @inline(__always)
    private static func firstPage(_ index: Int, of layout: Layout, pagesPerSpan: Int) -> Int {
        switch layout {
        case .adjacent(let firstPage): firstPage + index * pagesPerSpan
        case .scattered(let firstPages): firstPages[index]
        }
    }

    /// Address of span `index`.
    public func address(_ index: Int) -> UInt { pool.address(ofPage: firstPage(index)) }

    private static func addresses(of layout: Layout, count: Int, pagesPerSpan: Int, pool: BlockPool) -> [UInt] {
        let base = pool.region.address
        let shift = pool.pageShift
        @inline(__always) func address(_ index: Int) -> UInt {
            base + UInt(firstPage(index, of: layout, pagesPerSpan: pagesPerSpan) << shift)
        }
        // Up to four spans, an array literal: its storage type is resolved once per call site, while the generic
        // initialisers look `_ContiguousArrayStorage<UInt>` up in the runtime's metadata cache on every call
        // (callgrind: ~400 of the ~4 k instructions of an allocate+deallocate).
        switch count {
        case 1: return [address(0)]
        case 2: return [address(0), address(1)]
        case 3: return [address(0), address(1), address(2)]
        case 4: return [address(0), address(1), address(2), address(3)]
        default: break
        }
        return [UInt](unsafeUninitializedCapacity: count) { buffer, initialized in
            for index in 0..<count { buffer[index] = address(index) }
            initialized = count
        }
    }
}

/// Transient holders of memory its owner keeps (copies in flight), for an owner that must know whether one is
/// still using it after the owner no longer wants it. Keep it outside any `Optional` (holders update it without a
/// lock, and an optional's tag check may read the same word).
public struct PinCount: ~Copyable, Sendable {
    /// Holders, plus `retiredBit` once retired.
    private let state = Atomic<Int>(0)
    private static var retiredBit: Int { 1 << 62 }

    public init() {}

    /// Counts one more holder (only while the owner still wants the memory: before `retire()`).
    public func pin() { state.wrappingAdd(1, ordering: .sequentiallyConsistent) }

    /// Drops a holder. True when it was the last one and `retire()` had already been called: the caller must
    /// then let the owner drop the memory. Reads and writes the count in one atomic operation, so a caller that
    /// does not own the memory must not touch it after a false result.
    public func unpin() -> Bool {
        state.wrappingSubtract(1, ordering: .sequentiallyConsistent).newValue == Self.retiredBit
    }

    /// Marks the memory as no longer wanted by its owner. True when holders remain: the owner must keep the
    /// memory until an `unpin()` returns true. Exactly one of the two sees the last holder go. No `pin()` may
    /// start after this call.
    public func retire() -> Bool {
        // No holder now, and none can start: nobody will unpin, so there is nothing to mark (a load, not a
        // read-modify-write; its ordering still makes every earlier holder's accesses happen before the caller's
        // release of the memory).
        if state.load(ordering: .sequentiallyConsistent) == 0 { return false }
        return state.bitwiseOr(Self.retiredBit, ordering: .sequentiallyConsistent).oldValue & ~Self.retiredBit > 0
    }

    /// Holders right now.
    public var count: Int { state.load(ordering: .sequentiallyConsistent) & ~Self.retiredBit }
}
