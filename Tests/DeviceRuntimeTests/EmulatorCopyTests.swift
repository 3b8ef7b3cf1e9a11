import Foundation
import Testing

@testable import DeviceRuntime

@Suite("Emulator copies")
struct EmulatorCopyTests {
    @Test("bytes travel host → device → device → host")
    func roundTrip() throws {
        let runtime = try makeEmulator(devices: "2")
        let size = 3000
        let source = bytePattern(size, seed: 11)
        let deviceA = try runtime.allocateDevice(size, on: 0)
        let deviceB = try runtime.allocateDevice(size, on: 1)
        var result = [UInt8](repeating: 0, count: size)
        try source.withUnsafeBytes { from in
            try runtime.copy(
                to: deviceA.address, capacity: size, from: UInt(bitPattern: from.baseAddress), count: size,
                kind: .hostToDevice, device: 0)
        }
        #expect(readBytes(at: deviceA.address, count: size) == source)
        try runtime.copy(
            to: deviceB.address, capacity: size, from: deviceA.address, count: size, kind: .deviceToDevice, device: 0)
        try result.withUnsafeMutableBytes { to in
            try runtime.copy(
                to: UInt(bitPattern: to.baseAddress), capacity: size, from: deviceB.address, count: size,
                kind: .deviceToHost, device: 1)
        }
        #expect(result == source)
        try runtime.free(deviceA)
        try runtime.free(deviceB)
    }

    @Test("host to host copies any memory, including runtime host memory")
    func hostToHost() throws {
        let runtime = try makeEmulator(devices: "1")
        let pinned = try runtime.allocateHost(256)
        let source = bytePattern(256, seed: 3)
        try source.withUnsafeBytes { from in
            try runtime.copy(
                to: pinned.address, capacity: 256, from: UInt(bitPattern: from.baseAddress), count: 256,
                kind: .hostToHost, device: 0)
        }
        #expect(readBytes(at: pinned.address, count: 256) == source)
        try runtime.free(pinned)
    }

    @Test("a partial copy at an offset touches only its bytes")
    func partial() throws {
        let runtime = try makeEmulator(devices: "1")
        let device = try runtime.allocateDevice(128, on: 0)
        writeBytes([UInt8](repeating: 0, count: 128), at: device.address)
        let source: [UInt8] = [1, 2, 3, 4]
        try source.withUnsafeBytes { from in
            try runtime.copy(
                to: device.address + 124, capacity: 4, from: UInt(bitPattern: from.baseAddress), count: 4,
                kind: .hostToDevice, device: 0)
        }
        #expect(readBytes(at: device.address + 120, count: 8) == [0, 0, 0, 0, 1, 2, 3, 4])
        try runtime.free(device)
    }

    @Test("count above capacity, negative sizes and null pointers are ACL 100000")
    func invalidParameters() throws {
        let runtime = try makeEmulator(devices: "1")
        let device = try runtime.allocateDevice(256, on: 0)
        let host = try runtime.allocateHost(256)
        writeBytes(bytePattern(256, seed: 1), at: device.address)
        let cases: [(UInt, Int, UInt, Int)] = [
            (device.address, 16, host.address, 17),  // count > capacity
            (device.address, 16, host.address, -1),
            (device.address, -1, host.address, 0),
            (0, 16, host.address, 16),
            (device.address, 16, 0, 16),
        ]
        for (destination, capacity, source, count) in cases {
            let error = thrownError { () throws(DeviceError) in
                try runtime.copy(
                    to: destination, capacity: capacity, from: source, count: count, kind: .hostToDevice, device: 0)
            }
            #expect(error?.aclCode == ACLCode.invalidParam)
        }
        #expect(readBytes(at: device.address, count: 256) == bytePattern(256, seed: 1))
        try runtime.free(device)
        try runtime.free(host)
    }

    @Test("the device argument must be a device (ACL 107001)")
    func invalidDevice() throws {
        let runtime = try makeEmulator(devices: "2")
        let device = try runtime.allocateDevice(64, on: 0)
        let host = try runtime.allocateHost(64)
        let error = thrownError { () throws(DeviceError) in
            try runtime.copy(
                to: device.address, capacity: 64, from: host.address, count: 64, kind: .hostToDevice, device: 2)
        }
        #expect(error?.aclCode == ACLCode.invalidDeviceID)
        try runtime.free(device)
        try runtime.free(host)
    }

    @Test(
        "device-side pointers must lie in a live device allocation (ACL 107000)",
        arguments: [MemcpyKind.hostToHost, .hostToDevice, .deviceToHost, .deviceToDevice])
    func kindChecks(_ kind: MemcpyKind) throws {
        let runtime = try makeEmulator(devices: "1")
        let device = try runtime.allocateDevice(4096, on: 0)
        let host = try runtime.allocateHost(4096)
        var plain = [UInt8](repeating: 0, count: 4096)
        let plainAddress = plain.withUnsafeMutableBytes { UInt(bitPattern: $0.baseAddress) }
        // Pointers are only compared, never dereferenced, for the cases that must fail.
        let destinationOnDevice = kind == .hostToDevice || kind == .deviceToDevice
        let sourceOnDevice = kind == .deviceToHost || kind == .deviceToDevice

        // Host memory (the runtime's own or any other) where the kind needs device memory.
        for wrongHost in [host.address, plainAddress] {
            let destination = destinationOnDevice ? wrongHost : host.address
            let source = sourceOnDevice ? device.address : host.address
            let error = thrownError { () throws(DeviceError) in
                try runtime.copy(to: destination, capacity: 64, from: source, count: 64, kind: kind, device: 0)
            }
            #expect(error?.aclCode == (destinationOnDevice ? ACLCode.runtimeParamInvalid : nil))

            let destination2 = destinationOnDevice ? device.address : host.address
            let source2 = sourceOnDevice ? wrongHost : host.address + 1024
            let error2 = thrownError { () throws(DeviceError) in
                try runtime.copy(to: destination2, capacity: 64, from: source2, count: 64, kind: kind, device: 0)
            }
            #expect(error2?.aclCode == (sourceOnDevice ? ACLCode.runtimeParamInvalid : nil))
            if let error = error ?? error2 {
                #expect(error.message.contains("\(kind)"))
            }
        }
        _ = plain.count
        try runtime.free(device)
        try runtime.free(host)
    }

    @Test("device ranges must end inside the allocation's requested size")
    func bounds() throws {
        let runtime = try makeEmulator(devices: "1")
        let size = 1000  // the mapping is a whole page: bytes past `size` exist but are not the caller's
        let device = try runtime.allocateDevice(size, on: 0)
        let host = try runtime.allocateHost(4096)
        let end = device.address + UInt(size)

        try runtime.copy(to: end - 10, capacity: 10, from: host.address, count: 10, kind: .hostToDevice, device: 0)
        try runtime.copy(to: host.address, capacity: 10, from: end - 10, count: 10, kind: .deviceToHost, device: 0)
        try runtime.copy(to: end - 1, capacity: 0, from: host.address, count: 0, kind: .hostToDevice, device: 0)
        for (destination, count) in [(end - 10, 11), (end, 1), (device.address - 1, 1), (device.address, size + 1)] {
            let write = thrownError { () throws(DeviceError) in
                try runtime.copy(
                    to: destination, capacity: 4096, from: host.address, count: count, kind: .hostToDevice, device: 0)
            }
            #expect(write?.aclCode == ACLCode.runtimeParamInvalid)
            let read = thrownError { () throws(DeviceError) in
                try runtime.copy(
                    to: host.address, capacity: 4096, from: destination, count: count, kind: .deviceToHost, device: 0)
            }
            #expect(read?.aclCode == ACLCode.runtimeParamInvalid)
        }
        try runtime.free(device)
        let freed = thrownError { () throws(DeviceError) in
            try runtime.copy(
                to: device.address, capacity: 8, from: host.address, count: 8, kind: .hostToDevice, device: 0)
        }
        #expect(freed?.aclCode == ACLCode.runtimeParamInvalid)
        try runtime.free(host)
    }

    @Test("another runtime's device memory is not this runtime's device memory")
    func foreignRuntime() throws {
        let mine = try makeEmulator(devices: "1")
        let theirs = try makeEmulator(devices: "1")
        let foreign = try theirs.allocateDevice(64, on: 0)
        let host = try mine.allocateHost(64)
        let error = thrownError { () throws(DeviceError) in
            try mine.copy(
                to: foreign.address, capacity: 64, from: host.address, count: 64, kind: .hostToDevice, device: 0)
        }
        #expect(error?.aclCode == ACLCode.runtimeParamInvalid)
        try theirs.free(foreign)
        try mine.free(host)
    }

    @Test("concurrent allocations, copies and frees leave a clean runtime", .timeLimit(.minutes(1)))
    func concurrent() async throws {
        let runtime = try makeEmulator(devices: "4")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    let device = Int32(worker % 4)
                    for round in 0..<50 {
                        let size = 64 + (worker * 50 + round) % 4000
                        let memory = try runtime.allocateDevice(size, on: device)
                        let host = try runtime.allocateHost(size)
                        let data = bytePattern(size, seed: UInt8(truncatingIfNeeded: worker + round))
                        writeBytes(data, at: host.address)
                        try runtime.copy(
                            to: memory.address, capacity: size, from: host.address, count: size, kind: .hostToDevice,
                            device: device)
                        #expect(readBytes(at: memory.address, count: size) == data)
                        try runtime.free(memory)
                        try runtime.free(host)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(runtime.liveAllocationCount == 0)
        for device in Int32(0)..<4 {
            #expect(try runtime.deviceInfo(device).freeBytes == 64 << 20)
        }
    }
}
