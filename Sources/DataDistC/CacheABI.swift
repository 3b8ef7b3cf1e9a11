import CDataDist
import DataDist

// The cache handle functions of datadist.h.

@_cdecl("datadist_cache_release")
public func datadistCacheRelease(_ cache: OpaquePointer?) -> UInt32 {
    abiCall { () throws(LLMError) in try Handles.release(cache, CacheHandle.self, "cache") }
}

@_cdecl("datadist_cache_id")
public func datadistCacheID(_ cache: OpaquePointer?, _ out: UnsafeMutablePointer<Int64>?) -> UInt32 {
    abiCall { () throws(LLMError) in
        let out = try requireOutput(out, "out")
        out.pointee = try Handles.lookup(cache, CacheHandle.self, "cache").cache.cacheID
    }
}

@_cdecl("datadist_cache_is_blocks")
public func datadistCacheIsBlocks(_ cache: OpaquePointer?, _ out: UnsafeMutablePointer<Bool>?) -> UInt32 {
    abiCall { () throws(LLMError) in
        let out = try requireOutput(out, "out")
        out.pointee = try Handles.lookup(cache, CacheHandle.self, "cache").cache.isBlocksCache
    }
}

@_cdecl("datadist_cache_num_tensors")
public func datadistCacheNumTensors(_ cache: OpaquePointer?, _ out: UnsafeMutablePointer<UInt32>?) -> UInt32 {
    abiCall { () throws(LLMError) in
        let out = try requireOutput(out, "out")
        out.pointee = UInt32(clamping: try Handles.lookup(cache, CacheHandle.self, "cache").cache.tensorAddresses.count)
    }
}

@_cdecl("datadist_cache_tensor_addrs")
public func datadistCacheTensorAddrs(_ cache: OpaquePointer?, _ addrs: UnsafeMutablePointer<UInt64>?, _ capacity: Int)
    -> UInt32
{
    abiCall { () throws(LLMError) in
        let addresses = try Handles.lookup(cache, CacheHandle.self, "cache").cache.tensorAddresses
        let capacity = try CValues.count(capacity, "capacity")
        guard capacity > 0 else { return }
        let out = try requireOutput(addrs, "addrs")
        for index in 0..<min(capacity, addresses.count) { out[index] = UInt64(addresses[index]) }
    }
}

@_cdecl("datadist_create_cpu_cache")
public func datadistCreateCPUCache(
    _ desc: UnsafePointer<datadist_cache_desc>?, _ addrs: UnsafePointer<UInt64>?, _ count: Int,
    _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> UInt32 {
    abiCall { () throws(LLMError) in
        let out = try requireOutput(out, "out")
        let cache = try Cache.createCPUCache(
            try CValues.desc(desc, "desc"), addresses: try CValues.addresses(addrs, count, "addrs"))
        out.pointee = Handles.register(CacheHandle(cache))
    }
}
