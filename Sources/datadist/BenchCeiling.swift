import DataDist
import Dispatch
import Foundation
import Synchronization

/// What one timed iteration copies: `segments` copies of `segmentBytes` each, at positions that rotate over
/// rings larger than the last-level cache (`scattered`: positions jump around the ring instead of advancing).
struct CopyPattern: Hashable {
    var segments: Int
    var segmentBytes: Int
    var scattered: Bool

    var bytes: Int { segments * segmentBytes }
}

/// How a ceiling copies.
enum CeilingKind: CaseIterable {
    /// glibc memcpy on one thread.
    case single
    /// glibc memcpy split over all cores (persistent threads, one contiguous share each).
    case allCores
    /// A single-thread copy with non-temporal stores (`HostCopy.copyStreaming`), as the emulator's large copies
    /// do: a reference for rows that beat memcpy, not a goal.
    case streaming
}

/// GB/s of each ceiling for one pattern.
struct Ceilings {
    var single: Double
    var allCores: Double
    var streaming: Double

    /// Every ceiling, each from `gbps(kind)`.
    init(_ gbps: (CeilingKind) -> Double) {
        single = gbps(.single)
        allCores = gbps(.allCores)
        streaming = gbps(.streaming)
    }
}

/// The copy ceilings (`CeilingKind`), between two rings of `ringBytes` each of shared memory (like the emulator's
/// device pools: on this kind of host, shmem copies measured ~10 % faster than private anonymous memory).
final class CeilingRig {
    let ringBytes: Int
    private let source: UInt
    private let destination: UInt
    let team: CopyTeam
    /// Where the next slice of each pattern starts rotating.
    private var position: [CopyPattern: Int] = [:]

    init?(ringBytes: Int, threads: Int) {
        guard let source = BenchMemory.mapShared(ringBytes) else { return nil }
        guard let destination = BenchMemory.mapShared(ringBytes) else {
            BenchMemory.unmap(source, bytes: ringBytes)
            return nil
        }
        self.ringBytes = ringBytes
        self.source = source
        self.destination = destination
        self.team = CopyTeam(threads: threads)
    }

    deinit {
        BenchMemory.unmap(source, bytes: ringBytes)
        BenchMemory.unmap(destination, bytes: ringBytes)
    }

    /// GB/s of every ceiling for `pattern`, each measured now for `duration` seconds.
    func ceilings(_ pattern: CopyPattern, duration: Double) -> Ceilings {
        Ceilings { slice(pattern, duration: duration, kind: $0).gbps }
    }

    /// Copies `pattern` for `duration` seconds (at least 2 iterations) the `kind` way; positions keep rotating from
    /// where the previous slice of the same pattern stopped.
    func slice(_ pattern: CopyPattern, duration: Double, kind: CeilingKind) -> (iterations: Int, seconds: Double, gbps: Double) {
        let slots = max(1, ringBytes / pattern.segmentBytes)
        let (source, destination) = (self.source, self.destination)
        let first = position[pattern] ?? 0
        let streaming = kind == .streaming
        let copyRange: @Sendable (Int, Range<Int>) -> Void = { iteration, bytes in
            // The segments of `iteration` overlapping byte range `bytes` of its total.
            var segment = bytes.lowerBound / pattern.segmentBytes
            var offset = bytes.lowerBound % pattern.segmentBytes
            var left = bytes.count
            while left > 0 {
                let global = iteration &* pattern.segments &+ segment
                let from = pattern.scattered ? (global &* 37) % slots : global % slots
                let to = pattern.scattered ? (global &* 53 &+ 11) % slots : global % slots
                let count = min(left, pattern.segmentBytes - offset)
                BenchMemory.copy(
                    to: destination + UInt(to * pattern.segmentBytes + offset),
                    from: source + UInt(from * pattern.segmentBytes + offset), count: count, streaming: streaming)
                left -= count
                segment += 1
                offset = 0
            }
        }
        let run: (Int) -> Void =
            kind == .allCores
            ? { [team] iteration in team.run(total: pattern.bytes) { copyRange(iteration, $0) } }
            : { iteration in copyRange(iteration, 0..<pattern.bytes) }
        if first == 0 {
            for iteration in 0..<min(slots, 4) { run(iteration) }  // warm: page tables, workers awake
        }
        let timing = BenchTiming.loop(duration: duration, minIterations: 2) { run(first + $0) }
        position[pattern] = first + timing.iterations
        return (timing.iterations, timing.seconds, Double(pattern.bytes) * Double(timing.iterations) / timing.seconds / 1e9)
    }
}

/// Persistent threads that each copy one contiguous share of a job; the calling thread copies the first share.
final class CopyTeam: Sendable {
    let threads: Int
    private let workers: [JobThread]

    init(threads: Int) {
        self.threads = max(1, threads)
        workers = (1..<max(1, threads)).compactMap { _ in try? JobThread() }
    }

    deinit {
        for worker in workers { worker.stop() }
    }

    /// Cuts `0..<total` into `threads` contiguous ranges and runs `share` on each at once; returns when all are done.
    func run(total: Int, _ share: @escaping @Sendable (Range<Int>) -> Void) {
        let quota = (total + threads - 1) / threads
        let ranges = (0..<threads).map { min(total, $0 * quota)..<min(total, ($0 + 1) * quota) }.filter { !$0.isEmpty }
        let finished = DispatchSemaphore(value: 0)
        for (worker, range) in zip(workers, ranges.dropFirst()) {
            worker.submit {
                share(range)
                finished.signal()
            }
        }
        share(ranges[0])
        for _ in ranges.dropFirst() { finished.wait() }
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
