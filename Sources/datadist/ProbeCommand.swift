import ArgumentParser
import DataDist
import Foundation

/// `datadist probe`: which backend runs, on which product, with which devices, gates and host limits.
struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Report the backend, product, devices, operation gates and host checks.",
        discussion: "Exits 1 when no device runtime can be selected (e.g. DATADIST_BACKEND=acl without a library).")

    @Flag(help: "Print one JSON object (sorted keys) instead of the summary.")
    var json = false

    @OptionGroup var global: GlobalOptions

    func run() throws {
        global.bootstrapLogging()
        let report: ProbeReport
        do {
            report = try ProbeReport.collect(environment: ProcessInfo.processInfo.environment)
        } catch {
            printToStandardError("datadist probe: \(error)")
            throw ExitCode.failure
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(ProbeText.render(report), terminator: "")
        }
    }
}

/// Writes `text` and a newline to stderr.
func printToStandardError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
