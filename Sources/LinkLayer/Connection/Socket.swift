internal import CLinuxSupport

#if canImport(Glibc)
internal import Glibc
#endif

/// A socket descriptor with the few operations the control channel needs. All blocking waits take a deadline.
/// Raw pointers in the link layer stay in this file (system calls, socket addresses), `PeerMapping.swift` (a peer's
/// mapped region) and `HostIdentity.swift` (one `read`).
package struct Socket: Sendable, Hashable {
    package let fd: Int32

    package init(fd: Int32) { self.fd = fd }

    /// Why a socket operation failed.
    package struct Failure: Error, Sendable, CustomStringConvertible {
        package let operation: String
        package let errno: Int32

        package init(operation: String, errno: Int32) {
            self.operation = operation
            self.errno = errno
        }

        package var timedOut: Bool { errno == ETIMEDOUT }
        package var description: String {
            timedOut ? "\(operation) timed out" : "\(operation): \(String(cString: strerror(errno)))"
        }
    }

    package func close() { _ = Glibc.close(fd) }

    /// Wakes any thread blocked reading or accepting on this socket.
    package func shutdown() { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }

    /// Waits until the socket is readable; false when the deadline passed first.
    package func waitReadable(until deadline: ContinuousClock.Instant?) throws(Failure) -> Bool {
        try Self.poll([self], events: Int16(POLLIN), until: deadline) != nil
    }

    /// Index of the first of `sockets` ready for `events`, or nil when the deadline passed.
    package static func poll(_ sockets: [Socket], events: Int16, until deadline: ContinuousClock.Instant?)
        throws(Failure) -> Int?
    {
        var fds = sockets.map { pollfd(fd: $0.fd, events: events, revents: 0) }
        while true {
            var timeout: Int32 = -1
            if let deadline {
                let left = ContinuousClock.now.duration(to: deadline)
                if left <= .zero { return nil }
                let (seconds, attoseconds) = left.components
                timeout = Int32(clamping: seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
            }
            let ready = Glibc.poll(&fds, nfds_t(fds.count), timeout)
            if ready < 0 {
                if errno == EINTR { continue }
                throw Failure(operation: "poll", errno: errno)
            }
            if ready == 0 { continue }
            return fds.firstIndex { $0.revents != 0 }
        }
    }

    /// Sends every byte. With a deadline, a peer that stops reading (its receive buffer and our send buffer full)
    /// makes this fail with ETIMEDOUT once the deadline passed, having sent a part or none; without, it blocks.
    package func sendAll(_ bytes: [UInt8], until deadline: ContinuousClock.Instant? = nil) throws(Failure) {
        let flags = Int32(MSG_NOSIGNAL) | (deadline == nil ? 0 : Int32(MSG_DONTWAIT))
        var sent = 0
        while sent < bytes.count {
            let result = bytes.withUnsafeBytes { buffer in
                Glibc.send(fd, buffer.baseAddress! + sent, buffer.count - sent, flags)
            }
            if result < 0 {
                switch errno {
                case EINTR: continue
                case EAGAIN, EWOULDBLOCK:
                    guard deadline != nil else { throw Failure(operation: "send", errno: errno) }
                    guard try Self.poll([self], events: Int16(POLLOUT), until: deadline) != nil else {
                        throw Failure(operation: "send (\(sent) of \(bytes.count) bytes sent)", errno: ETIMEDOUT)
                    }
                    continue
                default: throw Failure(operation: "send", errno: errno)
                }
            }
            sent += result
        }
    }

    /// Reads what is available now, without waiting, into `buffer[offset...]`: nil when nothing is (EAGAIN),
    /// 0 when the peer closed, otherwise the byte count.
    package func receiveAvailable(into buffer: inout [UInt8], at offset: Int) throws(Failure) -> Int? {
        precondition(offset < buffer.count, "no room to receive into")
        while true {
            let count = buffer.withUnsafeMutableBytes {
                Glibc.recv(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_DONTWAIT))
            }
            if count >= 0 { return count }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return nil
            default: throw Failure(operation: "recv", errno: errno)
            }
        }
    }

    // MARK: TCP

    /// A listening TCP socket bound to exactly `endpoint` (port 0 picks a free port).
    package static func listenTCP(_ endpoint: SocketEndpoint) throws(Failure) -> (Socket, port: UInt16) {
        var address = try SocketAddress(endpoint)
        let fd = Glibc.socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(operation: "socket", errno: errno) }
        let socket = Socket(fd: fd)
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard address.withPointer({ Glibc.bind(fd, $0, $1) }) == 0 else {
            let error = Failure(operation: "bind \(endpoint)", errno: errno)
            socket.close()
            throw error
        }
        guard Glibc.listen(fd, 64) == 0 else {
            let error = Failure(operation: "listen \(endpoint)", errno: errno)
            socket.close()
            throw error
        }
        guard address.readBack(from: fd) else {
            let error = Failure(operation: "getsockname", errno: errno)
            socket.close()
            throw error
        }
        return (socket, address.port)
    }

    /// Connects to `endpoint` within the deadline; the socket has TCP_NODELAY set.
    package static func connectTCP(_ endpoint: SocketEndpoint, until deadline: ContinuousClock.Instant) throws(Failure)
        -> Socket
    {
        var address = try SocketAddress(endpoint)
        let fd = Glibc.socket(
            address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue),
            0)
        guard fd >= 0 else { throw Failure(operation: "socket", errno: errno) }
        let socket = Socket(fd: fd)
        do throws(Failure) {
            if address.withPointer({ Glibc.connect(fd, $0, $1) }) != 0 {
                guard errno == EINPROGRESS else { throw Failure(operation: "connect \(endpoint)", errno: errno) }
                guard try poll([socket], events: Int16(POLLOUT), until: deadline) != nil else {
                    throw Failure(operation: "connect \(endpoint)", errno: ETIMEDOUT)
                }
                var error: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
                guard error == 0 else { throw Failure(operation: "connect \(endpoint)", errno: error) }
            }
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags & ~Int32(O_NONBLOCK))
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            return socket
        } catch {
            socket.close()
            throw error
        }
    }

    /// Accepts one connection (blocking); nil once the listener was shut down, or when accepting failed.
    package func accept() -> Socket? { try? acceptConnection() }

    /// Accepts one connection (blocking). Throws why not: EINVAL once the listener was shut down, EMFILE or
    /// ENFILE while the process or the system is out of descriptors (the connection stays queued).
    package func acceptConnection() throws(Failure) -> Socket {
        while true {
            let fd = Glibc.accept(self.fd, nil, nil)
            if fd >= 0 {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                var one: Int32 = 1
                _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                return Socket(fd: fd)
            }
            if errno == EINTR || errno == ECONNABORTED { continue }
            throw Failure(operation: "accept", errno: errno)
        }
    }

    // MARK: Unix sockets with descriptor passing

    /// A listening Unix socket in the abstract namespace (no file on disk).
    package static func listenUnix(abstractName: String) throws(Failure) -> Socket {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(operation: "socket", errno: errno) }
        let socket = Socket(fd: fd)
        let result = withUnixAddress(abstractName) { Glibc.bind(fd, $0, $1) }
        guard result == 0, Glibc.listen(fd, 8) == 0 else {
            let error = Failure(operation: "bind @\(abstractName)", errno: errno)
            socket.close()
            throw error
        }
        return socket
    }

    /// Connects to the Unix socket `abstractName` listens on. While its backlog is full, waits at most until
    /// `deadline` (then fails with ETIMEDOUT) for the listener to accept.
    package static func connectUnix(abstractName: String, until deadline: ContinuousClock.Instant) throws(Failure)
        -> Socket
    {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(operation: "socket", errno: errno) }
        let socket = Socket(fd: fd)
        let operation = "connect @\(abstractName)"
        do throws(Failure) {
            // A Unix connect waits for room in the listener's backlog for as long as the send timeout allows.
            while true {
                let left = ContinuousClock.now.duration(to: deadline)
                guard left > .zero else { throw Failure(operation: operation, errno: ETIMEDOUT) }
                try socket.setSendTimeout(left)
                if withUnixAddress(abstractName, { Glibc.connect(fd, $0, $1) }) == 0 { break }
                guard errno == EINTR || errno == EAGAIN else { throw Failure(operation: operation, errno: errno) }
            }
            try socket.setSendTimeout(nil)
            return socket
        } catch {
            socket.close()
            throw error
        }
    }

    /// Bounds how long a blocking send (or a Unix connect) waits; nil waits without limit.
    private func setSendTimeout(_ timeout: Duration?) throws(Failure) {
        var value = timeval()
        if let timeout {
            let (seconds, attoseconds) = timeout.components
            // Rounded up: a zero timeval would mean no limit at all.
            value.tv_sec = Int(seconds)
            value.tv_usec = Int((attoseconds + 999_999_999_999) / 1_000_000_000_000)
            if value.tv_usec >= 1_000_000 { (value.tv_sec, value.tv_usec) = (value.tv_sec + 1, 0) }
            if value.tv_sec == 0, value.tv_usec == 0 { value.tv_usec = 1 }
        }
        guard setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size)) == 0 else {
            throw Failure(operation: "setsockopt SO_SNDTIMEO", errno: errno)
        }
    }

    private static func withUnixAddress(_ name: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32
    {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(name.utf8.prefix(100))
        withUnsafeMutableBytes(of: &address.sun_path) { path in
            path[0] = 0  // abstract namespace
            for (index, byte) in bytes.enumerated() { path[index + 1] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + 1 + bytes.count)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }

    /// Sends `bytes` with one descriptor attached.
    package func send(_ bytes: [UInt8], passing descriptor: Int32) throws(Failure) {
        let result = bytes.withUnsafeBytes { datadist_send_fd(fd, descriptor, $0.baseAddress, $0.count) }
        guard result == bytes.count else { throw Failure(operation: "sendmsg", errno: result < 0 ? errno : EMSGSIZE) }
    }

    /// Receives exactly `count` bytes, however the sender split them over writes, and the one descriptor that
    /// came with them (-1 if none). More than one descriptor is refused (EPROTO) and every one received closed.
    package func receive(count: Int, until deadline: ContinuousClock.Instant) throws(Failure) -> (
        [UInt8], descriptor: Int32
    ) {
        var buffer = [UInt8](repeating: 0, count: count)
        var descriptor: Int32 = -1
        var received = 0
        do throws(Failure) {
            while received < count {
                guard try waitReadable(until: deadline) else { throw Failure(operation: "recvmsg", errno: ETIMEDOUT) }
                var arrived: Int32 = -1
                let result = buffer.withUnsafeMutableBytes {
                    datadist_recv_fd(fd, &arrived, $0.baseAddress! + received, count - received)
                }
                if arrived >= 0 {
                    guard descriptor < 0 else {
                        _ = Glibc.close(arrived)
                        throw Failure(operation: "recvmsg: a second descriptor in one message", errno: EPROTO)
                    }
                    descriptor = arrived
                }
                if result < 0, errno == EINTR || errno == EAGAIN { continue }
                guard result > 0 else {
                    throw Failure(operation: "recvmsg", errno: result < 0 ? errno : ECONNRESET)
                }
                received += result
            }
        } catch {
            if descriptor >= 0 { _ = Glibc.close(descriptor) }
            throw error
        }
        return (buffer, descriptor)
    }
}

extension SocketEndpoint {
    /// True for a dotted-quad IPv4 or a textual IPv6 address, as `inet_pton` reads them (no host names).
    package static func isNumericAddress(_ host: String) -> Bool {
        guard !host.isEmpty, !host.utf8.contains(0) else { return false }
        return (try? SocketAddress(SocketEndpoint(host: host, port: 0))) != nil
    }
}

/// An IPv4 or IPv6 socket address built from an endpoint.
private struct SocketAddress {
    package var storage = sockaddr_storage()
    package let family: Int32
    package var port: UInt16 = 0

    package init(_ endpoint: SocketEndpoint) throws(Socket.Failure) {
        port = endpoint.port
        let parsed: Bool
        if endpoint.host.contains(":") {
            family = AF_INET6
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = endpoint.port.bigEndian
            parsed = inet_pton(AF_INET6, endpoint.host, &address.sin6_addr) == 1
            store(address)
        } else {
            family = AF_INET
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = endpoint.port.bigEndian
            parsed = inet_pton(AF_INET, endpoint.host, &address.sin_addr) == 1
            store(address)
        }
        guard parsed else { throw Socket.Failure(operation: "parse address \(endpoint.host)", errno: EINVAL) }
    }

    /// Copies a family-specific address into the storage.
    private mutating func store<Address>(_ address: Address) {
        withUnsafeMutableBytes(of: &storage) { target in
            withUnsafeBytes(of: address) { target.copyMemory(from: $0) }
        }
    }

    package var length: socklen_t {
        socklen_t(family == AF_INET6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
    }

    package mutating func withPointer(_ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
        let length = self.length
        return withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }

    /// Reads the bound port back (for port 0).
    package mutating func readBack(from fd: Int32) -> Bool {
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0 else { return false }
        port = withUnsafeBytes(of: storage) { raw in
            let portOffset = 2  // sin_port and sin6_port follow the 2-byte family in both layouts
            return UInt16(raw[portOffset]) << 8 | UInt16(raw[portOffset + 1])
        }
        return true
    }
}
