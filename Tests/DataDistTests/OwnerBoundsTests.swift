import LinkLayer
import Testing

@testable import DataDist

/// What the owner tells a peer about a cache whose batch does not fit the protocol's 32-bit fields.
@Suite struct OwnerBoundsTests {
    /// A batch of more than UInt32.max one-byte slots (4 GiB and a page: the emulator backs only what is touched).
    @Test func aGrantOfACacheWithMoreThanUInt32MaxSlotsSaysUInt32Max() throws {
        var config = LLMConfig()
        config.memoryPool = MemoryPoolConfig(size: (1 << 32) + (1 << 16))
        let instance = LLMDataDist(role: .prompt, clusterID: 1)
        var environment = emulatorEnvironment()
        environment["DATADIST_EMULATE_DEVICE_MEMORY"] = "5GiB"
        try instance.initialize(config, environment: environment)
        defer { instance.finalize() }
        let manager = try instance.cacheManager
        let slots = Int64(UInt32.max) + 1
        let cache = try manager.allocateCache(
            CacheDesc(numTensors: 1, shape: [slots], dataType: .int8), keys: [CacheKey(promptClusterID: 1, reqID: 4)])
        let request = ResolveRequest(
            target: .key(reqID: 4, prefixID: .max, modelID: 0), write: false, tensors: 0..<1, bytesPerSlot: 1,
            requesterKind: .device, requesterIsBlocks: false, blocks: [])
        let grant = try manager.links.policy.resolve(request, link: 3).get()
        #expect(grant.slots == UInt32.max && grant.stride == 1 && grant.extents.count == 1)
        #expect(manager.links.policy.release(ReleaseNotice(pinID: grant.pinID, succeeded: true), link: 3))
        try manager.deallocateCache(cache)
        #expect(manager.audit().isClean)
    }
}
