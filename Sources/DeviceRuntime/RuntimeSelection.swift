// PLACEHOLDER (replaced by the runtime-selection work): the signatures are the contract.
public import Logging

/// The runtime chosen for this process configuration, and why.
public struct RuntimeChoice: Sendable {
    public let runtime: any DeviceRuntime
    /// Why this backend was chosen, including why the other one was not (e.g. "libacl_rt.so not found").
    public let reason: String
    /// The ACL library that was tried, if any (loaded or not).
    public let attemptedLibrary: String?
}

public enum RuntimeSelection {
    /// Chooses a backend per `DATADIST_BACKEND` (`auto`, `acl`, `emulator`).
    public static func select(
        environment: [String: String] = ProcessEnvironment.current,
        logger: Logger = Logger(label: "datadist.runtime")
    ) throws(DeviceError) -> RuntimeChoice {
        throw DeviceError(.unavailable, "runtime selection not built yet")
    }
}
