import DataDist
import Testing

/// The `LLMError` `body` throws, or nil when it does not throw (any other error is recorded as an issue).
func caught(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> LLMError? {
    do {
        try body()
        return nil
    } catch let error as LLMError {
        return error
    } catch {
        Issue.record("expected an LLMError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// The default option set plus `extra`.
func defaultOptions(_ extra: [String: String] = [:]) -> [String: String] {
    var options = [
        "ge.exec.deviceId": "0", "ge.session_device_id": "0", "llm.SyncKvCacheWaitTime": "1000",
        "llm.EnableCacheManager": "1", "llm.EnableRemoteCacheAccessible": "0",
    ]
    options.merge(extra) { _, new in new }
    return options
}

/// A small deterministic generator (SplitMix64) so property tests are reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
