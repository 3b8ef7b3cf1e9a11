import DataDistTestSupport
import DeviceCaps
import Foundation
import Testing

@Suite("datadist matrix")
struct MatrixCommandTests {
    static var documentURL: URL { TestPaths.packageRoot.appendingPathComponent("hardware-matrix.md") }

    /// The text between the generated-table markers of `document`.
    static func embeddedTable(_ document: String) throws -> String {
        let begin = try #require(document.range(of: DeviceCapabilities.matrixBeginMarker))
        let end = try #require(
            document.range(of: DeviceCapabilities.matrixEndMarker, range: begin.upperBound..<document.endIndex))
        return document[begin.upperBound..<end.lowerBound].trimmingCharacters(in: .newlines)
    }

    @Test("prints exactly the table hardware-matrix.md embeds")
    func printsEmbeddedTable() throws {
        let output = try CLI.run(["matrix"])
        #expect(output.status == 0)
        let document = try String(contentsOf: Self.documentURL, encoding: .utf8)
        #expect(output.stdout == (try Self.embeddedTable(document)) + "\n")
        #expect(output.stdout.hasPrefix("| operation |"))
    }

    @Test("--update rewrites a stale table and leaves the rest of the file alone")
    func updateRewritesTable() throws {
        let original = try String(contentsOf: Self.documentURL, encoding: .utf8)
        let table = try Self.embeddedTable(original)
        let stale = original.replacingOccurrences(of: table, with: "| stale | table |")
        #expect(stale != original)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("matrix-\(UUID().uuidString).md")
        try stale.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }

        let output = try CLI.run(["matrix", "--update", url.path])
        #expect(output.status == 0, "stderr: \(output.stderr)")
        #expect(output.stdout.isEmpty)
        #expect(try String(contentsOf: url, encoding: .utf8) == original)
    }

    @Test("--update refuses a file without the markers and does not change it")
    func updateWithoutMarkers() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("plain-\(UUID().uuidString).md")
        let text = "# no markers here\n"
        try text.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }

        let output = try CLI.run(["matrix", "--update", url.path])
        #expect(output.status == 1)
        #expect(output.stderr.contains(url.path))
        #expect(try String(contentsOf: url, encoding: .utf8) == text)

        let missing = try CLI.run(["matrix", "--update", "/nonexistent/hardware-matrix.md"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("/nonexistent/hardware-matrix.md"))
    }

    @Test("the root command lists both subcommands")
    func help() throws {
        let output = try CLI.run(["--help"])
        #expect(output.status == 0)
        #expect(output.stdout.contains("probe") && output.stdout.contains("matrix"))
    }
}
