/// Whether an operation is available on a product, and why (naming the documentation it follows).
public struct Support: Sendable, Hashable, CustomStringConvertible {
    /// Whether the operation may run.
    public let supported: Bool
    /// Names the product, the operation and the source of the decision.
    public let reason: String

    /// A decision and its reason.
    public init(supported: Bool, reason: String) {
        self.supported = supported
        self.reason = reason
    }

    public var description: String { (supported ? "supported: " : "not supported: ") + reason }
}

/// One cell of the support matrix: the decision plus the footnote that qualifies it in the table.
struct MatrixCell: Sendable, Hashable {
    enum Footnote: Int, Sendable, CaseIterable {
        /// 950 and the deprecated CacheManager operations: allowed only at HEAD.
        case only950AtHead = 1
        /// 300I A2: listed from 2025-12, removed 2026-04.
        case removed300IA2 = 2
    }

    let support: Support
    let footnote: Footnote?
}

/// The support matrix, transcribed from the CANN `llm_datadist` docs.
enum SupportTable {
    static let seedSource = "the CANN llm_datadist product table (seed page remove_cache_key.md, spec §11.1)"
    static let currentSource = "the current CANN llm_datadist product tables (spec §11.1)"

    /// `cell(op, product).support.supported` without building the reason: `check` runs on every operation.
    /// The gating tests compare the two for every cell.
    static func isListed(_ op: Operation, _ product: AtlasProduct) -> Bool {
        switch product {
        case .atlasA3Training, .atlasA3Inference, .atlas800IA2, .a200IA2Box: true
        case .ascend950: op.group != .notOn950
        case .atlas300IA2, .atlasA2Training, .atlas200I500A2, .atlasInference, .atlasTraining, .unknown: false
        }
    }

    static func cell(_ op: Operation, _ product: AtlasProduct) -> MatrixCell {
        let name = product.displayName
        let source = op.group == .cacheManager ? seedSource : currentSource
        func yes(_ detail: String = "", _ footnote: MatrixCell.Footnote? = nil) -> MatrixCell {
            MatrixCell(
                support: Support(supported: true, reason: "\(name) is listed for \(op.rawValue) in \(source)\(detail)"),
                footnote: footnote)
        }
        func no(_ detail: String = "", _ footnote: MatrixCell.Footnote? = nil) -> MatrixCell {
            MatrixCell(
                support: Support(
                    supported: false, reason: "\(name) is not listed for \(op.rawValue) in \(source)\(detail)"),
                footnote: footnote)
        }

        switch product {
        case .atlasA3Training, .atlasA3Inference, .atlas800IA2, .a200IA2Box:
            return op == .remapRegisteredMemory ? yes(" (documented as reserved)") : yes()
        case .ascend950:
            switch op.group {
            case .cacheManager:
                return yes(" per the current docs (HEAD); earlier revisions excluded it (spec §11.2)", .only950AtHead)
            case .core:
                return yes()
            case .notOn950:
                return no("; the docs mark it unsupported on Ascend 950")
            }
        case .atlas300IA2:
            let history = "; it was listed from 2025-12 and removed 2026-04 (hixl commit 70733e3, issue #221)"
            return no(history, op.group == .cacheManager ? .removed300IA2 : nil)
        case .atlasA2Training:
            return no(
                op.group == .cacheManager
                    ? ", where it is marked ✗" : "; for A2 the docs list only the Atlas 800I A2 and the A200I A2 Box")
        case .atlas200I500A2, .atlasInference, .atlasTraining:
            let listed = "; the docs list only Ascend 950, Atlas A3, Atlas 800I A2 and A200I A2 Box"
            return no(op.group == .cacheManager ? ", where it is marked ✗" : listed)
        case .unknown:
            return MatrixCell(
                support: Support(
                    supported: false,
                    reason: "the product is unknown (SoC name and board id not recognised), so \(op.rawValue) is "
                        + "refused; set DATADIST_PRODUCT to the product id to override detection"),
                footnote: nil)
        }
    }
}
