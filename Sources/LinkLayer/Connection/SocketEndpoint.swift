internal import Glibc

/// An IPv4 or IPv6 address and port, as the link layer connects and listens.
package struct SocketEndpoint: Sendable, Hashable, CustomStringConvertible {
    package var host: String
    package var port: UInt16

    package init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// True for a dotted-quad IPv4 or a textual IPv6 address, as `inet_pton` reads them (no host names).
    package static func isNumericAddress(_ host: String) -> Bool {
        guard !host.isEmpty, !host.utf8.contains(0) else { return false }
        var storage = in6_addr()  // large enough for either family
        let family = host.contains(":") ? AF_INET6 : AF_INET
        return withUnsafeMutableBytes(of: &storage) { buffer in
            host.withCString { inet_pton(family, $0, buffer.baseAddress) == 1 }
        }
    }

    package var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
