import ArgumentParser
import DeviceCaps
import Foundation

/// `datadist matrix`: the product × operation support table that `hardware-matrix.md` embeds.
struct MatrixCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "matrix",
        abstract: "Print the product × operation support table (Markdown).",
        discussion: """
            With --update, rewrite the table between the generated-table markers of a Markdown file \
            (hardware-matrix.md) instead of printing it.
            """)

    @Option(name: .long, help: ArgumentHelp("Rewrite the table inside this file.", valueName: "path"))
    var update: String?

    @OptionGroup var global: GlobalOptions

    func run() throws {
        global.bootstrapLogging()
        guard let path = update else {
            print(DeviceCapabilities.matrixMarkdown)
            return
        }
        let document: String
        do {
            document = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            printToStandardError("datadist matrix: cannot read --update \(path): \(error.localizedDescription)")
            throw ExitCode.failure
        }
        guard let updated = DeviceCapabilities.updatingMatrix(in: document) else {
            printToStandardError(
                "datadist matrix: --update \(path) has no '\(DeviceCapabilities.matrixBeginMarker)' line followed "
                    + "by a '\(DeviceCapabilities.matrixEndMarker)' line")
            throw ExitCode.failure
        }
        guard updated != document else {
            printToStandardError("\(path): the table is up to date")
            return
        }
        do {
            try updated.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            printToStandardError("datadist matrix: cannot write --update \(path): \(error.localizedDescription)")
            throw ExitCode.failure
        }
        printToStandardError("\(path): table updated")
    }
}
