/// An `llm_datadist` operation whose availability depends on the Atlas product.
///
/// The raw value is the operation's name in the Python API (`LLMDataDist` and `CacheManager`).
public enum Operation: String, CaseIterable, Sendable, Codable {
    // CacheManager operations that own memory (deprecated in the current CANN docs)
    case allocateCache = "allocate_cache"
    case deallocateCache = "deallocate_cache"
    case removeCacheKey = "remove_cache_key"
    case copyCache = "copy_cache"
    case allocateBlocksCache = "allocate_blocks_cache"
    case deallocateBlocksCache = "deallocate_blocks_cache"
    case copyBlocks = "copy_blocks"
    case swapBlocks = "swap_blocks"
    // Transfers
    case pullCache = "pull_cache"
    case pullBlocks = "pull_blocks"
    case pushCache = "push_cache"
    case pushBlocks = "push_blocks"
    case transferCacheAsync = "transfer_cache_async"
    // Registration of caller-owned memory
    case registerCache = "register_cache"
    case registerBlocksCache = "register_blocks_cache"
    case unregisterCache = "unregister_cache"
    case remapRegisteredMemory = "remap_registered_memory"
    // LLMDataDist lifecycle and links
    case initialize = "init"
    case finalize = "finalize"
    case linkClusters = "link_clusters"
    case unlinkClusters = "unlink_clusters"
    case switchRole = "switch_role"
    case link = "link"
    case unlink = "unlink"
    case queryRegisterMemStatus = "query_register_mem_status"
}

extension Operation {
    /// Which row of the vendor's support tables governs an operation.
    enum Group: Sendable {
        /// The CacheManager operations of the seed page (`remove_cache_key.md`), deprecated at HEAD.
        case cacheManager
        /// Operations every current product table lists for 950, A3 and the two A2 products.
        case core
        /// Operations the current docs refuse on Ascend 950 (`link`, `unlink`, …).
        case notOn950
    }

    var group: Group {
        switch self {
        case .allocateCache, .deallocateCache, .removeCacheKey, .copyCache, .allocateBlocksCache,
            .deallocateBlocksCache, .copyBlocks, .swapBlocks:
            .cacheManager
        case .pullCache, .pullBlocks, .pushCache, .pushBlocks, .transferCacheAsync, .registerCache,
            .registerBlocksCache, .unregisterCache, .initialize, .finalize, .linkClusters, .unlinkClusters,
            .switchRole:
            .core
        case .remapRegisteredMemory, .link, .unlink, .queryRegisterMemStatus:
            .notOn950
        }
    }
}
