import DataDist
import Foundation

/// What a standalone `bench-serve` (`--host`) holds, so that a `bench --connect` started elsewhere can pull it
/// without telling it anything: for each size, a ring of `slots` one-tensor slots bound to the prefix keys
/// `keyBase + slot` and filled with `KVPattern(request: keyBase + slot, tensor: 0)`. The manifest itself is JSON
/// in a `manifestBytes` cache bound to the prefix key `manifestPrefixID`, zero-padded. With `--blocks`, also a
/// blocks cache for pull_blocks; with `--remote-accessible`, per size a keyless ring to push into (`pushRings`).
struct BenchServeManifest: Codable, Equatable {
    struct Ring: Codable, Equatable {
        var bytes: Int
        var slots: Int
        var keyBase: UInt64
    }

    /// A blocks cache bound to `BlocksCacheKey(modelID:)`; block b of tensor t holds `KVPattern(request: b, tensor: t)`.
    struct Blocks: Codable, Equatable {
        var tensors: Int
        var blocks: Int
        var blockBytes: Int
        var modelID: UInt64
    }

    /// A zeroed 1-tensor ring without keys, to push into by `CacheKeyByIdAndIndex` (and read back that way).
    struct PushRing: Codable, Equatable {
        var bytes: Int
        var slots: Int
        var cacheID: Int64
    }

    var version = 1
    var rings: [Ring]
    var blocks: Blocks?
    var pushRings: [PushRing]?

    static let manifestPrefixID: UInt64 = 0
    /// The manifest's cache id, for a peer with remote cache access (the first cache a fresh instance allocates).
    static let manifestCacheID: Int64 = 1
    static let manifestBytes = 64 << 10

    /// The manifest's cache shape (one slot of `manifestBytes`).
    static var desc: CacheDesc { CacheDesc(numTensors: 1, shape: [1, Int64(manifestBytes)], dataType: .uint8) }

    static func key(promptCluster: UInt64) -> CacheKey {
        CacheKey(promptClusterID: promptCluster, reqID: .max, prefixID: manifestPrefixID)
    }

    /// Reads a manifest back from the bytes at `address` (JSON up to the first zero byte).
    static func read(at address: UInt) throws -> BenchServeManifest {
        let bytes = UnsafeBufferPointer(start: UnsafePointer<UInt8>(bitPattern: address)!, count: manifestBytes)
        let json = Data(bytes.prefix { $0 != 0 })
        do {
            return try JSONDecoder().decode(BenchServeManifest.self, from: json)
        } catch {
            throw BenchFailure("the bench-serve manifest (\(json.count) bytes) does not decode: \(error)")
        }
    }
}

/// The caches of a standalone `bench-serve`: the rings of its manifest and the manifest itself.
struct StandaloneBenchServer {
    let manager: CacheManager
    let manifest: BenchServeManifest
    private(set) var caches: [(Cache, [CacheKey])] = []

    /// The blocks cache of `--blocks`: pull_blocks' KV shape (61 layers × 2 tensors, 128 blocks) with blocks of
    /// `blockBytes`.
    static func blocksShape(blockBytes: Int) -> BenchServeManifest.Blocks {
        BenchServeManifest.Blocks(tensors: 122, blocks: 128, blockBytes: blockBytes, modelID: 1)
    }

    /// Bytes of each push ring at most (fewer slots than the pull rings: pushes overwrite, nothing rotates for them).
    static let pushRingBytes = 64 << 20

    static func pushSlots(_ size: Int) -> Int { max(1, pushRingBytes / size) }

    /// The pool a server of `sizes` with rings of about `ringBytes` needs (the rings, the manifest, page slack;
    /// the blocks cache and push rings when asked for).
    static func poolBytes(
        sizes: [Int], ringBytes: Int, blocks: BenchServeManifest.Blocks? = nil, pushRings: Bool = false
    ) -> Int {
        var bytes = sizes.map { max(1, ringBytes / $0) * $0 + (64 << 10) }.reduce(
            BenchServeManifest.manifestBytes + (1 << 20), +)
        if let blocks { bytes += blocks.tensors * (blocks.blocks * blocks.blockBytes + (64 << 10)) }
        if pushRings { bytes += sizes.map { pushSlots($0) * $0 + (64 << 10) }.reduce(0, +) }
        return bytes
    }

    /// Allocates and fills every ring (and the blocks cache and push rings when asked for) and writes the manifest;
    /// `corrupt` (a test hook) flips the last byte of slot 0 of every ring after filling.
    init(
        manager: CacheManager, clusterID: UInt64, sizes: [Int], ringBytes: Int,
        blocks: BenchServeManifest.Blocks? = nil,
        pushRings: Bool = false, corrupt: Bool = false
    ) throws {
        self.manager = manager
        var rings: [BenchServeManifest.Ring] = []
        var caches: [(Cache, [CacheKey])] = []
        do {
            // First, so that a peer with remote cache access (which pulls by cache id, not by key) finds it.
            let manifestKey = BenchServeManifest.key(promptCluster: clusterID)
            let manifestCache = try manager.allocateCache(BenchServeManifest.desc, keys: [manifestKey])
            caches.append((manifestCache, [manifestKey]))
            guard manifestCache.cacheID == BenchServeManifest.manifestCacheID || !pushRings else {
                throw BenchFailure(
                    "the manifest cache got id \(manifestCache.cacheID), not \(BenchServeManifest.manifestCacheID): a bench --connect --remote-accessible would not find it"
                )
            }
            for (index, size) in sizes.enumerated() {
                let ring = BenchServeManifest.Ring(
                    bytes: size, slots: max(1, ringBytes / size), keyBase: UInt64(index + 1) << 32)
                let keys = (0..<UInt64(ring.slots)).map {
                    CacheKey(promptClusterID: clusterID, reqID: .max, prefixID: ring.keyBase + $0)
                }
                let desc = CacheDesc(
                    numTensors: 1, shape: [Int64(ring.slots), Int64(size / 2)], dataType: .float16)
                let cache = try manager.allocateCache(desc, keys: keys)
                caches.append((cache, keys))
                for slot in 0..<ring.slots {
                    KVPattern.fill(
                        address: cache.tensorAddresses[0] + UInt(slot * size), bytes: size,
                        request: ring.keyBase + UInt64(slot), tensor: 0)
                }
                if corrupt { BenchMemory.flipByte(at: cache.tensorAddresses[0] + UInt(size - 1)) }
                rings.append(ring)
            }
            var manifest = BenchServeManifest(rings: rings)
            if let shape = blocks {
                let cache = try manager.allocateBlocksCache(
                    BenchBlocks.desc(
                        tensors: shape.tensors, blocks: shape.blocks, blockBytes: shape.blockBytes, placement: .device),
                    key: BlocksCacheKey(clusterID: clusterID, modelID: shape.modelID))
                caches.append((cache, []))
                BenchBlocks.fill(cache.tensorAddresses, blocks: 0..<shape.blocks, blockBytes: shape.blockBytes)
                manifest.blocks = shape
            }
            if pushRings {
                manifest.pushRings = []
                for size in sizes {
                    let slots = Self.pushSlots(size)
                    let cache = try manager.allocateCache(
                        CacheDesc(numTensors: 1, shape: [Int64(slots), Int64(size / 2)], dataType: .float16))
                    caches.append((cache, []))
                    BenchMemory.zero(address: cache.tensorAddresses[0], bytes: slots * size)
                    manifest.pushRings?.append(.init(bytes: size, slots: slots, cacheID: cache.cacheID))
                }
            }
            self.manifest = manifest
            let json = try JSONEncoder().encode(manifest)
            guard json.count < BenchServeManifest.manifestBytes else {
                throw BenchFailure(
                    "the manifest of \(sizes.count) sizes exceeds \(BenchServeManifest.manifestBytes) bytes")
            }
            let target = UnsafeMutablePointer<UInt8>(bitPattern: manifestCache.tensorAddresses[0])!
            target.initialize(repeating: 0, count: BenchServeManifest.manifestBytes)
            json.copyBytes(to: target, count: json.count)
        } catch {
            Self.free(caches, manager: manager)
            throw error
        }
        self.caches = caches
    }

    /// Removes every key and deallocates every cache; the first error, or nil.
    func free() -> String? { Self.free(caches, manager: manager) }

    @discardableResult
    private static func free(_ caches: [(Cache, [CacheKey])], manager: CacheManager) -> String? {
        var failure: String?
        for (cache, keys) in caches {
            do {
                if cache.isBlocksCache {
                    try manager.deallocateBlocksCache(cache)
                } else {
                    for key in keys { try manager.removeCacheKey(key) }
                    try manager.deallocateCache(cache)
                }
            } catch {
                failure = failure ?? "\(error)"
            }
        }
        return failure
    }
}
