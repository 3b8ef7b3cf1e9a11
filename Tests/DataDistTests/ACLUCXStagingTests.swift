import DataDistTestSupport
import DeviceRuntime
import Foundation
import Testing

@testable import DataDist

/// Links on the ACL backend over UCX (TCP, as between hosts), over a private copy of the fake vendor library:
/// device memory is never given to UCX. The fake's counters show every byte copied device → host by the sender
/// and host → device by the receiver, and its pinned host buffers allocated and freed again.
@Suite("ACL over UCX: staged device memory", .serialized, .timeLimit(.minutes(1)))
struct ACLUCXStagingTests {
    /// 2 layers (4 tensors) of 768 KiB: 12 staged chunks each through a link's four 64 KiB buffers.
    static let desc = CacheDesc(numTensors: 4, shape: [1, 196_608], dataType: .int32)
    static let ints = 196_608

    func fill(_ cache: Cache, seed: Int32) {
        for (tensor, address) in cache.tensorAddresses.enumerated() {
            writeInt32s((0..<Self.ints).map { seed &+ Int32(tensor * 1_000_000 + $0) }, at: address)
        }
    }

    func matches(_ cache: Cache, seed: Int32) -> Bool {
        cache.tensorAddresses.enumerated().allSatisfy { tensor, address in
            readInt32s(at: address, count: Self.ints) == (0..<Self.ints).map { seed &+ Int32(tensor * 1_000_000 + $0) }
        }
    }

    func isDevice(_ cache: Cache, in ranges: [Range<UInt>]) -> Bool {
        cache.tensorAddresses.contains { address in ranges.contains { $0.contains(address) } }
    }

    @Test(
        "pulls and batches stage: every byte copied device → pinned host on the owner, host → device here, none by UCX")
    func stagedPull() throws {
        let pair = try StagedACLPair()
        // Each side's link holds one lane of four 64 KiB pinned buffers, each with its stream (256 KiB per link).
        #expect(pair.open("host") == 8 && pair.open("streams") == 8)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let key = CacheKey(promptClusterID: 1, reqID: 7)
        let source = try prompt.allocateCache(Self.desc, keys: [key])
        fill(source, seed: 11)
        let destination = try decoder.allocateCache(Self.desc)
        let bytes = UInt64(4 * Self.ints * 4)
        let copies = try pair.copies { try decoder.pullCache(key, into: destination) }
        #expect(matches(destination, seed: 11))
        #expect(copies.toHost == bytes && copies.toDevice == bytes && copies.deviceToDevice == 0)
        #expect(pair.count("aclrtMemcpyAsync") >= 48)
        // A batch of two pulls in one call.
        let firstKey = CacheKey(promptClusterID: 1, reqID: 1)
        let secondKey = CacheKey(promptClusterID: 1, reqID: 2)
        let first = try prompt.allocateCache(Self.desc, keys: [firstKey])
        let second = try prompt.allocateCache(Self.desc, keys: [secondKey])
        fill(first, seed: 1)
        fill(second, seed: 2)
        let intoFirst = try decoder.allocateCache(Self.desc)
        let intoSecond = try decoder.allocateCache(Self.desc)
        let batchCopies = try pair.copies {
            try decoder.pullCaches([
                CachePull(firstKey, into: intoFirst), CachePull(secondKey, into: intoSecond),
            ])
        }
        #expect(matches(intoFirst, seed: 1) && matches(intoSecond, seed: 2))
        #expect(batchCopies.toHost == 2 * bytes && batchCopies.toDevice == 2 * bytes)
        for cache in [first, second] { try prompt.deallocateCache(cache) }
        for cache in [intoFirst, intoSecond] { try decoder.deallocateCache(cache) }
        let registered = try pair.registered()
        #expect(!isDevice(source, in: registered) && !isDevice(destination, in: registered))
        try prompt.deallocateCache(source)
        try decoder.deallocateCache(destination)
        try pair.finish()
    }

    @Test("pushes, layer ranges, id+index and blocks stage both ways; pinned buffers are freed at unlink")
    func stagedPushesBlocksAndBatches() throws {
        let pair = try StagedACLPair(remoteAccessible: true)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let bytes = UInt64(4 * Self.ints * 4)
        // A push: the decoder copies device → host, the prompt host → device.
        let target = try prompt.allocateCache(Self.desc)
        let source = try decoder.allocateCache(Self.desc)
        fill(source, seed: 500)
        let slot = CacheKeyByIdAndIndex(clusterID: 1, cacheID: target.cacheID, batchIndex: 0)
        var copies = try pair.copies { try decoder.pushCache(to: slot, from: source) }
        #expect(matches(target, seed: 500))
        #expect(copies.toHost == bytes && copies.toDevice == bytes)
        // One layer of two, by id and index, back into another cache.
        let back = try decoder.allocateCache(Self.desc)
        copies = try pair.copies {
            try decoder.pullCache(slot, into: back, layers: LayerRange(source: 1..<2, destination: 1..<2))
        }
        for tensor in 2..<4 {
            #expect(
                readInt32s(at: back.tensorAddresses[tensor], count: Self.ints)
                    == (0..<Self.ints).map { 500 &+ Int32(tensor * 1_000_000 + $0) })
        }
        #expect(copies.toHost == bytes / 2 && copies.toDevice == bytes / 2)
        // Blocks: four blocks of 64 KiB per tensor, two of them pulled, then pushed back elsewhere.
        let blockDesc = CacheDesc(numTensors: 2, shape: [4, 16_384], dataType: .int32)
        let blocksKey = BlocksCacheKey(clusterID: 1)
        let remoteBlocks = try prompt.allocateBlocksCache(blockDesc, key: blocksKey)
        for (tensor, address) in remoteBlocks.tensorAddresses.enumerated() {
            writeInt32s((0..<65_536).map { Int32(tensor * 100_000 + $0) }, at: address)
        }
        let localBlocks = try decoder.allocateBlocksCache(blockDesc)
        copies = try pair.copies {
            try decoder.pullBlocks(blocksKey, into: localBlocks, srcBlocks: [3, 1], dstBlocks: [0, 2])
        }
        for tensor in 0..<2 {
            let pulled = readInt32s(at: localBlocks.tensorAddresses[tensor], count: 65_536)
            #expect(Array(pulled[0..<16_384]) == (49_152..<65_536).map { Int32(tensor * 100_000 + $0) })
            #expect(Array(pulled[32_768..<49_152]) == (16_384..<32_768).map { Int32(tensor * 100_000 + $0) })
        }
        #expect(copies.toHost == 4 * 65_536 && copies.toDevice == 4 * 65_536)
        copies = try pair.copies {
            try decoder.pushBlocks(to: blocksKey, from: localBlocks, srcBlocks: [0], dstBlocks: [2])
        }
        #expect(
            Array(readInt32s(at: remoteBlocks.tensorAddresses[1], count: 65_536)[32_768..<49_152])
                == (49_152..<65_536).map { Int32(100_000 + $0) })
        #expect(copies.toHost == 2 * 65_536 && copies.toDevice == 2 * 65_536)
        let registered = try pair.registered()
        #expect(!isDevice(target, in: registered) && !isDevice(localBlocks, in: registered))
        try prompt.deallocateCache(target)
        try prompt.deallocateBlocksCache(remoteBlocks)
        for cache in [source, back] { try decoder.deallocateCache(cache) }
        try decoder.deallocateBlocksCache(localBlocks)
        try pair.finish()
    }

    @Test(
        "a device copy failing mid-transfer fails that pull, on the owner (D2H) or here (H2D); the retry gets every byte",
        arguments: [("copy@3", nil), (nil, "copy@3")] as [(String?, String?)])
    func aFailedDeviceCopyFailsOnlyThatTransfer(faults: (prompt: String?, decoder: String?)) throws {
        let pair = try StagedACLPair(faults: faults)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let key = CacheKey(promptClusterID: 1, reqID: 9)
        let source = try prompt.allocateCache(Self.desc, keys: [key])
        fill(source, seed: 77)
        let destination = try decoder.allocateCache(Self.desc)
        do {
            try decoder.pullCache(key, into: destination)
            Issue.record("the pull succeeded through an injected copy fault")
        } catch {
            #expect(error.message.contains("device memory failed"), "\(error)")
            #expect(error.message.contains("injected fault"), "\(error)")
        }
        try decoder.pullCache(key, into: destination)
        #expect(matches(destination, seed: 77))
        try prompt.deallocateCache(source)
        try decoder.deallocateCache(destination)
        try pair.finish()
    }

    @Test("DATADIST_UCX_STAGING_BYTES that is not a size in range is refused by name, and nothing is initialized")
    func badStagingSizes() throws {
        for text in ["lots", "-1", "1KiB", "2GiB", ""] {
            let instance = LLMDataDist(role: .decoder, clusterID: 3)
            let environment = [
                "DATADIST_BACKEND": "acl",
                "DATADIST_ACL_LIBRARY": TestPaths.builtProducts.appendingPathComponent("lib_FakeAscendCL.so").path,
                "DATADIST_UCX_STAGING_BYTES": text,
            ]
            var config = LLMConfig()
            config.memoryPool = MemoryPoolConfig(size: 1 << 20)
            do {
                try instance.initialize(config, environment: environment)
                Issue.record("\"\(text)\" was accepted")
            } catch {
                #expect(error.status == .paramInvalid)
                #expect(error.message.contains("DATADIST_UCX_STAGING_BYTES is \"\(text)\""), "\(error)")
            }
            #expect(throws: LLMError.self) { _ = try instance.cacheManager }
            var good = environment
            good["DATADIST_UCX_STAGING_BYTES"] = "1MiB"
            try instance.initialize(config, environment: good)
            #expect(try instance.cacheManager.audit().isClean)
            instance.finalize()
        }
    }

    @Test("on the emulator, UCX keeps registering the device pool: its device memory is host memory")
    func theEmulatorRegistersItsPools() throws {
        let pair = try LinkedPair(transport: .ucxTCP)
        let prompt = try pair.prompt.cacheManager
        let cache = try prompt.allocateCache(CacheDesc(numTensors: 1, shape: [1, 16], dataType: .int32))
        #expect(isDevice(cache, in: prompt.links.ucx.registeredRanges))
        try prompt.deallocateCache(cache)
        try pair.finish()
    }
}
