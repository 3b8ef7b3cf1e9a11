import CDataDist
import DataDistC
import Foundation
import Testing

/// `datadist_engine_metrics`: the engine's `metrics()` as JSON, in any state; a NULL `out` or a freed engine is
/// refused by name.
@Suite struct MetricsABITests {
    static func metrics(_ engine: OpaquePointer) throws -> [String: Any] {
        var text: UnsafeMutablePointer<CChar>?
        try #require(datadist_engine_metrics(engine, &text) == success, "\(lastError())")
        let pointer = try #require(text)
        defer { datadist_free_string(pointer) }
        let object = try JSONSerialization.jsonObject(with: Data(String(cString: pointer).utf8))
        return try #require(object as? [String: Any])
    }

    @Test func metricsAreJSONBeforeAndAfterInit() throws {
        let engine = try Engine(role: 2, cluster: 21)
        let before = try Self.metrics(engine.pointer)
        #expect(before["clusterID"] as? Int == 21)
        #expect((before["pools"] as? [Any])?.isEmpty == true && (before["links"] as? [Any])?.isEmpty == true)

        try #require(try engine.initialize(["llm.MemPoolConfig": #"{"memory_size": 4194304}"#]) == success)
        let manager = try engine.cacheManager()
        defer { _ = datadist_cache_manager_release(manager) }
        let cache = try allocate(manager, tensors: 2, shape: [4, 16])
        defer { _ = datadist_cache_release(cache) }
        let after = try Self.metrics(engine.pointer)
        let pools = try #require(after["pools"] as? [[String: Any]])
        #expect(pools.count == 1 && pools[0]["pool"] as? String == "device")
        #expect((pools[0]["pagesInUse"] as? Int).map { $0 > 0 } == true)
        #expect(after["auditOrphans"] as? Int == 0 && after["keysBound"] as? Int == 0)
        #expect(datadist_deallocate_cache(manager, cache) == success)
    }

    @Test func aNullOutOrAFreedEngineIsRefused() throws {
        var engine: OpaquePointer?
        try #require(datadist_engine_create(2, 22, &engine) == success)
        #expect(datadist_engine_metrics(engine, nil) == paramInvalid)
        #expect(lastError() == "out is NULL")
        #expect(datadist_engine_destroy(engine) == success)
        var text: UnsafeMutablePointer<CChar>?
        #expect(datadist_engine_metrics(engine, &text) == paramInvalid)
        #expect(lastError().contains("engine"), "\(lastError())")
        #expect(text == nil)
    }
}
