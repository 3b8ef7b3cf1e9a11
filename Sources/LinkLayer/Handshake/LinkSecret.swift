/// A secret shared by the clusters allowed to link with each other. With one, a link is set up only with a peer
/// that proves it holds the same secret (`LinkAuthentication`); the secret itself never crosses the wire.
package struct LinkSecret: Sendable {
    package let bytes: [UInt8]

    package init(_ bytes: [UInt8]) { self.bytes = bytes }
}

/// Server → client, in the handshake: a fresh nonce the client proves the secret over (kind `.challenge`).
package struct LinkChallenge: Sendable, Hashable {
    package static let nonceSize = 32
    package var nonce: [UInt8]

    package init(nonce: [UInt8]) { self.nonce = nonce }

    package func encoded() -> [UInt8] { nonce }

    package init(payload: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(payload[...])
        nonce = try reader.raw(count: Self.nonceSize)
        try reader.expectEnd()
    }
}

/// Either way, in the handshake: the prover's nonce and its HMAC-SHA256 over the handshake (kind `.proof`).
package struct LinkProof: Sendable, Hashable {
    package static let encodedSize = LinkChallenge.nonceSize + HMACSHA256.size
    package var nonce: [UInt8]
    package var mac: [UInt8]

    package init(nonce: [UInt8], mac: [UInt8]) {
        self.nonce = nonce
        self.mac = mac
    }

    package func encoded() -> [UInt8] {
        var writer = WireWriter()
        writer.raw(nonce)
        writer.raw(mac)
        return writer.bytes
    }

    package init(payload: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(payload[...])
        nonce = try reader.raw(count: LinkChallenge.nonceSize)
        mac = try reader.raw(count: HMACSHA256.size)
        try reader.expectEnd()
    }
}
