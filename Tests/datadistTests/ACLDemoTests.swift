import DataDistTestSupport
import Foundation
import Testing

/// `datadist demo` on the ACL backend through the fake vendor library: two processes, the device pools shared by
/// IPC key.
@Suite("datadist demo on the ACL backend")
struct ACLDemoTests {
    @Test("two processes link over IPC keys: every byte verified, both audits clean")
    func demoOverIPC() throws {
        let library = try #require(CLI.fakeLibrary, "lib_FakeAscendCL.so not found in \(TestPaths.builtProducts.path)")
        let output = try CLI.run(
            ["demo", "--json"], environment: ["DATADIST_BACKEND": "acl", "DATADIST_ACL_LIBRARY": library],
            timeout: .seconds(60))
        #expect(output.status == 0, "stderr: \(output.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        #expect(report["ok"] as? Bool == true, "problems: \(report["problems"] ?? "none")")
        #expect(report["verified"] as? Bool == true)
        #expect(report["auditsClean"] as? Bool == true)
        #expect(report["wholePulls"] as? Int == 4)
        #expect(report["layerWisePulls"] as? Int == 3)
        let pids = [report["servePID"] as? Int, report["pullPID"] as? Int]
        #expect(pids[0] != nil && pids[1] != nil && pids[0] != pids[1], "two processes: \(pids)")
    }

    @Test(
        "without the IPC symbols the demo links over UCX and stages; forced onto shared memory, the pull fails naming the missing symbol"
    )
    func demoWithoutIPC() throws {
        let library = try #require(CLI.fakeLibrary, "lib_FakeAscendCL.so not found in \(TestPaths.builtProducts.path)")
        let noIPC = URL(fileURLWithPath: library).deletingLastPathComponent()
            .appendingPathComponent("lib_FakeAscendCLNoIPC.so").path
        let environment = ["DATADIST_BACKEND": "acl", "DATADIST_ACL_LIBRARY": noIPC]
        let staged = try CLI.run(["demo", "--requests", "3"], environment: environment, timeout: .seconds(60))
        #expect(staged.status == 0, "stdout: \(staged.stdout) stderr: \(staged.stderr)")
        #expect(staged.stdout.contains("data over ucx"), "\(staged.stdout)")
        #expect(staged.stdout.contains("every byte verified"), "\(staged.stdout)")
        let output = try CLI.run(
            ["demo", "--requests", "3"], environment: environment.merging(["DATADIST_TRANSPORT": "shm"]) { $1 },
            timeout: .seconds(60))
        #expect(output.status != 0)
        #expect(output.stdout.contains("LLM_FEATURE_NOT_ENABLED"), "\(output.stdout)")
        #expect(output.stdout.contains("aclrtIpcMemGetExportKey"), "\(output.stdout)")
    }
}
