import DataDistTestSupport
import DeviceRuntime
import Foundation
import Testing

@testable import DataDist

/// Two instances on one private copy of the fake (`library`: its counters are this test's alone), linked over
/// `transport` (UCX on TCP unless told otherwise).
struct StagedACLPair {
    let prompt = LLMDataDist(role: .prompt, clusterID: 1)
    let decoder = LLMDataDist(role: .decoder, clusterID: 2)
    let fake: PrivateFakeACL
    let info: LLMClusterInfo
    let environment: [String: String]

    init(
        remoteAccessible: Bool = false, staging: String = "256KiB",
        faults: (prompt: String?, decoder: String?) = (nil, nil), library: String = "lib_FakeAscendCL.so",
        transport: TransportPreference = .ucx, hostPool: Int? = nil
    ) throws {
        fake = try PrivateFakeACL(tag: "stage", library: library)
        let path = fake.path
        environment = [
            "DATADIST_BACKEND": "acl", "DATADIST_ACL_LIBRARY": path, "UCX_TLS": "tcp",
            "DATADIST_UCX_STAGING_BYTES": staging,
        ]
        var config = LLMConfig()
        config.memoryPool = MemoryPoolConfig(size: 16 << 20)
        config.transport = transport
        config.hostMemoryPool = hostPool.map { MemoryPoolConfig(size: $0) }
        config.enableRemoteCacheAccessible = remoteAccessible
        config.listenAddress = IPEndpoint(host: "127.0.0.1", port: 0)
        try prompt.initialize(
            config, environment: environment.merging(faults.prompt.map { ["DATADIST_FAULTS": $0] } ?? [:]) { $1 })
        config.listenAddress = nil
        try decoder.initialize(
            config, environment: environment.merging(faults.decoder.map { ["DATADIST_FAULTS": $0] } ?? [:]) { $1 })
        info = LLMClusterInfo(remoteClusterID: 1, remoteIPInfos: [prompt.listenEndpoint!])
        let (status, statuses) = decoder.linkClusters([info], timeout: .seconds(5))
        #expect(status == .success && statuses == [.success])
    }

    func count(_ symbol: String) -> UInt64 { fake.callCount(symbol) }

    func open(_ what: String) -> UInt64 { fake.openCount(what) }

    func copied(_ kind: MemcpyKind) -> UInt64 { fake.copiedBytes(kind) }

    /// Bytes copied per direction while `body` ran.
    func copies(during body: () throws -> Void) rethrows -> (
        toHost: UInt64, toDevice: UInt64, deviceToDevice: UInt64
    ) {
        let before = (copied(.deviceToHost), copied(.hostToDevice), copied(.deviceToDevice))
        try body()
        return (
            copied(.deviceToHost) - before.0, copied(.hostToDevice) - before.1, copied(.deviceToDevice) - before.2
        )
    }

    /// What UCX registered on both sides (`ucp_mem_map`): none of it may be device memory.
    func registered() throws -> [Range<UInt>] {
        try prompt.cacheManager.links.ucx.registeredRanges + decoder.cacheManager.links.ucx.registeredRanges
    }

    /// Unlinks, checks both audits, finalizes; then nothing of the fake is left open.
    func finish() throws {
        _ = decoder.unlinkClusters([info])
        for instance in [prompt, decoder] {
            let audit = try instance.cacheManager.audit()
            #expect(audit.isClean, "\(audit)")
            instance.finalize()
        }
        #expect(eventually { open("host") == 0 && open("streams") == 0 }, "\(open("host")) \(open("streams"))")
        #expect(count("aclrtMallocHost") == count("aclrtFreeHost"))
        #expect(count("aclrtCreateStream") == count("aclrtDestroyStream"))
    }
}
