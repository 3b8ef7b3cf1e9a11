import DataDistTestSupport
import DeviceRuntime
import Foundation
import Testing

@testable import DataDist

/// What reaches a peer over UCX without IPC: a library without the IPC symbols stages its device pool as one with
/// them does, and the ACL backend's pinned host pool goes to UCX directly (no staging copy on its side).
extension ACLUCXStagingTests {
    @Test("without the IPC symbols, pulls, pushes and blocks over UCX stage the device pool: every byte verified")
    func noIPCStagesOverUCX() throws {
        let pair = try StagedACLPair(remoteAccessible: true, library: "lib_FakeAscendCLNoIPC.so")
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        #expect(!prompt.store.sharesDevicePoolByKey)
        let bytes = UInt64(4 * Self.ints * 4)
        let source = try prompt.allocateCache(Self.desc)
        fill(source, seed: 21)
        let destination = try decoder.allocateCache(Self.desc)
        let sourceSlot = CacheKeyByIdAndIndex(clusterID: 1, cacheID: source.cacheID, batchIndex: 0)
        var copies = try pair.copies { try decoder.pullCache(sourceSlot, into: destination) }
        #expect(matches(destination, seed: 21))
        #expect(copies.toHost == bytes && copies.toDevice == bytes && copies.deviceToDevice == 0)
        // A push into a slot of the prompt, by id and index.
        let target = try prompt.allocateCache(Self.desc)
        fill(destination, seed: 42)
        let slot = CacheKeyByIdAndIndex(clusterID: 1, cacheID: target.cacheID, batchIndex: 0)
        copies = try pair.copies { try decoder.pushCache(to: slot, from: destination) }
        #expect(matches(target, seed: 42))
        #expect(copies.toHost == bytes && copies.toDevice == bytes)
        // Blocks both ways.
        let blockDesc = CacheDesc(numTensors: 1, shape: [4, 16_384], dataType: .int32)
        let blocksKey = BlocksCacheKey(clusterID: 1)
        let remoteBlocks = try prompt.allocateBlocksCache(blockDesc, key: blocksKey)
        writeInt32s((0..<65_536).map { Int32(7 + $0) }, at: remoteBlocks.tensorAddresses[0])
        let localBlocks = try decoder.allocateBlocksCache(blockDesc)
        try decoder.pullBlocks(blocksKey, into: localBlocks, srcBlocks: [2], dstBlocks: [1])
        #expect(
            Array(readInt32s(at: localBlocks.tensorAddresses[0], count: 65_536)[16_384..<32_768])
                == (32_768..<49_152).map { Int32(7 + $0) })
        try decoder.pushBlocks(to: blocksKey, from: localBlocks, srcBlocks: [1], dstBlocks: [0])
        #expect(
            Array(readInt32s(at: remoteBlocks.tensorAddresses[0], count: 16_384))
                == (32_768..<49_152).map { Int32(7 + $0) })
        let registered = try pair.registered()
        #expect(!isDevice(source, in: registered) && !isDevice(target, in: registered))
        for cache in [source, target] { try prompt.deallocateCache(cache) }
        try prompt.deallocateBlocksCache(remoteBlocks)
        try decoder.deallocateCache(destination)
        try decoder.deallocateBlocksCache(localBlocks)
        try pair.finish()
    }

    @Test("without the IPC symbols, an automatic transport on one host links over UCX and stages")
    func noIPCAutomaticPicksUCX() throws {
        let pair = try StagedACLPair(library: "lib_FakeAscendCLNoIPC.so", transport: .automatic)
        #expect(pair.decoder.linkTransport(toCluster: 1) == .ucx)
        #expect(pair.prompt.linkTransport(toCluster: 2) == .ucx)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let key = CacheKey(promptClusterID: 1, reqID: 4)
        let source = try prompt.allocateCache(Self.desc, keys: [key])
        fill(source, seed: 5)
        let destination = try decoder.allocateCache(Self.desc)
        let copies = try pair.copies { try decoder.pullCache(key, into: destination) }
        #expect(matches(destination, seed: 5))
        #expect(copies.toHost == UInt64(4 * Self.ints * 4) && copies.deviceToDevice == 0)
        try prompt.deallocateCache(source)
        try decoder.deallocateCache(destination)
        try pair.finish()
    }

    @Test("without the IPC symbols, a shared-memory link refuses a device-pool pull naming the missing symbol")
    func noIPCSharedMemoryRefuses() throws {
        let pair = try StagedACLPair(library: "lib_FakeAscendCLNoIPC.so", transport: .sharedMemory)
        #expect(pair.decoder.linkTransport(toCluster: 1) == .sharedMemory)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let key = CacheKey(promptClusterID: 1, reqID: 6)
        let source = try prompt.allocateCache(Self.desc, keys: [key])
        let destination = try decoder.allocateCache(Self.desc)
        let before = prompt.audit()
        do {
            try decoder.pullCache(key, into: destination)
            Issue.record("a device-pool pull over shared memory succeeded without IPC")
        } catch {
            #expect(error.status == .featureNotEnabled)
            #expect(error.message.contains("aclrtIpcMemGetExportKey"), "\(error)")
            #expect(error.message.contains("device pool"), "\(error)")
        }
        #expect(prompt.audit() == before, "the refusal took nothing")
        #expect(pair.count("aclrtMemcpy") == 0 && pair.count("aclrtMemcpyAsync") == 0)
        try prompt.removeCacheKey(key)
        try prompt.deallocateCache(source)
        try decoder.deallocateCache(destination)
        try pair.finish()
    }

    @Test("the ACL host pool goes to UCX directly: pulls from and pushes into it copy only on the device side")
    func hostPoolOverUCX() throws {
        let pair = try StagedACLPair(remoteAccessible: true, hostPool: 4 << 20)
        // In a scope of its own: the managers hold the pools, freed only when the last reference goes.
        try hostPoolTransfers(pair)
        try pair.finish()
    }

    private func hostPoolTransfers(_ pair: StagedACLPair) throws {
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let hostDesc = CacheDesc(numTensors: 4, shape: [1, 196_608], dataType: .int32, placement: .host)
        let bytes = UInt64(4 * Self.ints * 4)
        let hostSource = try prompt.allocateCache(hostDesc)
        fill(hostSource, seed: 9)
        let destination = try decoder.allocateCache(Self.desc)
        let slot = CacheKeyByIdAndIndex(clusterID: 1, cacheID: hostSource.cacheID, batchIndex: 0)
        var copies = try pair.copies { try decoder.pullCache(slot, into: destination) }
        #expect(matches(destination, seed: 9))
        #expect(copies.toHost == 0 && copies.toDevice == bytes, "the owner sends from its host pool as it is")
        #expect(isDevice(hostSource, in: prompt.links.ucx.registeredRanges), "registered with UCX")
        // A push from device memory here into the prompt's host pool: staged here only.
        fill(destination, seed: 33)
        copies = try pair.copies { try decoder.pushCache(to: slot, from: destination) }
        #expect(matches(hostSource, seed: 33))
        #expect(copies.toHost == bytes && copies.toDevice == 0)
        try prompt.deallocateCache(hostSource)
        try decoder.deallocateCache(destination)
    }

    @Test("over the shared-memory ACL path the host pool is still refused, pointing at UCX")
    func hostPoolOverIPCIsRefused() throws {
        let pair = try StagedACLPair(transport: .sharedMemory, hostPool: 1 << 20)
        try refusedHostPoolPull(pair)
        try pair.finish()
    }

    private func refusedHostPoolPull(_ pair: StagedACLPair) throws {
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let key = CacheKey(promptClusterID: 1, reqID: 8)
        let source = try prompt.allocateCache(
            CacheDesc(numTensors: 1, shape: [1, 16], dataType: .int32, placement: .host), keys: [key])
        let destination = try decoder.allocateCache(CacheDesc(numTensors: 1, shape: [1, 16], dataType: .int32))
        do {
            try decoder.pullCache(key, into: destination)
            Issue.record("a host-pool pull over shared memory succeeded")
        } catch {
            #expect(error.status == .featureNotEnabled)
            #expect(error.message.contains("host pool") && error.message.contains("UCX"), "\(error)")
        }
        try prompt.removeCacheKey(key)
        try prompt.deallocateCache(source)
        try decoder.deallocateCache(destination)
    }
}

/// An ACL instance linked to an emulator instance over UCX: the ACL side stages its device pool, the emulator's
/// pools are host memory that UCX sends and receives directly.
extension ACLUCXStagingTests {
    @Test("an ACL instance and an emulator instance linked over UCX: pulls and pushes both ways, every byte verified")
    func aclAndEmulatorOverUCX() throws {
        let fake = try PrivateFakeACL(tag: "mixed")
        let acl = LLMDataDist(role: .prompt, clusterID: 1)
        let emulator = LLMDataDist(role: .decoder, clusterID: 2)
        var config = LLMConfig()
        config.memoryPool = MemoryPoolConfig(size: 16 << 20)
        config.transport = .ucx
        config.enableRemoteCacheAccessible = true
        config.listenAddress = IPEndpoint(host: "127.0.0.1", port: 0)
        try acl.initialize(
            config,
            environment: ["DATADIST_BACKEND": "acl", "DATADIST_ACL_LIBRARY": fake.path, "UCX_TLS": "tcp"])
        config.listenAddress = nil
        try emulator.initialize(config, environment: ["DATADIST_BACKEND": "emulator", "UCX_TLS": "tcp"])
        let info = LLMClusterInfo(remoteClusterID: 1, remoteIPInfos: [acl.listenEndpoint!])
        #expect(emulator.linkClusters([info], timeout: .seconds(5)).0 == .success)
        try {
            let owner = try acl.cacheManager
            let requester = try emulator.cacheManager
            #expect(owner.resources.runtime.backend == .acl && requester.resources.runtime.backend != .acl)
            let source = try owner.allocateCache(Self.desc)
            fill(source, seed: 61)
            let destination = try requester.allocateCache(Self.desc)
            let slot = CacheKeyByIdAndIndex(clusterID: 1, cacheID: source.cacheID, batchIndex: 0)
            let before = fake.copiedBytes(.deviceToHost)
            try requester.pullCache(slot, into: destination)
            #expect(matches(destination, seed: 61))
            #expect(fake.copiedBytes(.deviceToHost) - before == UInt64(4 * Self.ints * 4), "staged on the ACL side")
            fill(destination, seed: 62)
            try requester.pushCache(to: slot, from: destination)
            #expect(matches(source, seed: 62))
            try owner.deallocateCache(source)
            try requester.deallocateCache(destination)
            #expect(owner.audit().isClean && requester.audit().isClean)
        }()
        _ = emulator.unlinkClusters([info])
        acl.finalize()
        emulator.finalize()
    }
}

extension ACLUCXStagingTests {
    @Test(
        "an ACL instance and an emulator instance on one host are refused at link time over shared memory, either way",
        arguments: [true, false])
    func aclAndEmulatorOverSharedMemoryAreRefused(aclListens: Bool) throws {
        let aclEnvironment = [
            "DATADIST_BACKEND": "acl",
            "DATADIST_ACL_LIBRARY": TestPaths.builtProducts.appendingPathComponent("lib_FakeAscendCL.so").path,
        ]
        let server = LLMDataDist(role: .prompt, clusterID: 1)
        let client = LLMDataDist(role: .decoder, clusterID: 2)
        var config = LLMConfig()
        config.memoryPool = MemoryPoolConfig(size: 1 << 20)
        config.transport = .sharedMemory
        config.listenAddress = IPEndpoint(host: "127.0.0.1", port: 0)
        try server.initialize(config, environment: aclListens ? aclEnvironment : ["DATADIST_BACKEND": "emulator"])
        config.listenAddress = nil
        try client.initialize(config, environment: aclListens ? ["DATADIST_BACKEND": "emulator"] : aclEnvironment)
        let info = LLMClusterInfo(remoteClusterID: 1, remoteIPInfos: [server.listenEndpoint!])
        let (status, statuses) = client.linkClusters([info], timeout: .seconds(5))
        #expect(status == .featureNotEnabled && statuses == [.featureNotEnabled], "\(status) \(statuses)")
        #expect(client.linkTransport(toCluster: 1) == nil && server.linkTransport(toCluster: 2) == nil)
        #expect(try server.cacheManager.audit().isClean && client.cacheManager.audit().isClean)
        server.finalize()
        client.finalize()
    }
}
