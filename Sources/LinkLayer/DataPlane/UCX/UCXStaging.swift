import DeviceRuntime

/// How a UCX node moves the memory of a runtime whose device memory host code cannot address (the ACL backend):
/// UCX is never given a device address. Device regions are not registered with UCX; their bytes are copied
/// device → pinned host buffer (at most `bytesPerLink` of them per link) and sent from there, and a receiver
/// copies host → device from the received message. Host memory (`hostRanges`, and regions of kind `.host`)
/// goes to UCX directly.
package struct UCXStaging: Sendable {
    package let runtime: any DeviceRuntime
    /// The device this instance's device memory is on.
    package let device: Int32
    /// Pinned host memory each link may hold for staging.
    package let bytesPerLink: Int
    /// This instance's host memory outside the regions it offers (its host pool), which is not device memory.
    package let hostRanges: [Range<UInt>]

    /// The environment variable that sets `bytesPerLink` (a `ByteSize` text).
    package static let variable = "DATADIST_UCX_STAGING_BYTES"
    /// 2 MiB: two pipelines of four 256 KiB buffers per link.
    package static let defaultBytesPerLink = 2 << 20
    /// The least and most a link may stage with.
    package static let bytesPerLinkRange: ClosedRange<Int> = (64 << 10)...(1 << 30)

    package init(runtime: any DeviceRuntime, device: Int32, bytesPerLink: Int, hostRanges: [Range<UInt>] = []) {
        self.runtime = runtime
        self.device = device
        self.bytesPerLink = bytesPerLink
        self.hostRanges = hostRanges
    }

    /// Bytes of one staging buffer, hence of one staged message: at most 256 KiB, at least 4 KiB. Measured
    /// (`scripts/compare-acl-ipc.sh --cross-host`, README "Deploying on Atlas"): 256 KiB chunks kept staged pulls
    /// of 4 MiB nearer the emulator's than 1 MiB chunks, whose first copy is a quarter of such a pull.
    var bufferBytes: Int { max(4096, min(Self.largestBuffer, bytesPerLink / Self.depth) & ~4095) }
    static let largestBuffer = 256 << 10
    /// Buffers one transfer pipelines with: the copy of chunk k+1 overlaps the sends of the chunks before it.
    static let depth = 4
    /// Pipelines per link (transfers staging at once): as many as `bytesPerLink` holds, at least one.
    var lanes: Int { max(1, bytesPerLink / (bufferBytes * Self.depth)) }
    /// Buffers of one pipeline.
    var buffersPerLane: Int { max(2, min(Self.depth, bytesPerLink / bufferBytes)) }
}
