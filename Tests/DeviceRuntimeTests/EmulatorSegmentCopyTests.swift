import Foundation
import Testing

@testable import DeviceRuntime

@Suite("Emulator batched copies")
struct EmulatorSegmentCopyTests {
    @Test("every segment of a batch lands where a single copy would put it, in every direction")
    func copiesEverySegment() throws {
        let runtime = try makeEmulator(devices: "1")
        let (device, host) = (try runtime.allocateDevice(8192, on: 0), try runtime.allocateHost(8192))
        writeBytes(bytePattern(8192, seed: 5), at: host.address)
        writeBytes([UInt8](repeating: 0, count: 8192), at: device.address)
        // Three scattered blocks of 1 KiB each, in an order that is neither ascending nor descending.
        let blocks = [(source: 6, destination: 1), (source: 0, destination: 7), (source: 3, destination: 4)]
        let down = blocks.map {
            CopySegment(
                destination: device.address + UInt($0.destination << 10), source: host.address + UInt($0.source << 10),
                count: 1024)
        }
        try runtime.copy(down, kind: .hostToDevice, device: 0)
        let sent = bytePattern(8192, seed: 5)
        for block in blocks {
            let expected = Array(sent[block.source << 10..<(block.source + 1) << 10])
            #expect(readBytes(at: device.address + UInt(block.destination << 10), count: 1024) == expected)
        }
        #expect(readBytes(at: device.address, count: 1024) == [UInt8](repeating: 0, count: 1024))

        let back = try runtime.allocateHost(8192)
        writeBytes([UInt8](repeating: 0, count: 8192), at: back.address)
        try runtime.copy(
            [CopySegment(destination: back.address, source: device.address + 1024, count: 1024)], kind: .deviceToHost,
            device: 0)
        #expect(readBytes(at: back.address, count: 1024) == Array(sent[6 << 10..<7 << 10]))
        let other = try runtime.allocateDevice(1024, on: 0)
        try runtime.copy(
            [CopySegment(destination: other.address, source: device.address + 1024, count: 1024)],
            kind: .deviceToDevice, device: 0)
        #expect(readBytes(at: other.address, count: 1024) == Array(sent[6 << 10..<7 << 10]))
        for memory in [device, host, back, other] { try runtime.free(memory) }
    }

    @Test("a segment outside live device memory fails the batch before any byte moves (ACL 107000)")
    func outsideDeviceMemory() throws {
        let runtime = try makeEmulator(devices: "1")
        let (device, host) = (try runtime.allocateDevice(4096, on: 0), try runtime.allocateHost(4096))
        writeBytes(bytePattern(4096, seed: 9), at: host.address)
        writeBytes([UInt8](repeating: 0, count: 4096), at: device.address)
        let good = CopySegment(destination: device.address, source: host.address, count: 1024)
        for bad in [
            CopySegment(destination: host.address, source: host.address + 1024, count: 1024),  // host, not device
            CopySegment(destination: device.address + 3072, source: host.address, count: 1025),  // past the end
        ] {
            let error = thrownError { () throws(DeviceError) in
                try runtime.copy([good, bad], kind: .hostToDevice, device: 0)
            }
            #expect(error?.aclCode == ACLCode.runtimeParamInvalid)
            #expect(error?.message.contains("destination 0x\(String(bad.destination, radix: 16))") == true)
            #expect(readBytes(at: device.address, count: 4096) == [UInt8](repeating: 0, count: 4096))
        }
        try runtime.free(device)
        try runtime.free(host)
    }

    @Test("null pointers, negative counts and a bad device are refused before any byte moves")
    func invalidArguments() throws {
        let runtime = try makeEmulator(devices: "1")
        let (device, host) = (try runtime.allocateDevice(4096, on: 0), try runtime.allocateHost(4096))
        writeBytes(bytePattern(4096, seed: 2), at: host.address)
        writeBytes([UInt8](repeating: 0, count: 4096), at: device.address)
        let good = CopySegment(destination: device.address, source: host.address, count: 64)
        let cases: [([CopySegment], Int32, Int32)] = [
            ([good, CopySegment(destination: 0, source: host.address, count: 64)], 0, ACLCode.invalidParam),
            ([good, CopySegment(destination: device.address, source: 0, count: 64)], 0, ACLCode.invalidParam),
            (
                [good, CopySegment(destination: device.address + 64, source: host.address, count: -1)], 0,
                ACLCode.invalidParam
            ),
            ([good], 1, ACLCode.invalidDeviceID),
        ]
        for (segments, onDevice, code) in cases {
            let error = thrownError { () throws(DeviceError) in
                try runtime.copy(segments, kind: .hostToDevice, device: onDevice)
            }
            #expect(error?.aclCode == code)
        }
        #expect(readBytes(at: device.address, count: 4096) == [UInt8](repeating: 0, count: 4096))
        try runtime.free(device)
        try runtime.free(host)
    }

    @Test("segments in registered host memory pass the device check, as single copies do")
    func registeredHostMemory() throws {
        let runtime = try makeEmulator(devices: "1")
        let (device, host) = (try runtime.allocateDevice(4096, on: 0), try runtime.allocateHost(4096))
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { buffer.deallocate() }
        let registered = try runtime.registerHost(at: UInt(bitPattern: buffer), size: 4096, device: 0)
        writeBytes(bytePattern(4096, seed: 4), at: host.address)
        try runtime.copy(
            [
                CopySegment(destination: device.address, source: host.address, count: 2048),
                CopySegment(destination: registered, source: host.address + 2048, count: 2048),
            ], kind: .hostToDevice, device: 0)
        #expect(readBytes(at: device.address, count: 2048) == Array(bytePattern(4096, seed: 4)[..<2048]))
        #expect(readBytes(at: registered, count: 2048) == Array(bytePattern(4096, seed: 4)[2048...]))
        try runtime.unregisterHost(at: registered, device: 0)
        try runtime.free(device)
        try runtime.free(host)
    }
}
