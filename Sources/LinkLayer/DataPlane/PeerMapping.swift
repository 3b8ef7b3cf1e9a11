internal import CLinuxSupport
internal import Glibc

/// A region (pool) a peer published, mapped into this process: the bytes a pull reads (or a push writes) without any staging copy.
/// Unmapped when the last holder (the link, an in-flight transfer) lets go.
package final class PeerMapping: Sendable {
    package let descriptor: RegionDescriptor
    package let base: UInt
    package let size: Int
    /// The bytes this mapping takes from its link's `MappingBudget`, given back when it is unmapped.
    private let reservation: MappingBudget.Reservation

    /// Maps `fd` (a pool's memfd received from the peer) and closes it, taking the bytes from `budget` for a
    /// peer whose other regions on this link take `peerBytes` (refused beyond its limits). The descriptor must be
    /// sealed against shrinking and growing and cover at least `descriptor.size` bytes: a peer that could
    /// truncate it would make a copy out of the mapping fault.
    package init(
        fd: Int32, descriptor: RegionDescriptor, writable: Bool, budget: MappingBudget = .process,
        peerBytes: UInt64 = 0
    ) throws(Socket.Failure) {
        defer { _ = Glibc.close(fd) }
        let pool = "pool \(descriptor.regionID)"
        guard descriptor.size > 0, descriptor.size <= UInt64(Int.max) else {
            throw Socket.Failure(operation: "map \(pool) of \(descriptor.size) bytes", errno: EINVAL)
        }
        switch datadist_fd_size_sealed(fd) {
        case 1: break
        case 0:
            throw Socket.Failure(
                operation: "map \(pool): its descriptor is not sealed against shrinking and growing", errno: EPERM)
        default: throw Socket.Failure(operation: "map \(pool): reading the seals of its descriptor", errno: errno)
        }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            throw Socket.Failure(operation: "map \(pool): fstat of its descriptor", errno: errno)
        }
        guard status.st_size >= Int(descriptor.size) else {
            throw Socket.Failure(
                operation: "map \(pool): its descriptor has \(status.st_size) bytes, \(descriptor.size) announced",
                errno: EINVAL)
        }
        let reservation = try budget.reserve(descriptor.size, peerBytes: peerBytes, what: pool)
        let protection = writable ? PROT_READ | PROT_WRITE : PROT_READ
        let address = mmap(nil, Int(descriptor.size), protection, MAP_SHARED, fd, 0)
        guard let address, address != MAP_FAILED else {
            throw Socket.Failure(operation: "mmap pool \(descriptor.regionID)", errno: errno)
        }
        self.descriptor = descriptor
        self.base = UInt(bitPattern: address)
        self.size = Int(descriptor.size)
        self.reservation = reservation
    }

    deinit {
        munmap(UnsafeMutableRawPointer(bitPattern: base), size)
    }

    /// The address of `length` bytes at `offset`, or nil when they are not all inside the mapping.
    package func address(offset: UInt64, length: Int) -> UInt? {
        guard length >= 0, offset <= UInt64(size), UInt64(length) <= UInt64(size) - offset else { return nil }
        return base + UInt(offset)
    }
}
