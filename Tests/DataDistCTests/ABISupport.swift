import CDataDist
import DataDistC
import Foundation
import Testing

let success: UInt32 = 0
let paramInvalid: UInt32 = 0x5010_B005
let engineFinalized: UInt32 = 0x5010_B006

func lastError() -> String { String(cString: datadist_last_error()) }

/// Calls `body` with the options as two C string arrays.
func withOptions<T>(
    _ options: [String: String],
    _ body: (UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<UnsafePointer<CChar>?>?, Int) -> T
) -> T {
    let pairs = options.sorted { $0.key < $1.key }
    let keys = pairs.map { strdup($0.key) }
    let values = pairs.map { strdup($0.value) }
    defer {
        for pointer in keys + values { free(pointer) }
    }
    let keyPointers = keys.map { UnsafePointer($0) }
    let valuePointers = values.map { UnsafePointer($0) }
    return keyPointers.withUnsafeBufferPointer { k in
        valuePointers.withUnsafeBufferPointer { v in body(k.baseAddress, v.baseAddress, pairs.count) }
    }
}

func checkOptions(_ options: [String: String]) -> UInt32 {
    withOptions(options) { datadist_check_options($0, $1, $2) }
}

/// An engine handle destroyed at the end of the test.
final class Engine {
    let pointer: OpaquePointer

    init(role: Int32, cluster: UInt64) throws {
        var engine: OpaquePointer?
        try #require(datadist_engine_create(role, cluster, &engine) == success)
        pointer = try #require(engine)
    }

    deinit { _ = datadist_engine_destroy(pointer) }

    func initialize(_ options: [String: String]) throws -> UInt32 {
        withOptions(options) { datadist_engine_init(pointer, $0, $1, $2) }
    }

    func cacheManager() throws -> OpaquePointer {
        var manager: OpaquePointer?
        try #require(datadist_engine_cache_manager(pointer, &manager) == success, "\(lastError())")
        return try #require(manager)
    }
}

/// A device cache of float16 tensors, allocated through the ABI.
func allocate(_ manager: OpaquePointer, tensors: UInt32, shape: [Int64], keys: [datadist_cache_key] = []) throws
    -> OpaquePointer
{
    var cache: OpaquePointer?
    let status = shape.withUnsafeBufferPointer { shape in
        var desc = datadist_cache_desc(
            num_tensors: tensors, data_type: 1, placement: 1, rank: UInt32(shape.count), shape: shape.baseAddress)
        return keys.withUnsafeBufferPointer { keys in
            datadist_allocate_cache(manager, &desc, keys.baseAddress, keys.count, &cache)
        }
    }
    try #require(status == success, "\(lastError())")
    return try #require(cache)
}
