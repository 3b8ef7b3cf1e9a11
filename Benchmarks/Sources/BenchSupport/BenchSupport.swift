import Benchmark
import DataDist

/// Benchmark names: `"<row> | <side> | per <ops>"`.
///
/// - `row` groups a measurement with the ceiling it is compared against (same row, same run).
/// - `side` is `ceiling: …` for the reference (glibc, memcpy, or the 1 K-key case), anything else for DataDist.
/// - `ops` is how many operations one measured iteration performs; `ratios.sh` divides by it for ns/op.
///
/// Rows never contain `_` or `|`: the JMH export turns spaces into `_`, and `ratios.py` turns them back.
public func benchmarkName(_ row: String, _ side: String, ops: Int) -> String {
    precondition(!row.contains("_") && !row.contains("|") && !side.contains("_") && !side.contains("|"))
    return "\(row) | \(side) | per \(ops)"
}

/// The metrics every benchmark records. Throughput is required by the JMH export that `ratios.sh` reads.
public let standardMetrics: [BenchmarkMetric] = [.wallClock, .throughput, .mallocCountTotal]

/// A configuration tuned for a full run of the suite in well under three minutes on 2 shared cores.
public func configuration(
    scaling: BenchmarkScalingFactor, warmup: Int = 5, seconds: Int = 2, maxIterations: Int = 1_000_000
) -> Benchmark.Configuration {
    .init(
        metrics: standardMetrics, timeUnits: .nanoseconds, warmupIterations: warmup, scalingFactor: scaling,
        maxDuration: .seconds(seconds), maxIterations: maxIterations)
}

/// The environment every benchmark initialises DataDist with: the emulator backend, independent of the
/// process environment.
public let emulatorEnvironment = ["DATADIST_BACKEND": "emulator", "DATADIST_EMULATE_DEVICE_MEMORY": "8GiB"]

/// An initialised instance with a device pool of `poolSize` bytes and pages of `1 << pageShift` bytes.
public func makeDataDist(poolSize: Int, pageShift: Int, clusterID: UInt64 = 1) throws -> LLMDataDist {
    let dataDist = LLMDataDist(role: .prompt, clusterID: clusterID)
    var config = LLMConfig()
    config.memoryPool = MemoryPoolConfig(size: poolSize, pageShift: pageShift)
    try dataDist.initialize(config, environment: emulatorEnvironment)
    return dataDist
}

/// A 64-bit xorshift generator: cheap enough to run inside a measured loop, so each iteration touches
/// different keys instead of replaying a cache-resident set.
public struct XorShift: Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }

    public mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}
