import DataDist
import InMemoryLogging
import Logging
import Testing

/// Operations the detected product does not support are refused (or only logged when enforcement is off).
@Suite struct GatingTests {
    let desc = CacheDesc(numTensors: 1, shape: [2, 8], dataType: .int8)

    @Test func anA2TrainingServerRefusesTheSeedOperationsNamingTheProduct() throws {
        try withCacheManager(product: "atlas-a2-training") { manager in
            expectRefusal(.featureNotEnabled, mentioning: ["remove_cache_key", "Atlas A2 training"], in: manager) {
                try manager.removeCacheKey(key(1))
            }
            expectRefusal(.featureNotEnabled, mentioning: ["allocate_cache", "Atlas A2 training"], in: manager) {
                _ = try manager.allocateCache(desc)
            }
        }
    }

    @Test(arguments: ["atlas-inference", "atlas-training", "atlas-200i-500-a2", "atlas-300i-a2"])
    func otherUnsupportedProductsAreRefusedToo(product: String) throws {
        try withCacheManager(product: product) { manager in
            expectRefusal(.featureNotEnabled, mentioning: ["remove_cache_key"], in: manager) {
                try manager.removeCacheKey(key(1))
            }
        }
    }

    @Test(arguments: ["atlas-a3-training", "atlas-a3-inference", "atlas-800i-a2", "a200i-a2-box", "ascend-950"])
    func supportedProductsRunTheSeedOperations(product: String) throws {
        try withCacheManager(product: product) { manager in
            let cache = try manager.allocateCache(desc, keys: [key(1)])
            try manager.removeCacheKey(key(1))
            try manager.deallocateCache(cache)
            #expect(manager.audit().isClean)
        }
    }

    @Test func withoutEnforcementTheOperationsRunAndWarnOncePerOperation() throws {
        let logs = InMemoryLogHandler()
        let logger = Logger(label: "test") { _ in logs }
        var config = LLMConfig()
        config.memoryPool = MemoryPoolConfig(size: 1 << 20)
        config.enforceProductSupport = false
        let instance = LLMDataDist(role: .prompt, clusterID: 1, logger: logger)
        try instance.initialize(config, environment: emulatorEnvironment(product: "atlas-a2-training"))
        defer { instance.finalize() }
        let manager = try instance.cacheManager
        let cache = try manager.allocateCache(desc, keys: [key(1)])
        try manager.removeCacheKey(key(1))
        try manager.removeCacheKey(key(2))
        try manager.deallocateCache(cache)
        #expect(manager.audit().isClean)
        let warnings = logs.entries.filter { $0.level == .warning }.map { "\($0.message)" }
        #expect(warnings.count == 3, "\(warnings)")
        #expect(warnings.contains { $0.contains("remove_cache_key") && $0.contains("Atlas A2 training") })
        #expect(warnings.contains { $0.contains("allocate_cache") })
    }
}
