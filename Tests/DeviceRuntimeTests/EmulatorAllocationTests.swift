import DeviceCaps
import Foundation
import Testing

@testable import DeviceRuntime

@Suite("Emulator allocation and accounting")
struct EmulatorAllocationTests {
    /// Size → bytes aclrtMalloc charges on A2/A3 (rounded up to 32, plus 32).
    static let chargesA2: [(Int, Int)] = [
        (1, 64), (31, 64), (32, 64), (33, 96), (64, 96), (100, 160), (1000, 1056), (4096, 4128),
        (1 << 20, (1 << 20) + 32),
    ]

    @Test("64-byte aligned bases and ACL rounding on A2/A3", arguments: chargesA2)
    func accountingA2(_ size: Int, _ charge: Int) throws {
        let runtime = try makeEmulator(devices: "2")
        let memory = try runtime.allocateDevice(size, on: 1)
        #expect(memory.address % 64 == 0)
        #expect(memory.size == size)
        #expect(memory.placement == .device(1))
        #expect(try runtime.deviceInfo(1).freeBytes == (64 << 20) - charge)
        #expect(try runtime.deviceInfo(0).freeBytes == 64 << 20)
        try runtime.free(memory)
        #expect(try runtime.deviceInfo(1).freeBytes == 64 << 20)
    }

    static let charges950: [(Int, Int)] = [(1, 32), (32, 32), (33, 64), (4096, 4096)]

    @Test("Ascend 950 rounds to 32 bytes without the extra 32", arguments: charges950)
    func accounting950(_ size: Int, _ charge: Int) throws {
        let runtime = try makeEmulator(
            devices: "1", extra: ["DATADIST_EMULATE_PRODUCT": AtlasProduct.ascend950.rawValue])
        _ = try runtime.allocateDevice(size, on: 0)
        #expect(try runtime.deviceInfo(0).freeBytes == (64 << 20) - charge)
    }

    @Test("size zero or negative is ACL 100000 and changes nothing", arguments: [0, -1, Int.min])
    func invalidSize(_ size: Int) throws {
        let runtime = try makeEmulator(devices: "1")
        let device = thrownError { () throws(DeviceError) in _ = try runtime.allocateDevice(size, on: 0) }
        #expect(device?.aclCode == ACLCode.invalidParam)
        #expect(device?.message.contains("\(size)") == true)
        let host = thrownError { () throws(DeviceError) in _ = try runtime.allocateHost(size) }
        #expect(host?.aclCode == ACLCode.invalidParam)
        #expect(try runtime.deviceInfo(0).freeBytes == 64 << 20)
        #expect(runtime.liveAllocationCount == 0)
    }

    @Test("an invalid device id is ACL 107001", arguments: [Int32(-1), 4, 64, Int32.max])
    func invalidDevice(_ device: Int32) throws {
        let runtime = try makeEmulator(devices: "4")
        let allocate = thrownError { () throws(DeviceError) in _ = try runtime.allocateDevice(64, on: device) }
        #expect(allocate?.aclCode == ACLCode.invalidDeviceID)
        #expect(allocate?.message.contains("\(device)") == true)
        let info = thrownError { () throws(DeviceError) in _ = try runtime.deviceInfo(device) }
        #expect(info?.aclCode == ACLCode.invalidDeviceID)
        #expect(runtime.liveAllocationCount == 0)
    }

    @Test("exceeding the capacity is ACL 207001 naming device, request and free bytes; nothing changes")
    func capacity() throws {
        let capacity = 64 << 20
        let runtime = try makeEmulator(devices: "2")
        // The whole capacity does not fit: the charge is 32 bytes more.
        let whole = thrownError { () throws(DeviceError) in _ = try runtime.allocateDevice(capacity, on: 1) }
        #expect(whole?.aclCode == ACLCode.memoryAllocation)
        #expect(whole?.message.contains("device 1") == true)
        #expect(whole?.message.contains("\(capacity) bytes") == true)
        #expect(whole?.message.contains("\(capacity) of \(capacity) bytes free") == true)
        #expect(try runtime.deviceInfo(1).freeBytes == capacity)
        #expect(runtime.liveAllocationCount == 0)

        // Exactly the capacity once the 32 extra bytes are counted.
        let full = try runtime.allocateDevice(capacity - 32, on: 1)
        #expect(try runtime.deviceInfo(1).freeBytes == 0)
        let more = thrownError { () throws(DeviceError) in _ = try runtime.allocateDevice(1, on: 1) }
        #expect(more?.aclCode == ACLCode.memoryAllocation)
        #expect(more?.message.contains("0 of \(capacity) bytes free") == true)
        // Another device is independent.
        let other = try runtime.allocateDevice(1 << 20, on: 0)
        #expect(try runtime.deviceInfo(0).freeBytes == capacity - (1 << 20) - 32)
        #expect(runtime.liveAllocationCount == 2)

        try runtime.free(full)
        #expect(try runtime.deviceInfo(1).freeBytes == capacity)
        let again = try runtime.allocateDevice(capacity / 2, on: 1)
        let half = thrownError { () throws(DeviceError) in _ = try runtime.allocateDevice(capacity / 2, on: 1) }
        #expect(half?.aclCode == ACLCode.memoryAllocation)
        #expect(half?.message.contains("\(capacity / 2 - 32) of \(capacity) bytes free") == true)
        try runtime.free(again)
        try runtime.free(other)
        #expect(try runtime.deviceInfo(0).freeBytes == capacity)
        #expect(try runtime.deviceInfo(1).freeBytes == capacity)
        #expect(runtime.liveAllocationCount == 0)
    }

    @Test("huge requests fail cleanly instead of overflowing", arguments: [Int.max, Int.max - 31, Int.max / 2])
    func hugeRequest(_ size: Int) throws {
        let runtime = try makeEmulator(devices: "1")
        let error = thrownError { () throws(DeviceError) in _ = try runtime.allocateDevice(size, on: 0) }
        #expect(error?.aclCode == ACLCode.memoryAllocation)
        #expect(try runtime.deviceInfo(0).freeBytes == 64 << 20)
    }

    @Test("host requests too large to map are ACL 207001", arguments: [Int.max, Int.max - 4096, 1 << 62])
    func hugeHostRequest(_ size: Int) throws {
        let runtime = try makeEmulator(devices: "1")
        let error = thrownError { () throws(DeviceError) in _ = try runtime.allocateHost(size) }
        #expect(error?.aclCode == ACLCode.memoryAllocation)
        #expect(runtime.liveAllocationCount == 0)
    }

    @Test("device memory is lazy: a large device holds more than the machine's RAM would back")
    func lazy() throws {
        let runtime = try makeEmulator(devices: "2", memory: "64GiB")
        let memory = try runtime.allocateDevice(16 << 30, on: 1)
        #expect(try runtime.deviceInfo(1).freeBytes == (48 << 30) - 32)
        // Touch one byte at each end only.
        writeBytes([7], at: memory.address)
        writeBytes([9], at: memory.address + UInt(memory.size) - 1)
        #expect(readBytes(at: memory.address, count: 1) == [7])
        #expect(readBytes(at: memory.address + UInt(memory.size) - 1, count: 1) == [9])
        try runtime.free(memory)
    }

    @Test("freeing unknown or already freed memory is ACL 207002 and changes nothing")
    func invalidFree() throws {
        let runtime = try makeEmulator(devices: "1")
        let kept = try runtime.allocateDevice(4096, on: 0)
        let host = try runtime.allocateHost(4096)
        let free = try runtime.deviceInfo(0).freeBytes

        let unknown = DeviceMemory(address: 0x1000, size: 64, placement: .device(0), shared: nil)
        let interior = DeviceMemory(address: kept.address + 64, size: 64, placement: .device(0), shared: nil)
        let wrongPlacement = DeviceMemory(address: kept.address, size: kept.size, placement: .host, shared: kept.shared)
        let hostAsDevice = DeviceMemory(address: host.address, size: host.size, placement: .device(0), shared: nil)
        for memory in [unknown, interior, wrongPlacement, hostAsDevice] {
            let error = thrownError { () throws(DeviceError) in try runtime.free(memory) }
            #expect(error?.aclCode == ACLCode.memoryFree)
            #expect(error?.message.contains(String(memory.address, radix: 16)) == true)
        }
        #expect(runtime.liveAllocationCount == 2)
        #expect(try runtime.deviceInfo(0).freeBytes == free)

        try runtime.free(kept)
        let twice = thrownError { () throws(DeviceError) in try runtime.free(kept) }
        #expect(twice?.aclCode == ACLCode.memoryFree)
        #expect(try runtime.deviceInfo(0).freeBytes == 64 << 20)
        try runtime.free(host)
        #expect(runtime.liveAllocationCount == 0)
    }

    @Test("host memory is not charged to any device")
    func hostMemory() throws {
        let runtime = try makeEmulator(devices: "2")
        let memory = try runtime.allocateHost(100 << 20)  // more than a device holds
        #expect(memory.placement == .host)
        #expect(memory.address % 64 == 0)
        #expect(try runtime.deviceInfo(0).freeBytes == 64 << 20)
        #expect(try runtime.deviceInfo(1).freeBytes == 64 << 20)
        let shared = try #require(memory.shared)
        #expect(shared.length >= memory.size)
        try runtime.free(memory)
    }

    @Test("each allocation is its own named memfd that another mapping sees", arguments: [false, true])
    func memfdSharing(host: Bool) throws {
        let runtime = try makeEmulator(devices: "4")
        let size = 10_000
        let memory = host ? try runtime.allocateHost(size) : try runtime.allocateDevice(size, on: 3)
        let shared = try #require(memory.shared)
        #expect(shared.offset == 0)
        #expect(shared.length == (size + Int(getpagesize()) - 1) / Int(getpagesize()) * Int(getpagesize()))
        let link = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(shared.fd)")
        #expect(link.contains(host ? "memfd:datadist-host" : "memfd:datadist-dev3"))

        let data = bytePattern(size, seed: 5)
        writeBytes(data, at: memory.address)
        let second = try #require(
            mmap(nil, shared.length, PROT_READ | PROT_WRITE, MAP_SHARED, shared.fd, off_t(shared.offset)))
        #expect(second != MAP_FAILED)
        defer { munmap(second, shared.length) }
        let viaSecond = Array(UnsafeRawBufferPointer(start: second, count: size))
        #expect(viaSecond == data)
        second.storeBytes(of: 0xAB, toByteOffset: 17, as: UInt8.self)
        #expect(readBytes(at: memory.address + 17, count: 1) == [0xAB])

        let other = host ? try runtime.allocateHost(size) : try runtime.allocateDevice(size, on: 3)
        #expect(other.shared?.fd != shared.fd)
        try runtime.free(other)
        try runtime.free(memory)
    }

    @Test(
        "a pool's memfd size is sealed: nobody holding its descriptor can shrink or grow it", arguments: [false, true])
    func memfdSizeSealed(host: Bool) throws {
        let runtime = try makeEmulator(devices: "1")
        let memory = host ? try runtime.allocateHost(10_000) : try runtime.allocateDevice(10_000, on: 0)
        let shared = try #require(memory.shared)
        #expect(ftruncate(shared.fd, 0) == -1)
        #expect(errno == EPERM)
        #expect(ftruncate(shared.fd, off_t(shared.length * 2)) == -1)
        #expect(errno == EPERM)
        writeBytes([1, 2, 3], at: memory.address)  // the mapping itself still works
        #expect(readBytes(at: memory.address, count: 3) == [1, 2, 3])
        try runtime.free(memory)
    }
}
