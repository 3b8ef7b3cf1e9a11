// Row 1: allocate + deallocate of a 4-tensor cache, against glibc malloc + free of the same 4 tensors.
import BenchSupport
import Benchmark
import DataDist

#if canImport(Glibc)
import Glibc
#endif

/// One tensor geometry: batch 2 (so two request keys fit), fp16.
struct TensorCase {
    let label: String
    let shape: [Int64]

    var desc: CacheDesc { CacheDesc(numTensors: 4, shape: shape, dataType: .float16) }
    var bytes: Int { Int(shape.reduce(1, *)) * 2 }
}

let tensorCases = [
    // 2 requests x 64 tokens x 8 KV heads x 128 head dim, fp16: 256 KiB per tensor.
    TensorCase(label: "4x256KiB", shape: [2, 64, 8, 128]),
    // 2 requests x 2 tokens x 8 heads x 128 head dim, fp16: 4 KiB per tensor.
    TensorCase(label: "4x4KiB", shape: [2, 2, 8, 128]),
]

/// Pool for the allocation rows: 64 MiB in 64 KiB pages (the reference's default page_shift 16).
let allocationPoolSize = 64 << 20

final class AllocationFixture {
    let dataDist: LLMDataDist
    let manager: CacheManager
    var nextRequest: UInt64 = 1

    init() throws {
        dataDist = try makeDataDist(poolSize: allocationPoolSize, pageShift: 16)
        manager = try dataDist.cacheManager
    }

    func key() -> CacheKey {
        defer { nextRequest += 1 }
        return CacheKey(promptClusterID: 1, reqID: nextRequest)
    }

    /// Nothing may be left behind: every allocation of the measured loop was released (checked outside
    /// the measurement, after each iteration).
    func checkNothingLeft() throws {
        let audit = manager.audit()
        guard audit.liveCaches == 0, audit.boundKeys == 0, audit.pagesInUse == 0, audit.orphans == 0 else {
            throw BenchmarkFailure("allocation benchmark leaked: \(audit)")
        }
    }
}

struct BenchmarkFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

let benchmarks: @Sendable () -> Void = {
    for tensor in tensorCases {
        let row = "alloc \(tensor.label)"
        let bytes = tensor.bytes

        Benchmark(benchmarkName(row, "ceiling: malloc+free", ops: 1000), configuration: configuration(scaling: .kilo)) {
            benchmark in
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                let first = malloc(bytes)
                let second = malloc(bytes)
                let third = malloc(bytes)
                let fourth = malloc(bytes)
                blackHole(first)
                blackHole(second)
                blackHole(third)
                blackHole(fourth)
                free(first)
                free(second)
                free(third)
                free(fourth)
            }
            benchmark.stopMeasurement()
        }

        Benchmark(
            benchmarkName(row, "DataDist no keys", ops: 1000), configuration: configuration(scaling: .kilo),
            closure: { benchmark, fixture throws in
                let desc = tensor.desc
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations {
                    let cache = try fixture.manager.allocateCache(desc)
                    blackHole(cache)
                    try fixture.manager.deallocateCache(cache)
                }
                benchmark.stopMeasurement()
                try fixture.checkNothingLeft()
            },
            setup: { try AllocationFixture() })

        Benchmark(
            benchmarkName(row, "DataDist 2 keys + removeCacheKey", ops: 1000),
            configuration: configuration(scaling: .kilo),
            closure: { benchmark, fixture throws in
                let desc = tensor.desc
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations {
                    let first = fixture.key()
                    let second = fixture.key()
                    let cache = try fixture.manager.allocateCache(desc, keys: [first, second])
                    blackHole(cache)
                    // The keys hold the cache after deallocate; the second removal releases its memory.
                    try fixture.manager.deallocateCache(cache)
                    try fixture.manager.removeCacheKey(first)
                    try fixture.manager.removeCacheKey(second)
                }
                benchmark.stopMeasurement()
                try fixture.checkNothingLeft()
            },
            setup: { try AllocationFixture() })
    }
}
