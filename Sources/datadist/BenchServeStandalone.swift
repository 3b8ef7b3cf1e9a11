import DataDist
import Foundation

/// What a standalone `bench-serve` (`--host`) holds, so that a `bench --connect` started elsewhere can pull it
/// without telling it anything: for each size, a ring of `slots` one-tensor slots bound to the prefix keys
/// `keyBase + slot` and filled with `KVPattern(request: keyBase + slot, tensor: 0)`. The manifest itself is JSON
/// in a `manifestBytes` cache bound to the prefix key `manifestPrefixID`, zero-padded.
struct BenchServeManifest: Codable, Equatable {
    struct Ring: Codable, Equatable {
        var bytes: Int
        var slots: Int
        var keyBase: UInt64
    }

    var version = 1
    var rings: [Ring]

    static let manifestPrefixID: UInt64 = 0
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

    /// The pool a server of `sizes` with rings of about `ringBytes` needs (the rings, the manifest, page slack).
    static func poolBytes(sizes: [Int], ringBytes: Int) -> Int {
        sizes.map { max(1, ringBytes / $0) * $0 + (64 << 10) }.reduce(BenchServeManifest.manifestBytes + (1 << 20), +)
    }

    /// Allocates and fills every ring and writes the manifest; `corrupt` (a test hook) flips the last byte of slot 0
    /// of every ring after filling.
    init(manager: CacheManager, clusterID: UInt64, sizes: [Int], ringBytes: Int, corrupt: Bool = false) throws {
        self.manager = manager
        var rings: [BenchServeManifest.Ring] = []
        var caches: [(Cache, [CacheKey])] = []
        do {
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
            manifest = BenchServeManifest(rings: rings)
            let json = try JSONEncoder().encode(manifest)
            guard json.count < BenchServeManifest.manifestBytes else {
                throw BenchFailure(
                    "the manifest of \(sizes.count) sizes exceeds \(BenchServeManifest.manifestBytes) bytes")
            }
            let key = BenchServeManifest.key(promptCluster: clusterID)
            let cache = try manager.allocateCache(BenchServeManifest.desc, keys: [key])
            caches.append((cache, [key]))
            let target = UnsafeMutablePointer<UInt8>(bitPattern: cache.tensorAddresses[0])!
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
                for key in keys { try manager.removeCacheKey(key) }
                try manager.deallocateCache(cache)
            } catch {
                failure = failure ?? "\(error)"
            }
        }
        return failure
    }
}
