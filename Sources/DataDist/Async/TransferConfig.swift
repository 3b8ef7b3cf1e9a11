/// One destination of `transferCacheAsync` by raw addresses: the peer's memory at `destinationAddresses`,
/// two addresses (K, V) per layer sent, in layer order. The addresses must lie inside caches of the peer that
/// accept pushes (the peer checks); for a contiguous destination and a batch index other than 0 the caller
/// offsets them to the slot.
public struct TransferConfig: Sendable, Hashable {
    public var destinationClusterID: UInt64
    public var destinationAddresses: [UInt]
    /// The source layers to send; nil: all of them.
    public var sourceLayers: Range<Int>?
    public var sourceBatchIndex: Int

    public init(
        destinationClusterID: UInt64, destinationAddresses: [UInt], sourceLayers: Range<Int>? = nil,
        sourceBatchIndex: Int = 0
    ) {
        self.destinationClusterID = destinationClusterID
        self.destinationAddresses = destinationAddresses
        self.sourceLayers = sourceLayers
        self.sourceBatchIndex = sourceBatchIndex
    }
}

/// One destination of `transferCacheAsync` by key (remote-cache-accessible mode): source layer
/// `sourceLayers.lowerBound + i` goes to destination layer `destinationLayers.lowerBound + i`.
public struct TransferWithCacheKeyConfig: Sendable, Hashable {
    /// Where the layers go: a slot of a remote cache, or the remote blocks cache of a model.
    public enum Destination: Sendable, Hashable {
        case slot(CacheKeyByIdAndIndex)
        case blocks(BlocksCacheKey)
    }

    public var destination: Destination
    public var sourceLayers: Range<Int>
    public var destinationLayers: Range<Int>
    /// The source batch slot (contiguous sources only).
    public var sourceBatchIndex: Int

    public init(
        key: CacheKeyByIdAndIndex, sourceLayers: Range<Int>, destinationLayers: Range<Int>, sourceBatchIndex: Int = 0
    ) {
        self.destination = .slot(key)
        self.sourceLayers = sourceLayers
        self.destinationLayers = destinationLayers
        self.sourceBatchIndex = sourceBatchIndex
    }

    public init(key: BlocksCacheKey, sourceLayers: Range<Int>, destinationLayers: Range<Int>) {
        self.destination = .blocks(key)
        self.sourceLayers = sourceLayers
        self.destinationLayers = destinationLayers
        self.sourceBatchIndex = 0
    }

    /// The cluster the layers go to (the key's).
    public var destinationClusterID: UInt64 {
        switch destination {
        case .slot(let key): key.clusterID
        case .blocks(let key): key.clusterID
        }
    }
}
