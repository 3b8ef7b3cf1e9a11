import BlockPool
import DeviceRuntime
import LinkLayer
import Testing

@testable import DataDist

/// The owner's policy on its own: one instance, no socket, no peer. Requests are the link layer's typed
/// messages, answered straight from the cache table.
@Suite struct OwnerPolicyTests {
    static let desc = CacheDesc(numTensors: 2, shape: [4, 16], dataType: .int32)  // 64-byte slots

    static func pull(
        _ target: ResolveTarget, tensors: Range<Int> = 0..<2, bytes: UInt64 = 64, write: Bool = false,
        requester: MemoryKind = .device, blocks: [UInt32] = []
    ) -> ResolveRequest {
        ResolveRequest(
            target: target, write: write, tensors: tensors, bytesPerSlot: bytes, requesterKind: requester,
            requesterIsBlocks: !blocks.isEmpty, blocks: blocks)
    }

    static func key(_ reqID: UInt64) -> ResolveTarget { .key(reqID: reqID, prefixID: .max, modelID: 0) }

    static func status(of outcome: Result<Grant, LLMError>) -> LLMStatusCode? {
        if case .failure(let error) = outcome { return error.status }
        return nil
    }

    @Test func aGrantNamesExactlyTheSlotAndAPullTakesTheKeyUntilItsRelease() throws {
        try withCacheManager { manager in
            let policy = manager.links.policy
            let cache = try manager.allocateCache(
                Self.desc,
                keys: [
                    CacheKey(promptClusterID: 1, reqID: 10),
                    CacheKey(promptClusterID: 1, reqID: 11),
                ])
            let pool = try #require(manager.resources.devicePool)
            let grant = try policy.resolve(Self.pull(Self.key(11)), link: 5).get()
            #expect(grant.extents.count == 2 && grant.stride == 64 && grant.kind == .device && !grant.isBlocks)
            for (tensor, extent) in grant.extents.enumerated() {
                #expect(extent.offset == UInt64(cache.tensorAddresses[tensor] - pool.region.address) + 64)
                #expect(extent.length == 64)
            }
            #expect(manager.audit().pinnedByPeers == 1 && manager.audit().boundKeys == 1, "key 11 is taken")
            #expect(
                Self.status(of: policy.resolve(Self.pull(Self.key(11)), link: 6)) == .kvCacheNotExist,
                "a second peer cannot pull the key meanwhile")
            #expect(policy.release(ReleaseNotice(pinID: grant.pinID, succeeded: true), link: 5))
            #expect(manager.audit().pinnedByPeers == 0 && manager.audit().boundKeys == 1, "pulled: consumed for good")
            try manager.deallocateCache(cache)
            try manager.removeCacheKey(CacheKey(promptClusterID: 1, reqID: 10))
            #expect(manager.audit().isClean)
        }
    }

    @Test func aFailedTransferGivesTheKeyBackAndOnlyItsLinkMayReleaseIt() throws {
        try withCacheManager { manager in
            let policy = manager.links.policy
            let key = CacheKey(promptClusterID: 1, reqID: 3)
            let cache = try manager.allocateCache(Self.desc, keys: [key])
            let grant = try policy.resolve(Self.pull(Self.key(3)), link: 1).get()
            #expect(!policy.release(ReleaseNotice(pinID: grant.pinID, succeeded: true), link: 2), "another link's pin")
            #expect(!policy.release(ReleaseNotice(pinID: grant.pinID + 1, succeeded: true), link: 1), "no such pin")
            #expect(manager.audit().pinnedByPeers == 1 && manager.audit().boundKeys == 0)
            #expect(policy.release(ReleaseNotice(pinID: grant.pinID, succeeded: false), link: 1))
            #expect(manager.audit().pinnedByPeers == 0 && manager.audit().boundKeys == 1, "given back")
            _ = try policy.resolve(Self.pull(Self.key(3)), link: 1).get()  // pullable again
            policy.releaseAll(of: 2)
            #expect(manager.audit().pinnedByPeers == 1, "link 2 held nothing")
            policy.releaseAll(of: 1)
            #expect(manager.audit().pinnedByPeers == 0 && manager.audit().boundKeys == 1, "a closed link's pull failed")
            try manager.removeCacheKey(key)
            try manager.deallocateCache(cache)
            #expect(manager.audit().isClean)
        }
    }

    @Test func aPinKeepsADeallocatedCacheAliveUntilTheRelease() throws {
        try withCacheManager { manager in
            let policy = manager.links.policy
            let cache = try manager.allocateCache(Self.desc, keys: [CacheKey(promptClusterID: 1, reqID: 4)])
            let pages = manager.audit().pagesInUse
            let grant = try policy.resolve(Self.pull(.slot(cacheID: cache.cacheID, batchIndex: 0)), link: 9).get()
            try manager.deallocateCache(cache)
            #expect(manager.audit().pagesInUse == pages && manager.audit().orphans == 0, "pinned memory stays")
            #expect(policy.release(ReleaseNotice(pinID: grant.pinID, succeeded: true), link: 9))
            #expect(manager.audit().isClean, "\(manager.audit())")
        }
    }

    /// Two layer-wise pulls of one key in flight at once (the second takes its last tensor), settled in either
    /// order, each succeeding or failing: the key is consumed only if both succeeded, otherwise it is bound again
    /// and pulling exactly the failed tensors consumes it; the audit never sees a key lost.
    @Test(arguments: [(true, false), (false, true), (false, false), (true, true)])
    func twoPartialPullsOfOneKeySettleIndependently(firstSucceeds: Bool, secondSucceeds: Bool) throws {
        for firstSettlesFirst in [true, false] {
            try withCacheManager { manager in
                let policy = manager.links.policy
                let key = CacheKey(promptClusterID: 1, reqID: 7)
                let cache = try manager.allocateCache(Self.desc, keys: [key])
                let first = try policy.resolve(Self.pull(Self.key(7), tensors: 0..<1), link: 1).get()
                #expect(manager.audit().boundKeys == 1, "tensor 1 is still pullable")
                let second = try policy.resolve(Self.pull(Self.key(7), tensors: 1..<2), link: 1).get()
                #expect(manager.audit().boundKeys == 0 && manager.audit().orphans == 0, "every tensor is taken")
                let settles = [(first, firstSucceeds), (second, secondSucceeds)]
                for (grant, succeeded) in firstSettlesFirst ? settles : settles.reversed() {
                    #expect(policy.release(ReleaseNotice(pinID: grant.pinID, succeeded: succeeded), link: 1))
                    #expect(manager.audit().orphans == 0, "no key lost: \(manager.audit())")
                }
                let failed = [firstSucceeds ? nil : 0, secondSucceeds ? nil : 1].compactMap { $0 }
                #expect(manager.audit().boundKeys == (failed.isEmpty ? 0 : 1), "order \(firstSettlesFirst)")
                for tensor in failed {
                    let again = try policy.resolve(Self.pull(Self.key(7), tensors: tensor..<tensor + 1), link: 2).get()
                    #expect(policy.release(ReleaseNotice(pinID: again.pinID, succeeded: true), link: 2))
                }
                #expect(manager.audit().boundKeys == 0, "pulling exactly the failed tensors consumed the key")
                #expect(Self.status(of: policy.resolve(Self.pull(Self.key(7)), link: 2)) == .kvCacheNotExist)
                try manager.removeCacheKey(key)
                try manager.deallocateCache(cache)
                #expect(manager.audit().isClean, "\(manager.audit())")
            }
        }
    }

    @Test func everyForbiddenRequestIsRefusedAndTakesNothing() throws {
        try withCacheManager(devicePool: 1 << 20, hostPool: 1 << 20) { manager in
            let policy = manager.links.policy
            let keyed = try manager.allocateCache(Self.desc, keys: [CacheKey(promptClusterID: 1, reqID: 1)])
            let unkeyed = try manager.allocateCache(Self.desc)
            let onHost = try manager.allocateCache(
                CacheDesc(numTensors: 1, shape: [1, 16], dataType: .int32, placement: .host),
                keys: [CacheKey(promptClusterID: 1, reqID: 2)])
            let blocks = try manager.allocateBlocksCache(
                CacheDesc(numTensors: 2, shape: [8, 16], dataType: .int32),
                key: BlocksCacheKey(clusterID: 1, modelID: 4))
            let before = manager.audit()
            let refused: [(ResolveRequest, LLMStatusCode, String)] = [
                (Self.pull(Self.key(99)), .kvCacheNotExist, "unbound key"),
                (Self.pull(.key(reqID: 1, prefixID: 3, modelID: 0)), .paramInvalid, "two ids"),
                (Self.pull(.key(reqID: 1, prefixID: .max, modelID: 7)), .kvCacheNotExist, "other model"),
                (Self.pull(.slot(cacheID: 999, batchIndex: 0)), .kvCacheNotExist, "unknown cache"),
                (
                    Self.pull(.slot(cacheID: unkeyed.cacheID, batchIndex: 0)), .kvCacheNotExist,
                    "unbound, not accessible"
                ),
                (Self.pull(.slot(cacheID: keyed.cacheID, batchIndex: 4)), .kvCacheNotExist, "slot out of range"),
                (Self.pull(Self.key(1), tensors: 1..<3), .paramInvalid, "tensor out of range"),
                (Self.pull(Self.key(1), bytes: 65), .paramInvalid, "beyond the slot"),
                (Self.pull(Self.key(1), write: true), .paramInvalid, "write to a cache that is not remote-accessible"),
                (Self.pull(.blocks(modelID: 4), blocks: [8]), .paramInvalid, "block out of range"),
                (Self.pull(.blocks(modelID: 4)), .paramInvalid, "blocks cache as contiguous"),
                (Self.pull(Self.key(1), blocks: [0]), .paramInvalid, "contiguous cache as blocks"),
                (Self.pull(Self.key(2), tensors: 0..<1, requester: .host), .featureNotEnabled, "host to host"),
            ]
            for (request, status, what) in refused {
                #expect(Self.status(of: policy.resolve(request, link: 1)) == status, "\(what)")
            }
            #expect(manager.audit() == before, "a refusal takes nothing")
            for cache in [keyed, unkeyed, onHost] { try manager.unregisterCache(cache.cacheID) }
            try manager.deallocateBlocksCache(blocks)
            #expect(manager.audit().isClean)
        }
    }

    @Test func aBatchIsGrantedWholeUnderOnePinOrRefusedWithoutTakingAnything() throws {
        try withCacheManager { manager in
            let policy = manager.links.policy
            let keys = (1...4).map { CacheKey(promptClusterID: 1, reqID: UInt64($0)) }
            let cache = try manager.allocateCache(Self.desc, keys: keys)
            func item(_ reqID: UInt64, label: UInt32) -> BatchResolveRequest.Item {
                .init(
                    reqID: reqID, prefixID: .max, modelID: 0, tensorCount: 2, bytesPerSlot: 64, requesterKind: .device,
                    label: label)
            }
            let refused = policy.resolveBatch(
                BatchResolveRequest(items: [item(1, label: 0), item(8, label: 1)]), link: 1)
            guard case .failure(let error) = refused else {
                Issue.record("a batch with an unbound key was granted")
                return
            }
            #expect(error.status == .kvCacheNotExist && error.message.contains("pulls[1]"))
            #expect(manager.audit().pinnedByPeers == 0 && manager.audit().boundKeys == 4)
            let grant = try policy.resolveBatch(
                BatchResolveRequest(items: [item(4, label: 0), item(2, label: 1)]), link: 1
            ).get()
            #expect(grant.slots == 2 && grant.extents.count == 4)
            #expect(manager.audit().pinnedByPeers == 1 && manager.audit().boundKeys == 2)
            #expect(policy.release(ReleaseNotice(pinID: grant.pinID, succeeded: true), link: 1))
            for key in keys { try manager.removeCacheKey(key) }
            try manager.deallocateCache(cache)
            #expect(manager.audit().isClean)
        }
    }

    @Test func shortGrantsKeepTheConnectionPollingAndLongOnesDoNot() {
        #expect(OwnerPolicy.expectsPromptRequest(copying: OwnerPolicy.longCopyBytes - 1))
        #expect(!OwnerPolicy.expectsPromptRequest(copying: OwnerPolicy.longCopyBytes))
    }

    /// A blocks grant spans whole tensors; what keeps the connection polling is the blocks the peer asked for
    /// (32 × 16 KiB of a 128 MiB tensor is a short copy, 32 × 64 KiB of two tensors a long one).
    @Test func blocksGrantsCountOnlyTheAskedBlocks() {
        func blocksGrant(stride: UInt64, tensors: Int) -> Grant {
            Grant(
                pinID: 1, kind: .device, isBlocks: true, stride: stride, slots: 8192, tensorCount: UInt32(tensors),
                extents: Array(repeating: .init(regionID: 0, offset: 0, length: 8192 * stride), count: tensors))
        }
        let small = blocksGrant(stride: 16 << 10, tensors: 1)
        #expect(small.copiedBytes(blocks: 32) == 512 << 10)
        #expect(OwnerPolicy.expectsPromptRequest(copying: small.copiedBytes(blocks: 32)))
        #expect(!OwnerPolicy.expectsPromptRequest(copying: small.grantedBytes))
        let large = blocksGrant(stride: 64 << 10, tensors: 2)
        #expect(large.copiedBytes(blocks: 32) == 4 << 20)
        #expect(!OwnerPolicy.expectsPromptRequest(copying: large.copiedBytes(blocks: 32)))
        // Never more than granted, overflow included; a slot grant copies all it grants.
        #expect(small.copiedBytes(blocks: Int.max) == small.grantedBytes)
        let slot = Grant(
            pinID: 1, kind: .device, isBlocks: false, stride: 4096, slots: 1, tensorCount: 1,
            extents: [.init(regionID: 0, offset: 0, length: 4096)])
        #expect(slot.copiedBytes(blocks: 32) == 4096)
    }

    /// A request served after the link's service heard of the close (its reader was serving it while another
    /// thread closed the link) gets no grant: the pin it took is given back at once and the peer hears
    /// `.linkFailed`, so nothing stays pinned for a link that is gone.
    @Test func aLinkThatClosedGrantsNothingMore() throws {
        try withCacheManager { manager in
            let cache = try manager.allocateCache(Self.desc, keys: [CacheKey(promptClusterID: 1, reqID: 12)])
            let service = OwnerService(
                policy: manager.links.policy, linkSerial: 9, peerClusterID: 2, reach: .poolsOnly(peer: 2),
                logger: manager.resources.logger, meters: manager.resources.meters.link(to: 2, transport: "shm"),
                onClose: { _ in })
            service.linkClosed(.peerClosed)
            guard case .failure(let refusal) = service.resolve(Self.pull(Self.key(12))) else {
                Issue.record("a closed link's service granted a resolve")
                return
            }
            #expect(refusal.status == LLMStatusCode.linkFailed.rawValue)
            #expect(manager.audit().pinnedByPeers == 0)
            // The key was not consumed by the voided grant.
            #expect(try manager.links.policy.resolve(Self.pull(Self.key(12)), link: 10).get().pinID > 0)
            manager.links.policy.releaseAll(of: 10)
            try manager.deallocateCache(cache)
        }
    }
}
