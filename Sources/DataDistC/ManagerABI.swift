import CDataDist
import DataDist

// The cache manager functions of datadist.h, one per CacheManager method.

@inline(__always)
private func manager(_ pointer: OpaquePointer?) throws(LLMError) -> ManagerHandle {
    try Handles.lookup(pointer, ManagerHandle.self, "manager")
}

@inline(__always)
private func cache(_ pointer: OpaquePointer?, _ argument: String) throws(LLMError) -> Cache {
    try Handles.lookup(pointer, CacheHandle.self, argument).cache
}

@_cdecl("datadist_allocate_cache")
public func datadistAllocateCache(
    _ manager: OpaquePointer?, _ desc: UnsafePointer<datadist_cache_desc>?, _ keys: UnsafePointer<datadist_cache_key>?,
    _ keyCount: Int, _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> UInt32 {
    abiCall { () throws(LLMError) in
        let out = try requireOutput(out, "out")
        let handle = try DataDistC.manager(manager)
        let desc = try CValues.desc(desc, "desc")
        let keys = try CValues.array(keys, keyCount, "keys").map(CValues.key)
        let result = try handle.run { manager throws(LLMError) in try manager.allocateCache(desc, keys: keys) }
        out.pointee = Handles.register(CacheHandle(result))
    }
}

@_cdecl("datadist_deallocate_cache")
public func datadistDeallocateCache(_ manager: OpaquePointer?, _ cache: OpaquePointer?) -> UInt32 {
    abiCall { () throws(LLMError) in
        let handle = try DataDistC.manager(manager)
        let cache = try DataDistC.cache(cache, "cache")
        try handle.run { manager throws(LLMError) in try manager.deallocateCache(cache) }
    }
}

@_cdecl("datadist_remove_cache_key")
public func datadistRemoveCacheKey(_ manager: OpaquePointer?, _ key: UnsafePointer<datadist_cache_key>?) -> UInt32 {
    abiCall { () throws(LLMError) in
        let handle = try DataDistC.manager(manager)
        let key = try CValues.key(key, "key")
        try handle.run { manager throws(LLMError) in try manager.removeCacheKey(key) }
    }
}

@_cdecl("datadist_copy_cache")
public func datadistCopyCache(
    _ manager: OpaquePointer?, _ dst: OpaquePointer?, _ src: OpaquePointer?, _ dstBatchIndex: UInt32,
    _ srcBatchIndex: UInt32, _ offset: UInt64, _ size: Int64
) -> UInt32 {
    abiCall { () throws(LLMError) in
        let handle = try DataDistC.manager(manager)
        let dst = try DataDistC.cache(dst, "dst")
        let src = try DataDistC.cache(src, "src")
        guard offset <= UInt64(Int.max) else { throw LLMError(.paramInvalid, "offset \(offset) exceeds Int.max") }
        try handle.run { manager throws(LLMError) in
            try manager.copyCache(
                dst: dst, src: src, dstBatchIndex: Int(dstBatchIndex), srcBatchIndex: Int(srcBatchIndex),
                offset: Int(offset), size: Int(size))
        }
    }
}

@_cdecl("datadist_pull_cache")
public func datadistPullCache(
    _ manager: OpaquePointer?, _ key: UnsafePointer<datadist_cache_key>?, _ cache: OpaquePointer?, _ batchIndex: UInt32,
    _ size: Int64, _ layers: UnsafePointer<datadist_layer_range>?
) -> UInt32 {
    abiCall { () throws(LLMError) in
        let handle = try DataDistC.manager(manager)
        let key = try CValues.key(key, "key")
        let cache = try DataDistC.cache(cache, "cache")
        let layers = try CValues.layers(layers, "layers")
        try handle.run { manager throws(LLMError) in
            try manager.pullCache(key, into: cache, batchIndex: Int(batchIndex), size: Int(size), layers: layers)
        }
    }
}

@_cdecl("datadist_pull_cache_by_id")
public func datadistPullCacheByID(
    _ manager: OpaquePointer?, _ key: UnsafePointer<datadist_cache_key_by_id>?, _ cache: OpaquePointer?,
    _ batchIndex: UInt32, _ size: Int64, _ layers: UnsafePointer<datadist_layer_range>?
) -> UInt32 {
    abiCall { () throws(LLMError) in
        let handle = try DataDistC.manager(manager)
        let key = try CValues.keyByID(key, "key")
        let cache = try DataDistC.cache(cache, "cache")
        let layers = try CValues.layers(layers, "layers")
        try handle.run { manager throws(LLMError) in
            try manager.pullCache(key, into: cache, batchIndex: Int(batchIndex), size: Int(size), layers: layers)
        }
    }
}

@_cdecl("datadist_push_cache")
public func datadistPushCache(
    _ manager: OpaquePointer?, _ key: UnsafePointer<datadist_cache_key_by_id>?, _ cache: OpaquePointer?,
    _ srcBatchIndex: UInt32, _ layers: UnsafePointer<datadist_layer_range>?, _ size: Int64
) -> UInt32 {
    abiCall { () throws(LLMError) in
        let handle = try DataDistC.manager(manager)
        let key = try CValues.keyByID(key, "key")
        let cache = try DataDistC.cache(cache, "cache")
        let layers = try CValues.layers(layers, "layers")
        try handle.run { manager throws(LLMError) in
            try manager.pushCache(
                to: key, from: cache, srcBatchIndex: Int(srcBatchIndex), layers: layers, size: Int(size))
        }
    }
}

@_cdecl("datadist_allocate_blocks_cache")
public func datadistAllocateBlocksCache(
    _ manager: OpaquePointer?, _ desc: UnsafePointer<datadist_cache_desc>?,
    _ key: UnsafePointer<datadist_blocks_cache_key>?, _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> UInt32 {
    abiCall { () throws(LLMError) in
        let out = try requireOutput(out, "out")
        let handle = try DataDistC.manager(manager)
        let desc = try CValues.desc(desc, "desc")
        let key = key == nil ? nil : try CValues.blocksKey(key, "key")
        let result = try handle.run { manager throws(LLMError) in try manager.allocateBlocksCache(desc, key: key) }
        out.pointee = Handles.register(CacheHandle(result))
    }
}

@_cdecl("datadist_deallocate_blocks_cache")
public func datadistDeallocateBlocksCache(_ manager: OpaquePointer?, _ cache: OpaquePointer?) -> UInt32 {
    abiCall { () throws(LLMError) in
        let handle = try DataDistC.manager(manager)
        let cache = try DataDistC.cache(cache, "cache")
        try handle.run { manager throws(LLMError) in try manager.deallocateBlocksCache(cache) }
    }
}

@_cdecl("datadist_pull_blocks")
public func datadistPullBlocks(
    _ manager: OpaquePointer?, _ key: UnsafePointer<datadist_blocks_cache_key>?, _ cache: OpaquePointer?,
    _ srcBlocks: UnsafePointer<Int64>?, _ srcCount: Int, _ dstBlocks: UnsafePointer<Int64>?, _ dstCount: Int,
    _ layers: UnsafePointer<datadist_layer_range>?
) -> UInt32 {
    abiCall { () throws(LLMError) in
        let handle = try DataDistC.manager(manager)
        let key = try CValues.blocksKey(key, "key")
        let cache = try DataDistC.cache(cache, "cache")
        let src = try CValues.blocks(srcBlocks, srcCount, "src_blocks")
        let dst = try CValues.blocks(dstBlocks, dstCount, "dst_blocks")
        let layers = try CValues.layers(layers, "layers")
        try handle.run { manager throws(LLMError) in
            try manager.pullBlocks(key, into: cache, srcBlocks: src, dstBlocks: dst, layers: layers)
        }
    }
}

@_cdecl("datadist_push_blocks")
public func datadistPushBlocks(
    _ manager: OpaquePointer?, _ key: UnsafePointer<datadist_blocks_cache_key>?, _ cache: OpaquePointer?,
    _ srcBlocks: UnsafePointer<Int64>?, _ srcCount: Int, _ dstBlocks: UnsafePointer<Int64>?, _ dstCount: Int,
    _ layers: UnsafePointer<datadist_layer_range>?
) -> UInt32 {
    abiCall { () throws(LLMError) in
        let handle = try DataDistC.manager(manager)
        let key = try CValues.blocksKey(key, "key")
        let cache = try DataDistC.cache(cache, "cache")
        let src = try CValues.blocks(srcBlocks, srcCount, "src_blocks")
        let dst = try CValues.blocks(dstBlocks, dstCount, "dst_blocks")
        let layers = try CValues.layers(layers, "layers")
        try handle.run { manager throws(LLMError) in
            try manager.pushBlocks(to: key, from: cache, srcBlocks: src, dstBlocks: dst, layers: layers)
        }
    }
}

@_cdecl("datadist_copy_blocks")
public func datadistCopyBlocks(
    _ manager: OpaquePointer?, _ cache: OpaquePointer?, _ src: UnsafePointer<Int64>?, _ dst: UnsafePointer<Int64>?,
    _ count: Int
) -> UInt32 {
    abiCall { () throws(LLMError) in
        let handle = try DataDistC.manager(manager)
        let cache = try DataDistC.cache(cache, "cache")
        let sources = try CValues.blocks(src, count, "src")
        let destinations = try CValues.blocks(dst, count, "dst")
        var copies: [Int: [Int]] = [:]
        for (source, destination) in zip(sources, destinations) { copies[source, default: []].append(destination) }
        try handle.run { manager throws(LLMError) in try manager.copyBlocks(cache, copies) }
    }
}

@_cdecl("datadist_swap_blocks")
public func datadistSwapBlocks(
    _ manager: OpaquePointer?, _ srcCache: OpaquePointer?, _ dstCache: OpaquePointer?, _ src: UnsafePointer<Int64>?,
    _ dst: UnsafePointer<Int64>?, _ count: Int
) -> UInt32 {
    abiCall { () throws(LLMError) in
        let handle = try DataDistC.manager(manager)
        let srcCache = try DataDistC.cache(srcCache, "src_cache")
        let dstCache = try DataDistC.cache(dstCache, "dst_cache")
        let sources = try CValues.blocks(src, count, "src")
        let destinations = try CValues.blocks(dst, count, "dst")
        var pairs: [Int: Int] = [:]
        for (index, (source, destination)) in zip(sources, destinations).enumerated() {
            guard pairs.updateValue(destination, forKey: source) == nil else {
                throw LLMError(.paramInvalid, "src[\(index)] = \(source) repeats an earlier source block")
            }
        }
        try handle.run { manager throws(LLMError) in try manager.swapBlocks(src: srcCache, dst: dstCache, pairs) }
    }
}

/// -1 (the default), 0 or 1.
private func remoteAccessible(_ value: Int32) throws(LLMError) -> Bool? {
    switch value {
    case -1: return nil
    case 0: return false
    case 1: return true
    default: throw LLMError(.paramInvalid, "remote_accessible \(value) is not -1 (default), 0 or 1")
    }
}

@_cdecl("datadist_register_cache")
public func datadistRegisterCache(
    _ manager: OpaquePointer?, _ desc: UnsafePointer<datadist_cache_desc>?, _ addrs: UnsafePointer<UInt64>?,
    _ addrCount: Int, _ keys: UnsafePointer<datadist_cache_key>?, _ keyCount: Int, _ remote: Int32,
    _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> UInt32 {
    abiCall { () throws(LLMError) in
        let out = try requireOutput(out, "out")
        let handle = try DataDistC.manager(manager)
        let desc = try CValues.desc(desc, "desc")
        let addresses = try CValues.addresses(addrs, addrCount, "addrs")
        let keys = try CValues.array(keys, keyCount, "keys").map(CValues.key)
        let remote = try remoteAccessible(remote)
        let result = try handle.run { manager throws(LLMError) in
            try manager.registerCache(desc, addresses: addresses, keys: keys, remoteAccessible: remote)
        }
        out.pointee = Handles.register(CacheHandle(result))
    }
}

@_cdecl("datadist_register_blocks_cache")
public func datadistRegisterBlocksCache(
    _ manager: OpaquePointer?, _ desc: UnsafePointer<datadist_cache_desc>?, _ addrs: UnsafePointer<UInt64>?,
    _ addrCount: Int, _ key: UnsafePointer<datadist_blocks_cache_key>?, _ remote: Int32,
    _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> UInt32 {
    abiCall { () throws(LLMError) in
        let out = try requireOutput(out, "out")
        let handle = try DataDistC.manager(manager)
        let desc = try CValues.desc(desc, "desc")
        let addresses = try CValues.addresses(addrs, addrCount, "addrs")
        let key = key == nil ? nil : try CValues.blocksKey(key, "key")
        let remote = try remoteAccessible(remote)
        let result = try handle.run { manager throws(LLMError) in
            try manager.registerBlocksCache(desc, addresses: addresses, key: key, remoteAccessible: remote)
        }
        out.pointee = Handles.register(CacheHandle(result))
    }
}

@_cdecl("datadist_unregister_cache")
public func datadistUnregisterCache(_ manager: OpaquePointer?, _ cacheID: Int64) -> UInt32 {
    abiCall { () throws(LLMError) in
        let handle = try DataDistC.manager(manager)
        try handle.run { manager throws(LLMError) in try manager.unregisterCache(cacheID) }
    }
}

@_cdecl("datadist_audit_cache_manager")
public func datadistAuditCacheManager(_ manager: OpaquePointer?, _ out: UnsafeMutablePointer<datadist_audit>?)
    -> UInt32
{
    abiCall { () throws(LLMError) in
        let out = try requireOutput(out, "out")
        let audit = try DataDistC.manager(manager).run { manager in manager.audit() }
        out.pointee = datadist_audit(
            live_caches: Int64(audit.liveCaches), bound_keys: Int64(audit.boundKeys),
            pages_in_use: Int64(audit.pagesInUse), pages_free: Int64(audit.pagesFree),
            pinned_by_peers: Int64(audit.pinnedByPeers), orphans: Int64(audit.orphans),
            expired_keys: Int64(audit.expiredKeys), is_clean: audit.isClean)
    }
}
