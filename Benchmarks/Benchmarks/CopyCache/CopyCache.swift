// Row 3: copyCache of one slot of a single-tensor cache, against memcpy of the same bytes between buffers of
// the same size. Sizes of 1 MiB and more rotate over enough buffer pairs (128 MiB in all, 4x the L3) that every
// copy reads and writes DRAM, on both sides alike; 64 KiB stays cache-resident on both sides (it measures the
// per-call overhead).
import BenchSupport
import Benchmark
import DataDist

#if canImport(Glibc)
import Glibc
#endif

struct BenchmarkFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Buffer pairs to rotate over so the working set is 128 MiB (1 pair when the size is cache-resident anyway).
func ringCount(_ bytes: Int) -> Int { bytes >= 1 << 20 ? (128 << 20) / (2 * bytes) : 1 }

/// The pages' first touch happens here, outside any measurement, on both sides.
func fill(_ address: UInt, _ bytes: Int, _ value: Int32) {
    memset(UnsafeMutableRawPointer(bitPattern: address)!, value, bytes)
}

/// `ring` source and destination caches of one slot of `bytes` bytes, in one device pool.
final class CopyCacheFixture {
    let dataDist: LLMDataDist
    let manager: CacheManager
    let sources: [Cache]
    let destinations: [Cache]
    var next = 0

    init(bytes: Int) throws {
        let ring = ringCount(bytes)
        let desc = CacheDesc(numTensors: 1, shape: [1, Int64(bytes)], dataType: .int8)
        dataDist = try makeDataDist(poolSize: 2 * ring * bytes + (64 << 10), pageShift: 16)
        let manager = try dataDist.cacheManager
        self.manager = manager
        sources = try (0..<ring).map { _ in try manager.allocateCache(desc) }
        destinations = try (0..<ring).map { _ in try manager.allocateCache(desc) }
        for cache in sources { fill(cache.tensorAddresses[0], bytes, 0x5A) }
        for cache in destinations { fill(cache.tensorAddresses[0], bytes, 0) }
        // The benchmark must measure a real copy: check one.
        try manager.copyCache(dst: destinations[0], src: sources[0])
        guard
            memcmp(
                UnsafeRawPointer(bitPattern: destinations[0].tensorAddresses[0])!,
                UnsafeRawPointer(bitPattern: sources[0].tensorAddresses[0])!, bytes) == 0
        else { throw BenchmarkFailure("copyCache of \(bytes) bytes did not copy them") }
    }

    func copyNext() throws {
        try manager.copyCache(dst: destinations[next], src: sources[next])
        next = next + 1 == sources.count ? 0 : next + 1
    }
}

/// The same ring of buffers from glibc, page-aligned like pool spans.
final class MemcpyFixture {
    let bytes: Int
    let sources: [UnsafeMutableRawPointer]
    let destinations: [UnsafeMutableRawPointer]
    var next = 0

    init(bytes: Int) {
        self.bytes = bytes
        let ring = ringCount(bytes)
        sources = (0..<ring).map { _ in aligned_alloc(4096, bytes)! }
        destinations = (0..<ring).map { _ in aligned_alloc(4096, bytes)! }
        for buffer in sources { memset(buffer, 0x5A, bytes) }
        for buffer in destinations { memset(buffer, 0, bytes) }
    }

    func copyNext() {
        memcpy(destinations[next], sources[next], bytes)
        next = next + 1 == sources.count ? 0 : next + 1
    }

    deinit {
        for buffer in sources + destinations { free(buffer) }
    }
}

let benchmarks: @Sendable () -> Void = {
    let copySizes: [(label: String, bytes: Int, scaling: BenchmarkScalingFactor)] = [
        ("64KiB", 64 << 10, .kilo),
        ("1MiB", 1 << 20, .one),
        ("16MiB", 16 << 20, .one),
    ]
    for size in copySizes {
        let row = "copyCache \(size.label)"
        let ops = size.scaling.rawValue

        Benchmark(
            benchmarkName(row, "ceiling: memcpy", ops: ops), configuration: configuration(scaling: size.scaling),
            closure: { benchmark, fixture in
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations { fixture.copyNext() }
                benchmark.stopMeasurement()
            },
            setup: { MemcpyFixture(bytes: size.bytes) })

        Benchmark(
            benchmarkName(row, "DataDist", ops: ops), configuration: configuration(scaling: size.scaling),
            closure: { benchmark, fixture throws in
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations { try fixture.copyNext() }
                benchmark.stopMeasurement()
            },
            setup: { try CopyCacheFixture(bytes: size.bytes) })
    }
}
