internal import CLinuxSupport
internal import CNuma
internal import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// One memfd of page-rounded length mapped `MAP_SHARED` into this process: the emulator's unit of memory.
/// Pages are only backed when touched. This file holds the emulator's system calls.
struct MemfdMapping: Sendable, Hashable {
    let fd: Int32
    let address: UInt
    let length: Int

    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Creates a memfd named `name` of `byteCount` rounded up to whole pages, and maps it read-write.
    static func create(name: String, byteCount: Int) throws(DeviceError) -> MemfdMapping {
        guard byteCount > 0, byteCount <= Int.max - pageSize else {
            throw DeviceError(.acl(ACLCode.memoryAllocation), "cannot map \(byteCount) bytes")
        }
        let length = (byteCount + pageSize - 1) / pageSize * pageSize
        let fd = datadist_memfd_create(name)
        guard fd >= 0 else {
            throw DeviceError(.system(errno), "memfd_create(\"\(name)\") failed")
        }
        let file = FileDescriptor(rawValue: fd)
        do {
            try file.resize(to: Int64(length))
        } catch {
            try? file.close()
            let code = (error as? Errno)?.rawValue ?? EINVAL  // `resize` throws only `Errno`
            throw allocationError(code, "ftruncate of memfd \"\(name)\" to \(length) bytes failed")
        }
        // Peers map this descriptor; once sealed, none of them can truncate the pages away under the owner.
        guard datadist_memfd_seal_size(fd) == 0 else {
            let code = errno
            try? file.close()
            throw DeviceError(.system(code), "sealing the size of memfd \"\(name)\" failed")
        }
        let base = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        guard let base, base != MAP_FAILED else {
            let code = errno
            try? file.close()
            throw allocationError(code, "mmap of memfd \"\(name)\" (\(length) bytes) failed")
        }
        return MemfdMapping(fd: fd, address: UInt(bitPattern: base), length: length)
    }

    /// Out of memory reads as ACL's allocation failure; anything else as the failed system call.
    private static func allocationError(_ code: Int32, _ message: String) -> DeviceError {
        code == ENOMEM || code == ENOSPC || code == EFBIG
            ? DeviceError(.acl(ACLCode.memoryAllocation), "\(message): out of memory")
            : DeviceError(.system(code), message)
    }

    /// Sets the NUMA policy of the (still untouched) pages to prefer `node`. Returns nil on success, else the
    /// errno of `mbind`. MPOL_PREFERRED rather than MPOL_BIND: a full node falls back to another one instead of
    /// killing the process on a page fault.
    func prefer(node: Int) -> Int32? {
        let bitsPerWord = UInt.bitWidth
        var mask = [UInt](repeating: 0, count: node / bitsPerWord + 1)
        mask[node / bitsPerWord] |= 1 << UInt(node % bitsPerWord)
        let maxNode = UInt(mask.count * bitsPerWord + 1)
        let result = mask.withUnsafeBufferPointer { words in
            mbind(
                UnsafeMutableRawPointer(bitPattern: address), UInt(length), MPOL_PREFERRED, words.baseAddress, maxNode,
                0)
        }
        return result == 0 ? nil : errno
    }

    /// Unmaps the memory and closes the descriptor.
    func release() {
        munmap(UnsafeMutableRawPointer(bitPattern: address), length)
        try? FileDescriptor(rawValue: fd).close()
    }
}
