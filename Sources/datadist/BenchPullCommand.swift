import ArgumentParser
import DataDist
import Foundation

/// `datadist bench-pull`: a decoder of `datadist bench-serve`, driven over stdin, so that another program (the
/// Python bench) can run Swift's own pulls in bursts alternating with its own, under the same load.
///
/// It links to the `bench-serve` on 127.0.0.1 at `--port`, prints `{"event":"ready"}`, then answers each command
/// line with one JSON line:
///
/// - `ring <slotBytes> <slots> <firstID>`: a destination ring for the prompt's prefix-keyed ring of that shape;
///   the first pull is made and checked at once.
/// - `burst <nanoseconds>`: pulls round the ring, going on where the last burst stopped, for that long; replies
///   `count` and `nanoseconds` (the time of those pulls).
/// - `requests <slotBytes> <destinationSlots>`: a destination ring for request-key pulls.
/// - `pull <firstID> <count> <firstSlot>`: pulls the request keys `firstID ..< firstID + count` (consumed) into
///   slots `firstSlot + i` (modulo the ring); replies each pull's `samples` in nanoseconds.
/// - `check`: checks the bytes of the last slot each ring pulled into against the prompt's pattern.
/// - `free`: deallocates both rings.
///
/// Stdin closing unlinks and finalizes; `{"event":"exit"}` carries the audit, and the exit status is 0 only if it
/// is clean and nothing failed.
struct BenchPullCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-pull", abstract: "A decoder of `datadist bench-serve`, pulling in bursts told on stdin.",
        shouldDisplay: false)

    @Option(help: "The port of the `bench-serve` on 127.0.0.1.")
    var port: UInt16

    @Option(name: .customLong("cluster-id"), help: "This (decoder) cluster's id.")
    var clusterID: UInt64 = 3

    @Option(name: .customLong("prompt-cluster-id"), help: "The prompt's cluster id.")
    var promptClusterID: UInt64 = 1

    @Option(help: "Device pool size in bytes.")
    var poolBytes = 256 << 20

    func run() throws {
        let decoder: BenchDecoder
        do {
            decoder = try BenchDecoder(
                clusterID: clusterID, promptCluster: promptClusterID, at: IPEndpoint(host: "127.0.0.1", port: port),
                poolBytes: poolBytes, copyThreads: nil, remoteAccessible: false)
        } catch {
            Output.jsonLine(BenchPullReply(event: "exit", error: "\(error)"))
            throw ExitCode.failure
        }
        Output.jsonLine(BenchPullReply(event: "ready"))
        var puller = BurstPuller(decoder: decoder, promptClusterID: promptClusterID)
        var failure: String?
        while let line = readLine() {
            let words = line.split(separator: " ").map(String.init)
            guard !words.isEmpty else { continue }
            let reply = puller.handle(words)
            failure = failure ?? reply.error
            Output.jsonLine(reply)
        }
        puller.free()
        let audit = AuditReport(decoder.manager.audit())
        failure = failure ?? decoder.finish()
        Output.jsonLine(BenchPullReply(event: "exit", audit: audit, error: failure))
        if !audit.clean || failure != nil { throw ExitCode.failure }
    }
}

/// One line of `bench-pull`'s output.
struct BenchPullReply: Codable {
    var event: String
    var count: Int?
    var nanoseconds: Int64?
    var samples: [Int64]?
    var audit: AuditReport?
    var error: String?
}

/// The state of a `bench-pull`: its two destination rings and where the bursts are.
struct BurstPuller {
    let decoder: BenchDecoder
    let promptClusterID: UInt64
    private var ring: (cache: Cache, slotBytes: Int, slots: Int, firstID: UInt64)?
    private var requests: (cache: Cache, slotBytes: Int, slots: Int)?
    /// Pulls made over the current ring; the next burst starts at this slot (modulo the ring).
    private var pulled = 0
    /// The last request key pulled and the slot it went to.
    private var lastRequest: (id: UInt64, slot: Int)?

    init(decoder: BenchDecoder, promptClusterID: UInt64) {
        self.decoder = decoder
        self.promptClusterID = promptClusterID
    }

    mutating func handle(_ words: [String]) -> BenchPullReply {
        do {
            switch (words[0], words.count) {
            case ("ring", 4):
                let (slotBytes, slots) = try shape(words[1], words[2])
                return try makeRing(slotBytes: slotBytes, slots: slots, firstID: number(words[3]))
            case ("burst", 2): return try burst(nanoseconds: number(words[1]))
            case ("requests", 3):
                let (slotBytes, slots) = try shape(words[1], words[2])
                free(requestsOnly: true)
                requests = (try BenchRun.ring(decoder.manager, slots: slots, bytes: slotBytes), slotBytes, slots)
                return BenchPullReply(event: "ok")
            case ("pull", 4):
                return try pullRequests(first: number(words[1]), count: number(words[2]), slot: number(words[3]))
            case ("check", 1): return check()
            case ("free", 1):
                free()
                return BenchPullReply(event: "ok")
            default: return BenchPullReply(event: "error", error: "unknown command: \(words.joined(separator: " "))")
            }
        } catch {
            return BenchPullReply(event: "error", error: "\(words.joined(separator: " ")): \(error)")
        }
    }

    private mutating func makeRing(slotBytes: Int, slots: Int, firstID: UInt64) throws -> BenchPullReply {
        free(ringOnly: true)
        let cache = try BenchRun.ring(decoder.manager, slots: slots, bytes: slotBytes)
        ring = (cache, slotBytes, slots, firstID)
        try decoder.manager.pullCache(prefixKey(firstID), into: cache, batchIndex: 0)
        pulled = 1
        if let mismatch = BenchRun.check(
            base: cache.tensorAddresses[0], slot: 0, bytes: slotBytes, id: firstID, what: "first pull")
        {
            return BenchPullReply(event: "error", error: mismatch)
        }
        return BenchPullReply(event: "ok")
    }

    private mutating func burst(nanoseconds: Int64) throws -> BenchPullReply {
        guard let ring else { return BenchPullReply(event: "error", error: "burst: no ring (send `ring` first)") }
        let clock = ContinuousClock()
        let start = clock.now
        let limit = Duration.nanoseconds(nanoseconds)
        var count = 0
        repeat {
            let slot = (pulled + count) % ring.slots
            try decoder.manager.pullCache(prefixKey(ring.firstID + UInt64(slot)), into: ring.cache, batchIndex: slot)
            count += 1
        } while clock.now - start < limit
        let elapsed = clock.now - start
        pulled += count
        return BenchPullReply(event: "burst", count: count, nanoseconds: elapsed.nanoseconds)
    }

    private mutating func pullRequests(first: UInt64, count: Int, slot: Int) throws -> BenchPullReply {
        guard let requests else {
            return BenchPullReply(event: "error", error: "pull: no request ring (send `requests` first)")
        }
        guard count >= 0, slot >= 0 else { throw BenchFailure("count \(count) and slot \(slot) must not be negative") }
        let clock = ContinuousClock()
        var samples: [Int64] = []
        samples.reserveCapacity(count)
        for i in 0..<count {
            let key = CacheKey(promptClusterID: promptClusterID, reqID: first + UInt64(i))
            let start = clock.now
            try decoder.manager.pullCache(key, into: requests.cache, batchIndex: (slot + i) % requests.slots)
            samples.append((clock.now - start).nanoseconds)
        }
        if count > 0 { lastRequest = (first + UInt64(count - 1), (slot + count - 1) % requests.slots) }
        return BenchPullReply(event: "pulled", samples: samples)
    }

    private func check() -> BenchPullReply {
        var mismatch: String?
        if let ring, pulled > 0 {
            let slot = (pulled - 1) % ring.slots
            mismatch = BenchRun.check(
                base: ring.cache.tensorAddresses[0], slot: slot, bytes: ring.slotBytes, id: ring.firstID + UInt64(slot),
                what: "last ring pull")
        }
        if let requests, let lastRequest {
            mismatch =
                mismatch
                ?? BenchRun.check(
                    base: requests.cache.tensorAddresses[0], slot: lastRequest.slot, bytes: requests.slotBytes,
                    id: lastRequest.id, what: "last request pull")
        }
        return mismatch.map { BenchPullReply(event: "error", error: $0) } ?? BenchPullReply(event: "ok")
    }

    mutating func free(ringOnly: Bool = false, requestsOnly: Bool = false) {
        if !requestsOnly, let ring {
            try? decoder.manager.deallocateCache(ring.cache)
            self.ring = nil
            pulled = 0
        }
        if !ringOnly, let requests {
            try? decoder.manager.deallocateCache(requests.cache)
            self.requests = nil
            lastRequest = nil
        }
    }

    private func prefixKey(_ id: UInt64) -> CacheKey {
        CacheKey(promptClusterID: promptClusterID, reqID: .max, prefixID: id)
    }

    /// A ring's slot size (a positive multiple of 8: the pattern's words) and slot count (positive).
    private func shape(_ slotBytes: String, _ slots: String) throws -> (slotBytes: Int, slots: Int) {
        let (bytes, count): (Int, Int) = (try number(slotBytes), try number(slots))
        guard bytes > 0, bytes % 8 == 0 else {
            throw BenchFailure("slot bytes \(bytes) is not a positive multiple of 8")
        }
        guard count > 0 else { throw BenchFailure("slots \(count) is not positive") }
        return (bytes, count)
    }

    private func number<T: FixedWidthInteger>(_ word: String) throws -> T {
        guard let value = T(word) else { throw BenchFailure("\(word) is not a number") }
        return value
    }
}
