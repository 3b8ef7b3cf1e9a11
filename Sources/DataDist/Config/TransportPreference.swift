/// Which data plane moves the bytes of this instance's links (`LLMConfig.transport`).
public enum TransportPreference: String, Sendable, CaseIterable {
    /// The memfd mapping for pool memory of a peer on this host (when the memfd exchange can actually be made:
    /// not across network namespaces), UCX for everything else.
    case automatic
    /// Only the memfd mapping: a link it cannot serve (another host, another network namespace, a peer that
    /// requires UCX) is refused with `.featureNotEnabled` saying why.
    case sharedMemory = "shm"
    /// Only UCX, even between two instances on one host.
    case ucx

    /// The `DATADIST_TRANSPORT` and `llm.Transport` spelling: `auto`, `shm` or `ucx`.
    public var optionValue: String { self == .automatic ? "auto" : rawValue }

    /// The preference spelled `value` (`auto`, `shm`, `ucx`), or nil.
    public init?(optionValue value: String) {
        switch value {
        case "auto": self = .automatic
        case "shm": self = .sharedMemory
        case "ucx": self = .ucx
        default: return nil
        }
    }

    /// The process environment variable that sets the transport of configurations left `.automatic`.
    public static let environmentVariable = "DATADIST_TRANSPORT"

    /// The preference an instance with `configured` uses under `environment`: `DATADIST_TRANSPORT` applies only
    /// when the configuration leaves `.automatic`. An unknown value throws `.paramInvalid` naming it.
    static func effective(_ configured: TransportPreference, environment: [String: String]) throws(LLMError)
        -> TransportPreference
    {
        guard configured == .automatic, let value = environment[environmentVariable] else { return configured }
        guard let preference = TransportPreference(optionValue: value) else {
            throw .paramInvalid(
                "\(environmentVariable) is \"\(value)\"; it must be auto, shm or ucx")
        }
        return preference
    }
}
