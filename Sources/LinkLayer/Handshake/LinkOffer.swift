/// What one side brings to a link: who it is, whether peers may write its caches, the regions it publishes, the
/// transports it lets the link use, and the secret a peer must prove (nil: any peer may link).
package struct LinkOffer: Sendable {
    package var clusterID: UInt64
    package var remoteCacheAccessible: Bool
    package var regions: [PublishedRegion]
    package var transport: TransportChoice
    package var secret: LinkSecret?

    package init(
        clusterID: UInt64, remoteCacheAccessible: Bool, regions: [PublishedRegion],
        transport: TransportChoice = .sharedMemory, secret: LinkSecret? = nil
    ) {
        self.clusterID = clusterID
        self.remoteCacheAccessible = remoteCacheAccessible
        self.regions = regions
        self.transport = transport
        self.secret = secret
    }

    /// The regions a peer on this host can map (those with a memfd).
    var memfdRegions: [PublishedRegion] { regions.filter { $0.fd >= 0 } }
}

/// A link whose handshake is done, before it is registered and started: the control socket (with any bytes
/// already read past the handshake) and the data plane over the peer's regions.
package struct EstablishedLink: Sendable {
    package var remoteClusterID: UInt64
    package var socket: Socket
    package var inbox: FrameInbox
    package var dataPlane: any DataPlane
}
