import DataDistTestSupport
import DeviceCaps
import Foundation
import Testing

@Suite("datadist probe")
struct ProbeCommandTests {
    @Test("on this machine: the emulator as an Atlas 800I A2 with 8 devices, every gate and the host section")
    func defaultProbe() throws {
        let report = try CLI.probeJSON()
        #expect(report["backend"] as? String == "emulator")
        #expect((report["backendReason"] as? String)?.contains("emulator") == true)
        #expect(report["product"] as? String == "atlas-800i-a2")
        #expect(report["productName"] as? String == AtlasProduct.atlas800IA2.displayName)
        for nullField in ["library", "socName", "boardID", "ambiguous"] {
            #expect(report[nullField] is NSNull, "\(nullField) should be written as null")
        }
        #expect((report["detectionNote"] as? String)?.isEmpty == false)

        let devices = try #require(report["devices"] as? [[String: Any]])
        #expect(devices.count == 8)
        for (position, device) in devices.enumerated() {
            #expect(device["index"] as? Int == position)
            #expect(device["numaNode"] is Int, "device \(position) has no NUMA node: \(device)")
            #expect(device["memoryBytes"] as? Int == 64 << 30)
            #expect(device["freeBytes"] as? Int == 64 << 30)
        }

        let operations = try #require(report["operations"] as? [String: [String: Any]])
        #expect(Set(operations.keys) == Set(Operation.allCases.map(\.rawValue)))
        for op in Operation.allCases {
            let gate = try #require(operations[op.rawValue])
            #expect(gate["supported"] as? Bool == true, "\(op.rawValue) should be allowed on the 800I A2")
            #expect((gate["reason"] as? String)?.contains(AtlasProduct.atlas800IA2.displayName) == true)
        }

        let host = try #require(report["host"] as? [String: Any])
        for field in ["memlockSoftLimit", "memlockHardLimit", "hugePagesTotal", "hugePagesFree", "hugePageSizeBytes"] {
            #expect(host[field] is Int || host[field] is NSNull, "host.\(field) is \(String(describing: host[field]))")
        }
        #expect((host["numaNodes"] as? Int).map { $0 >= 1 } == true)
        #expect(host["numaAvailable"] is Bool)
    }

    @Test("--json prints exactly one pretty-printed object with sorted keys")
    func jsonShape() throws {
        let output = try CLI.run(["probe", "--json"])
        #expect(output.status == 0)
        let text = output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(text.hasPrefix("{\n") && text.hasSuffix("}"))
        #expect(output.stdout.hasSuffix("}\n"))
        let topLevelKeys = text.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("  \""), !line.hasPrefix("   ") else { return nil }
            return String(line.dropFirst(3).prefix { $0 != "\"" })
        }
        #expect(topLevelKeys == topLevelKeys.sorted())
        #expect(
            Set(topLevelKeys) == [
                "backend", "backendReason", "library", "attemptedLibrary", "socName", "boardID", "product",
                "productName", "ambiguous", "detectionNote", "devices", "operations", "host", "transfers",
            ])
    }

    @Test("the emulator's device count and memory follow the environment")
    func emulatedDevices() throws {
        let report = try CLI.probeJSON(environment: [
            "DATADIST_EMULATE_DEVICES": "3", "DATADIST_EMULATE_DEVICE_MEMORY": "2GiB",
        ])
        let devices = try #require(report["devices"] as? [[String: Any]])
        #expect(devices.map { $0["index"] as? Int } == [0, 1, 2])
        #expect(devices.allSatisfy { $0["memoryBytes"] as? Int == 2 << 30 })
    }

    @Test(
        "each gate of an emulated product matches the support matrix",
        arguments: [AtlasProduct.atlasA2Training, .atlas300IA2, .ascend950, .atlasA3Inference])
    func emulatedProductGates(product: AtlasProduct) throws {
        let report = try CLI.probeJSON(environment: ["DATADIST_EMULATE_PRODUCT": product.rawValue])
        #expect(report["product"] as? String == product.rawValue)
        #expect(report["productName"] as? String == product.displayName)
        let operations = try #require(report["operations"] as? [String: [String: Any]])
        for op in Operation.allCases {
            let expected = DeviceCapabilities.isSupported(op, on: product)
            let gate = try #require(operations[op.rawValue])
            #expect(gate["supported"] as? Bool == expected.supported, "\(op.rawValue) on \(product.rawValue)")
            #expect(gate["reason"] as? String == expected.reason)
        }
    }

    @Test("an A2 training host refuses remove_cache_key and says why")
    func a2TrainingRefusesRemoveCacheKey() throws {
        let report = try CLI.probeJSON(environment: ["DATADIST_EMULATE_PRODUCT": "atlas-a2-training"])
        let operations = try #require(report["operations"] as? [String: [String: Any]])
        let gate = try #require(operations["remove_cache_key"])
        #expect(gate["supported"] as? Bool == false)
        let reason = try #require(gate["reason"] as? String)
        #expect(reason.contains("Atlas A2 training series"))
    }

    @Test("the fake ACL library is loaded through dlopen and identified as an Atlas 800I A2")
    func fakeACL() throws {
        let library = try #require(CLI.fakeLibrary, "lib_FakeAscendCL.so not found in \(TestPaths.builtProducts.path)")
        let report = try CLI.probeJSON(environment: ["DATADIST_ACL_LIBRARY": library])
        #expect(report["backend"] as? String == "acl")
        #expect(report["library"] as? String == library)
        #expect(report["socName"] as? String == "Ascend910B4")
        #expect(report["boardID"] as? Int == 64)
        #expect(report["product"] as? String == "atlas-800i-a2")
        #expect(report["ambiguous"] is NSNull)
        let devices = try #require(report["devices"] as? [[String: Any]])
        #expect(devices.count == 8)
        #expect(devices.allSatisfy { $0["memoryBytes"] as? Int == 1 << 30 })
    }

    @Test("an unknown A2 board id leaves the product ambiguous and gates on the strictest candidate")
    func fakeACLAmbiguous() throws {
        let library = try #require(CLI.fakeLibrary, "lib_FakeAscendCL.so not found in \(TestPaths.builtProducts.path)")
        let environment = ["DATADIST_ACL_LIBRARY": library, "FAKE_ACL_BOARD_ID": "0x99"]
        let report = try CLI.probeJSON(environment: environment)
        #expect(report["boardID"] as? Int == 0x99)
        let candidates = try #require(report["ambiguous"] as? [String])
        #expect(candidates.contains("atlas-800i-a2") && candidates.contains("atlas-a2-training"))
        #expect((report["detectionNote"] as? String)?.contains("0x99") == true)

        let text = try CLI.run(["probe"], environment: environment)
        #expect(text.status == 0)
        #expect(text.stdout.contains("ambiguous"))
        #expect(text.stdout.contains("atlas-800i-a2"))
    }

    @Test("a stub ACL library makes auto selection fall back to the emulator")
    func stubFallsBack() throws {
        let library = try #require(CLI.fakeLibrary, "lib_FakeAscendCL.so not found in \(TestPaths.builtProducts.path)")
        let report = try CLI.probeJSON(environment: ["DATADIST_ACL_LIBRARY": library, "FAKE_ACL_STUB_MODE": "1"])
        #expect(report["backend"] as? String == "emulator")
        #expect((report["backendReason"] as? String)?.lowercased().contains("stub") == true)
        #expect(report["library"] is NSNull)
        #expect(report["attemptedLibrary"] as? String == library)
    }

    @Test(
        "a runtime that cannot be selected exits 1 with a message on stderr",
        arguments: [
            (
                ["DATADIST_BACKEND": "acl", "DATADIST_ACL_LIBRARY": "/nonexistent/libacl_rt.so"],
                "/nonexistent/libacl_rt.so"
            ),
            (["DATADIST_BACKEND": "gpu"], "gpu"),
            (["DATADIST_EMULATE_PRODUCT": "atlas-9000"], "atlas-9000"),
        ])
    func selectionFailure(environment: [String: String], named: String) throws {
        for arguments in [["probe"], ["probe", "--json"]] {
            let output = try CLI.run(arguments, environment: environment)
            #expect(output.status == 1)
            #expect(output.stdout.isEmpty)
            #expect(output.stderr.contains(named), "stderr: \(output.stderr)")
        }
    }

    @Test("the summary names the backend, product, devices, gates and host checks")
    func humanSummary() throws {
        let output = try CLI.run(["probe"], environment: ["DATADIST_EMULATE_PRODUCT": "atlas-a2-training"])
        #expect(output.status == 0)
        let text = output.stdout
        #expect(text.contains("emulator"))
        #expect(text.contains("atlas-a2-training (Atlas A2 training series)"))
        #expect(text.contains("Devices (8)"))
        #expect(text.contains("✗ remove_cache_key"))
        #expect(text.contains("memlock"))
        #expect(text.contains("hugepages"))

        let allowed = try CLI.run(["probe"])
        #expect(allowed.status == 0)
        #expect(allowed.stdout.contains("atlas-800i-a2 (Atlas 800I A2 inference server)"))
        #expect(allowed.stdout.contains("✓ remove_cache_key"))
    }

    @Test("--verbose logs debug messages to stderr and leaves stdout JSON intact")
    func verbose() throws {
        let output = try CLI.run(["probe", "--json", "--verbose"])
        #expect(output.status == 0)
        #expect(output.stderr.contains("debug"))
        #expect(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) is [String: Any])
        let quiet = try CLI.run(["probe", "--json"])
        #expect(!quiet.stderr.contains("debug"))
    }
}
