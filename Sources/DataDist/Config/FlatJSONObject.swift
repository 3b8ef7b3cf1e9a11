/// A strict reader for one flat JSON object whose values are all unsigned integers, e.g.
/// `{"memory_size": 1048576, "page_shift": 16}`. It refuses anything else: other value types, negative or
/// fractional numbers, leading zeros, nesting, duplicate keys, values above `UInt64.max`, trailing text.
/// Failures are messages (the caller adds which option they belong to).
struct FlatJSONObject {
    /// Members in document order.
    private(set) var members: [(key: String, value: UInt64)] = []

    init(parsing text: String) throws(FlatJSONError) {
        var reader = Reader(bytes: Array(text.utf8))
        reader.skipSpace()
        try reader.expect(UInt8(ascii: "{"), "the text must be a JSON object starting with '{'")
        reader.skipSpace()
        if !reader.consume(UInt8(ascii: "}")) {
            while true {
                reader.skipSpace()
                let key = try reader.string()
                guard !members.contains(where: { $0.key == key }) else {
                    throw FlatJSONError("duplicate key \"\(key)\"")
                }
                reader.skipSpace()
                try reader.expect(UInt8(ascii: ":"), "expected ':' after key \"\(key)\"")
                reader.skipSpace()
                members.append((key, try reader.unsignedInteger(for: key)))
                reader.skipSpace()
                if reader.consume(UInt8(ascii: ",")) { continue }
                try reader.expect(UInt8(ascii: "}"), "expected ',' or '}' after the value of \"\(key)\"")
                break
            }
        }
        reader.skipSpace()
        guard reader.atEnd else { throw FlatJSONError("unexpected text after the object: \"\(reader.rest)\"") }
    }

    subscript(key: String) -> UInt64? { members.first { $0.key == key }?.value }
}

/// Why a text is not a flat object of unsigned integers.
struct FlatJSONError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// A cursor over UTF-8 bytes.
private struct Reader {
    let bytes: [UInt8]
    var index = 0

    var atEnd: Bool { index == bytes.count }
    var peek: UInt8? { atEnd ? nil : bytes[index] }
    var rest: String { String(decoding: bytes[index...].prefix(40), as: UTF8.self) }

    mutating func skipSpace() {
        while let byte = peek, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { index += 1 }
    }

    mutating func consume(_ byte: UInt8) -> Bool {
        guard peek == byte else { return false }
        index += 1
        return true
    }

    mutating func expect(_ byte: UInt8, _ message: @autoclosure () -> String) throws(FlatJSONError) {
        guard consume(byte) else {
            throw FlatJSONError(message() + (atEnd ? " (text ended)" : ", found \"\(rest)\""))
        }
    }

    /// A JSON string with its escapes decoded.
    mutating func string() throws(FlatJSONError) -> String {
        try expect(UInt8(ascii: "\""), "expected a quoted key")
        var scalars = String.UnicodeScalarView()
        var start = index
        func flush(_ end: Int) {
            scalars.append(contentsOf: String(decoding: bytes[start..<end], as: UTF8.self).unicodeScalars)
        }
        while let byte = peek {
            switch byte {
            case UInt8(ascii: "\""):
                flush(index)
                index += 1
                return String(scalars)
            case UInt8(ascii: "\\"):
                flush(index)
                index += 1
                scalars.append(try escape())
                start = index
            case 0..<0x20:
                throw FlatJSONError("control character 0x\(String(byte, radix: 16)) inside a string")
            default:
                index += 1
            }
        }
        throw FlatJSONError("unterminated string")
    }

    private mutating func escape() throws(FlatJSONError) -> Unicode.Scalar {
        guard let byte = peek else { throw FlatJSONError("unterminated escape") }
        index += 1
        switch byte {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            let unit = try hex4()
            if (0xD800..<0xDC00).contains(unit) {
                guard consume(UInt8(ascii: "\\")), consume(UInt8(ascii: "u")) else {
                    throw FlatJSONError("unpaired surrogate \\u\(String(unit, radix: 16))")
                }
                let low = try hex4()
                guard (0xDC00..<0xE000).contains(low) else {
                    throw FlatJSONError("unpaired surrogate \\u\(String(unit, radix: 16))")
                }
                return Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))!
            }
            guard let scalar = Unicode.Scalar(unit) else {
                throw FlatJSONError("unpaired surrogate \\u\(String(unit, radix: 16))")
            }
            return scalar
        default:
            throw FlatJSONError("invalid escape \\\(Character(Unicode.Scalar(byte)))")
        }
    }

    private mutating func hex4() throws(FlatJSONError) -> UInt32 {
        guard index + 4 <= bytes.count,
            let value = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16),
            bytes[index..<index + 4].allSatisfy({ $0 != UInt8(ascii: "+") && $0 != UInt8(ascii: "-") })
        else { throw FlatJSONError("\\u must be followed by four hex digits") }
        index += 4
        return value
    }

    /// An unsigned integer in JSON syntax (`0` or a digit run without a leading zero), at most `UInt64.max`.
    mutating func unsignedInteger(for key: String) throws(FlatJSONError) -> UInt64 {
        let start = index
        while let byte = peek, isTokenByte(byte) { index += 1 }
        let token = String(decoding: bytes[start..<index], as: UTF8.self)
        guard !token.isEmpty else {
            switch peek {
            case UInt8(ascii: "\""):
                let text = (try? string()) ?? "…"
                throw FlatJSONError("\"\(key)\" is the string \"\(text)\"; expected an unsigned integer")
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                throw FlatJSONError("\"\(key)\" holds a nested object or array; expected an unsigned integer")
            case nil:
                throw FlatJSONError("\"\(key)\" has no value (text ended)")
            default:
                throw FlatJSONError("\"\(key)\" has no value, found \"\(rest)\"")
            }
        }
        if token.hasPrefix("-") { throw FlatJSONError("\"\(key)\" is \(token); negative values are not allowed") }
        guard OptionValue.isDigits(token) else {
            throw FlatJSONError(
                "\"\(key)\" is \(token); expected an unsigned integer "
                    + "(digits only: no sign, fraction, exponent or literal)")
        }
        guard token == "0" || !token.hasPrefix("0") else {
            throw FlatJSONError("\"\(key)\" is \(token); leading zeros are not JSON")
        }
        guard let value = UInt64(token) else {
            throw FlatJSONError("\"\(key)\" is \(token), above the UInt64 maximum \(UInt64.max)")
        }
        return value
    }

    /// Bytes that can belong to a bare token (number or literal) we want to show whole in a message.
    private func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "."), UInt8(ascii: "+"), UInt8(ascii: "-"):
            true
        default: false
        }
    }
}
