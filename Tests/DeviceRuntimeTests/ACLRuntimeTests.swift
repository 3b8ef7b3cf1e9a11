import DeviceCaps
import DeviceRuntime
import Foundation
import Testing

/// ACLRuntime over private copies of the fake library: every operation must reach the vendor entry points.
@Suite("ACL runtime", .serialized)
struct ACLRuntimeTests {
    @Test("identity: device count, SoC, board id, detected product; DATADIST_PRODUCT overrides the product")
    func identity() throws {
        let fake = try FakeACL.instance(["FAKE_ACL_SOC_NAME": "Ascend910B3", "FAKE_ACL_BOARD_ID": "0x42"])
        let runtime = try fake.runtime()
        #expect(runtime.backend == .acl)
        #expect(runtime.libraryPath == fake.path)
        #expect(runtime.deviceCount == 8)
        #expect(runtime.capabilities.socName == "Ascend910B3")
        #expect(runtime.capabilities.boardID == 0x42)
        #expect(runtime.capabilities.product == DeviceCapabilities.detect(socName: "Ascend910B3", boardID: 0x42))
        #expect(fake.count("aclInit") == 1)
        #expect(fake.count("dsmi_get_board_info") == 1)

        let overridden = try fake.runtime(["DATADIST_PRODUCT": "atlas-a3-training"])
        #expect(overridden.capabilities.product == .atlasA3Training)
        #expect(fake.count("aclInit") == 1)  // once per library, however many runtimes
    }

    @Test("an unknown DATADIST_PRODUCT is refused, naming the value")
    func badProductOverride() throws {
        let fake = try FakeACL.instance()
        let error = #expect(throws: DeviceError.self) { try fake.runtime(["DATADIST_PRODUCT": "atlas-9000"]) }
        #expect(error?.message.contains("DATADIST_PRODUCT") == true)
        #expect(error?.message.contains("atlas-9000") == true)
        #expect(error?.message.contains("atlas-800i-a2") == true)
    }

    @Test("device memory is 64-byte aligned and charged like aclrtMalloc", arguments: [1, 63, 64, 1000, 1 << 20])
    func allocateDevice(size: Int) throws {
        let fake = try FakeACL.instance()
        let runtime = try fake.runtime()
        let before = try runtime.deviceInfo(5)
        let memory = try runtime.allocateDevice(size, on: 5)
        #expect(memory.address % 64 == 0)
        #expect(memory.size == size)
        #expect(memory.placement == .device(5))
        #expect(memory.shared == nil)
        #expect(fake.count("aclrtMalloc") == 1)
        let after = try runtime.deviceInfo(5)
        #expect(after.totalBytes == 1 << 30)
        #expect(before.freeBytes - after.freeBytes == (size + 31) / 32 * 32 + 32)
        try runtime.free(memory)
        #expect(fake.count("aclrtFree") == 1)
        #expect(try runtime.deviceInfo(5).freeBytes == before.freeBytes)
    }

    @Test("bytes really travel host → device → device → host")
    func copyRoundTrip() throws {
        let fake = try FakeACL.instance()
        let runtime = try fake.runtime()
        let count = 4096
        let first = try runtime.allocateDevice(count, on: 0)
        let second = try runtime.allocateDevice(count, on: 0)
        let pinned = try runtime.allocateHost(count)
        #expect(pinned.placement == .host)
        #expect(pinned.address % 64 == 0)
        let bytes = bytePattern(count, seed: 7)
        try bytes.withUnsafeBytes {
            try runtime.copy(
                to: first.address, capacity: count, from: UInt(bitPattern: $0.baseAddress), count: count,
                kind: .hostToDevice, device: 0)
        }
        try runtime.copy(
            to: second.address, capacity: count, from: first.address, count: count, kind: .deviceToDevice, device: 0)
        try runtime.copy(
            to: pinned.address, capacity: count, from: second.address, count: count, kind: .deviceToHost, device: 0)
        var back = [UInt8](repeating: 0, count: count)
        try back.withUnsafeMutableBytes {
            try runtime.copy(
                to: UInt(bitPattern: $0.baseAddress), capacity: count, from: pinned.address, count: count,
                kind: .hostToHost, device: 0)
        }
        #expect(back == bytes)
        #expect(fake.count("aclrtMemcpy") == 4)
        #expect(fake.count("aclrtMallocHost") == 1)
        try runtime.free(pinned)
        #expect(fake.count("aclrtFreeHost") == 1)
        try runtime.free(first)
        try runtime.free(second)
    }

    @Test("capacity exhaustion is ACL 207001 and leaves the device's memory as it was")
    func capacity() throws {
        let fake = try FakeACL.instance(["FAKE_ACL_DEVICE_MEMORY": "8192"])
        let runtime = try fake.runtime()
        let kept = try runtime.allocateDevice(4096, on: 1)
        let free = try runtime.deviceInfo(1).freeBytes
        #expect(free == 8192 - 4128)
        let error = #expect(throws: DeviceError.self) { try runtime.allocateDevice(4096, on: 1) }
        #expect(error?.aclCode == ACLCode.memoryAllocation)
        #expect(error?.message.contains("aclrtMalloc(size: 4096") == true)
        #expect(error?.message.contains("on device 1") == true)
        #expect(try runtime.deviceInfo(1).freeBytes == free)
        let rest = try runtime.allocateDevice(4032, on: 1)  // charged 4064: exactly what is left
        #expect(try runtime.deviceInfo(1).freeBytes == 0)
        #expect(code { _ = try runtime.allocateDevice(1, on: 1) } == ACLCode.memoryAllocation)
        #expect(try runtime.allocateDevice(1, on: 2).size == 1)  // capacity is per device
        try runtime.free(kept)
        try runtime.free(rest)
        #expect(try runtime.deviceInfo(1).freeBytes == 8192)
    }

    @Test("bad arguments fail with the runtime's codes and change nothing")
    func badArguments() throws {
        let fake = try FakeACL.instance()
        let runtime = try fake.runtime()
        let device = try runtime.allocateDevice(256, on: 0)
        let host = try runtime.allocateHost(256)

        #expect(code { _ = try runtime.allocateDevice(0, on: 0) } == ACLCode.invalidParam)
        #expect(code { _ = try runtime.allocateDevice(-5, on: 0) } == ACLCode.invalidParam)
        #expect(code { _ = try runtime.allocateDevice(64, on: 8) } == ACLCode.invalidDeviceID)
        #expect(code { _ = try runtime.allocateDevice(64, on: -1) } == ACLCode.invalidDeviceID)
        #expect(code { _ = try runtime.deviceInfo(99) } == ACLCode.invalidDeviceID)
        #expect(code { _ = try runtime.allocateHost(0) } == ACLCode.invalidParam)
        #expect(
            code {
                try runtime.copy(
                    to: device.address, capacity: 128, from: host.address, count: 129, kind: .hostToDevice, device: 0)
            } == ACLCode.invalidParam)
        #expect(
            code {
                try runtime.copy(
                    to: host.address, capacity: 256, from: host.address, count: 16, kind: .hostToDevice, device: 0)
            } == ACLCode.runtimeParamInvalid)
        #expect(
            code {
                try runtime.copy(to: 0, capacity: 256, from: host.address, count: 16, kind: .hostToDevice, device: 0)
            } == ACLCode.invalidParam)
        #expect(
            code {
                try runtime.copy(
                    to: device.address, capacity: -1, from: host.address, count: 16, kind: .hostToDevice, device: 0)
            } == ACLCode.invalidParam)
        let calls = fake.count("aclrtFree")
        let stranger = DeviceMemory(address: device.address + 64, size: 64, placement: .device(0), shared: nil)
        #expect(code { try runtime.free(stranger) } == ACLCode.memoryFree)
        let wrongPlace = DeviceMemory(address: device.address, size: 256, placement: .host, shared: nil)
        #expect(code { try runtime.free(wrongPlace) } == ACLCode.memoryFree)
        #expect(fake.count("aclrtFree") == calls)  // refused before reaching the runtime
        try runtime.free(device)
        #expect(code { try runtime.free(device) } == ACLCode.memoryFree)
        try runtime.free(host)
        #expect(try runtime.deviceInfo(0).freeBytes == 1 << 30)
    }

    @Test("error messages name the call and its arguments")
    func errorMessages() throws {
        let fake = try FakeACL.instance()
        let runtime = try fake.runtime()
        let error = #expect(throws: DeviceError.self) {
            try runtime.copy(to: 0x40, capacity: 8, from: 0x80, count: 16, kind: .deviceToHost, device: 2)
        }
        #expect(
            error?.message.hasPrefix(
                "aclrtMemcpy(dst: 0x40, destMax: 8, src: 0x80, count: 16, kind: deviceToHost) on device 2 failed")
                == true)
        #expect(error?.message.contains("count 16 exceeds destMax 8") == true)  // the runtime's own message
        #expect(error?.description.hasSuffix("(ACL error 100000)") == true)
    }

    @Test("a new thread works because every call binds its device on the calling thread")
    func perThreadBinding() throws {
        let fake = try FakeACL.instance()
        let runtime = try fake.runtime()
        let memory = try runtime.allocateDevice(64, on: 3)
        let setBefore = fake.count("aclrtSetDevice")
        let results = onNewThread { () -> [Int32?] in
            let bytes = bytePattern(64, seed: 3)
            var other: DeviceMemory?
            return [
                code {
                    try bytes.withUnsafeBytes { raw in
                        try runtime.copy(
                            to: memory.address, capacity: 64, from: UInt(bitPattern: raw.baseAddress), count: 64,
                            kind: .hostToDevice, device: 3)
                    }
                },
                code { other = try runtime.allocateDevice(64, on: 3) },
                code { try runtime.free(other!) },
            ]
        }
        #expect(results == [nil, nil, nil])
        // The new thread bound device 3 once, then reused the binding.
        #expect(fake.count("aclrtSetDevice") == setBefore + 1)
        // Without the binding the fake refuses, so the test above could fail.
        let acl = fake.acl
        #expect(onNewThread { acl.malloc(64).0 } == ACLCode.contextNull)
        try runtime.free(memory)
    }

    @Test("callCount reads the fake's counters")
    func callCount() throws {
        let fake = try FakeACL.instance()
        let runtime = try fake.runtime()
        #expect(runtime.callCount("aclrtGetDeviceCount") == 1)
        _ = try runtime.deviceInfo(0)
        #expect(runtime.callCount("aclrtGetMemInfo") == 1)
    }

    @Test("a stub library is refused with 100039")
    func stub() throws {
        let fake = try FakeACL.instance(["FAKE_ACL_STUB_MODE": "1"])
        let error = #expect(throws: DeviceError.self) { try fake.runtime() }
        #expect(error?.aclCode == ACLCode.stubMode)
        #expect(error?.message == "\(fake.path) is a stub library")
    }
}
