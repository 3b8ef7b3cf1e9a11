internal import CLinuxSupport
internal import Glibc

/// A local region offered to peers: its descriptor, the memfd that lets a peer on this host map it (-1: none),
/// and where it lies in this process (nil: not reachable over UCX).
package struct PublishedRegion: Sendable, Hashable {
    package var descriptor: RegionDescriptor
    package var fd: Int32
    package var base: UInt?
    /// Memory the application allocated itself (not a pool): only UCX can reach it, so neither the memfd nor the
    /// IPC-key exchange offers it.
    package var isCallerMemory: Bool

    package init(descriptor: RegionDescriptor, fd: Int32, base: UInt? = nil, isCallerMemory: Bool = false) {
        self.descriptor = descriptor
        self.fd = fd
        self.base = base
        self.isCallerMemory = isCallerMemory
    }
}

/// The region exchange of the shared-memory data plane, over the link's Unix socket: a count, then one message
/// per region with its memfd attached.
package enum RegionExchange {
    package static let maxRegions = 16
    /// Set in the count when this side also shares pools by IPC key (`IPCExchange`), which then follows the
    /// memfds if both sides set it.
    static let keysFollow: UInt32 = 1 << 31

    /// Sends `regions`; each memfd goes as a read-only descriptor unless `peerMayWrite` (remote-cache access,
    /// where the peer's pushes write into the pools). `announcingKeys` says this side shares by key too.
    package static func send(
        _ regions: [PublishedRegion], to unix: Socket, peerMayWrite: Bool, announcingKeys: Bool = false
    ) throws(Socket.Failure) {
        var header = WireWriter()
        header.u32(UInt32(regions.count) | (announcingKeys ? keysFollow : 0))
        try unix.send(header.bytes, passing: -1)
        for region in regions {
            var writer = WireWriter()
            region.descriptor.encode(into: &writer)
            let fd = peerMayWrite ? region.fd : datadist_reopen_read_only(region.fd)
            guard fd >= 0 else {
                throw Socket.Failure(
                    operation: "a read-only descriptor of pool \(region.descriptor.regionID)", errno: errno)
            }
            defer { if fd != region.fd { _ = Glibc.close(fd) } }
            try unix.send(writer.bytes, passing: fd)
        }
    }

    /// Receives the peer's regions and maps them (writable when pushes are allowed), within `budget`: regions
    /// beyond its limits are refused, not mapped.
    package static func receive(
        from unix: Socket, writable: Bool, budget: MappingBudget = .process, until deadline: ContinuousClock.Instant
    ) throws(Socket.Failure) -> [PeerMapping] {
        try receiveAnnounced(from: unix, writable: writable, budget: budget, until: deadline).mappings
    }

    /// `receive`, also saying whether the peer announced that it shares pools by key.
    package static func receiveAnnounced(
        from unix: Socket, writable: Bool, budget: MappingBudget = .process, until deadline: ContinuousClock.Instant
    ) throws(Socket.Failure) -> (mappings: [PeerMapping], keysFollow: Bool) {
        let (header, stray) = try unix.receive(count: 4, until: deadline)
        if stray >= 0 { _ = Glibc.close(stray) }
        var reader = WireReader(header[...])
        guard let word = try? reader.u32(), word & ~keysFollow <= maxRegions else {
            throw Socket.Failure(operation: "region count", errno: EPROTO)
        }
        let count = word & ~keysFollow
        var mappings: [PeerMapping] = []
        for _ in 0..<count {
            let (bytes, fd) = try unix.receive(count: RegionDescriptor.encodedSize, until: deadline)
            var reader = WireReader(bytes[...])
            guard fd >= 0, let descriptor = try? RegionDescriptor(from: &reader) else {
                if fd >= 0 { _ = Glibc.close(fd) }
                throw Socket.Failure(operation: "region descriptor", errno: EPROTO)
            }
            let peerBytes = mappings.reduce(0) { $0 + UInt64($1.size) }
            mappings.append(
                try PeerMapping(
                    fd: fd, descriptor: descriptor, writable: writable, budget: budget, peerBytes: peerBytes))
        }
        return (mappings, word & keysFollow != 0)
    }
}
