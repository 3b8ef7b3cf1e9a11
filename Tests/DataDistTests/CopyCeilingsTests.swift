import Testing

@testable import DataDist

/// `CopyCeilings`: every kind measures a rate and really copies the pattern's bytes; bad input is refused with
/// `.paramInvalid` naming the argument, and changes nothing. No test asserts a speed.
@Suite("CopyCeilings")
struct CopyCeilingsTests {
    typealias Pattern = CopyCeilings.Pattern

    @Test(
        "a positive, finite rate for every kind, contiguous and scattered; the next measurement continues the rotation",
        arguments: CopyCeilings.Kind.allCases, [false, true])
    func measuresARate(kind: CopyCeilings.Kind, scattered: Bool) throws {
        let ceilings = try CopyCeilings(ringBytes: 1 << 20, threads: 2)
        let pattern = Pattern(segments: 4, segmentBytes: 48 << 10, scattered: scattered)
        let first = try ceilings.measure(pattern, kind: kind, duration: 0.01)
        #expect(first.iterations >= 2)
        #expect(first.seconds > 0 && first.seconds.isFinite)
        #expect(first.gbps > 0 && first.gbps.isFinite, "\(first)")
        #expect(first.gbps == Double(pattern.bytes) * Double(first.iterations) / first.seconds / 1e9)
        #expect(ceilings.nextIteration[pattern] == first.iterations)
        let second = try ceilings.measure(pattern, kind: kind, duration: 0.01)
        #expect(second.gbps > 0 && second.gbps.isFinite, "\(second)")
        #expect(ceilings.nextIteration[pattern] == first.iterations + second.iterations)
    }

    /// Patterns whose segments of one iteration land on distinct destination positions, so every kind (the
    /// all-cores one copies its chunks in any order) leaves one well-defined result: 16 and 21 positions of 4 KiB
    /// and 3000 bytes in a 64 KiB ring; 3 segments of 300 000 bytes in 1 MiB, which the copy engine cuts into
    /// several chunks.
    static let exactCases: [(ringBytes: Int, segments: Int, segmentBytes: Int)] = [
        (64 << 10, 8, 4 << 10), (64 << 10, 5, 3000), (1 << 20, 3, 300_000),
    ]

    @Test(
        "one iteration copies exactly its segments' bytes (iterations 0, 1, 5; every kind; both patterns)",
        arguments: CopyCeilings.Kind.allCases, [false, true])
    func copiesTheBytes(kind: CopyCeilings.Kind, scattered: Bool) throws {
        for shape in Self.exactCases {
            let ceilings = try CopyCeilings(ringBytes: shape.ringBytes, threads: 2)
            let pattern = Pattern(segments: shape.segments, segmentBytes: shape.segmentBytes, scattered: scattered)
            for iteration in [0, 1, 5] {
                #expect(
                    try ceilings.copiesExactly(pattern, kind: kind, iteration: iteration),
                    "\(shape), iteration \(iteration)")
            }
        }
    }

    @Test("a segment as large as the ring is allowed: every iteration copies the whole ring")
    func segmentOfTheWholeRing() throws {
        let ceilings = try CopyCeilings(ringBytes: 64 << 10, threads: 1)
        let pattern = Pattern(segments: 2, segmentBytes: 64 << 10, scattered: true)
        #expect(try ceilings.copiesExactly(pattern, kind: .allCores, iteration: 3))
        #expect(ceilings.threads == 1)
    }

    @Test(
        "bad ringBytes or threads: .paramInvalid naming the argument and value",
        arguments: [
            (0, 1, "ringBytes", "0"), (-4096, 1, "ringBytes", "-4096"), (4096, 0, "threads", "0"),
            (4096, -2, "threads", "-2"),
        ])
    func badInit(ringBytes: Int, threads: Int, argument: String, value: String) {
        let error = #expect(throws: LLMError.self) { _ = try CopyCeilings(ringBytes: ringBytes, threads: threads) }
        #expect(error?.status == .paramInvalid)
        #expect(error?.message.contains(argument) == true, "\(String(describing: error))")
        #expect(error?.message.contains("got \(value)") == true, "\(String(describing: error))")
    }

    @Test("rings the host cannot map: .outOfMemory naming ringBytes")
    func ringTooLarge() {
        let error = #expect(throws: LLMError.self) { _ = try CopyCeilings(ringBytes: 1 << 62, threads: 1) }
        #expect(error?.status == .outOfMemory)
        #expect(error?.message.contains("\(1 << 62) bytes (ringBytes)") == true, "\(String(describing: error))")
    }

    @Test(
        "a bad pattern: .paramInvalid naming the field and value; nothing is recorded",
        arguments: [
            (Pattern(segments: 0, segmentBytes: 4096, scattered: false), "segments", "got 0"),
            (Pattern(segments: -1, segmentBytes: 4096, scattered: true), "segments", "got -1"),
            (Pattern(segments: 1, segmentBytes: 0, scattered: false), "segmentBytes", "got 0"),
            (Pattern(segments: 1, segmentBytes: -8, scattered: false), "segmentBytes", "got -8"),
            (
                Pattern(segments: 1, segmentBytes: (64 << 10) + 1, scattered: false), "segmentBytes",
                "got \((64 << 10) + 1)"
            ),
            (Pattern(segments: .max, segmentBytes: 2, scattered: false), "segments × segmentBytes", "\(Int.max) × 2"),
        ])
    func badPattern(pattern: Pattern, argument: String, value: String) throws {
        let ceilings = try CopyCeilings(ringBytes: 64 << 10, threads: 2)
        for kind in CopyCeilings.Kind.allCases {
            let error = #expect(throws: LLMError.self) { _ = try ceilings.measure(pattern, kind: kind, duration: 0.01) }
            #expect(error?.status == .paramInvalid)
            #expect(error?.message.contains("pattern \(argument)") == true, "\(String(describing: error))")
            #expect(error?.message.contains(value) == true, "\(String(describing: error))")
        }
        #expect(ceilings.nextIteration.isEmpty)
    }

    @Test(
        "a bad duration: .paramInvalid naming it; the pattern's rotation does not move",
        arguments: [0, -1, .nan, .infinity])
    func badDuration(duration: Double) throws {
        let ceilings = try CopyCeilings(ringBytes: 64 << 10, threads: 2)
        let pattern = Pattern(segments: 2, segmentBytes: 4096, scattered: false)
        let error = #expect(throws: LLMError.self) {
            _ = try ceilings.measure(pattern, kind: .singleThread, duration: duration)
        }
        #expect(error?.status == .paramInvalid)
        #expect(
            error?.message.contains("duration") == true && error?.message.contains("got \(duration)") == true,
            "\(String(describing: error))")
        #expect(ceilings.nextIteration.isEmpty)
        let measured = try ceilings.measure(pattern, kind: .singleThread, duration: 0.001)
        #expect(ceilings.nextIteration[pattern] == measured.iterations)
        #expect(throws: LLMError.self) { _ = try ceilings.measure(pattern, kind: .allCores, duration: duration) }
        #expect(ceilings.nextIteration[pattern] == measured.iterations)
    }
}
