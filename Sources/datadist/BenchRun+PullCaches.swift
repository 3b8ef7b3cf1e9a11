import DataDist
import Foundation

/// The batched pull row.
extension BenchRun {
    /// Pulls per `pullCaches` call in the pull_caches row (Mooncake's transfer_engine_bench batch).
    static let pullBatch = 32
    /// Per-pull sizes above this are skipped: a batch of them would not fit the bench pools beside the rings.
    static let pullBatchLargestSize = 16 << 20

    /// pull_caches: `pullBatch` request keys of one `size`-byte tensor slot each per call, into adjacent slots of a
    /// destination ring; GB/s counts the whole batch. Keys come in generations (`requestKeyGenerations`), each
    /// pulled batch by batch.
    func pullCachesBandwidth(_ size: Int, server: BenchPrompt, decoder: BenchDecoder) throws -> BenchRow? {
        let batch = Self.pullBatch
        guard size <= Self.pullBatchLargestSize else {
            notes.append(
                "pull_caches skipped at \(ByteSize(bytes: size)): a batch of \(batch) would take \(ByteSize(bytes: batch * size)) on each side"
            )
            return nil
        }
        let roundDown = { (slots: Int) in max(batch, slots / batch * batch) }
        let slots = roundDown(min(8192, ringBytes / size))
        let destinationSlots = roundDown(ringBytes / size)
        let manager = decoder.manager
        let destination = try Self.ring(manager, slots: destinationSlots, bytes: size)
        defer { try? manager.deallocateCache(destination) }
        let address = destination.tensorAddresses[0]
        var samples: [Double] = []
        var mismatch: String?
        var call = 0
        var lastSlot = (slot: 0, id: UInt64(0))
        let clock = ContinuousClock()
        try requestKeyGenerations(slots: slots, bytes: size, server: server) {
            samples.reduce(0, +)
        } pull: { generation, base in
            for first in stride(from: 0, to: slots, by: batch) {
                let landing = (call * batch) % destinationSlots
                let pulls = (0..<batch).map { i in
                    CachePull(
                        CacheKey(promptClusterID: server.clusterID, reqID: base + UInt64(first + i)), into: destination,
                        batchIndex: landing + i)
                }
                let start = clock.now
                try manager.pullCaches(pulls)
                if generation > 0 { samples.append((clock.now - start).seconds) }
                if generation == 0 && first == 0 {
                    mismatch = Self.check(base: address, slot: landing, bytes: size, id: base, what: "first batch")
                }
                lastSlot = (landing + batch - 1, base + UInt64(first + batch - 1))
                call += 1
            }
        }
        mismatch =
            mismatch ?? Self.check(base: address, slot: lastSlot.slot, bytes: size, id: lastSlot.id, what: "last batch")
        let timing = BenchTiming.Result(iterations: samples.count, seconds: samples.reduce(0, +))
        let pattern = CopyCeilings.Pattern(segments: batch, segmentBytes: size, scattered: false)
        let ceilings = try self.ceilings.ceilings(pattern, duration: duration / 2)
        var row = row(
            "pull_caches", bytes: batch * size, measured: Measured(timing: timing, ceilings: ceilings),
            keys: "request", pattern: "batch of \(batch) × 1 tensor of \(ByteSize(bytes: size))", mismatch: mismatch)
        row.batch = batch
        return row
    }
}
