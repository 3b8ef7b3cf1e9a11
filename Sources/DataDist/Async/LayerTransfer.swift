/// One validated config of a `transferCacheAsync` task: where each of its source layers goes.
struct LayerTransfer: Sendable {
    enum Destination: Sendable {
        /// Raw addresses, 2 per layer (K, V) from `sourceLayers.lowerBound` on.
        case addresses([UInt])
        /// A remote slot; source layer `l` goes to layer `firstLayer + (l - sourceLayers.lowerBound)`.
        case slot(CacheKeyByIdAndIndex, firstLayer: Int)
        /// A remote blocks cache, mapped as `.slot`.
        case blocks(BlocksCacheKey, firstLayer: Int)
    }

    let cluster: UInt64
    let sourceLayers: Range<Int>
    let destination: Destination
    let sourceBatchIndex: Int

    /// The destination layer of source layer `layer` (the relative mapping: spec §14 #30).
    func destinationLayer(of layer: Int, first: Int) -> Int { first + (layer - sourceLayers.lowerBound) }
}

/// The block lists of a task, checked against its source.
struct BlockMapping: Sendable {
    /// Source blocks (blocks sources; nil: every block, to the same index).
    let source: [Int]?
    /// Destination blocks (nil: a contiguous destination, or `source`).
    let destination: [Int]?
    /// Bytes of a destination block when a contiguous source goes to blocks.
    let destinationBlockBytes: Int?
}
