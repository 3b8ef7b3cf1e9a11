/// Requester → owner, no reply: the transfer a grant allowed is over. After a push it is the owner's notice
/// that the bytes are written. On failure the owner gives back what the resolve took.
package struct ReleaseNotice: Sendable, Hashable {
    package var pinID: UInt64
    package var succeeded: Bool

    package init(pinID: UInt64, succeeded: Bool) {
        self.pinID = pinID
        self.succeeded = succeeded
    }

    package func encoded() -> [UInt8] {
        var writer = WireWriter(capacity: 9)
        writer.u64(pinID)
        writer.bool(succeeded)
        return writer.bytes
    }

    package init(payload: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(payload[...])
        pinID = try reader.u64()
        succeeded = try reader.bool()
        try reader.expectEnd()
    }
}
