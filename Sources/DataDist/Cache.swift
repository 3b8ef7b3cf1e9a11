/// A cache: `desc.numTensors` tensors whose addresses a framework may wrap without copying.
///
/// A cache returned by a `CacheManager` belongs to the instance that issued it, and to that initialisation of
/// it: every operation taking a `Cache` refuses, with `.paramInvalid`, one issued by another `LLMDataDist`
/// instance or by this one before its last `finalize` and `initialize` (its id may name a different cache now).
/// A cache built with `init(cacheID:desc:tensorAddresses:isBlocksCache:)` carries no issuer: any instance takes
/// it as naming its own cache `cacheID`, as before. Two caches are equal when every field and the issuer are
/// equal, so an issued cache never equals one from another instance or initialisation, nor a hand-built one.
public struct Cache: Sendable, Hashable {
    public let cacheID: Int64
    public let desc: CacheDesc
    /// One address per tensor.
    public let tensorAddresses: [UInt]
    public let isBlocksCache: Bool
    /// The instance and initialisation that issued this cache; nil when built by hand.
    let issuer: CacheIssuer?

    /// A cache with no issuer: it names cache `cacheID` of whichever instance it is given to.
    public init(cacheID: Int64, desc: CacheDesc, tensorAddresses: [UInt], isBlocksCache: Bool) {
        self.init(
            cacheID: cacheID, desc: desc, tensorAddresses: tensorAddresses, isBlocksCache: isBlocksCache, issuer: nil)
    }

    init(cacheID: Int64, desc: CacheDesc, tensorAddresses: [UInt], isBlocksCache: Bool, issuer: CacheIssuer?) {
        self.cacheID = cacheID
        self.desc = desc
        self.tensorAddresses = tensorAddresses
        self.isBlocksCache = isBlocksCache
        self.issuer = issuer
    }

    /// A host blocks cache over caller memory, only for `swapBlocks` (id -1, not registered, no issuer).
    public static func createCPUCache(_ desc: CacheDesc, addresses: [UInt]) throws(LLMError) -> Cache {
        guard desc.placement == .host else {
            throw .paramInvalid("createCPUCache needs desc.placement == .host, got .\(desc.placement)")
        }
        _ = try desc.validatedCallerMemory(at: addresses, operation: "createCPUCache")
        return Cache(cacheID: -1, desc: desc, tensorAddresses: addresses, isBlocksCache: true)
    }
}

/// Which `LLMDataDist` instance, and which of its initialisations, issued a `Cache`.
struct CacheIssuer: Sendable, Hashable {
    /// The instance's serial, unique in the process.
    let instance: UInt64
    /// Which `initialize` of that instance (1 for the first).
    let generation: UInt64

    /// Refuses `cache` unless it carries no issuer or this one. `argument` names the parameter it came in.
    @inline(__always)
    func admit(_ cache: Cache, _ argument: @autoclosure () -> String, in operation: @autoclosure () -> String)
        throws(LLMError)
    {
        if let issuer = cache.issuer, issuer != self { throw refusal(of: cache, argument(), operation()) }
    }

    private func refusal(of cache: Cache, _ argument: String, _ operation: String) -> LLMError {
        let whose =
            cache.issuer?.instance == instance
            ? "before this instance was last initialized (it was finalized since)"
            : "by another LLMDataDist instance"
        return .paramInvalid(
            "\(operation) \(argument): cache \(cache.cacheID) was issued \(whose); a cache acts only on the instance that allocated or registered it"
        )
    }
}
