import DataDist
import Foundation

/// The small-transfer rows (issue 17), each beside its floor measured in the same run.
extension BenchRun {
    static let smallPullBytes = 16 << 10
    /// Keys bound on the prompt in the many-keys row (the ring's own keys included).
    static let manyKeys = 1 << 20
    static let localPromptCluster: UInt64 = 31

    /// pull_small: 16 KiB pulls by request key to the prompt process beside a round trip to a child process
    /// (with 1 K keys bound, then with 1 M, then with 1 K again), between two engines of this process beside a round trip to a
    /// thread, and pullBlocks of 32 scattered 16 KiB / 64 KiB blocks beside memcpy of the same blocks.
    func smallPullRows(server: BenchPrompt, decoder: BenchDecoder) throws {
        for blockBytes in [16 << 10, 64 << 10] {
            try record { try pullSmallBlocks(blockBytes: blockBytes, server: server, decoder: decoder) }
        }
        let size = Self.smallPullBytes
        let twoProcesses = try BenchFloor(peer: .process, ringBytes: ringBytes)
        defer { twoProcesses.finish() }
        // 1 K keys, 1 M, then 1 K again: the 1 M row against the mean of the rows before and after it, so that a
        // drift of the machine's load over the three rows does not pass for a cost of the keys.
        let pull = { (keys: String) throws -> BenchRow in
            try self.smallPull(size, server: server, decoder: decoder, floor: twoProcesses, keys: keys)
        }
        var fewP50s: [Double] = []
        try record {
            let row = try pull("1 K")
            fewP50s += row.p50us.map { [$0] } ?? []
            return row
        }
        var manyP50: Double?
        do {
            let (filler, base) = (uniqueName(), uniqueKeyBase())
            let ringKeys = Self.requestKeySlots(size)
            try server.send(
                "cache \(filler) 8 \(Self.manyKeys - ringKeys) request \(base) touch", timeout: .seconds(600))
            defer { _ = try? server.send("free \(filler)", timeout: .seconds(600)) }
            try record {
                let row = try pull("1 M")
                manyP50 = row.p50us
                return row
            }
        }
        try record {
            let row = try pull("1 K (after the 1 M row)")
            fewP50s += row.p50us.map { [$0] } ?? []
            return row
        }
        if let manyP50, fewP50s.count == 2 {
            let fewP50 = (fewP50s[0] + fewP50s[1]) / 2
            notes.append(
                "pull_small 16 KiB, two processes: p50 with 1 M keys bound = \(BenchTable.f(manyP50 / fewP50, 2))× "
                    + "p50 with 1 K keys (\(BenchTable.f(manyP50, 1)) µs vs \(BenchTable.f(fewP50s[0], 1)) µs before "
                    + "and \(BenchTable.f(fewP50s[1], 1)) µs after it; goal ≤ 1.2×)")
        }

        let local = try BenchLocalPrompt(clusterID: Self.localPromptCluster, poolBytes: 1 << 30)
        var localDecoder: BenchDecoder?
        defer {
            if let problem = localDecoder?.finish() { problems.append(problem) }
            if let problem = local.finish() { problems.append(problem) }
        }
        localDecoder = try BenchDecoder(
            clusterID: Self.localPromptCluster + 1, to: local, poolBytes: 1 << 30, copyThreads: nil,
            remoteAccessible: false)
        let oneProcess = try BenchFloor(peer: .thread, ringBytes: ringBytes)
        defer { oneProcess.finish() }
        try record { try smallPull(size, server: local, decoder: localDecoder!, floor: oneProcess, keys: "1 K") }
    }

    /// p50/p99 of `size`-byte pulls by request key (`timedRequestKeyPulls`), each generation followed by as many
    /// floor round trips + copies, so both see the same load.
    func smallPull(
        _ size: Int, server: any BenchPromptSide, decoder: BenchDecoder, floor: BenchFloor, keys: String
    ) throws -> BenchRow {
        let slots = Self.requestKeySlots(size)
        var floorSamples: [Double] = []
        let (samples, mismatch) = try timedRequestKeyPulls(size, server: server, decoder: decoder) { generation in
            if generation > 0 { floorSamples += try floor.measure(bytes: size, iterations: slots) }
        }
        let quantile = { (values: [Double], fraction: Double) in
            BenchTiming.quantileMicroseconds(values, fraction) ?? .nan
        }
        let (p50, p99) = (quantile(samples, 0.5), quantile(samples, 0.99))
        let (floorP50, floorP99) = (quantile(floorSamples, 0.5), quantile(floorSamples, 0.99))
        let place = floor.peer == .thread ? "two engines in one process" : "two processes"
        let gbps = Double(size * samples.count) / samples.reduce(0, +) / 1e9
        let floorGBps = Double(size * floorSamples.count) / floorSamples.reduce(0, +) / 1e9
        let verdict =
            "p50 \(BenchTable.f(p50 / floorP50, 2))× floor p50 (\(BenchTable.f(floorP50, 1)) µs), p99 "
            + "\(BenchTable.f(p99 / floorP99, 2))× floor p99 (\(BenchTable.f(floorP99, 1)) µs); goals ≤ 2×, ≤ 4×"
        notes.append("pull_small 16 KiB, \(place), \(keys) keys bound: \(verdict)")
        return BenchRow(
            operation: "pull_small", bytes: size, gbps: gbps, ceilingGBps: floorGBps, ratio: gbps / floorGBps,
            p50us: p50, p99us: p99, ceilingP50us: floorP50, ceilingP99us: floorP99, iterations: samples.count,
            seconds: samples.reduce(0, +), keys: "request",
            pattern:
                "1 tensor, latency, \(place), \(keys) keys bound; ceiling = polled Unix-socket round trip to a "
                + "\(floor.peer.rawValue) + memcpy of the same bytes",
            verified: mismatch == nil, notes: mismatch ?? verdict,
            transport: decoder.engine.linkTransport(toCluster: server.clusterID)?.optionValue)
    }

    /// pull_blocks of 32 scattered blocks of `blockBytes` per call from a 1-tensor blocks cache as large as the
    /// rings, each call a different set of blocks (no two neighbours adjacent), beside memcpy of 32 scattered
    /// blocks of the same size.
    func pullSmallBlocks(blockBytes: Int, server: BenchPrompt, decoder: BenchDecoder) throws -> BenchRow {
        let count = 32
        let blocks = max(2 * count, ringBytes / blockBytes) / count * count
        let sets = blocks / count
        let name = uniqueName()
        let modelID = UInt64(200 + rows.count)
        try server.send("blocks \(name) 1 \(blocks) \(blockBytes) \(modelID)")
        defer { _ = try? server.send("free \(name)") }
        let manager = decoder.manager
        let cache = try manager.allocateBlocksCache(
            BenchBlocks.desc(tensors: 1, blocks: blocks, blockBytes: blockBytes, placement: .device))
        defer { try? manager.deallocateBlocksCache(cache) }
        BenchMemory.zero(address: cache.tensorAddresses[0], bytes: blocks * blockBytes)
        // Set s: source block j·sets + s into destination block ((7j + 3) mod 32)·sets + s.
        let sources = (0..<sets).map { set in (0..<count).map { $0 * sets + set } }
        let destinations = (0..<sets).map { set in (0..<count).map { ($0 * 7 + 3) % count * sets + set } }
        let key = BlocksCacheKey(clusterID: server.clusterID, modelID: modelID)
        let pull = { (i: Int) throws(LLMError) in
            try manager.pullBlocks(key, into: cache, srcBlocks: sources[i % sets], dstBlocks: destinations[i % sets])
        }
        let mismatch = { (i: Int, what: String) in
            BenchBlocks.mismatch(
                cache.tensorAddresses, pairs: Array(zip(sources[i % sets], destinations[i % sets])),
                blockBytes: blockBytes
            ).map { "\(what): \($0)" }
        }
        try pull(0)
        var problem = mismatch(0, "first pull")
        let measured = try measure(CopyCeilings.Pattern(segments: count, segmentBytes: blockBytes, scattered: true)) {
            i in try pull(i + 1)
        }
        problem = problem ?? mismatch(measured.timing.iterations, "last pull")
        return row(
            "pull_blocks", bytes: count * blockBytes, measured: measured, keys: "blocks",
            pattern:
                "1 tensor, \(count) scattered \(ByteSize(bytes: blockBytes)) blocks per call, each call other blocks",
            mismatch: problem)
    }
}
