import ArgumentParser
import DataDist
import Foundation

/// `DATADIST_LINK_SECRET`: the link secret (`LLMConfig.linkSecret`) of every process the CLI links from or to
/// (`serve`, `pull`, `bench` and `bench-serve`; `demo`'s and `bench`'s child processes inherit it). Unset or
/// empty: no secret.
enum LinkSecretVariable {
    static let name = "DATADIST_LINK_SECRET"

    /// Sets `config.linkSecret` from the environment; a value `LLMConfig` refuses fails with its message (which
    /// never shows the secret).
    static func apply(
        to config: inout LLMConfig, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws {
        guard let value = environment[name], !value.isEmpty else { return }
        config.linkSecret = value
        do {
            try config.validate()
        } catch {
            throw ValidationError("\(name): \(error.message)")
        }
    }
}
