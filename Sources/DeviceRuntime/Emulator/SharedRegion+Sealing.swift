internal import CLinuxSupport

#if canImport(Glibc)
import Glibc
#endif

extension SharedRegion {
    /// Seals the region's descriptor for good, once its owner knows whether other processes may write it:
    /// unless `peersMayWrite`, no writable mapping can be made of it any more, through any descriptor (a peer
    /// with the privilege to re-open its read-only copy for writing, via `/proc`, included), while the owner's
    /// own mapping stays writable. Then no seal can be added or removed. Call once, before the descriptor is
    /// handed to anyone.
    public func finishSealing(peersMayWrite: Bool) throws(DeviceError) {
        guard datadist_memfd_seal_final(fd, peersMayWrite ? 0 : 1) == 0 else {
            throw DeviceError(
                .system(errno), "sealing memfd \(fd)\(peersMayWrite ? "" : " against new writable mappings") failed")
        }
    }
}
