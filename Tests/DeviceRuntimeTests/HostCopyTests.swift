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
