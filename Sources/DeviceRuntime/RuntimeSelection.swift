import DeviceCaps
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
    ///
    /// `auto` (the default, also for an empty value) uses ACL when a library loads, is not a stub and reports
    /// at least one device, and the emulator otherwise; `acl` throws instead of falling back. The library is
    /// `DATADIST_ACL_LIBRARY` when set, else the first of ``aclCandidates(environment:)`` that loads.
    public static func select(
        environment: [String: String] = ProcessEnvironment.current,
        logger: Logger = Logger(label: "datadist.runtime")
    ) throws(DeviceError) -> RuntimeChoice {
        let requested = environment["DATADIST_BACKEND"] ?? ""
        let choice: RuntimeChoice
        switch requested.lowercased() {
        case "", "auto":
            let attempt = attemptACL(environment: environment, logger: logger)
            if let runtime = attempt.runtime {
                choice = RuntimeChoice(runtime: runtime, reason: attempt.reason, attemptedLibrary: attempt.library)
            } else {
                choice = RuntimeChoice(
                    runtime: try EmulatedRuntime(environment: environment, logger: logger),
                    reason: "\(attempt.reason); using the emulator", attemptedLibrary: attempt.library)
            }
        case "acl":
            let attempt = attemptACL(environment: environment, logger: logger)
            guard let runtime = attempt.runtime else {
                throw DeviceError(.unavailable, "DATADIST_BACKEND=acl: \(attempt.reason)")
            }
            choice = RuntimeChoice(runtime: runtime, reason: attempt.reason, attemptedLibrary: attempt.library)
        case "emulator":
            choice = RuntimeChoice(
                runtime: try EmulatedRuntime(environment: environment, logger: logger),
                reason: "DATADIST_BACKEND=emulator", attemptedLibrary: nil)
        default:
            throw DeviceError(
                .unavailable, "DATADIST_BACKEND=\(requested) is not a backend (valid: auto, acl, emulator)")
        }
        logger.debug(
            "device runtime selected",
            metadata: ["backend": "\(choice.runtime.backend.rawValue)", "reason": "\(choice.reason)"])
        return choice
    }

    /// The ACL libraries `auto` and `acl` try, in order, when `DATADIST_ACL_LIBRARY` is not set: the
    /// loader's search by bare name, then `$ASCEND_HOME_PATH/lib64`, then the default toolkit install.
    public static func aclCandidates(environment: [String: String]) -> [String] {
        let names = ["libacl_rt.so", "libascendcl.so"]
        var directories: [String] = []
        if let home = environment["ASCEND_HOME_PATH"], !home.isEmpty { directories.append("\(home)/lib64") }
        directories.append("/usr/local/Ascend/ascend-toolkit/latest/lib64")
        return names + directories.flatMap { directory in names.map { "\(directory)/\($0)" } }
    }

    private struct Attempt {
        var runtime: ACLRuntime?
        var reason: String
        var library: String?
    }

    /// Tries the configured library, or the candidates in order up to the first that loads.
    private static func attemptACL(environment: [String: String], logger: Logger) -> Attempt {
        if let explicit = environment["DATADIST_ACL_LIBRARY"], !explicit.isEmpty {
            var attempt = attempt(explicit, environment: environment, logger: logger)
            attempt.reason = "DATADIST_ACL_LIBRARY=\(explicit): \(attempt.reason)"
            return attempt
        }
        var notFound: [String] = []
        var refused: [String] = []
        for path in aclCandidates(environment: environment) {
            do {
                let library = try ACLLibrary.open(path)
                return attempt(library, environment: environment, logger: logger)
            } catch {
                logger.debug("ACL library not usable", metadata: ["path": "\(path)", "error": "\(error.text)"])
                if error.isNotFound {
                    notFound.append(path)
                } else {
                    refused.append("\(path): \(error.text)")
                }
            }
        }
        let tried = notFound.isEmpty ? "" : " (tried \(notFound.joined(separator: ", ")))"
        return Attempt(
            runtime: nil, reason: (refused + ["no ACL runtime found\(tried)"]).joined(separator: "; "),
            library: nil)
    }

    private static func attempt(_ path: String, environment: [String: String], logger: Logger) -> Attempt {
        do {
            return attempt(try ACLLibrary.open(path), environment: environment, logger: logger)
        } catch {
            return Attempt(runtime: nil, reason: error.text, library: path)
        }
    }

    /// Initialises ACL from a loaded library; usable when it is not a stub and has a device.
    private static func attempt(_ library: ACLLibrary, environment: [String: String], logger: Logger) -> Attempt {
        do {
            let runtime = try ACLRuntime(library: library, environment: environment, logger: logger)
            guard runtime.deviceCount > 0 else {
                return Attempt(runtime: nil, reason: "\(library.path) reports 0 devices", library: library.path)
            }
            let soc = runtime.capabilities.socName ?? "unknown SoC"
            return Attempt(
                runtime: runtime,
                reason: "ACL runtime \(library.path) (\(soc), \(runtime.deviceCount) devices, "
                    + "product \(runtime.capabilities.product.rawValue))",
                library: library.path)
        } catch {
            // ACLLibrary.initialize names the library in its messages (e.g. "… is a stub library (ACL 100039)").
            let text = error.message.contains(library.path) ? error.description : "\(library.path): \(error)"
            return Attempt(runtime: nil, reason: text, library: library.path)
        }
    }
}
