import DataDist
import Foundation

/// `bench --connect`: the pull_cache bandwidth rows (and pull_caches, batches of its prefix keys) against a standalone `bench-serve --host` started elsewhere,
/// over the rings its manifest lists (`BenchServeManifest`), instead of a prompt process of this run's own; and
/// pull_blocks from its blocks cache (`--blocks`), push_cache into its push rings (`--remote-accessible`).
extension BenchRun {
    func runConnectedRows(to endpoint: IPEndpoint, promptCluster: UInt64) throws {
        let decoder = try BenchDecoder(
            clusterID: 2, promptCluster: promptCluster, at: endpoint, poolBytes: 3 << 30, copyThreads: nil,
            remoteAccessible: remoteAccessible)
        defer { if let problem = decoder.finish() { problems.append(problem) } }
        linkTransport = decoder.engine.linkTransport(toCluster: promptCluster)?.optionValue
        defer { linkTransport = nil }
        let manifest = try Self.pullManifest(
            from: promptCluster, byCacheID: remoteAccessible, into: decoder.manager)
        try pullConnectedRings(manifest, at: endpoint, promptCluster: promptCluster, decoder: decoder)
        if operations.contains("pull_blocks") {
            if let blocks = manifest.blocks {
                let key = BlocksCacheKey(clusterID: promptCluster, modelID: blocks.modelID)
                for scattered in [true, false] {
                    try record { try pullBlocks(scattered: scattered, from: key, shape: blocks, decoder: decoder) }
                }
            } else {
                problems.append(
                    "pull_blocks: bench-serve at \(endpoint) holds no blocks cache (start it with --blocks)")
            }
        }
        if operations.contains("push_cache") {
            try pushConnected(manifest, at: endpoint, promptCluster: promptCluster, decoder: decoder)
        }
    }

    /// push_cache per size into the bench-serve's push rings (`--remote-accessible` on both sides).
    private func pushConnected(
        _ manifest: BenchServeManifest, at endpoint: IPEndpoint, promptCluster: UInt64, decoder: BenchDecoder
    ) throws {
        guard let pushRings = manifest.pushRings else {
            problems.append(
                "push_cache: bench-serve at \(endpoint) holds no push rings (start it with --remote-accessible)")
            return
        }
        // A pattern of this run's own: the rings keep what an earlier run pushed.
        let runBase = UInt64(UInt32.random(in: 1...(UInt32.max >> 1))) << 32
        for (index, size) in sizes.enumerated() {
            guard let ring = pushRings.first(where: { $0.bytes == size }) else {
                problems.append("push_cache: bench-serve at \(endpoint) has no \(ByteSize(bytes: size)) push ring")
                continue
            }
            try record {
                try pushCache(
                    size, slots: ring.slots, into: ring.cacheID, on: promptCluster,
                    patternBase: runBase + UInt64(index) << 24, decoder: decoder)
            }
        }
    }

    private func pullConnectedRings(
        _ manifest: BenchServeManifest, at endpoint: IPEndpoint, promptCluster: UInt64, decoder: BenchDecoder
    ) throws {
        guard !operations.isDisjoint(with: ["pull_cache", "pull_caches"]) else { return }
        for size in sizes {
            guard let ring = manifest.rings.first(where: { $0.bytes == size }) else {
                let served = manifest.rings.map { "\(ByteSize(bytes: $0.bytes))" }.joined(separator: ", ")
                problems.append(
                    "bench-serve at \(endpoint) serves no \(ByteSize(bytes: size)) ring (it serves \(served))")
                continue
            }
            if operations.contains("pull_cache") {
                try record {
                    try pullPrefixRing(
                        size, slots: ring.slots, keyBase: ring.keyBase, promptCluster: promptCluster, decoder: decoder)
                }
            }
            if operations.contains("pull_caches") {
                try recordIfAny {
                    try pullPrefixBatches(size, ring: ring, promptCluster: promptCluster, decoder: decoder)
                }
            }
        }
    }

    /// pull_caches against a standalone bench-serve: `pullBatch` prefix keys of the server's ring per call (call c
    /// pulls ring slots (c × batch + i) mod the ring's slots), into the adjacent slots of a `pullBatch`-slot
    /// destination; GB/s counts the whole batch. Prefix keys are never consumed, so the ring serves every call;
    /// a ring of fewer than `pullBatch` keys is skipped with a note.
    private func pullPrefixBatches(
        _ size: Int, ring: BenchServeManifest.Ring, promptCluster: UInt64, decoder: BenchDecoder
    ) throws -> BenchRow? {
        let batch = Self.pullBatch
        guard size <= Self.pullBatchLargestSize else {
            notes.append(
                "pull_caches skipped at \(ByteSize(bytes: size)): a batch of \(batch) would take \(ByteSize(bytes: batch * size))"
            )
            return nil
        }
        // pullCaches refuses a key twice in one call.
        guard ring.slots >= batch else {
            notes.append(
                "pull_caches skipped at \(ByteSize(bytes: size)): the bench-serve's ring holds \(ring.slots) keys, a batch needs \(batch) (a larger --ring-bytes)"
            )
            return nil
        }
        let manager = decoder.manager
        let destination = try Self.ring(manager, slots: batch, bytes: size)
        defer { try? manager.deallocateCache(destination) }
        let address = destination.tensorAddresses[0]
        let keyID = { (call: Int, i: Int) in ring.keyBase + UInt64((call * batch + i) % ring.slots) }
        let pull = { (call: Int) throws(LLMError) in
            try manager.pullCaches(
                (0..<batch).map { i in
                    CachePull(
                        CacheKey(promptClusterID: promptCluster, reqID: .max, prefixID: keyID(call, i)),
                        into: destination, batchIndex: i)
                })
        }
        try pull(0)
        var mismatch = Self.check(base: address, slot: 0, bytes: size, id: keyID(0, 0), what: "first batch")
        let pattern = CopyCeilings.Pattern(segments: batch, segmentBytes: size, scattered: false)
        // Calls 1, 2, … in order: the last measured call is the iteration count.
        let measured = try measure(pattern) { call in try pull(call + 1) }
        let last = measured.timing.iterations
        mismatch =
            mismatch
            ?? Self.check(
                base: address, slot: batch - 1, bytes: size, id: keyID(last, batch - 1), what: "last batch")
        var row = row(
            "pull_caches", bytes: batch * size, measured: measured, keys: "prefix",
            pattern: "batch of \(batch) × 1 tensor of \(ByteSize(bytes: size))", mismatch: mismatch)
        row.batch = batch
        return row
    }

    /// Pulls the server's manifest (its prefix key is never consumed; `byCacheID`: by its cache id, as remote cache
    /// access requires) into a cache of this decoder and reads it.
    private static func pullManifest(from promptCluster: UInt64, byCacheID: Bool, into manager: CacheManager) throws
        -> BenchServeManifest
    {
        let cache = try manager.allocateCache(BenchServeManifest.desc)
        defer { try? manager.deallocateCache(cache) }
        do {
            if byCacheID {
                try manager.pullCache(
                    CacheKeyByIdAndIndex(
                        clusterID: promptCluster, cacheID: BenchServeManifest.manifestCacheID, batchIndex: 0),
                    into: cache)
            } else {
                try manager.pullCache(BenchServeManifest.key(promptCluster: promptCluster), into: cache)
            }
        } catch {
            throw BenchFailure(
                "pulling the manifest of cluster \(promptCluster) failed (is it a bench-serve --host?): \(error)")
        }
        return try BenchServeManifest.read(at: cache.tensorAddresses[0])
    }
}
