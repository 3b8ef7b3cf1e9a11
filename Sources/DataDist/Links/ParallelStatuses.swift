import DeviceRuntime
import Synchronization
import ThreadSanitizerSupport

/// Runs `body` for each element on its own thread (up to 16 at once) and returns the results in order. An
/// element whose thread cannot start runs on the calling thread.
func forEachInParallel<Element: Sendable>(
    _ elements: [Element], _ body: @escaping @Sendable (Element) -> LLMStatusCode
) -> [LLMStatusCode] {
    guard elements.count > 1 else { return elements.map(body) }
    let results = ResultSlots(count: elements.count)
    for batch in stride(from: 0, to: elements.count, by: 16) {
        var threads: [JoinableThread] = []
        for index in batch..<min(batch + 16, elements.count) {
            let run: @Sendable () -> Void = { results.set(index, body(elements[index])) }
            do {
                threads.append(try JoinableThread.start(run))
            } catch {
                run()
            }
        }
        for thread in threads { thread.join() }
    }
    return results.values
}

/// Results written by worker threads, read after they are joined.
private final class ResultSlots: Sendable {
    private let slots: Lock<[LLMStatusCode]>
    init(count: Int) { slots = Lock(Array(repeating: .failed, count: count)) }
    func set(_ index: Int, _ value: LLMStatusCode) { slots.withLock { $0[index] = value } }
    var values: [LLMStatusCode] { slots.withLock { $0 } }
}
