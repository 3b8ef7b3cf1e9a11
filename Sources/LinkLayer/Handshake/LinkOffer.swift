/// What one side brings to a link: who it is, whether peers may write its caches, the regions it publishes, the
/// transports it lets the link use, and the secret a peer must prove (nil: any peer may link).
package struct LinkOffer: Sendable {
    package var clusterID: UInt64
    package var remoteCacheAccessible: Bool
    package var regions: [PublishedRegion]
    package var transport: TransportChoice
    package var secret: LinkSecret?
    /// How this side shares its regions without a memfd (device pools of the ACL backend) with a peer on this
    /// host, and imports the peer's; nil: it does not.
    package var deviceSharing: DeviceSharing?

    package init(
        clusterID: UInt64, remoteCacheAccessible: Bool, regions: [PublishedRegion],
        transport: TransportChoice = .sharedMemory, secret: LinkSecret? = nil, deviceSharing: DeviceSharing? = nil
    ) {
        self.deviceSharing = deviceSharing
        self.clusterID = clusterID
        self.remoteCacheAccessible = remoteCacheAccessible
        self.regions = regions
        self.transport = transport
        self.secret = secret
    }

    /// The regions a peer on this host can map (those with a memfd).
    var memfdRegions: [PublishedRegion] { regions.filter { $0.fd >= 0 } }

    /// Whether this side shares regions by IPC key with a peer on this host (and imports the peer's).
    var sharesKeys: Bool { deviceSharing != nil }

    /// The regions a peer on this host can only import by key: device pools without a memfd (IPC keys name
    /// device memory only; a host pool without a memfd reaches a peer over UCX alone).
    var keyRegions: [PublishedRegion] {
        regions.filter {
            $0.fd < 0 && $0.base != nil && !$0.isCallerMemory && $0.descriptor.kind == .device
        }
    }
}

/// A link whose handshake is done, before it is registered and started: the control socket (with any bytes
/// already read past the handshake) and the data plane over the peer's regions.
package struct EstablishedLink: Sendable {
    package var remoteClusterID: UInt64
    package var socket: Socket
    package var inbox: FrameInbox
    package var dataPlane: any DataPlane
    /// Where the link's handshake met (its Unix socket's name) and which side this is, for a direct route to the
    /// other side if it lives in this process too; nil over UCX's control connection.
    package var pairing: DirectPairing? = nil
}
