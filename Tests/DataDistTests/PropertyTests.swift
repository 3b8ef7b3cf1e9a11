import DataDist
import DataDistTestSupport
import Testing

/// Thousands of random allocate / bind / remove / deallocate / copy steps against a simple model; after each
/// step the audit must match the model and show no orphans.
@Suite struct PropertyTests {
    struct Model {
        var caches: [Int64: (cache: Cache, idHeld: Bool, keys: Set<UInt64>, pages: Int)] = [:]
        var keyOwner: [UInt64: Int64] = [:]

        var liveCaches: Int { caches.count }
        var boundKeys: Int { keyOwner.count }
        var pagesInUse: Int { caches.values.reduce(0) { $0 + $1.pages } }

        mutating func dropKey(_ key: UInt64) {
            guard let owner = keyOwner.removeValue(forKey: key) else { return }
            caches[owner]!.keys.remove(key)
            collect(owner)
        }

        mutating func collect(_ id: Int64) {
            if let entry = caches[id], !entry.idHeld, entry.keys.isEmpty { caches[id] = nil }
        }
    }

    @Test(arguments: [1, 2, 3])
    func randomOperationsMatchTheModel(seed: UInt64) throws {
        let poolPages = 64
        try withCacheManager(devicePool: poolPages << 12, pageShift: 12) { manager in
            var model = Model()
            var generator = SplitMix64(seed: seed)
            var nextRequest: UInt64 = 1
            for step in 0..<1500 {
                switch generator.next() % 6 {
                case 0, 1:
                    let tensors = Int(generator.next() % 3) + 1
                    let slots = Int(generator.next() % 3) + 1
                    let slotInts = Int(generator.next() % 2000) + 1
                    var requests: [UInt64] = []
                    for _ in 0..<Int(generator.next() % UInt64(slots + 1)) {
                        // Sometimes reuse a bound key: that must be refused.
                        if generator.next() % 5 == 0, let bound = model.keyOwner.keys.first {
                            requests.append(bound)
                        } else {
                            requests.append(nextRequest)
                            nextRequest += 1
                        }
                    }
                    let desc = CacheDesc(numTensors: tensors, shape: [Int64(slots), Int64(slotInts)], dataType: .int32)
                    let pagesPerTensor = (slots * slotInts * 4 + 4095) / 4096
                    let free = poolPages - model.pagesInUse
                    do {
                        let cache = try manager.allocateCache(desc, keys: requests.map { key($0) })
                        #expect(
                            Set(requests).count == requests.count && requests.allSatisfy { model.keyOwner[$0] == nil })
                        #expect(tensors * pagesPerTensor <= free, "step \(step): more pages than were free")
                        model.caches[cache.cacheID] = (cache, true, Set(requests), tensors * pagesPerTensor)
                        for request in requests { model.keyOwner[request] = cache.cacheID }
                    } catch let error as LLMError {
                        let duplicate =
                            Set(requests).count != requests.count || requests.contains { model.keyOwner[$0] != nil }
                        #expect(error.status == (duplicate ? .paramInvalid : .outOfMemory), "step \(step): \(error)")
                    }
                case 2:
                    let request = model.keyOwner.keys.randomElement(using: &generator) ?? nextRequest + 1
                    try manager.removeCacheKey(key(request))
                    model.dropKey(request)
                case 3:
                    guard let id = model.caches.keys.randomElement(using: &generator) else { break }
                    try manager.deallocateCache(model.caches[id]!.cache)
                    model.caches[id]!.idHeld = false
                    model.collect(id)
                case 4:
                    let live = Array(model.caches.values)
                    guard let a = live.randomElement(using: &generator), let b = live.randomElement(using: &generator),
                        a.cache.desc.numTensors == b.cache.desc.numTensors
                    else { break }
                    let size = Int(min(a.cache.desc.shape[1], b.cache.desc.shape[1])) * 4
                    try manager.copyCache(dst: a.cache, src: b.cache, size: size)
                default:
                    let dead = Cache(
                        cacheID: 1_000_000, desc: CacheDesc(numTensors: 1, shape: [1], dataType: .int8),
                        tensorAddresses: [1], isBlocksCache: false)
                    try manager.deallocateCache(dead)
                }
                let audit = manager.audit()
                #expect(audit.orphans == 0, "step \(step)")
                #expect(audit.liveCaches == model.liveCaches, "step \(step)")
                #expect(audit.boundKeys == model.boundKeys, "step \(step)")
                #expect(audit.pagesInUse == model.pagesInUse, "step \(step)")
                #expect(audit.pagesInUse + audit.pagesFree == poolPages)
            }
            for request in Array(model.keyOwner.keys) { try manager.removeCacheKey(key(request)) }
            for entry in model.caches.values where entry.idHeld { try manager.deallocateCache(entry.cache) }
            #expect(manager.audit().isClean)
        }
    }
}
