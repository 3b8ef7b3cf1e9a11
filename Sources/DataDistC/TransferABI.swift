import CDataDist
import DataDist

// The layer-wise asynchronous push of datadist.h: transfer_cache_async over a C callback, and its task handle.

/// The caller's synchronize callback and its user data. `release` runs when the last reference goes: once no
/// synchronize call can start or is still running (an error return drops it before the call returns).
private final class CallbackSynchronizer: @unchecked Sendable {
    // @unchecked: the pointers are the caller's; the ABI's contract is that they stay valid until `release`.
    let synchronize: datadist_layer_sync_fn?
    let release: datadist_release_fn?
    let userData: UnsafeMutableRawPointer?

    init(_ synchronize: datadist_layer_sync_fn?, _ release: datadist_release_fn?, _ userData: UnsafeMutableRawPointer?)
    {
        self.synchronize = synchronize
        self.release = release
        self.userData = userData
    }

    deinit { release?(userData) }

    /// A `LayerSynchronizer` calling the callback on a queue of its own (it may block).
    func synchronizer() throws(LLMError) -> BlockingLayerSynchronizer {
        guard let synchronize else { throw LLMError(.paramInvalid, "synchronize is NULL") }
        return BlockingLayerSynchronizer { [self] layer, timeout in
            synchronize(userData, UInt32(clamping: layer), milliseconds(timeout))
        }
    }
}

/// -1 for no limit.
private func milliseconds(_ duration: Duration?) -> Int64 {
    guard let duration else { return -1 }
    let (seconds, attoseconds) = duration.components
    let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1000)
    return overflow ? .max : whole + attoseconds / 1_000_000_000_000_000
}

private func range(_ start: Int64, _ stop: Int64, _ argument: String) throws(LLMError) -> Range<Int> {
    guard start >= 0, start < stop, stop <= Int64(UInt32.max) else {
        throw LLMError(.paramInvalid, "\(argument) [\(start), \(stop)) needs 0 <= start < stop <= \(UInt32.max)")
    }
    return Int(start)..<Int(stop)
}

private func blockLists(
    _ src: UnsafePointer<Int64>?, _ srcCount: Int, _ dst: UnsafePointer<Int64>?, _ dstCount: Int
) throws(LLMError) -> (source: [Int]?, destination: [Int]?) {
    let source = try CValues.blocks(src, srcCount, "src_blocks")
    let destination = try CValues.blocks(dst, dstCount, "dst_blocks")
    return (source.isEmpty ? nil : source, destination.isEmpty ? nil : destination)
}

/// The common prologue: the callback holder first (so `release` runs on every path), then the handles.
private func start(
    _ synchronize: datadist_layer_sync_fn?, _ release: datadist_release_fn?, _ userData: UnsafeMutableRawPointer?,
    _ manager: OpaquePointer?, _ cache: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?,
    _ body: (CacheManager, Cache, BlockingLayerSynchronizer) throws(LLMError) -> (CacheTask, Int)
) -> UInt32 {
    let callback = CallbackSynchronizer(synchronize, release, userData)
    return abiCall { () throws(LLMError) in
        let out = try requireOutput(out, "out")
        let handle = try Handles.lookup(manager, ManagerHandle.self, "manager")
        let source = try Handles.lookup(cache, CacheHandle.self, "src_cache").cache
        let synchronizer = try callback.synchronizer()
        let (task, count) = try handle.run { manager throws(LLMError) in
            try body(manager, source, synchronizer)
        }
        out.pointee = Handles.register(TaskHandle(task, configCount: count))
    }
}

@_cdecl("datadist_transfer_cache_async")
public func datadistTransferCacheAsync(
    _ manager: OpaquePointer?, _ cache: OpaquePointer?, _ synchronize: datadist_layer_sync_fn?,
    _ release: datadist_release_fn?, _ userData: UnsafeMutableRawPointer?,
    _ configs: UnsafePointer<datadist_transfer_config>?, _ configCount: Int, _ srcBlocks: UnsafePointer<Int64>?,
    _ srcBlockCount: Int, _ dstBlocks: UnsafePointer<Int64>?, _ dstBlockCount: Int, _ dstBlockBytes: UInt64,
    _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> UInt32 {
    start(synchronize, release, userData, manager, cache, out) { manager, source, synchronizer throws(LLMError) in
        var transfers: [TransferConfig] = []
        for (index, raw) in try CValues.array(configs, configCount, "configs").enumerated() {
            let name = "configs[\(index)]"
            let layers =
                raw.has_src_layers ? try range(raw.src_layer_start, raw.src_layer_stop, "\(name).src_layers") : nil
            transfers.append(
                TransferConfig(
                    destinationClusterID: raw.dst_cluster_id,
                    destinationAddresses: try CValues.addresses(raw.dst_addrs, raw.dst_addr_count, "\(name).dst_addrs"),
                    sourceLayers: layers, sourceBatchIndex: Int(raw.src_batch_index)))
        }
        let blocks = try blockLists(srcBlocks, srcBlockCount, dstBlocks, dstBlockCount)
        guard dstBlockBytes <= UInt64(Int.max) else {
            throw LLMError(.paramInvalid, "dst_block_bytes \(dstBlockBytes) exceeds Int.max")
        }
        let task = try manager.transferCacheAsync(
            source, synchronizer: synchronizer, configs: transfers, sourceBlocks: blocks.source,
            destinationBlocks: blocks.destination, destinationBlockBytes: dstBlockBytes == 0 ? nil : Int(dstBlockBytes))
        return (task, transfers.count)
    }
}

@_cdecl("datadist_transfer_cache_async_by_key")
public func datadistTransferCacheAsyncByKey(
    _ manager: OpaquePointer?, _ cache: OpaquePointer?, _ synchronize: datadist_layer_sync_fn?,
    _ release: datadist_release_fn?, _ userData: UnsafeMutableRawPointer?,
    _ configs: UnsafePointer<datadist_transfer_key_config>?, _ configCount: Int, _ srcBlocks: UnsafePointer<Int64>?,
    _ srcBlockCount: Int, _ dstBlocks: UnsafePointer<Int64>?, _ dstBlockCount: Int,
    _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> UInt32 {
    start(synchronize, release, userData, manager, cache, out) { manager, source, synchronizer throws(LLMError) in
        var transfers: [TransferWithCacheKeyConfig] = []
        for (index, raw) in try CValues.array(configs, configCount, "configs").enumerated() {
            let name = "configs[\(index)]"
            let sourceLayers = try range(raw.src_layer_start, raw.src_layer_stop, "\(name).src_layers")
            let destinationLayers = try range(raw.dst_layer_start, raw.dst_layer_stop, "\(name).dst_layers")
            switch raw.kind {
            case DATADIST_TRANSFER_TO_SLOT:
                transfers.append(
                    TransferWithCacheKeyConfig(
                        key: CacheKeyByIdAndIndex(
                            clusterID: raw.slot.cluster_id, cacheID: raw.slot.cache_id,
                            batchIndex: raw.slot.batch_index),
                        sourceLayers: sourceLayers, destinationLayers: destinationLayers,
                        sourceBatchIndex: Int(raw.src_batch_index)))
            case DATADIST_TRANSFER_TO_BLOCKS:
                guard raw.src_batch_index == 0 else {
                    throw LLMError(
                        .paramInvalid, "\(name).src_batch_index \(raw.src_batch_index) must be 0 for a blocks key")
                }
                transfers.append(
                    TransferWithCacheKeyConfig(
                        key: BlocksCacheKey(clusterID: raw.blocks.cluster_id, modelID: raw.blocks.model_id),
                        sourceLayers: sourceLayers, destinationLayers: destinationLayers))
            default:
                throw LLMError(.paramInvalid, "\(name).kind \(raw.kind) is not 0 (slot) or 1 (blocks)")
            }
        }
        let blocks = try blockLists(srcBlocks, srcBlockCount, dstBlocks, dstBlockCount)
        let task = try manager.transferCacheAsync(
            source, synchronizer: synchronizer, configs: transfers, sourceBlocks: blocks.source,
            destinationBlocks: blocks.destination)
        return (task, transfers.count)
    }
}

/// -1: no limit; otherwise milliseconds >= 0.
private func timeout(_ milliseconds: Int64) throws(LLMError) -> Duration? {
    guard milliseconds >= -1 else {
        throw LLMError(.paramInvalid, "timeout_ms \(milliseconds) must be -1 (no limit) or >= 0")
    }
    return milliseconds == -1 ? nil : .milliseconds(milliseconds)
}

@_cdecl("datadist_cache_task_synchronize")
public func datadistCacheTaskSynchronize(
    _ task: OpaquePointer?, _ timeoutMS: Int64, _ out: UnsafeMutablePointer<UInt32>?
) -> UInt32 {
    abiCall { () throws(LLMError) in
        let out = try requireOutput(out, "out")
        let handle = try Handles.lookup(task, TaskHandle.self, "task")
        out.pointee = handle.task.synchronize(timeout: try timeout(timeoutMS)).rawValue
    }
}

@_cdecl("datadist_cache_task_results")
public func datadistCacheTaskResults(
    _ task: OpaquePointer?, _ timeoutMS: Int64, _ codes: UnsafeMutablePointer<UInt32>?,
    _ sent: UnsafeMutablePointer<Bool>?, _ capacity: Int, _ count: UnsafeMutablePointer<Int>?
) -> UInt32 {
    abiCall { () throws(LLMError) in
        let count = try requireOutput(count, "count")
        let handle = try Handles.lookup(task, TaskHandle.self, "task")
        let capacity = try CValues.count(capacity, "capacity")
        if capacity > 0, codes == nil || sent == nil {
            throw LLMError(.paramInvalid, "\(codes == nil ? "codes" : "sent") is NULL with capacity \(capacity)")
        }
        let results = handle.task.results(timeout: try timeout(timeoutMS))
        for (index, result) in results.prefix(capacity).enumerated() {
            codes?[index] = result?.rawValue ?? LLMStatusCode.success.rawValue
            sent?[index] = result != nil
        }
        count.pointee = handle.configCount
    }
}

@_cdecl("datadist_cache_task_is_done")
public func datadistCacheTaskIsDone(_ task: OpaquePointer?, _ out: UnsafeMutablePointer<Bool>?) -> UInt32 {
    abiCall { () throws(LLMError) in
        let out = try requireOutput(out, "out")
        out.pointee = try Handles.lookup(task, TaskHandle.self, "task").task.isDone
    }
}

@_cdecl("datadist_cache_task_release")
public func datadistCacheTaskRelease(_ task: OpaquePointer?) -> UInt32 {
    abiCall { () throws(LLMError) in try Handles.release(task, TaskHandle.self, "task") }
}
