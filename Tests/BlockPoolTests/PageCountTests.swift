import BlockPool
import DeviceRuntime
import Synchronization
import Testing
import ThreadSanitizerSupport

/// `pages(forBytes:)` and `allocate` at the edge of `Int`: a byte count no pool can hold is refused, never a trap.
@Suite struct PageCountTests {
    let runtime = TestRuntime()

    @Test(arguments: [Int.max, Int.max - 1, Int.max - 65_535, Int.max - 65_536])
    func aByteCountNearIntMaxCountsItsPagesWithoutOverflow(bytes: Int) throws {
        let pool = try BlockPool(runtime: runtime, placement: .host, size: 65_536, pageShift: 16)
        let expected = bytes / 65_536 + (bytes % 65_536 == 0 ? 0 : 1)
        #expect(pool.pages(forBytes: bytes) == expected)
        #expect(throws: PoolError.self) { _ = try pool.allocate(count: 1, bytes: bytes) }
        #expect(throws: PoolError.self) { _ = try pool.allocate(count: 3, bytes: bytes) }
        #expect(pool.usage.pagesFree == 1 && pool.verify() == nil)
    }

    /// More pages than the allocator indexes: refused before any memory is asked of the runtime (the allocator
    /// traps on such a count).
    @Test(arguments: [(10, 1 << 41), (10, (1 << 42) - 1), (16, Int.max)])
    func aPoolOfMorePagesThanTheAllocatorIndexesIsRefused(pageShift: Int, size: Int) throws {
        #expect(
            throws: PoolError.invalidConfiguration(
                field: "memory_size",
                message:
                    "memory_size \(size) with page_shift \(pageShift) makes \(size >> pageShift) pages; a pool has at most \(Int32.max)"
            )
        ) {
            _ = try BlockPool(runtime: runtime, placement: .host, size: size, pageShift: pageShift)
        }
        #expect(runtime.live.withLock { $0.isEmpty })
    }
}
