import DeviceRuntime
import Synchronization
import ThreadSanitizerSupport

/// The data plane between two processes on one host: each side's pools are memfds, passed to the peer over the
/// Unix socket at link time and mapped there, or (ACL device pools, which have no memfd) exported by key and
/// imported by the peer; either way a transfer is a plain copy between local memory and the peer's memory, here
/// at an address of this process (no staging copy, no daemon).
///
/// Keys are closed when the link closes: this side's imports first (once no transfer is using them), then its
/// exports. A peer that died leaves nothing imported open here.
package final class SharedMemoryDataPlane: DataPlane {
    package let peerClusterID: UInt64
    private let mappings: [UInt32: PeerMapping]
    private let imports: [UInt32: ImportedRegion]
    private let exports: [SharingKey]
    private let sharing: DeviceSharing?
    private let state = Lock<State>(State())

    private struct State {
        var failure: CloseReason?
        /// Transfers between their check of `failure` and the end of their copy.
        var active = 0
        var keysClosed = false
    }

    package init(
        peerClusterID: UInt64, mappings: [PeerMapping], imports: [ImportedRegion] = [], exports: [SharingKey] = [],
        sharing: DeviceSharing? = nil
    ) {
        self.peerClusterID = peerClusterID
        self.mappings = Dictionary(mappings.map { ($0.descriptor.regionID, $0) }) { first, _ in first }
        self.imports = Dictionary(imports.map { ($0.descriptor.regionID, $0) }) { first, _ in first }
        self.exports = exports
        self.sharing = sharing
    }

    deinit { closeKeys() }

    package var remoteRegions: [RegionDescriptor] {
        (mappings.values.map(\.descriptor) + imports.values.map(\.descriptor)).sorted { $0.regionID < $1.regionID }
    }

    package func reachesDeviceMemory(of regionID: UInt32) -> Bool { imports[regionID] != nil }

    /// The address in this process of `length` bytes at `offset` of the peer's region `regionID`.
    private func address(region regionID: UInt32, offset: UInt64, length: Int) -> UInt? {
        if let mapping = mappings[regionID] { return mapping.address(offset: offset, length: length) }
        guard let imported = imports[regionID], length >= 0, offset <= imported.descriptor.size,
            UInt64(length) <= imported.descriptor.size - offset
        else { return nil }
        return imported.address + UInt(offset)
    }

    package func transfer<CopyFailure: Error>(
        _ moves: [ExtentMove], _ direction: TransferDirection,
        copy: ([CopySegment]) throws(CopyFailure) -> Void
    ) throws(TransferFailure<CopyFailure>) {
        let closed = state.withLock { state -> CloseReason? in
            if let failure = state.failure { return failure }
            state.active += 1
            return nil
        }
        if let reason = closed {
            throw .link(LinkError(.closed, "the link to cluster \(peerClusterID) closed: \(reason)"))
        }
        defer { finishTransfer() }
        var segments: [CopySegment] = []
        segments.reserveCapacity(moves.count)
        for move in moves {
            let extent = move.remote
            guard UInt64(move.count) <= extent.length,
                let remote = address(region: extent.regionID, offset: extent.offset, length: move.count)
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

    /// Ends a transfer; the last one after the link closed closes the keys.
    private func finishTransfer() {
        let release = state.withLock { state -> Bool in
            state.active -= 1
            return state.failure != nil && state.active == 0 && !state.keysClosed
        }
        if release { closeKeys() }
    }

    package func close(_ reason: CloseReason) {
        let release = state.withLock { state -> Bool in
            if state.failure == nil { state.failure = reason }
            return state.active == 0 && !state.keysClosed
        }
        if release { closeKeys() }
    }

    /// Closes the imports, then the exports, once.
    private func closeKeys() {
        guard let sharing else { return }
        let first = state.withLock { state -> Bool in
            defer { state.keysClosed = true }
            return !state.keysClosed
        }
        guard first else { return }
        IPCExchange.close(imports.values.map(\.key), sharing: sharing)
        IPCExchange.close(exports, sharing: sharing)
    }
}
