internal import FoundationEssentials

/// The checks `JSONDecoder` cannot make, read from the raw text: it keeps the first of two equal keys, accepts
/// a comma before `}`, and reads `1e6`, `1.0` and `-0` as integers. Run only on a text the decoder accepted as
/// one object whose values are all numbers, so every quoted string in it is a key and every bare token a number.
enum PoolJSONLiterals {
    /// The keys in document order. Throws for a repeated key, a trailing comma, and a number that is not plain
    /// digits (sign, fraction, exponent, leading zero) or is above `UInt64.max`, naming the key and the literal.
    static func keys(in json: String) throws(PoolJSONError) -> [String] {
        var keys: [String] = []
        var afterComma = false
        var rest = Substring(json).utf8[...]
        while let byte = rest.first {
            switch byte {
            case UInt8(ascii: "\""):
                let key = Self.key(quoted: Self.quoted(&rest))
                guard !keys.contains(key) else { throw PoolJSONError("duplicate key \"\(key)\"") }
                keys.append(key)
            case UInt8(ascii: ","):
                afterComma = true
                rest.removeFirst()
                continue
            case UInt8(ascii: "}"):
                guard !afterComma else { throw PoolJSONError("a trailing comma before '}' is not JSON") }
                rest.removeFirst()
            case UInt8(ascii: "{"), UInt8(ascii: ":"), 0x20, 0x09, 0x0A, 0x0D:
                rest.removeFirst()
                continue
            default:
                let token = rest.prefix { !Self.endsToken($0) }
                rest.removeFirst(token.count)
                try check(String(Substring(token)), of: keys.last ?? "")
            }
            afterComma = false
        }
        return keys
    }

    /// A number literal must be `0` or digits without a leading zero, at most `UInt64.max`.
    private static func check(_ literal: String, of key: String) throws(PoolJSONError) {
        if literal.hasPrefix("-") {
            throw PoolJSONError("\"\(key)\" is \(literal); negative values are not allowed")
        }
        guard OptionValue.isDigits(literal) else {
            throw PoolJSONError(
                "\"\(key)\" is \(literal); expected an unsigned integer "
                    + "(digits only: no sign, fraction, exponent or literal)")
        }
        guard literal == "0" || !literal.hasPrefix("0") else {
            throw PoolJSONError("\"\(key)\" is \(literal); leading zeros are not JSON")
        }
        guard UInt64(literal) != nil else {
            throw PoolJSONError("\"\(key)\" is \(literal), above the UInt64 maximum \(UInt64.max)")
        }
    }

    /// Removes one quoted string, quotes and escapes included, from the front of `rest` and returns it.
    private static func quoted(_ rest: inout Substring.UTF8View) -> Substring.UTF8View {
        let whole = rest
        rest.removeFirst()
        while let byte = rest.popFirst(), byte != UInt8(ascii: "\"") {
            if byte == UInt8(ascii: "\\") { _ = rest.popFirst() }
        }
        return whole[whole.startIndex..<rest.startIndex]
    }

    /// The key a quoted string names, escapes decoded by `JSONDecoder`.
    private static func key(quoted: Substring.UTF8View) -> String {
        (try? JSONDecoder().decode(String.self, from: Data(quoted))) ?? String(Substring(quoted))
    }

    private static func endsToken(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: ","), UInt8(ascii: "}"), 0x20, 0x09, 0x0A, 0x0D: true
        default: false
        }
    }
}
