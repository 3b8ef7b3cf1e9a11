import DataDist

/// GB/s of each ceiling (`CopyCeilings.Kind`) for one pattern.
struct Ceilings {
    var single: Double
    var allCores: Double
    var streaming: Double

    /// Every ceiling, each from `gbps(kind)`.
    init(_ gbps: (CopyCeilings.Kind) throws(LLMError) -> Double) throws(LLMError) {
        single = try gbps(.singleThread)
        allCores = try gbps(.allCores)
        streaming = try gbps(.streaming)
    }
}

extension CopyCeilings {
    /// GB/s of every ceiling for `pattern`, each measured now for `duration` seconds.
    func ceilings(_ pattern: Pattern, duration: Double) throws(LLMError) -> Ceilings {
        try Ceilings { kind throws(LLMError) in try measure(pattern, kind: kind, duration: duration).gbps }
    }
}

/// Timed loops.
enum BenchTiming {
    struct Result {
        var iterations: Int
        var seconds: Double
        /// Seconds of each iteration, when asked for.
        var samples: [Double] = []
    }

    /// Runs `body(i)` for i = 0, 1, … until `duration` seconds passed and at least `minIterations` ran (or
    /// `maxIterations` ran).
    static func loop(
        duration: Double, minIterations: Int = 1, maxIterations: Int = .max, samples: Bool = false,
        _ body: (Int) throws -> Void
    ) rethrows -> Result {
        let clock = ContinuousClock()
        let start = clock.now
        var result = Result(iterations: 0, seconds: 0)
        var last = start
        while result.iterations < maxIterations {
            try body(result.iterations)
            result.iterations += 1
            let now = clock.now
            if samples { result.samples.append((now - last).seconds) }
            last = now
            if result.iterations >= minIterations && (now - start).seconds >= duration { break }
        }
        result.seconds = (last - start).seconds
        return result
    }

    /// The `fraction` quantile of `samples` (nearest rank), in microseconds.
    static func quantileMicroseconds(_ samples: [Double], _ fraction: Double) -> Double? {
        guard !samples.isEmpty else { return nil }
        let sorted = samples.sorted()
        let rank = Int((fraction * Double(sorted.count)).rounded(.up)) - 1
        return sorted[min(max(rank, 0), sorted.count - 1)] * 1e6
    }
}
