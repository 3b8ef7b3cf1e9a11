import DeviceRuntime

/// Which way a transfer moves bytes.
package enum TransferDirection: Sendable, Hashable {
    /// From the peer's regions into local memory (a pull).
    case read
    /// From local memory into the peer's regions (a push).
    case write
}

/// One contiguous move of a transfer: `count` bytes between local memory at `local` and `remote`, a granted
/// extent of a region the peer published (the move must lie inside it).
package struct ExtentMove: Sendable, Hashable {
    package var local: UInt
    package var remote: Grant.Extent
    package var count: Int

    package init(local: UInt, remote: Grant.Extent, count: Int) {
        self.local = local
        self.remote = remote
        self.count = count
    }
}

/// Why a transfer failed: the link (the peer's regions cannot be reached, or a grant points outside them), or
/// the caller's local copy.
package enum TransferFailure<CopyFailure: Error>: Error {
    case link(LinkError)
    case copy(CopyFailure)
}

/// What a transport must do to move KV bytes between linked peers. The control connection negotiates what may
/// be moved (grants); the data plane moves it.
///
/// - Publishing: each side offers its local memory regions (pools) when the link is set up; the peer's regions
///   are in `remoteRegions`.
/// - Moving: `transfer` carries out a batch of moves in one direction. A transport that can address the peer's
///   memory directly (shared memory) resolves every move to a pair of addresses and hands them to `copy`, so
///   the caller's own copy engine (and runtime) moves the bytes; a network transport moves them itself.
/// - Reads the owner delivers: a transport whose requester-side reads would have the owner's process answer the
///   peer's operations (UCX over TCP emulates a one-sided read with messages the owner answers, and UCX 1.13
///   aborts a process whose answer to a peer that just died cannot be sent) says `ownerDeliversReads`. A read
///   is then a `deliver` request on the control connection (`PeerChannel.transfer`): the requester's plane
///   expects exactly the moves of its read (`expectDelivery`), the owner checks them against its grant and
///   sends the bytes (`deliver`), and they land only where the requester expects them.
/// - Writes the owner receives: for the same reason (an emulated one-sided write is answered by the owner) such a
///   transport says `ownerReceivesWrites`. A write is then an `accept` request: the owner checks its moves against
///   the write grant and opens a delivery into exactly them (`expectWrite`), the requester sends the bytes tagged
///   with its token (`send`), and a `landed` request waits for the owner to have them all, after which the
///   delivery takes nothing more.
/// - Closing: `close` is called when the link's connection closes (unlinked, or the peer failed); later
///   transfers fail with `.closed` instead of touching the peer's memory. A transport that detects a peer's
///   failure itself reports it the same way, as a `.closed` link error from `transfer`.
package protocol DataPlane: Sendable {
    /// The regions the peer published.
    var remoteRegions: [RegionDescriptor] { get }
    /// Carries out `moves` in `direction`.
    func transfer<CopyFailure: Error>(
        _ moves: [ExtentMove], _ direction: TransferDirection,
        copy: ([CopySegment]) throws(CopyFailure) -> Void
    ) throws(TransferFailure<CopyFailure>)
    /// The link closed, for `reason`: the peer's regions are no longer to be touched.
    func close(_ reason: CloseReason)
    /// Whether the addresses `transfer` hands to `copy` for the peer's region `regionID` are device memory of this
    /// process (a pool imported by key) rather than host memory.
    func reachesDeviceMemory(of regionID: UInt32) -> Bool
    /// Whether reads are carried out by the owner (see above) rather than by `transfer`.
    var ownerDeliversReads: Bool { get }
    /// Requester side: readies local memory for the bytes of `moves` (each a read of a granted extent into local
    /// memory), which the owner sends tagged with the returned delivery's token.
    func expectDelivery(of moves: [ExtentMove]) throws(LinkError) -> any IncomingDelivery
    /// Owner side: sends the bytes `request` names from local regions into the peer's memory, tagged with its
    /// token; returns once they are sent. The caller has checked them against its grant.
    func deliver(_ request: DeliveryRequest) throws(LinkError)
    /// Whether writes are received by the owner (see above) rather than carried out by `transfer`.
    var ownerReceivesWrites: Bool { get }
    /// Owner side: readies the local bytes `moves` name (of this side's regions, checked against the write grant
    /// by the caller) for the peer's write, which it sends tagged with the returned delivery's token.
    func expectWrite(into moves: [DeliveryRequest.Move]) throws(LinkError) -> any IncomingDelivery
    /// Requester side: sends the local bytes of `moves` (each a write into a granted extent) to the owner, tagged
    /// with the token of the delivery the owner opened for them; returns once they are sent.
    func send(_ moves: [ExtentMove], token: UInt64) throws(LinkError)
    /// Owner side: how long it waits, once the peer said a write is sent, for its bytes to land.
    var receiveTimeout: Duration { get }
}

/// The receiving side of one read the owner delivers (the requester) or of one write it receives (the owner).
package protocol IncomingDelivery: Sendable {
    /// What tags the sender's bytes for this delivery (unguessable: another peer cannot aim bytes at it).
    var token: UInt64 { get }
    /// Waits until every byte arrived; throws when the link fails or `deadline` passes first.
    func wait(until deadline: ContinuousClock.Instant) throws(LinkError)
    /// Takes no more bytes: once it returns, nothing is written into the delivery's memory any more.
    func finish()
}

extension DataPlane {
    package func reachesDeviceMemory(of regionID: UInt32) -> Bool { false }

    package var ownerDeliversReads: Bool { false }

    package func expectDelivery(of moves: [ExtentMove]) throws(LinkError) -> any IncomingDelivery {
        throw LinkError(.protocolViolation, "this data plane has the requester read; nothing is delivered to it")
    }

    package func deliver(_ request: DeliveryRequest) throws(LinkError) {
        throw LinkError(.protocolViolation, "this data plane has the requester read; the owner delivers nothing")
    }

    package var ownerReceivesWrites: Bool { false }

    package var receiveTimeout: Duration { .seconds(5) }

    package func expectWrite(into moves: [DeliveryRequest.Move]) throws(LinkError) -> any IncomingDelivery {
        throw LinkError(
            .protocolViolation, "this data plane has the requester write; nothing is delivered to the owner")
    }

    package func send(_ moves: [ExtentMove], token: UInt64) throws(LinkError) {
        throw LinkError(.protocolViolation, "this data plane has the requester write; it sends no delivery")
    }
}
