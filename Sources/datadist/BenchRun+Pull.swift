import DataDist
import Foundation

/// Rows that move bytes between the prompt process and a decoder here.
extension BenchRun {
    /// pull_cache bandwidth: one tensor of `size` per call through prefix keys, both sides rotating over rings.
    func pullCacheBandwidth(
        _ size: Int, server: BenchPrompt, decoder: BenchDecoder, operation: String = "pull_cache"
    ) throws -> BenchRow {
        let slots = max(1, ringBytes / size)
        let (name, base) = (uniqueName(), uniqueKeyBase())
        try server.send("cache \(name) \(size) \(slots) prefix \(base) pattern")
        defer { _ = try? server.send("free \(name)") }
        return try pullPrefixRing(
            size, slots: slots, keyBase: base, promptCluster: server.clusterID, decoder: decoder, operation: operation)
    }

    /// pull_cache bandwidth over a ring the prompt holds: `slots` slots of `size` bytes bound to the prefix keys
    /// `keyBase + slot`, each filled with `KVPattern(request: keyBase + slot, tensor: 0)`.
    func pullPrefixRing(
        _ size: Int, slots: Int, keyBase base: UInt64, promptCluster: UInt64, decoder: BenchDecoder,
        operation: String = "pull_cache"
    ) throws -> BenchRow {
        let destination = try Self.ring(decoder.manager, slots: slots, bytes: size)
        defer { try? decoder.manager.deallocateCache(destination) }
        let address = destination.tensorAddresses[0]
        let manager = decoder.manager
        let pull = { (i: Int) throws(LLMError) in
            let key = CacheKey(promptClusterID: promptCluster, reqID: .max, prefixID: base + UInt64(i % slots))
            try manager.pullCache(key, into: destination, batchIndex: i % slots)
        }
        // Warm-up: one pass over the rings (maps the peer's pages here); its first call is checked.
        try pull(0)
        var mismatch = Self.check(base: address, slot: 0, bytes: size, id: base, what: "first pull")
        let warmStart = ContinuousClock.now
        for i in 1..<slots where (ContinuousClock.now - warmStart).seconds < 1 { try pull(i) }
        let measured = try measure(CopyCeilings.Pattern(segments: 1, segmentBytes: size, scattered: false)) { i in
            try pull(i)
        }
        let last = (measured.timing.iterations - 1) % slots
        mismatch =
            mismatch ?? Self.check(base: address, slot: last, bytes: size, id: base + UInt64(last), what: "last pull")
        return row(
            operation, bytes: size, measured: measured,
            keys: "prefix", pattern: "1 tensor",
            copyThreads: operation == "copy_engine" ? (decoder.copyThreads ?? cores) : nil,
            mismatch: mismatch)
    }

    /// pull_cache latency: request keys (consumed by the pull), p50/p99 of the whole call, in generations of
    /// keys (`requestKeyGenerations`).
    func pullCacheLatency(_ size: Int, server: any BenchPromptSide, decoder: BenchDecoder) throws -> BenchRow {
        let (samples, mismatch) = try timedRequestKeyPulls(size, server: server, decoder: decoder)
        let timing = BenchTiming.Result(iterations: samples.count, seconds: samples.reduce(0, +), samples: samples)
        let ceilings = try self.ceilings.ceilings(
            CopyCeilings.Pattern(segments: 1, segmentBytes: size, scattered: false), duration: duration / 2)
        return row(
            "pull_cache", bytes: size, measured: Measured(timing: timing, ceilings: ceilings), keys: "request",
            pattern: "1 tensor, latency", mismatch: mismatch, latency: true)
    }

    /// Keys per generation of a request-key latency row.
    static func requestKeySlots(_ size: Int) -> Int { max(16, min(1024, (64 << 20) / size)) }

    /// `size`-byte pulls by request key into a ring, in generations of `requestKeySlots(size)` keys
    /// (`requestKeyGenerations`): the duration of each pull after the warm-up generation, and the first mismatch
    /// of the first generation's or the last pull's bytes. `afterGeneration(generation)` runs after each
    /// generation's pulls, untimed.
    func timedRequestKeyPulls(
        _ size: Int, server: any BenchPromptSide, decoder: BenchDecoder,
        afterGeneration: (_ generation: Int) throws -> Void = { _ in }
    ) throws -> (samples: [Double], mismatch: String?) {
        let slots = Self.requestKeySlots(size)
        let destinationSlots = max(1, ringBytes / size)
        let destination = try Self.ring(decoder.manager, slots: destinationSlots, bytes: size)
        defer { try? decoder.manager.deallocateCache(destination) }
        let address = destination.tensorAddresses[0]
        var samples: [Double] = []
        var mismatch: String?
        var lastBase: UInt64 = 0
        let clock = ContinuousClock()
        try requestKeyGenerations(slots: slots, bytes: size, server: server) {
            samples.reduce(0, +)
        } pull: { generation, base in
            for slot in 0..<slots {
                let key = CacheKey(promptClusterID: server.clusterID, reqID: base + UInt64(slot))
                let start = clock.now
                try decoder.manager.pullCache(key, into: destination, batchIndex: slot % destinationSlots)
                if generation > 0 { samples.append((clock.now - start).seconds) }
            }
            if generation == 0 {
                mismatch = Self.check(
                    base: address, slot: (slots - 1) % destinationSlots, bytes: size, id: base + UInt64(slots - 1),
                    what: "first generation")
            }
            lastBase = base
            try afterGeneration(generation)
        }
        mismatch =
            mismatch
            ?? Self.check(
                base: address, slot: (slots - 1) % destinationSlots, bytes: size, id: lastBase + UInt64(slots - 1),
                what: "last pull")
        return (samples, mismatch)
    }

    /// Request keys in generations, for rows whose pulls consume them: each generation binds a fresh source cache
    /// of `slots` keyed `bytes`-byte slots on the prompt (untimed), lets `pull(generation, firstKeyID)` consume
    /// them, and frees it. Generation 0 is a warm-up; it stops after whole generations once `timedSeconds()`
    /// reaches the row's duration (or the wall clock four times that).
    func requestKeyGenerations(
        slots: Int, bytes: Int, server: any BenchPromptSide, timedSeconds: () -> Double,
        pull: (_ generation: Int, _ firstKeyID: UInt64) throws -> Void
    ) throws {
        let wallStart = ContinuousClock.now
        var generation = 0
        while true {
            let (name, base) = (uniqueName(), uniqueKeyBase())
            try server.send("cache \(name) \(bytes) \(slots) request \(base) pattern")
            defer { _ = try? server.send("free \(name)") }
            try pull(generation, base)
            generation += 1
            if generation > 1
                && (timedSeconds() >= duration || (ContinuousClock.now - wallStart).seconds > 4 * duration + 2)
            {
                return
            }
        }
    }

    /// copy_engine: pull_cache with `LLMConfig.copyThreads` = 1 and = every core, interleaved per size; notes the
    /// smallest size from which splitting pays (≥ 5 % faster at that size and every larger one).
    func copyEngineRows(server: BenchPrompt, all: BenchDecoder, one: BenchDecoder) throws {
        var speedups: [(Int, Double)] = []
        for size in Self.copyEngineSizes {
            var pair: [Double] = []
            for decoder in [one, all] {
                try record {
                    let row = try pullCacheBandwidth(size, server: server, decoder: decoder, operation: "copy_engine")
                    pair.append(row.gbps)
                    return row
                }
            }
            speedups.append((size, pair[1] / pair[0]))
        }
        let pays = speedups.indices.first { start in speedups[start...].allSatisfy { $0.1 >= 1.05 } }
        let table = speedups.map { "\(ByteSize(bytes: $0.0)) \(BenchTable.f($0.1, 2))×" }.joined(separator: ", ")
        let verdict =
            pays.map { "splitting pays from \(ByteSize(bytes: speedups[$0].0))" }
            ?? "splitting did not pay at these sizes"
        let note =
            "copy engine (\(cores) threads vs 1; library threshold \(ByteSize(bytes: LLMConfig.parallelCopyThreshold))): \(table); \(verdict)"
        notes.append(note)
        for index in rows.indices where rows[index].operation == "copy_engine" {
            rows[index].notes = rows[index].notes ?? note
        }
    }

    /// push_cache: one tensor of `size` per call into the remote-accessible prompt's cache, by cache id and slot.
    /// The first and last pushed slots are pulled back and checked.
    func pushCache(_ size: Int, server: BenchPrompt, decoder: BenchDecoder) throws -> BenchRow {
        let slots = max(1, ringBytes / size)
        let name = uniqueName()
        let remote = try server.send("cache \(name) \(size) \(slots) none 0 touch")
        defer { _ = try? server.send("free \(name)") }
        guard let remoteID = remote.cacheID else { throw BenchFailure("bench-serve sent no cache id for \(name)") }
        return try pushCache(
            size, slots: slots, into: remoteID, on: server.clusterID, patternBase: uniqueKeyBase(), decoder: decoder)
    }

    /// push_cache into the `slots`-slot 1-tensor cache `remoteID` of cluster `cluster` (slot i mod `slots` per
    /// call); slot s carries `KVPattern(request: patternBase + s)`, and the first and last push are read back by
    /// cache id and index.
    func pushCache(
        _ size: Int, slots: Int, into remoteID: Int64, on cluster: UInt64, patternBase base: UInt64,
        decoder: BenchDecoder
    ) throws -> BenchRow {
        let manager = decoder.manager
        let source = try Self.ring(manager, slots: slots, bytes: size)
        defer { try? manager.deallocateCache(source) }
        for slot in 0..<slots {
            KVPattern.fill(
                address: source.tensorAddresses[0] + UInt(slot * size), bytes: size, request: base + UInt64(slot),
                tensor: 0)
        }
        let check = try Self.ring(manager, slots: 1, bytes: size)
        defer { try? manager.deallocateCache(check) }
        let target = { (i: Int) in
            CacheKeyByIdAndIndex(clusterID: cluster, cacheID: remoteID, batchIndex: UInt32(i % slots))
        }
        let push = { (i: Int) throws(LLMError) in
            try manager.pushCache(to: target(i), from: source, srcBatchIndex: i % slots)
        }
        let verify = { (i: Int, what: String) throws(LLMError) -> String? in
            try manager.pullCache(target(i), into: check)
            return Self.check(
                base: check.tensorAddresses[0], slot: 0, bytes: size, id: base + UInt64(i % slots), what: what)
        }
        try push(0)
        var mismatch = try verify(0, "first push")
        for i in 1..<slots { try push(i) }
        let measured = try measure(CopyCeilings.Pattern(segments: 1, segmentBytes: size, scattered: false)) { i in
            try push(i)
        }
        mismatch = try mismatch ?? verify(measured.timing.iterations - 1, "last push")
        return row(
            "push_cache", bytes: size, measured: measured, keys: "slot", pattern: "1 tensor", mismatch: mismatch)
    }

    /// pull_blocks, KV-shaped: 61 layers × 2 tensors, 64 of 128 blocks of 128 KiB, scattered (no two neighbours
    /// coalesce) or adjacent (one run per tensor).
    func pullBlocks(scattered: Bool, server: BenchPrompt, decoder: BenchDecoder) throws -> BenchRow {
        let shape = BenchServeManifest.Blocks(tensors: 122, blocks: 128, blockBytes: 128 << 10, modelID: 0)
        let name = uniqueName()
        let modelID = UInt64(100 + rows.count)
        try server.send("blocks \(name) \(shape.tensors) \(shape.blocks) \(shape.blockBytes) \(modelID)")
        defer { _ = try? server.send("free \(name)") }
        return try pullBlocks(
            scattered: scattered, from: BlocksCacheKey(clusterID: server.clusterID, modelID: modelID), shape: shape,
            decoder: decoder)
    }

    /// pull_blocks of 64 of the `shape.blocks` blocks of each tensor of the blocks cache `key` (shaped `shape`;
    /// its `modelID` unused) into the same blocks shape here.
    func pullBlocks(
        scattered: Bool, from key: BlocksCacheKey, shape: BenchServeManifest.Blocks, decoder: BenchDecoder
    ) throws -> BenchRow {
        let (tensors, blocks, blockBytes, count) = (shape.tensors, shape.blocks, shape.blockBytes, 64)
        let manager = decoder.manager
        let cache = try manager.allocateBlocksCache(
            BenchBlocks.desc(tensors: tensors, blocks: blocks, blockBytes: blockBytes, placement: .device))
        defer { try? manager.deallocateBlocksCache(cache) }
        for address in cache.tensorAddresses { BenchMemory.zero(address: address, bytes: blocks * blockBytes) }
        let pairs =
            scattered
            ? BenchBlocks.scattered(count: count, sourceBlocks: blocks, destinationBlocks: blocks, seed: 61)
            : (0..<count).map { (32 + $0, 8 + $0) }
        let (sources, destinations) = (pairs.map(\.0), pairs.map(\.1))
        let pull = { () throws(LLMError) in
            try manager.pullBlocks(key, into: cache, srcBlocks: sources, dstBlocks: destinations)
        }
        try pull()
        var mismatch = BenchBlocks.mismatch(cache.tensorAddresses, pairs: pairs, blockBytes: blockBytes).map {
            "first pull: \($0)"
        }
        for address in cache.tensorAddresses { BenchMemory.zero(address: address, bytes: blocks * blockBytes) }
        let copy =
            scattered
            ? CopyCeilings.Pattern(segments: tensors * count, segmentBytes: blockBytes, scattered: true)
            : CopyCeilings.Pattern(segments: tensors, segmentBytes: count * blockBytes, scattered: false)
        let measured = try measure(copy) { _ in try pull() }
        mismatch =
            mismatch
            ?? BenchBlocks.mismatch(cache.tensorAddresses, pairs: pairs, blockBytes: blockBytes).map {
                "last pull: \($0)"
            }
        return row(
            "pull_blocks", bytes: tensors * count * blockBytes, measured: measured, keys: "blocks",
            pattern:
                "\(tensors / 2) layers × 2 tensors, \(count) \(scattered ? "scattered" : "adjacent") \(ByteSize(bytes: blockBytes)) blocks",
            mismatch: mismatch)
    }
}
