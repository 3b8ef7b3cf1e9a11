import CDataDist
import DataDistC
import Foundation
import Synchronization
import Testing
import ThreadSanitizerSupport

/// Every entry point of datadist.h with a NULL handle and with each NULL required pointer: each returns
/// `DATADIST_PARAM_INVALID` with a message naming the argument, and leaves the audit as it was.
@Suite struct EntryPointTests {
    @Test func everyManagerEntryPointRefusesANullManagerByName() throws {
        var out: OpaquePointer?
        var key = datadist_cache_key(cluster_id: 1, req_id: 1, model_id: 0, prefix_id: .max)
        var byID = datadist_cache_key_by_id(cluster_id: 1, cache_id: 1, batch_index: 0)
        var blocks = datadist_blocks_cache_key(cluster_id: 1, model_id: 0)
        var desc = datadist_cache_desc(num_tensors: 1, data_type: 1, placement: 1, rank: 2, shape: nil)
        var audit = datadist_audit()
        let calls: [(String, () -> UInt32)] = [
            ("allocate_cache", { datadist_allocate_cache(nil, &desc, nil, 0, &out) }),
            ("deallocate_cache", { datadist_deallocate_cache(nil, nil) }),
            ("remove_cache_key", { datadist_remove_cache_key(nil, &key) }),
            ("copy_cache", { datadist_copy_cache(nil, nil, nil, 0, 0, 0, -1) }),
            ("pull_cache", { datadist_pull_cache(nil, &key, nil, 0, -1, nil) }),
            ("pull_cache_by_id", { datadist_pull_cache_by_id(nil, &byID, nil, 0, -1, nil) }),
            ("push_cache", { datadist_push_cache(nil, &byID, nil, 0, nil, -1) }),
            ("allocate_blocks_cache", { datadist_allocate_blocks_cache(nil, &desc, nil, &out) }),
            ("deallocate_blocks_cache", { datadist_deallocate_blocks_cache(nil, nil) }),
            ("pull_blocks", { datadist_pull_blocks(nil, &blocks, nil, nil, 0, nil, 0, nil) }),
            ("push_blocks", { datadist_push_blocks(nil, &blocks, nil, nil, 0, nil, 0, nil) }),
            ("copy_blocks", { datadist_copy_blocks(nil, nil, nil, nil, 0) }),
            ("swap_blocks", { datadist_swap_blocks(nil, nil, nil, nil, nil, 0) }),
            ("register_cache", { datadist_register_cache(nil, &desc, nil, 0, nil, 0, -1, &out) }),
            ("register_blocks_cache", { datadist_register_blocks_cache(nil, &desc, nil, 0, nil, -1, &out) }),
            ("unregister_cache", { datadist_unregister_cache(nil, 1) }),
            ("audit_cache_manager", { datadist_audit_cache_manager(nil, &audit) }),
            ("cache_manager_release", { datadist_cache_manager_release(nil) }),
        ]
        for (name, call) in calls {
            #expect(call() == paramInvalid, "\(name)")
            #expect(lastError() == "manager is NULL", "\(name): \(lastError())")
        }
        #expect(out == nil)
    }

    @Test func everyEngineAndCacheEntryPointRefusesNullsByName() throws {
        var out: OpaquePointer?
        var flag = false
        var port: UInt16 = 0
        var id: Int64 = 0
        var count: UInt32 = 0
        var written = 0
        var addresses = [UInt64](repeating: 0, count: 1)
        var text: UnsafeMutablePointer<CChar>?
        let calls: [(String, String, () -> UInt32)] = [
            ("engine_destroy", "engine is NULL", { datadist_engine_destroy(nil) }),
            ("engine_init", "engine is NULL", { datadist_engine_init(nil, nil, nil, 0) }),
            ("engine_finalize", "engine is NULL", { datadist_engine_finalize(nil) }),
            ("engine_is_initialized", "engine is NULL", { datadist_engine_is_initialized(nil, &flag) }),
            ("engine_listen_port", "engine is NULL", { datadist_engine_listen_port(nil, &port) }),
            ("engine_metrics", "engine is NULL", { datadist_engine_metrics(nil, &text) }),
            (
                "engine_link_clusters", "engine is NULL",
                {
                    datadist_engine_link_clusters(nil, nil, 0, 1000, nil, &written)
                }
            ),
            (
                "engine_unlink_clusters", "engine is NULL",
                {
                    datadist_engine_unlink_clusters(nil, nil, 0, 1000, false, nil, &written)
                }
            ),
            ("engine_switch_role", "engine is NULL", { datadist_engine_switch_role(nil, 1, nil) }),
            ("engine_cache_manager", "out is NULL", { datadist_engine_cache_manager(nil, nil) }),
            ("cache_release", "cache is NULL", { datadist_cache_release(nil) }),
            ("cache_id", "cache is NULL", { datadist_cache_id(nil, &id) }),
            ("cache_is_blocks", "cache is NULL", { datadist_cache_is_blocks(nil, &flag) }),
            ("cache_num_tensors", "cache is NULL", { datadist_cache_num_tensors(nil, &count) }),
            ("cache_tensor_addrs", "cache is NULL", { datadist_cache_tensor_addrs(nil, &addresses, 1) }),
            ("create_cpu_cache", "desc is NULL", { datadist_create_cpu_cache(nil, nil, 0, &out) }),
            ("create_cpu_cache out", "out is NULL", { datadist_create_cpu_cache(nil, nil, 0, nil) }),
            ("backend", "out is NULL", { datadist_backend(nil) }),
            ("check_options", "keys is NULL with count 1", { datadist_check_options(nil, nil, 1) }),
        ]
        for (name, message, call) in calls {
            #expect(call() == paramInvalid, "\(name)")
            #expect(lastError() == message, "\(name): \(lastError())")
        }
        #expect(out == nil)
    }

    @Test func nullRequiredPointersOnALiveManagerChangeNothing() throws {
        let engine = try Engine(role: 1, cluster: 15)
        try #require(try engine.initialize(["llm.MemPoolConfig": #"{"memory_size": 4194304}"#]) == success)
        let manager = try engine.cacheManager()
        defer { _ = datadist_cache_manager_release(manager) }
        let cache = try allocate(manager, tensors: 2, shape: [4, 16])
        defer { _ = datadist_cache_release(cache) }
        var out: OpaquePointer?
        let one: [Int64] = [0]
        let calls: [(String, String, () -> UInt32)] = [
            ("allocate_cache", "desc is NULL", { datadist_allocate_cache(manager, nil, nil, 0, &out) }),
            ("allocate_cache out", "out is NULL", { datadist_allocate_cache(manager, nil, nil, 0, nil) }),
            ("deallocate_cache", "cache is NULL", { datadist_deallocate_cache(manager, nil) }),
            ("remove_cache_key", "key is NULL", { datadist_remove_cache_key(manager, nil) }),
            ("copy_cache", "dst is NULL", { datadist_copy_cache(manager, nil, cache, 0, 0, 0, -1) }),
            ("copy_cache src", "src is NULL", { datadist_copy_cache(manager, cache, nil, 0, 0, 0, -1) }),
            (
                "copy_cache offset", "offset 18446744073709551615 exceeds Int.max",
                {
                    datadist_copy_cache(manager, cache, cache, 0, 0, .max, -1)
                }
            ),
            ("pull_cache_by_id", "key is NULL", { datadist_pull_cache_by_id(manager, nil, cache, 0, -1, nil) }),
            ("push_cache", "key is NULL", { datadist_push_cache(manager, nil, cache, 0, nil, -1) }),
            ("allocate_blocks_cache", "desc is NULL", { datadist_allocate_blocks_cache(manager, nil, nil, &out) }),
            ("deallocate_blocks_cache", "cache is NULL", { datadist_deallocate_blocks_cache(manager, nil) }),
            (
                "pull_blocks", "key is NULL",
                {
                    datadist_pull_blocks(manager, nil, cache, one, 1, one, 1, nil)
                }
            ),
            (
                "push_blocks", "key is NULL",
                {
                    datadist_push_blocks(manager, nil, cache, one, 1, one, 1, nil)
                }
            ),
            ("copy_blocks", "cache is NULL", { datadist_copy_blocks(manager, nil, one, one, 1) }),
            ("swap_blocks", "dst_cache is NULL", { datadist_swap_blocks(manager, cache, nil, one, one, 1) }),
            ("register_cache", "desc is NULL", { datadist_register_cache(manager, nil, nil, 0, nil, 0, -1, &out) }),
            (
                "register_blocks_cache", "desc is NULL",
                {
                    datadist_register_blocks_cache(manager, nil, nil, 0, nil, -1, &out)
                }
            ),
            ("audit_cache_manager", "out is NULL", { datadist_audit_cache_manager(manager, nil) }),
            ("cache_tensor_addrs", "addrs is NULL", { datadist_cache_tensor_addrs(cache, nil, 2) }),
            ("engine_listen_port", "out is NULL", { datadist_engine_listen_port(engine.pointer, nil) }),
            ("engine_is_initialized", "out is NULL", { datadist_engine_is_initialized(engine.pointer, nil) }),
            (
                "engine_link_clusters", "rets_written is NULL",
                {
                    datadist_engine_link_clusters(engine.pointer, nil, 0, 1000, nil, nil)
                }
            ),
            (
                "engine_switch_role", "role 0 is not a role (1 prompt, 2 decoder, 3 mix)",
                {
                    datadist_engine_switch_role(engine.pointer, 0, nil)
                }
            ),
        ]
        for (name, message, call) in calls {
            #expect(call() == paramInvalid, "\(name)")
            #expect(lastError() == message, "\(name): \(lastError())")
        }
        #expect(out == nil)
        var audit = datadist_audit()
        #expect(datadist_audit_cache_manager(manager, &audit) == success)
        #expect(audit.live_caches == 1 && audit.bound_keys == 0 && audit.orphans == 0)
        #expect(datadist_deallocate_cache(manager, cache) == success)
    }

    @Test func theLastErrorIsPerThread() throws {
        // Thread A fails one call, then thread B fails another; A still reads its own message.
        let afterA = DispatchSemaphore(value: 0)
        let afterB = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        let messages = Lock<[String]>([])
        let a = Thread {
            _ = datadist_cache_release(nil)
            afterA.signal()
            afterB.wait()
            let message = lastError()
            messages.withLock { $0.append("A: \(message)") }
            done.signal()
        }
        let b = Thread {
            afterA.wait()
            _ = datadist_engine_finalize(nil)
            let message = lastError()
            messages.withLock { $0.append("B: \(message)") }
            afterB.signal()
        }
        a.start()
        b.start()
        #expect(done.wait(timeout: .now() + 30) == .success)
        #expect(messages.withLock { $0 } == ["B: engine is NULL", "A: cache is NULL"])
    }
}
