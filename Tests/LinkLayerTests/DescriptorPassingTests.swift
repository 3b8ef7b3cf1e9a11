import LinkLayer
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Descriptor passing over a Unix socket pair: one descriptor arrives and refers to the sender's file; a message
/// carrying two is refused and neither stays open in the receiver.
@Suite struct DescriptorPassingTests {
    /// A connected pair of Unix stream sockets.
    static func socketPair() throws -> (Socket, Socket) {
        var fds: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        return (Socket(fd: fds[0]), Socket(fd: fds[1]))
    }

    /// A new file under /dev/shm, already unlinked, with a name unique to this test run.
    static func uniqueFile(_ tag: String) throws -> (fd: Int32, name: String) {
        let name = "datadist-fd-passing-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open("/dev/shm/\(name)", O_RDWR | O_CREAT | O_EXCL, 0o600)
        try #require(fd >= 0)
        unlink("/dev/shm/\(name)")
        return (fd, name)
    }

    /// How many of this process's descriptors refer to the file named `name`.
    static func openDescriptors(naming name: String) -> Int {
        guard let directory = opendir("/proc/self/fd") else { return -1 }
        defer { closedir(directory) }
        var count = 0
        var target = [UInt8](repeating: 0, count: 4096)
        while let entry = readdir(directory) {
            let fd = withUnsafeBytes(of: entry.pointee.d_name) {
                String(cString: $0.bindMemory(to: CChar.self).baseAddress!)
            }
            let length = target.withUnsafeMutableBytes {
                readlink("/proc/self/fd/\(fd)", $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count)
            }
            guard length > 0 else { continue }
            if String(decoding: target[..<length], as: UTF8.self).contains(name) { count += 1 }
        }
        return count
    }

    @Test func oneDescriptorArrivesAndRefersToTheSameFile() throws {
        let (sender, receiver) = try Self.socketPair()
        defer {
            sender.close()
            receiver.close()
        }
        let file = try Self.uniqueFile("one")
        defer { close(file.fd) }
        try sender.send([1, 2, 3, 4], passing: file.fd)
        let (bytes, received) = try receiver.receive(count: 4, until: .now + .seconds(5))
        defer { close(received) }
        #expect(bytes == [1, 2, 3, 4])
        #expect(received >= 0 && received != file.fd)
        var mine = stat()
        var theirs = stat()
        #expect(fstat(file.fd, &mine) == 0 && fstat(received, &theirs) == 0)
        #expect(mine.st_ino == theirs.st_ino && mine.st_dev == theirs.st_dev)
    }

    @Test func aMessageCarryingTwoDescriptorsIsRefusedAndBothAreClosed() throws {
        let (sender, receiver) = try Self.socketPair()
        defer {
            sender.close()
            receiver.close()
        }
        let first = try Self.uniqueFile("first")
        let second = try Self.uniqueFile("second")
        defer {
            close(first.fd)
            close(second.fd)
        }
        #expect(Self.openDescriptors(naming: first.name) == 1)
        try #require(Self.sendRaw(on: sender, [9, 9, 9, 9], descriptors: [first.fd, second.fd]) == 4)

        #expect {
            _ = try receiver.receive(count: 4, until: .now + .seconds(5))
        } throws: { error in
            (error as? Socket.Failure)?.errno == EPROTO
        }
        // Only the sender's own descriptors are left: the receiver closed both copies it was handed.
        #expect(Self.openDescriptors(naming: first.name) == 1)
        #expect(Self.openDescriptors(naming: second.name) == 1)
    }

    /// `sendmsg` with an SCM_RIGHTS message of several descriptors (which `Socket` never sends), laid out as
    /// `struct cmsghdr` followed by the descriptors.
    static func sendRaw(on socket: Socket, _ bytes: [UInt8], descriptors: [Int32]) -> Int {
        let header = MemoryLayout<cmsghdr>.size
        let dataBytes = descriptors.count * MemoryLayout<Int32>.size
        let space = (header + dataBytes + 7) & ~7
        var control = [UInt8](repeating: 0, count: space)
        control.withUnsafeMutableBytes { raw in
            var cmsg = cmsghdr()
            cmsg.cmsg_len = header + dataBytes
            cmsg.cmsg_level = SOL_SOCKET
            cmsg.cmsg_type = Int32(SCM_RIGHTS)
            raw.storeBytes(of: cmsg, as: cmsghdr.self)
            for (index, fd) in descriptors.enumerated() {
                raw.storeBytes(of: fd, toByteOffset: header + index * MemoryLayout<Int32>.size, as: Int32.self)
            }
        }
        var payload = bytes
        return payload.withUnsafeMutableBytes { payloadBytes in
            control.withUnsafeMutableBytes { controlBytes in
                var vector = iovec(iov_base: payloadBytes.baseAddress, iov_len: payloadBytes.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    var message = msghdr()
                    message.msg_iov = vectorPointer
                    message.msg_iovlen = 1
                    message.msg_control = controlBytes.baseAddress
                    message.msg_controllen = controlBytes.count
                    return sendmsg(socket.fd, &message, 0)
                }
            }
        }
    }
}
