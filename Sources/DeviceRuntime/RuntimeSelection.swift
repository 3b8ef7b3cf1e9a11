// PLACEHOLDER (replaced by the runtime-selection work).
public struct RuntimeChoice: Sendable {
    public let runtime: any DeviceRuntime
    /// Why this backend was chosen (and why the other was not).
    public let reason: String
}
