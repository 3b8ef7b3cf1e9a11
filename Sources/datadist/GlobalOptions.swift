import ArgumentParser
import Logging

/// Options every subcommand accepts.
struct GlobalOptions: ParsableArguments {
    @Flag(name: [.short, .long], help: "Log debug messages to stderr (default: warnings and errors only).")
    var verbose = false

    /// Sends every logger's output to stderr, at `.debug` with `--verbose`, else `.warning`. Call once, first.
    func bootstrapLogging() {
        let level: Logger.Level = verbose ? .debug : .warning
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
