import DataDist
import Testing

/// Spec §15.4: copy_cache, copy_blocks, swap_blocks.
@Suite struct CopyTests {
    @Test func d01ToD03CopyCacheMovesSlotsOffsetsAndSizes() throws {
        try withCacheManager { manager in
            let src = try manager.allocateCache(CacheDesc(numTensors: 2, shape: [4, 4], dataType: .int32))
            let dst = try manager.allocateCache(CacheDesc(numTensors: 2, shape: [4, 8], dataType: .int32))
            for tensor in 0..<2 {
                writeInt32s((0..<16).map { Int32($0 + tensor * 100) }, at: src.tensorAddresses[tensor])
                writeInt32s(Array(repeating: 0, count: 32), at: dst.tensorAddresses[tensor])
            }
            try manager.copyCache(dst: dst, src: src, dstBatchIndex: 2, srcBatchIndex: 1)
            try manager.copyCache(dst: dst, src: src, dstBatchIndex: 1, srcBatchIndex: 0, size: 8)
            try manager.copyCache(dst: dst, src: src, dstBatchIndex: 0, srcBatchIndex: 2, offset: 4, size: 8)
            for tensor in 0..<2 {
                let base = Int32(tensor * 100)
                let ints = readInt32s(at: dst.tensorAddresses[tensor], count: 32)
                #expect(Array(ints[16..<20]) == [4, 5, 6, 7].map { $0 + base })
                #expect(Array(ints[8..<12]) == [base, 1 + base, 0, 0])
                #expect(Array(ints[0..<4]) == [0, 9 + base, 10 + base, 0])
                #expect(ints[20...].allSatisfy { $0 == 0 })
            }
            try manager.deallocateCache(src)
            try manager.deallocateCache(dst)
        }
    }

    @Test func copyCacheChecksEveryBound() throws {
        try withCacheManager(hostPool: 1 << 20) { manager in
            let src = try manager.allocateCache(CacheDesc(numTensors: 2, shape: [4, 4], dataType: .int32))
            let dst = try manager.allocateCache(
                CacheDesc(numTensors: 2, shape: [2, 8], dataType: .int32, placement: .host))
            let three = try manager.allocateCache(CacheDesc(numTensors: 3, shape: [4, 4], dataType: .int32))
            let blocks = try manager.allocateBlocksCache(CacheDesc(numTensors: 2, shape: [4, 4], dataType: .int32))
            expectRefusal(.paramInvalid, mentioning: ["srcBatchIndex 4"], in: manager) {
                try manager.copyCache(dst: dst, src: src, srcBatchIndex: 4)
            }
            expectRefusal(.paramInvalid, mentioning: ["dstBatchIndex 2"], in: manager) {
                try manager.copyCache(dst: dst, src: src, dstBatchIndex: 2)
            }
            expectRefusal(.paramInvalid, mentioning: ["offset 16"], in: manager) {
                try manager.copyCache(dst: dst, src: src, offset: 16)
            }
            expectRefusal(.paramInvalid, mentioning: ["17 bytes"], in: manager) {
                try manager.copyCache(dst: dst, src: src, size: 17)
            }
            expectRefusal(.paramInvalid, mentioning: ["3 tensors"], in: manager) {
                try manager.copyCache(dst: three, src: src)
            }
            for bad in [0, -2] {
                expectRefusal(.paramInvalid, mentioning: ["size is \(bad)"], in: manager) {
                    try manager.copyCache(dst: dst, src: src, size: bad)
                }
            }
            expectRefusal(.paramInvalid, mentioning: ["offset is -1"], in: manager) {
                try manager.copyCache(dst: dst, src: src, offset: -1)
            }
            expectRefusal(.paramInvalid, mentioning: ["blocks cache"], in: manager) {
                try manager.copyCache(dst: blocks, src: src)
            }
            let gone = Cache(cacheID: 999, desc: src.desc, tensorAddresses: src.tensorAddresses, isBlocksCache: false)
            expectRefusal(.kvCacheNotExist, mentioning: ["999"], in: manager) {
                try manager.copyCache(dst: dst, src: gone)
            }
            try manager.copyCache(dst: dst, src: src, dstBatchIndex: 1, srcBatchIndex: 3)
            for cache in [src, dst, three] { try manager.deallocateCache(cache) }
            try manager.deallocateBlocksCache(blocks)
        }
    }

    @Test func d05CopyBlocksInsideOneCache() throws {
        try withCacheManager { manager in
            let blocks = try manager.allocateBlocksCache(CacheDesc(numTensors: 2, shape: [4, 4], dataType: .int32))
            for tensor in 0..<2 { writeInt32s((0..<16).map(Int32.init), at: blocks.tensorAddresses[tensor]) }
            try manager.copyBlocks(blocks, [0: [1, 3], 2: [2]])
            for tensor in 0..<2 {
                #expect(
                    readInt32s(at: blocks.tensorAddresses[tensor], count: 16) == [
                        0, 1, 2, 3, 0, 1, 2, 3, 8, 9, 10, 11, 0, 1, 2, 3,
                    ])
            }
            expectRefusal(.paramInvalid, mentioning: ["block 4"], in: manager) {
                try manager.copyBlocks(blocks, [0: [4]])
            }
            expectRefusal(.paramInvalid, mentioning: ["block -1"], in: manager) {
                try manager.copyBlocks(blocks, [-1: [0]])
            }
            let contiguous = try manager.allocateCache(CacheDesc(numTensors: 1, shape: [4, 4], dataType: .int32))
            expectRefusal(.paramInvalid, mentioning: ["not a blocks cache"], in: manager) {
                try manager.copyBlocks(contiguous, [0: [1]])
            }
            try manager.deallocateBlocksCache(blocks)
            try manager.deallocateCache(contiguous)
        }
    }

    @Test func d04SwapInMovesHostBlocksToDeviceBlocksMergingRuns() throws {
        try withCacheManager { manager in
            let host = UnsafeMutablePointer<Int32>.allocate(capacity: 512)
            defer { host.deallocate() }
            for index in 0..<512 { host[index] = Int32(index) }
            let cpu = try Cache.createCPUCache(
                CacheDesc(numTensors: 1, shape: [128, 4], dataType: .int32, placement: .host),
                addresses: [UInt(bitPattern: host)])
            let npu = try manager.allocateBlocksCache(CacheDesc(numTensors: 1, shape: [64, 4], dataType: .int32))
            try manager.swapBlocks(src: cpu, dst: npu, [2: 1, 3: 2, 4: 0, 0: 3])
            let expected: [Int32] = [16, 17, 18, 19, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3]
            #expect(readInt32s(at: npu.tensorAddresses[0], count: 16) == expected)
            try manager.deallocateBlocksCache(npu)
        }
    }

    @Test func d06SwapOutAndBackAcrossTenTensors() throws {
        let blockElements = 64 * 1024
        try withCacheManager(devicePool: 32 << 20) { manager in
            let npu = try manager.allocateBlocksCache(
                CacheDesc(numTensors: 10, shape: [10, Int64(blockElements)], dataType: .float16))
            let hostBytes = 20 * blockElements * 2
            let hostTensors = (0..<10).map { _ in UnsafeMutableRawPointer.allocate(byteCount: hostBytes, alignment: 64)
            }
            defer { for item in hostTensors { item.deallocate() } }
            let cpu = try Cache.createCPUCache(
                CacheDesc(numTensors: 10, shape: [20, Int64(blockElements)], dataType: .float16, placement: .host),
                addresses: hostTensors.map { UInt(bitPattern: $0) })
            let blockInts = blockElements / 2
            for tensor in 0..<10 {
                writeInt32s(
                    (0..<(10 * blockInts)).map { Int32($0 / blockInts * 1000 + tensor) },
                    at: npu.tensorAddresses[tensor])
            }
            let mapping = [3: 4, 0: 0, 1: 1, 2: 2, 5: 6, 6: 7, 7: 8, 9: 9]
            try manager.swapBlocks(src: npu, dst: cpu, mapping)
            for tensor in 0..<10 {
                writeInt32s(Array(repeating: -1, count: 10 * blockInts), at: npu.tensorAddresses[tensor])
            }
            try manager.swapBlocks(src: cpu, dst: npu, Dictionary(uniqueKeysWithValues: mapping.map { ($1, $0) }))
            for tensor in 0..<10 {
                let ints = readInt32s(at: npu.tensorAddresses[tensor], count: 10 * blockInts)
                for block in 0..<10 {
                    let first = ints[block * blockInts]
                    let last = ints[(block + 1) * blockInts - 1]
                    let want: Int32 = mapping[block] == nil ? -1 : Int32(block * 1000 + tensor)
                    #expect(first == want && last == want, "tensor \(tensor) block \(block)")
                }
            }
            try manager.deallocateBlocksCache(npu)
        }
    }

    @Test func d07AndD08SwapRefusals() throws {
        try withCacheManager(hostPool: 1 << 20) { manager in
            let npu = try manager.allocateBlocksCache(CacheDesc(numTensors: 1, shape: [10, 4], dataType: .int32))
            let otherNPU = try manager.allocateBlocksCache(CacheDesc(numTensors: 1, shape: [10, 4], dataType: .int32))
            let host = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 64)
            defer { host.deallocate() }
            let cpu = try Cache.createCPUCache(
                CacheDesc(numTensors: 1, shape: [10, 4], dataType: .int32, placement: .host),
                addresses: [UInt(bitPattern: host)])
            expectRefusal(.paramInvalid, mentioning: ["block -1"], in: manager) {
                try manager.swapBlocks(src: cpu, dst: npu, [-1: 0])
            }
            expectRefusal(.paramInvalid, mentioning: ["block 10"], in: manager) {
                try manager.swapBlocks(src: cpu, dst: npu, [10: 0])
            }
            expectRefusal(.paramInvalid, mentioning: ["both .device"], in: manager) {
                try manager.swapBlocks(src: npu, dst: otherNPU, [0: 0])
            }
            let wider = try Cache.createCPUCache(
                CacheDesc(numTensors: 1, shape: [10, 8], dataType: .int32, placement: .host),
                addresses: [UInt(bitPattern: host)])
            expectRefusal(.paramInvalid, mentioning: ["32 bytes", "16"], in: manager) {
                try manager.swapBlocks(src: wider, dst: npu, [0: 0])
            }
            let registered = try manager.registerBlocksCache(
                CacheDesc(numTensors: 1, shape: [10, 4], dataType: .int32), addresses: [UInt(bitPattern: host)])
            expectRefusal(.paramInvalid, mentioning: ["registered"], in: manager) {
                try manager.swapBlocks(src: cpu, dst: registered, [0: 0])
            }
            let contiguous = try manager.allocateCache(
                CacheDesc(numTensors: 1, shape: [10, 4], dataType: .int32, placement: .host))
            expectRefusal(.paramInvalid, mentioning: ["not a blocks cache"], in: manager) {
                try manager.swapBlocks(src: contiguous, dst: npu, [0: 0])
            }
            try manager.deallocateBlocksCache(otherNPU)
            expectRefusal(.kvCacheNotExist, mentioning: ["\(otherNPU.cacheID)"], in: manager) {
                try manager.swapBlocks(src: otherNPU, dst: cpu, [0: 0])
            }
            try manager.deallocateBlocksCache(npu)
            try manager.deallocateCache(contiguous)
            try manager.unregisterCache(registered.cacheID)
        }
    }

    @Test func a14CreateCPUCacheNeedsHostPlacementAndOneAddressPerTensor() {
        #expect {
            _ = try Cache.createCPUCache(
                CacheDesc(numTensors: 2, shape: [4, 8], dataType: .float16), addresses: [1, 2])
        } throws: { ($0 as? LLMError)?.status == .paramInvalid }
        #expect {
            _ = try Cache.createCPUCache(
                CacheDesc(numTensors: 2, shape: [4, 8], dataType: .float16, placement: .host), addresses: [1, 2, 3])
        } throws: { ($0 as? LLMError)?.message.contains("3 addresses") == true }
        #expect {
            _ = try Cache.createCPUCache(
                CacheDesc(numTensors: 1, shape: [0, 8], dataType: .float16, placement: .host), addresses: [1])
        } throws: { ($0 as? LLMError)?.status == .paramInvalid }
    }
}
