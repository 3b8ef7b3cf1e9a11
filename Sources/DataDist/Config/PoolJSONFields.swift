internal import FoundationEssentials

/// The members of a memory pool JSON object as `JSONDecoder` reads them. Every value must be a JSON number:
/// `null`, booleans, strings, objects and arrays throw `PoolJSONError` naming the key.
struct PoolJSONFields: Decodable {
    /// The values that fit `UInt64`, by key. A number that does not fit is left out; `PoolJSONLiterals` says why.
    let values: [String: UInt64]

    init(from decoder: any Decoder) throws {
        let object: KeyedDecodingContainer<MemberKey>
        do {
            object = try decoder.container(keyedBy: MemberKey.self)
        } catch DecodingError.typeMismatch {
            throw PoolJSONError("the text must be a JSON object starting with '{'")
        }
        var values: [String: UInt64] = [:]
        for key in object.allKeys {
            if let value = try Self.number(in: object, at: key) { values[key.stringValue] = value }
        }
        self.values = values
    }

    /// The value at `key` if it is a number that fits `UInt64`, `nil` for another number; throws for other types.
    private static func number(in object: KeyedDecodingContainer<MemberKey>, at key: MemberKey)
        throws(PoolJSONError) -> UInt64?
    {
        if let value = try? object.decode(UInt64.self, forKey: key) { return value }
        let expected = "expected an unsigned integer"
        if (try? object.decodeNil(forKey: key)) == true {
            throw PoolJSONError("\"\(key.stringValue)\" is null; \(expected)")
        }
        if let flag = try? object.decode(Bool.self, forKey: key) {
            throw PoolJSONError("\"\(key.stringValue)\" is \(flag); \(expected)")
        }
        if let text = try? object.decode(String.self, forKey: key) {
            throw PoolJSONError("\"\(key.stringValue)\" is the string \"\(text)\"; \(expected)")
        }
        if (try? object.nestedContainer(keyedBy: MemberKey.self, forKey: key)) != nil
            || (try? object.nestedUnkeyedContainer(forKey: key)) != nil
        {
            throw PoolJSONError("\"\(key.stringValue)\" holds a nested object or array; \(expected)")
        }
        return nil
    }
}

/// Any key of a JSON object.
struct MemberKey: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// Why a memory pool JSON text is refused (the caller adds the text and the option it belongs to).
struct PoolJSONError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}
