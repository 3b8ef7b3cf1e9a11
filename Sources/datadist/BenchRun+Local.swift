import DataDist
import Foundation

/// Rows that run inside this process only.
extension BenchRun {
    /// swap_blocks both ways between a device blocks cache (61 layers × 2 tensors, 128 blocks of 128 KiB) and a
    /// `Cache.createCPUCache` over host memory (64 blocks): out moves 64 scattered device blocks into the host
    /// cache; in moves them back into 64 other scattered device blocks.
    func swapBlocks(_ manager: CacheManager) throws {
        let (tensors, deviceBlocks, hostBlocks, blockBytes) = (122, 128, 64, 128 << 10)
        let device = try manager.allocateBlocksCache(
            BenchBlocks.desc(tensors: tensors, blocks: deviceBlocks, blockBytes: blockBytes, placement: .device))
        defer { try? manager.deallocateBlocksCache(device) }
        var hostAddresses: [UInt] = []
        defer { hostAddresses.forEach(BenchMemory.free) }
        for _ in 0..<tensors {
            guard let address = BenchMemory.allocate(hostBlocks * blockBytes) else {
                throw BenchFailure("swap_blocks: cannot allocate \(hostBlocks * blockBytes) host bytes")
            }
            hostAddresses.append(address)
        }
        let host = try Cache.createCPUCache(
            BenchBlocks.desc(tensors: tensors, blocks: hostBlocks, blockBytes: blockBytes, placement: .host),
            addresses: hostAddresses)
        let out = BenchBlocks.scattered(
            count: hostBlocks, sourceBlocks: deviceBlocks, destinationBlocks: hostBlocks, seed: 7)
        BenchBlocks.fill(device.tensorAddresses, blocks: out.map(\.0), blockBytes: blockBytes)
        let unused = (0..<deviceBlocks).filter { block in !out.contains { $0.0 == block } }
        var generator = SplitMix(state: 11)
        let back = Array(zip(out.map(\.1), unused.shuffled(using: &generator)))  // host block → device block
        let origin = Dictionary(uniqueKeysWithValues: out.map { ($0.1, $0.0) })  // host block → its device source
        let bytes = tensors * hostBlocks * blockBytes
        let copy = CopyCeilings.Pattern(segments: tensors * hostBlocks, segmentBytes: blockBytes, scattered: true)
        let shape = "61 layers × 2 tensors, \(hostBlocks) scattered 128 KiB blocks"

        let outMap = Dictionary(uniqueKeysWithValues: out)
        let swapOut = { () throws(LLMError) in try manager.swapBlocks(src: device, dst: host, outMap) }
        try swapOut()
        var mismatch = BenchBlocks.mismatch(hostAddresses, pairs: out, blockBytes: blockBytes).map {
            "first swap out: \($0)"
        }
        for address in hostAddresses { BenchMemory.zero(address: address, bytes: hostBlocks * blockBytes) }
        var measured = try measure(copy) { _ in try swapOut() }
        mismatch =
            mismatch
            ?? BenchBlocks.mismatch(hostAddresses, pairs: out, blockBytes: blockBytes).map { "last swap out: \($0)" }
        try record {
            row(
                "swap_blocks_out", bytes: bytes, measured: measured, keys: "local", pattern: shape + ", device → host",
                mismatch: mismatch)
        }

        let backMap = Dictionary(uniqueKeysWithValues: back)
        let expected = back.map { (origin[$0.0]!, $0.1) }  // device block's pattern → where it lands
        let swapIn = { () throws(LLMError) in try manager.swapBlocks(src: host, dst: device, backMap) }
        try swapIn()
        mismatch = BenchBlocks.mismatch(device.tensorAddresses, pairs: expected, blockBytes: blockBytes).map {
            "first swap in: \($0)"
        }
        for (_, block) in back {
            for address in device.tensorAddresses {
                BenchMemory.zero(address: address + UInt(block * blockBytes), bytes: blockBytes)
            }
        }
        measured = try measure(copy) { _ in try swapIn() }
        mismatch =
            mismatch
            ?? BenchBlocks.mismatch(device.tensorAddresses, pairs: expected, blockBytes: blockBytes).map {
                "last swap in: \($0)"
            }
        try record {
            row(
                "swap_blocks_in", bytes: bytes, measured: measured, keys: "local", pattern: shape + ", host → device",
                mismatch: mismatch)
        }
    }

    /// copy_cache: one tensor of `size` per call between two device caches, both rotating over rings.
    func copyCache(_ size: Int, manager: CacheManager) throws -> BenchRow {
        let slots = max(1, ringBytes / size)
        let source = try Self.ring(manager, slots: slots, bytes: size)
        defer { try? manager.deallocateCache(source) }
        let destination = try Self.ring(manager, slots: slots, bytes: size)
        defer { try? manager.deallocateCache(destination) }
        let (from, to) = (source.tensorAddresses[0], destination.tensorAddresses[0])
        for slot in 0..<slots {
            KVPattern.fill(address: from + UInt(slot * size), bytes: size, request: UInt64(slot), tensor: 0)
        }
        let copy = { (i: Int) throws(LLMError) in
            try manager.copyCache(dst: destination, src: source, dstBatchIndex: i % slots, srcBatchIndex: i % slots)
        }
        try copy(0)
        var mismatch = Self.check(base: to, slot: 0, bytes: size, id: 0, what: "first copy")
        BenchMemory.zero(address: to, bytes: size)
        let measured = try measure(CopyCeilings.Pattern(segments: 1, segmentBytes: size, scattered: false)) { i in
            try copy(i)
        }
        let last = (measured.timing.iterations - 1) % slots
        mismatch = mismatch ?? Self.check(base: to, slot: last, bytes: size, id: UInt64(last), what: "last copy")
        return row(
            "copy_cache", bytes: size, measured: measured, keys: "local", pattern: "1 tensor", mismatch: mismatch)
    }

    /// Tensor sizes of the allocate rows: below glibc's mmap threshold (4 KiB, served from its thread cache), and
    /// above it (256 KiB, 1 MiB: glibc maps and unmaps on every malloc+free pair).
    static let allocateTensorBytes = [4 << 10, 256 << 10, 1 << 20]

    /// allocate: allocateCache + deallocateCache of a 4-tensor cache (4 × `tensorBytes`) vs glibc malloc + free of
    /// the same four tensors, timed in alternating slices. GB/s = tensor bytes allocated and freed per second; the
    /// ceiling is malloc+free's.
    func allocate(_ manager: CacheManager, tensorBytes: Int) throws -> BenchRow {
        let tensors = 4
        let desc = CacheDesc(numTensors: tensors, shape: [1, Int64(tensorBytes / 2)], dataType: .float16)
        for _ in 0..<100 { try manager.deallocateCache(try manager.allocateCache(desc)) }
        // The addresses malloc returned, summed: a use of each pointer the optimizer cannot drop, so it cannot
        // remove the malloc+free pairs (inlined into this loop, it did).
        var addressSum: UInt = 0
        let mallocFree = { (_: Int) in
            withUnsafeTemporaryAllocation(of: UnsafeMutableRawPointer?.self, capacity: tensors) { pointers in
                for index in 0..<tensors {
                    pointers[index] = malloc(tensorBytes)
                    addressSum &+= UInt(bitPattern: pointers[index])
                }
                for pointer in pointers { free(pointer) }
            }
        }
        for i in 0..<100 { mallocFree(i) }
        // Alternating slices, so that both see the same load from other tenants of the machine.
        var ours = BenchTiming.Result(iterations: 0, seconds: 0)
        var glibc = BenchTiming.Result(iterations: 0, seconds: 0)
        let rounds = 10
        for _ in 0..<rounds {
            let part = try BenchTiming.loop(duration: duration / Double(rounds), minIterations: 10, samples: true) {
                _ throws(LLMError) in try manager.deallocateCache(try manager.allocateCache(desc))
            }
            let ceiling = BenchTiming.loop(
                duration: duration / Double(rounds), minIterations: 10, samples: true, mallocFree)
            ours.iterations += part.iterations
            ours.seconds += part.seconds
            ours.samples += part.samples
            glibc.iterations += ceiling.iterations
            glibc.seconds += ceiling.seconds
            glibc.samples += ceiling.samples
        }
        let bytes = tensors * tensorBytes
        let gbps = Double(bytes) * Double(ours.iterations) / ours.seconds / 1e9
        let ceiling = Double(bytes) * Double(glibc.iterations) / glibc.seconds / 1e9
        let audit = manager.audit()
        return BenchRow(
            operation: "allocate", bytes: bytes, gbps: gbps, ceilingGBps: ceiling, ratio: gbps / ceiling,
            p50us: BenchTiming.quantileMicroseconds(ours.samples, 0.5),
            p99us: BenchTiming.quantileMicroseconds(ours.samples, 0.99),
            ceilingP50us: BenchTiming.quantileMicroseconds(glibc.samples, 0.5),
            ceilingP99us: BenchTiming.quantileMicroseconds(glibc.samples, 0.99), iterations: ours.iterations,
            seconds: ours.seconds, keys: "local",
            pattern: "allocate+deallocate 4 × \(ByteSize(bytes: tensorBytes)); ceiling = glibc malloc+free",
            verified: audit.liveCaches == 0 && addressSum != 0,
            notes: audit.liveCaches == 0
                ? (addressSum != 0 ? nil : "malloc returned no memory")
                : "caches left after the loop: \(audit.liveCaches)")
    }
}
