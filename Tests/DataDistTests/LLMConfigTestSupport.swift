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
