#if canImport(Glibc)
internal import Glibc
#endif

/// Mutual challenge-response on a shared `LinkSecret`, inside the link handshake, before either side registers
/// the link (so a peer without the secret never holds a cluster id here):
///
/// 1. client → server (TCP): the hello, as without a secret;
/// 2. server → client (TCP): a challenge, a fresh nonce Ns;
/// 3. client → server (TCP): a proof, its own nonce Nc and HMAC(secret, "client" | Ns | Nc | hello);
/// 4. the server checks it (constant time) and refuses a wrong one; otherwise it connects to the Unix socket the
///    hello names and sends, as the first frame there, its proof: Ns and HMAC(secret, "server" | Ns | Nc | hello).
///    The client checks it before it maps or sends anything, so whoever else connects to its Unix socket first is
///    refused too.
///    A link over UCX has no Unix socket: there the proof goes over TCP, before the server's UCX offer, which the
///    client accepts only after the proof checked out.
///
/// The MACs cover the hello, which names both cluster ids and the client's Unix socket: a proof cannot be replayed
/// (fresh nonces both ways), reflected (the side is in the MAC), or reused for another hello. A side with a secret
/// refuses a peer without one, and the other way round. Nothing is encrypted.
package enum LinkAuthentication {
    static let clientLabel = Array("datadist link v1 client".utf8)
    static let serverLabel = Array("datadist link v1 server".utf8)

    static func mac(
        _ secret: LinkSecret, label: [UInt8], serverNonce: [UInt8], clientNonce: [UInt8], hello: [UInt8]
    ) -> [UInt8] {
        HMACSHA256.mac(key: secret.bytes, message: label + serverNonce + clientNonce + hello)
    }

    /// The server side, right after the hello arrived on `socket` (`hello` is its payload as received). Without a
    /// secret it does nothing and returns nil; otherwise it challenges the client, checks its proof and returns
    /// the proof to send on the control connection (`ServerProof.send`). Throws why the client is refused.
    package static func challenge(
        hello: [UInt8], secret: LinkSecret?, on socket: Socket, until deadline: ContinuousClock.Instant
    ) throws(LinkError) -> ServerProof? {
        guard let secret else { return nil }
        let serverNonce = HMACSHA256.nonce(count: LinkChallenge.nonceSize)
        var inbox = FrameInbox(capacity: Frame.headerSize + LinkProof.encodedSize)
        let frame: Frame
        do throws(Socket.Failure) {
            try socket.sendAll(
                Frame(kind: .challenge, requestID: 1, payload: LinkChallenge(nonce: serverNonce).encoded()).encoded(),
                until: deadline)
            frame = try inbox.receiveFrame(from: socket, until: deadline, limit: LinkProof.encodedSize)
        } catch {
            throw LinkError(
                .io,
                "link authentication: the client did not answer the challenge (it may have no link secret): \(error)")
        }
        guard frame.kind == .proof, let proof = try? LinkProof(payload: frame.payload) else {
            throw LinkError(
                .protocolViolation,
                "link authentication: the client answered the challenge with a malformed \(frame.kind) frame")
        }
        let expected = mac(
            secret, label: clientLabel, serverNonce: serverNonce, clientNonce: proof.nonce, hello: hello)
        guard HMACSHA256.equal(proof.mac, expected) else {
            throw LinkError(
                .io, "link authentication failed: the client's proof does not match this side's link secret")
        }
        let answer = mac(secret, label: serverLabel, serverNonce: serverNonce, clientNonce: proof.nonce, hello: hello)
        return ServerProof(proof: LinkProof(nonce: serverNonce, mac: answer))
    }

    /// The server's proof, sent as the first frame on the control connection.
    package struct ServerProof: Sendable {
        let proof: LinkProof

        package func send(on socket: Socket, until deadline: ContinuousClock.Instant) throws(Socket.Failure) {
            try socket.sendAll(Frame(kind: .proof, requestID: 1, payload: proof.encoded()).encoded(), until: deadline)
        }
    }

    /// The client side of one handshake: answers the server's challenge and checks the server's proof.
    package struct Client: Sendable {
        let secret: LinkSecret?
        let hello: [UInt8]
        private var clientNonce: [UInt8]?
        private var serverNonce: [UInt8]?
        private var serverProven = false

        /// For the hello `hello` (its payload as sent), with this side's secret if it has one.
        package init(secret: LinkSecret?, hello: [UInt8]) {
            self.secret = secret
            self.hello = hello
        }

        /// Answers `frame` on `socket` if it is the server's challenge (true), or leaves it (false: not a
        /// challenge). Throws when this side has no secret, or for a second or malformed challenge.
        package mutating func answer(
            _ frame: Frame, on socket: Socket, until deadline: ContinuousClock.Instant
        ) throws(LinkError) -> Bool {
            guard frame.kind == .challenge else { return false }
            guard let secret else {
                throw LinkError(
                    .io,
                    "the peer requires link authentication, and this side has no link secret (LLMConfig.linkSecret)")
            }
            guard serverNonce == nil, let challenge = try? LinkChallenge(payload: frame.payload) else {
                throw LinkError(.protocolViolation, "the peer sent a malformed or second link challenge")
            }
            let nonce = HMACSHA256.nonce(count: LinkChallenge.nonceSize)
            (serverNonce, clientNonce) = (challenge.nonce, nonce)
            let proof = LinkProof(
                nonce: nonce,
                mac: mac(secret, label: clientLabel, serverNonce: challenge.nonce, clientNonce: nonce, hello: hello))
            do throws(Socket.Failure) {
                try socket.sendAll(
                    Frame(kind: .proof, requestID: 1, payload: proof.encoded()).encoded(), until: deadline)
            } catch {
                throw LinkError(.io, "link authentication: sending the proof failed: \(error)")
            }
            return true
        }

        /// On the control connection the server opened: with a secret, reads and checks the server's proof (the
        /// first frame there; nothing past it is read). Throws when the server never challenged this side, or its
        /// proof is wrong. Without a secret, does nothing.
        package func verifyServer(on socket: Socket, until deadline: ContinuousClock.Instant) throws(LinkError) {
            guard let secret else { return }
            guard let serverNonce, let clientNonce else {
                throw LinkError(
                    .io,
                    "link authentication failed: the peer did not challenge this side, so it has no link secret (or is not the cluster asked for)"
                )
            }
            let bytes: [UInt8]
            do throws(Socket.Failure) {
                // Exactly the proof's bytes: descriptors of the region exchange come right after it.
                let (received, descriptor) = try socket.receive(
                    count: Frame.headerSize + LinkProof.encodedSize, until: deadline)
                if descriptor >= 0 {
                    Socket(fd: descriptor).close()
                    throw Socket.Failure(operation: "receive the proof: a descriptor came with it", errno: EPROTO)
                }
                bytes = received
            } catch {
                throw LinkError(.io, "link authentication: the peer's proof did not arrive: \(error)")
            }
            guard case .frame(let frame, _) = Frame.decode(bytes[...], limit: LinkProof.encodedSize) else {
                throw LinkError(.protocolViolation, "link authentication: the peer sent no proof of the link secret")
            }
            try check(frame, secret: secret, serverNonce: serverNonce, clientNonce: clientNonce)
        }

        /// With a secret, checks the server's proof that came over TCP, before its UCX offer (a link over UCX has no
        /// Unix socket). Without a secret, a proof is a protocol violation.
        package mutating func checkServerProof(_ frame: Frame) throws(LinkError) {
            guard let secret, let serverNonce, let clientNonce else {
                throw LinkError(.protocolViolation, "link authentication: a proof from a peer that never challenged")
            }
            try check(frame, secret: secret, serverNonce: serverNonce, clientNonce: clientNonce)
            serverProven = true
        }

        /// Before a UCX offer is accepted: with a secret, the server must have proven it over TCP first.
        package func requireServerProven() throws(LinkError) {
            guard secret == nil || serverProven else {
                throw LinkError(
                    .io, "link authentication failed: the peer offered UCX without proving the link secret")
            }
        }

        private func check(
            _ frame: Frame, secret: LinkSecret, serverNonce: [UInt8], clientNonce: [UInt8]
        ) throws(LinkError) {
            guard frame.kind == .proof, let proof = try? LinkProof(payload: frame.payload), proof.nonce == serverNonce
            else {
                throw LinkError(.protocolViolation, "link authentication: the peer sent no proof of the link secret")
            }
            let expected = mac(
                secret, label: serverLabel, serverNonce: serverNonce, clientNonce: clientNonce, hello: hello)
            guard HMACSHA256.equal(proof.mac, expected) else {
                throw LinkError(
                    .io, "link authentication failed: the peer's proof does not match this side's link secret")
            }
        }
    }
}
