internal import CLinuxSupport

#if canImport(Glibc)
import Glibc
#endif

/// Copies between host buffers, as the emulator moves "device" memory. Large copies between separate buffers use
/// non-temporal (streaming) stores, the way a DMA engine writes: the destination is not read first and does not
/// displace the cache. Between buffers that are not cached that is about 1.5× the bandwidth of `memcpy` on x86-64
/// (which reads every destination line before writing it); between cached buffers it is about 2× slower, hence
/// the threshold.
public enum HostCopy {
    /// Copies of at least this many bytes stream (x86-64). Below it, data is more likely to be reused from the
    /// cache. Large transfers reach the copy in chunks of at least this size (the copy engine's 256 KiB).
    public static let streamingThreshold = 128 << 10

    /// In a batch of at least `streamingThreshold` bytes, segments of at least this many bytes stream too: a
    /// batch of scattered blocks is written once and read much later, as one large copy is, and streaming pays
    /// from a few pages on (below them the fence and the unaligned edges cost more than the saved reads).
    public static let batchedStreamingMinimum = 4 << 10

    /// Whether this architecture has the streaming path (elsewhere every copy is a `memmove`).
    public static var streams: Bool { datadist_copy_streaming_available() != 0 }

    /// Copies `count` bytes from `source` to `destination`; the buffers may overlap (then it is a `memmove`).
    public static func copy(to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, count: Int) {
        copy(to: destination, from: source, count: count, streaming: count >= streamingThreshold)
    }

    /// Copies one segment of a batch of `batchBytes` bytes in all: like `copy(to:from:count:)`, except that a
    /// segment of at least `batchedStreamingMinimum` bytes in a batch of at least `streamingThreshold` streams.
    package static func copy(_ segment: CopySegment, inBatchOf batchBytes: Int) {
        let count = segment.count
        copy(
            to: UnsafeMutableRawPointer(bitPattern: segment.destination)!,
            from: UnsafeRawPointer(bitPattern: segment.source)!, count: count,
            streaming: count >= streamingThreshold
                || (count >= batchedStreamingMinimum && batchBytes >= streamingThreshold))
    }

    private static func copy(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, count: Int, streaming: Bool
    ) {
        let target = UInt(bitPattern: destination)
        let origin = UInt(bitPattern: source)
        let overlaps = target < origin &+ UInt(count) && origin < target &+ UInt(count)
        if streaming, !overlaps {
            datadist_copy_streaming(destination, source, count)
        } else {
            memmove(destination, source, count)
        }
    }

    /// Copies `count` bytes between non-overlapping buffers with streaming stores whatever the size (the bench
    /// measures it as a reference).
    public static func copyStreaming(to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, count: Int)
    {
        datadist_copy_streaming(destination, source, count)
    }

    /// `memcpy` of one segment between non-overlapping host addresses.
    package static func copyPlain(_ segment: CopySegment) {
        memcpy(
            UnsafeMutableRawPointer(bitPattern: segment.destination)!, UnsafeRawPointer(bitPattern: segment.source)!,
            segment.count)
    }

    /// `copyStreaming` of one segment between non-overlapping host addresses.
    package static func copyStreaming(_ segment: CopySegment) {
        datadist_copy_streaming(
            UnsafeMutableRawPointer(bitPattern: segment.destination), UnsafeRawPointer(bitPattern: segment.source),
            segment.count)
    }
}
