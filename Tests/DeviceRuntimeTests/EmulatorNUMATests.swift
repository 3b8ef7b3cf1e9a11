import Foundation
import Testing

@testable import DeviceRuntime

@Suite("Emulator NUMA placement")
struct EmulatorNUMATests {
    /// The memory policy `/proc/self/numa_maps` shows for the mapping that starts at `address`.
    static func policy(of address: UInt) throws -> String? {
        // procfs reports size 0, so read to the end rather than trusting String(contentsOfFile:).
        let handle = try #require(FileHandle(forReadingAtPath: "/proc/self/numa_maps"))
        defer { try? handle.close() }
        let maps = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
        let start = String(address, radix: 16)
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count >= 2, fields[0] == start { return String(fields[1]) }
        }
        return nil
    }

    static var physicalNodes: Int { HostReport.current().numaAvailable ? HostReport.current().numaNodes : 0 }

    @Test("device memory prefers its home node when the node exists here")
    func boundToHomeNode() throws {
        let runtime = try makeEmulator(synthetic: "node:1 core:2 pu:1", devices: "2")
        let memory = try runtime.allocateDevice(1 << 20, on: 1)
        defer { try? runtime.free(memory) }
        if Self.physicalNodes >= 1 {
            #expect(try Self.policy(of: memory.address) == "prefer:0")
            #expect(runtime.unboundAllocationCount == 0)
            #expect(runtime.bindingWarningCount == 0)
        } else {
            #expect(runtime.unboundAllocationCount == 1)
            #expect(runtime.bindingWarningCount == 1)
        }
    }

    @Test("host memory keeps the default policy")
    func hostUnbound() throws {
        let runtime = try makeEmulator(devices: "1")
        let memory = try runtime.allocateHost(1 << 20)
        defer { try? runtime.free(memory) }
        if FileManager.default.fileExists(atPath: "/proc/self/numa_maps") && Self.physicalNodes >= 1 {
            #expect(try Self.policy(of: memory.address) == "default")
        }
        #expect(runtime.unboundAllocationCount == 0)
    }

    @Test(
        "emulated nodes stay on the default policy with a single warning per runtime",
        .enabled(if: HostReport.current().numaNodes < 60, "needs a machine with fewer than 60 NUMA nodes"))
    func emulatedNodesWarnOnce() throws {
        // 64 nodes, one device each: nodes 60...63 do not exist on this machine.
        let runtime = try makeEmulator(synthetic: "numa:64 core:1 pu:1", devices: "64")
        let emulatedDevices = Array(60..<64)
        #expect(emulatedDevices.map { runtime.homeNode(of: Int32($0)) } == [60, 61, 62, 63])
        var allocations: [DeviceMemory] = []
        for _ in 0..<3 {
            for device in emulatedDevices {
                allocations.append(try runtime.allocateDevice(4096, on: Int32(device)))
            }
        }
        #expect(runtime.unboundAllocationCount == allocations.count)
        #expect(runtime.bindingWarningCount == 1)
        for memory in allocations {
            #expect(try Self.policy(of: memory.address) == "default")
            try runtime.free(memory)
        }
        // A second runtime warns on its own.
        let other = try makeEmulator(synthetic: "numa:64 core:1 pu:1", devices: "64")
        let memory = try other.allocateDevice(64, on: 63)
        #expect(other.bindingWarningCount == 1)
        try other.free(memory)
    }
}
