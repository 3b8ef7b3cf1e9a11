import DataDist
import Foundation
import Synchronization
import ThreadSanitizerSupport

/// The `transfer_cache_async` row: a simulated prefill releases one layer every `t_layer` (one layer's measured
/// push time), and the row reports how long after the last release the whole cache had arrived, as a multiple of
/// `t_layer` (the limit is 1: only the last layer left to send), beside one push of the same bytes after the last
/// layer (about `layers` × `t_layer`).
extension BenchRun {
    static let asyncLayers = 61
    static let asyncTensorBytes = 2 << 20
    static let asyncTrials = 7
    static let slackPace = 1.5

    func transferCacheAsync(server: BenchPrompt, decoder: BenchDecoder) throws -> BenchRow {
        let (layers, tensorBytes) = (Self.asyncLayers, Self.asyncTensorBytes)
        let tensors = 2 * layers
        let name = uniqueName()
        let modelID = UInt64(200 + rows.count)
        try server.send("blocks \(name) \(tensors) 1 \(tensorBytes) \(modelID)")
        defer { _ = try? server.send("free \(name)") }
        let manager = decoder.manager
        let desc = BenchBlocks.desc(tensors: tensors, blocks: 1, blockBytes: tensorBytes, placement: .device)
        let source = try manager.allocateBlocksCache(desc)
        defer { try? manager.deallocateBlocksCache(source) }
        let check = try manager.allocateBlocksCache(desc)
        defer { try? manager.deallocateBlocksCache(check) }
        let key = BlocksCacheKey(clusterID: server.clusterID, modelID: modelID)
        let fill = { (seed: UInt64) in
            for (tensor, address) in source.tensorAddresses.enumerated() {
                KVPattern.fill(address: address, bytes: tensorBytes, request: seed, tensor: UInt64(tensor))
            }
        }
        let verify = { (seed: UInt64, what: String) throws(LLMError) -> String? in
            try manager.pullBlocks(key, into: check, srcBlocks: [0], dstBlocks: [0])
            for (tensor, address) in check.tensorAddresses.enumerated() {
                if let byte = KVPattern.firstMismatch(
                    address: address, bytes: tensorBytes, request: seed, tensor: UInt64(tensor))
                {
                    return "\(what): tensor \(tensor) differs at byte \(byte)"
                }
            }
            return nil
        }
        let pushLayers = { (range: Range<Int>) throws(LLMError) in
            try manager.pushBlocks(
                to: key, from: source, srcBlocks: [0], dstBlocks: [0],
                layers: LayerRange(source: range, destination: range))
        }
        // One layer's transfer time (t_layer): the median of every layer pushed alone, measured again right
        // before each trial so that the pace matches the machine's load at that moment.
        let layerTime = { () throws(LLMError) -> Double in
            var times: [Double] = []
            for layer in 0..<layers {
                times.append(try Self.seconds { () throws(LLMError) in try pushLayers(layer..<layer + 1) })
            }
            return times.sorted()[times.count / 2]
        }
        fill(1)
        _ = try layerTime()  // warm-up: maps the peer's pages here
        var mismatch: String?
        /// One trial at `pace` × t_layer per layer: how long after the last release the task was done, in t_layer.
        let trial = { (index: Int, tLayer: Double, pace: Double) throws -> Double in
            let seed = UInt64(10 + index)
            fill(seed)
            let sync = PacedRelease(layers: layers, interval: .seconds(tLayer * pace))
            let task = try manager.transferCacheAsync(
                source, synchronizer: sync,
                configs: [TransferWithCacheKeyConfig(key: key, sourceLayers: 0..<layers, destinationLayers: 0..<layers)]
            )
            let status = task.synchronize()
            let done = ContinuousClock.now
            guard status == .success, let released = sync.lastRelease else {
                throw BenchFailure("transfer_cache_async trial \(index): \(status)")
            }
            if index == 0 || index == Self.asyncTrials - 1 { mismatch = try mismatch ?? verify(seed, "trial \(index)") }
            return (done - released).seconds / tLayer
        }
        /// The reference for a trial: the same paced release with no task, this thread pushing directly (after
        /// each release, one push of every layer released and not yet sent). Its tail is what these pushes give on
        /// this machine at this moment; the task's tail beyond it is the task's own cost (its hand-offs).
        let direct = { (tLayer: Double) throws -> Double in
            let clock = ContinuousClock()
            let (start, interval) = (clock.now, Duration.seconds(tLayer))
            var (sent, lastRelease) = (0, start)
            while sent < layers {
                let due = start + interval * sent
                var releasedAt = due  // busy pushing at `due`: the layer was released then
                if clock.now < due {
                    Thread.sleep(forTimeInterval: (due - clock.now).seconds)
                    releasedAt = clock.now  // idle: released when this thread woke (as the task's driver records)
                }
                let released = min(layers, max(sent + 1, Int(((clock.now - start) / interval).rounded(.down)) + 1))
                if released == layers {
                    lastRelease = released - 1 == sent ? releasedAt : start + interval * (layers - 1)
                }
                try pushLayers(sent..<released)
                sent = released
            }
            return (clock.now - lastRelease).seconds / tLayer
        }
        var (fullRatios, tailRatios, slackRatios, tLayers) = ([Double](), [Double](), [Double](), [Double]())
        var directRatios: [Double] = []
        for index in 0..<Self.asyncTrials {
            let tLayer = try layerTime()
            tLayers.append(tLayer)
            // The same bytes in one push after the last layer.
            fullRatios.append(try Self.seconds { () throws(LLMError) in try pushLayers(0..<layers) } / tLayer)
            tailRatios.append(try trial(index, tLayer, 1))
            directRatios.append(try direct(tLayer))
            // The same with compute a little slower than the transfer, for reference.
            slackRatios.append(try trial(Self.asyncTrials + index, tLayer, Self.slackPace))
        }
        let median = { (values: [Double]) in values.sorted()[values.count / 2] }
        let (tail, fullRatio, tLayer) = (median(tailRatios), median(fullRatios), median(tLayers))
        let full = fullRatio * tLayer
        let bytes = tensors * tensorBytes
        let ceilings = try self.ceilings.ceilings(
            CopyCeilings.Pattern(segments: tensors, segmentBytes: tensorBytes, scattered: false), duration: duration / 2
        )
        let gbps = Double(bytes) / full / 1e9
        let list = { (values: [Double]) in values.map { BenchTable.f($0, 2) }.joined(separator: ", ") }
        notes.append(
            "transfer_cache_async (\(layers) layers × 2 tensors of \(ByteSize(bytes: tensorBytes)); layer l released at "
                + "l × t_layer, t_layer = one layer's median push time, median \(BenchTable.f(tLayer * 1e6, 0)) µs): "
                + "the cache was complete \(BenchTable.f(tail, 2))× t_layer after the last layer's release (median of "
                + "\(Self.asyncTrials) trials: \(list(tailRatios)); goal ≤ 1.2); the same releases with this thread "
                + "pushing each released layer directly, no task (the machine's reference): "
                + "\(BenchTable.f(median(directRatios), 2))× (\(list(directRatios))); one pushBlocks of the same bytes after the "
                + "last layer: \(BenchTable.f(fullRatio, 1))× t_layer (\(list(fullRatios))); with layer l released at "
                + "l × \(Self.slackPace) t_layer instead: \(BenchTable.f(median(slackRatios), 2))× (\(list(slackRatios)))"
        )
        return BenchRow(
            operation: "transfer_cache_async", bytes: bytes, gbps: gbps, ceilingGBps: ceilings.single,
            ratio: gbps / ceilings.single, allCoresCeilingGBps: ceilings.allCores,
            allCoresRatio: gbps / ceilings.allCores,
            streamingCeilingGBps: ceilings.streaming, streamingRatio: gbps / ceilings.streaming,
            iterations: Self.asyncTrials, seconds: tail * tLayer, keys: "blocks",
            pattern:
                "\(layers) layers × 2, GB/s of one push after compute; tail \(BenchTable.f(tail, 2))× t_layer (no task: \(BenchTable.f(median(directRatios), 2))×)",
            verified: mismatch == nil, notes: mismatch)
    }

    static func seconds(_ body: () throws(LLMError) -> Void) throws(LLMError) -> Double {
        let start = ContinuousClock.now
        try body()
        return (ContinuousClock.now - start).seconds
    }
}

/// Releases layer `l` at `start + l × interval` (a prefill computing one layer per interval), at once when that
/// time has passed, and notes when it released the last one.
final class PacedRelease: LayerSynchronizer {
    let start = ContinuousClock.now
    let layers: Int
    let interval: Duration
    private let released = Lock<ContinuousClock.Instant?>(nil)

    init(layers: Int, interval: Duration) {
        self.layers = layers
        self.interval = interval
    }

    var lastRelease: ContinuousClock.Instant? { released.withLock { $0 } }

    func synchronize(layer: Int, timeout: Duration?) async -> Bool {
        // A layer whose time has come is released at once: even a sleep until a past instant hands the task to a
        // timer and back, which would hold layer 0 (released at the start) back by a few hundred µs here, a lag a
        // transfer running at the compute's pace never makes up.
        let due = start + interval * layer
        if ContinuousClock.now < due { try? await Task.sleep(until: due, clock: .continuous) }
        if layer == layers - 1 { released.withLock { $0 = .now } }
        return true
    }
}
