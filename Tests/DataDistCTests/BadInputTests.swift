import CDataDist
import DataDistC
import Testing

/// Bad arguments to the C ABI: each gives `DATADIST_PARAM_INVALID` with a message naming the argument, and
/// changes nothing.
@Suite struct BadInputTests {
    @Test func nullAndStaleHandlesAreRefusedByName() throws {
        #expect(datadist_engine_init(nil, nil, nil, 0) == paramInvalid)
        #expect(lastError().contains("engine is NULL"))
        var engine: OpaquePointer?
        #expect(datadist_engine_create(2, 7, &engine) == success)
        #expect(datadist_engine_destroy(engine) == success)
        // The freed handle, a second destroy and a pointer that was never a handle: refused, not dereferenced.
        #expect(datadist_engine_finalize(engine) == paramInvalid)
        #expect(lastError().contains("is not a live engine handle"))
        #expect(datadist_engine_destroy(engine) == paramInvalid)
        var bogus: Int64 = 0
        let bogusHandle = withUnsafeMutablePointer(to: &bogus) { OpaquePointer($0) }
        #expect(datadist_cache_release(bogusHandle) == paramInvalid)
        #expect(lastError().contains("cache 0x"))
        #expect(datadist_cache_manager_release(nil) == paramInvalid)
        #expect(lastError() == "manager is NULL")
    }

    @Test func handleOfAnotherKindIsRefused() throws {
        let engine = try Engine(role: 1, cluster: 11)
        var id: Int64 = 0
        #expect(datadist_cache_id(engine.pointer, &id) == paramInvalid)
        #expect(lastError().contains("is not a live cache handle"))
    }

    @Test func badRolesDescriptorsAndOptions() throws {
        var engine: OpaquePointer?
        #expect(datadist_engine_create(9, 1, &engine) == paramInvalid)
        #expect(lastError().contains("role 9"))
        #expect(engine == nil)
        #expect(datadist_engine_create(1, 1, nil) == paramInvalid)
        #expect(lastError() == "out is NULL")

        let live = try Engine(role: 1, cluster: 12)
        #expect(datadist_engine_init(live.pointer, nil, nil, 2) == paramInvalid)
        #expect(lastError().contains("keys is NULL with count 2"))
        #expect(try live.initialize(["llm.SyncKvCacheWaitTime": "-5"]) == paramInvalid)
        #expect(lastError().contains("llm.SyncKvCacheWaitTime"))
        #expect(try live.initialize(["llm.NoSuchKey": "1"]) == paramInvalid)
        var initialized = true
        #expect(datadist_engine_is_initialized(live.pointer, &initialized) == success)
        #expect(!initialized)

        try #require(try live.initialize(["llm.MemPoolConfig": #"{"memory_size": 4194304}"#]) == success)
        let manager = try live.cacheManager()
        defer { _ = datadist_cache_manager_release(manager) }
        var cache: OpaquePointer?
        let shape: [Int64] = [1, 16]
        shape.withUnsafeBufferPointer { shape in
            var desc = datadist_cache_desc(
                num_tensors: 2, data_type: 99, placement: 1, rank: 2, shape: shape.baseAddress)
            #expect(datadist_allocate_cache(manager, &desc, nil, 0, &cache) == paramInvalid)
            #expect(lastError().contains("desc.data_type 99"))
            desc.data_type = 1
            desc.placement = 5
            #expect(datadist_allocate_cache(manager, &desc, nil, 0, &cache) == paramInvalid)
            #expect(lastError().contains("desc.placement 5"))
            desc.placement = 1
            desc.rank = 40
            #expect(datadist_allocate_cache(manager, &desc, nil, 0, &cache) == paramInvalid)
            #expect(lastError().contains("desc.rank 40"))
            desc.rank = 2
            desc.shape = nil
            #expect(datadist_allocate_cache(manager, &desc, nil, 0, &cache) == paramInvalid)
            #expect(lastError().contains("desc.shape is NULL"))
            desc.shape = shape.baseAddress
            #expect(datadist_allocate_cache(manager, &desc, nil, 3, &cache) == paramInvalid)
            #expect(lastError().contains("keys is NULL with count 3"))
            #expect(datadist_allocate_cache(manager, &desc, nil, Int.max, &cache) == paramInvalid)
            #expect(lastError().contains("keys count"))
        }
        #expect(cache == nil)
        var audit = datadist_audit()
        #expect(datadist_audit_cache_manager(manager, &audit) == success)
        #expect(audit.live_caches == 0 && audit.is_clean)
    }

    @Test func badLayerRangesBlocksAndLinkArguments() throws {
        let engine = try Engine(role: 2, cluster: 13)
        try #require(try engine.initialize(["llm.MemPoolConfig": #"{"memory_size": 4194304}"#]) == success)
        let manager = try engine.cacheManager()
        defer { _ = datadist_cache_manager_release(manager) }
        let cache = try allocate(manager, tensors: 2, shape: [2, 64])
        defer { _ = datadist_cache_release(cache) }
        var key = datadist_cache_key(cluster_id: 1, req_id: 1, model_id: 0, prefix_id: .max)
        var layers = datadist_layer_range(src_start: 2, src_stop: 1, dst_start: 0, dst_stop: 1, tensors_per_layer: 2)
        #expect(datadist_pull_cache(manager, &key, cache, 0, -1, &layers) == paramInvalid)
        #expect(lastError().contains("layers source range [2, 1)"))
        layers = datadist_layer_range(src_start: 0, src_stop: 1, dst_start: 0, dst_stop: 1, tensors_per_layer: 0)
        #expect(datadist_pull_cache(manager, &key, cache, 0, -1, &layers) == paramInvalid)
        #expect(lastError().contains("layers.tensors_per_layer 0"))
        #expect(datadist_pull_cache(manager, nil, cache, 0, -1, nil) == paramInvalid)
        #expect(lastError() == "key is NULL")
        #expect(datadist_copy_blocks(manager, cache, nil, nil, 1) == paramInvalid)
        #expect(lastError().contains("src is NULL with count 1"))
        let src: [Int64] = [0, 0]
        let dst: [Int64] = [1, 1]
        #expect(datadist_swap_blocks(manager, cache, cache, src, dst, 2) == paramInvalid)
        #expect(lastError().contains("src[1] = 0 repeats"))
        #expect(datadist_register_cache(manager, nil, nil, 0, nil, 0, 7, nil) == paramInvalid)

        var rets = [UInt32](repeating: 0, count: 1)
        var written = 0
        var info = datadist_cluster_info(
            remote_cluster_id: 1, remote_role_type: 0, local_ip_infos: nil, local_ip_info_count: 0,
            remote_ip_infos: nil, remote_ip_info_count: 1)
        #expect(datadist_engine_link_clusters(engine.pointer, &info, 1, 1000, &rets, &written) == paramInvalid)
        #expect(lastError().contains("clusters[0].remote_ip_infos is NULL with count 1"))
        #expect(datadist_engine_link_clusters(engine.pointer, &info, 1, 0, &rets, &written) == paramInvalid)
        #expect(lastError().contains("timeout_ms 0"))
        info.remote_ip_info_count = 0
        info.remote_role_type = 8
        #expect(datadist_engine_link_clusters(engine.pointer, &info, 1, 1000, &rets, &written) == paramInvalid)
        #expect(lastError().contains("clusters[0].remote_role_type 8"))
        written = 7
        #expect(datadist_engine_link_clusters(engine.pointer, nil, 0, 1000, nil, &written) == paramInvalid)
        #expect(written == 0)
        #expect(lastError().contains("before any cluster was tried (count 0)"))
        #expect(datadist_engine_switch_role(engine.pointer, 1, "nonsense") == paramInvalid)
        #expect(lastError().contains("listen_ip_info \"nonsense\""))
        var audit = datadist_audit()
        #expect(datadist_audit_cache_manager(manager, &audit) == success)
        #expect(audit.live_caches == 1 && audit.orphans == 0)
        #expect(datadist_deallocate_cache(manager, cache) == success)
    }

    @Test func oldCacheManagerAfterFinalizeReportsEngineFinalized() throws {
        let engine = try Engine(role: 1, cluster: 14)
        try #require(try engine.initialize(["llm.MemPoolConfig": #"{"memory_size": 4194304}"#]) == success)
        let manager = try engine.cacheManager()
        defer { _ = datadist_cache_manager_release(manager) }
        #expect(datadist_engine_finalize(engine.pointer) == success)
        var audit = datadist_audit()
        #expect(datadist_audit_cache_manager(manager, &audit) == engineFinalized)
        #expect(lastError().contains("finalized"))
        try #require(try engine.initialize(["llm.MemPoolConfig": #"{"memory_size": 4194304}"#]) == success)
        // Still the old initialisation's manager: finalized, even though the engine is live again.
        #expect(datadist_unregister_cache(manager, 1) == engineFinalized)
        let fresh = try engine.cacheManager()
        defer { _ = datadist_cache_manager_release(fresh) }
        #expect(datadist_audit_cache_manager(fresh, &audit) == success)
    }

    @Test func optionKeysNameEveryKeyAndStatusNamesAreTheReferences() throws {
        let text = String(cString: datadist_option_keys())
        #expect(text.contains("syncKVTimeout=llm.SyncKvCacheWaitTime\n"))
        #expect(text.contains("deviceID=ge.exec.deviceId\n"))
        #expect(text.contains("transport=llm.Transport\n") && text.contains("linkSecret=llm.LinkSecret\n"))
        #expect(checkOptions(["llm.Transport": "ucx"]) == success)
        #expect(checkOptions(["llm.Transport": "tcp"]) == paramInvalid)
        #expect(lastError().contains("llm.Transport"), "\(lastError())")
        #expect(String(cString: datadist_status_name(0x5010_B005)) == "LLM_PARAM_INVALID")
        #expect(String(cString: datadist_status_name(12345)) == "LLM_FAILED")
        #expect(checkOptions(["llm.SyncKvCacheWaitTime": "1000"]) == success)
        #expect(checkOptions(["llm.SyncKvCacheWaitTime": "x"]) == paramInvalid)
        #expect(lastError().contains("\"llm.SyncKvCacheWaitTime\""))
        // The reference's legacy keys, which its LLMConfig can emit, are accepted (and ignored).
        #expect(
            checkOptions(["llm.deployResPath": "/x", "llm.ClusterInfo": "{}", "llm.OutputMaxSize": "8"]) == success)
    }
}
