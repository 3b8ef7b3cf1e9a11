import DataDist
import Foundation

/// The pushes of `datadist pull --push-cache-id`: slot by slot into a remote-accessible cache of the serving
/// cluster (one tensor of `--requests` slots of one `--tokens` × `--hidden` tensor each), each checked by pulling
/// the slot back; recorded into the pull report (its byte counts count pushed bytes).
struct PushRun {
    let manager: CacheManager
    let shape: KVShapeOptions
    let promptClusterID: UInt64
    let cacheID: Int64
    var report: PullReport

    /// `rounds` rounds over every slot; stops at the first failure (with `report.failure`).
    mutating func run(rounds: Int, paceMs: Int) {
        let slots = report.requests.count
        let elements = Int64(shape.tensorBytes / 2)
        let slotDesc = { (count: Int) in
            CacheDesc(numTensors: 1, shape: [Int64(count), elements], dataType: .float16)
        }
        let source: Cache
        let check: Cache
        do {
            source = try manager.allocateCache(slotDesc(slots))
            check = try manager.allocateCache(slotDesc(1))
        } catch {
            report.failure = .init(phase: "setup", status: StatusReport(error.status), message: error.message)
            return
        }
        defer {
            try? manager.deallocateCache(source)
            try? manager.deallocateCache(check)
        }
        for round in 0..<rounds {
            report.rounds = round + 1
            for slot in 0..<slots {
                // Each round pushes other bytes, so a slot left over from an earlier round does not verify.
                let pattern = UInt64(round * slots + slot)
                let address = source.tensorAddresses[0] + UInt(slot * shape.tensorBytes)
                KVPattern.fill(address: address, bytes: shape.tensorBytes, request: pattern, tensor: 0)
                guard push(slot, pattern: pattern, from: source, check: check) else { return }
                if paceMs > 0 { Thread.sleep(forTimeInterval: Double(paceMs) / 1000) }
            }
        }
    }

    private mutating func push(_ slot: Int, pattern: UInt64, from source: Cache, check: Cache) -> Bool {
        let target = CacheKeyByIdAndIndex(clusterID: promptClusterID, cacheID: cacheID, batchIndex: UInt32(slot))
        let start = ContinuousClock.now
        var phase = "pushCache"
        do {
            try manager.pushCache(to: target, from: source, srcBatchIndex: slot)
            report.pullSeconds += (ContinuousClock.now - start).seconds
            report.wholePulls += 1
            report.bytes += shape.tensorBytes
            phase = "pullCache (the pushed slot back)"
            try manager.pullCache(target, into: check)
        } catch {
            report.failure = .init(
                request: UInt64(slot), phase: phase, status: StatusReport(error.status), message: error.message,
                callMilliseconds: (ContinuousClock.now - start).milliseconds)
            return false
        }
        if let offset = KVPattern.firstMismatch(
            address: check.tensorAddresses[0], bytes: shape.tensorBytes, request: pattern, tensor: 0)
        {
            report.failure = .init(
                request: UInt64(slot), phase: "verify",
                message: "slot \(slot) pulled back differs from what was pushed at byte \(offset)")
            return false
        }
        report.bytesVerified += shape.tensorBytes
        return true
    }
}
