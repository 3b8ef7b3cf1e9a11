/// Client → server: open a link.
package struct Hello: Sendable, Hashable {
    package var clusterID: UInt64
    /// The cluster id the client expects the server to have.
    package var expectedClusterID: UInt64
    package var remoteCacheAccessible: Bool
    package var bootID: String
    /// The client's abstract Unix socket: the server connects to it to exchange regions.
    package var unixSocket: String

    /// The longest encoded hello: two ids, a flag and two strings of the longest length.
    package static let maxPayload = 8 + 8 + 1 + 2 * (2 + WireReader.maxStringLength)

    package init(
        clusterID: UInt64, expectedClusterID: UInt64, remoteCacheAccessible: Bool, bootID: String, unixSocket: String
    ) {
        self.clusterID = clusterID
        self.expectedClusterID = expectedClusterID
        self.remoteCacheAccessible = remoteCacheAccessible
        self.bootID = bootID
        self.unixSocket = unixSocket
    }

    package func encoded() -> [UInt8] {
        var writer = WireWriter()
        writer.u64(clusterID)
        writer.u64(expectedClusterID)
        writer.bool(remoteCacheAccessible)
        writer.string(bootID)
        writer.string(unixSocket)
        return writer.bytes
    }

    package init(payload: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(payload[...])
        clusterID = try reader.u64()
        expectedClusterID = try reader.u64()
        remoteCacheAccessible = try reader.bool()
        bootID = try reader.string()
        unixSocket = try reader.string()
        try reader.expectEnd()
    }
}

/// A message that is only a cluster id (welcome, unlink).
package struct ClusterIdentifier: Sendable, Hashable {
    package var value: UInt64

    package init(_ value: UInt64) { self.value = value }

    package func encoded() -> [UInt8] {
        var writer = WireWriter()
        writer.u64(value)
        return writer.bytes
    }

    package init(payload: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(payload[...])
        value = try reader.u64()
        try reader.expectEnd()
    }
}
