import LinkLayer

/// An established link to another cluster, as this instance records it.
struct PeerLink: Sendable {
    /// Unique per link in this process; pins taken for the peer carry it.
    let serial: UInt64
    let channel: PeerChannel
    /// The transfers in flight over it (an unlink waits for their releases).
    let transfers = TransferGate()
    /// Its transfer figures (shared by every link to the same peer over the same transport).
    let meters: LinkMeters

    var remoteClusterID: UInt64 { channel.remoteClusterID }
}

/// The links of one instance and its listener.
struct LinkRegistry: Sendable {
    var links: [UInt64: PeerLink] = [:]
    /// Clusters whose link broke (the peer died or misbehaved) rather than being unlinked, and why: a transfer
    /// to them fails with `.linkFailed` instead of `.notYetLink` until they are linked or unlinked again.
    var lost: [UInt64: CloseReason] = [:]
    /// Serials of links this instance is unlinking right now: however their connection closes (the peer closes its
    /// end after acknowledging the unlink), that is no broken link.
    var unlinking: Set<UInt64> = []
    var listener: Listener?
    var nextSerial: UInt64 = 1
    var isClosed = false

    mutating func takeSerial() -> UInt64 {
        defer { nextSerial += 1 }
        return nextSerial
    }
}
