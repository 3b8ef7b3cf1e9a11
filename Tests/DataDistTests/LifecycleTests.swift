import DataDist
import Testing

@Suite struct LifecycleTests {
    @Test func initializingTwiceReturnsSilently() throws {
        let instance = try makeInstance()
        defer { instance.finalize() }
        var other = LLMConfig()
        other.deviceID = 99
        try instance.initialize(other, environment: emulatorEnvironment())
        #expect(instance.isInitialized)
    }

    @Test func finalizeOnANeverInitialisedInstanceIsANoOp() {
        let instance = LLMDataDist(role: .decoder, clusterID: 7)
        instance.finalize()
        instance.finalize()
        #expect(!instance.isInitialized)
    }

    @Test func theCacheManagerAndCapsNeedInitialize() {
        let instance = LLMDataDist(role: .prompt, clusterID: 3)
        #expect { _ = try instance.cacheManager } throws: { ($0 as? LLMError)?.status == .failed }
        #expect { _ = try instance.caps } throws: { ($0 as? LLMError)?.status == .failed }
    }

    @Test func finalizeReleasesEverythingAndLaterCallsFail() throws {
        let instance = try makeInstance()
        let manager = try instance.cacheManager
        _ = try manager.allocateCache(CacheDesc(numTensors: 2, shape: [2, 16], dataType: .int32), keys: [key(1)])
        #expect(manager.audit().liveCaches == 1)
        instance.finalize()
        #expect(manager.audit().liveCaches == 0)
        #expect(manager.audit().boundKeys == 0)
        #expect(manager.audit().pagesInUse == 0)
        #expect {
            _ = try manager.allocateCache(CacheDesc(numTensors: 1, shape: [1], dataType: .int8))
        } throws: { ($0 as? LLMError)?.status == .failed }
        #expect { _ = try instance.cacheManager } throws: { ($0 as? LLMError)?.status == .failed }
    }

    @Test func twoInstancesInOneProcessHaveTheirOwnPools() throws {
        let prompt = try makeInstance(clusterID: 1, devicePool: 1 << 16)
        let decoder = try makeInstance(clusterID: 2, devicePool: 1 << 16)
        defer {
            prompt.finalize()
            decoder.finalize()
        }
        let desc = CacheDesc(numTensors: 1, shape: [1, 16_384], dataType: .int32)
        _ = try prompt.cacheManager.allocateCache(desc)
        _ = try decoder.cacheManager.allocateCache(desc)
        #expect(try prompt.cacheManager.audit().pagesFree == 0)
        #expect(try decoder.cacheManager.audit().pagesFree == 0)
    }

    @Test func aDeviceIDBeyondTheDevicesIsRefused() {
        let instance = LLMDataDist(role: .prompt, clusterID: 1)
        var config = LLMConfig()
        config.deviceID = 5
        #expect {
            try instance.initialize(config, environment: emulatorEnvironment(devices: 2))
        } throws: { error in
            guard let error = error as? LLMError else { return false }
            return error.status == .paramInvalid && error.message.contains("deviceID 5")
        }
        #expect(!instance.isInitialized)
    }

    @Test func aPoolLargerThanTheDeviceIsDeviceOutOfMemory() {
        let instance = LLMDataDist(role: .prompt, clusterID: 1)
        var config = LLMConfig()
        config.memoryPool = MemoryPoolConfig(size: 2 << 30)
        #expect {
            try instance.initialize(config, environment: emulatorEnvironment())
        } throws: { ($0 as? LLMError)?.status == .deviceOutOfMemory }
        #expect(!instance.isInitialized)
    }

    @Test(arguments: [(1 << 20, 9), (1 << 20, 31), (65_535, 16), (0, 16)])
    func anInvalidPoolIsParamInvalid(size: Int, pageShift: Int) {
        let instance = LLMDataDist(role: .prompt, clusterID: 1)
        var config = LLMConfig()
        config.memoryPool = MemoryPoolConfig(size: size, pageShift: pageShift)
        #expect {
            try instance.initialize(config, environment: emulatorEnvironment())
        } throws: { ($0 as? LLMError)?.status == .paramInvalid }
        #expect(!instance.isInitialized)
    }

    @Test func anInstanceDroppedWithoutFinalizeStopsListening() throws {
        var config = LLMConfig()
        config.listenAddress = IPEndpoint(host: "127.0.0.1", port: 0)
        var instance: LLMDataDist? = LLMDataDist(role: .prompt, clusterID: 1)
        try instance!.initialize(config, environment: emulatorEnvironment())
        let endpoint = try #require(instance!.listenEndpoint)
        instance = nil
        config.listenAddress = endpoint
        let again = LLMDataDist(role: .prompt, clusterID: 1)
        try again.initialize(config, environment: emulatorEnvironment())
        #expect(again.listenEndpoint == endpoint)
        again.finalize()
    }

    @Test func capsReportTheEmulatedProduct() throws {
        let instance = try makeInstance(product: "atlas-a3-inference")
        defer { instance.finalize() }
        #expect(try instance.caps.product == .atlasA3Inference)
    }
}
