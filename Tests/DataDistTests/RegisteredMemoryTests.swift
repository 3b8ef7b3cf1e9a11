import DataDist
import Dispatch
import LinkLayer
import Synchronization
import Testing
import ThreadSanitizerSupport

@testable import DataDist

#if canImport(Glibc)
import Glibc
#endif

/// Caller memory of `tensors` tensors of `bytes` each, apart from any pool (as a serving stack's own allocation).
final class CallerMemory: @unchecked Sendable {
    let buffer: UnsafeMutableRawBufferPointer
    let bytes: Int

    init(tensors: Int, bytes: Int) {
        self.bytes = bytes
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: tensors * bytes, alignment: 4096)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
    }

    var addresses: [UInt] {
        (0..<buffer.count / bytes).map { UInt(bitPattern: buffer.baseAddress) + UInt($0 * bytes) }
    }

    /// Tensor t holds the ints `seed + t * 10_000 + index`.
    func fill(seed: Int32) {
        for (tensor, address) in addresses.enumerated() {
            writeInt32s((0..<bytes / 4).map { seed + Int32(tensor * 10_000 + $0) }, at: address)
        }
    }

    func free() { buffer.deallocate() }
}

/// Registered caller memory served to linked peers over UCX (`registerCache` / `registerBlocksCache`): pulls by
/// key, by id and index and of blocks read it, pushes write it, a pull lands in registered memory on every
/// transport, an unregister waits for a peer's transfer in flight (or fails it) before the memory may go, and the
/// memfd mapping, which cannot map it, refuses it saying why. Every byte is checked.
@Suite(.timeLimit(.minutes(1))) struct RegisteredMemoryTests {
    /// 2 tensors of 4 slots of 256 bytes.
    static let desc = CacheDesc(numTensors: 2, shape: [4, 64], dataType: .int32)
    /// 2 tensors of 8 blocks of 128 bytes.
    static let blocksDesc = CacheDesc(numTensors: 2, shape: [8, 32], dataType: .int32)
    static let tensorBytes = 1024
    static let overUCX: [TestTransport] = [.ucx, .ucxTCP]

    /// The ints of `count` ints at `offset` bytes into tensor `tensor` of `memory` (filled with `seed`).
    static func pattern(seed: Int32, tensor: Int, offset: Int, count: Int) -> [Int32] {
        (0..<count).map { seed + Int32(tensor * 10_000 + offset / 4 + $0) }
    }

    static func link(_ pair: LinkedPair, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(
            pair.decoder.linkClusters([pair.promptInfo]) == (.success, [.success]), sourceLocation: sourceLocation)
    }

    @Test(arguments: overUCX) func pullsByKeyAndByIDAndIndexReadRegisteredMemory(transport: TestTransport) throws {
        let pair = try LinkedPair(link: false, transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let memory = CallerMemory(tensors: 2, bytes: Self.tensorBytes)
        defer { memory.free() }
        memory.fill(seed: 7)
        let registered = try prompt.registerCache(Self.desc, addresses: memory.addresses, keys: [key(1), key(2)])
        Self.link(pair)
        #expect(pair.decoder.linkTransport(toCluster: 1) == .ucx)
        let destination = try decoder.allocateCache(Self.desc)
        for address in destination.tensorAddresses { writeInt32s(Array(repeating: -1, count: 256), at: address) }
        try decoder.pullCache(key(2), into: destination, batchIndex: 0)
        try decoder.pullCache(
            CacheKeyByIdAndIndex(clusterID: 1, cacheID: registered.cacheID, batchIndex: 3), into: destination,
            batchIndex: 2)
        try decoder.pullCache(key(2), into: destination, batchIndex: 1)  // keys of registered caches stay bound
        for tensor in 0..<2 {
            let pulled = readInt32s(at: destination.tensorAddresses[tensor], count: 256)
            #expect(Array(pulled[0..<64]) == Self.pattern(seed: 7, tensor: tensor, offset: 256, count: 64))
            #expect(Array(pulled[64..<128]) == Self.pattern(seed: 7, tensor: tensor, offset: 256, count: 64))
            #expect(Array(pulled[128..<192]) == Self.pattern(seed: 7, tensor: tensor, offset: 768, count: 64))
            #expect(pulled[192...].allSatisfy { $0 == -1 }, "slot 3 was not pulled into")
        }
        // A layer range of one layer (tensors 0 and 1) of slot 0 into slot 3.
        try decoder.pullCache(
            key(1), into: destination, batchIndex: 3, layers: LayerRange(source: 0..<1, destination: 0..<1))
        for tensor in 0..<2 {
            #expect(
                readInt32s(at: destination.tensorAddresses[tensor] + 768, count: 64)
                    == Self.pattern(seed: 7, tensor: tensor, offset: 0, count: 64))
        }
        #expect(eventually { prompt.audit().pinnedByPeers == 0 }, "every release arrived")
        #expect(prompt.audit().boundKeys == 2)
        try decoder.deallocateCache(destination)
        try prompt.unregisterCache(registered.cacheID)
        try pair.finish()
    }

    @Test(arguments: overUCX) func pullBlocksReadsARegisteredBlocksCache(transport: TestTransport) throws {
        let pair = try LinkedPair(link: false, transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let memory = CallerMemory(tensors: 2, bytes: Self.tensorBytes)
        defer { memory.free() }
        memory.fill(seed: 40)
        let blocksKey = BlocksCacheKey(clusterID: 1, modelID: 3)
        let registered = try prompt.registerBlocksCache(Self.blocksDesc, addresses: memory.addresses, key: blocksKey)
        Self.link(pair)
        let local = try decoder.allocateBlocksCache(Self.blocksDesc)
        let (source, target) = ([5, 1, 2, 7], [0, 3, 4, 7])
        try decoder.pullBlocks(blocksKey, into: local, srcBlocks: source, dstBlocks: target)
        for tensor in 0..<2 {
            for (from, to) in zip(source, target) {
                #expect(
                    readInt32s(at: local.tensorAddresses[tensor] + UInt(to * 128), count: 32)
                        == Self.pattern(seed: 40, tensor: tensor, offset: from * 128, count: 32), "block \(from)")
            }
        }
        try decoder.deallocateBlocksCache(local)
        try prompt.unregisterCache(registered.cacheID)
        try pair.finish()
    }

    @Test(arguments: overUCX) func pushesWriteRegisteredMemory(transport: TestTransport) throws {
        let pair = try LinkedPair(remoteAccessible: true, link: false, transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let (memory, blocksMemory) = (
            CallerMemory(tensors: 2, bytes: Self.tensorBytes), CallerMemory(tensors: 2, bytes: Self.tensorBytes)
        )
        defer {
            memory.free()
            blocksMemory.free()
        }
        memory.fill(seed: 1)
        blocksMemory.fill(seed: 2)
        let blocksKey = BlocksCacheKey(clusterID: 1, modelID: 9)
        let registered = try prompt.registerCache(Self.desc, addresses: memory.addresses)
        let registeredBlocks = try prompt.registerBlocksCache(
            Self.blocksDesc, addresses: blocksMemory.addresses, key: blocksKey)
        Self.link(pair)
        let source = try decoder.allocateCache(Self.desc)
        fill(source, seed: 500, ints: 256)
        try decoder.pushCache(
            to: CacheKeyByIdAndIndex(clusterID: 1, cacheID: registered.cacheID, batchIndex: 2), from: source,
            srcBatchIndex: 1)
        let sourceBlocks = try decoder.allocateBlocksCache(Self.blocksDesc)
        fill(sourceBlocks, seed: 900, ints: 256)
        try decoder.pushBlocks(to: blocksKey, from: sourceBlocks, srcBlocks: [0, 7], dstBlocks: [6, 2])
        for tensor in 0..<2 {
            let written = readInt32s(at: memory.addresses[tensor], count: 256)
            let expected = Self.pattern(seed: 1, tensor: tensor, offset: 0, count: 256)
            #expect(Array(written[128..<192]) == (0..<64).map { 500 + Int32(tensor * 10_000 + 64 + $0) })
            #expect(
                Array(written[..<128]) == Array(expected[..<128]) && Array(written[192...]) == Array(expected[192...]))
            let blocks = readInt32s(at: blocksMemory.addresses[tensor], count: 256)
            let before = Self.pattern(seed: 2, tensor: tensor, offset: 0, count: 256)
            for block in 0..<8 {
                let got = Array(blocks[block * 32..<(block + 1) * 32])
                let pushedFrom = [6: 0, 2: 7][block]
                let want =
                    pushedFrom.map { from in (0..<32).map { 900 + Int32(tensor * 10_000 + from * 32 + $0) } }
                    ?? Array(before[block * 32..<(block + 1) * 32])
                #expect(got == want, "tensor \(tensor) block \(block)")
            }
        }
        try decoder.deallocateCache(source)
        try decoder.deallocateBlocksCache(sourceBlocks)
        try prompt.unregisterCache(registered.cacheID)
        try prompt.unregisterCache(registeredBlocks.cacheID)
        try pair.finish()
    }

    @Test(arguments: [TestTransport.sharedMemory, .ucx, .ucxTCP])
    func pullsLandInARegisteredDestination(transport: TestTransport) throws {
        let pair = try LinkedPair(transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let source = try prompt.allocateCache(Self.desc, keys: [key(1)])
        fill(source, seed: 70, ints: 256)
        let blocksKey = BlocksCacheKey(clusterID: 1, modelID: 5)
        let sourceBlocks = try prompt.allocateBlocksCache(Self.blocksDesc, key: blocksKey)
        fill(sourceBlocks, seed: 80, ints: 256)
        let (memory, blocksMemory) = (
            CallerMemory(tensors: 2, bytes: Self.tensorBytes), CallerMemory(tensors: 2, bytes: Self.tensorBytes)
        )
        defer {
            memory.free()
            blocksMemory.free()
        }
        // Host memory (the emulator checks that device memory came from its runtime), not remote-accessible: only
        // this side writes it.
        var (desc, blocksDesc) = (Self.desc, Self.blocksDesc)
        (desc.placement, blocksDesc.placement) = (.host, .host)
        let destination = try decoder.registerCache(desc, addresses: memory.addresses, remoteAccessible: false)
        let destinationBlocks = try decoder.registerBlocksCache(
            blocksDesc, addresses: blocksMemory.addresses, remoteAccessible: false)
        try decoder.pullCache(key(1), into: destination, batchIndex: 2)
        try decoder.pullBlocks(blocksKey, into: destinationBlocks, srcBlocks: [3, 4], dstBlocks: [0, 6])
        for tensor in 0..<2 {
            let pulled = readInt32s(at: memory.addresses[tensor], count: 256)
            #expect(Array(pulled[128..<192]) == (0..<64).map { 70 + Int32(tensor * 10_000 + $0) })
            #expect(pulled[..<128].allSatisfy { $0 == 0 } && pulled[192...].allSatisfy { $0 == 0 })
            let blocks = readInt32s(at: blocksMemory.addresses[tensor], count: 256)
            #expect(Array(blocks[0..<32]) == (0..<32).map { 80 + Int32(tensor * 10_000 + 96 + $0) })
            #expect(Array(blocks[192..<224]) == (0..<32).map { 80 + Int32(tensor * 10_000 + 128 + $0) })
        }
        try decoder.unregisterCache(destination.cacheID)
        try decoder.unregisterCache(destinationBlocks.cacheID)
        try prompt.deallocateBlocksCache(sourceBlocks)
        try prompt.deallocateCache(source)
        try pair.finish()
    }

    /// The memfd mapping cannot map memory the owner did not allocate from its pools: a pull of it is refused,
    /// naming the cause and UCX; automatic selection links over UCX when such a cache exists at link time, and
    /// keeps the mapping for one that is not remote-accessible.
    @Test func sharedMemoryRefusesRegisteredMemoryAndAutomaticSelectionPicksUCX() throws {
        let memory = CallerMemory(tensors: 2, bytes: Self.tensorBytes)
        defer { memory.free() }
        memory.fill(seed: 3)
        let shm = try LinkedPair(link: false, transport: .sharedMemory)
        let registered = try shm.prompt.cacheManager.registerCache(
            Self.desc, addresses: memory.addresses, keys: [key(1)])
        Self.link(shm)
        #expect(shm.decoder.linkTransport(toCluster: 1) == .sharedMemory)
        let decoder = try shm.decoder.cacheManager
        let destination = try decoder.allocateCache(Self.desc)
        expectRefusal(
            .featureNotEnabled, mentioning: ["caller memory", "memfd", "DATADIST_TRANSPORT=ucx"], in: decoder
        ) {
            try decoder.pullCache(key(1), into: destination)
        }
        expectRefusal(.featureNotEnabled, mentioning: ["caller memory", "memfd", "UCX"], in: decoder) {
            try decoder.pullCache(
                CacheKeyByIdAndIndex(clusterID: 1, cacheID: registered.cacheID, batchIndex: 1), into: destination)
        }
        try decoder.deallocateCache(destination)
        try shm.prompt.cacheManager.unregisterCache(registered.cacheID)
        try shm.finish()

        for remoteAccessible in [true, false] {
            let pair = try LinkedPair(
                link: false, transport: .sharedMemory, configurePrompt: { $0.transport = .automatic },
                configureDecoder: { $0.transport = .automatic })
            let prompt = try pair.prompt.cacheManager
            let cache = try prompt.registerCache(
                Self.desc, addresses: memory.addresses, keys: [key(1)], remoteAccessible: remoteAccessible)
            Self.link(pair)
            #expect(pair.decoder.linkTransport(toCluster: 1) == (remoteAccessible ? .ucx : .sharedMemory))
            let decoder = try pair.decoder.cacheManager
            let destination = try decoder.allocateCache(Self.desc)
            if remoteAccessible {
                try decoder.pullCache(key(1), into: destination, batchIndex: 1)
                #expect(
                    readInt32s(at: destination.tensorAddresses[1] + 256, count: 64)
                        == Self.pattern(seed: 3, tensor: 1, offset: 0, count: 64))
            } else {
                expectRefusal(.featureNotEnabled, mentioning: ["remoteAccessible false"], in: decoder) {
                    try decoder.pullCache(key(1), into: destination)
                }
            }
            try decoder.deallocateCache(destination)
            try prompt.unregisterCache(cache.cacheID)
            try pair.finish()
        }
    }

    /// Memory registered after linking is not remotely accessible over that link (the reference's rule): refused
    /// saying so; a new link reaches it.
    @Test(arguments: overUCX) func memoryRegisteredAfterLinkingNeedsANewLink(transport: TestTransport) throws {
        let pair = try LinkedPair(transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let memory = CallerMemory(tensors: 2, bytes: Self.tensorBytes)
        defer { memory.free() }
        memory.fill(seed: 11)
        let registered = try prompt.registerCache(Self.desc, addresses: memory.addresses, keys: [key(4)])
        let destination = try decoder.allocateCache(Self.desc)
        expectRefusal(.featureNotEnabled, mentioning: ["registered after the link", "link again"], in: decoder) {
            try decoder.pullCache(key(4), into: destination)
        }
        #expect(pair.decoder.unlinkClusters([pair.promptInfo]) == (.success, [.success]))
        Self.link(pair)
        try decoder.pullCache(key(4), into: destination)
        #expect(
            readInt32s(at: destination.tensorAddresses[0], count: 64)
                == Self.pattern(seed: 11, tensor: 0, offset: 0, count: 64))
        try decoder.deallocateCache(destination)
        try prompt.unregisterCache(registered.cacheID)
        try pair.finish()
    }

    /// Two registrations of the same memory share its regions: unregistering one leaves the other reachable.
    @Test func identicalRegistrationsShareTheirRegionsUntilTheLastGoes() throws {
        let pair = try LinkedPair(link: false, transport: .ucxTCP)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let memory = CallerMemory(tensors: 2, bytes: Self.tensorBytes)
        defer { memory.free() }
        memory.fill(seed: 60)
        let first = try prompt.registerCache(Self.desc, addresses: memory.addresses, keys: [key(1)])
        let second = try prompt.registerCache(Self.desc, addresses: memory.addresses, keys: [key(2)])
        #expect(prompt.store.table.withLock { $0.registeredRegions.published.count } == 2)
        Self.link(pair)
        try prompt.unregisterCache(first.cacheID)
        let destination = try decoder.allocateCache(Self.desc)
        try decoder.pullCache(key(2), into: destination, batchIndex: 1)
        #expect(
            readInt32s(at: destination.tensorAddresses[1] + 256, count: 64)
                == Self.pattern(seed: 60, tensor: 1, offset: 0, count: 64))
        try prompt.unregisterCache(second.cacheID)
        #expect(prompt.store.table.withLock { $0.registeredRegions.published.isEmpty })
        try decoder.deallocateCache(destination)
        try pair.finish()
    }

    /// An unregister while a peer's pull of the cache has copied but not yet released waits for that release;
    /// later pulls find no cache.
    @Test(arguments: overUCX) func unregisterWaitsForAPeersTransferInFlight(transport: TestTransport) throws {
        let pair = try LinkedPair(link: false, transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let memory = CallerMemory(tensors: 2, bytes: 256)
        defer { memory.free() }
        memory.fill(seed: 21)
        let registered = try prompt.registerCache(
            ExactlyOnceTests.desc, addresses: memory.addresses, keys: [ExactlyOnceTests.key])
        Self.link(pair)
        let destination = try decoder.allocateCache(ExactlyOnceTests.desc)
        let held = try ExactlyOnceTests.HeldPull(decoder, into: destination)
        #expect(prompt.audit().pinnedByPeers == 1)
        let returned = Lock(false)
        let unregistering = TestThread {
            do {
                try prompt.unregisterCache(registered.cacheID)
            } catch {
                return ["unregister: \(error)"]
            }
            returned.withLock { $0 = true }
            return []
        }
        try unregistering.start()
        usleep(200_000)
        #expect(!returned.withLock { $0 }, "unregister returned while a peer's pull was in flight")
        #expect(held.resume() == .success)
        unregistering.join()
        #expect(unregistering.failures.isEmpty, "\(unregistering.failures)")
        #expect(returned.withLock { $0 } && prompt.audit().pinnedByPeers == 0)
        for tensor in 0..<2 {
            #expect(
                readInt32s(at: destination.tensorAddresses[tensor], count: 64)
                    == Self.pattern(seed: 21, tensor: tensor, offset: 0, count: 64))
        }
        expectRefusal(.kvCacheNotExist, in: decoder) { try decoder.pullCache(ExactlyOnceTests.key, into: destination) }
        expectRefusal(.kvCacheNotExist, in: decoder) {
            try decoder.pullCache(
                CacheKeyByIdAndIndex(clusterID: 1, cacheID: registered.cacheID, batchIndex: 0), into: destination)
        }
        try decoder.deallocateCache(destination)
        try pair.finish()
    }

    /// A peer that holds its grant past the owner's `syncKVTimeout` does not stall an unregister for ever: its
    /// link is closed (its transfer fails) and the unregister returns with nothing pinned.
    @Test(arguments: overUCX) func unregisterFailsATransferThatOutlastsTheTimeout(transport: TestTransport) throws {
        let pair = try LinkedPair(timeout: .milliseconds(300), link: false, transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let memory = CallerMemory(tensors: 2, bytes: 256)
        defer { memory.free() }
        let registered = try prompt.registerCache(
            ExactlyOnceTests.desc, addresses: memory.addresses, keys: [ExactlyOnceTests.key])
        Self.link(pair)
        let destination = try decoder.allocateCache(ExactlyOnceTests.desc)
        let link = try decoder.links.link(to: 1, for: "test")
        let held = try ExactlyOnceTests.HeldPull(decoder, into: destination)
        let started = ContinuousClock.now
        try prompt.unregisterCache(registered.cacheID)
        #expect(ContinuousClock.now - started >= .milliseconds(300), "it waited for the transfer first")
        #expect(prompt.audit().pinnedByPeers == 0)
        // The owner closed the link; the release fails once this side has seen that (a send right after the peer's
        // close can still go out).
        _ = eventually(within: .seconds(10)) { !link.channel.isOpen }
        #expect(held.resume() == .linkFailed, "the pull's release could not go out: it failed")
        try decoder.deallocateCache(destination)
        try pair.finish()
    }

    /// Pulls racing an unregister, after which the memory is freed at once: each pull either succeeded with the
    /// right bytes or found no cache; nothing crashes, nothing stays pinned.
    @Test(arguments: overUCX) func pullsRacingAnUnregisterNeverTouchFreedMemory(transport: TestTransport) throws {
        let pair = try LinkedPair(link: false, transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let memory = CallerMemory(tensors: 2, bytes: 256 << 10)
        memory.fill(seed: 5)
        let desc = CacheDesc(numTensors: 2, shape: [1, 64 << 10], dataType: .int32)
        let registered = try prompt.registerCache(desc, addresses: memory.addresses, keys: [key(1)])
        Self.link(pair)
        let destination = try decoder.allocateCache(desc)
        let succeeded = Lock(0)
        let puller = TestThread {
            var failures: [String] = []
            for _ in 0..<10_000 {
                do throws(LLMError) {
                    try decoder.pullCache(key(1), into: destination)
                } catch {
                    if error.status != .kvCacheNotExist { failures.append("\(error)") }
                    break
                }
                let head = readInt32s(at: destination.tensorAddresses[1], count: 16)
                let tail = readInt32s(at: destination.tensorAddresses[1] + UInt((256 << 10) - 64), count: 16)
                if head != Self.pattern(seed: 5, tensor: 1, offset: 0, count: 16)
                    || tail != Self.pattern(seed: 5, tensor: 1, offset: (256 << 10) - 64, count: 16)
                {
                    failures.append("a pull that succeeded brought other bytes")
                }
                succeeded.withLock { $0 += 1 }
            }
            return failures
        }
        try puller.start()
        #expect(eventually(within: .seconds(10)) { succeeded.withLock { $0 } >= 3 })
        try prompt.unregisterCache(registered.cacheID)
        memory.free()
        puller.join()
        #expect(puller.failures.isEmpty, "\(puller.failures)")
        #expect(prompt.audit().pinnedByPeers == 0)
        try decoder.deallocateCache(destination)
        try pair.finish()
    }
}
