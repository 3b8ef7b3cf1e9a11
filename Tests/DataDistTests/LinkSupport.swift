import CoreMetrics
import DataDist
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A prompt (cluster 1, listening on loopback) and a decoder (cluster 2), linked unless asked not to; `faults`
/// are the `DATADIST_FAULTS` specs of each side (nil: none); `promptMetrics` and `decoderMetrics` are each side's
/// metrics backend (nil: the process's).
struct LinkedPair {
    let prompt: LLMDataDist
    let decoder: LLMDataDist

    /// How the decoder reaches the prompt (captured at start: the prompt may stop listening later).
    let promptInfo: LLMClusterInfo

    init(
        promptPool: Int = 4 << 20, promptHostPool: Int? = nil, decoderPool: Int? = 4 << 20,
        decoderHostPool: Int? = 1 << 20,
        remoteAccessible: Bool = false, decoderRemoteAccessible: Bool? = nil, timeout: Duration = .seconds(2),
        link: Bool = true, faults: (prompt: String?, decoder: String?) = (nil, nil),
        transport: TestTransport = .sharedMemory, configurePrompt: (inout LLMConfig) -> Void = { _ in },
        configureDecoder: (inout LLMConfig) -> Void = { _ in }, promptMetrics: (any MetricsFactory)? = nil,
        decoderMetrics: (any MetricsFactory)? = nil
    ) throws {
        var promptConfig = LLMConfig()
        promptConfig.memoryPool = MemoryPoolConfig(size: promptPool)
        promptConfig.hostMemoryPool = promptHostPool.map { MemoryPoolConfig(size: $0) }
        promptConfig.listenAddress = IPEndpoint(host: "127.0.0.1", port: 0)
        promptConfig.enableRemoteCacheAccessible = remoteAccessible
        promptConfig.syncKVTimeout = timeout
        promptConfig.transport = transport.preference
        configurePrompt(&promptConfig)
        prompt =
            promptMetrics.map {
                LLMDataDist(
                    role: .prompt, clusterID: 1, logger: Logger(label: "datadist.cluster.1"), metricsFactory: $0)
            } ?? LLMDataDist(role: .prompt, clusterID: 1)
        try prompt.initialize(
            promptConfig, environment: emulatorEnvironment(faults: faults.prompt).merging(transport.environment) { $1 })
        promptInfo = LLMClusterInfo(remoteClusterID: prompt.clusterID, remoteIPInfos: [prompt.listenEndpoint!])
        var decoderConfig = LLMConfig()
        decoderConfig.memoryPool = decoderPool.map { MemoryPoolConfig(size: $0) }
        decoderConfig.hostMemoryPool = decoderHostPool.map { MemoryPoolConfig(size: $0) }
        decoderConfig.enableRemoteCacheAccessible = decoderRemoteAccessible ?? remoteAccessible
        decoderConfig.syncKVTimeout = timeout
        decoderConfig.transport = transport.preference
        configureDecoder(&decoderConfig)
        decoder =
            decoderMetrics.map {
                LLMDataDist(
                    role: .decoder, clusterID: 2, logger: Logger(label: "datadist.cluster.2"), metricsFactory: $0)
            } ?? LLMDataDist(role: .decoder, clusterID: 2)
        try decoder.initialize(
            decoderConfig,
            environment: emulatorEnvironment(faults: faults.decoder).merging(transport.environment) { $1 })
        if link {
            let (status, statuses) = decoder.linkClusters([promptInfo], timeout: .seconds(3))
            #expect(status == .success && statuses == [.success], "link: \(status) \(statuses)")
        }
    }

    /// Unlinks, checks both audits are clean (no pins, no orphans), finalizes.
    func finish(sourceLocation: SourceLocation = #_sourceLocation) throws {
        _ = decoder.unlinkClusters([promptInfo])
        for instance in [prompt, decoder] {
            let audit = try instance.cacheManager.audit()
            #expect(audit.pinnedByPeers == 0 && audit.orphans == 0, "\(audit)", sourceLocation: sourceLocation)
            instance.finalize()
        }
    }
}

/// Fills every tensor of `cache` with ints `seed + tensor * 10_000 + index`.
func fill(_ cache: Cache, seed: Int32, ints: Int) {
    for (tensor, address) in cache.tensorAddresses.enumerated() {
        writeInt32s((0..<ints).map { seed + Int32(tensor * 10_000 + $0) }, at: address)
    }
}

/// Whether `condition` becomes true within `timeout` (state a peer settles asynchronously, such as the pin
/// released by a posted release message).
func eventually(within timeout: Duration = .seconds(2), _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = ContinuousClock.now.advanced(by: timeout)
    while true {
        if try condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        usleep(1000)
    }
}
