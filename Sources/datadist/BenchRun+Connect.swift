import DataDist
import Foundation

/// `bench --connect`: the pull_cache bandwidth rows against a standalone `bench-serve --host` started elsewhere,
/// over the rings its manifest lists (`BenchServeManifest`), instead of a prompt process of this run's own.
extension BenchRun {
    func runConnectedRows(to endpoint: IPEndpoint, promptCluster: UInt64) throws {
        let decoder = try BenchDecoder(
            clusterID: 2, promptCluster: promptCluster, at: endpoint, poolBytes: 3 << 30, copyThreads: nil,
            remoteAccessible: false)
        defer { if let problem = decoder.finish() { problems.append(problem) } }
        let manifest = try Self.pullManifest(from: promptCluster, into: decoder.manager)
        for size in sizes {
            guard let ring = manifest.rings.first(where: { $0.bytes == size }) else {
                let served = manifest.rings.map { "\(ByteSize(bytes: $0.bytes))" }.joined(separator: ", ")
                problems.append(
                    "bench-serve at \(endpoint) serves no \(ByteSize(bytes: size)) ring (it serves \(served))")
                continue
            }
            try record {
                try pullPrefixRing(
                    size, slots: ring.slots, keyBase: ring.keyBase, promptCluster: promptCluster, decoder: decoder)
            }
        }
    }

    /// Pulls the server's manifest (its prefix key is never consumed) into a cache of this decoder and reads it.
    private static func pullManifest(from promptCluster: UInt64, into manager: CacheManager) throws
        -> BenchServeManifest
    {
        let cache = try manager.allocateCache(BenchServeManifest.desc)
        defer { try? manager.deallocateCache(cache) }
        do {
            try manager.pullCache(BenchServeManifest.key(promptCluster: promptCluster), into: cache)
        } catch {
            throw BenchFailure(
                "pulling the manifest of cluster \(promptCluster) failed (is it a bench-serve --host?): \(error)")
        }
        return try BenchServeManifest.read(at: cache.tensorAddresses[0])
    }
}
