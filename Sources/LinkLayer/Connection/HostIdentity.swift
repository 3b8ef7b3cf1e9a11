internal import Glibc

/// Facts about this host that a link handshake compares.
package enum HostIdentity {
    /// The kernel's boot id: equal on both ends only when they run on the same booted host.
    package static let bootID: String = {
        let fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "unknown" }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, 64) }
        guard count > 0 else { return "unknown" }
        return String(decoding: buffer.prefix(count), as: UTF8.self).trimmingWhitespace
    }()

    package static var processID: Int32 { getpid() }
}

extension String {
    package var trimmingWhitespace: String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
