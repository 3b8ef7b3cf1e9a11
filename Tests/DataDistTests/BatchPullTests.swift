import DataDist
import Testing

/// `pullCaches`: many keys, one round trip per cluster, all or nothing.
@Suite(.timeLimit(.minutes(1))) struct BatchPullTests {
    let eightTensors = CacheDesc(numTensors: 8, shape: [4, 128], dataType: .int32)
    let prefix = CacheKey(promptClusterID: 1, reqID: .max, prefixID: 42)

    /// The ints of slot `slot` of tensor `tensor` of a source filled by `fill(_, seed:, ints: 4 * 128)`.
    func slotInts(seed: Int = 0, tensor: Int, slot: Int, width: Int = 128) -> [Int32] {
        ascending(from: seed + tensor * 10_000 + slot * width, count: width)
    }

    @Test(arguments: TestTransport.transfers) func mixedRequestAndPrefixKeysLandInTheirSlotsAndRequestKeysAreConsumed(
        transport: TestTransport
    ) throws {
        let pair = try LinkedPair(transport: transport)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let source = try prompt.allocateCache(eightTensors, keys: [key(1), key(2), prefix, key(3)])
        fill(source, seed: 0, ints: 4 * 128)
        let device = try decoder.allocateCache(CacheDesc(numTensors: 8, shape: [3, 128], dataType: .int32))
        let host = try decoder.allocateCache(
            CacheDesc(numTensors: 8, shape: [2, 128], dataType: .int32, placement: .host))
        try decoder.pullCaches([
            CachePull(key(3), into: device, batchIndex: 2), CachePull(prefix, into: host, batchIndex: 1),
            CachePull(key(1), into: device, batchIndex: 0),
        ])
        for tensor in 0..<8 {
            let onDevice = readInt32s(at: device.tensorAddresses[tensor], count: 3 * 128)
            #expect(Array(onDevice[0..<128]) == slotInts(tensor: tensor, slot: 0), "key 1 → device slot 0")
            #expect(Array(onDevice[256..<384]) == slotInts(tensor: tensor, slot: 3), "key 3 → device slot 2")
            let onHost = readInt32s(at: host.tensorAddresses[tensor] + 512, count: 128)
            #expect(onHost == slotInts(tensor: tensor, slot: 2), "prefix → host slot 1")
        }
        #expect(prompt.audit().boundKeys == 2, "keys 1 and 3 were consumed, the prefix key stays")
        expectRefusal(.kvCacheNotExist, mentioning: ["pulls[1]", "req 3"], in: decoder) {
            try decoder.pullCaches([CachePull(key(2), into: device), CachePull(key(3), into: device, batchIndex: 1)])
        }
        #expect(prompt.audit().boundKeys == 2, "the refused batch took nothing: key 2 is still bound")
        try decoder.pullCaches([CachePull(key(2), into: device, batchIndex: 1), CachePull(prefix, into: host)])
        #expect(readInt32s(at: device.tensorAddresses[5] + 512, count: 128) == slotInts(tensor: 5, slot: 1))
        #expect(prompt.audit().boundKeys == 1)
        try prompt.removeCacheKey(prefix)
        try prompt.deallocateCache(source)
        try decoder.deallocateCache(device)
        try decoder.deallocateCache(host)
        #expect(eventually { prompt.audit().isClean })
        #expect(decoder.audit().isClean)
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func aMissingKeyReservesNothingAndIsNamedByIndex(transport: TestTransport)
        throws
    {
        let pair = try LinkedPair(transport: transport)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let source = try prompt.allocateCache(eightTensors, keys: (1...4).map { key($0) })
        fill(source, seed: 7, ints: 4 * 128)
        try prompt.deallocateCache(source)
        let destination = try decoder.allocateCache(eightTensors)
        let promptBefore = prompt.audit()
        expectRefusal(.kvCacheNotExist, mentioning: ["pulls[2]", "req 99"], in: decoder) {
            try decoder.pullCaches(
                (0..<4).map { CachePull(key([1, 2, 99, 3][$0]), into: destination, batchIndex: $0) })
        }
        #expect(prompt.audit() == promptBefore, "nothing reserved, nothing pinned")
        try decoder.pullCaches((0..<4).map { CachePull(key(UInt64(4 - $0)), into: destination, batchIndex: $0) })
        for tensor in 0..<8 {
            let ints = readInt32s(at: destination.tensorAddresses[tensor], count: 4 * 128)
            for slot in 0..<4 {
                #expect(Array(ints[slot * 128..<(slot + 1) * 128]) == slotInts(seed: 7, tensor: tensor, slot: 3 - slot))
            }
        }
        #expect(eventually { prompt.audit().isClean }, "the deallocated source went with its last key")
        try decoder.deallocateCache(destination)
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func badInputIsRefusedByNameAndChangesNothing(transport: TestTransport)
        throws
    {
        let pair = try LinkedPair(transport: transport)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let source = try prompt.allocateCache(eightTensors, keys: [key(1), key(2)])
        let tenTensors = try prompt.allocateCache(
            CacheDesc(numTensors: 10, shape: [1, 128], dataType: .int32), keys: [key(3)])
        let local = try decoder.allocateCache(CacheDesc(numTensors: 8, shape: [2, 128], dataType: .int32))
        let wide = try decoder.allocateCache(CacheDesc(numTensors: 8, shape: [1, 256], dataType: .int32))
        let blocks = try decoder.allocateBlocksCache(CacheDesc(numTensors: 8, shape: [4, 128], dataType: .int32))
        let gone = try decoder.allocateCache(eightTensors)
        try decoder.deallocateCache(gone)
        let cases: [([CachePull], LLMStatusCode, [String])] = [
            ([], .paramInvalid, ["pulls is empty"]),
            (
                [
                    CachePull(key(1), into: local),
                    CachePull(CacheKey(promptClusterID: 1, reqID: 2, prefixID: 5), into: local, batchIndex: 1),
                ],
                .paramInvalid, ["pulls[1]", "exactly one"]
            ),
            (
                [CachePull(CacheKey(promptClusterID: 1, reqID: .max), into: local)], .paramInvalid,
                ["pulls[0]", "exactly one"]
            ),
            (
                [
                    CachePull(key(1), into: local),
                    CachePull(CacheKey(promptClusterID: 2, reqID: 2), into: local, batchIndex: 1),
                ],
                .paramInvalid, ["pulls[1]", "own cluster"]
            ),
            ([CachePull(key(1), into: blocks)], .paramInvalid, ["pulls[0]", "blocks cache"]),
            ([CachePull(key(1), into: local, batchIndex: -1)], .paramInvalid, ["pulls[0] batchIndex is -1"]),
            (
                [CachePull(key(1), into: local), CachePull(key(2), into: local, batchIndex: 2)], .paramInvalid,
                ["pulls[1] batchIndex 2", "batch size 2"]
            ),
            (
                [CachePull(key(1), into: local), CachePull(key(1), into: local, batchIndex: 1)], .paramInvalid,
                ["pulls[1] repeats the key of pulls[0]"]
            ),
            (
                [CachePull(key(1), into: local, batchIndex: 1), CachePull(key(2), into: local, batchIndex: 1)],
                .paramInvalid,
                ["pulls[1] lands in slot 1 of cache \(local.cacheID), as pulls[0] does"]
            ),
            ([CachePull(key(1), into: gone)], .kvCacheNotExist, ["cache \(gone.cacheID) does not exist"]),
            // Refused by the owner: the whole batch, naming the first bad element.
            (
                [CachePull(key(1), into: local), CachePull(key(2), into: wide)], .paramInvalid,
                ["pulls[1]", "1024", "512"]
            ),
            (
                [CachePull(key(1), into: local), CachePull(key(3), into: local, batchIndex: 1)], .paramInvalid,
                ["pulls[1]", "has 10 tensors, the local cache 8"]
            ),
        ]
        for (pulls, status, mentions) in cases {
            let promptBefore = prompt.audit()
            expectRefusal(status, mentioning: mentions, in: decoder) { try decoder.pullCaches(pulls) }
            #expect(prompt.audit() == promptBefore, "the owner's state changed: \(mentions)")
        }
        #expect(prompt.audit().boundKeys == 3)
        for request: UInt64 in 1...3 { try prompt.removeCacheKey(key(request)) }
        try prompt.deallocateCache(source)
        try prompt.deallocateCache(tenTensors)
        for cache in [local, wide] { try decoder.deallocateCache(cache) }
        try decoder.deallocateBlocksCache(blocks)
        #expect(eventually { prompt.audit().isClean })
        #expect(decoder.audit().isClean)
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func batchesBeyondOneMessageAreSplitAndStillAllOrNothing(
        transport: TestTransport
    ) throws {
        let pair = try LinkedPair(transport: transport)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let count = 1100  // more than BatchResolveRequest.maxItems (1024): two round trips
        let desc = CacheDesc(numTensors: 1, shape: [Int64(count), 4], dataType: .int32)
        let source = try prompt.allocateCache(desc, keys: (0..<count).map { key(UInt64(1000 + $0)) })
        writeInt32s((0..<4 * count).map(Int32.init), at: source.tensorAddresses[0])
        try prompt.deallocateCache(source)
        let destination = try decoder.allocateCache(desc)
        var pulls = (0..<count).map { CachePull(key(UInt64(1000 + $0)), into: destination, batchIndex: count - 1 - $0) }
        pulls[1050].key = key(5)
        expectRefusal(.kvCacheNotExist, mentioning: ["pulls[1050]", "req 5"], in: decoder) {
            try decoder.pullCaches(pulls)
        }
        #expect(
            eventually { prompt.audit().boundKeys == count && prompt.audit().pinnedByPeers == 0 },
            "the first round trip's keys were given back: \(prompt.audit())")
        pulls[1050].key = key(2050)
        try decoder.pullCaches(pulls)
        let ints = readInt32s(at: destination.tensorAddresses[0], count: 4 * count)
        for slot in [0, 1, 75, 76, 1099] {
            let from = count - 1 - slot
            #expect(Array(ints[slot * 4..<slot * 4 + 4]) == ascending(from: from * 4, count: 4), "slot \(slot)")
        }
        #expect(eventually { prompt.audit().isClean }, "every key consumed, the source freed")
        try decoder.deallocateCache(destination)
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func twoThreadsPullingOverlappingKeysGetEachKeyExactlyOnce(
        transport: TestTransport
    ) throws {
        let pair = try LinkedPair(transport: transport)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let count = 96
        let desc = CacheDesc(numTensors: 2, shape: [Int64(count), 8], dataType: .int32)
        let source = try prompt.allocateCache(desc, keys: (0..<count).map { key(UInt64($0)) })
        for tensor in 0..<2 {
            writeInt32s((0..<8 * count).map { Int32(tensor * 10_000 + $0) }, at: source.tensorAddresses[tensor])
        }
        try prompt.deallocateCache(source)
        let batch = 8
        let destinations = try (0..<2).map { _ in
            try decoder.allocateCache(CacheDesc(numTensors: 2, shape: [Int64(batch), 8], dataType: .int32))
        }
        let threads = (0..<2).map { (thread: Int) -> TestThread in
            TestThread {
                Self.pullWindows(thread, count: count, batch: batch, into: destinations[thread], decoder: decoder)
            }
        }
        for thread in threads { try thread.start() }
        for thread in threads { thread.join() }
        // Each thread reports "delivered <key>" per key its successful batches pulled, anything else is a failure.
        let marker = "delivered "
        let failures = threads.flatMap { $0.failures }.filter { !$0.hasPrefix(marker) }
        #expect(failures.isEmpty, "\(failures.prefix(4))")
        let delivered = threads.map { thread in
            thread.failures.filter { $0.hasPrefix(marker) }.compactMap { Int($0.dropFirst(marker.count)) }
        }
        let (first, second) = (delivered[0], delivered[1])
        #expect(first.count + second.count >= batch, "no batch succeeded")
        #expect(Set(first).isDisjoint(with: second), "a key was delivered twice")
        #expect(first.count + second.count == Set(first + second).count)
        // What neither delivered is still bound: pulling it now works, and then every key is gone.
        let rest = Set(0..<count).subtracting(first + second).sorted()
        #expect(prompt.audit().boundKeys == rest.count)
        for request in rest { try decoder.pullCache(key(UInt64(request)), into: destinations[0]) }
        #expect(eventually { prompt.audit().isClean })
        for destination in destinations { try decoder.deallocateCache(destination) }
        try pair.finish()
    }
}

extension BatchPullTests {
    /// Thread 0 pulls windows of `batch` keys from key 0 up, thread 1 from key 4 down: their windows overlap, so
    /// many batches race for the same keys. Returns "delivered <key>" for each key a successful batch pulled (its
    /// bytes checked), and failures.
    static func pullWindows(_ thread: Int, count: Int, batch: Int, into destination: Cache, decoder: CacheManager)
        -> [String]
    {
        var failures: [String] = []
        let starts = Array(stride(from: thread * 4, to: count, by: batch))
        for start in thread == 0 ? starts : starts.reversed() {
            let window = Array(start..<min(start + batch, count))
            let pulls = window.enumerated().map { CachePull(key(UInt64($1)), into: destination, batchIndex: $0) }
            do {
                try decoder.pullCaches(pulls)
            } catch  where error.status == .kvCacheNotExist {
                continue
            } catch {
                failures.append("thread \(thread) window \(start): \(error)")
                continue
            }
            failures += window.map { "delivered \($0)" }
            for (slot, request) in window.enumerated() {
                let got = readInt32s(at: destination.tensorAddresses[1] + UInt(slot * 32), count: 8)
                if got != ascending(from: 10_000 + request * 8, count: 8) {
                    failures.append("key \(request): wrong bytes")
                }
            }
        }
        return failures
    }
}
