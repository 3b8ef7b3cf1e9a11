/// A layer-wise push started by `CacheManager.transferCacheAsync`: its layers go out in the background as its
/// synchronizer releases them. Results are kept per destination cluster (two configs to one cluster share one).
public final class CacheTask: Sendable {
    private let clusters: [UInt64]
    private let outcome: TaskOutcome

    init(clusters: [UInt64], outcome: TaskOutcome) {
        self.clusters = clusters
        self.outcome = outcome
    }

    /// Waits up to `timeout` (nil: until done) for the task; `.timeout` if it is still running then (it goes on),
    /// else the first result that is neither success nor missing, in config order, else `.success`.
    public func synchronize(timeout: Duration? = nil) -> LLMStatusCode {
        guard let results = outcome.wait(timeout) else { return .timeout }
        return Self.summary(clusters.map { results[$0] })
    }

    /// Waits as `synchronize(timeout:)` does; one result per config, in order: `.timeout` for all while still
    /// running, nil for a config whose last layer was never sent.
    public func results(timeout: Duration? = nil) -> [LLMStatusCode?] {
        guard let results = outcome.wait(timeout) else { return clusters.map { _ in .timeout } }
        return clusters.map { results[$0] }
    }

    /// Whether the task has ended: its results are final and its synchronizer is asked about no further layer.
    public var isDone: Bool { outcome.isDone }

    /// `synchronize()` for Swift concurrency callers: suspends, without blocking a thread, until the task is done.
    public func wait() async -> LLMStatusCode {
        let results = await outcome.results()
        return Self.summary(clusters.map { results[$0] })
    }

    private static func summary(_ results: [LLMStatusCode?]) -> LLMStatusCode {
        results.first { $0 != nil && $0 != .success }.flatMap { $0 } ?? .success
    }
}
