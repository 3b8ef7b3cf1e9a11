/// One pull of a batch: the request or prefix key to pull and the local slot it lands in.
public struct CachePull: Sendable, Hashable {
    /// The key on cluster `key.promptClusterID`: exactly one of `reqID` and `prefixID` set.
    public var key: CacheKey
    /// The local contiguous cache the slot lands in.
    public var cache: Cache
    /// The batch slot of `cache` that receives the whole remote slot.
    public var batchIndex: Int

    public init(_ key: CacheKey, into cache: Cache, batchIndex: Int = 0) {
        self.key = key
        self.cache = cache
        self.batchIndex = batchIndex
    }
}
