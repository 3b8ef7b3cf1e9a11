import DeviceRuntime
import LinkLayer
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The shared-memory data plane over a real memfd mapping: moves resolve to the right addresses in both
/// directions, a move outside a granted extent or a published region is a protocol violation that copies
/// nothing, a closed link copies nothing, and the caller's copy failure comes back as its own.
@Suite struct SharedMemoryDataPlaneTests {
    struct CopyFailed: Error, Equatable {}

    /// A 64 KiB size-sealed memfd (as a pool's is) published as region 3, mapped writable, and the data plane
    /// over it.
    static func plane() throws -> (SharedMemoryDataPlane, PeerMapping) {
        let fd = try RegionExchangeTests.memfd(size: 64 << 10)
        let mapping = try PeerMapping(
            fd: fd, descriptor: RegionDescriptor(regionID: 3, kind: .host, size: 64 << 10), writable: true)
        return (SharedMemoryDataPlane(peerClusterID: 7, mappings: [mapping]), mapping)
    }

    /// Copies each segment with `memcpy`.
    static func copy(_ segments: [CopySegment]) {
        for segment in segments {
            memcpy(
                UnsafeMutableRawPointer(bitPattern: segment.destination)!,
                UnsafeRawPointer(bitPattern: segment.source)!,
                segment.count)
        }
    }

    @Test func readsAndWritesLandAtTheGrantedOffsets() throws {
        let (plane, mapping) = try Self.plane()
        #expect(plane.remoteRegions == [mapping.descriptor])
        let local = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 16)
        defer { local.deallocate() }
        for index in 0..<128 { local[index] = UInt8(index) }
        let extent = Grant.Extent(regionID: 3, offset: 4096, length: 128)
        let base = UInt(bitPattern: local.baseAddress)
        try plane.transfer([ExtentMove(local: base, remote: extent, count: 128)], .write) { Self.copy($0) }
        let remote = UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: mapping.base + 4096), count: 128)
        #expect(Array(remote) == (0..<128).map { UInt8($0) })
        try plane.transfer([ExtentMove(local: base + 128, remote: extent, count: 64)], .read) { Self.copy($0) }
        #expect(Array(local[128..<192]) == (0..<64).map { UInt8($0) })
    }

    @Test func movesOutsideTheGrantOrTheRegionAreRefusedBeforeAnyCopy() throws {
        let (plane, _) = try Self.plane()
        let outside: [ExtentMove] = [
            // beyond the grant
            ExtentMove(local: 0x1000, remote: .init(regionID: 3, offset: 0, length: 64), count: 65),
            // past the region
            ExtentMove(local: 0x1000, remote: .init(regionID: 3, offset: (64 << 10) - 8, length: 64), count: 16),
            // unpublished region
            ExtentMove(local: 0x1000, remote: .init(regionID: 4, offset: 0, length: 64), count: 8),
            // overflowing offset
            ExtentMove(local: 0x1000, remote: .init(regionID: 3, offset: .max, length: .max), count: 8),
        ]
        for move in outside {
            var copied = false
            do {
                try plane.transfer([move], .read) { _ in copied = true }
                Issue.record("\(move) was moved")
            } catch {
                guard case .link(let failure) = error else {
                    Issue.record("\(error)")
                    continue
                }
                #expect(failure.kind == .protocolViolation && failure.message.contains("outside what it shared"))
            }
            #expect(!copied)
        }
    }

    @Test func aClosedLinkMovesNothingAndCopyFailuresAreTheCallers() throws {
        let (plane, _) = try Self.plane()
        let move = ExtentMove(local: 0x1000, remote: .init(regionID: 3, offset: 0, length: 64), count: 8)
        do {
            try plane.transfer([move], .read) { (_: [CopySegment]) throws(CopyFailed) in throw CopyFailed() }
            Issue.record("the copy's failure was lost")
        } catch {
            guard case .copy(let failure) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(failure == CopyFailed())
        }
        plane.close(.peerClosed)
        var copied = false
        do {
            try plane.transfer([move], .read) { _ in copied = true }
            Issue.record("moved over a closed link")
        } catch {
            guard case .link(let failure) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(failure.kind == .closed && failure.message.contains("peer closed the connection"))
        }
        #expect(!copied)
    }
}
