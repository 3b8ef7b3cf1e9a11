import DeviceRuntime

/// Reference bandwidths for judging a transfer: how fast plain host copies move the same bytes, in the same
/// pattern, between two rings of shared memory (the kind the emulator's device pools are) larger than the
/// last-level cache. `datadist bench` reports every row beside them.
///
/// Successive measurements of one pattern continue where the previous one stopped, so short measurements
/// interleaved with other work keep reaching memory that is not in the cache. Use one instance from one thread
/// at a time.
public final class CopyCeilings {
    /// What one iteration copies: `segments` copies of `segmentBytes` each. Each iteration takes the next
    /// positions of the rings, wrapping around; `scattered` positions jump around the rings instead of advancing.
    public struct Pattern: Hashable, Sendable {
        public var segments: Int
        public var segmentBytes: Int
        public var scattered: Bool

        public init(segments: Int, segmentBytes: Int, scattered: Bool) {
            self.segments = segments
            self.segmentBytes = segmentBytes
            self.scattered = scattered
        }

        /// Bytes one iteration copies (`Int.max` if that does not fit in an `Int`).
        public var bytes: Int {
            let (product, overflow) = segments.multipliedReportingOverflow(by: segmentBytes)
            return overflow ? .max : product
        }
    }

    /// How a ceiling copies.
    public enum Kind: CaseIterable, Hashable, Sendable {
        /// glibc `memcpy` on the calling thread.
        case singleThread
        /// glibc `memcpy` split over `threads` threads by the copy engine transfers use, whatever the size.
        case allCores
        /// One thread copying with non-temporal stores, as the emulator's large copies do: a reference for
        /// transfers that beat `memcpy`, not a goal.
        case streaming
    }

    /// One measurement: `iterations` iterations of a pattern in `seconds`.
    public struct Measurement: Hashable, Sendable {
        public var iterations: Int
        public var seconds: Double
        /// Bytes copied per second, in 10^9 B/s.
        public var gbps: Double
    }

    /// Bytes of each ring.
    public var ringBytes: Int { rings.bytes }
    /// Threads `.allCores` copies on, the caller included (fewer than asked if the process could not start them).
    public var threads: Int { engine.threads }

    private let rings: CopyRings
    private let engine: CopyEngine
    /// The iteration each pattern's next measurement starts at.
    private(set) var nextIteration: [Pattern: Int] = [:]

    /// Maps two rings of `ringBytes` each and writes every byte once; `.allCores` will copy on `threads` threads.
    /// Throws `.paramInvalid` for a non-positive `ringBytes` or `threads`, `.outOfMemory` if the host refuses
    /// the memory.
    public init(ringBytes: Int, threads: Int) throws(LLMError) {
        guard ringBytes > 0 else { throw .paramInvalid("CopyCeilings ringBytes must be positive, got \(ringBytes)") }
        guard threads >= 1 else { throw .paramInvalid("CopyCeilings threads must be at least 1, got \(threads)") }
        do {
            rings = try CopyRings(bytes: ringBytes)
        } catch {
            throw LLMError(.outOfMemory, "CopyCeilings \(ringBytes) bytes (ringBytes): \(error)")
        }
        engine = CopyEngine(threads: threads, parallelThreshold: 0)
    }

    /// Copies `pattern` the `kind` way for `duration` seconds (at least 2 iterations) and returns the rate. The
    /// first measurement of a pattern is preceded by a few untimed iterations. Throws `.paramInvalid` for a
    /// pattern with fewer than 1 segment, a segment of fewer than 1 byte or more than `ringBytes`, or a
    /// non-positive or infinite `duration`; nothing changes then.
    public func measure(_ pattern: Pattern, kind: Kind, duration: Double) throws(LLMError) -> Measurement {
        try validate(pattern)
        guard duration > 0, duration.isFinite else {
            throw .paramInvalid("CopyCeilings.measure duration must be positive and finite, got \(duration) s")
        }
        let first = nextIteration[pattern] ?? 0
        if first == 0 {
            for iteration in 0..<min(slots(pattern), 4) { try copy(pattern, kind, iteration: iteration) }
        }
        let clock = ContinuousClock()
        let start = clock.now
        var (iterations, elapsed) = (0, 0.0)
        repeat {
            try copy(pattern, kind, iteration: first + iterations)
            iterations += 1
            elapsed = (clock.now - start).secondsValue
        } while iterations < 2 || elapsed < duration
        nextIteration[pattern] = first + iterations
        return Measurement(
            iterations: iterations, seconds: elapsed, gbps: Double(pattern.bytes) * Double(iterations) / elapsed / 1e9)
    }

    /// Test hook: fills the source ring with bytes that vary by position and zeroes the destination ring, copies
    /// iteration `iteration` of `pattern` the `kind` way, and returns whether the destination ring now holds
    /// exactly what copying each segment in turn would give. Writes and reads whole rings: keep them small.
    func copiesExactly(_ pattern: Pattern, kind: Kind, iteration: Int) throws(LLMError) -> Bool {
        try validate(pattern)
        rings.prepare { UInt8(truncatingIfNeeded: $0 % 251 + 1) }
        try copy(pattern, kind, iteration: iteration)
        let source = rings.sourceBytes
        var expected = [UInt8](repeating: 0, count: ringBytes)
        for segment in segments(pattern, iteration: iteration) {
            let (to, from) = (Int(segment.destination - rings.destination), Int(segment.source - rings.source))
            expected[to..<to + segment.count] = source[from..<from + segment.count]
        }
        return rings.destinationBytes == expected
    }

    // MARK: copying

    private func copy(_ pattern: Pattern, _ kind: Kind, iteration: Int) throws(LLMError) {
        switch kind {
        case .singleThread: forEachSegment(pattern, iteration: iteration) { HostCopy.copyPlain($0) }
        case .streaming: forEachSegment(pattern, iteration: iteration) { HostCopy.copyStreaming($0) }
        case .allCores: try engine.run(segments(pattern, iteration: iteration)) { HostCopy.copyPlain($0) }
        }
    }

    /// The segments of iteration `iteration` of `pattern`, in order.
    private func segments(_ pattern: Pattern, iteration: Int) -> [CopySegment] {
        var segments: [CopySegment] = []
        segments.reserveCapacity(pattern.segments)
        forEachSegment(pattern, iteration: iteration) { segments.append($0) }
        return segments
    }

    /// Calls `body` with each segment of iteration `iteration` of `pattern`, in order (no array: the single-thread
    /// ceilings of small segments would otherwise be partly the cost of allocating one).
    @inline(__always)
    private func forEachSegment(_ pattern: Pattern, iteration: Int, _ body: (CopySegment) -> Void) {
        let positions = slots(pattern)
        let (source, destination) = (rings.source, rings.destination)
        for segment in 0..<pattern.segments {
            let global = iteration &* pattern.segments &+ segment
            let from = pattern.scattered ? (global &* 37) % positions : global % positions
            let to = pattern.scattered ? (global &* 53 &+ 11) % positions : global % positions
            body(
                CopySegment(
                    destination: destination + UInt(to * pattern.segmentBytes),
                    source: source + UInt(from * pattern.segmentBytes), count: pattern.segmentBytes))
        }
    }

    /// Positions a segment of `pattern` can take in a ring.
    private func slots(_ pattern: Pattern) -> Int { ringBytes / pattern.segmentBytes }

    // MARK: checks

    private func validate(_ pattern: Pattern) throws(LLMError) {
        guard pattern.segments >= 1 else {
            throw .paramInvalid("CopyCeilings pattern segments must be at least 1, got \(pattern.segments)")
        }
        guard pattern.segmentBytes >= 1, pattern.segmentBytes <= ringBytes else {
            throw .paramInvalid(
                "CopyCeilings pattern segmentBytes must be in 1...\(ringBytes) (ringBytes), got \(pattern.segmentBytes)"
            )
        }
        guard !pattern.segments.multipliedReportingOverflow(by: pattern.segmentBytes).overflow else {
            throw .paramInvalid(
                "CopyCeilings pattern segments × segmentBytes does not fit in an Int: \(pattern.segments) × \(pattern.segmentBytes)"
            )
        }
    }
}
