import DeviceRuntime
import Testing

@Suite("Fault injection on the ACL backend (fake library)")
struct ACLFaultTests {
    @Test func injectedFaultsFailBeforeACLIsCalled() throws {
        let fake = try FakeACL.instance()
        let runtime = try fake.runtime([FaultPlan.specVariable: "alloc@1,copy@1"])
        fake.resetCounts()
        let allocation = thrownError { () throws(DeviceError) in _ = try runtime.allocateDevice(4096, on: 0) }
        #expect(allocation?.aclCode == ACLCode.memoryAllocation)
        #expect(fake.count("aclrtMalloc") == 0)
        let memory = try runtime.allocateDevice(4096, on: 0)
        defer { try? runtime.free(memory) }
        let copy = thrownError { () throws(DeviceError) in
            try runtime.copy(
                to: memory.address, capacity: 64, from: memory.address + 64, count: 64, kind: .deviceToDevice,
                device: 0)
        }
        #expect(copy?.aclCode == ACLCode.systemDMA)
        #expect(copy?.message.contains("injected fault (DATADIST_FAULTS copy)") == true)
        #expect(fake.count("aclrtMemcpy") == 0)
    }

    @Test func aBadSpecRefusesTheACLRuntime() throws {
        let fake = try FakeACL.instance()
        let error = thrownError { () throws(DeviceError) in _ = try fake.runtime([FaultPlan.specVariable: "send"]) }
        #expect(error?.message.contains("DATADIST_FAULTS=\"send\"") == true, "\(String(describing: error))")
        #expect(try fake.runtime().faults == nil)
    }
}
