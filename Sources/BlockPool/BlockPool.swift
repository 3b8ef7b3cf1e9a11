public import DeviceRuntime
import Synchronization
import ThreadSanitizerSupport

/// A memory pool: one region taken once from the runtime, handed out in whole pages of `1 << pageShift`
/// bytes, several equal spans at a time (`TensorSpans`, one per tensor of a cache), each group returned when its
/// one owner drops it. Thread-safe. The region returns to the runtime when the pool and every group taken from it
/// are gone.
public final class BlockPool: Sendable {
    public let region: DeviceMemory
    public let pageShift: Int
    public let pageCount: Int
    private let runtime: any DeviceRuntime
    private let state: Lock<PoolState>

    /// The most pages a pool may have (its allocator indexes pages with 32-bit signed integers).
    public static let maxPages = Int(Int32.max)

    public var pageSize: Int { 1 << pageShift }
    public var placement: MemoryPlacement { region.placement }

    /// Takes `size` bytes from `runtime` on `placement`. `pageShift` must be in 10...30, one page must fit, and
    /// the pool may have at most `maxPages` pages.
    public init(runtime: any DeviceRuntime, placement: MemoryPlacement, size: Int, pageShift: Int) throws(PoolError) {
        guard (10...30).contains(pageShift) else {
            throw .invalidConfiguration(field: "page_shift", message: "page_shift \(pageShift) is outside 10...30")
        }
        guard size >= 1 << pageShift else {
            throw .invalidConfiguration(
                field: "memory_size", message: "memory_size \(size) is smaller than one page of \(1 << pageShift) bytes"
            )
        }
        guard size >> pageShift <= Self.maxPages else {
            throw .invalidConfiguration(
                field: "memory_size",
                message:
                    "memory_size \(size) with page_shift \(pageShift) makes \(size >> pageShift) pages; a pool has at most \(Self.maxPages)"
            )
        }
        let memory: DeviceMemory
        do {
            switch placement {
            case .host: memory = try runtime.allocateHost(size)
            case .device(let device): memory = try runtime.allocateDevice(size, on: device)
            }
        } catch {
            throw .runtime(error)
        }
        self.runtime = runtime
        self.region = memory
        self.pageShift = pageShift
        self.pageCount = size >> pageShift
        self.state = Lock(PoolState(pageCount: size >> pageShift))
    }

    deinit {
        try? runtime.free(region)
    }

    /// Pages needed for `bytes` (at least one); exact up to `Int.max` bytes.
    @inline(__always)
    public func pages(forBytes bytes: Int) -> Int {
        max(1, (bytes >> pageShift) + (bytes & ((1 << pageShift) - 1) == 0 ? 0 : 1))
    }

    /// `count` spans of at least `bytes` bytes each: all of them or none. When one free run can hold them all
    /// they are adjacent (one span in the allocator); otherwise each is placed on its own.
    public func allocate(count: Int, bytes: Int) throws(PoolError) -> TensorSpans {
        precondition(bytes > 0 && count > 0, "allocate at least one span of one byte")
        let pages = pages(forBytes: bytes)
        let (total, overflow) = pages.multipliedReportingOverflow(by: count)
        if !overflow, let run = state.withLock({ $0.allocateRun(pages: total) }) {
            return TensorSpans(
                pool: self, firstPage: run.start, count: count, pagesPerSpan: pages, byteCount: bytes,
                addresses: run.addresses)
        }
        return try allocateScattered(count: count, bytes: bytes, pages: pages, total: overflow ? nil : total)
    }

    /// `allocate(count:bytes:)` when no free run held all the spans: under one lock, one run (if pages were
    /// released meanwhile) or one run each, all or none.
    private func allocateScattered(count: Int, bytes: Int, pages: Int, total: Int?) throws(PoolError) -> TensorSpans {
        let layout: TensorSpans.Layout? = state.withLock { state in
            if let total, let start = state.allocate(pages: total) { return .adjacent(firstPage: start) }
            guard count > 1 else { return nil }
            var firstPages: [Int] = []
            firstPages.reserveCapacity(count)
            while firstPages.count < count, let start = state.allocate(pages: pages) { firstPages.append(start) }
            guard firstPages.count == count else {
                for page in firstPages { state.release(start: page, pages: pages) }
                state.flushRecent()
                return nil
            }
            return .scattered(firstPages: firstPages)
        }
        guard let layout else {
            let (free, largest) = state.withLock { ($0.pagesFree, $0.largestFreeSpan) }
            throw .exhausted(requestedBytes: bytes, requestedPages: pages, freePages: free, largestFreePages: largest)
        }
        return switch layout {
        case .adjacent(let start):
            TensorSpans(
                pool: self, firstPage: start, count: count, pagesPerSpan: pages, byteCount: bytes, addresses: [])
        case .scattered(let firstPages):
            TensorSpans(pool: self, firstPages: firstPages, pagesPerSpan: pages, byteCount: bytes)
        }
    }

    /// Pages in use and free right now.
    public var usage: PoolUsage {
        state.withLock {
            PoolUsage(pagesInUse: $0.pagesInUse, pagesFree: $0.pagesFree, spansInUse: $0.spansInUse)
        }
    }

    /// Checks the allocator's invariants; nil when they hold. (Hands recently released runs back to the allocator
    /// first, which changes no figure `usage` reports.)
    public func verify() -> String? {
        state.withLock { state in
            state.flushRecent()
            return state.allocator.verify()
        }
    }

    /// Address of a page.
    func address(ofPage page: Int) -> UInt { region.address + UInt(page << pageShift) }

    func release(_ layout: TensorSpans.Layout, pagesPerSpan: Int, count: Int, addresses: [UInt]) {
        state.withLock { state in
            switch layout {
            case .adjacent(let firstPage):
                state.release(start: firstPage, pages: pagesPerSpan * count, addresses: addresses)
            case .scattered(let firstPages): for page in firstPages { state.release(start: page, pages: pagesPerSpan) }
            }
        }
    }
}

/// Pool occupancy.
public struct PoolUsage: Sendable, Hashable {
    public let pagesInUse: Int
    public let pagesFree: Int
    public let spansInUse: Int
}
