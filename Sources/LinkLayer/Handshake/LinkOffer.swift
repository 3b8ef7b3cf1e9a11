/// What one side brings to a link: who it is, whether peers may write its caches, and the regions it publishes.
package struct LinkOffer: Sendable {
    package var clusterID: UInt64
    package var remoteCacheAccessible: Bool
    package var regions: [PublishedRegion]

    package init(clusterID: UInt64, remoteCacheAccessible: Bool, regions: [PublishedRegion]) {
        self.clusterID = clusterID
        self.remoteCacheAccessible = remoteCacheAccessible
        self.regions = regions
    }
}

/// A link whose handshake is done, before it is registered and started: the control socket (with any bytes
/// already read past the handshake) and the data plane over the peer's regions.
package struct EstablishedLink: Sendable {
    package var remoteClusterID: UInt64
    package var socket: Socket
    package var inbox: FrameInbox
    package var dataPlane: SharedMemoryDataPlane
}
