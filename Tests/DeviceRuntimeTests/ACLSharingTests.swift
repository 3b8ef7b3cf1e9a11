import DeviceRuntime
import Foundation
import Testing

/// Device sharing on the ACL backend, over the fake library: keys another process imports, the whitelist, the
/// close order, peer access, streams and host registration, and a library without the IPC symbols.
@Suite("ACL device sharing", .serialized)
struct ACLSharingTests {
    /// A runtime over a private copy of the fake, and the instance for its hooks.
    private func makeRuntime(_ settings: [String: String] = [:]) throws -> (FakeInstance, ACLRuntime) {
        let fake = try FakeACL.instance(settings)
        return (fake, try fake.runtime())
    }

    @Test("another process maps the exported bytes once whitelisted; refused before; both sides see writes")
    func crossProcessImport() throws {
        let (fake, runtime) = try makeRuntime()
        let memory = try runtime.allocateDevice(3 * 4096, on: 0)
        writeBytes(bytePattern(memory.size, seed: 5), at: memory.address)
        let key = try runtime.exportRegion(at: memory.address, size: memory.size, device: 0, validation: .whitelist)
        #expect(key.text.utf8.count < SharingKey.bufferLength)
        let peer = try IPCPeerProcess(.fake(library: FakeACL.libraryPath))
        defer { peer.quit() }

        #expect(try peer.code("import \(key) 0") == ACLCode.driverInternal)  // not whitelisted yet
        let peerPID = try peer.send("pid")
        #expect(peerPID == ["0", String(peer.pid)])
        try runtime.allowImport(of: key, by: [peer.pid])
        #expect(try peer.code("import \(key) 0") == 0)
        #expect(try peer.holdsPattern(key.text, count: memory.size, seed: 5))
        #expect(try peer.code("fill \(key) 4096 100 9") == 0)
        #expect(readBytes(at: memory.address + 4096, count: 100) == bytePattern(100, seed: 9))

        #expect(try peer.code("close \(key)") == 0)
        #expect(try peer.send("open imports") == ["0", "0"])
        try runtime.closeShared(key)
        #expect(fake.count("aclrtIpcMemGetExportKey") == 1)
        #expect(fake.count("aclrtIpcMemClose") == 1)
        #expect(runtime.fakeOpenCount("exports") == 0)
        try runtime.free(memory)
        #expect(runtime.fakeOpenCount("device") == 0)
    }

    @Test("an export without PID validation needs no whitelist")
    func anyProcess() throws {
        let (_, runtime) = try makeRuntime()
        let memory = try runtime.allocateDevice(4096, on: 2)
        writeBytes(bytePattern(4096, seed: 1), at: memory.address)
        let key = try runtime.exportRegion(at: memory.address, size: 4096, device: 2, validation: .anyProcess)
        let peer = try IPCPeerProcess(.fake(library: FakeACL.libraryPath))
        defer { peer.quit() }
        #expect(try peer.code("device 2") == 0)
        #expect(try peer.code("import \(key) 0") == 0)
        #expect(try peer.holdsPattern(key.text, count: 4096, seed: 1))
        #expect(try peer.code("close \(key)") == 0)
        try runtime.closeShared(key)
        try runtime.free(memory)
    }

    @Test("the exporter closing first: later imports are refused and the importer's close reports it, unmapped")
    func exporterClosesFirst() throws {
        let (_, runtime) = try makeRuntime()
        let memory = try runtime.allocateDevice(4096, on: 0)
        let key = try runtime.exportRegion(at: memory.address, size: 4096, device: 0, validation: .anyProcess)
        let peer = try IPCPeerProcess(.fake(library: FakeACL.libraryPath))
        defer { peer.quit() }
        #expect(try peer.code("import \(key) 0") == 0)
        try runtime.closeShared(key)
        #expect(try peer.code("close \(key)") == ACLCode.driverInternal)
        #expect(try peer.send("open imports") == ["0", "0"])
        let second = try IPCPeerProcess(.fake(library: FakeACL.libraryPath))
        defer { second.quit() }
        #expect(try second.code("import \(key) 0") != 0)
        try runtime.free(memory)
    }

    @Test("a killed importer leaves the export closable; a closed key cannot be imported again")
    func deadPeers() throws {
        let (_, runtime) = try makeRuntime()
        let memory = try runtime.allocateDevice(4096, on: 0)
        let key = try runtime.exportRegion(at: memory.address, size: 4096, device: 0, validation: .anyProcess)
        let peer = try IPCPeerProcess(.fake(library: FakeACL.libraryPath))
        #expect(try peer.code("import \(key) 0") == 0)
        peer.kill()
        try runtime.closeShared(key)
        try runtime.free(memory)
        #expect(throws: DeviceError.self) { _ = try runtime.importRegion(key, on: 0, peerAccess: false) }
        #expect(runtime.fakeOpenCount("imports") == 0)
    }

    @Test("bad inputs are refused with the argument named, and nothing opens or closes")
    func badInputs() throws {
        let (_, runtime) = try makeRuntime()
        let memory = try runtime.allocateDevice(2 * 4096, on: 0)
        let unaligned = thrownError { () throws(DeviceError) in
            _ = try runtime.exportRegion(at: memory.address + 64, size: 64, device: 0, validation: .whitelist)
        }
        #expect(unaligned?.aclCode == ACLCode.addressUnaligned)
        #expect(unaligned?.message.contains("aligned") == true)
        let empty = thrownError { () throws(DeviceError) in
            _ = try runtime.exportRegion(at: memory.address, size: 0, device: 0, validation: .whitelist)
        }
        #expect(empty?.message.contains("size 0") == true)
        let outside = thrownError { () throws(DeviceError) in
            _ = try runtime.exportRegion(at: memory.address, size: 3 * 4096, device: 0, validation: .whitelist)
        }
        #expect(outside?.aclCode == ACLCode.runtimeParamInvalid)
        #expect(
            thrownError { () throws(DeviceError) in
                _ = try runtime.exportRegion(at: 0, size: 64, device: 0, validation: .whitelist)
            }?.message.contains("null") == true)
        #expect(
            thrownError { () throws(DeviceError) in
                _ = try runtime.exportRegion(at: memory.address, size: 64, device: 99, validation: .whitelist)
            }?.message.contains("device 99") == true)

        let key = try runtime.exportRegion(at: memory.address, size: 4096, device: 0, validation: .whitelist)
        #expect(
            thrownError { () throws(DeviceError) in try runtime.allowImport(of: key, by: []) }?.message.contains(
                "empty") == true)
        #expect(
            thrownError { () throws(DeviceError) in try runtime.allowImport(of: key, by: [-3]) }?.message.contains("-3")
                == true)
        let foreign = try #require(SharingKey(text: "fakeacl:1:2:0000000000000000"))
        #expect(
            thrownError { () throws(DeviceError) in try runtime.allowImport(of: foreign, by: [1]) }?.message.contains(
                "\(foreign)") == true)
        #expect(
            thrownError { () throws(DeviceError) in _ = try runtime.importRegion(foreign, on: 0, peerAccess: false) }?
                .aclCode != nil)
        #expect(
            thrownError { () throws(DeviceError) in try runtime.closeShared(foreign) }?.message.contains("not open")
                == true)
        #expect(runtime.fakeOpenCount("imports") == 0)
        #expect(runtime.fakeOpenCount("exports") == 1)
        // Memory still exported cannot be freed.
        #expect(thrownError { () throws(DeviceError) in try runtime.free(memory) }?.aclCode == ACLCode.memoryFree)
        try runtime.closeShared(key)
        #expect(
            thrownError { () throws(DeviceError) in try runtime.closeShared(key) }?.message.contains("not open") == true
        )
        try runtime.free(memory)
        #expect(SharingKey(text: "") == nil)
        #expect(SharingKey(text: String(repeating: "k", count: 65)) == nil)
        #expect(SharingKey(text: String(repeating: "k", count: 64)) != nil)
    }

    @Test("a chip without IPC refuses exports with 207000")
    func chipWithoutIPC() throws {
        let (_, runtime) = try makeRuntime(["FAKE_ACL_IPC": "0"])
        let memory = try runtime.allocateDevice(4096, on: 0)
        let error = thrownError { () throws(DeviceError) in
            _ = try runtime.exportRegion(at: memory.address, size: 4096, device: 0, validation: .anyProcess)
        }
        #expect(error?.aclCode == ACLCode.featureNotSupported)
        try runtime.free(memory)
    }

    @Test("a library without the IPC symbols: availability names the first missing one, calls throw .notSupported")
    func libraryWithoutIPC() throws {
        let directory = try FakeACL.temporaryDirectory()
        defer { FakeACL.remove(directory) }
        let path = try FakeACL.copy(FakeACL.noIPCPath, to: directory, as: "libacl_rt.so")
        let runtime = try ACLRuntime(libraryPath: path, environment: [:], logger: FakeACL.logger)
        let ipc = runtime.availability(of: .ipc)
        #expect(!ipc.isAvailable)
        #expect(ipc.missingSymbols.first == "aclrtIpcMemGetExportKey")
        #expect(ipc.missingSymbols.count == 5)
        #expect(ipc.reason?.hasPrefix("device sharing not available: aclrtIpcMemGetExportKey") == true)
        #expect(runtime.availability(of: .peerAccess).isAvailable)
        #expect(runtime.availability(of: .asyncCopy).isAvailable)
        let memory = try runtime.allocateDevice(4096, on: 0)
        let error = thrownError { () throws(DeviceError) in
            _ = try runtime.exportRegion(at: memory.address, size: 4096, device: 0, validation: .anyProcess)
        }
        #expect(error?.code == .notSupported)
        #expect(error?.message.contains("aclrtIpcMemGetExportKey") == true)
        #expect(thrownError { () throws(DeviceError) in _ = try runtime.sharingProcessID() }?.code == .notSupported)
        try runtime.free(memory)
    }

    @Test(
        "peer access: every pair by default, none with FAKE_ACL_PEER_ACCESS=0; an import from another device needs it")
    func peerAccess() throws {
        let (_, runtime) = try makeRuntime()
        #expect(try runtime.canAccessPeer(0, peer: 1))
        #expect(
            thrownError { () throws(DeviceError) in _ = try runtime.canAccessPeer(1, peer: 1) }?.message.contains(
                "both 1") == true)
        #expect(
            thrownError { () throws(DeviceError) in _ = try runtime.canAccessPeer(0, peer: 8) }?.aclCode
                == ACLCode.invalidDeviceID)

        // This process imports its own export on another device (the fake lets a whitelisted exporter do so).
        let memory = try runtime.allocateDevice(4096, on: 0)
        writeBytes(bytePattern(4096, seed: 3), at: memory.address)
        let key = try runtime.exportRegion(at: memory.address, size: 4096, device: 0, validation: .whitelist)
        try runtime.allowImport(of: key, by: [try runtime.sharingProcessID()])
        #expect(
            thrownError { () throws(DeviceError) in _ = try runtime.importRegion(key, on: 1, peerAccess: false) }?
                .message.contains("PEER_ACCESS") == true)
        let imported = try runtime.importRegion(key, on: 1, peerAccess: true)
        #expect(imported != memory.address)
        #expect(readBytes(at: imported, count: 4096) == bytePattern(4096, seed: 3))
        // The vendor allows only asynchronous device-to-device copies on memory imported from another device.
        let local = try runtime.allocateDevice(4096, on: 1)
        #expect(
            thrownError { () throws(DeviceError) in
                try runtime.copy(
                    to: local.address, capacity: 4096, from: imported, count: 4096, kind: .deviceToDevice, device: 1)
            }?.message.contains("asynchronous") == true)
        let stream = try runtime.createStream(on: 1)
        try runtime.copyAsync(
            to: local.address, capacity: 4096, from: imported, count: 4096, kind: .deviceToDevice, on: stream)
        try runtime.synchronize(stream)
        #expect(readBytes(at: local.address, count: 4096) == bytePattern(4096, seed: 3))
        try runtime.destroyStream(stream)
        try runtime.closeShared(key)  // the import
        try runtime.closeShared(key)  // the export
        try runtime.free(local)
        try runtime.free(memory)

        let (_, isolated) = try makeRuntime(["FAKE_ACL_PEER_ACCESS": "0"])
        #expect(try isolated.canAccessPeer(0, peer: 1) == false)
        #expect(
            thrownError { () throws(DeviceError) in try isolated.enablePeerAccess(from: 0, to: 1) }?.aclCode
                == ACLCode.featureNotSupported)
    }

    // ACL promises that a stream's copies have landed once aclrtSynchronizeStream (or aclrtDestroyStream)
    // returns, not that they wait for it: the fake runs them on the stream's worker thread meanwhile.
    @Test("async copies have landed once synchronize returns; their host side must be pinned; a registered buffer is")
    func asyncCopies() throws {
        let (fake, runtime) = try makeRuntime()
        let device = try runtime.allocateDevice(4096, on: 0)
        let pinned = try runtime.allocateHost(4096)
        writeBytes(bytePattern(4096, seed: 7), at: pinned.address)
        let stream = try runtime.createStream(on: 0)
        try runtime.copyAsync(
            to: device.address, capacity: 4096, from: pinned.address, count: 4096, kind: .hostToDevice, on: stream)
        try runtime.synchronize(stream)
        #expect(readBytes(at: device.address, count: 4096) == bytePattern(4096, seed: 7))

        var pageable = [UInt8](repeating: 0, count: 8192)
        try pageable.withUnsafeMutableBytes { buffer in
            let address = UInt(bitPattern: buffer.baseAddress!)
            let refused = thrownError { () throws(DeviceError) in
                try runtime.copyAsync(
                    to: address, capacity: 4096, from: device.address, count: 4096, kind: .deviceToHost, on: stream)
            }
            #expect(refused?.message.contains("not pinned") == true)
            let mapped = try runtime.registerHost(at: address, size: 8192, device: 0)
            #expect(
                thrownError { () throws(DeviceError) in
                    _ = try runtime.registerHost(at: address + 4096, size: 64, device: 0)
                }?.message.contains("overlap") == true)
            try runtime.copyAsync(
                to: mapped, capacity: 4096, from: device.address, count: 4096, kind: .deviceToHost, on: stream)
            try runtime.destroyStream(stream)  // finishes the queued copy
            #expect(Array(buffer.prefix(4096)) == bytePattern(4096, seed: 7))
            #expect(runtime.fakeOpenCount("registrations") == 1)
            try runtime.unregisterHost(at: address, device: 0)
            #expect(
                thrownError { () throws(DeviceError) in try runtime.unregisterHost(at: address, device: 0) }?.message
                    .contains("not host memory registered") == true)
        }
        #expect(
            thrownError { () throws(DeviceError) in try runtime.synchronize(stream) }?.message.contains(
                "not a live stream") == true)
        let bogus = DeviceStream(id: 12345, device: 0)
        #expect(
            thrownError { () throws(DeviceError) in
                try runtime.copyAsync(
                    to: device.address, capacity: 1, from: pinned.address, count: 1, kind: .hostToDevice, on: bogus)
            }?.message.contains("not a live stream") == true)
        #expect(
            thrownError { () throws(DeviceError) in
                try runtime.copyAsync(
                    to: device.address, capacity: -1, from: pinned.address, count: 1, kind: .hostToDevice, on: bogus)
            } != nil)
        #expect(fake.count("aclrtMemcpyAsync") == 3)
        #expect(runtime.fakeOpenCount("streams") == 0)
        try runtime.free(pinned)
        try runtime.free(device)
    }
}
