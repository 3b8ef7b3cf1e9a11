import DeviceCaps
import DeviceRuntime
import Foundation
import Testing

/// Backend selection, with private copies of the fake standing in for the vendor library.
@Suite("Runtime selection", .serialized)
struct SelectionTests {
    /// True when this machine has no ACL runtime of its own on the loader path or the default install path,
    /// so the search tests see only what they put in place.
    static let noSystemACL: Bool = {
        let fixedPaths = RuntimeSelection.aclCandidates(environment: [:]).filter { $0.hasPrefix("/") }
        let bareNames = RuntimeSelection.aclCandidates(environment: [:]).filter { !$0.hasPrefix("/") }
        return fixedPaths.allSatisfy { !FileManager.default.fileExists(atPath: $0) }
            && bareNames.allSatisfy { name in
                do {
                    _ = try ACLLibrary.load(name)
                    return false
                } catch {
                    return (error as? DeviceError)?.message.contains("No such file or directory") == true
                }
            }
    }()

    static let logger = FakeACL.logger

    @Test("auto picks ACL with the fake, reporting its SoC, board and product", arguments: ["auto", "", "AUTO", "acl"])
    func picksACL(backend: String) throws {
        let fake = try FakeACL.instance(["FAKE_ACL_SOC_NAME": "Ascend910B4", "FAKE_ACL_BOARD_ID": "0x41"])
        let choice = try RuntimeSelection.select(
            environment: ["DATADIST_BACKEND": backend, "DATADIST_ACL_LIBRARY": fake.path], logger: Self.logger)
        #expect(choice.runtime.backend == .acl)
        #expect(choice.runtime.libraryPath == fake.path)
        #expect(choice.attemptedLibrary == fake.path)
        #expect(choice.runtime.deviceCount == 8)
        #expect(choice.runtime.capabilities.socName == "Ascend910B4")
        #expect(choice.runtime.capabilities.boardID == 0x41)
        let product = DeviceCapabilities.detect(socName: "Ascend910B4", boardID: 0x41)
        #expect(choice.runtime.capabilities.product == product)
        #expect(choice.reason.contains(fake.path))
        #expect(choice.reason.contains("Ascend910B4, 8 devices, product \(product.rawValue)"))
        // Allocations go through the fake.
        let memory = try choice.runtime.allocateDevice(128, on: 0)
        #expect(fake.count("aclrtMalloc") == 1)
        try choice.runtime.free(memory)
        #expect(fake.count("aclrtFree") == 1)
    }

    @Test("the product override applies to the selected ACL runtime")
    func productOverride() throws {
        let fake = try FakeACL.instance()
        let choice = try RuntimeSelection.select(
            environment: ["DATADIST_ACL_LIBRARY": fake.path, "DATADIST_PRODUCT": "a200i-a2-box"], logger: Self.logger)
        #expect(choice.runtime.capabilities.product == .a200IA2Box)
    }

    @Test("a stub library makes auto fall back to the emulator, and acl throw")
    func stub() throws {
        let fake = try FakeACL.instance(["FAKE_ACL_STUB_MODE": "1"])
        let choice = try RuntimeSelection.select(environment: ["DATADIST_ACL_LIBRARY": fake.path], logger: Self.logger)
        #expect(choice.runtime.backend == .emulator)
        #expect(choice.attemptedLibrary == fake.path)
        #expect(
            choice.reason
                == "DATADIST_ACL_LIBRARY=\(fake.path): \(fake.path) is a stub library (ACL error 100039); "
                + "using the emulator"
        )
        #expect(fake.count("aclInit") == 1)

        let error = #expect(throws: DeviceError.self) {
            try RuntimeSelection.select(
                environment: ["DATADIST_BACKEND": "acl", "DATADIST_ACL_LIBRARY": fake.path], logger: Self.logger)
        }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("stub library") == true)
        #expect(fake.count("aclInit") == 1)  // aclInit runs once per library, its result is remembered
    }

    @Test("a library reporting no devices is not used")
    func noDevices() throws {
        let fake = try FakeACL.instance(["FAKE_ACL_DEVICE_COUNT": "0"])
        let choice = try RuntimeSelection.select(environment: ["DATADIST_ACL_LIBRARY": fake.path], logger: Self.logger)
        #expect(choice.runtime.backend == .emulator)
        #expect(
            choice.reason == "DATADIST_ACL_LIBRARY=\(fake.path): \(fake.path) reports 0 devices; using the emulator")
        #expect(throws: DeviceError.self) {
            try RuntimeSelection.select(
                environment: ["DATADIST_BACKEND": "acl", "DATADIST_ACL_LIBRARY": fake.path], logger: Self.logger)
        }
    }

    /// Libraries that cannot be loaded: a missing file, garbage, and the fake lacking aclrtMemset.
    enum Broken: String, CaseIterable, CustomTestStringConvertible {
        case missing, garbage, lacksMemset
        var testDescription: String { rawValue }

        func make() throws -> (path: String, expected: String) {
            let directory = try FakeACL.temporaryDirectory()
            let path = directory.appendingPathComponent("libacl_rt.so").path
            switch self {
            case .missing:
                return (path, "dlopen failed: \(path): cannot open shared object file: No such file or directory")
            case .garbage:
                let bytes = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 17) }
                try Data(bytes).write(to: URL(fileURLWithPath: path))
                return (path, "dlopen failed: \(path): invalid ELF header")
            case .lacksMemset:
                try FakeACL.copy(FakeACL.noMemsetPath, to: directory, as: "libacl_rt.so")
                return (path, "missing required symbol aclrtMemset")
            }
        }
    }

    @Test("a library that cannot be loaded: auto falls back, saying why", arguments: Broken.allCases)
    func brokenFallsBack(broken: Broken) throws {
        let (path, expected) = try broken.make()
        defer { FakeACL.remove(URL(fileURLWithPath: path).deletingLastPathComponent()) }
        let choice = try RuntimeSelection.select(environment: ["DATADIST_ACL_LIBRARY": path], logger: Self.logger)
        #expect(choice.runtime.backend == .emulator)
        #expect(choice.attemptedLibrary == path)
        #expect(choice.reason == "DATADIST_ACL_LIBRARY=\(path): \(expected); using the emulator")
    }

    @Test("a library that cannot be loaded: DATADIST_BACKEND=acl throws", arguments: Broken.allCases)
    func brokenThrowsForACL(broken: Broken) throws {
        let (path, expected) = try broken.make()
        defer { FakeACL.remove(URL(fileURLWithPath: path).deletingLastPathComponent()) }
        let error = #expect(throws: DeviceError.self) {
            try RuntimeSelection.select(
                environment: ["DATADIST_BACKEND": "acl", "DATADIST_ACL_LIBRARY": path], logger: Self.logger)
        }
        #expect(error?.code == .unavailable)
        #expect(error?.message == "DATADIST_BACKEND=acl: DATADIST_ACL_LIBRARY=\(path): \(expected)")
    }

    @Test("DATADIST_BACKEND=emulator does not touch ACL")
    func emulatorOnly() throws {
        let fake = try FakeACL.instance()
        let choice = try RuntimeSelection.select(
            environment: ["DATADIST_BACKEND": "emulator", "DATADIST_ACL_LIBRARY": fake.path], logger: Self.logger)
        #expect(choice.runtime.backend == .emulator)
        #expect(choice.attemptedLibrary == nil)
        #expect(choice.reason == "DATADIST_BACKEND=emulator")
        #expect(fake.count("aclInit") == 0)
    }

    @Test(
        "an unknown DATADIST_BACKEND is refused, naming the value and the valid ones",
        arguments: ["gpu", "ac l", "emulated"])
    func unknownBackend(value: String) {
        let error = #expect(throws: DeviceError.self) {
            try RuntimeSelection.select(environment: ["DATADIST_BACKEND": value], logger: Self.logger)
        }
        #expect(error?.code == .unavailable)
        #expect(error?.message == "DATADIST_BACKEND=\(value) is not a backend (valid: auto, acl, emulator)")
    }

    @Test("search order: bare names, then $ASCEND_HOME_PATH/lib64, then the default toolkit")
    func candidates() {
        #expect(
            RuntimeSelection.aclCandidates(environment: ["ASCEND_HOME_PATH": "/opt/cann"]) == [
                "libacl_rt.so", "libascendcl.so", "/opt/cann/lib64/libacl_rt.so", "/opt/cann/lib64/libascendcl.so",
                "/usr/local/Ascend/ascend-toolkit/latest/lib64/libacl_rt.so",
                "/usr/local/Ascend/ascend-toolkit/latest/lib64/libascendcl.so",
            ])
        #expect(RuntimeSelection.aclCandidates(environment: [:]).count == 4)
    }

    @Test(
        "the search finds a runtime under $ASCEND_HOME_PATH/lib64, libacl_rt.so before libascendcl.so",
        .enabled(if: noSystemACL), arguments: [["libacl_rt.so", "libascendcl.so"], ["libascendcl.so"]])
    func searchFindsHomePath(installed: [String]) throws {
        let home = try FakeACL.temporaryDirectory()
        defer { FakeACL.remove(home) }
        for name in installed { try FakeACL.copy(to: home, as: "lib64/\(name)") }
        let expected = home.appendingPathComponent("lib64/\(installed[0])").path
        let choice = try RuntimeSelection.select(environment: ["ASCEND_HOME_PATH": home.path], logger: Self.logger)
        #expect(choice.runtime.backend == .acl)
        #expect(choice.runtime.libraryPath == expected)
        #expect(choice.attemptedLibrary == expected)
    }

    @Test("the search finding nothing falls back, listing what it tried", .enabled(if: noSystemACL))
    func searchFindsNothing() throws {
        let home = try FakeACL.temporaryDirectory()
        defer { FakeACL.remove(home) }
        let choice = try RuntimeSelection.select(environment: ["ASCEND_HOME_PATH": home.path], logger: Self.logger)
        #expect(choice.runtime.backend == .emulator)
        #expect(choice.attemptedLibrary == nil)
        let tried = RuntimeSelection.aclCandidates(environment: ["ASCEND_HOME_PATH": home.path])
        #expect(choice.reason == "no ACL runtime found (tried \(tried.joined(separator: ", "))); using the emulator")
    }

    @Test("the search stops at a found stub and says so", .enabled(if: noSystemACL))
    func searchFindsStub() throws {
        let home = try FakeACL.temporaryDirectory()
        defer { FakeACL.remove(home) }
        let path = try FakeACL.copy(to: home, as: "lib64/libacl_rt.so")
        let stub = FakeInstance(library: try ACLLibrary.load(path))
        #expect(stub.configure("FAKE_ACL_STUB_MODE", "1") == 0)
        try FakeACL.copy(to: home, as: "lib64/libascendcl.so")
        let choice = try RuntimeSelection.select(environment: ["ASCEND_HOME_PATH": home.path], logger: Self.logger)
        #expect(choice.runtime.backend == .emulator)
        #expect(choice.attemptedLibrary == path)
        #expect(choice.reason == "\(path) is a stub library (ACL error 100039); using the emulator")
    }
}
