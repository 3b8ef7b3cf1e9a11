/// An Atlas product family, as the support tables of the vendor documentation name them.
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
