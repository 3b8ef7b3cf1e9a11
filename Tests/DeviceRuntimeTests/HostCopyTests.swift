import Testing

@testable import DeviceRuntime

/// `HostCopy` moves exactly the bytes asked for, whatever the size, alignment and overlap, on either side of the
/// streaming threshold.
@Suite("Host copies")
struct HostCopyTests {
    static let threshold = HostCopy.streamingThreshold

    /// Sizes around the streaming threshold and the 64-byte body of the streaming loop, with odd tails.
    @Test(arguments: [0, 1, 63, 4096 + 7, threshold - 1, threshold, threshold + 1, threshold + 63, 3 * threshold + 37])
    func copiesExactlyTheBytesAskedFor(count: Int) {
        for (destinationOffset, sourceOffset) in [(0, 0), (1, 0), (0, 3), (15, 9), (8, 8)] {
            let source = bytePattern(count + 64, seed: UInt8(truncatingIfNeeded: count))
            var destination = [UInt8](repeating: 0xEE, count: count + 64)
            destination.withUnsafeMutableBytes { to in
                source.withUnsafeBytes { from in
                    HostCopy.copy(
                        to: to.baseAddress! + destinationOffset, from: from.baseAddress! + sourceOffset, count: count)
                }
            }
            let copied = Array(destination[destinationOffset..<destinationOffset + count])
            #expect(
                copied == Array(source[sourceOffset..<sourceOffset + count]),
                "offsets \(destinationOffset), \(sourceOffset)")
            #expect(destination[..<destinationOffset].allSatisfy { $0 == 0xEE }, "nothing written before")
            #expect(destination[(destinationOffset + count)...].allSatisfy { $0 == 0xEE }, "nothing written after")
        }
    }

    /// Overlapping ranges copy like memmove in both directions, even above the streaming threshold.
    @Test(arguments: [-4099, -1, 1, 4099])
    func overlappingCopiesBehaveLikeMemmove(shift: Int) {
        let count = Self.threshold + 100
        var buffer = bytePattern(count + 16384, seed: 5)
        let start = 8192
        var expected = buffer
        expected.replaceSubrange(start + shift..<start + shift + count, with: buffer[start..<start + count])
        buffer.withUnsafeMutableBytes { bytes in
            HostCopy.copy(to: bytes.baseAddress! + start + shift, from: bytes.baseAddress! + start, count: count)
        }
        #expect(buffer == expected)
    }

    /// A segment of a batch moves exactly its bytes whether it streams (4 KiB and up in a batch of 128 KiB and
    /// up) or not, at odd offsets and sizes around the batched minimum.
    @Test(arguments: [1, 4 << 10, 1 << 20])
    func aSegmentOfABatchCopiesExactlyTheBytesAskedFor(batchBytes: Int) {
        let minimum = HostCopy.batchedStreamingMinimum
        for count in [0, 100, minimum - 1, minimum, minimum + 13, 16 << 10, Self.threshold + 5] {
            for (destinationOffset, sourceOffset) in [(0, 0), (7, 0), (0, 9), (8, 8)] {
                let source = bytePattern(count + 32, seed: UInt8(truncatingIfNeeded: count))
                var destination = [UInt8](repeating: 0xEE, count: count + 32)
                destination.withUnsafeMutableBytes { to in
                    source.withUnsafeBytes { from in
                        let segment = CopySegment(
                            destination: UInt(bitPattern: to.baseAddress! + destinationOffset),
                            source: UInt(bitPattern: from.baseAddress! + sourceOffset), count: count)
                        HostCopy.copy(segment, inBatchOf: batchBytes)
                    }
                }
                let place =
                    "\(count) bytes at offsets \(destinationOffset), \(sourceOffset) in a batch of \(batchBytes)"
                #expect(
                    Array(destination[destinationOffset..<destinationOffset + count])
                        == Array(source[sourceOffset..<sourceOffset + count]), "\(place)")
                #expect(destination[..<destinationOffset].allSatisfy { $0 == 0xEE }, "nothing written before: \(place)")
                #expect(
                    destination[(destinationOffset + count)...].allSatisfy { $0 == 0xEE },
                    "nothing written after: \(place)")
            }
        }
    }

    /// An overlapping segment of a large batch copies like memmove, though its size would stream.
    @Test(arguments: [-4099, -1, 1, 4099])
    func anOverlappingSegmentOfABatchBehavesLikeMemmove(shift: Int) {
        let count = 16 << 10
        var buffer = bytePattern(count + 16384, seed: 3)
        let start = 8192
        var expected = buffer
        expected.replaceSubrange(start + shift..<start + shift + count, with: buffer[start..<start + count])
        buffer.withUnsafeMutableBytes { bytes in
            let segment = CopySegment(
                destination: UInt(bitPattern: bytes.baseAddress! + start + shift),
                source: UInt(bitPattern: bytes.baseAddress! + start), count: count)
            HostCopy.copy(segment, inBatchOf: 1 << 20)
        }
        #expect(buffer == expected)
    }

    @Test func theStreamingCopyIsACopyToo() {
        let count = 2 * Self.threshold + 5
        let source = bytePattern(count, seed: 9)
        var destination = [UInt8](repeating: 0, count: count)
        destination.withUnsafeMutableBytes { to in
            source.withUnsafeBytes { HostCopy.copyStreaming(to: to.baseAddress!, from: $0.baseAddress!, count: count) }
        }
        #expect(destination == source)
        #if arch(x86_64)
        #expect(HostCopy.streams)
        #endif
    }
}
