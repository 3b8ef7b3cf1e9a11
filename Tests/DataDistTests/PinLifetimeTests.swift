import Synchronization
import Testing
import ThreadSanitizerSupport

@testable import DataDist

/// A cache deallocated while a local copy uses it keeps its memory until the copy ends, and the audit counts
/// that memory the whole time (no orphans, no leak afterwards).
@Suite struct PinLifetimeTests {
    @Test(arguments: [false, true])
    func deallocateDuringACopyKeepsTheMemoryUntilTheCopyEnds(twoCacheForm: Bool) throws {
        try withCacheManager(devicePool: 1 << 20, pageShift: 12) { manager in
            let desc = CacheDesc(numTensors: 2, shape: [1, 1024], dataType: .int32)
            let kept = try manager.allocateCache(desc)
            let doomed = try manager.allocateCache(desc)
            let pagesOfBoth = manager.audit().pagesInUse
            var during: CacheAudit?
            let body = { () throws(LLMError) in
                try manager.deallocateCache(doomed)
                during = manager.audit()
                // The id is gone for new operations even though its memory is still pinned.
                #expect(throws: LLMError.self) { try manager.copyCache(dst: kept, src: doomed) }
            }
            if twoCacheForm {
                try manager.store.withPinned(kept.cacheID, doomed.cacheID, operation: "test") { _, _ throws(LLMError) in
                    try body()
                }
            } else {
                try manager.store.withPinned([doomed.cacheID, kept.cacheID], operation: "test") { _ throws(LLMError) in
                    try body()
                }
            }
            #expect(during?.liveCaches == 1)
            #expect(during?.pagesInUse == pagesOfBoth, "the pinned memory is still in use")
            #expect(during?.orphans == 0)
            let after = manager.audit()
            #expect(after.pagesInUse == pagesOfBoth / 2 && after.orphans == 0, "\(after)")
            try manager.deallocateCache(kept)
            #expect(manager.audit().isClean)
        }
    }

    @Test func copiesRacingDeallocationsLeaveNoOrphans() throws {
        try withCacheManager(devicePool: 8 << 20, pageShift: 12) { manager in
            let desc = CacheDesc(numTensors: 2, shape: [1, 64 << 10], dataType: .int8)
            let source = try manager.allocateCache(desc)
            let victims = Lock<[Cache]>([])
            let copier = TestThread {
                var failures: [String] = []
                for _ in 0..<3000 {
                    guard let victim = victims.withLock({ $0.last }) else { continue }
                    do throws(LLMError) {
                        try manager.copyCache(dst: victim, src: source)
                    } catch  where error.status == .kvCacheNotExist {
                    } catch {
                        failures.append("copy: \(error)")
                    }
                }
                return failures
            }
            let allocator = TestThread {
                var failures: [String] = []
                for _ in 0..<3000 {
                    do {
                        let cache = try manager.allocateCache(desc)
                        victims.withLock { $0.append(cache) }
                        let old = victims.withLock { $0.count > 1 ? $0.removeFirst() : nil }
                        if let old { try manager.deallocateCache(old) }
                    } catch {
                        failures.append("allocate/deallocate: \(error)")
                    }
                }
                return failures
            }
            let auditor = TestThread {
                var failures: [String] = []
                for _ in 0..<3000 {
                    let audit = manager.audit()
                    if audit.orphans != 0 { failures.append("\(audit)") }
                }
                return failures
            }
            let threads = [copier, allocator, auditor]
            for thread in threads { try thread.start() }
            for thread in threads { thread.join() }
            let failures = threads.flatMap(\.failures)
            #expect(failures.isEmpty, "\(failures.prefix(5))")
            for cache in victims.withLock({ $0 }) { try manager.deallocateCache(cache) }
            try manager.deallocateCache(source)
            #expect(manager.audit().isClean, "\(manager.audit())")
        }
    }
}
