import DataDist
import DeviceRuntime
import Synchronization
import ThreadSanitizerSupport

/// A synchronizer that records the layers it is asked about and answers with `answer(layer)` (async, so it can
/// wait for something first).
final class ScriptedSynchronizer: LayerSynchronizer {
    private let asked = Lock<[Int]>([])
    private let answer: @Sendable (Int) async -> Bool

    init(_ answer: @escaping @Sendable (Int) async -> Bool = { _ in true }) { self.answer = answer }

    var layersAsked: [Int] { asked.withLock { $0 } }

    func synchronize(layer: Int, timeout: Duration?) async -> Bool {
        asked.withLock { $0.append(layer) }
        return await answer(layer)
    }
}

/// Int32 contents of `count` ints at `address` equal `expected`.
func holds(_ expected: [Int32], at address: UInt) -> Bool { readInt32s(at: address, count: expected.count) == expected }

/// The ints `fill(_:seed:ints:)` wrote to tensor `tensor`, from int `from`, `count` of them.
func filled(seed: Int32, tensor: Int, from: Int = 0, count: Int) -> [Int32] {
    (from..<from + count).map { seed + Int32(tensor * 10_000 + $0) }
}

/// Another remote-accessible prompt (cluster `clusterID`), linked from `pair`'s decoder over `transport`.
func linkedExtraPrompt(_ clusterID: UInt64, to pair: LinkedPair, transport: TestTransport) throws -> (
    LLMDataDist, LLMClusterInfo
) {
    var config = LLMConfig()
    config.transport = transport.preference
    config.memoryPool = MemoryPoolConfig(size: 1 << 20)
    config.listenAddress = IPEndpoint(host: "127.0.0.1", port: 0)
    config.enableRemoteCacheAccessible = true
    let prompt = LLMDataDist(role: .prompt, clusterID: clusterID)
    try prompt.initialize(config, environment: emulatorEnvironment().merging(transport.environment) { $1 })
    let info = LLMClusterInfo(remoteClusterID: clusterID, remoteIPInfos: [prompt.listenEndpoint!])
    let (status, _) = pair.decoder.linkClusters([info], timeout: .seconds(3))
    guard status == .success else { throw LLMError(status, "link to cluster \(clusterID)") }
    return (prompt, info)
}

/// A gate a synchronizer waits on (without blocking a thread) until the test opens it.
final class Gate: Sendable {
    private let state = Lock<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state in
                if !state.open { state.waiters.append(continuation) }
                return state.open
            }
            if resumeNow { continuation.resume() }
        }
    }
}

/// Polls (every millisecond, up to `deadline`) until `condition` holds; whether it did.
func poll(until deadline: Duration, _ condition: () -> Bool) async -> Bool {
    let end = ContinuousClock.now.advanced(by: deadline)
    while ContinuousClock.now < end {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(1))
    }
    return condition()
}

/// Blocks the calling thread (yielding its core) until `condition` holds or `deadline` passes; whether it held.
func blockThread(until deadline: Duration, _ condition: () -> Bool) -> Bool {
    let end = ContinuousClock.now.advanced(by: deadline)
    while ContinuousClock.now < end {
        if condition() { return true }
        JoinableThread.yield()
    }
    return condition()
}
