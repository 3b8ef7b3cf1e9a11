import BlockPool
import DeviceRuntime
import LinkLayer
import Testing

@testable import DataDist

/// The owner's grants of pushes to raw addresses (`ResolveTarget.address`, what `TransferConfig` uses): exactly
/// the bytes asked, inside one tensor of a cache that accepts pushes, never a read.
@Suite struct AddressGrantTests {
    static func push(_ address: UInt, bytes: UInt64, write: Bool = true, tensors: Range<Int> = 0..<1) -> ResolveRequest
    {
        ResolveRequest(
            target: .address(UInt64(address)), write: write, tensors: tensors, bytesPerSlot: bytes,
            requesterKind: .device, requesterIsBlocks: false, blocks: [])
    }

    @Test func grantsExactlyTheBytesInsideOneTensorAndRefusesEverythingElse() throws {
        try withCacheManager(
            configure: { $0.enableRemoteCacheAccessible = true },
            { manager in
                let policy = manager.links.policy
                let cache = try manager.allocateCache(OwnerPolicyTests.desc)  // 2 tensors of 256 bytes
                let pool = try #require(manager.resources.devicePool)
                let address = cache.tensorAddresses[1] + 100
                let grant = try policy.resolve(Self.push(address, bytes: 156), link: 3).get()
                #expect(
                    grant.extents == [.init(regionID: 0, offset: UInt64(address - pool.region.address), length: 156)])
                #expect(manager.audit().pinnedByPeers == 1)
                #expect(policy.release(ReleaseNotice(pinID: grant.pinID, succeeded: true), link: 3))
                let refusals: [(ResolveRequest, String)] = [
                    (Self.push(address, bytes: 157), "past the end"),
                    (Self.push(address, bytes: 16, write: false), "pushes only"),
                    (Self.push(address, bytes: 16, tensors: 0..<2), "one tensor"),
                    (Self.push(address, bytes: 0), "one tensor and 1 or more bytes"),
                    (Self.push(pool.region.address + UInt(pool.region.size) - 8, bytes: 8), "no cache"),
                    (Self.push(8, bytes: 8), "no cache"),
                ]
                for (request, words) in refusals {
                    let outcome = policy.resolve(request, link: 3)
                    guard case .failure(let error) = outcome else {
                        Issue.record("granted \(request)")
                        continue
                    }
                    #expect(error.status == .paramInvalid && error.message.contains(words), "\(error)")
                }
                #expect(manager.audit().pinnedByPeers == 0)
                try manager.deallocateCache(cache)
            })
    }

    @Test func aCacheOfAnInstanceWithoutRemoteAccessTakesNoPush() throws {
        try withCacheManager { manager in
            let cache = try manager.allocateCache(OwnerPolicyTests.desc)
            let outcome = manager.links.policy.resolve(Self.push(cache.tensorAddresses[0], bytes: 8), link: 1)
            guard case .failure(let error) = outcome else {
                Issue.record("granted a push without remote access")
                return
            }
            #expect(error.status == .paramInvalid && error.message.contains("does not accept pushes"), "\(error)")
            try manager.deallocateCache(cache)
        }
    }

    /// Over the wire, on each data plane: a push to a raw address inside a tensor writes exactly its bytes there,
    /// nothing before or after them.
    @Test(arguments: TestTransport.transfers) func aRawPushWritesExactlyTheGrantedBytes(transport: TestTransport)
        throws
    {
        let pair = try LinkedPair(remoteAccessible: true, transport: transport)
        let (prompt, decoder) = (try pair.prompt.cacheManager, try pair.decoder.cacheManager)
        let target = try prompt.allocateCache(CacheDesc(numTensors: 2, shape: [1, 16], dataType: .int32))
        fill(target, seed: 0, ints: 16)
        let source = try decoder.allocateCache(CacheDesc(numTensors: 2, shape: [1, 8], dataType: .int32))
        fill(source, seed: 300, ints: 8)
        let addresses = target.tensorAddresses.map { $0 + 16 }  // 32 bytes from int 4 of each tensor
        let task = try decoder.transferCacheAsync(
            source, synchronizer: ScriptedSynchronizer(),
            configs: [TransferConfig(destinationClusterID: 1, destinationAddresses: addresses)])
        #expect(task.results() == [.success])
        for tensor in 0..<2 {
            #expect(holds(filled(seed: 300, tensor: tensor, count: 8), at: addresses[tensor]))
            #expect(holds(filled(seed: 0, tensor: tensor, count: 4), at: target.tensorAddresses[tensor]))
            #expect(holds(filled(seed: 0, tensor: tensor, from: 12, count: 4), at: addresses[tensor] + 32))
        }
        try decoder.deallocateCache(source)
        try prompt.deallocateCache(target)
        try pair.finish()
    }

    @Test func theTargetRoundTripsOnTheWire() throws {
        let request = Self.push(0xdead_beef, bytes: 42)
        #expect(try ResolveRequest(payload: request.encoded()) == request)
    }
}
