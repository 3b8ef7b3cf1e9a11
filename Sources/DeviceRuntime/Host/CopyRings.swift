#if canImport(Glibc)
import Glibc
#endif

/// Two equal rings of shared anonymous memory (shmem, the kind the emulator's memfd pools are), every byte
/// written once so its pages exist: the source and destination of the bench's copy ceilings. Addresses are
/// handed out as integers; copying between them goes through `HostCopy`.
package final class CopyRings: @unchecked Sendable {
    /// Bytes of each ring.
    package let bytes: Int
    private let sourceRing: UnsafeMutableRawPointer
    private let destinationRing: UnsafeMutableRawPointer

    /// Maps both rings; throws `.system(errno)` when the host refuses.
    package init(bytes: Int) throws(DeviceError) {
        precondition(bytes > 0, "CopyRings of \(bytes) bytes")
        guard let source = Self.map(bytes) else { throw Self.cannotMap(bytes, errno) }
        guard let destination = Self.map(bytes) else {
            let code = errno
            munmap(source, bytes)
            throw Self.cannotMap(bytes, code)
        }
        self.bytes = bytes
        self.sourceRing = source
        self.destinationRing = destination
    }

    deinit {
        munmap(sourceRing, bytes)
        munmap(destinationRing, bytes)
    }

    /// Address of the source ring's first byte.
    package var source: UInt { UInt(bitPattern: sourceRing) }
    /// Address of the destination ring's first byte.
    package var destination: UInt { UInt(bitPattern: destinationRing) }

    /// Writes `value(offset)` to every byte of the source ring and zeroes the destination ring (for tests).
    package func prepare(source value: (Int) -> UInt8) {
        let bytes = sourceRing.bindMemory(to: UInt8.self, capacity: self.bytes)
        for offset in 0..<self.bytes { bytes[offset] = value(offset) }
        memset(destinationRing, 0, self.bytes)
    }

    /// A copy of the source ring's bytes.
    package var sourceBytes: [UInt8] { Array(UnsafeRawBufferPointer(start: sourceRing, count: bytes)) }
    /// A copy of the destination ring's bytes.
    package var destinationBytes: [UInt8] { Array(UnsafeRawBufferPointer(start: destinationRing, count: bytes)) }

    private static func map(_ bytes: Int) -> UnsafeMutableRawPointer? {
        guard let pointer = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0),
            pointer != MAP_FAILED
        else { return nil }
        memset(pointer, 0x5A, bytes)
        return pointer
    }

    private static func cannotMap(_ bytes: Int, _ code: Int32) -> DeviceError {
        DeviceError(.system(code), "cannot map 2 × \(bytes) bytes of shared memory: \(String(cString: strerror(code)))")
    }
}
