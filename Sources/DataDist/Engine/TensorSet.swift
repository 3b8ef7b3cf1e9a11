/// Tensor indices of one cache slot, as a layer-wise pull tracks them: the first 64 as bits, the rest (caches of
/// more tensors) in a set. Taking and settling a whole slot of up to 64 tensors then costs no allocation and no
/// hashing, where a `Set<Int>` cost both on every pull.
struct TensorSet: Sendable, Equatable {
    private var low: UInt64 = 0
    private var high: Set<Int> = []

    init() {}

    /// The indices of `range` (none below 0).
    init(_ range: Range<Int>) {
        let start = max(range.lowerBound, 0)
        let lowEnd = min(range.upperBound, 64)
        if start < lowEnd {
            let width = lowEnd - start
            low = (width == 64 ? UInt64.max : (1 << UInt64(width)) - 1) << UInt64(start)
        }
        if range.upperBound > 64 { high = Set(max(start, 64)..<range.upperBound) }
    }

    private init(low: UInt64, high: Set<Int>) {
        self.low = low
        self.high = high
    }

    var count: Int { low.nonzeroBitCount + high.count }

    var isEmpty: Bool { low == 0 && high.isEmpty }

    func contains(_ index: Int) -> Bool {
        (0..<64).contains(index) ? low & (1 << UInt64(index)) != 0 : high.contains(index)
    }

    func subtracting(_ other: TensorSet) -> TensorSet {
        TensorSet(low: low & ~other.low, high: high.isEmpty || other.high.isEmpty ? high : high.subtracting(other.high))
    }

    mutating func formUnion(_ other: TensorSet) {
        low |= other.low
        if !other.high.isEmpty { high.formUnion(other.high) }
    }

    mutating func subtract(_ other: TensorSet) {
        low &= ~other.low
        if !high.isEmpty, !other.high.isEmpty { high.subtract(other.high) }
    }
}
