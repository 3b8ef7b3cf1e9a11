import DeviceRuntime
import Foundation
import Testing

/// The fake vendor library itself, called through its C entry points: it must behave like the ACL runtime,
/// or the tests above it prove nothing.
@Suite("Fake ACL library", .serialized)
struct ACLFakeLibraryTests {
    @Test("calls before aclInit fail with 100001; a second aclInit returns 100002")
    func initialisation() throws {
        let fake = try FakeACL.instance()
        #expect(fake.acl.deviceCount().0 == ACLCode.uninitialized)
        #expect(fake.acl.setDevice(0) == ACLCode.uninitialized)
        #expect(fake.acl.socName() == nil)
        #expect(fake.acl.initialize() == ACLCode.success)
        #expect(fake.acl.initialize() == ACLCode.repeatInitialize)
        #expect(fake.acl.deviceCount() == (ACLCode.success, 8))
        #expect(fake.acl.socName() == "Ascend910B4")
    }

    @Test("device calls need a device set on the calling thread; ids outside 0..<count are refused")
    func perThreadDevice() throws {
        let fake = try FakeACL.instance()
        #expect(fake.acl.initialize() == ACLCode.success)
        let acl = fake.acl
        #expect(onNewThread { acl.malloc(64).0 } == ACLCode.contextNull)
        #expect(onNewThread { acl.memInfo(1).0 } == ACLCode.contextNull)
        #expect(acl.setDevice(8) == ACLCode.invalidDeviceID)
        #expect(acl.setDevice(-1) == ACLCode.invalidDeviceID)
        // Setting a device on one thread does not set it on another.
        let (code, address) = onNewThread {
            _ = acl.setDevice(3)
            return acl.malloc(64)
        }
        #expect(code == ACLCode.success)
        #expect(onNewThread { acl.free(address) } == ACLCode.contextNull)
        #expect(onNewThread { (acl.setDevice(3), acl.free(address)) } == (ACLCode.success, ACLCode.success))
    }

    @Test(
        "aclrtMalloc: 64-byte aligned, size rounded up to 32 B plus 32 B charged",
        arguments: [1, 31, 32, 33, 100, 4096])
    func mallocAccounting(size: Int) throws {
        let fake = try FakeACL.instance()
        #expect(fake.acl.initialize() == ACLCode.success)
        #expect(fake.acl.setDevice(1) == ACLCode.success)
        let before = fake.acl.memInfo(1)
        let (code, address) = fake.acl.malloc(size)
        try #require(code == ACLCode.success)
        #expect(address % 64 == 0)
        let after = fake.acl.memInfo(1)
        #expect(after.total == 1 << 30)
        #expect(before.free - after.free == (size + 31) / 32 * 32 + 32)
        #expect(fake.acl.free(address) == ACLCode.success)
        #expect(fake.acl.memInfo(1).free == before.free)
    }

    @Test("aclrtMalloc argument and capacity errors")
    func mallocErrors() throws {
        let fake = try FakeACL.instance(["FAKE_ACL_DEVICE_MEMORY": "1024"])
        #expect(fake.acl.initialize() == ACLCode.success)
        #expect(fake.acl.setDevice(0) == ACLCode.success)
        #expect(fake.acl.malloc(0).0 == ACLCode.invalidParam)
        #expect(fake.acl.mallocWithoutOutPointer(64) == ACLCode.invalidParam)
        #expect(fake.acl.recentError()?.contains("devPtr is NULL") == true)
        #expect(fake.acl.malloc(1024).0 == ACLCode.memoryAllocation)  // 1024 + 32 > 1024
        let first = fake.acl.malloc(480)  // charged 512
        #expect(first.0 == ACLCode.success)
        #expect(fake.acl.malloc(481).0 == ACLCode.memoryAllocation)  // charged 544 > 512 left
        #expect(fake.acl.malloc(480).0 == ACLCode.success)
        #expect(fake.acl.memInfo(1).free == 0)
        // Capacity is per device.
        #expect(fake.acl.setDevice(1) == ACLCode.success)
        #expect(fake.acl.malloc(480).0 == ACLCode.success)
    }

    @Test("aclrtFree and aclrtFreeHost refuse unknown and already freed pointers with 207002")
    func freeErrors() throws {
        let fake = try FakeACL.instance()
        #expect(fake.acl.initialize() == ACLCode.success)
        #expect(fake.acl.setDevice(0) == ACLCode.success)
        var local: UInt64 = 0
        let stackAddress = withUnsafeMutablePointer(to: &local) { UInt(bitPattern: $0) }
        #expect(fake.acl.free(stackAddress) == ACLCode.memoryFree)
        #expect(fake.acl.free(0) == ACLCode.invalidParam)
        let device = fake.acl.malloc(128)
        let host = fake.acl.mallocHost(128)
        #expect(host.0 == ACLCode.success && host.1 % 64 == 0)
        #expect(fake.acl.free(device.1 + 64) == ACLCode.memoryFree)  // not a base address
        #expect(fake.acl.free(host.1) == ACLCode.memoryFree)  // host memory is not aclrtFree's
        #expect(fake.acl.freeHost(device.1) == ACLCode.memoryFree)
        #expect(fake.acl.free(device.1) == ACLCode.success)
        #expect(fake.acl.free(device.1) == ACLCode.memoryFree)
        #expect(fake.acl.freeHost(host.1) == ACLCode.success)
        #expect(fake.acl.freeHost(host.1) == ACLCode.memoryFree)
    }

    enum Side: String, CustomTestStringConvertible {
        case host, device
        var testDescription: String { rawValue }
    }

    @Test(
        "aclrtMemcpy checks the kind against where the pointers live",
        arguments: [
            (Int32(0), Side.host, Side.host, ACLCode.success),
            (1, .host, .device, ACLCode.success),
            (2, .device, .host, ACLCode.success),
            (3, .device, .device, ACLCode.success),
            (4, .device, .host, ACLCode.success),
            (4, .host, .device, ACLCode.success),
            (1, .host, .host, ACLCode.runtimeParamInvalid),
            (1, .device, .device, ACLCode.runtimeParamInvalid),
            (2, .host, .host, ACLCode.runtimeParamInvalid),
            (2, .host, .device, ACLCode.runtimeParamInvalid),
            (3, .host, .device, ACLCode.runtimeParamInvalid),
            (0, .device, .host, ACLCode.runtimeParamInvalid),
            (5, .host, .host, ACLCode.invalidParam),
            (-1, .host, .host, ACLCode.invalidParam),
        ])
    func memcpyKinds(kind: Int32, from source: Side, to destination: Side, expected: Int32) throws {
        let fake = try FakeACL.instance()
        #expect(fake.acl.initialize() == ACLCode.success)
        #expect(fake.acl.setDevice(0) == ACLCode.success)
        let devices = [fake.acl.malloc(256).1, fake.acl.malloc(256).1]
        let hosts = [fake.acl.mallocHost(256).1, fake.acl.mallocHost(256).1]
        let src = source == .device ? devices[0] : hosts[0]
        let dst = destination == .device ? devices[1] : hosts[1]
        let bytes = bytePattern(256, seed: UInt8(truncatingIfNeeded: kind))
        // Seed the source through an H2H or H2D copy of the pattern, then copy with the kind under test.
        let seeded = bytes.withUnsafeBytes {
            fake.acl.memcpy(src, 256, UInt(bitPattern: $0.baseAddress), 256, source == .device ? 1 : 0)
        }
        try #require(seeded == ACLCode.success)
        #expect(fake.acl.memcpy(dst, 256, src, 256, kind) == expected)
        var back = [UInt8](repeating: 0, count: 256)
        let read = back.withUnsafeMutableBytes {
            fake.acl.memcpy(UInt(bitPattern: $0.baseAddress), 256, dst, 256, destination == .device ? 2 : 0)
        }
        #expect(read == ACLCode.success)
        #expect((back == bytes) == (expected == ACLCode.success))
    }

    @Test("aclrtMemcpy argument errors: NULL, count above destMax, ranges past an allocation's end")
    func memcpyErrors() throws {
        let fake = try FakeACL.instance()
        #expect(fake.acl.initialize() == ACLCode.success)
        #expect(fake.acl.setDevice(0) == ACLCode.success)
        let device = fake.acl.malloc(256).1
        let host = fake.acl.mallocHost(512).1
        #expect(fake.acl.memcpy(0, 16, host, 16, 1) == ACLCode.invalidParam)
        #expect(fake.acl.memcpy(device, 16, 0, 16, 1) == ACLCode.invalidParam)
        #expect(fake.acl.memcpy(device, 16, host, 17, 1) == ACLCode.invalidParam)
        #expect(fake.acl.memcpy(device + 128, 512, host, 129, 1) == ACLCode.runtimeParamInvalid)
        #expect(fake.acl.memcpy(device + 128, 512, host, 128, 1) == ACLCode.success)
        #expect(fake.acl.memcpy(host, 512, device, 257, 2) == ACLCode.runtimeParamInvalid)
    }

    @Test("aclrtMemset fills device memory")
    func memset() throws {
        let fake = try FakeACL.instance()
        #expect(fake.acl.initialize() == ACLCode.success)
        #expect(fake.acl.setDevice(0) == ACLCode.success)
        let device = fake.acl.malloc(64).1
        #expect(fake.acl.memset(device, 64, 0x5A, 65) == ACLCode.invalidParam)
        #expect(fake.acl.memset(device, 64, 0x5A, 64) == ACLCode.success)
        var back = [UInt8](repeating: 0, count: 64)
        let read = back.withUnsafeMutableBytes { fake.acl.memcpy(UInt(bitPattern: $0.baseAddress), 64, device, 64, 2) }
        #expect(read == ACLCode.success)
        #expect(back == [UInt8](repeating: 0x5A, count: 64))
        #expect(fake.count("aclrtMemset") == 2)
    }

    @Test("configuration: SoC name, board id (decimal or hex), device count and memory; bad values refused")
    func configuration() throws {
        let fake = try FakeACL.instance([
            "FAKE_ACL_SOC_NAME": "Ascend910_9391", "FAKE_ACL_BOARD_ID": "0xb0", "FAKE_ACL_DEVICE_COUNT": "16",
            "FAKE_ACL_DEVICE_MEMORY": "68719476736",
        ])
        #expect(fake.acl.initialize() == ACLCode.success)
        #expect(fake.acl.socName() == "Ascend910_9391")
        #expect(fake.acl.boardID(15) == (0, 0xB0))
        #expect(fake.acl.boardID(16).0 != 0)
        #expect(fake.acl.deviceCount() == (ACLCode.success, 16))
        #expect(fake.acl.setDevice(15) == ACLCode.success)
        #expect(fake.acl.memInfo(1).total == 64 << 30)
        #expect(fake.acl.memInfo(0).total == 0)  // an A2/A3 device has no DDR
        #expect(fake.acl.deviceInfo(3, 301) == (ACLCode.success, 64 << 30))  // TOTAL_GLOBAL_MEM_SIZE
        #expect(fake.acl.deviceInfo(16, 301).0 == ACLCode.invalidDeviceID)
        #expect(fake.acl.deviceInfo(0, 407).0 == 207_000)  // MAINBOARD_ID: not supported by the fake
        #expect(fake.acl.recentError() == "aclrtGetDeviceInfo: attribute 407 is not supported")
        #expect(fake.acl.recentError() == nil)  // reported once
        #expect(fake.configure("FAKE_ACL_BOARD_ID", "66") == 0)
        #expect(fake.acl.boardID(0) == (0, 66))
        for (key, value) in [
            ("FAKE_ACL_BOARD_ID", "0x"), ("FAKE_ACL_BOARD_ID", "-1"), ("FAKE_ACL_DEVICE_COUNT", "65"),
            ("FAKE_ACL_DEVICE_COUNT", "eight"), ("FAKE_ACL_STUB_MODE", "yes"), ("FAKE_ACL_SOC_NAME", ""),
        ] {
            #expect(fake.configure(key, value) == -2, "\(key)=\(value)")
        }
        #expect(fake.configure("FAKE_ACL_NOPE", "1") == -1)
        #expect(fake.acl.boardID(0) == (0, 66))
        #expect(fake.acl.deviceCount() == (ACLCode.success, 16))
        #expect(fake.configure("FAKE_ACL_BOARD_ID", nil) == 0)  // back to the default
        #expect(fake.acl.boardID(0) == (0, 0x40))
    }

    @Test("stub mode: every aclError call returns 100039 and aclrtGetSocName returns NULL")
    func stubMode() throws {
        let fake = try FakeACL.instance(["FAKE_ACL_STUB_MODE": "1"])
        #expect(fake.acl.initialize() == ACLCode.stubMode)
        #expect(fake.acl.deviceCount().0 == ACLCode.stubMode)
        #expect(fake.acl.setDevice(0) == ACLCode.stubMode)
        #expect(fake.acl.malloc(64).0 == ACLCode.stubMode)
        #expect(fake.acl.finalize() == ACLCode.stubMode)
        #expect(fake.acl.socName() == nil)
    }

    @Test("call counters count every call, failing ones included, and reset")
    func counters() throws {
        let fake = try FakeACL.instance()
        #expect(fake.count("aclInit") == 0)
        _ = fake.acl.initialize()
        _ = fake.acl.initialize()
        _ = fake.acl.malloc(64)  // fails: no device set
        #expect(fake.count("aclInit") == 2)
        #expect(fake.count("aclrtMalloc") == 1)
        #expect(fake.count("aclrtFree") == 0)
        #expect(fake.count("not_a_symbol") == 0)
        fake.resetCounts()
        #expect(fake.count("aclInit") == 0)
        #expect(fake.count("aclrtMalloc") == 0)
    }

    @Test("aclFinalize voids every thread's device; a second one returns 100037")
    func finalize() throws {
        let fake = try FakeACL.instance()
        #expect(fake.acl.finalize() == ACLCode.uninitialized)
        #expect(fake.acl.initialize() == ACLCode.success)
        #expect(fake.acl.setDevice(0) == ACLCode.success)
        #expect(fake.acl.finalize() == ACLCode.success)
        #expect(fake.acl.finalize() == 100_037)
        #expect(fake.acl.initialize() == ACLCode.success)
        #expect(fake.acl.malloc(64).0 == ACLCode.contextNull)
    }

    @Test("the library built without aclrtMemset is refused, naming the symbol")
    func missingSymbol() throws {
        let directory = try FakeACL.temporaryDirectory()
        defer { FakeACL.remove(directory) }
        let path = try FakeACL.copy(FakeACL.noMemsetPath, to: directory, as: "libacl_rt.so")
        let error = #expect(throws: DeviceError.self) { try ACLLibrary.load(path) }
        #expect(error?.code == .unavailable)
        #expect(error?.message == "\(path): missing required symbol aclrtMemset")
    }
}
