/// Tells a layer-wise push (`CacheManager.transferCacheAsync`) when each layer of its source may be sent:
/// typically when the prefill has computed it.
///
/// Called once per layer that any of the task's configs covers, in ascending order, from the task's own
/// (non-main) context; the task waits at most `timeout` for the answer (its `LLMConfig.syncKVTimeout`). A
/// synchronizer backed by a blocking callback (a C ABI) resumes from a thread of its own.
public protocol LayerSynchronizer: Sendable {
    /// Returns when layer `layer` of the source may be sent; false aborts the task (its configs get .paramInvalid).
    func synchronize(layer: Int, timeout: Duration?) async -> Bool
}
