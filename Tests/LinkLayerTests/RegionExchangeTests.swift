import CLinuxSupport
import LinkLayer
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The region exchange over a Unix socket pair: pools go to a peer read-only unless it may push, a descriptor
/// that is unsealed or smaller than its announced region is refused before it is mapped, and a count header
/// that arrives in pieces is read whole.
@Suite struct RegionExchangeTests {
    static let size = 64 << 10

    /// A memfd of `size` bytes, size-sealed as a pool's is unless `sealed` is false.
    static func memfd(size: Int = size, sealed: Bool = true) throws -> Int32 {
        let fd = datadist_memfd_create("datadist-region-exchange-test")
        try #require(fd >= 0)
        try #require(ftruncate(fd, off_t(size)) == 0)
        if sealed { try #require(datadist_memfd_seal_size(fd) == 0) }
        return fd
    }

    static func region(_ fd: Int32, id: UInt32 = 3, size: Int = size) -> PublishedRegion {
        PublishedRegion(descriptor: RegionDescriptor(regionID: id, kind: .host, size: UInt64(size)), fd: fd)
    }

    /// Sends a count header and then, one message each, `regions` with their descriptors as given (the way a
    /// hand-written peer may).
    static func sendRaw(_ regions: [PublishedRegion], on socket: Socket) throws {
        try socket.send(littleEndian(UInt32(regions.count)), passing: -1)
        for region in regions { try socket.send(encoded(region.descriptor), passing: region.fd) }
    }

    /// A region descriptor as it travels: region id, memory kind, size.
    static func encoded(_ descriptor: RegionDescriptor) -> [UInt8] {
        littleEndian(descriptor.regionID) + [descriptor.kind.rawValue] + littleEndian(descriptor.size)
    }

    static func littleEndian(_ value: some FixedWidthInteger) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    /// What `RegionExchange.receive` throws for `regions` sent raw, or nil when it maps them.
    static func refusal(of regions: [PublishedRegion]) throws -> Socket.Failure? {
        let (sender, receiver) = try DescriptorPassingTests.socketPair()
        defer {
            sender.close()
            receiver.close()
        }
        try sendRaw(regions, on: sender)
        do {
            _ = try RegionExchange.receive(from: receiver, writable: false, until: .now + .seconds(5))
            return nil
        } catch {
            return error
        }
    }

    @Test func anUnsealedDescriptorIsRefused() throws {
        let fd = try Self.memfd(sealed: false)
        defer { close(fd) }
        let failure = try #require(try Self.refusal(of: [Self.region(fd)]))
        #expect(failure.errno == EPERM)
        #expect(failure.description.contains("pool 3"))
        #expect(failure.description.contains("not sealed against shrinking and growing"))
    }

    @Test func aDescriptorSmallerThanItsRegionIsRefused() throws {
        let fd = try Self.memfd(size: Self.size / 2)
        defer { close(fd) }
        let failure = try #require(try Self.refusal(of: [Self.region(fd)]))
        #expect(failure.errno == EINVAL)
        #expect(
            failure.description.contains("pool 3: its descriptor has \(Self.size / 2) bytes, \(Self.size) announced"))
    }

    @Test func aSealedDescriptorOfTheAnnouncedSizeIsMapped() throws {
        let fd = try Self.memfd()
        defer { close(fd) }
        #expect(try Self.refusal(of: [Self.region(fd)]) == nil)
    }

    /// The descriptor a peer receives for a pool it may only read, and whether it could map it writable.
    static func received(peerMayWrite: Bool) throws -> (fd: Int32, writableMapping: Bool) {
        let (sender, receiver) = try DescriptorPassingTests.socketPair()
        defer {
            sender.close()
            receiver.close()
        }
        let pool = try Self.memfd()
        defer { close(pool) }
        try RegionExchange.send([Self.region(pool)], to: sender, peerMayWrite: peerMayWrite)
        _ = try receiver.receive(count: 4, until: .now + .seconds(5))
        let (_, fd) = try receiver.receive(count: RegionDescriptor.encodedSize, until: .now + .seconds(5))
        try #require(fd >= 0)
        let address = mmap(nil, Self.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        let writable = address != MAP_FAILED
        if writable { munmap(address, Self.size) }
        return (fd, writable)
    }

    @Test func aPoolGoesReadOnlyUnlessThePeerMayWrite() throws {
        let readOnly = try Self.received(peerMayWrite: false)
        defer { close(readOnly.fd) }
        #expect(!readOnly.writableMapping)
        #expect(fcntl(readOnly.fd, F_GETFL) & O_ACCMODE == O_RDONLY)
        // Nor may anyone but a privileged process re-open the file for writing.
        var status = stat()
        #expect(fstat(readOnly.fd, &status) == 0 && status.st_mode & 0o7777 == 0o400)
        // Still a pool a reader can map, with its seals.
        let readable = mmap(nil, Self.size, PROT_READ, MAP_SHARED, readOnly.fd, 0)
        #expect(readable != MAP_FAILED)
        if readable != MAP_FAILED { munmap(readable, Self.size) }
        #expect(throws: Socket.Failure.self) {
            _ = try PeerMapping(
                fd: dup(readOnly.fd), descriptor: RegionDescriptor(regionID: 3, kind: .host, size: UInt64(Self.size)),
                writable: true)
        }

        let readWrite = try Self.received(peerMayWrite: true)
        defer { close(readWrite.fd) }
        #expect(readWrite.writableMapping)
    }

    @Test func aCountHeaderSplitOverTwoWritesIsReadWhole() async throws {
        let (sender, receiver) = try DescriptorPassingTests.socketPair()
        defer {
            sender.close()
            receiver.close()
        }
        let pool = try Self.memfd()
        defer { close(pool) }
        try sender.sendAll([1, 0])
        let reading = Task {
            try RegionExchange.receive(from: receiver, writable: false, until: .now + .seconds(5)).map(\.descriptor)
        }
        usleep(50_000)  // lets the reader see the first half alone (it must wait for the rest either way)
        try sender.sendAll([0, 0])
        try sender.send(Self.encoded(Self.region(pool).descriptor), passing: pool)
        #expect(try await reading.value == [Self.region(pool).descriptor])
    }
}
