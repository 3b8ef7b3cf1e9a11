/// A number of bytes, read from and written as text such as `4096`, `64MiB`, `64 GiB` or `2G`.
///
/// The grammar, one for every byte-size setting (`DATADIST_EMULATE_DEVICE_MEMORY`, `datadist bench --sizes`):
///
///     size  = [blank] digits [blank] [unit] [blank]
///     blank = one or more spaces or tabs
///     unit  = "B" | "K" | "KiB" | "M" | "MiB" | "G" | "GiB" | "T" | "TiB"
///
/// Units are binary (`K` and `KiB` are 1024 bytes, `M` and `MiB` 1024², and so on) and case-sensitive. There
/// is no sign, fraction or exponent. A text whose value is above `Int.max` is refused, not wrapped.
public struct ByteCount: Sendable, Hashable, Comparable, LosslessStringConvertible {
    /// The number of bytes, never negative.
    public let bytes: Int

    /// The count of `bytes`, which must not be negative.
    public init(bytes: Int) {
        precondition(bytes >= 0, "a byte count cannot be negative: \(bytes)")
        self.bytes = bytes
    }

    /// Reads a text of the grammar above; `nil` for any other text.
    public init?(_ text: String) {
        var rest = Substring(text)
        rest = rest.drop(while: Self.isBlank)
        let digits = rest.prefix { $0.isASCII && $0.isWholeNumber }
        rest = rest.dropFirst(digits.count)
        rest = rest.drop(while: Self.isBlank)
        while let last = rest.last, Self.isBlank(last) { rest.removeLast() }
        guard !digits.isEmpty, let count = Int(digits), let shift = Self.shifts[String(rest)] else { return nil }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: 1 << shift)
        guard !overflow else { return nil }
        self.bytes = bytes
    }

    /// The count in the largest unit that divides it exactly: `16 KiB`, `1 GiB`, `4100 B`.
    public var description: String {
        for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)]
        where bytes >= 1 << shift && bytes % (1 << shift) == 0 {
            return "\(bytes >> shift) \(unit)"
        }
        return "\(bytes) B"
    }

    /// The grammar in one line, for help and error texts.
    public static let grammar = "digits with an optional unit B, KiB, MiB, GiB, TiB or K, M, G, T (powers of 1024)"

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.bytes < rhs.bytes }

    private static let shifts: [String: Int] = [
        "": 0, "B": 0, "K": 10, "KiB": 10, "M": 20, "MiB": 20, "G": 30, "GiB": 30, "T": 40, "TiB": 40,
    ]

    private static func isBlank(_ character: Character) -> Bool { character == " " || character == "\t" }
}
