import BlockPool
import DeviceRuntime
import Testing

@testable import DataDist

#if canImport(Glibc)
import Glibc
#endif

/// Pools that peers never write (remote cache access off) are sealed with F_SEAL_FUTURE_WRITE: no process can map
/// them writable any more, even one privileged enough to re-open its read-only copy read-write through /proc, while
/// the owner's own mapping keeps working. With remote cache access, peers' pushes need writable mappings, so those
/// pools stay mappable for writing.
@Suite struct ReadOnlyPoolTests {
    /// errno of mapping `fd`'s first page shared and writable, or nil when that succeeded (then it is unmapped).
    static func writableMappingError(_ fd: Int32) -> Int32? {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let base = mmap(nil, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        guard let base, base != MAP_FAILED else { return errno }
        munmap(base, page)
        return nil
    }

    @Test func aPoolPeersNeverWriteCannotBeMappedWritableEvenThroughProc() throws {
        let pair = try LinkedPair(promptHostPool: 1 << 20)
        let prompt = try pair.prompt.cacheManager
        for pool in [try #require(prompt.resources.devicePool), try #require(prompt.resources.hostPool)] {
            let fd = try #require(pool.region.shared).fd
            #expect(Self.writableMappingError(fd) == EPERM, "through the owner's own descriptor")
            let reopened = open("/proc/self/fd/\(fd)", O_RDWR | O_CLOEXEC)
            if reopened >= 0 {  // privileged (root or CAP_DAC_OVERRIDE): the case the seal is for
                defer { close(reopened) }
                #expect(Self.writableMappingError(reopened) == EPERM, "through a descriptor re-opened via /proc")
                #expect(write(reopened, [UInt8(1)], 1) == -1 && errno == EPERM)
            } else {
                #expect(errno == EACCES, "unprivileged: the file mode already refuses read-write")
            }
        }
        // The owner's mapping is still writable, and pulls from it work.
        try PeerLimitTests.pullOne(pair, into: pair.decoder, reqID: 1)
        try pair.finish()
    }

    @Test func poolsOpenToPushesStayMappableForWriting() throws {
        let pair = try LinkedPair(remoteAccessible: true)
        let pool = try #require(try pair.prompt.cacheManager.resources.devicePool)
        let fd = try #require(pool.region.shared).fd
        #expect(Self.writableMappingError(fd) == nil)
        try pair.finish()
    }
}
