import LinkLayer

/// Parsers and checks for single option values; every failure names the key and the value.
enum OptionValue {
    static func invalid(_ key: String, _ value: String, _ why: String) -> LLMError {
        .paramInvalid("option \"\(key)\" = \"\(value)\": \(why)")
    }

    static func isDigits(_ text: some StringProtocol) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    /// A decimal unsigned integer (ASCII digits only) inside `range`.
    static func unsigned(_ key: String, _ value: String, in range: ClosedRange<UInt64>) throws(LLMError) -> UInt64 {
        guard isDigits(value) else {
            throw invalid(key, value, "must be an unsigned decimal integer in \(range) (digits only)")
        }
        guard let number = UInt64(value), range.contains(number) else {
            throw invalid(key, value, "is outside \(range)")
        }
        return number
    }

    /// `"1"` or `"0"`.
    static func flag(_ key: String, _ value: String) throws(LLMError) -> Bool {
        switch value {
        case "1": return true
        case "0": return false
        default: throw invalid(key, value, "must be \"1\" or \"0\"")
        }
    }

    /// One non-negative int32 device id.
    static func deviceID(_ key: String, _ value: String) throws(LLMError) -> Int32 {
        if value.contains(";") || value.contains(",") {
            throw invalid(key, value, "one device per instance: give a single device id, not a list")
        }
        if value.hasPrefix("-"), isDigits(value.dropFirst()) {
            throw invalid(key, value, "a device id must be >= 0")
        }
        return Int32(try unsigned(key, value, in: 0...UInt64(Int32.max)))
    }

    /// Milliseconds, 1...Int32.max.
    static func timeoutMilliseconds(_ key: String, _ value: String) throws(LLMError) -> Int32 {
        guard isDigits(value) else {
            throw invalid(key, value, "must be a positive whole number of milliseconds (digits only)")
        }
        if value.utf8.allSatisfy({ $0 == UInt8(ascii: "0") }) { throw invalid(key, value, "must be > 0") }
        return Int32(try unsigned(key, value, in: 1...UInt64(Int32.max)))
    }

    /// `"ip:port"` or `"[ipv6]:port"` with a numeric address.
    static func endpoint(_ key: String, _ value: String) throws(LLMError) -> IPEndpoint {
        guard let endpoint = IPEndpoint(value) else {
            throw invalid(
                key, value, "must be \"ip:port\" or \"[ipv6]:port\" (IPv6 in brackets) with a port in 0...65535")
        }
        guard SocketEndpoint.isNumericAddress(endpoint.host) else {
            throw invalid(key, value, "\"\(endpoint.host)\" is not a numeric IPv4 or IPv6 address")
        }
        return endpoint
    }

    /// Checks a value kept in `additionalOptions` against its key's rule.
    static func checkPassThrough(_ key: String, _ value: String) throws(LLMError) {
        switch key {
        case LLMOptionKey.linkTotalTime:
            _ = try unsigned(key, value, in: 0...UInt64(UInt32.max))
        case LLMOptionKey.linkRetryCount:
            _ = try unsigned(key, value, in: 1...100)
        case LLMOptionKey.rdmaTrafficClass, LLMOptionKey.rdmaServiceLevel:
            _ = try unsigned(key, value, in: 0...UInt64(UInt32.max))
        case LLMOptionKey.memoryUtilization:
            try checkFraction(key, value)
        case LLMOptionKey.transferBackend:
            guard value == "hixl" else { throw invalid(key, value, "the only transfer backend is \"hixl\"") }
        case LLMOptionKey.role:
            guard ["Prompt", "Decoder", "Mix"].contains(value) else {
                throw invalid(key, value, "must be \"Prompt\", \"Decoder\" or \"Mix\"")
            }
        case LLMOptionKey.enableSwitchRole:
            _ = try flag(key, value)
        case LLMOptionKey.flowGraphMemMaxSize:
            if value.contains(",") { throw invalid(key, value, "must be one size, not a list") }
            guard isDigits(value) else { throw invalid(key, value, "must be a byte count (digits only)") }
        default:
            guard isPassThrough(key), !LLMOptionKey.isMiscasedKnownKey(key) else {
                throw .paramInvalid(LLMOptionKey.unknownKeyMessage(key, value))
            }
        }
    }

    static func isPassThrough(_ key: String) -> Bool { LLMOptionKey.isPassThrough(key) }

    /// A finite decimal in 0...1 (`"0.95"`, `"1"`, `"5e-1"`).
    private static func checkFraction(_ key: String, _ value: String) throws(LLMError) {
        let allowed = value.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"), UInt8(ascii: "+"), UInt8(ascii: "-")]
                    .contains(byte)
        }
        guard allowed, let number = Double(value), number.isFinite else {
            throw invalid(key, value, "must be a decimal number in 0...1")
        }
        guard number >= 0, number <= 1 else { throw invalid(key, value, "is outside 0...1") }
    }
}
