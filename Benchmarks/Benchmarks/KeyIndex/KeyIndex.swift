// Row 2: the key index. removeCacheKey of absent keys (a pure index miss) and of present keys (index hit +
// unbind), with 1 K and with 1 M live keys. The 1 K case is the "ceiling": the cost should not grow with the
// number of live keys.
import BenchSupport
import Benchmark
import DataDist

/// 1024 batch slots of 1 byte: tiny caches, so a 1 M-key fixture needs only 1 MiB of pool (pages of 1 KiB).
let slotsPerCache = 1024
let keyDesc = CacheDesc(numTensors: 1, shape: [Int64(slotsPerCache), 1], dataType: .int8)
let keyCounts: [(label: String, keys: Int)] = [("1K", 1 << 10), ("1M", 1 << 20)]

struct BenchmarkFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// An instance holding `backgroundCaches` caches of 1024 bound keys each (request ids from 0 up).
final class KeyFixture {
    let dataDist: LLMDataDist
    let manager: CacheManager
    let backgroundKeys: Int
    private var random = XorShift(seed: 0x5EED)
    /// Request ids of per-iteration batches: far above the background keys.
    private var nextFreshRequest: UInt64 = 1 << 40

    init(backgroundCaches: Int) throws {
        let tensorBytes = try keyDesc.tensorByteSize
        dataDist = try makeDataDist(poolSize: (backgroundCaches + 4) * tensorBytes, pageShift: 10)
        manager = try dataDist.cacheManager
        var keys: [CacheKey] = []
        keys.reserveCapacity(slotsPerCache)
        for cache in 0..<backgroundCaches {
            keys.removeAll(keepingCapacity: true)
            for slot in 0..<slotsPerCache {
                keys.append(CacheKey(promptClusterID: 1, reqID: UInt64(cache * slotsPerCache + slot)))
            }
            _ = try manager.allocateCache(keyDesc, keys: keys)
        }
        backgroundKeys = backgroundCaches * slotsPerCache
        try expectBoundKeys(backgroundKeys)
    }

    /// A request key that is never bound: ids from 2^62 up, spread at random over the index.
    func absentKey() -> CacheKey {
        CacheKey(promptClusterID: 1, reqID: (1 << 62) | (random.next() >> 2))
    }

    /// A new cache with 1024 fresh keys, all bound.
    func freshBatch() throws -> (Cache, [CacheKey]) {
        let keys = (0..<slotsPerCache).map { _ in
            defer { nextFreshRequest += 1 }
            return CacheKey(promptClusterID: 1, reqID: nextFreshRequest)
        }
        return (try manager.allocateCache(keyDesc, keys: keys), keys)
    }

    private var iterations = 0

    func isFirstIteration() -> Bool {
        defer { iterations += 1 }
        return iterations == 0
    }

    func expectBoundKeys(_ expected: Int) throws {
        let audit = manager.audit()
        guard audit.boundKeys == expected, audit.orphans == 0 else {
            throw BenchmarkFailure("expected \(expected) bound keys and no orphans, found \(audit)")
        }
    }
}

/// The same shapes as DataDist's key index (namespace, id, model id → cache id, slot, pulled tensors), in a
/// bare Dictionary: the reference row shows what 1 M entries cost on this machine's caches, library aside.
struct ReferenceKey: Hashable {
    let namespace: UInt8
    let id: UInt64
    let modelID: UInt64
}

struct ReferenceBinding {
    let cacheID: Int64
    let slot: Int
    var pulledTensors: Set<Int> = []
}

final class ReferenceFixture {
    var index: [ReferenceKey: ReferenceBinding] = [:]
    private var random = XorShift(seed: 0x5EED)

    init(keys: Int) {
        index.reserveCapacity(keys)
        for id in 0..<keys {
            index[ReferenceKey(namespace: 0, id: UInt64(id), modelID: 0)] = ReferenceBinding(
                cacheID: Int64(id / slotsPerCache), slot: id % slotsPerCache)
        }
    }

    func absentKey() -> ReferenceKey { ReferenceKey(namespace: 0, id: (1 << 62) | (random.next() >> 2), modelID: 0) }
}

let benchmarks: @Sendable () -> Void = {
    for count in keyCounts {
        let entries = count.keys == 1 << 10 ? "ceiling: \(count.label) entries" : "\(count.label) entries"
        Benchmark(
            benchmarkName("Dictionary miss reference", entries, ops: 1000),
            configuration: configuration(scaling: .kilo),
            closure: { benchmark, fixture in
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations { blackHole(fixture.index[fixture.absentKey()]) }
                benchmark.stopMeasurement()
            },
            setup: { ReferenceFixture(keys: count.keys) })
    }
    for count in keyCounts {
        let side = count.keys == 1 << 10 ? "ceiling: \(count.label) live keys" : "\(count.label) live keys"

        Benchmark(
            benchmarkName("removeCacheKey absent", side, ops: 1000), configuration: configuration(scaling: .kilo),
            closure: { benchmark, fixture throws in
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations {
                    try fixture.manager.removeCacheKey(fixture.absentKey())
                }
                benchmark.stopMeasurement()
            },
            setup: { try KeyFixture(backgroundCaches: count.keys / slotsPerCache) })

        Benchmark(
            benchmarkName("removeCacheKey present", side, ops: 1000), configuration: configuration(scaling: .kilo),
            closure: { benchmark, fixture throws in
                // Outside the measurement: bind 1024 new keys (total = the live-key count), then remove 1000.
                let (cache, keys) = try fixture.freshBatch()
                benchmark.startMeasurement()
                for index in benchmark.scaledIterations {
                    try fixture.manager.removeCacheKey(keys[index])
                }
                benchmark.stopMeasurement()
                // The audit walks every key: check the first iteration only.
                let check = fixture.isFirstIteration()
                if check {
                    try fixture.expectBoundKeys(
                        fixture.backgroundKeys + slotsPerCache - benchmark.scaledIterations.count)
                }
                try fixture.manager.deallocateCache(cache)
                for key in keys[benchmark.scaledIterations.count...] { try fixture.manager.removeCacheKey(key) }
                if check { try fixture.expectBoundKeys(fixture.backgroundKeys) }
            },
            setup: { try KeyFixture(backgroundCaches: count.keys / slotsPerCache - 1) })
    }
}
