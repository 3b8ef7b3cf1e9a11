#if canImport(Glibc)
internal import Glibc
#endif

/// Bytes received on a connection and not yet decoded, in one reusable buffer: reading allocates nothing
/// until a frame larger than the buffer arrives. Not thread-safe; see `ControlConnection` for who may touch it.
package struct FrameInbox {
    private var bytes: [UInt8]
    private var start = 0
    private var end: Int

    package static let initialCapacity = 64 << 10

    /// An inbox whose buffer starts with `capacity` bytes.
    package init(capacity: Int = initialCapacity) {
        bytes = [UInt8](repeating: 0, count: max(Frame.headerSize, capacity))
        end = 0
    }

    /// Decodes the next frame from the bytes in hand, consuming it; a payload longer than `limit` is invalid.
    package mutating func next(limit: Int = Frame.maxPayload) -> Frame.Decoded {
        guard start < end else { return .incomplete }
        let decoded = Frame.decode(bytes[start..<end], limit: limit)
        if case .frame(_, let consumed) = decoded { start += consumed }
        return decoded
    }

    /// Whether bytes of a frame not yet decoded are in hand (a frame may be waiting here, not on the socket).
    package var hasBufferedBytes: Bool { start < end }

    /// Reads what `socket` has now: nil when nothing is waiting, 0 when the peer closed, else the byte count.
    package mutating func fill(from socket: Socket) throws(Socket.Failure) -> Int? {
        makeRoom()
        let count = try socket.receiveAvailable(into: &bytes, at: end)
        if let count { end += count }
        return count
    }

    /// Waits until `deadline` (nil: no limit) for the next whole frame from `socket`, for readers that have the
    /// socket to themselves (the handshake). Bytes past the frame stay here. Throws on a timeout, a closed
    /// connection, bytes that are no frame, or a payload longer than `limit` (as soon as its header is in).
    package mutating func receiveFrame(
        from socket: Socket, until deadline: ContinuousClock.Instant?, limit: Int = Frame.maxPayload
    ) throws(Socket.Failure) -> Frame {
        while true {
            switch next(limit: limit) {
            case .frame(let frame, _): return frame
            case .invalid: throw Socket.Failure(operation: "frame", errno: EPROTO)
            case .incomplete: break
            }
            guard try socket.waitReadable(until: deadline) else {
                throw Socket.Failure(operation: "receive", errno: ETIMEDOUT)
            }
            if try fill(from: socket) == 0 { throw Socket.Failure(operation: "receive", errno: ECONNRESET) }
        }
    }

    /// Moves the undecoded bytes to the front, or grows the buffer when they already fill it (a frame larger
    /// than the buffer; bounded by the largest frame, which `Frame.decode` enforces).
    private mutating func makeRoom() {
        if start == end {
            (start, end) = (0, 0)
        } else if end == bytes.count, start > 0 {
            let pending = end - start
            for index in 0..<pending { bytes[index] = bytes[start + index] }
            (start, end) = (0, pending)
        }
        if end == bytes.count {
            bytes += [UInt8](repeating: 0, count: bytes.count)
        }
    }
}
