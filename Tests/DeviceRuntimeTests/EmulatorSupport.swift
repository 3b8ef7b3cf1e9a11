import Foundation
import Testing

@testable import DeviceRuntime

/// An emulator over a synthetic hwloc topology with small devices.
func makeEmulator(
    synthetic: String = "node:1 core:2 pu:1", devices: String? = nil, memory: String = "64MiB",
    extra: [String: String] = [:]
) throws -> EmulatedRuntime {
    var environment = ["HWLOC_SYNTHETIC": synthetic, "DATADIST_EMULATE_DEVICE_MEMORY": memory]
    environment["DATADIST_EMULATE_DEVICES"] = devices
    environment.merge(extra) { _, new in new }
    return try EmulatedRuntime(environment: environment)
}

/// The error a throwing call produced, or nil.
func thrownError(_ body: () throws(DeviceError) -> Void) -> DeviceError? {
    do {
        try body()
        return nil
    } catch {
        return error
    }
}

/// Views `count` bytes at `address` (memory owned by a runtime under test).
func readBytes(at address: UInt, count: Int) -> [UInt8] {
    let pointer = UnsafeRawPointer(bitPattern: address)!
    return Array(UnsafeRawBufferPointer(start: pointer, count: count))
}

/// Writes `values` at `address`.
func writeBytes(_ values: [UInt8], at address: UInt) {
    let pointer = UnsafeMutableRawPointer(bitPattern: address)!
    values.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
}

/// A deterministic byte pattern that differs per seed, so a copy that did not happen cannot match by accident.
func bytePattern(_ count: Int, seed: UInt8) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
}
