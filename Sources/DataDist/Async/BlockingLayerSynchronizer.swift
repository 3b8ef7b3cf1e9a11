import Dispatch

/// A `LayerSynchronizer` backed by a blocking function, such as a C callback or a Python method called with the
/// GIL taken. Each call runs `body` on a queue of this synchronizer's own (Dispatch gives it a thread only while a
/// call runs), never on the tasks' shared driver, so a callback that blocks delays only its own task.
public struct BlockingLayerSynchronizer: LayerSynchronizer {
    private let body: @Sendable (_ layer: Int, _ timeout: Duration?) -> Bool
    private let queue = DispatchQueue(label: "datadist.blocking-layer-synchronizer")

    /// `body(layer, timeout)` returns when layer `layer` may be sent; false aborts the task.
    public init(_ body: @escaping @Sendable (_ layer: Int, _ timeout: Duration?) -> Bool) { self.body = body }

    public func synchronize(layer: Int, timeout: Duration?) async -> Bool {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: body(layer, timeout)) }
        }
    }
}
