import LinkLayer

/// Pulls and pushes between linked clusters; the `Requester` carries them out.
extension CacheManager {
    /// Pulls the slot bound to `key` on cluster `key.promptClusterID` into batch slot `batchIndex` of `cache`.
    /// `size` -1 pulls one whole local slot; `layers` pulls only some layers.
    public func pullCache(
        _ key: CacheKey, into cache: Cache, batchIndex: Int = 0, size: Int = -1, layers: LayerRange? = nil
    ) throws(LLMError) {
        try resources.gate(.pullCache)
        try resources.issuer.admit(cache, "cache", in: "pullCache")
        guard !resources.config.enableRemoteCacheAccessible else {
            throw .paramInvalid("with enableRemoteCacheAccessible, pullCache takes a CacheKeyByIdAndIndex, not \(key)")
        }
        guard (key.reqID != .max) != (key.prefixID != .max) else {
            throw .paramInvalid("pullCache key \(key) needs exactly one of reqID and prefixID")
        }
        try requester.pullSlot(
            .key(reqID: key.reqID, prefixID: key.prefixID, modelID: key.modelID), from: key.promptClusterID,
            into: cache, batchIndex: batchIndex, size: size, layers: layers)
    }

    /// Pulls slot `key.batchIndex` of cache `key.cacheID` on cluster `key.clusterID`. If a request key is bound to
    /// that slot, the pull consumes it.
    public func pullCache(
        _ key: CacheKeyByIdAndIndex, into cache: Cache, batchIndex: Int = 0, size: Int = -1, layers: LayerRange? = nil
    ) throws(LLMError) {
        try resources.gate(.pullCache)
        try resources.issuer.admit(cache, "cache", in: "pullCache")
        try requester.pullSlot(
            .slot(cacheID: key.cacheID, batchIndex: key.batchIndex), from: key.clusterID, into: cache,
            batchIndex: batchIndex, size: size, layers: layers)
    }

    /// Pulls each `pulls[i].key` into slot `pulls[i].batchIndex` of `pulls[i].cache`, as
    /// `pullCache(_:into:batchIndex:)` does for a whole slot, resolving all keys of a cluster in one round trip.
    ///
    /// All or nothing: every element is checked here first; each owner checks its whole group under one lock and
    /// grants all of it or none (refusing with the first bad element, named `pulls[i]`); if any group is refused
    /// or a copy fails, the keys already granted are given back. Request keys are consumed by a successful call,
    /// prefix keys never. Empty batches, repeated keys and two pulls into one local slot are refused.
    public func pullCaches(_ pulls: [CachePull]) throws(LLMError) {
        try resources.gate(.pullCache)
        for (index, pull) in pulls.enumerated() {
            try resources.issuer.admit(pull.cache, "pulls[\(index)].cache", in: "pullCaches")
        }
        try BatchRequester(requester: requester).pullCaches(pulls)
    }

    /// Pulls blocks `srcBlocks[i]` of the peer's blocks cache bound to `key.modelID` into blocks `dstBlocks[i]` of
    /// `cache`. Never consumes anything.
    public func pullBlocks(
        _ key: BlocksCacheKey, into cache: Cache, srcBlocks: [Int], dstBlocks: [Int], layers: LayerRange? = nil
    ) throws(LLMError) {
        try resources.gate(.pullBlocks)
        try resources.issuer.admit(cache, "cache", in: "pullBlocks")
        try requester.transferBlocks(
            .blocks(modelID: key.modelID), cluster: key.clusterID, local: cache, remoteBlocks: srcBlocks,
            localBlocks: dstBlocks, layers: layers, push: false)
    }

    /// Writes batch slot `srcBatchIndex` of `cache` into slot `key.batchIndex` of the peer's cache `key.cacheID`.
    /// Needs `enableRemoteCacheAccessible` on both sides; never consumes keys.
    public func pushCache(
        to key: CacheKeyByIdAndIndex, from cache: Cache, srcBatchIndex: Int = 0, layers: LayerRange? = nil,
        size: Int = -1
    ) throws(LLMError) {
        try resources.gate(.pushCache)
        try resources.issuer.admit(cache, "cache", in: "pushCache")
        try requester.pushSlot(to: key, from: cache, srcBatchIndex: srcBatchIndex, layers: layers, size: size)
    }

    /// Writes blocks `srcBlocks[i]` of `cache` into blocks `dstBlocks[i]` of the peer's blocks cache bound to
    /// `key.modelID`. Needs `enableRemoteCacheAccessible` on both sides.
    public func pushBlocks(
        to key: BlocksCacheKey, from cache: Cache, srcBlocks: [Int], dstBlocks: [Int], layers: LayerRange? = nil
    ) throws(LLMError) {
        try resources.gate(.pushBlocks)
        try resources.issuer.admit(cache, "cache", in: "pushBlocks")
        try requester.transferBlocks(
            .blocks(modelID: key.modelID), cluster: key.clusterID, local: cache, remoteBlocks: dstBlocks,
            localBlocks: srcBlocks, layers: layers, push: true)
    }
}
