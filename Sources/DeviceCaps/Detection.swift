/// The outcome of product detection: the product, the candidates it could not exclude, and why.
public struct Detection: Sendable, Hashable {
    /// The product to gate on: the only candidate, or the strictest one when detection is ambiguous.
    public let product: AtlasProduct
    /// Every product the SoC name and board id allow, in `AtlasProduct.allCases` order; more than one when
    /// ambiguous.
    public let candidates: [AtlasProduct]
    /// How the product was decided, naming the SoC name and board id that were used.
    public let note: String

    /// Whether more than one product remains possible.
    public var isAmbiguous: Bool { candidates.count > 1 }

    /// A detection that settled on exactly one product.
    public init(product: AtlasProduct, note: String) {
        self.product = product
        self.candidates = [product]
        self.note = note
    }

    /// A detection that could not choose between `candidates`. The gating product is the candidate that
    /// supports the fewest operations (the earliest in `AtlasProduct.allCases` on a tie). Duplicates are
    /// dropped; no candidates at all means `.unknown`.
    public init(candidates: [AtlasProduct], note: String) {
        let ordered = AtlasProduct.allCases.filter(candidates.contains)
        self.candidates = ordered.isEmpty ? [.unknown] : ordered
        self.product = Self.strictest(of: self.candidates)
        self.note = note
    }

    static func strictest(of candidates: [AtlasProduct]) -> AtlasProduct {
        var best = candidates[0]
        var bestCount = Int.max
        for product in candidates {
            let count = Operation.allCases.count { SupportTable.cell($0, product).support.supported }
            if count < bestCount {
                best = product
                bestCount = count
            }
        }
        return best
    }
}

/// Formats a board id the way the vendor docs write it, e.g. `0x3E`.
func hex(_ id: UInt32) -> String {
    let digits = String(id, radix: 16, uppercase: true)
    return "0x" + (digits.count < 2 ? "0" + digits : digits)
}
