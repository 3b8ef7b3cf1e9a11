internal import CCrypto

#if canImport(Glibc)
internal import Glibc
#endif

/// The cryptography the link authentication needs: HMAC-SHA256 and a constant-time comparison (OpenSSL's
/// libcrypto), and nonces from the kernel (`getrandom`). The link layer's only calls into libcrypto are here.
enum HMACSHA256 {
    /// Bytes of a MAC.
    static let size = 32

    /// HMAC-SHA256 of `message` under `key`.
    static func mac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let result = key.withUnsafeBytes { key in
            message.withUnsafeBytes { message in
                output.withUnsafeMutableBytes { out in
                    HMAC(
                        EVP_sha256(), key.baseAddress, Int32(key.count),
                        message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count,
                        out.baseAddress?.assumingMemoryBound(to: UInt8.self), &length)
                }
            }
        }
        // Fails only without memory or without SHA-256 in libcrypto: nothing a link could recover from.
        precondition(result != nil && length == UInt32(size), "HMAC-SHA256 failed in libcrypto")
        return Array(output.prefix(size))
    }

    /// Whether `a` and `b` are equal, taking the same time wherever they differ (a MAC check must not tell an
    /// attacker how many leading bytes of a guess were right).
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { a in b.withUnsafeBytes { b in CRYPTO_memcmp(a.baseAddress, b.baseAddress, a.count) }
        }
            == 0
    }

    /// `count` random bytes from the kernel's generator.
    static func nonce(count: Int = 32) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let result = bytes.withUnsafeMutableBytes { getrandom($0.baseAddress! + filled, count - filled, 0) }
            if result < 0 {
                // EINTR only: without GRND_NONBLOCK it waits for the pool, and getrandom has no other failure here.
                precondition(errno == EINTR, "getrandom failed: errno \(errno)")
                continue
            }
            filled += result
        }
        return bytes
    }
}
