import DataDist
import DataDistTestSupport
import DeviceRuntime
import Synchronization
import Testing
import ThreadSanitizerSupport

#if canImport(Glibc)
import Glibc
#endif

/// Eight threads allocating, binding, copying, removing and deallocating at once; the audit stays consistent
/// throughout and clean at the end. Also run under `swift test --sanitize=thread`.
@Suite struct StressTests {
    @Test func eightThreadsOfMixedOperations() throws {
        try withCacheManager(devicePool: 8 << 20, pageShift: 12) { manager in
            let threads = (0..<8).map { thread in
                TestThread { Self.worker(thread, manager: manager) }
            }
            for thread in threads { try thread.start() }
            for thread in threads { thread.join() }
            let failures = threads.flatMap(\.failures)
            #expect(failures.isEmpty, "\(failures.prefix(5))")
            #expect(manager.audit().isClean, "\(manager.audit())")
        }
    }
}

extension StressTests {
    static func worker(_ thread: Int, manager: CacheManager) -> [String] {
        var failures: [String] = []
        var generator = SplitMix64(seed: UInt64(thread) + 100)
        var mine: [(cache: Cache, keys: [CacheKey])] = []
        for step in 0..<400 {
            do {
                switch generator.next() % 4 {
                case 0, 1:
                    let keys = (0..<2).map { slot in
                        CacheKey(promptClusterID: 1, reqID: UInt64(thread * 1_000_000 + step * 2 + slot))
                    }
                    let width = Int64(generator.next() % 3000) + 1
                    let desc = CacheDesc(numTensors: 2, shape: [2, width], dataType: .int32)
                    do {
                        mine.append((try manager.allocateCache(desc, keys: keys), keys))
                    } catch  where error.status == .outOfMemory {}
                case 2:
                    guard let victim = mine.indices.randomElement(using: &generator) else { break }
                    let (cache, keys) = mine.remove(at: victim)
                    if generator.next() % 2 == 0 { try manager.deallocateCache(cache) }
                    for key in keys { try manager.removeCacheKey(key) }
                    try manager.deallocateCache(cache)
                default:
                    guard let a = mine.randomElement(using: &generator), let b = mine.randomElement(using: &generator)
                    else { break }
                    let size = Int(min(a.cache.desc.shape[1], b.cache.desc.shape[1])) * 4
                    try manager.copyCache(dst: a.cache, src: b.cache, srcBatchIndex: 1, size: size)
                }
                let orphans = manager.audit().orphans
                if orphans != 0 { failures.append("\(orphans) orphans at \(thread):\(step)") }
            } catch {
                failures.append("thread \(thread) step \(step): \(error)")
            }
        }
        for (cache, keys) in mine {
            try? manager.deallocateCache(cache)
            for key in keys { try? manager.removeCacheKey(key) }
        }
        return failures
    }
}

/// A thread running a closure that returns its failures; `failures` is what it returned, valid after `join`.
final class TestThread: Sendable {
    private let body: @Sendable () -> [String]
    private let state = Lock<(thread: JoinableThread?, failures: [String])>((nil, []))

    init(_ body: @escaping @Sendable () -> [String]) { self.body = body }

    func start() throws {
        let thread = try JoinableThread.start { [self] in
            let failures = body()
            state.withLock { $0.failures = failures }
        }
        state.withLock { $0.thread = thread }
    }

    func join() { state.withLock { $0.thread }?.join() }

    var failures: [String] { state.withLock { $0.failures } }
}
