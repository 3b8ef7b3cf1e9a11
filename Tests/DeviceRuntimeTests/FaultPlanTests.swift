import Testing

@testable import DeviceRuntime

@Suite("Fault injection: the DATADIST_FAULTS grammar and its decisions")
struct FaultPlanTests {
    func plan(_ spec: String?, seed: String? = nil) throws(DeviceError) -> FaultPlan? {
        var environment: [String: String] = [:]
        environment[FaultPlan.specVariable] = spec
        environment[FaultPlan.seedVariable] = seed
        return try FaultPlan.make(environment: environment)
    }

    @Test func theDocumentedExampleParses() throws {
        let parsed = try #require(
            try plan("alloc:0.1,copy@3,send:0.05,receive@10,peer-death@after=5s", seed: "42"))
        #expect(parsed.seed == 42)
        #expect(
            parsed.triggers == [
                .alloc: .probability(0.1), .copy: .nthCall(3), .send: .probability(0.05), .receive: .nthCall(10),
                .peerDeath: .after(.seconds(5)),
            ])
        #expect(parsed.peerDeathDelay == .seconds(5))
    }

    static let goodRules: [(String, FaultPlan.Kind, FaultPlan.Trigger)] = [
        ("alloc:1", .alloc, .probability(1)), ("copy:0.5", .copy, .probability(0.5)),
        ("send@1", .send, .nthCall(1)), ("receive@18446744073709551615", .receive, .nthCall(UInt64.max)),
        ("peer-death:0.25", .peerDeath, .probability(0.25)), ("peer-death@2", .peerDeath, .nthCall(2)),
        ("peer-death@after=250ms", .peerDeath, .after(.milliseconds(250))),
        ("peer-death@after=86400s", .peerDeath, .after(.seconds(86_400))),
    ]

    @Test("each rule form parses", arguments: goodRules)
    func goodRule(_ spec: String, _ kind: FaultPlan.Kind, _ trigger: FaultPlan.Trigger) throws {
        #expect(try plan(spec)?.triggers == [kind: trigger])
    }

    static let badSpecs: [(spec: String, token: String)] = [
        ("alloc:0", "alloc:0"), ("alloc:1.5", "alloc:1.5"), ("copy:-0.1", "copy:-0.1"), ("copy:nan", "copy:nan"),
        ("copy@0", "copy@0"), ("copy@x", "copy@x"), ("copy@+3", "copy@+3"), ("copy@3,copy:0.5", "copy:0.5"),
        ("bogus:0.1", "bogus:0.1"), ("alloc", "alloc"), ("alloc:0.1,", ""), (",send@1", ""),
        ("send@after=5s", "send@after=5s"), ("peer-death@after=5", "peer-death@after=5"),
        ("peer-death@after=0s", "peer-death@after=0s"), ("peer-death@after=86401s", "peer-death@after=86401s"),
        ("ALLOC:0.1", "ALLOC:0.1"), (" copy@3", " copy@3"),
    ]

    @Test("a bad spec refuses, naming the variable and the bad token", arguments: badSpecs)
    func badSpec(_ spec: String, _ token: String) {
        let error = thrownError { () throws(DeviceError) in _ = try plan(spec) }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("DATADIST_FAULTS=\"\(spec)\"") == true, "\(String(describing: error))")
        #expect(error?.message.contains("\"\(token)\"") == true, "\(String(describing: error))")
    }

    @Test("a bad seed refuses, naming the variable", arguments: ["abc", "-1", "1.5", "", "18446744073709551616"])
    func badSeed(_ seed: String) {
        let error = thrownError { () throws(DeviceError) in _ = try plan("copy@1", seed: seed) }
        #expect(error?.message.contains("DATADIST_FAULT_SEED=\"\(seed)\"") == true, "\(String(describing: error))")
    }

    @Test func noSpecMeansNoPlan() throws {
        #expect(try plan(nil) == nil)
        #expect(try plan("") == nil)
        #expect(try plan(nil, seed: "7") == nil)
        #expect(try makeEmulator().faults == nil)
    }

    @Test func onlyTheNthCallFails() throws {
        let parsed = try #require(try plan("copy@3"))
        let decisions = (0..<6).map { _ in parsed.shouldFail(.copy) }
        #expect(decisions == [false, false, true, false, false, false])
        #expect(!parsed.shouldFail(.alloc), "kinds without a rule never fail")
    }

    @Test func aSeedReplaysTheSameFailures() throws {
        func decisions(seed: String) throws -> [Bool] {
            let parsed = try #require(try plan("send:0.3,receive:0.3", seed: seed))
            return (0..<2000).map { call in parsed.shouldFail(call % 2 == 0 ? .send : .receive) }
        }
        let first = try decisions(seed: "42")
        #expect(try decisions(seed: "42") == first)
        #expect(try decisions(seed: "43") != first)
        let failures = first.filter { $0 }.count
        #expect((400...800).contains(failures), "\(failures) of 2000 calls failed at probability 0.3")
        #expect(try decisions(seed: "0").contains(true))
    }

    @Test func probabilityOneFailsEveryCall() throws {
        let parsed = try #require(try plan("alloc:1"))
        #expect((0..<100).allSatisfy { _ in parsed.shouldFail(.alloc) })
    }

    @Test func anEmulatorWithABadSpecRefusesToStart() {
        let error = thrownError { () throws(DeviceError) in
            _ = try EmulatedRuntime(environment: [
                "HWLOC_SYNTHETIC": "node:1 core:2 pu:1", "DATADIST_FAULTS": "copy@never",
            ])
        }
        #expect(error?.message.contains("\"copy@never\"") == true, "\(String(describing: error))")
    }

    @Test func emulatorAllocationFaultsAreACLOutOfMemory() throws {
        let runtime = try makeEmulator(extra: [FaultPlan.specVariable: "alloc@2"])
        let first = try runtime.allocateDevice(4096, on: 0)
        let error = thrownError { () throws(DeviceError) in _ = try runtime.allocateHost(4096) }
        #expect(error?.aclCode == ACLCode.memoryAllocation)
        #expect(error?.message.contains("injected fault (DATADIST_FAULTS alloc)") == true)
        #expect(try runtime.deviceInfo(0).freeBytes == runtime.deviceCapacity - runtime.accountedBytes(for: 4096))
        try runtime.free(first)
        #expect(runtime.liveAllocationCount == 0)
        #expect(try runtime.deviceInfo(0).freeBytes == runtime.deviceCapacity)
    }

    @Test func emulatorCopyFaultsAreACLDMAErrorsAndCopyNothing() throws {
        let runtime = try makeEmulator(extra: [FaultPlan.specVariable: "copy@1"])
        let memory = try runtime.allocateDevice(64, on: 0)
        defer { try? runtime.free(memory) }
        let source = bytePattern(64, seed: 9)
        let error = source.withUnsafeBytes { bytes in
            thrownError { () throws(DeviceError) in
                try runtime.copy(
                    to: memory.address, capacity: 64, from: UInt(bitPattern: bytes.baseAddress!), count: 64,
                    kind: .hostToDevice, device: 0)
            }
        }
        #expect(error?.aclCode == ACLCode.systemDMA)
        #expect(readBytes(at: memory.address, count: 64) != source)
        try source.withUnsafeBytes { bytes in
            try runtime.copy(
                to: memory.address, capacity: 64, from: UInt(bitPattern: bytes.baseAddress!), count: 64,
                kind: .hostToDevice, device: 0)
        }
        #expect(readBytes(at: memory.address, count: 64) == source, "only the first copy fails")
    }
}
