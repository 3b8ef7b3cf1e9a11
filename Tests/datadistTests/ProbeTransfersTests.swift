import DataDistTestSupport
import Foundation
import Testing

/// `datadist probe`'s device transfer paths: IPC (and why not), peer access per device pair, libhcomm, UCX.
@Suite("datadist probe: device transfers")
struct ProbeTransfersTests {
    private func fake(_ name: String = "lib_FakeAscendCL.so") throws -> String {
        let library = try #require(CLI.fakeLibrary, "lib_FakeAscendCL.so not found in \(TestPaths.builtProducts.path)")
        return URL(fileURLWithPath: library).deletingLastPathComponent().appendingPathComponent(name).path
    }

    private func transfers(_ environment: [String: String]) throws -> [String: Any] {
        try #require(try CLI.probeJSON(environment: environment)["transfers"] as? [String: Any])
    }

    @Test("the fake: IPC, async copies and host registration available; all 56 pairs reach; no libhcomm")
    func fakeLibrary() throws {
        let report = try transfers(["DATADIST_ACL_LIBRARY": try fake()])
        let ipc = try #require(report["ipc"] as? [String: Any])
        #expect(ipc["available"] as? Bool == true)
        #expect(ipc["reason"] is NSNull)
        #expect((ipc["missingSymbols"] as? [String])?.isEmpty == true)
        for name in ["asyncCopy", "hostRegister"] {
            #expect((report[name] as? [String: Any])?["available"] as? Bool == true, "\(name)")
        }
        let peer = try #require(report["peerAccess"] as? [String: Any])
        let pairs = try #require(peer["pairs"] as? [[String: Any]])
        #expect(pairs.count == 8 * 7)
        #expect(pairs.allSatisfy { $0["accessible"] as? Bool == true && $0["device"] as? Int != $0["peer"] as? Int })
        let hcomm = try #require(report["hcomm"] as? [String: Any])
        #expect(hcomm["name"] as? String == "libhcomm.so")
        #expect(hcomm["present"] as? Bool == false)
        #expect((hcomm["detail"] as? String)?.contains("libhcomm.so") == true)
    }

    @Test("the fake without the IPC symbols: IPC not available, naming the first missing symbol, in JSON and text")
    func withoutIPC() throws {
        let environment = ["DATADIST_ACL_LIBRARY": try fake("lib_FakeAscendCLNoIPC.so")]
        let ipc = try #require(try transfers(environment)["ipc"] as? [String: Any])
        #expect(ipc["available"] as? Bool == false)
        let reason = try #require(ipc["reason"] as? String)
        #expect(reason.hasPrefix("device sharing not available: aclrtIpcMemGetExportKey"))
        #expect(
            ipc["missingSymbols"] as? [String] == [
                "aclrtIpcMemGetExportKey", "aclrtIpcMemSetImportPid", "aclrtIpcMemImportByKey", "aclrtIpcMemClose",
                "aclrtDeviceGetBareTgid",
            ])
        let text = try CLI.run(["probe"], environment: environment)
        #expect(text.status == 0)
        #expect(text.stdout.contains("✗ IPC            device sharing not available: aclrtIpcMemGetExportKey"))
    }

    @Test(
        "no device pair reaching another is listed pair by pair; a library found by DATADIST_HCOMM_LIBRARY is present")
    func peersAndHcomm() throws {
        let library = try fake()
        let environment = [
            "DATADIST_ACL_LIBRARY": library, "FAKE_ACL_PEER_ACCESS": "0", "FAKE_ACL_DEVICE_COUNT": "2",
            "DATADIST_HCOMM_LIBRARY": library,
        ]
        let report = try transfers(environment)
        let pairs = try #require((report["peerAccess"] as? [String: Any])?["pairs"] as? [[String: Any]])
        #expect(pairs.count == 2)
        #expect(pairs.allSatisfy { $0["accessible"] as? Bool == false })
        let hcomm = try #require(report["hcomm"] as? [String: Any])
        #expect(hcomm["present"] as? Bool == true)
        #expect(hcomm["detail"] is NSNull)
        let text = try CLI.run(["probe"], environment: environment)
        #expect(text.stdout.contains("✗ peer access    0 of 2 device pairs reach each other; not: 0→1, 1→0"))
        #expect(text.stdout.contains("✓ libhcomm"))
    }

    @Test("the emulator has IPC, peer access, async copies and host registration")
    func emulator() throws {
        let report = try transfers([:])
        for name in ["ipc", "asyncCopy", "hostRegister", "peerAccess"] {
            #expect((report[name] as? [String: Any])?["available"] as? Bool == true, "\(name)")
        }
    }

    @Test(
        "UCX staging per link: shown on the ACL backend (default and DATADIST_UCX_STAGING_BYTES), not on the emulator")
    func ucxStaging() throws {
        let library = try fake()
        let staged = try #require(try transfers(["DATADIST_ACL_LIBRARY": library])["ucx"] as? [String: Any])
        #expect(staged["stagingBytesPerLink"] as? Int == 2 << 20)
        let environment = ["DATADIST_ACL_LIBRARY": library, "DATADIST_UCX_STAGING_BYTES": "1MiB"]
        let set = try #require(try transfers(environment)["ucx"] as? [String: Any])
        #expect(set["stagingBytesPerLink"] as? Int == 1 << 20)
        let text = try CLI.run(["probe"], environment: environment)
        #expect(text.stdout.contains("✓ UCX staging"), "\(text.stdout)")
        #expect(text.stdout.contains("through 1 MiB of pinned host buffers per link"), "\(text.stdout)")
        let emulator = try #require(try transfers([:])["ucx"] as? [String: Any])
        #expect(emulator["stagingBytesPerLink"] is NSNull)
        let bad = try CLI.run(
            ["probe"], environment: ["DATADIST_ACL_LIBRARY": library, "DATADIST_UCX_STAGING_BYTES": "8MB"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("DATADIST_UCX_STAGING_BYTES is \"8MB\""), "\(bad.stderr)")
    }

    @Test("UCX's transports on this host, as ucx_info -d lists them; UCX_TLS as the selection, in JSON and text")
    func ucxTransports() throws {
        let environment = ["UCX_TLS": "tcp"]
        let ucx = try #require(try transfers(environment)["ucx"] as? [String: Any])
        #expect(ucx["available"] as? Bool == true)
        #expect(ucx["reason"] is NSNull)
        #expect(ucx["selection"] as? String == "tcp")
        let transports = try #require(ucx["transports"] as? [String])
        // Every UCX build has its loopback transport and, on a host with one, TCP over the loopback interface.
        #expect(transports.contains { $0.hasPrefix("self/") })
        #expect(transports.contains("tcp/lo"))
        #expect(transports.allSatisfy { $0.split(separator: "/").count == 2 })
        let text = try CLI.run(["probe"], environment: environment)
        #expect(text.status == 0)
        #expect(text.stdout.contains("✓ UCX"))
        #expect(text.stdout.contains("tcp/lo"))
        #expect(text.stdout.contains("UCX_TLS=tcp picks among them"))
        if ProcessInfo.processInfo.environment["UCX_TLS"] == nil {
            let unset = try #require(try transfers([:])["ucx"] as? [String: Any])
            #expect(unset["selection"] is NSNull)
        }
    }
}
