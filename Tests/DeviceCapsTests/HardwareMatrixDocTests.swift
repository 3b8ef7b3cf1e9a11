import DataDistTestSupport
import DeviceCaps
import Foundation
import Testing

/// `hardware-matrix.md` at the package root.
let hardwareMatrixURL = TestPaths.packageRoot.appendingPathComponent("hardware-matrix.md")

@Suite("hardware-matrix.md")
struct HardwareMatrixDocTests {
    @Test("contains matrixMarkdown verbatim between the markers")
    func fileMatchesCode() throws {
        let text = try String(contentsOf: hardwareMatrixURL, encoding: .utf8)
        let block =
            DeviceCapabilities.matrixBeginMarker + "\n" + DeviceCapabilities.matrixMarkdown + "\n"
            + DeviceCapabilities.matrixEndMarker
        #expect(
            text.contains(block),
            "hardware-matrix.md is stale: run `DATADIST_UPDATE_MATRIX=1 swift test --filter HardwareMatrixDocTests`")
        #expect(DeviceCapabilities.updatingMatrix(in: text) == text)
    }

    @Test("updatingMatrix replaces only the marked region")
    func updating() throws {
        let doc =
            "# T\n\n" + DeviceCapabilities.matrixBeginMarker + "\nold table\n"
            + DeviceCapabilities.matrixEndMarker + "\n\nprose\n"
        let updated = try #require(DeviceCapabilities.updatingMatrix(in: doc))
        #expect(updated.hasPrefix("# T\n\n" + DeviceCapabilities.matrixBeginMarker + "\n| operation |"))
        #expect(updated.hasSuffix("\n" + DeviceCapabilities.matrixEndMarker + "\n\nprose\n"))
        #expect(!updated.contains("old table"))
        #expect(DeviceCapabilities.updatingMatrix(in: updated) == updated)
        #expect(DeviceCapabilities.updatingMatrix(in: "no markers") == nil)
        let reversed = DeviceCapabilities.matrixEndMarker + "\n" + DeviceCapabilities.matrixBeginMarker
        #expect(DeviceCapabilities.updatingMatrix(in: reversed) == nil)
    }

    /// Regenerates the table in hardware-matrix.md; runs only when asked to.
    @Test(
        "regenerate hardware-matrix.md",
        .enabled(if: ProcessInfo.processInfo.environment["DATADIST_UPDATE_MATRIX"] == "1"))
    func regenerate() throws {
        let text = try String(contentsOf: hardwareMatrixURL, encoding: .utf8)
        let updated = try #require(DeviceCapabilities.updatingMatrix(in: text))
        try updated.write(to: hardwareMatrixURL, atomically: true, encoding: .utf8)
    }
}
