import DataDist
import Foundation

/// The bench's raw memory: host buffers it owns, and the memset calls on addresses. (`KVPattern` writes and
/// checks its pattern through pointers of its own.)
enum BenchMemory {
    /// A page-aligned host buffer of `bytes` bytes, written once so its pages exist; nil if the host refuses.
    static func allocate(_ bytes: Int) -> UInt? {
        var pointer: UnsafeMutableRawPointer?
        guard posix_memalign(&pointer, 4096, bytes) == 0, let pointer else { return nil }
        memset(pointer, 0x5A, bytes)
        return UInt(bitPattern: pointer)
    }

    static func free(_ address: UInt) {
        Foundation.free(UnsafeMutableRawPointer(bitPattern: address))
    }

    static func zero(address: UInt, bytes: Int) {
        memset(UnsafeMutableRawPointer(bitPattern: address)!, 0, bytes)
    }

    static func flipByte(at address: UInt) {
        UnsafeMutablePointer<UInt8>(bitPattern: address)!.pointee ^= 0xFF
    }

    /// The last-level cache of CPU 0 in bytes (sysfs), 32 MiB if it cannot be read.
    static var lastLevelCacheBytes: Int {
        for index in (0...4).reversed() {
            let path = "/sys/devices/system/cpu/cpu0/cache/index\(index)/size"
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            let multiplier = trimmed.hasSuffix("K") ? 1 << 10 : trimmed.hasSuffix("M") ? 1 << 20 : 1
            if let value = Int(trimmed.trimmingCharacters(in: CharacterSet(charactersIn: "KM"))), value > 0 {
                return value * multiplier
            }
        }
        return 32 << 20
    }
}

/// KV-shaped blocks caches: `tensors` tensors of `blocks` blocks of `blockBytes` bytes each; block `b` of tensor `t`
/// holds `KVPattern(request: b, tensor: t)`.
enum BenchBlocks {
    static func desc(tensors: Int, blocks: Int, blockBytes: Int, placement: Placement) -> CacheDesc {
        CacheDesc(
            numTensors: tensors, shape: [Int64(blocks), Int64(blockBytes / 2)], dataType: .float16, placement: placement
        )
    }

    static func fill(_ tensors: [UInt], blocks: some Sequence<Int>, blockBytes: Int) {
        for block in blocks {
            for (tensor, base) in tensors.enumerated() {
                KVPattern.fill(
                    address: base + UInt(block * blockBytes), bytes: blockBytes, request: UInt64(block),
                    tensor: UInt64(tensor))
            }
        }
    }

    /// A description of the first block (of `pairs`: source block, destination block) whose destination does
    /// not hold the source's pattern; nil if all do.
    static func mismatch(_ tensors: [UInt], pairs: [(Int, Int)], blockBytes: Int) -> String? {
        for (source, destination) in pairs {
            for (tensor, base) in tensors.enumerated() {
                if let offset = KVPattern.firstMismatch(
                    address: base + UInt(destination * blockBytes), bytes: blockBytes, request: UInt64(source),
                    tensor: UInt64(tensor))
                {
                    return "tensor \(tensor) block \(destination) (from block \(source)) differs at byte \(offset)"
                }
            }
        }
        return nil
    }

    /// `count` distinct blocks of `0..<blocks` for each side, in a shuffled order in which no two neighbours
    /// are consecutive on both sides (so nothing coalesces), from a fixed seed.
    static func scattered(count: Int, sourceBlocks: Int, destinationBlocks: Int, seed: UInt64) -> [(Int, Int)] {
        var generator = SplitMix(state: seed)
        while true {
            let sources = Array((0..<sourceBlocks).shuffled(using: &generator).prefix(count))
            let destinations = Array((0..<destinationBlocks).shuffled(using: &generator).prefix(count))
            let pairs = Array(zip(sources, destinations))
            let sorted = pairs.sorted { $0.0 < $1.0 }  // swapBlocks sorts by source before coalescing
            let coalesces = { (list: [(Int, Int)]) in
                zip(list, list.dropFirst()).contains { $0.0 + 1 == $1.0 && $0.1 + 1 == $1.1 }
            }
            if !coalesces(pairs) && !coalesces(sorted) { return pairs }
        }
    }
}

/// A small deterministic generator, so every run scatters the same way.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
