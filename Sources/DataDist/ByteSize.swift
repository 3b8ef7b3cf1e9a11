import DeviceRuntime

/// A number of bytes, read from and written as text such as `4096`, `64MiB`, `64 GiB` or `2G`: the one
/// byte-size grammar of the package, shared with the runtime's `DATADIST_EMULATE_DEVICE_MEMORY`.
///
///     size  = [blank] digits [blank] [unit] [blank]
///     blank = one or more spaces or tabs
///     unit  = "B" | "K" | "KiB" | "M" | "MiB" | "G" | "GiB" | "T" | "TiB"
///
/// Units are binary (`K` and `KiB` are 1024 bytes, `M` and `MiB` 1024², and so on) and case-sensitive. There
/// is no sign, fraction or exponent. A text whose value is above `Int.max` is refused, not wrapped.
public struct ByteSize: Sendable, Hashable, Comparable, LosslessStringConvertible {
    private let count: ByteCount

    /// The number of bytes, never negative.
    public var bytes: Int { count.bytes }

    /// The size of `bytes`, which must not be negative.
    public init(bytes: Int) { count = ByteCount(bytes: bytes) }

    /// Reads a text of the grammar above; `nil` for any other text.
    public init?(_ text: String) {
        guard let count = ByteCount(text) else { return nil }
        self.count = count
    }

    /// The size in the largest unit that divides it exactly: `16 KiB`, `1 GiB`, `4100 B`.
    public var description: String { count.description }

    /// The grammar in one line, for help and error texts.
    public static var grammar: String { ByteCount.grammar }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.count < rhs.count }
}
