import DeviceRuntime
import Foundation
import Testing

/// Device sharing on the emulator: the same protocol as the fake ACL library, over the emulator's memfds.
@Suite("Emulator device sharing")
struct EmulatorSharingTests {
    @Test("another process maps an exported region once whitelisted; the exporter closing first is reported to it")
    func crossProcessImport() throws {
        let runtime = try makeEmulator(devices: "2")
        let memory = try runtime.allocateDevice(4 * 4096, on: 1)
        writeBytes(bytePattern(memory.size, seed: 11), at: memory.address)
        // A page-aligned range inside the allocation, not its start.
        let key = try runtime.exportRegion(at: memory.address + 4096, size: 2 * 4096, device: 1, validation: .whitelist)
        let peer = try IPCPeerProcess(.memfd)
        defer { peer.quit() }
        #expect(try peer.code("import \(key) 0") == 4)  // DATADIST_IPC_NOT_WHITELISTED
        try runtime.allowImport(of: key, by: [peer.pid])
        #expect(try peer.code("import \(key) 0") == 0)
        // The pattern repeats every 256 bytes, so the range from offset 4096 holds it from its own start.
        #expect(try peer.holdsPattern(key.text, count: 2 * 4096, seed: 11))
        #expect(try !peer.holdsPattern(key.text, count: 2 * 4096, seed: 12))
        #expect(try peer.code("fill \(key) 0 64 21") == 0)
        #expect(readBytes(at: memory.address + 4096, count: 64) == bytePattern(64, seed: 21))

        try runtime.closeShared(key)
        #expect(try peer.code("close \(key)") == 3)  // DATADIST_IPC_CLOSED: the exporter went first
        try runtime.free(memory)
    }

    @Test("imports in this process are device memory for copies; other devices need peer access")
    func importedCopies() throws {
        let runtime = try makeEmulator(devices: "2")
        let source = try runtime.allocateDevice(4096, on: 0)
        writeBytes(bytePattern(4096, seed: 4), at: source.address)
        let key = try runtime.exportRegion(at: source.address, size: 4096, device: 0, validation: .anyProcess)
        let refused = thrownError { () throws(DeviceError) in
            _ = try runtime.importRegion(key, on: 1, peerAccess: false)
        }
        #expect(refused?.message.contains("peerAccess") == true)
        try runtime.enablePeerAccess(from: 1, to: 0)
        let imported = try runtime.importRegion(key, on: 1, peerAccess: false)
        let target = try runtime.allocateDevice(4096, on: 1)
        try runtime.copy(
            to: target.address, capacity: 4096, from: imported, count: 4096, kind: .deviceToDevice, device: 1)
        #expect(readBytes(at: target.address, count: 4096) == bytePattern(4096, seed: 4))
        #expect(
            thrownError { () throws(DeviceError) in _ = try runtime.importRegion(key, on: 1, peerAccess: false) }?
                .message.contains("already imported") == true)
        try runtime.closeShared(key)  // the import
        #expect(
            thrownError { () throws(DeviceError) in
                try runtime.copy(
                    to: target.address, capacity: 4096, from: imported, count: 4096, kind: .deviceToDevice, device: 1)
            } != nil)
        #expect(
            thrownError { () throws(DeviceError) in try runtime.free(source) }?.message.contains("still exported")
                == true)
        try runtime.closeShared(key)  // the export
        try runtime.free(source)
        try runtime.free(target)
        #expect(try runtime.canAccessPeer(0, peer: 1))
    }

    @Test("bad inputs: unaligned, outside an allocation, wrong device, unknown keys, empty whitelists")
    func badInputs() throws {
        let runtime = try makeEmulator(devices: "2")
        let memory = try runtime.allocateDevice(2 * 4096, on: 0)
        #expect(
            thrownError { () throws(DeviceError) in
                _ = try runtime.exportRegion(at: memory.address + 32, size: 64, device: 0, validation: .whitelist)
            }?.aclCode == ACLCode.addressUnaligned)
        #expect(
            thrownError { () throws(DeviceError) in
                _ = try runtime.exportRegion(at: memory.address, size: 3 * 4096, device: 0, validation: .whitelist)
            }?.message.contains("not inside one live allocation") == true)
        #expect(
            thrownError { () throws(DeviceError) in
                _ = try runtime.exportRegion(at: memory.address, size: 64, device: 1, validation: .whitelist)
            }?.message.contains("device 1") == true)
        #expect(
            thrownError { () throws(DeviceError) in
                _ = try runtime.exportRegion(at: memory.address, size: -1, device: 0, validation: .whitelist)
            }?.message.contains("size -1") == true)
        let unknown = try #require(SharingKey(text: "datadist-emu:1:999:0123456789abcdef"))
        #expect(
            thrownError { () throws(DeviceError) in try runtime.allowImport(of: unknown, by: [1]) }?.message.contains(
                "not an open export") == true)
        #expect(
            thrownError { () throws(DeviceError) in try runtime.closeShared(unknown) }?.message.contains("not open")
                == true)
        #expect(
            thrownError { () throws(DeviceError) in _ = try runtime.importRegion(unknown, on: 0, peerAccess: false) }
                != nil)
        let garbage = try #require(SharingKey(text: "no key at all"))
        #expect(
            thrownError { () throws(DeviceError) in _ = try runtime.importRegion(garbage, on: 0, peerAccess: false) }?
                .aclCode == ACLCode.runtimeParamInvalid)
        let key = try runtime.exportRegion(at: memory.address, size: 4096, device: 0, validation: .whitelist)
        #expect(
            thrownError { () throws(DeviceError) in try runtime.allowImport(of: key, by: []) }?.message.contains(
                "empty") == true)
        #expect(
            thrownError { () throws(DeviceError) in try runtime.allowImport(of: key, by: [0]) }?.message.contains(
                "process id 0") == true)
        #expect(thrownError { () throws(DeviceError) in _ = try runtime.canAccessPeer(0, peer: 0) } != nil)
        #expect(
            thrownError { () throws(DeviceError) in _ = try runtime.createStream(on: 5) }?.aclCode
                == ACLCode.invalidDeviceID)
        try runtime.closeShared(key)
        try runtime.free(memory)
    }

    @Test("async copies wait for synchronize, need pinned host memory, and re-check memory freed meanwhile")
    func asyncCopies() throws {
        let runtime = try makeEmulator(devices: "1")
        let device = try runtime.allocateDevice(4096, on: 0)
        let host = try runtime.allocateHost(4096)
        writeBytes(bytePattern(4096, seed: 2), at: host.address)
        let stream = try runtime.createStream(on: 0)
        try runtime.copyAsync(
            to: device.address, capacity: 4096, from: host.address, count: 4096, kind: .hostToDevice, on: stream)
        #expect(readBytes(at: device.address, count: 4096) != bytePattern(4096, seed: 2))
        try runtime.synchronize(stream)
        #expect(readBytes(at: device.address, count: 4096) == bytePattern(4096, seed: 2))
        var pageable = [UInt8](repeating: 0, count: 4096)
        try pageable.withUnsafeMutableBytes { buffer in
            let address = UInt(bitPattern: buffer.baseAddress!)
            #expect(
                thrownError { () throws(DeviceError) in
                    try runtime.copyAsync(
                        to: address, capacity: 4096, from: device.address, count: 4096, kind: .deviceToHost, on: stream)
                }?.message.contains("not pinned") == true)
            _ = try runtime.registerHost(at: address, size: 4096, device: 0)
            try runtime.copyAsync(
                to: address, capacity: 4096, from: device.address, count: 4096, kind: .deviceToHost, on: stream)
            try runtime.synchronize(stream)
            #expect(Array(buffer) == bytePattern(4096, seed: 2))
            try runtime.unregisterHost(at: address, device: 0)
        }
        let scratch = try runtime.allocateDevice(4096, on: 0)
        try runtime.copyAsync(
            to: scratch.address, capacity: 4096, from: device.address, count: 4096, kind: .deviceToDevice, on: stream)
        try runtime.free(scratch)
        #expect(
            thrownError { () throws(DeviceError) in try runtime.destroyStream(stream) }?.message.contains("destination")
                == true)
        #expect(
            thrownError { () throws(DeviceError) in try runtime.synchronize(stream) }?.message.contains(
                "not a live stream") == true)
        try runtime.free(host)
        try runtime.free(device)
    }
}
