import ArgumentParser
import DataDist

/// The bytes `datadist serve` writes into every cache and `datadist pull` checks after every pull: 64-bit words
/// derived from (request, tensor, word index), so a byte from the wrong request, tensor or offset never matches.
enum KVPattern {
    /// Word `index` of tensor `tensor` of request `request`.
    @inline(__always)
    static func word(request: UInt64, tensor: UInt64, index: UInt64) -> UInt64 {
        var x = ((request &+ 1) &* 0x9E37_79B9_7F4A_7C15) ^ ((tensor &+ 1) &* 0xC2B2_AE3D_27D4_EB4F) ^ index
        x = (x ^ (x >> 31)) &* 0xBF58_476D_1CE4_E5B9
        return x ^ (x >> 29)
    }

    /// Writes the pattern over `bytes` bytes (a multiple of 8) at `address`.
    static func fill(address: UInt, bytes: Int, request: UInt64, tensor: UInt64) {
        let words = UnsafeMutablePointer<UInt64>(bitPattern: address)!
        for index in 0..<bytes / 8 {
            words[index] = word(request: request, tensor: tensor, index: UInt64(index))
        }
    }

    /// Byte offset of the first byte of `bytes` bytes at `address` that differs from the pattern, nil if none.
    static func firstMismatch(address: UInt, bytes: Int, request: UInt64, tensor: UInt64) -> Int? {
        let words = UnsafePointer<UInt64>(bitPattern: address)!
        for index in 0..<bytes / 8 {
            let expected = word(request: request, tensor: tensor, index: UInt64(index))
            let found = words[index]
            if found != expected {
                let differing = (found ^ expected).trailingZeroBitCount / 8  // little-endian byte order
                return index * 8 + differing
            }
        }
        return nil
    }
}

/// The shape of every request's KV that `serve` offers and `pull` expects: `layers` layers of K and V, each a
/// `[1, tokens, hidden]` float16 tensor. Both sides must be given the same values.
struct KVShapeOptions: ParsableArguments {
    @Option(help: "Model layers per request (two tensors, K and V, per layer).")
    var layers = 4

    @Option(help: "Tokens per request.")
    var tokens = 256

    @Option(help: "float16 elements per token in each tensor (KV heads × head size); a multiple of 4.")
    var hidden = 1024

    func validate() throws {
        guard (1...512).contains(layers) else { throw ValidationError("--layers \(layers) must be in 1...512") }
        guard (1...1_048_576).contains(tokens) else {
            throw ValidationError("--tokens \(tokens) must be in 1...1048576")
        }
        guard (4...65_536).contains(hidden), hidden % 4 == 0 else {
            throw ValidationError("--hidden \(hidden) must be a multiple of 4 in 4...65536")
        }
        guard tensorBytes <= 1 << 30 else {
            throw ValidationError(
                "--tokens \(tokens) × --hidden \(hidden) makes \(tensorBytes)-byte tensors; at most 1 GiB")
        }
    }

    var tensors: Int { 2 * layers }
    var tensorBytes: Int { tokens * hidden * 2 }
    var requestBytes: Int { tensors * tensorBytes }

    /// One request's cache: batch size 1, on the device.
    var desc: CacheDesc {
        CacheDesc(numTensors: tensors, shape: [1, Int64(tokens), Int64(hidden)], dataType: .float16)
    }

    /// A device pool with room for `caches` caches of this shape (64 KiB pages, one spare).
    func pool(caches: Int) -> MemoryPoolConfig {
        let page = 1 << 16
        let tensorPages = (tensorBytes + page - 1) / page
        return MemoryPoolConfig(size: (caches * tensors * tensorPages + 1) * page, pageShift: 16)
    }

    var summary: String {
        "\(layers) layers (\(tensors) tensors of [1, \(tokens), \(hidden)] float16, \(ProbeText.bytes(tensorBytes)) each)"
    }
}

/// The key of request `request`: a request key (consumed by its pull) or, with `prefix`, a prefix key (never
/// consumed, so it can be pulled again and again).
func demoKey(_ request: UInt64, promptCluster: UInt64, prefix: Bool) -> CacheKey {
    prefix
        ? CacheKey(promptClusterID: promptCluster, reqID: .max, prefixID: request)
        : CacheKey(promptClusterID: promptCluster, reqID: request)
}
