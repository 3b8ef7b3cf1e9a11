import DeviceCaps
import Testing

@testable import DeviceRuntime

@Suite("Emulator settings from the environment")
struct EmulatorConfigurationTests {
    @Test func defaults() throws {
        let runtime = try EmulatedRuntime(environment: ["HWLOC_SYNTHETIC": "node:1 core:2 pu:1"])
        #expect(runtime.deviceCount == 8)
        #expect(runtime.deviceCapacity == 64 << 30)
        #expect(try runtime.deviceInfo(7).totalBytes == 64 << 30)
        #expect(runtime.capabilities.product == .atlas800IA2)
        #expect(runtime.capabilities.socName == nil)
        #expect(runtime.capabilities.boardID == nil)
        #expect(runtime.backend == .emulator)
        #expect(runtime.libraryPath == nil)
    }

    static let deviceCases: [(String, Int)] = [("1", 1), ("3", 3), ("16", 16), ("64", 64), (" 8 ", 8)]

    @Test("device counts 1...64 are accepted", arguments: deviceCases)
    func validDevices(_ value: String, _ count: Int) throws {
        let runtime = try makeEmulator(devices: value, memory: "1MiB")
        #expect(runtime.deviceCount == count)
    }

    @Test("a bad device count names the variable and value", arguments: ["0", "65", "-1", "abc", "", "8x", "1e3"])
    func invalidDevices(_ value: String) {
        let error = thrownError { () throws(DeviceError) in _ = try makeEmulatorTyped(devices: value) }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("DATADIST_EMULATE_DEVICES") == true)
        #expect(error?.message.contains("\"\(value)\"") == true)
    }

    static let sizeCases: [(String, Int)] = [
        ("1024", 1024), ("64MiB", 64 << 20), ("64 MiB", 64 << 20), ("2G", 2 << 30), ("3K", 3 << 10),
        ("5KiB", 5 << 10), ("7M", 7 << 20), ("1TiB", 1 << 40), ("1T", 1 << 40), ("64GiB", 64 << 30), ("9B", 9),
    ]

    @Test("byte sizes with and without units", arguments: sizeCases)
    func byteSizes(_ text: String, _ bytes: Int) throws {
        let runtime = try makeEmulator(devices: "1", memory: text)
        #expect(try runtime.deviceInfo(0).totalBytes == bytes)
        #expect(try runtime.deviceInfo(0).freeBytes == bytes)
    }

    @Test(
        "a bad device memory names the variable and value",
        arguments: [
            "", "abc", "64XB", "-5", "0", "0GiB", "1.5GiB", "64gib", "GiB", "99999999999999999999", "9000000TiB",
        ])
    func invalidMemory(_ value: String) {
        let error = thrownError { () throws(DeviceError) in _ = try makeEmulatorTyped(memory: value) }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("DATADIST_EMULATE_DEVICE_MEMORY") == true)
        #expect(error?.message.contains("\"\(value)\"") == true)
    }

    @Test("the product comes from DATADIST_PRODUCT, else DATADIST_EMULATE_PRODUCT", arguments: AtlasProduct.allCases)
    func product(_ product: AtlasProduct) throws {
        let emulated = try makeEmulator(extra: ["DATADIST_EMULATE_PRODUCT": product.rawValue])
        #expect(emulated.capabilities.product == product)
        let overridden = try makeEmulator(extra: [
            "DATADIST_EMULATE_PRODUCT": "atlas-inference", "DATADIST_PRODUCT": product.rawValue,
        ])
        #expect(overridden.capabilities.product == product)
    }

    @Test(
        "an unknown product names the variable, value and valid ids",
        arguments: ["DATADIST_PRODUCT", "DATADIST_EMULATE_PRODUCT"])
    func invalidProduct(_ variable: String) {
        let error = thrownError { () throws(DeviceError) in
            _ = try makeEmulatorTyped(extra: [variable: "atlas-9000"])
        }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains(variable) == true)
        #expect(error?.message.contains("atlas-9000") == true)
        #expect(error?.message.contains("atlas-800i-a2") == true)
        #expect(error?.message.contains("atlas-a3-training") == true)
    }
}

/// `makeEmulator` with a typed error, for `deviceError`.
private func makeEmulatorTyped(
    devices: String? = nil, memory: String = "64MiB", extra: [String: String] = [:]
) throws(DeviceError) -> EmulatedRuntime {
    var environment = ["HWLOC_SYNTHETIC": "node:1 core:2 pu:1", "DATADIST_EMULATE_DEVICE_MEMORY": memory]
    environment["DATADIST_EMULATE_DEVICES"] = devices
    environment.merge(extra) { _, new in new }
    return try EmulatedRuntime(environment: environment)
}
