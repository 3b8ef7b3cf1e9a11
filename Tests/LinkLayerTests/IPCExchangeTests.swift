import DeviceRuntime
import LinkLayer
import Testing

/// The key exchange of same-host links on a runtime that shares device memory by key (here the emulator, which
/// speaks the same protocol as the ACL backend): keys travel, imports map the exported bytes, and malformed or
/// unknown keys fail the exchange with nothing left open.
@Suite struct IPCExchangeTests {
    static func runtime() throws -> EmulatedRuntime {
        try EmulatedRuntime(
            environment: [
                "HWLOC_SYNTHETIC": "node:1 core:2 pu:1", "DATADIST_EMULATE_DEVICES": "1",
                "DATADIST_EMULATE_DEVICE_MEMORY": "16MiB",
            ])
    }

    @Test func keysTravelAndImportsMapTheExportedBytes() throws {
        let runtime = try Self.runtime()
        let sharing = DeviceSharing(runtime: runtime, device: 0)
        let pool = try runtime.allocateDevice(64 << 10, on: 0)
        let pointer = UnsafeMutableRawPointer(bitPattern: pool.address)!
        pointer.storeBytes(of: 0x1234_5678 as UInt32, as: UInt32.self)
        // A region without a memfd goes by key (the emulator's memory has one, but the exchange only looks at `fd`).
        let region = PublishedRegion(
            descriptor: RegionDescriptor(regionID: 0, kind: .device, size: UInt64(pool.size)), fd: -1,
            base: pool.address)
        let (sender, receiver) = try DescriptorPassingTests.socketPair()
        defer {
            sender.close()
            receiver.close()
        }
        let exports = try IPCExchange.sendKeys(
            [region], sharing: sharing, peerPID: try runtime.sharingProcessID(), to: sender)
        #expect(exports.count == 1)
        let imports = try IPCExchange.receiveKeys(from: receiver, sharing: sharing, until: .now + .seconds(5))
        #expect(imports.map(\.descriptor) == [region.descriptor])
        let imported = try #require(imports.first)
        #expect(imported.address != pool.address)
        #expect(UnsafeRawPointer(bitPattern: imported.address)!.load(as: UInt32.self) == 0x1234_5678)
        IPCExchange.close(imports.map(\.key), sharing: sharing)
        IPCExchange.close(exports, sharing: sharing)
        try runtime.free(pool)  // refused while an export were still open
    }

    @Test func aPeerThatCannotImportGetsNoKeys() throws {
        let runtime = try Self.runtime()
        let pool = try runtime.allocateDevice(4096, on: 0)
        let region = PublishedRegion(
            descriptor: RegionDescriptor(regionID: 0, kind: .device, size: 4096), fd: -1, base: pool.address)
        let (sender, receiver) = try DescriptorPassingTests.socketPair()
        defer {
            sender.close()
            receiver.close()
        }
        let exports = try IPCExchange.sendKeys(
            [region], sharing: DeviceSharing(runtime: runtime, device: 0), peerPID: 0, to: sender)
        #expect(exports.isEmpty)
        #expect(try IPCExchange.receiveKeys(from: receiver, sharing: nil, until: .now + .seconds(5)).isEmpty)
        try runtime.free(pool)
    }

    /// One region's key message as a hand-written peer may send it: count 1, the descriptor, `key` (65 bytes).
    static func oneKey(_ key: [UInt8]) -> [UInt8] {
        let descriptor = RegionExchangeTests.encoded(RegionDescriptor(regionID: 0, kind: .device, size: 4096))
        return RegionExchangeTests.littleEndian(UInt32(1)) + descriptor + key
    }

    static let malformed: [(String, [UInt8])] = [
        ("too many regions", RegionExchangeTests.littleEndian(UInt32(17))),
        (
            "a key of no export",
            oneKey(Array("datadist-emu:1:999:0123456789abcdef".utf8) + [UInt8](repeating: 0, count: 30))
        ),
        ("an empty key", oneKey([UInt8](repeating: 0, count: 65))),
    ]

    @Test(arguments: malformed)
    func malformedKeysFailTheExchange(_ what: String, bytes: [UInt8]) throws {
        let runtime = try Self.runtime()
        let (sender, receiver) = try DescriptorPassingTests.socketPair()
        defer {
            sender.close()
            receiver.close()
        }
        try sender.send(bytes, passing: -1)
        #expect(throws: Socket.Failure.self, "\(what)") {
            _ = try IPCExchange.receiveKeys(
                from: receiver, sharing: DeviceSharing(runtime: runtime, device: 0), until: .now + .seconds(5))
        }
    }
}
