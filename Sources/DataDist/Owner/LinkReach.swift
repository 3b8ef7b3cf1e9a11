/// What one link's peer can reach of this instance besides the pools: registered caller memory, which only UCX
/// serves, and only the regions published when the link was made.
struct LinkReach: Sendable {
    let peerClusterID: UInt64
    /// Whether the link's data plane is UCX (the memfd mapping and IPC keys reach the pools only).
    let overUCX: Bool
    /// The registered-memory regions this side published to the peer in the link's handshake.
    let registeredRegions: Set<UInt32>

    /// Only the pools (a link over the memfd mapping, or a policy asked without a link).
    static func poolsOnly(peer: UInt64) -> LinkReach {
        LinkReach(peerClusterID: peer, overUCX: false, registeredRegions: [])
    }

    /// The regions of registered cache `cacheID` (`ids`: one per tensor, nil when it was not registered
    /// remote-accessible) when this link reaches all of them; otherwise why not.
    func regions(of cacheID: Int64, ids: [UInt32]?) throws(LLMError) -> [UInt32] {
        guard let ids else {
            throw LLMError(
                .featureNotEnabled,
                "cache \(cacheID) is caller memory registered with remoteAccessible false: it was not registered with the transport, so no peer can reach it (register it with remoteAccessible: true)"
            )
        }
        guard overUCX else {
            throw LLMError(
                .featureNotEnabled,
                "cache \(cacheID) is caller memory (registerCache/registerBlocksCache), which the link to cluster \(peerClusterID) cannot serve: it uses the shared-memory transport, and a memfd maps only this process's pools, not memory it did not allocate. UCX serves registered memory: set LLMConfig.transport to .ucx (DATADIST_TRANSPORT=ucx), or leave it .automatic (DATADIST_TRANSPORT=auto) on both sides and register before linking"
            )
        }
        guard ids.allSatisfy(registeredRegions.contains) else {
            throw LLMError(
                .featureNotEnabled,
                "cache \(cacheID) was registered after the link to cluster \(peerClusterID) was made: memory registered after linking is not remotely accessible over that link; unlink and link again to reach it"
            )
        }
        return ids
    }
}
