import DeviceRuntime
import Synchronization
import ThreadSanitizerSupport

/// The data plane between two processes on one host: each side's pools are memfds, passed to the peer over the
/// Unix socket at link time and mapped there, so a transfer is a plain copy between local memory and the
/// mapping (no staging copy, no daemon).
package final class SharedMemoryDataPlane: DataPlane {
    package let peerClusterID: UInt64
    private let mappings: [UInt32: PeerMapping]
    private let failure = Lock<CloseReason?>(nil)

    package init(peerClusterID: UInt64, mappings: [PeerMapping]) {
        self.peerClusterID = peerClusterID
        self.mappings = Dictionary(mappings.map { ($0.descriptor.regionID, $0) }) { first, _ in first }
    }

    package var remoteRegions: [RegionDescriptor] {
        mappings.values.map(\.descriptor).sorted { $0.regionID < $1.regionID }
    }

    package func transfer<CopyFailure: Error>(
        _ moves: [ExtentMove], _ direction: TransferDirection,
        copy: ([CopySegment]) throws(CopyFailure) -> Void
    ) throws(TransferFailure<CopyFailure>) {
        if let reason = failure.withLock({ $0 }) {
            throw .link(LinkError(.closed, "the link to cluster \(peerClusterID) closed: \(reason)"))
        }
        var segments: [CopySegment] = []
        segments.reserveCapacity(moves.count)
        for move in moves {
            let extent = move.remote
            guard UInt64(move.count) <= extent.length, let mapping = mappings[extent.regionID],
                let remote = mapping.address(offset: extent.offset, length: move.count)
            else {
                throw .link(
                    LinkError(
                        .protocolViolation,
                        "cluster \(peerClusterID) granted \(move.count) bytes at offset \(extent.offset) of pool \(extent.regionID), outside what it shared"
                    ))
            }
            segments.append(
                direction == .read
                    ? CopySegment(destination: move.local, source: remote, count: move.count)
                    : CopySegment(destination: remote, source: move.local, count: move.count))
        }
        do throws(CopyFailure) {
            try copy(segments)
        } catch {
            throw .copy(error)
        }
    }

    package func close(_ reason: CloseReason) {
        failure.withLock { if $0 == nil { $0 = reason } }
    }
}
