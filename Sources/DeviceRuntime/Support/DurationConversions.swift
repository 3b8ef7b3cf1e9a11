extension Duration {
    /// Whole nanoseconds, clamped to `0...Int.max` (a negative duration is none, a huge one as long as it gets):
    /// what Dispatch and the system calls' timeouts take.
    package var clampedNanoseconds: Int {
        guard self > .zero else { return 0 }
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow, scaled <= Int64(Int.max) - attoseconds / 1_000_000_000 else { return .max }
        return Int(scaled + attoseconds / 1_000_000_000)
    }

    /// Seconds as a floating-point number, for rates.
    package var secondsValue: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
