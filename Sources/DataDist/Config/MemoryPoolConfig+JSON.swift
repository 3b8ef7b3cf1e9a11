internal import FoundationEssentials

extension MemoryPoolConfig {
    /// The pool JSON keys.
    static let sizeKey = "memory_size"
    static let pageShiftKey = "page_shift"
    /// `page_shift` bounds (spec §8.1: `[10, 31)`).
    public static let pageShiftRange = 10...30

    /// Reads `{"memory_size": N, "page_shift": K}` (`page_shift` optional, default 16), the format of
    /// `llm.MemPoolConfig` and `llm.HostMemPoolConfig`.
    ///
    /// Strict: one JSON object of unsigned integers written as plain digits; unknown or duplicate keys, a
    /// missing `memory_size`, values that do not fit `Int`, and text that is not JSON throw `.paramInvalid`.
    /// Ranges are not checked here: call `validate()`.
    public init(json: String) throws(LLMError) {
        let fields: PoolJSONFields
        let keys: [String]
        do {
            fields = try JSONDecoder().decode(PoolJSONFields.self, from: Data(json.utf8))
            keys = try PoolJSONLiterals.keys(in: json)
        } catch let error as PoolJSONError {
            throw Self.invalidJSON(json, error.message)
        } catch {
            throw Self.invalidJSON(json, "not valid JSON (expected one object such as \(Self.example))")
        }
        let known = [Self.sizeKey, Self.pageShiftKey]
        if let unknown = keys.first(where: { !known.contains($0) }) {
            throw Self.invalidJSON(json, "unknown key \"\(unknown)\" (known keys: \(known.joined(separator: ", ")))")
        }
        func value(_ key: String) throws(LLMError) -> Int? {
            guard keys.contains(key) else { return nil }
            guard let value = fields.values[key] else {
                throw Self.invalidJSON(json, "\"\(key)\" is not an unsigned integer")
            }
            guard let int = Int(exactly: value) else {
                throw Self.invalidJSON(json, "\"\(key)\" is \(value), above Int.max \(Int.max)")
            }
            return int
        }
        guard let size = try value(Self.sizeKey) else { throw Self.invalidJSON(json, "\"memory_size\" is required") }
        self.init(size: size, pageShift: try value(Self.pageShiftKey) ?? 16)
    }

    private static let example = MemoryPoolConfig(size: 1_048_576).json

    /// The canonical JSON, `{"memory_size": N, "page_shift": K}`; `init(json:)` reads it back.
    public var json: String { "{\"\(Self.sizeKey)\": \(size), \"\(Self.pageShiftKey)\": \(pageShift)}" }

    /// Checks the pool against spec §8.1: `memory_size > 0`, `page_shift` in 10...30, at least one page
    /// (`2^page_shift <= memory_size`), and fewer than 2^32 − 1 pages. Throws `.paramInvalid` naming the field
    /// and its value.
    public func validate() throws(LLMError) {
        guard size > 0 else { throw .paramInvalid("memory_size \(size) must be > 0") }
        guard Self.pageShiftRange.contains(pageShift) else {
            throw .paramInvalid("page_shift \(pageShift) is outside \(Self.pageShiftRange)")
        }
        let pageSize = 1 << pageShift
        guard pageSize <= size else {
            throw .paramInvalid(
                "memory_size \(size) is smaller than one page of \(pageSize) bytes (page_shift \(pageShift))")
        }
        let pages = size >> pageShift
        guard pages < Int(UInt32.max) else {
            throw .paramInvalid(
                "memory_size \(size) with page_shift \(pageShift) makes \(pages) pages; must be < \(UInt32.max)")
        }
    }

    private static func invalidJSON(_ json: String, _ why: String) -> LLMError {
        .paramInvalid("memory pool JSON \"\(json)\": \(why)")
    }
}
