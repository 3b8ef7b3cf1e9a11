import DataDist
import Dispatch
import Synchronization
import Testing
import ThreadSanitizerSupport

/// `transferCacheAsync` over time: waits and timeouts, overlap of sending and synchronizing, the source's lifetime,
/// many tasks at once, finalize in the middle.
@Suite(.timeLimit(.minutes(1))) struct TransferAsyncLifetimeTests {
    static let source = TransferAsyncTests.source
    static let target = TransferAsyncTests.target

    static func slotConfig(_ target: Cache, layers: Range<Int> = 0..<3, batch: UInt32 = 0) -> TransferWithCacheKeyConfig
    {
        TransferWithCacheKeyConfig(
            key: CacheKeyByIdAndIndex(clusterID: 1, cacheID: target.cacheID, batchIndex: batch), sourceLayers: layers,
            destinationLayers: 0..<layers.count)
    }

    @Test(arguments: TestTransport.transfers) func aRunningTaskReportsTimeoutAndAnUnansweredLayerTimesOut(
        transport: TestTransport
    ) async throws {
        let pair = try LinkedPair(remoteAccessible: true, timeout: .milliseconds(300), transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let target = try prompt.allocateCache(Self.target)
        let source = try decoder.allocateCache(Self.source)
        fill(source, seed: 10, ints: 8)
        let gate = Gate()
        let task = try decoder.transferCacheAsync(
            source,
            synchronizer: ScriptedSynchronizer { layer in
                if layer == 1 { await gate.wait() }
                return true
            }, configs: [Self.slotConfig(target)])
        #expect(task.synchronize(timeout: .milliseconds(50)) == .timeout)
        #expect(task.results(timeout: .zero) == [.timeout])
        gate.open()
        #expect(await task.wait() == .success)
        #expect(task.synchronize(timeout: .zero) == .success)
        // Layer 2 is never released: after syncKVTimeout the configs covering it time out; layer 0 still arrived.
        let stuck = try decoder.transferCacheAsync(
            source,
            synchronizer: ScriptedSynchronizer { layer in
                if layer == 2 { try? await Task.sleep(for: .seconds(30)) }
                return true
            }, configs: [Self.slotConfig(target, batch: 1)])
        let started = ContinuousClock.now
        #expect(await stuck.wait() == .timeout)
        // Long before the synchronizer would answer (30 s; generous: 2.4 s was seen under ThreadSanitizer, 16.5 s
        // with the test run's threads held by other tests on a loaded machine).
        #expect(ContinuousClock.now - started < .seconds(25))
        #expect(stuck.results() == [.timeout])
        #expect(holds(filled(seed: 10, tensor: 3, count: 8), at: target.tensorAddresses[3] + 32))
        try decoder.deallocateCache(source)
        try prompt.deallocateCache(target)
        try pair.finish()
    }

    /// While the synchronizer waits for layer l + 1, layer l is already on the wire: the synchronizer releases layer
    /// l + 1 only once the receiver holds layer l's bytes, so a task that sent only after the next answer would
    /// never finish (it would time out, or be refused after the deadline).
    @Test(arguments: TestTransport.transfers) func layerLIsSentWhileLayerLPlusOneIsAwaited(transport: TestTransport)
        async throws
    {
        let pair = try LinkedPair(remoteAccessible: true, timeout: .seconds(20), transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let layers = 8
        let target = try prompt.allocateCache(CacheDesc(numTensors: 2 * layers, shape: [1, 8], dataType: .int32))
        let source = try decoder.allocateCache(CacheDesc(numTensors: 2 * layers, shape: [1, 8], dataType: .int32))
        fill(source, seed: 1, ints: 8)
        let addresses = target.tensorAddresses
        let sync = ScriptedSynchronizer { layer in
            guard layer > 0 else { return true }
            return await poll(until: .seconds(10)) {
                holds(filled(seed: 1, tensor: 2 * layer - 1, count: 8), at: addresses[2 * layer - 1])
            }
        }
        let task = try decoder.transferCacheAsync(
            source, synchronizer: sync,
            configs: [
                TransferWithCacheKeyConfig(
                    key: CacheKeyByIdAndIndex(clusterID: 1, cacheID: target.cacheID), sourceLayers: 0..<layers,
                    destinationLayers: 0..<layers)
            ])
        #expect(await task.wait() == .success)
        #expect(sync.layersAsked == Array(0..<layers))
        for tensor in 0..<2 * layers {
            #expect(holds(filled(seed: 1, tensor: tensor, count: 8), at: addresses[tensor]))
        }
        try decoder.deallocateCache(source)
        try prompt.deallocateCache(target)
        try pair.finish()
    }

    /// A synchronizer that suspends for even layers and blocks its thread for odd ones until the layer before has
    /// landed: a driver step handed to an idle sending thread must let that thread send the layer it queued before
    /// the synchronizer (blocking it) is asked about the next one.
    @Test(arguments: TestTransport.transfers) func aSynchronizerBlockingItsThreadStillSeesTheLayerBeforeSent(
        transport: TestTransport
    ) async throws {
        let pair = try LinkedPair(remoteAccessible: true, timeout: .seconds(20), transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let layers = 8
        let target = try prompt.allocateCache(CacheDesc(numTensors: 2 * layers, shape: [1, 8], dataType: .int32))
        let source = try decoder.allocateCache(CacheDesc(numTensors: 2 * layers, shape: [1, 8], dataType: .int32))
        fill(source, seed: 3, ints: 8)
        let addresses = target.tensorAddresses
        let landed: @Sendable (Int) -> Bool = { layer in
            holds(filled(seed: 3, tensor: 2 * layer + 1, count: 8), at: addresses[2 * layer + 1])
        }
        let sync = ScriptedSynchronizer { layer in
            guard layer % 2 == 1 else {
                try? await Task.sleep(for: .milliseconds(2))
                return true
            }
            return blockThread(until: .seconds(10)) { landed(layer - 1) }
        }
        let task = try decoder.transferCacheAsync(
            source, synchronizer: sync,
            configs: [
                TransferWithCacheKeyConfig(
                    key: CacheKeyByIdAndIndex(clusterID: 1, cacheID: target.cacheID), sourceLayers: 0..<layers,
                    destinationLayers: 0..<layers)
            ])
        #expect(await task.wait() == .success)
        for tensor in 0..<2 * layers {
            #expect(holds(filled(seed: 3, tensor: tensor, count: 8), at: addresses[tensor]))
        }
        try decoder.deallocateCache(source)
        try prompt.deallocateCache(target)
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func theTaskHoldsItsSourceThroughADeallocate(transport: TestTransport)
        async throws
    {
        let pair = try LinkedPair(remoteAccessible: true, transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let target = try prompt.allocateCache(Self.target)
        let source = try decoder.allocateCache(Self.source)
        fill(source, seed: 60, ints: 8)
        let gate = Gate()
        let task = try decoder.transferCacheAsync(
            source,
            synchronizer: ScriptedSynchronizer { _ in
                await gate.wait()
                return true
            }, configs: [Self.slotConfig(target)])
        try decoder.deallocateCache(source)  // the id goes; the memory stays until the task ends
        #expect(decoder.audit().pagesInUse > 0)
        #expect(decoder.audit().orphans == 0)
        gate.open()
        #expect(await task.wait() == .success)
        for tensor in 0..<6 {
            #expect(holds(filled(seed: 60, tensor: tensor, count: 8), at: target.tensorAddresses[tensor]))
        }
        #expect(decoder.audit().pagesInUse == 0)
        try prompt.deallocateCache(target)
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func manyTasksAtOnce(transport: TestTransport) async throws {
        let pair = try LinkedPair(decoderPool: 16 << 20, remoteAccessible: true, transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let count = 12
        let target = try prompt.allocateCache(CacheDesc(numTensors: 6, shape: [Int64(count), 8], dataType: .int32))
        let gate = Gate()
        var tasks: [CacheTask] = []
        var sources: [Cache] = []
        for index in 0..<count {
            let source = try decoder.allocateCache(Self.source)
            fill(source, seed: Int32(index * 100), ints: 8)
            sources.append(source)
            tasks.append(
                try decoder.transferCacheAsync(
                    source,
                    synchronizer: ScriptedSynchronizer { _ in
                        await gate.wait()
                        return true
                    }, configs: [Self.slotConfig(target, batch: UInt32(index))]))
        }
        gate.open()
        for task in tasks { #expect(await task.wait() == .success) }
        for index in 0..<count {
            for tensor in 0..<6 {
                #expect(
                    holds(
                        filled(seed: Int32(index * 100), tensor: tensor, count: 8),
                        at: target.tensorAddresses[tensor] + UInt(index * 32)))
            }
        }
        for source in sources { try decoder.deallocateCache(source) }
        try prompt.deallocateCache(target)
        try pair.finish()
    }

    @Test(arguments: TestTransport.transfers) func finalizeFailsRunningTasksAndReturns(transport: TestTransport)
        async throws
    {
        // syncKVTimeout far above the test's own waits: only finalize may end the task (a stalled test run once let
        // the synchronizer's 20 s deadline record .timeout first).
        let pair = try LinkedPair(remoteAccessible: true, timeout: .seconds(120), transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let target = try prompt.allocateCache(Self.target)
        let source = try decoder.allocateCache(Self.source)
        fill(source, seed: 5, ints: 8)
        let gate = Gate()
        let task = try decoder.transferCacheAsync(
            source,
            synchronizer: ScriptedSynchronizer { layer in
                if layer > 0 { await gate.wait() }
                return true
            }, configs: [Self.slotConfig(target)])
        #expect(
            await poll(until: .seconds(10)) {
                holds(filled(seed: 5, tensor: 1, count: 8), at: target.tensorAddresses[1])
            })
        let started = ContinuousClock.now
        pair.decoder.finalize()
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(task.synchronize(timeout: .seconds(5)) == .failed)
        #expect(task.results() == [.failed])
        gate.open()
        #expect(await poll(until: .seconds(5)) { prompt.audit().pinnedByPeers == 0 })
        try prompt.deallocateCache(target)
        #expect(prompt.audit().isClean, "\(prompt.audit())")
        pair.prompt.finalize()
    }
}

/// A callback-shaped synchronizer (what a C ABI or Python caller provides).
@Suite(.timeLimit(.minutes(1))) struct BlockingLayerSynchronizerTests {
    @Test(arguments: TestTransport.transfers) func aBlockingCallbackDelaysOnlyItsOwnTask(transport: TestTransport)
        async throws
    {
        // A long syncKVTimeout: the test's own continuation may wait for a cooperative thread while other suites
        // block theirs (5-7 s seen), and layer 1 is released only after it ran.
        let pair = try LinkedPair(remoteAccessible: true, timeout: .seconds(60), transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let target = try prompt.allocateCache(TransferAsyncTests.target)
        let blocked = try decoder.allocateCache(TransferAsyncTests.source)
        let free = try decoder.allocateCache(TransferAsyncTests.source)
        fill(blocked, seed: 70, ints: 8)
        fill(free, seed: 80, ints: 8)
        let release = DispatchSemaphore(value: 0)
        let asked = Lock<[Int]>([])
        let waiting = try decoder.transferCacheAsync(
            blocked,
            synchronizer: BlockingLayerSynchronizer { layer, _ in
                asked.withLock { $0.append(layer) }
                if layer == 1 { release.wait() }  // blocks its thread, as a C callback would
                return true
            }, configs: [TransferAsyncLifetimeTests.slotConfig(target, batch: 0)])
        let other = try decoder.transferCacheAsync(
            free, synchronizer: BlockingLayerSynchronizer { _, _ in true },
            configs: [TransferAsyncLifetimeTests.slotConfig(target, batch: 1)])
        #expect(await other.wait() == .success)
        #expect(waiting.synchronize(timeout: .zero) == .timeout)
        release.signal()
        #expect(await waiting.wait() == .success)
        #expect(asked.withLock { $0 } == [0, 1, 2])
        for tensor in 0..<6 {
            #expect(holds(filled(seed: 70, tensor: tensor, count: 8), at: target.tensorAddresses[tensor]))
            #expect(holds(filled(seed: 80, tensor: tensor, count: 8), at: target.tensorAddresses[tensor] + 32))
        }
        for cache in [blocked, free] { try decoder.deallocateCache(cache) }
        try prompt.deallocateCache(target)
        try pair.finish()
    }
}
