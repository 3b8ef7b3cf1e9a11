import CDataDist
import DataDistC
import Foundation
import Synchronization
import Testing
import ThreadSanitizerSupport

/// What a synchronize callback saw, through its user data: the layers asked for, on which threads, how often
/// `release` ran. Layer `refuse` is answered false.
final class SyncRecorder: Sendable {
    let layers = Lock<[UInt32]>([])
    let offCaller = Lock(true)
    let releases = Atomic<Int>(0)
    let caller: UInt64
    let refuse: UInt32?

    init(refuse: UInt32? = nil) {
        self.refuse = refuse
        self.caller = SyncRecorder.threadID()
    }

    static func threadID() -> UInt64 { UInt64(pthread_self()) }

    /// Waits (up to 10 s) until `release` ran `count` times: the user data must outlive the task.
    func released(_ count: Int) -> Bool {
        let deadline = Date().addingTimeInterval(10)
        while releases.load(ordering: .relaxed) < count, Date() < deadline { usleep(1000) }
        return releases.load(ordering: .relaxed) == count
    }

    var userData: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    static func from(_ pointer: UnsafeMutableRawPointer?) -> SyncRecorder {
        Unmanaged<SyncRecorder>.fromOpaque(pointer!).takeUnretainedValue()
    }
}

let recordingSync: datadist_layer_sync_fn = { userData, layer, _ in
    let recorder = SyncRecorder.from(userData)
    recorder.layers.withLock { $0.append(layer) }
    if SyncRecorder.threadID() == recorder.caller { recorder.offCaller.withLock { $0 = false } }
    return layer != recorder.refuse
}

let countingRelease: datadist_release_fn = { userData in
    SyncRecorder.from(userData).releases.add(1, ordering: .relaxed)
}

let neverCalledSync: datadist_layer_sync_fn = { _, _, _ in
    fatalError("a refused transfer_cache_async must not call its synchronizer")
}

/// Two engines of this process linked with remote-cache access, through the ABI alone.
struct LinkedPair {
    let prompt: Engine
    let decoder: Engine
    let promptManager: OpaquePointer
    let decoderManager: OpaquePointer

    init(prompt promptID: UInt64, decoder decoderID: UInt64) throws {
        let pool = #"{"memory_size": 4194304}"#
        prompt = try Engine(role: 1, cluster: promptID)
        try #require(
            try prompt.initialize([
                "llm.MemPoolConfig": pool, "llm.listenIpInfo": "127.0.0.1:0", "llm.EnableRemoteCacheAccessible": "1",
            ]) == success, "\(lastError())")
        decoder = try Engine(role: 2, cluster: decoderID)
        try #require(
            try decoder.initialize(["llm.MemPoolConfig": pool, "llm.EnableRemoteCacheAccessible": "1"]) == success)
        var port: UInt16 = 0
        try #require(datadist_engine_listen_port(prompt.pointer, &port) == success)
        let decoderPointer = decoder.pointer
        let status = "127.0.0.1".withCString { host -> UInt32 in
            let endpoints = [datadist_ip_info(ip: host, port: 0), datadist_ip_info(ip: host, port: port)]
            return endpoints.withUnsafeBufferPointer { endpoints in
                var info = datadist_cluster_info(
                    remote_cluster_id: promptID, remote_role_type: 0, local_ip_infos: endpoints.baseAddress,
                    local_ip_info_count: 1, remote_ip_infos: endpoints.baseAddress! + 1, remote_ip_info_count: 1)
                var rets: [UInt32] = [0]
                var written = 0
                return datadist_engine_link_clusters(decoderPointer, &info, 1, 5000, &rets, &written)
            }
        }
        try #require(status == success, "\(lastError())")
        promptManager = try prompt.cacheManager()
        decoderManager = try decoder.cacheManager()
    }

    func close() {
        _ = datadist_cache_manager_release(promptManager)
        _ = datadist_cache_manager_release(decoderManager)
        _ = datadist_engine_finalize(decoder.pointer)
        _ = datadist_engine_finalize(prompt.pointer)
    }
}

func tensorAddresses(_ cache: OpaquePointer, _ count: Int) throws -> [UInt64] {
    var addresses = [UInt64](repeating: 0, count: count)
    try #require(datadist_cache_tensor_addrs(cache, &addresses, count) == success)
    return addresses
}

func cacheID(_ cache: OpaquePointer) -> Int64 {
    var id: Int64 = 0
    _ = datadist_cache_id(cache, &id)
    return id
}

/// The manager's audit is clean, polling up to 10 s: a push's release is posted without waiting, so the owner may
/// still be settling the last one.
func isClean(_ manager: OpaquePointer) -> Bool {
    let deadline = Date().addingTimeInterval(10)
    while true {
        var audit = datadist_audit()
        let clean = datadist_audit_cache_manager(manager, &audit) == success && audit.is_clean && audit.orphans == 0
        if clean || Date() > deadline { return clean }
        usleep(1000)
    }
}

/// `datadist_transfer_cache_async*` and the task handle: a C callback drives a layer-wise push between two
/// engines, bad arguments are refused by name (and still release the user data once), results come per config.
@Suite struct TransferABITests {
    static let tensorBytes = 64 * 2  // [1, 64] float16: one slot

    /// Fills tensor t of `cache` with bytes derived from (seed, t, offset).
    func fill(_ cache: OpaquePointer, tensors: Int, seed: UInt8) throws {
        for (tensor, address) in try tensorAddresses(cache, tensors).enumerated() {
            let bytes = UnsafeMutablePointer<UInt8>(bitPattern: UInt(address))!
            for offset in 0..<Self.tensorBytes {
                bytes[offset] = UInt8(truncatingIfNeeded: offset &* 7 &+ tensor &* 31) &+ seed
            }
        }
    }

    func matches(_ cache: OpaquePointer, tensor: Int, of tensors: Int, sourceTensor: Int, seed: UInt8) throws -> Bool {
        let address = try tensorAddresses(cache, tensors)[tensor]
        let bytes = UnsafePointer<UInt8>(bitPattern: UInt(address))!
        return (0..<Self.tensorBytes).allSatisfy {
            bytes[$0] == UInt8(truncatingIfNeeded: $0 &* 7 &+ sourceTensor &* 31) &+ seed
        }
    }

    @Test func aCallbackDrivenPushByKeyAndByAddressLandsEveryByte() throws {
        let pair = try LinkedPair(prompt: 41, decoder: 42)
        defer { pair.close() }
        var transport: UnsafePointer<CChar>?
        #expect(datadist_engine_link_transport(pair.decoder.pointer, 41, &transport) == success)
        #expect(transport.map { String(cString: $0) } == "shm")
        #expect(datadist_engine_link_transport(pair.decoder.pointer, 77, &transport) == 0x5010_B007)
        #expect(lastError() == "cluster_id 77 is not linked")
        #expect(datadist_engine_link_transport(pair.decoder.pointer, 41, nil) == paramInvalid)
        #expect(datadist_engine_link_transport(nil, 41, &transport) == paramInvalid)
        let source = try allocate(pair.decoderManager, tensors: 6, shape: [1, 64])  // 3 layers
        let byKey = try allocate(pair.promptManager, tensors: 6, shape: [1, 64])
        let byAddress = try allocate(pair.promptManager, tensors: 6, shape: [1, 64])
        try fill(source, tensors: 6, seed: 5)
        let recorder = SyncRecorder()
        var task: OpaquePointer?
        // Source layers 1..<3 → destination layers 0..<2 (the relative mapping).
        var keyConfig = datadist_transfer_key_config(
            kind: DATADIST_TRANSFER_TO_SLOT, slot: .init(cluster_id: 41, cache_id: cacheID(byKey), batch_index: 0),
            blocks: .init(), src_layer_start: 1, src_layer_stop: 3, dst_layer_start: 0, dst_layer_stop: 2,
            src_batch_index: 0)
        try #require(
            datadist_transfer_cache_async_by_key(
                pair.decoderManager, source, recordingSync, countingRelease, recorder.userData, &keyConfig, 1, nil, 0,
                nil, 0, &task) == success, "\(lastError())")
        var status: UInt32 = 1
        #expect(datadist_cache_task_synchronize(task, 10_000, &status) == success)
        #expect(status == success)
        var codes: [UInt32] = [7]
        var sent = [false]
        var count = 0
        #expect(datadist_cache_task_results(task, -1, &codes, &sent, 1, &count) == success)
        #expect(count == 1 && sent == [true] && codes == [success])
        for tensor in 0..<4 {
            #expect(try matches(byKey, tensor: tensor, of: 6, sourceTensor: tensor + 2, seed: 5), "tensor \(tensor)")
        }
        #expect(recorder.layers.withLock { $0 } == [1, 2])
        #expect(recorder.offCaller.withLock { $0 })
        #expect(datadist_cache_task_release(task) == success)

        // Raw addresses: every layer of the source to the second remote cache's tensors.
        let addresses = try tensorAddresses(byAddress, 6)
        let second = SyncRecorder()
        let status2 = addresses.withUnsafeBufferPointer { addrs -> UInt32 in
            var config = datadist_transfer_config(
                dst_cluster_id: 41, dst_addrs: addrs.baseAddress, dst_addr_count: 6, has_src_layers: false,
                src_layer_start: 0, src_layer_stop: 0, src_batch_index: 0)
            return datadist_transfer_cache_async(
                pair.decoderManager, source, recordingSync, countingRelease, second.userData, &config, 1, nil, 0, nil,
                0, 0, &task)
        }
        try #require(status2 == success, "\(lastError())")
        #expect(datadist_cache_task_synchronize(task, -1, &status) == success)
        #expect(status == success)
        for tensor in 0..<6 {
            #expect(try matches(byAddress, tensor: tensor, of: 6, sourceTensor: tensor, seed: 5), "tensor \(tensor)")
        }
        #expect(second.layers.withLock { $0 } == [0, 1, 2])
        #expect(datadist_cache_task_release(task) == success)
        #expect(datadist_cache_task_release(task) == paramInvalid)
        #expect(lastError().contains("is not a live cache task handle"))
        // Each task's user data was released once, after its task ended.
        #expect(recorder.released(1))
        #expect(second.released(1))
        for cache in [source] { #expect(datadist_deallocate_cache(pair.decoderManager, cache) == success) }
        for cache in [byKey, byAddress] { #expect(datadist_deallocate_cache(pair.promptManager, cache) == success) }
        for cache in [source, byKey, byAddress] { _ = datadist_cache_release(cache) }
        #expect(isClean(pair.decoderManager))
        #expect(isClean(pair.promptManager))
    }

    @Test func aCallbackReturningFalseFailsTheConfigsCoveringThatLayer() throws {
        let pair = try LinkedPair(prompt: 43, decoder: 44)
        defer { pair.close() }
        let source = try allocate(pair.decoderManager, tensors: 4, shape: [1, 64])
        let remote = try allocate(pair.promptManager, tensors: 4, shape: [1, 64])
        let recorder = SyncRecorder(refuse: 1)
        var task: OpaquePointer?
        let slot = datadist_cache_key_by_id(cluster_id: 43, cache_id: cacheID(remote), batch_index: 0)
        var configs: [datadist_transfer_key_config] = []
        for first: Int64 in [0, 1] {
            configs.append(
                datadist_transfer_key_config(
                    kind: DATADIST_TRANSFER_TO_SLOT, slot: slot, blocks: datadist_blocks_cache_key(),
                    src_layer_start: first, src_layer_stop: first + 1, dst_layer_start: first,
                    dst_layer_stop: first + 1, src_batch_index: 0))
        }
        try #require(
            datadist_transfer_cache_async_by_key(
                pair.decoderManager, source, recordingSync, countingRelease, recorder.userData, &configs, 2, nil, 0,
                nil, 0, &task) == success, "\(lastError())")
        var status: UInt32 = 0
        #expect(datadist_cache_task_synchronize(task, 10_000, &status) == success)
        #expect(status == paramInvalid)
        var done = false
        #expect(datadist_cache_task_is_done(task, &done) == success && done)
        #expect(datadist_cache_task_is_done(task, nil) == paramInvalid)
        #expect(datadist_cache_task_is_done(nil, &done) == paramInvalid)
        var codes: [UInt32] = [0, 0]
        var sent = [false, false]
        var count = 0
        #expect(datadist_cache_task_results(task, 0, &codes, &sent, 2, &count) == success)
        // Both configs go to one cluster, so they share its result: the refusal of layer 1.
        #expect(count == 2 && sent == [true, true] && codes == [paramInvalid, paramInvalid])
        // A capacity below the config count writes only that many.
        var one: [UInt32] = [7]
        var oneSent = [false]
        #expect(datadist_cache_task_results(task, 0, &one, &oneSent, 1, &count) == success)
        #expect(count == 2 && one == [paramInvalid])
        #expect(datadist_cache_task_results(task, 0, nil, nil, 0, &count) == success && count == 2)
        #expect(recorder.layers.withLock { $0 } == [0, 1])
        #expect(datadist_cache_task_release(task) == success)
        #expect(recorder.released(1))
        #expect(datadist_deallocate_cache(pair.decoderManager, source) == success)
        #expect(datadist_deallocate_cache(pair.promptManager, remote) == success)
        _ = datadist_cache_release(source)
        _ = datadist_cache_release(remote)
        #expect(isClean(pair.decoderManager))
    }

    @Test func badArgumentsAreRefusedByNameReleaseOnceAndStartNothing() throws {
        let pair = try LinkedPair(prompt: 45, decoder: 46)
        defer { pair.close() }
        let source = try allocate(pair.decoderManager, tensors: 4, shape: [1, 64])
        let odd = try allocate(pair.decoderManager, tensors: 3, shape: [1, 64])
        let recorder = SyncRecorder()
        var task: OpaquePointer?
        let taskPointer = withUnsafeMutablePointer(to: &task) { $0 }  // lives as long as `task`, on this frame
        let good = datadist_transfer_key_config(
            kind: DATADIST_TRANSFER_TO_SLOT, slot: .init(cluster_id: 45, cache_id: 1, batch_index: 0), blocks: .init(),
            src_layer_start: 0, src_layer_stop: 1, dst_layer_start: 0, dst_layer_stop: 1, src_batch_index: 0)
        func byKey(
            _ config: datadist_transfer_key_config, count: Int = 1, cache: OpaquePointer? = nil,
            sync: datadist_layer_sync_fn? = neverCalledSync, manager: OpaquePointer? = nil,
            out: UnsafeMutablePointer<OpaquePointer?>? = nil
        ) -> UInt32 {
            withUnsafePointer(to: config) { config in
                datadist_transfer_cache_async_by_key(
                    manager ?? pair.decoderManager, cache ?? source, sync, countingRelease, recorder.userData,
                    count == 0 ? nil : config, count, nil, 0, nil, 0, out ?? taskPointer)
            }
        }
        var badKind = good
        badKind.kind = 7
        var badRange = good
        badRange.src_layer_start = 2
        var emptyRange = good
        emptyRange.dst_layer_stop = 0
        var blocksBatch = good
        blocksBatch.kind = DATADIST_TRANSFER_TO_BLOCKS
        blocksBatch.src_batch_index = 1
        var tooManyLayers = good
        tooManyLayers.src_layer_stop = 3
        tooManyLayers.dst_layer_stop = 3
        var unlinked = good
        unlinked.slot.cluster_id = 99
        var calls: [(String, String, () -> UInt32)] = []
        calls.append(("manager", "is not a live cache manager handle", { byKey(good, manager: source) }))
        calls.append(
            (
                "src_cache", "src_cache is NULL",
                {
                    datadist_transfer_cache_async_by_key(
                        pair.decoderManager, nil, neverCalledSync, countingRelease, recorder.userData, nil, 0, nil, 0,
                        nil, 0, taskPointer)
                }
            ))
        calls.append(("synchronize", "synchronize is NULL", { byKey(good, sync: nil) }))
        calls.append(
            (
                "out", "out is NULL",
                {
                    datadist_transfer_cache_async_by_key(
                        pair.decoderManager, source, neverCalledSync, countingRelease, recorder.userData, nil, 0, nil,
                        0, nil, 0, nil)
                }
            ))
        calls.append(
            (
                "configs", "configs is NULL with count 2",
                {
                    datadist_transfer_cache_async_by_key(
                        pair.decoderManager, source, neverCalledSync, countingRelease, recorder.userData, nil, 2, nil,
                        0, nil, 0, taskPointer)
                }
            ))
        calls.append(("empty", "transferCacheAsync configs is empty", { byKey(good, count: 0) }))
        calls.append(("kind", "configs[0].kind 7 is not 0 (slot) or 1 (blocks)", { byKey(badKind) }))
        calls.append(("src range", "configs[0].src_layers [2, 1) needs 0 <= start < stop", { byKey(badRange) }))
        calls.append(("dst range", "configs[0].dst_layers [0, 0) needs 0 <= start < stop", { byKey(emptyRange) }))
        calls.append(
            ("blocks batch", "configs[0].src_batch_index 1 must be 0 for a blocks key", { byKey(blocksBatch) }))
        calls.append(("layers", "exceeds the 2 layers of the source", { byKey(tooManyLayers) }))
        calls.append(("odd tensors", "has 3 tensors", { byKey(good, cache: odd) }))
        calls.append(("unlinked", "99", { byKey(unlinked) }))
        for (index, (name, message, call)) in calls.enumerated() {
            let status = call()
            #expect(status != success, "\(name)")
            #expect(lastError().contains(message), "\(name): \(lastError())")
            // Every refused call released its user data exactly once, before it returned.
            #expect(recorder.releases.load(ordering: .relaxed) == index + 1, "\(name)")
        }
        #expect(task == nil)
        var status: UInt32 = 0
        var count = 0
        #expect(datadist_cache_task_synchronize(nil, 0, &status) == paramInvalid)
        #expect(lastError() == "task is NULL")
        #expect(datadist_cache_task_synchronize(source, 0, &status) == paramInvalid)
        #expect(lastError().contains("is not a live cache task handle"))
        #expect(datadist_cache_task_results(nil, 0, nil, nil, 0, &count) == paramInvalid)
        #expect(datadist_cache_task_release(nil) == paramInvalid)
        // Raw addresses: the wrong number of addresses, a bad timeout on a live task, NULL results arrays.
        let addresses: [UInt64] = [1, 2, 3]
        let wrongCount = addresses.withUnsafeBufferPointer { addrs -> UInt32 in
            var config = datadist_transfer_config(
                dst_cluster_id: 45, dst_addrs: addrs.baseAddress, dst_addr_count: 3, has_src_layers: true,
                src_layer_start: 0, src_layer_stop: 1, src_batch_index: 0)
            return datadist_transfer_cache_async(
                pair.decoderManager, source, neverCalledSync, countingRelease, recorder.userData, &config, 1, nil, 0,
                nil, 0, 0, &task)
        }
        #expect(wrongCount == paramInvalid)
        #expect(lastError().contains("has 3 addresses; 1 layers need 2"), "\(lastError())")
        let nullAddresses = {
            var config = datadist_transfer_config(
                dst_cluster_id: 45, dst_addrs: nil, dst_addr_count: 2, has_src_layers: false, src_layer_start: 0,
                src_layer_stop: 0, src_batch_index: 0)
            return datadist_transfer_cache_async(
                pair.decoderManager, source, neverCalledSync, countingRelease, recorder.userData, &config, 1, nil, 0,
                nil, 0, 0, &task)
        }()
        #expect(nullAddresses == paramInvalid)
        #expect(lastError() == "configs[0].dst_addrs is NULL with count 2")
        #expect(recorder.releases.load(ordering: .relaxed) == calls.count + 2)
        #expect(task == nil)

        let remote = try allocate(pair.promptManager, tensors: 4, shape: [1, 64])
        var live = good
        live.slot.cache_id = cacheID(remote)
        let runner = SyncRecorder()
        var config = live
        try #require(
            datadist_transfer_cache_async_by_key(
                pair.decoderManager, source, recordingSync, countingRelease, runner.userData, &config, 1, nil, 0, nil,
                0, &task) == success)
        #expect(datadist_cache_task_synchronize(task, -2, &status) == paramInvalid)
        #expect(lastError() == "timeout_ms -2 must be -1 (no limit) or >= 0")
        #expect(datadist_cache_task_synchronize(task, -1, nil) == paramInvalid)
        #expect(lastError() == "out is NULL")
        #expect(datadist_cache_task_results(task, -1, nil, nil, 1, &count) == paramInvalid)
        #expect(lastError() == "codes is NULL with capacity 1")
        #expect(datadist_cache_task_results(task, -1, nil, nil, 0, nil) == paramInvalid)
        #expect(datadist_cache_task_synchronize(task, -1, &status) == success && status == success)
        #expect(datadist_cache_task_release(task) == success)
        #expect(runner.released(1))
        for cache in [source, odd] { #expect(datadist_deallocate_cache(pair.decoderManager, cache) == success) }
        #expect(datadist_deallocate_cache(pair.promptManager, remote) == success)
        for cache in [source, odd, remote] { _ = datadist_cache_release(cache) }
        #expect(isClean(pair.decoderManager))
        #expect(isClean(pair.promptManager))
    }
}
