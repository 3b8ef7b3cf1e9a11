/// An Atlas product family, as the support tables of the vendor documentation name them.
///
/// The raw value is a stable kebab-case id, accepted by the `DATADIST_PRODUCT` override.
public enum AtlasProduct: String, CaseIterable, Sendable, Codable {
    case atlasA3Training = "atlas-a3-training"
    case atlasA3Inference = "atlas-a3-inference"
    case atlas800IA2 = "atlas-800i-a2"
    case a200IA2Box = "a200i-a2-box"
    case atlas300IA2 = "atlas-300i-a2"
    case atlasA2Training = "atlas-a2-training"
    case atlas200I500A2 = "atlas-200i-500-a2"
    case atlasInference = "atlas-inference"
    case atlasTraining = "atlas-training"
    case ascend950 = "ascend-950"
    case unknown = "unknown"
}

extension AtlasProduct {
    /// The product's name as the vendor's support tables spell it, e.g. "Atlas 800I A2 inference server".
    public var displayName: String {
        switch self {
        case .atlasA3Training: "Atlas A3 training series"
        case .atlasA3Inference: "Atlas A3 inference series"
        case .atlas800IA2: "Atlas 800I A2 inference server"
        case .a200IA2Box: "A200I A2 Box heterogeneous component"
        case .atlas300IA2: "Atlas 300I A2 inference card"
        case .atlasA2Training: "Atlas A2 training series"
        case .atlas200I500A2: "Atlas 200I/500 A2 inference products"
        case .atlasInference: "Atlas inference series"
        case .atlasTraining: "Atlas training series"
        case .ascend950: "Ascend 950PR/950DT"
        case .unknown: "unknown product"
        }
    }

    /// A short label for table column headers, e.g. "800I A2".
    public var shortName: String {
        switch self {
        case .atlasA3Training: "A3 T"
        case .atlasA3Inference: "A3 I"
        case .atlas800IA2: "800I A2"
        case .a200IA2Box: "A200I Box"
        case .atlas300IA2: "300I A2"
        case .atlasA2Training: "A2 T"
        case .atlas200I500A2: "200I/500 A2"
        case .atlasInference: "Inf"
        case .atlasTraining: "Train"
        case .ascend950: "950"
        case .unknown: "?"
        }
    }

    /// The product for a `DATADIST_PRODUCT` value (an exact raw value), or a `CapsError` naming the value
    /// and listing every valid id. `operation` is the operation the override is read for.
    public static func parse(override value: String, for operation: Operation = .initialize)
        throws(CapsError) -> AtlasProduct
    {
        if let product = AtlasProduct(rawValue: value) { return product }
        let valid = AtlasProduct.allCases.map(\.rawValue).joined(separator: ", ")
        throw CapsError(
            operation: operation, product: .unknown,
            message: "DATADIST_PRODUCT: invalid value '\(value)'; valid ids are: \(valid)")
    }
}
