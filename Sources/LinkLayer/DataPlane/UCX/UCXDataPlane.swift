internal import CUCX
import DeviceRuntime
import Synchronization
import ThreadSanitizerSupport

/// The data plane over UCX, through one endpoint to the peer's worker; UCX picks the transport (shared memory,
/// cma, TCP, RDMA). Reads are delivered by the owner (`ownerDeliversReads`): it sends the granted bytes as eager
/// active messages, which the requester's worker copies to where its read expects them. Writes are received by
/// the owner (`ownerReceivesWrites`) the same way the other way round: the requester sends the bytes as eager
/// messages into a delivery the owner opened for exactly the write's granted extents. A one-sided operation would
/// have the owner's worker answer the requester's messages over TCP (UCX emulates GET and PUT there), and UCX
/// 1.13 aborts the owner's process ("ucp_request.inl: Fatal: unexpected error: Endpoint timeout") when such an
/// answer hits the connection of a requester that just died; an eager message is never answered, and its sender
/// sees a failure as an error. The bytes move without the caller's copy engine: `transfer` never calls `copy`.
/// On a node with `UCXStaging` (device memory host code cannot address), device bytes are staged
/// (`UCXDataPlane+Staging.swift`): UCX only ever sees the link's pinned host buffers and received messages.
package final class UCXDataPlane: DataPlane {
    package let peerClusterID: UInt64
    private let node: UCXNode
    private let endpoint: UCXEndpoint
    private let regions: [UInt32: UCXOffer.Region]
    /// This side's regions as it offered them to the peer (what `deliver` sends from).
    private let localRegions: [UInt32: UCXOffer.Region]
    private let closedReason = Lock<CloseReason?>(nil)
    /// The link's staging memory, on a node with `UCXStaging`.
    let lanes: UCXStagingLanes?

    /// Bytes per delivery message: the receiver assembles a message before it copies it, so this bounds what
    /// one message makes it hold.
    static let messageBytes = 1 << 20

    /// An endpoint of `node` to the peer that sent `offer`, with the remote keys of its regions, connected by
    /// `deadline`; `local` are the regions this side offered (what reads of the peer are delivered from).
    /// `wiresUp`: whether this side starts UCX's wireup with the peer (a link's listener, whose endpoint is made
    /// second); the other side's endpoint must exist first, and only answers it (`UCXEndpoint`).
    package init(
        node: UCXNode, peerClusterID: UInt64, offer: UCXOffer, local: [UCXOffer.Region] = [], wiresUp: Bool = true,
        until deadline: ContinuousClock.Instant
    ) throws(LinkError) {
        self.peerClusterID = peerClusterID
        self.node = node
        let keys = Dictionary(uniqueKeysWithValues: offer.regions.map { ($0.descriptor.regionID, $0.remoteKey) })
        endpoint = try UCXEndpoint(
            worker: node.worker, address: offer.workerAddress, keys: keys, wiresUp: wiresUp, until: deadline)
        regions = Dictionary(uniqueKeysWithValues: offer.regions.map { ($0.descriptor.regionID, $0) })
        localRegions = Dictionary(local.map { ($0.descriptor.regionID, $0) }) { first, _ in first }
        do throws(LinkError) {
            lanes = try node.staging.map { staging throws(LinkError) in try UCXStagingLanes(staging) }
        } catch {
            endpoint.close()
            throw error
        }
    }

    deinit {
        endpoint.close()
        lanes?.close()
    }

    /// Whether `count` local bytes at `address` are device memory the runtime must copy (only with staging): a
    /// region this side offered says by its kind, the staging's host ranges are host memory, and anything else
    /// is device memory, the ACL backend's default.
    func isStagedDevice(_ address: UInt, count: Int) -> Bool {
        guard let staging = node.staging else { return false }
        let end = address.addingReportingOverflow(UInt(max(0, count))).partialValue
        for region in localRegions.values {
            let base = UInt(region.base)
            if address >= base, end <= base + UInt(region.descriptor.size) { return region.descriptor.kind == .device }
        }
        return !staging.hostRanges.contains { address >= $0.lowerBound && end <= $0.upperBound }
    }

    package var remoteRegions: [RegionDescriptor] {
        regions.values.map(\.descriptor).sorted { $0.regionID < $1.regionID }
    }

    /// One-sided writes (`.write`: `ucp_put_nbx`) or reads (`.read`: `ucp_get_nbx`), which links do not use since
    /// the owner delivers reads and receives writes; kept for the plane's own tests over UCX's native transports.
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

    /// Posts `operations` and waits for them.
    private func run(_ operations: [UCXEndpoint.Operation], write: Bool) throws(LinkError) {
        let what = "\(write ? "push to" : "pull from") cluster \(peerClusterID) over UCX"
        if let problem = complete(endpoint.post(operations, write: write), what: what).problem { throw problem }
    }

    /// Waits for `posted` within the transfer timeout; on a failure or timeout closes the endpoint (which ends
    /// what is still in progress) and waits for that, so no operation outlives the call. Returns the failure,
    /// and whether every request ended: one UCX did not end is left allocated, and so must be what it reads.
    func complete(_ posted: UCXEndpoint.Posted, what: String) -> (problem: LinkError?, settled: Bool) {
        let deadline = ContinuousClock.now.advanced(by: node.settings.transferTimeout)
        var problem: LinkError?
        let requests: [UnsafeMutableRawPointer]
        switch posted {
        case .unusable(let reason):
            return (LinkError(.closed, "\(what): \(reason)"), true)
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
        guard let problem else { return (nil, true) }
        endpoint.close()
        closedReason.withLock { if $0 == nil { $0 = .failed(problem.message) } }
        var settled = true
        for request in pending {
            // Closing the endpoint ended these; one that did not finish is left allocated rather than freed in use.
            if node.worker.wait(for: request, until: .now.advanced(by: .seconds(2))) != nil {
                ucp_request_free(request)
            } else {
                settled = false
            }
        }
        return (problem, settled)
    }

    package var ownerDeliversReads: Bool { true }

    package var ownerReceivesWrites: Bool { true }

    package var receiveTimeout: Duration { node.settings.transferTimeout }

    /// Opens a delivery of the bytes of this side's regions that `moves` name, for the peer's write.
    package func expectWrite(into moves: [DeliveryRequest.Move]) throws(LinkError) -> any IncomingDelivery {
        if let reason = closedReason.withLock({ $0 }) {
            throw LinkError(.closed, "the link to cluster \(peerClusterID) closed: \(reason)")
        }
        var ranges: [UCXInbox.Move] = []
        ranges.reserveCapacity(moves.count)
        for move in moves {
            guard let region = localRegions[move.regionID], move.offset <= region.descriptor.size,
                move.count <= region.descriptor.size - move.offset, move.count <= UInt64(Int.max)
            else {
                throw LinkError(
                    .protocolViolation,
                    "a write by cluster \(peerClusterID) of \(move.count) bytes at offset \(move.offset) of pool \(move.regionID) is outside what this side offered"
                )
            }
            ranges.append(
                UCXInbox.Move(
                    local: UInt(region.base + move.offset), count: Int(move.count),
                    toDevice: node.staging != nil && region.descriptor.kind == .device))
        }
        let inbox = node.worker.inbox
        return UCXIncomingDelivery(token: inbox.open(ranges, staging: node.staging), inbox: inbox, plane: self)
    }

    /// Sends the local bytes of `moves` as delivery messages tagged `token` (move `i` is the delivery's move `i`).
    package func send(_ moves: [ExtentMove], token: UInt64) throws(LinkError) {
        let what = "push to cluster \(peerClusterID) over UCX"
        if let reason = closedReason.withLock({ $0 }) {
            throw LinkError(.closed, "\(what): the link closed: \(reason)")
        }
        for move in moves where move.count <= 0 || UInt64(move.count) > move.remote.length {
            throw LinkError(
                .protocolViolation,
                "\(what): a write of \(move.count) bytes into a granted extent of \(move.remote.length) bytes")
        }
        try sendMessages(
            moves.map {
                Source(start: $0.local, count: UInt64($0.count), device: isStagedDevice($0.local, count: $0.count))
            },
            token: token, what: what)
    }

    package func expectDelivery(of moves: [ExtentMove]) throws(LinkError) -> any IncomingDelivery {
        if let reason = closedReason.withLock({ $0 }) {
            throw LinkError(.closed, "the link to cluster \(peerClusterID) closed: \(reason)")
        }
        for move in moves {
            guard move.count > 0, UInt64(move.count) <= move.remote.length else {
                throw LinkError(
                    .protocolViolation,
                    "a read of \(move.count) bytes from a granted extent of \(move.remote.length) bytes of pool \(move.remote.regionID) of cluster \(peerClusterID)"
                )
            }
        }
        let inbox = node.worker.inbox
        let token = inbox.open(
            moves.map {
                UCXInbox.Move(local: $0.local, count: $0.count, toDevice: isStagedDevice($0.local, count: $0.count))
            },
            staging: node.staging)
        return UCXIncomingDelivery(token: token, inbox: inbox, plane: self)
    }

    /// Why reads of this plane can no longer complete, or nil.
    fileprivate var failure: LinkError? {
        if let failure = endpoint.failureDescription {
            return LinkError(
                .closed, "delivery from cluster \(peerClusterID) over UCX: the endpoint failed: \(failure)")
        }
        if let reason = closedReason.withLock({ $0 }) {
            return LinkError(.closed, "delivery from cluster \(peerClusterID) over UCX: the link closed: \(reason)")
        }
        return nil
    }

    fileprivate var worker: UCXWorker { node.worker }

    package func deliver(_ request: DeliveryRequest) throws(LinkError) {
        let what = "delivery to cluster \(peerClusterID) over UCX"
        if let reason = closedReason.withLock({ $0 }) {
            throw LinkError(.closed, "\(what): the link closed: \(reason)")
        }
        // Every move is checked before anything is sent: one outside this side's regions sends nothing.
        var sources: [Source] = []
        sources.reserveCapacity(request.moves.count)
        for move in request.moves {
            guard let region = localRegions[move.regionID], move.offset <= region.descriptor.size,
                move.count <= region.descriptor.size - move.offset
            else {
                throw LinkError(
                    .protocolViolation,
                    "\(what): \(move.count) bytes at offset \(move.offset) of pool \(move.regionID) are outside what this side offered"
                )
            }
            sources.append(
                Source(
                    start: UInt(region.base + move.offset), count: move.count,
                    device: node.staging != nil && region.descriptor.kind == .device))
        }
        try sendMessages(sources, token: request.token, what: what)
    }

    /// Local bytes to send: device memory when `device` (staged).
    struct Source {
        var start: UInt
        var count: UInt64
        var device: Bool
    }

    /// One delivery message to send.
    struct Piece {
        var source: UInt
        var count: Int
        var header: UCXInbox.Header
        var device: Bool
    }

    /// Sends each of `sources` (local bytes) as delivery messages of at most `messageBytes` (a staging buffer's
    /// size when some are device memory), tagged `token` and the source's index, and waits until they are sent.
    private func sendMessages(_ sources: [Source], token: UInt64, what: String) throws(LinkError) {
        let staged = lanes != nil && sources.contains { $0.device }
        let limit = UInt64(staged ? lanes!.staging.bufferBytes : Self.messageBytes)
        var pieces: [Piece] = []
        for (index, source) in sources.enumerated() {
            var sent: UInt64 = 0
            while sent < source.count {
                let count = min(source.count - sent, limit)
                pieces.append(
                    Piece(
                        source: source.start + UInt(sent), count: Int(count),
                        header: UCXInbox.Header(token: token, move: UInt32(index), offset: sent),
                        device: source.device))
                sent += count
            }
        }
        let headers = UnsafeMutableRawBufferPointer.allocate(
            byteCount: max(1, pieces.count * UCXInbox.Header.size), alignment: 8)
        let base = headers.baseAddress!
        for (index, piece) in pieces.enumerated() { piece.header.write(to: base + index * UCXInbox.Header.size) }
        let outcome: (problem: LinkError?, settled: Bool)
        if staged, let lanes {
            outcome = sendStaged(pieces, headers: base, lanes: lanes, what: what)
        } else {
            let messages = pieces.enumerated().map { index, piece in
                UCXEndpoint.Message(
                    header: UInt(bitPattern: base + index * UCXInbox.Header.size), source: piece.source,
                    count: piece.count)
            }
            outcome = complete(endpoint.send(messages), what: what)
        }
        // A message UCX did not end may still read its header.
        if outcome.settled { headers.deallocate() }
        if let problem = outcome.problem { throw problem }
    }

    var sendingEndpoint: UCXEndpoint { endpoint }

    var transferTimeout: Duration { node.settings.transferTimeout }

    package func close(_ reason: CloseReason) {
        closedReason.withLock { if $0 == nil { $0 = reason } }
        endpoint.close()
        lanes?.close()
    }
}

/// A read of a `UCXDataPlane` the owner delivers, or a write the owner receives: open in the worker's inbox until
/// `finish`.
private final class UCXIncomingDelivery: IncomingDelivery {
    let token: UInt64
    private let inbox: UCXInbox
    private let plane: UCXDataPlane

    init(token: UInt64, inbox: UCXInbox, plane: UCXDataPlane) {
        self.token = token
        self.inbox = inbox
        self.plane = plane
    }

    func wait(until deadline: ContinuousClock.Instant) throws(LinkError) {
        let complete = plane.worker.progress(
            until: deadline, abandon: { plane.failure != nil },
            done: { inbox.isComplete(token) || inbox.failure(token) != nil })
        if let failure = inbox.failure(token) {
            throw LinkError(.io, "delivery from cluster \(plane.peerClusterID) over UCX: \(failure)")
        }
        if complete { return }
        throw plane.failure
            ?? LinkError(
                .timedOut,
                "delivery from cluster \(plane.peerClusterID) over UCX: the bytes did not arrive in time")
    }

    func finish() { inbox.close(token) }
}
