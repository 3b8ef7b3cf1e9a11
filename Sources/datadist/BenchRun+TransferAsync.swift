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
        // What the task's own pushes took (the link's meters) in the trials at 1× t_layer: their sum per layer, in
        // t_layer, tells whether a layer sent inside the pipeline costs what t_layer measured alone.
        var (sendRatios, pushCounts, roundTrips) = ([Double](), [Double](), [Double]())
        let meters = { () -> LinkMetricsSnapshot? in decoder.engine.metrics().link(toCluster: server.clusterID) }
        /// One trial at `pace` × t_layer per layer: how long after the last release the task was done, in t_layer.
        let trial = { (index: Int, tLayer: Double, pace: Double) throws -> Double in
            let seed = UInt64(10 + index)
            fill(seed)
            let before = meters()
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
            if pace == 1, let before, let after = meters(), after.transfers.count > before.transfers.count {
                let pushes = after.transfers.count - before.transfers.count
                sendRatios.append((after.transfers.seconds - before.transfers.seconds) / Double(layers) / tLayer)
                pushCounts.append(Double(pushes))
                roundTrips.append((after.roundTrips.seconds - before.roundTrips.seconds) / Double(pushes) * 1e6)
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
                + "\(BenchTable.f(median(directRatios), 2))× (\(list(directRatios))); the task's pushes took "
                + "\(sendRatios.isEmpty ? "-" : BenchTable.f(median(sendRatios), 2))× t_layer per layer in all (\(list(sendRatios))), in "
                + "\(pushCounts.isEmpty ? "-" : BenchTable.f(median(pushCounts), 0)) pushes of round trip "
                + "\(roundTrips.isEmpty ? "-" : BenchTable.f(median(roundTrips), 0)) µs each (medians); one pushBlocks of the same bytes after the "
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

/// Releases layer `l` at `start + l × interval`, as a prefill computing one layer per interval would: a thread of
/// its own (the prefill's, as a thread blocked on a device's event would be) wakes at each layer's time, marks it
/// computed and resumes the task if it is waiting for that layer; a layer already computed is released at once. It
/// notes when it released the last one.
final class PacedRelease: LayerSynchronizer {
    private struct State {
        var computed = 0
        var waiting: (layer: Int, resume: CheckedContinuation<Void, Never>)?
        var lastRelease: ContinuousClock.Instant?
    }

    let start = ContinuousClock.now
    let layers: Int
    let interval: Duration
    private let state = Lock(State())

    init(layers: Int, interval: Duration) {
        self.layers = layers
        self.interval = interval
        Thread.detachNewThread { [self] in prefill() }
    }

    var lastRelease: ContinuousClock.Instant? { state.withLock { $0.lastRelease } }

    /// The last layer counts as released when the prefill computed it if the task was already waiting for it (the
    /// hand-off from the prefill's thread to the task is the task's time), else when the task asked.
    func synchronize(layer: Int, timeout: Duration?) async -> Bool {
        let last = layer == layers - 1
        let computed = state.withLock { state -> Bool in
            guard state.computed > layer else { return false }
            if last { state.lastRelease = .now }
            return true
        }
        if !computed {
            await withCheckedContinuation { resume in
                let now = state.withLock { state -> Bool in
                    guard state.computed <= layer else {
                        if last { state.lastRelease = .now }
                        return true
                    }
                    state.waiting = (layer, resume)
                    return false
                }
                if now { resume.resume() }
            }
        }
        return true
    }

    /// Layer 0 is computed at the start, layer `l` at `start + l × interval`.
    private func prefill() {
        for layer in 0..<layers {
            let left = start + interval * layer - ContinuousClock.now
            if left > .zero { Thread.sleep(forTimeInterval: left.seconds) }
            let resume = state.withLock { state -> CheckedContinuation<Void, Never>? in
                state.computed = layer + 1
                guard let waiting = state.waiting, waiting.layer <= layer else { return nil }
                state.waiting = nil
                if waiting.layer == layers - 1 { state.lastRelease = .now }
                return waiting.resume
            }
            resume?.resume()
        }
    }
}
