import DeviceRuntime
import Synchronization
import Testing

@testable import DataDist

#if canImport(Glibc)
import Glibc
#endif

@Suite struct CopyEngineTests {
    @Test(arguments: [1, 2, 3, 7])
    func sharesCoverEveryByteOnceInOrder(parts: Int) {
        let segments = [
            CopySegment(destination: 1000, source: 5000, count: 10),
            CopySegment(destination: 2000, source: 6000, count: 1),
            CopySegment(destination: 3000, source: 7000, count: 23),
        ]
        let shares = CopyEngine.split(segments, into: parts, total: 34)
        #expect(shares.count <= parts)
        #expect(shares.allSatisfy { $0.reduce(0) { $0 + $1.count } <= (34 + parts - 1) / parts })
        let flattened = shares.flatMap { $0 }
        #expect(flattened.reduce(0) { $0 + $1.count } == 34)
        // Re-joining adjacent pieces gives the original segments back.
        var joined: [CopySegment] = []
        for piece in flattened {
            if let last = joined.last, last.destination + UInt(last.count) == piece.destination,
                last.source + UInt(last.count) == piece.source
            {
                joined[joined.count - 1].count += piece.count
            } else {
                joined.append(piece)
            }
        }
        #expect(joined.map(\.destination) == [1000, 2000, 3000])
        #expect(joined.map(\.count) == [10, 1, 23])
    }

    @Test(arguments: [1, 2, 4])
    func parallelTransfersCopyEveryByte(threads: Int) throws {
        let engine = CopyEngine(threads: threads, parallelThreshold: 1 << 16)
        let size = 3 << 20
        let source = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
        let destination = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
        defer {
            source.deallocate()
            destination.deallocate()
        }
        for index in 0..<size { source[index] = UInt8(truncatingIfNeeded: index &* 31) }
        destination.initializeMemory(as: UInt8.self, repeating: 0)
        let base = (UInt(bitPattern: destination.baseAddress), UInt(bitPattern: source.baseAddress))
        let segments = stride(from: 0, to: size, by: 1 << 20).map {
            CopySegment(destination: base.0 + UInt($0), source: base.1 + UInt($0), count: 1 << 20)
        }
        let calls = Atomic<Int>(0)
        try engine.run(segments) { segment in
            calls.wrappingAdd(1, ordering: .relaxed)
            UnsafeMutableRawPointer(bitPattern: segment.destination)!.copyMemory(
                from: UnsafeRawPointer(bitPattern: segment.source)!, byteCount: segment.count)
        }
        #expect(memcmp(source.baseAddress!, destination.baseAddress!, size) == 0)
        #expect(calls.load(ordering: .relaxed) >= segments.count)
    }

    @Test func anErrorInAnyShareIsThrownAfterAllFinish() {
        let engine = CopyEngine(threads: 3, parallelThreshold: 1)
        let segments = (0..<6).map { CopySegment(destination: UInt($0), source: 0, count: 10) }
        #expect {
            try engine.run(segments) { segment throws(LLMError) in
                if segment.destination == 5 { throw LLMError(.failed, "copy \(segment.destination) failed") }
            }
        } throws: { ($0 as? LLMError)?.message == "copy 5 failed" }
    }

    @Test func copyThreadsRoundTripsAndIsValidated() throws {
        var config = LLMConfig()
        config.copyThreads = 3
        #expect(config.options[LLMOptionKey.copyThreads] == "3")
        #expect(try LLMConfig(options: config.options) == config)
        for bad in [0, -1, 257] {
            config.copyThreads = bad
            #expect { try config.validate() } throws: { ($0 as? LLMError)?.message.contains("copyThreads") == true }
        }
        #expect { try LLMConfig(options: ["llm.CopyThreads": "0"]) } throws: {
            ($0 as? LLMError)?.status == .paramInvalid
        }
    }
}
