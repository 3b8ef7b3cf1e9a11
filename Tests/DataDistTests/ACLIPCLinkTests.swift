import DataDist
import DataDistTestSupport
import DeviceRuntime
import Foundation
import Testing

/// Links on the ACL backend over a private copy of the fake vendor library: the device pools go by IPC key, and
/// every key imported is closed again, by unlinking or when the peer goes away.
@Suite("ACL IPC links", .serialized)
struct ACLIPCLinkTests {
    /// Two instances on one private copy of the fake (its counters are then this test's alone).
    private struct Pair {
        let prompt = LLMDataDist(role: .prompt, clusterID: 1)
        let decoder = LLMDataDist(role: .decoder, clusterID: 2)
        let fake: PrivateFakeACL
        let info: LLMClusterInfo

        init() throws {
            fake = try PrivateFakeACL(tag: "ipc")
            let path = fake.path
            let environment = ["DATADIST_BACKEND": "acl", "DATADIST_ACL_LIBRARY": path]
            var config = LLMConfig()
            config.memoryPool = MemoryPoolConfig(size: 4 << 20)
            config.listenAddress = IPEndpoint(host: "127.0.0.1", port: 0)
            try prompt.initialize(config, environment: environment)
            config.listenAddress = nil
            try decoder.initialize(config, environment: environment)
            info = LLMClusterInfo(remoteClusterID: 1, remoteIPInfos: [prompt.listenEndpoint!])
            let (status, statuses) = decoder.linkClusters([info], timeout: .seconds(3))
            #expect(status == .success && statuses == [.success])
        }

        func count(_ symbol: String) -> UInt64 { fake.callCount(symbol) }

        func open(_ what: String) -> UInt64 { fake.openCount(what) }
    }

    @Test("a pull copies device to device from the imported pool; unlinking closes every import, then every export")
    func pullAndUnlink() throws {
        let pair = try Pair()
        // Each side exported its device pool for the other and imported the other's.
        #expect(pair.count("aclrtIpcMemImportByKey") == 2)
        #expect(pair.open("imports") == 2 && pair.open("exports") == 2)
        let prompt = try pair.prompt.cacheManager
        let decoder = try pair.decoder.cacheManager
        let desc = CacheDesc(numTensors: 2, shape: [1, 1024], dataType: .int32)
        let key = CacheKey(promptClusterID: 1, reqID: 7)
        let source = try prompt.allocateCache(desc, keys: [key])
        for (tensor, address) in source.tensorAddresses.enumerated() {
            writeInt32s((0..<1024).map { Int32(tensor * 100_000 + $0) }, at: address)
        }
        let destination = try decoder.allocateCache(desc)
        try decoder.pullCache(key, into: destination)
        for (tensor, address) in destination.tensorAddresses.enumerated() {
            #expect(readInt32s(at: address, count: 1024) == (0..<1024).map { Int32(tensor * 100_000 + $0) })
        }
        try prompt.deallocateCache(source)
        try decoder.deallocateCache(destination)
        _ = pair.decoder.unlinkClusters([pair.info])
        #expect(eventually { pair.open("imports") == 0 && pair.open("exports") == 0 })
        #expect(pair.count("aclrtIpcMemClose") == 4)
        for instance in [pair.prompt, pair.decoder] {
            #expect(try instance.cacheManager.audit().isClean)
            instance.finalize()
        }
    }

    @Test("a peer that goes away without unlinking: the survivor closes what it imported")
    func peerGoesAway() throws {
        let pair = try Pair()
        pair.prompt.finalize()
        #expect(eventually(within: .seconds(5)) { pair.open("imports") == 0 && pair.open("exports") == 0 })
        #expect(try pair.decoder.cacheManager.audit().isClean)
        pair.decoder.finalize()
        #expect(pair.count("aclrtIpcMemImportByKey") == 2)
    }
}
