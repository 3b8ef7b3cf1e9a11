import DataDist
import Testing

/// Spec §15.5 and §7.3–7.4: pulls, key consumption, the transfer support matrix.
@Suite(.timeLimit(.minutes(1))) struct PullTests {
    let eightTensors = CacheDesc(numTensors: 8, shape: [4, 128], dataType: .int32)

    func key(_ reqID: UInt64, model: UInt64 = 0) -> CacheKey {
        CacheKey(promptClusterID: 1, reqID: reqID, modelID: model)
    }

    @Test(arguments: TestTransport.transfers) func e01E02PullByKeyIntoAHostCacheThenTheKeysAreConsumed(
        transport: TestTransport
    ) throws {
        let pair = try LinkedPair(transport: transport)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let source = try prompt.allocateCache(eightTensors, keys: [key(1000), key(1001), key(1002), key(1003)])
        fill(source, seed: 0, ints: 4 * 128)
        let destination = try decoder.allocateCache(
            CacheDesc(numTensors: 8, shape: [2, 128], dataType: .int32, placement: .host))
        try decoder.pullCache(key(1001), into: destination, batchIndex: 1)
        try decoder.pullCache(key(1002), into: destination, batchIndex: 0, size: 512)
        for tensor in 0..<8 {
            let ints = readInt32s(at: destination.tensorAddresses[tensor], count: 256)
            #expect(Array(ints[0..<128]) == ascending(from: tensor * 10_000 + 256, count: 128), "slot 2 → batch 0")
            #expect(Array(ints[128..<256]) == ascending(from: tensor * 10_000 + 128, count: 128), "slot 1 → batch 1")
        }
        #expect(prompt.audit().boundKeys == 2)
        for consumed in [key(1001), key(1002)] {
            expectRefusal(.kvCacheNotExist, mentioning: ["req \(consumed.reqID)"], in: decoder) {
                try decoder.pullCache(consumed, into: destination)
            }
        }
        try prompt.removeCacheKey(key(1000))
        try prompt.removeCacheKey(key(1003))
        try prompt.deallocateCache(source)
        try decoder.deallocateCache(destination)
        #expect(eventually { prompt.audit().isClean })
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func e03APullAfterRemoveCacheKeyFails(transport: TestTransport) throws {
        let pair = try LinkedPair(transport: transport)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let source = try prompt.allocateCache(eightTensors, keys: [key(1)])
        try prompt.removeCacheKey(key(1))
        let destination = try decoder.allocateCache(eightTensors)
        expectRefusal(.kvCacheNotExist, in: decoder) { try decoder.pullCache(key(1), into: destination) }
        try prompt.deallocateCache(source)
        try decoder.deallocateCache(destination)
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func e04SizeAndBatchChecksOnBothSides(transport: TestTransport) throws {
        let pair = try LinkedPair(transport: transport)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let source = try prompt.allocateCache(
            CacheDesc(numTensors: 1, shape: [4, 64], dataType: .int32), keys: [key(1), key(2), key(3), key(4)])
        let destination = try decoder.allocateCache(CacheDesc(numTensors: 1, shape: [2, 128], dataType: .int32))
        expectRefusal(.paramInvalid, mentioning: ["513"], in: decoder) {
            try decoder.pullCache(key(1), into: destination, size: 513)
        }
        expectRefusal(.paramInvalid, mentioning: ["512", "256"], in: decoder) {
            try decoder.pullCache(key(1), into: destination)
        }
        expectRefusal(.paramInvalid, mentioning: ["batchIndex 2"], in: decoder) {
            try decoder.pullCache(key(1), into: destination, batchIndex: 2, size: 256)
        }
        #expect(prompt.audit().boundKeys == 4, "refused pulls consume nothing")
        try decoder.pullCache(key(1), into: destination, size: 256)
        #expect(prompt.audit().boundKeys == 3)
        for request in 2...4 { try prompt.removeCacheKey(key(UInt64(request))) }
        try prompt.deallocateCache(source)
        try decoder.deallocateCache(destination)
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func e05BlockPullsCheckBlockIndicesOnBothSides(transport: TestTransport)
        throws
    {
        let pair = try LinkedPair(transport: transport)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let source = try prompt.allocateBlocksCache(
            CacheDesc(numTensors: 2, shape: [128, 4], dataType: .int32), key: BlocksCacheKey(clusterID: 1, modelID: 0))
        fill(source, seed: 0, ints: 512)
        let destination = try decoder.allocateBlocksCache(CacheDesc(numTensors: 2, shape: [64, 4], dataType: .int32))
        let blocksKey = BlocksCacheKey(clusterID: 1)
        expectRefusal(.paramInvalid, mentioning: ["block 128"], in: decoder) {
            try decoder.pullBlocks(blocksKey, into: destination, srcBlocks: [0, 128], dstBlocks: [0, 1])
        }
        try decoder.pullBlocks(blocksKey, into: destination, srcBlocks: [2, 3, 4, 0], dstBlocks: [1, 2, 0, 3])
        for tensor in 0..<2 {
            let base = Int32(tensor * 10_000)
            let expected = [16, 17, 18, 19, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3].map { (value: Int32) in
                base + value
            }
            #expect(readInt32s(at: destination.tensorAddresses[tensor], count: 16) == expected)
        }
        expectRefusal(.paramInvalid, mentioning: ["block 64"], in: decoder) {
            try decoder.pullBlocks(blocksKey, into: destination, srcBlocks: [0], dstBlocks: [64])
        }
        expectRefusal(.paramInvalid, mentioning: ["6", "7"], in: decoder) {
            try decoder.pullBlocks(blocksKey, into: destination, srcBlocks: Array(0..<6), dstBlocks: Array(0..<7))
        }
        for (sources, targets) in [([Int](), [0]), ([0], [Int]())] {  // E15: both lists are needed
            expectRefusal(.paramInvalid, mentioning: ["needs source and destination blocks"], in: decoder) {
                try decoder.pullBlocks(blocksKey, into: destination, srcBlocks: sources, dstBlocks: targets)
            }
        }
        try decoder.pullBlocks(blocksKey, into: destination, srcBlocks: [5], dstBlocks: [5])
        #expect(prompt.audit().boundKeys == 1, "blocks pulls consume nothing")
        try prompt.deallocateBlocksCache(source)
        try decoder.deallocateBlocksCache(destination)
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func e06E07NoLinkAndOwnCluster(transport: TestTransport) throws {
        let pair = try LinkedPair(link: false, transport: transport)
        let decoder = try pair.decoder.cacheManager
        let destination = try decoder.allocateCache(eightTensors)
        expectRefusal(.notYetLink, mentioning: ["cluster 1"], in: decoder) {
            try decoder.pullCache(key(1), into: destination)
        }
        expectRefusal(.paramInvalid, mentioning: ["own cluster"], in: decoder) {
            try decoder.pullCache(CacheKey(promptClusterID: 2, reqID: 1), into: destination)
        }
        expectRefusal(.paramInvalid, mentioning: ["exactly one"], in: decoder) {
            try decoder.pullCache(CacheKey(promptClusterID: 1, reqID: 5, prefixID: 7), into: destination)
        }
        expectRefusal(.paramInvalid, mentioning: ["exactly one"], in: decoder) {
            try decoder.pullCache(CacheKey(promptClusterID: 1, reqID: .max), into: destination)
        }
        try decoder.deallocateCache(destination)
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func e08LayerRangesMustFitTheTensors(transport: TestTransport) throws {
        let pair = try LinkedPair(transport: transport)
        let decoder = try pair.decoder.cacheManager
        let one = try decoder.allocateCache(CacheDesc(numTensors: 1, shape: [1, 4], dataType: .int8))
        expectRefusal(.paramInvalid, mentioning: ["multiple of tensorsPerLayer 2"], in: decoder) {
            try decoder.pullCache(key(1), into: one, size: 4, layers: LayerRange(source: 0..<1, destination: 0..<1))
        }
        let ten = try decoder.allocateCache(CacheDesc(numTensors: 10, shape: [1, 4], dataType: .int8))
        for (layers, mention) in [
            (LayerRange(source: 0..<1, destination: 0..<1, tensorsPerLayer: 0), "tensorsPerLayer is 0"),
            (LayerRange(source: 0..<1, destination: 0..<1, tensorsPerLayer: 7), "multiple"),
            (LayerRange(source: 0..<1, destination: 0..<2), "differ in length"),
            (LayerRange(source: 0..<1, destination: 5..<6), "exceed the 5 layers"),
            (LayerRange(source: 1..<1, destination: 1..<1), "non-empty"),
        ] {
            expectRefusal(.paramInvalid, mentioning: [mention], in: decoder) {
                try decoder.pullCache(key(1), into: ten, layers: layers)
            }
        }
        try decoder.deallocateCache(one)
        try decoder.deallocateCache(ten)
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func layerWisePullsConsumeTheKeyOnlyOnceEveryTensorWasPulled(
        transport: TestTransport
    ) throws {
        let pair = try LinkedPair(transport: transport)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let source = try prompt.allocateCache(
            CacheDesc(numTensors: 4, shape: [2, 32], dataType: .int32), keys: [key(1), key(2)])
        fill(source, seed: 3, ints: 64)
        try prompt.deallocateCache(source)
        let destination = try decoder.allocateCache(CacheDesc(numTensors: 4, shape: [1, 32], dataType: .int32))
        try decoder.pullCache(key(1), into: destination, layers: LayerRange(source: 1..<2, destination: 1..<2))
        #expect(prompt.audit().boundKeys == 2)
        // A whole pull of the other key does not use up key 1's remaining layer (the reference's per-cache quirk).
        try decoder.pullCache(key(2), into: destination)
        #expect(prompt.audit().boundKeys == 1)
        try decoder.pullCache(key(1), into: destination, layers: LayerRange(source: 0..<1, destination: 0..<1))
        #expect(
            readInt32s(at: destination.tensorAddresses[0], count: 32) == ascending(from: 3, count: 32), "key 1, layer 0"
        )
        #expect(
            readInt32s(at: destination.tensorAddresses[3], count: 32) == ascending(from: 3 + 30_032, count: 32), "key 2"
        )
        #expect(eventually { prompt.audit().isClean }, "the deallocated cache went with its last key")
        try decoder.deallocateCache(destination)
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func deallocateBeforeThePullStillServesTheKeyThenFreesTheMemory(
        transport: TestTransport
    ) throws {
        let pair = try LinkedPair(transport: transport)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let source = try prompt.allocateCache(eightTensors, keys: [key(9)])
        fill(source, seed: 1, ints: 512)
        try prompt.deallocateCache(source)
        let destination = try decoder.allocateCache(CacheDesc(numTensors: 8, shape: [1, 128], dataType: .int32))
        try decoder.pullCache(key(9), into: destination, size: 512)
        #expect(prompt.audit().boundKeys == 0, "the key was taken by the grant")
        #expect(eventually { prompt.audit().isClean }, "the memory goes once the release is in")
        try decoder.deallocateCache(destination)
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func prefixKeysAreNeverConsumed(transport: TestTransport) throws {
        let pair = try LinkedPair(transport: transport)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let prefix = CacheKey(promptClusterID: 1, reqID: .max, prefixID: 42)
        let source = try prompt.allocateCache(eightTensors, keys: [prefix])
        let destination = try decoder.allocateCache(CacheDesc(numTensors: 8, shape: [1, 128], dataType: .int32))
        try decoder.pullCache(prefix, into: destination, size: 512)
        try decoder.pullCache(prefix, into: destination, size: 512)
        #expect(prompt.audit().boundKeys == 1)
        try prompt.removeCacheKey(prefix)
        try prompt.deallocateCache(source)
        try decoder.deallocateCache(destination)
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func pullingByIDAndIndexConsumesTheBoundKeyAndRefusesUnboundSlots(
        transport: TestTransport
    ) throws {
        let pair = try LinkedPair(transport: transport)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let source = try prompt.allocateCache(
            CacheDesc(numTensors: 2, shape: [2, 16], dataType: .int32), keys: [key(1)])
        fill(source, seed: 5, ints: 32)
        let destination = try decoder.allocateCache(CacheDesc(numTensors: 2, shape: [1, 16], dataType: .int32))
        let slot0 = CacheKeyByIdAndIndex(clusterID: 1, cacheID: source.cacheID, batchIndex: 0)
        let slot1 = CacheKeyByIdAndIndex(clusterID: 1, cacheID: source.cacheID, batchIndex: 1)
        expectRefusal(.kvCacheNotExist, mentioning: ["not remote-accessible"], in: decoder) {
            try decoder.pullCache(slot1, into: destination)
        }
        expectRefusal(.kvCacheNotExist, in: decoder) {
            try decoder.pullCache(CacheKeyByIdAndIndex(clusterID: 1, cacheID: 777), into: destination)
        }
        expectRefusal(.kvCacheNotExist, in: decoder) {
            try decoder.pullCache(
                CacheKeyByIdAndIndex(clusterID: 1, cacheID: source.cacheID, batchIndex: 2), into: destination)
        }
        try decoder.pullCache(slot0, into: destination)
        #expect(readInt32s(at: destination.tensorAddresses[1], count: 16) == ascending(from: 5 + 10_000, count: 16))
        #expect(prompt.audit().boundKeys == 0)
        expectRefusal(.kvCacheNotExist, in: decoder) { try decoder.pullCache(key(1), into: destination) }
        try prompt.deallocateCache(source)
        try decoder.deallocateCache(destination)
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func transferMatrixHostToHostAndBlocksToContiguous(
        transport: TestTransport
    ) throws {
        let pair = try LinkedPair(promptHostPool: 1 << 20, transport: transport)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let hostSource = try prompt.allocateCache(
            CacheDesc(numTensors: 1, shape: [1, 16], dataType: .int32, placement: .host), keys: [key(1)])
        let hostDestination = try decoder.allocateCache(
            CacheDesc(numTensors: 1, shape: [1, 16], dataType: .int32, placement: .host))
        expectRefusal(.featureNotEnabled, mentioning: ["host → host"], in: decoder) {
            try decoder.pullCache(key(1), into: hostDestination)
        }
        let deviceDestination = try decoder.allocateCache(CacheDesc(numTensors: 1, shape: [1, 16], dataType: .int32))
        if transport == .aclIPC {
            // The ACL backend's host pool (aclrtMallocHost) has neither a memfd nor an IPC key: only UCX reaches it.
            expectRefusal(.featureNotEnabled, mentioning: ["host pool", "acl backend", "UCX"], in: decoder) {
                try decoder.pullCache(key(1), into: deviceDestination)
            }
        } else {
            try decoder.pullCache(key(1), into: deviceDestination)
        }
        let blocks = try prompt.allocateBlocksCache(
            CacheDesc(numTensors: 1, shape: [4, 16], dataType: .int32), key: BlocksCacheKey(clusterID: 1))
        expectRefusal(.paramInvalid, mentioning: ["blocks → contiguous"], in: decoder) {
            try decoder.pullCache(CacheKeyByIdAndIndex(clusterID: 1, cacheID: blocks.cacheID), into: deviceDestination)
        }
        try prompt.deallocateCache(hostSource)
        try prompt.deallocateBlocksCache(blocks)
        try decoder.deallocateCache(hostDestination)
        try decoder.deallocateCache(deviceDestination)
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func aHostDestinationNeedsADevicePoolHere(transport: TestTransport) throws
    {
        let pair = try LinkedPair(decoderPool: nil, transport: transport)
        let decoder = try pair.decoder.cacheManager
        let destination = try decoder.allocateCache(
            CacheDesc(numTensors: 1, shape: [1, 16], dataType: .int32, placement: .host))
        expectRefusal(.paramInvalid, mentioning: ["device pool"], in: decoder) {
            try decoder.pullCache(key(1), into: destination)
        }
        try decoder.deallocateCache(destination)
        try pair.finish()
    }
}

/// Remote-cache-accessible mode: pushes, and pulls by id and index that consume nothing.
@Suite(.timeLimit(.minutes(1))) struct PushTests {
    @Test(arguments: TestTransport.transfers) func pushCacheWritesIntoTheRemoteSlotLayerByLayer(
        transport: TestTransport
    ) throws {
        let pair = try LinkedPair(remoteAccessible: true, transport: transport)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let target = try prompt.allocateCache(CacheDesc(numTensors: 4, shape: [2, 8], dataType: .int32))
        fill(target, seed: 0, ints: 16)
        let source = try decoder.allocateCache(CacheDesc(numTensors: 4, shape: [1, 8], dataType: .int32))
        fill(source, seed: 500, ints: 8)
        let slot1 = CacheKeyByIdAndIndex(clusterID: 1, cacheID: target.cacheID, batchIndex: 1)
        try decoder.pushCache(to: slot1, from: source, layers: LayerRange(source: 1..<2, destination: 0..<1))
        #expect(
            Array(readInt32s(at: target.tensorAddresses[0], count: 16)[8...]) == ascending(from: 500 + 20_000, count: 8)
        )
        #expect(
            Array(readInt32s(at: target.tensorAddresses[2], count: 16)[8...]) == ascending(from: 20_000 + 8, count: 8))
        try decoder.pushCache(to: slot1, from: source)
        #expect(
            Array(readInt32s(at: target.tensorAddresses[2], count: 16)[8...]) == ascending(from: 500 + 20_000, count: 8)
        )
        // In this mode a pull by id and index works on unbound slots and consumes nothing.
        let back = try decoder.allocateCache(CacheDesc(numTensors: 4, shape: [1, 8], dataType: .int32))
        try decoder.pullCache(CacheKeyByIdAndIndex(clusterID: 1, cacheID: target.cacheID, batchIndex: 0), into: back)
        #expect(readInt32s(at: back.tensorAddresses[3], count: 8) == ascending(from: 30_000, count: 8))
        expectRefusal(.paramInvalid, mentioning: ["CacheKeyByIdAndIndex"], in: decoder) {
            try decoder.pullCache(CacheKey(promptClusterID: 1, reqID: 1), into: back)
        }
        expectRefusal(.paramInvalid, mentioning: ["size"], in: decoder) {
            try decoder.pushCache(to: slot1, from: source, size: 4)
        }
        for cache in [source, back] { try decoder.deallocateCache(cache) }
        try prompt.deallocateCache(target)
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func pushBlocksWritesRemoteBlocks(transport: TestTransport) throws {
        let pair = try LinkedPair(remoteAccessible: true, transport: transport)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let target = try prompt.allocateBlocksCache(
            CacheDesc(numTensors: 2, shape: [8, 4], dataType: .int32), key: BlocksCacheKey(clusterID: 1, modelID: 2))
        fill(target, seed: 0, ints: 32)
        let source = try decoder.allocateBlocksCache(CacheDesc(numTensors: 2, shape: [4, 4], dataType: .int32))
        fill(source, seed: 900, ints: 16)
        try decoder.pushBlocks(
            to: BlocksCacheKey(clusterID: 1, modelID: 2), from: source, srcBlocks: [0, 1], dstBlocks: [6, 7])
        #expect(
            Array(readInt32s(at: target.tensorAddresses[1], count: 32)[24...])
                == ascending(from: 900 + 10_000, count: 8))
        expectRefusal(.paramInvalid, mentioning: ["block 8"], in: decoder) {
            try decoder.pushBlocks(
                to: BlocksCacheKey(clusterID: 1, modelID: 2), from: source, srcBlocks: [0], dstBlocks: [8])
        }
        try prompt.deallocateBlocksCache(target)
        try decoder.deallocateBlocksCache(source)
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func e14PushesNeedRemoteCacheAccess(transport: TestTransport) throws {
        let pair = try LinkedPair(transport: transport)
        let decoder = try pair.decoder.cacheManager
        let source = try decoder.allocateCache(CacheDesc(numTensors: 2, shape: [1, 8], dataType: .int32))
        let blocks = try decoder.allocateBlocksCache(CacheDesc(numTensors: 2, shape: [1, 8], dataType: .int32))
        expectRefusal(.paramInvalid, mentioning: ["enableRemoteCacheAccessible"], in: decoder) {
            try decoder.pushCache(to: CacheKeyByIdAndIndex(clusterID: 1, cacheID: 1), from: source)
        }
        expectRefusal(.paramInvalid, mentioning: ["enableRemoteCacheAccessible"], in: decoder) {
            try decoder.pushBlocks(to: BlocksCacheKey(clusterID: 1), from: blocks, srcBlocks: [0], dstBlocks: [0])
        }
        try decoder.deallocateCache(source)
        try decoder.deallocateBlocksCache(blocks)
        try pair.finish()
    }
}
