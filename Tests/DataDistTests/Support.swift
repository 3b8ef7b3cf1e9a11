import DataDist
import Testing

/// Tests never touch the process environment: each instance gets its own (`faults`: a `DATADIST_FAULTS` spec).
func emulatorEnvironment(product: String? = nil, devices: Int = 2, faults: String? = nil) -> [String: String] {
    var environment = [
        "DATADIST_BACKEND": "emulator", "DATADIST_EMULATE_DEVICE_MEMORY": "1GiB",
        "DATADIST_EMULATE_DEVICES": "\(devices)",
    ]
    environment["DATADIST_EMULATE_PRODUCT"] = product
    environment["DATADIST_FAULTS"] = faults
    return environment
}

/// An initialised instance with the given pools (bytes; nil = no pool).
func makeInstance(
    clusterID: UInt64 = 1, devicePool: Int? = 1 << 20, hostPool: Int? = nil, pageShift: Int = 16,
    product: String? = nil, configure: (inout LLMConfig) -> Void = { _ in }
) throws -> LLMDataDist {
    var config = LLMConfig()
    config.memoryPool = devicePool.map { MemoryPoolConfig(size: $0, pageShift: pageShift) }
    config.hostMemoryPool = hostPool.map { MemoryPoolConfig(size: $0, pageShift: pageShift) }
    configure(&config)
    let instance = LLMDataDist(role: .prompt, clusterID: clusterID)
    try instance.initialize(config, environment: emulatorEnvironment(product: product))
    return instance
}

/// Runs `body` with a cache manager; afterwards the audit must show no orphans, and once everything the body
/// left is finalized, nothing is live.
func withCacheManager(
    devicePool: Int? = 1 << 20, hostPool: Int? = nil, pageShift: Int = 16, product: String? = nil,
    configure: (inout LLMConfig) -> Void = { _ in },
    _ body: (CacheManager) throws -> Void
) throws {
    let instance = try makeInstance(
        devicePool: devicePool, hostPool: hostPool, pageShift: pageShift, product: product, configure: configure)
    defer { instance.finalize() }
    let manager = try instance.cacheManager
    try body(manager)
    #expect(manager.audit().orphans == 0, "audit after the test: \(manager.audit())")
}

/// Expects `body` to throw `status` with a message containing every string of `mentioning`, and the manager's
/// audit to be the same before and after.
func expectRefusal(
    _ status: LLMStatusCode, mentioning: [String] = [], in manager: CacheManager,
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
    let before = manager.audit()
    do {
        try body()
        Issue.record("expected \(status), but the call succeeded", sourceLocation: sourceLocation)
    } catch {
        guard let error = error as? LLMError else {
            Issue.record("expected LLMError, got \(error)", sourceLocation: sourceLocation)
            return
        }
        #expect(error.status == status, "\(error)", sourceLocation: sourceLocation)
        for text in mentioning {
            #expect(
                error.message.contains(text), "message \"\(error.message)\" lacks \"\(text)\"",
                sourceLocation: sourceLocation)
        }
    }
    #expect(manager.audit() == before, "state changed", sourceLocation: sourceLocation)
}

/// Int32 views of cache memory (the emulator's device memory is host memory).
func writeInt32s(_ values: [Int32], at address: UInt) {
    let pointer = UnsafeMutablePointer<Int32>(bitPattern: address)!
    for (index, value) in values.enumerated() { pointer[index] = value }
}

func readInt32s(at address: UInt, count: Int) -> [Int32] {
    let pointer = UnsafePointer<Int32>(bitPattern: address)!
    return (0..<count).map { pointer[$0] }
}

func key(_ reqID: UInt64, model: UInt64 = 0) -> CacheKey { CacheKey(promptClusterID: 1, reqID: reqID, modelID: model) }

/// `count` consecutive ints starting at `start`.
func ascending(from start: Int, count: Int) -> [Int32] { (0..<count).map { Int32(start + $0) } }
