internal import CUCX
import DeviceRuntime
import Synchronization
import ThreadSanitizerSupport

/// The data plane over UCX: the peer's regions are reached through one endpoint to its worker, with one-sided
/// reads (pulls) and writes (pushes) posted as a batch and one flush; UCX picks the transport (shared memory,
/// cma, TCP, RDMA). The bytes move without the caller's copy engine: `transfer` never calls `copy`.
package final class UCXDataPlane: DataPlane {
    package let peerClusterID: UInt64
    private let node: UCXNode
    private let endpoint: UCXEndpoint
    private let regions: [UInt32: UCXOffer.Region]
    private let closedReason = Lock<CloseReason?>(nil)

    /// An endpoint of `node` to the peer that sent `offer`, with the remote keys of its regions, connected by
    /// `deadline`.
    package init(
        node: UCXNode, peerClusterID: UInt64, offer: UCXOffer, until deadline: ContinuousClock.Instant
    ) throws(LinkError) {
        self.peerClusterID = peerClusterID
        self.node = node
        let keys = Dictionary(uniqueKeysWithValues: offer.regions.map { ($0.descriptor.regionID, $0.remoteKey) })
        endpoint = try UCXEndpoint(worker: node.worker, address: offer.workerAddress, keys: keys, until: deadline)
        regions = Dictionary(uniqueKeysWithValues: offer.regions.map { ($0.descriptor.regionID, $0) })
    }

    deinit { endpoint.close() }

    package var remoteRegions: [RegionDescriptor] {
        regions.values.map(\.descriptor).sorted { $0.regionID < $1.regionID }
    }

    package func transfer<CopyFailure: Error>(
        _ moves: [ExtentMove], _ direction: TransferDirection,
        copy: ([CopySegment]) throws(CopyFailure) -> Void
    ) throws(TransferFailure<CopyFailure>) {
        if let reason = closedReason.withLock({ $0 }) {
            throw .link(LinkError(.closed, "the link to cluster \(peerClusterID) closed: \(reason)"))
        }
        // Every move is checked before anything is posted: a grant outside the peer's regions moves nothing.
        var operations: [UCXEndpoint.Operation] = []
        operations.reserveCapacity(moves.count)
        for move in moves {
            let extent = move.remote
            guard move.count >= 0, UInt64(move.count) <= extent.length, let region = regions[extent.regionID],
                extent.offset <= region.descriptor.size, UInt64(move.count) <= region.descriptor.size - extent.offset
            else {
                throw .link(
                    LinkError(
                        .protocolViolation,
                        "cluster \(peerClusterID) granted \(move.count) bytes at offset \(extent.offset) of pool \(extent.regionID), outside what it shared"
                    ))
            }
            operations.append(
                UCXEndpoint.Operation(
                    local: move.local, remote: region.base + extent.offset, count: move.count, region: extent.regionID))
        }
        do throws(LinkError) {
            try run(operations, write: direction == .write)
        } catch {
            throw .link(error)
        }
    }

    /// Posts `operations`, waits for them within the transfer timeout; on a failure or timeout closes the
    /// endpoint (which ends what is still in progress) and waits for that, so no operation outlives the call.
    private func run(_ operations: [UCXEndpoint.Operation], write: Bool) throws(LinkError) {
        let deadline = ContinuousClock.now.advanced(by: node.settings.transferTimeout)
        let what = "\(write ? "push to" : "pull from") cluster \(peerClusterID) over UCX"
        var problem: LinkError?
        let requests: [UnsafeMutableRawPointer]
        switch endpoint.post(operations, write: write) {
        case .unusable(let reason):
            throw LinkError(.closed, "\(what): \(reason)")
        case .failed(let reason, let posted):
            problem = LinkError(.closed, "\(what): \(reason)")
            requests = posted
        case .requests(let posted):
            requests = posted
        }
        var pending = requests[...]
        while problem == nil, let request = pending.first {
            let status = node.worker.wait(for: request, until: deadline) {
                endpoint.failureDescription != nil || closedReason.withLock { $0 != nil }
            }
            guard let status else {
                if let failure = endpoint.failureDescription {
                    problem = LinkError(.closed, "\(what): the endpoint failed: \(failure)")
                } else if let reason = closedReason.withLock({ $0 }) {
                    problem = LinkError(.closed, "\(what): the link closed: \(reason)")
                } else {
                    problem = LinkError(.timedOut, "\(what): timed out after \(node.settings.transferTimeout)")
                }
                break
            }
            if status != UCS_OK {
                problem = LinkError(.closed, "\(what): \(ucxDescription(status))")
            }
            ucp_request_free(request)
            pending = pending.dropFirst()
        }
        guard let problem else { return }
        endpoint.close()
        closedReason.withLock { if $0 == nil { $0 = .failed(problem.message) } }
        for request in pending {
            // Closing the endpoint ended these; one that did not finish is left allocated rather than freed in use.
            if node.worker.wait(for: request, until: .now.advanced(by: .seconds(2))) != nil {
                ucp_request_free(request)
            }
        }
        throw problem
    }

    package func close(_ reason: CloseReason) {
        closedReason.withLock { if $0 == nil { $0 = reason } }
        endpoint.close()
    }
}
