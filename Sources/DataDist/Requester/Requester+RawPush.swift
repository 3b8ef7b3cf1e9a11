import LinkLayer

/// Pushes to raw destination addresses (`TransferConfig`): the owner resolves the address to the tensor of a
/// cache that accepts pushes, and grants exactly the bytes asked.
extension Requester {
    /// One piece of a push to a raw address: `count` local bytes at `local` go `offset` bytes past the address.
    struct RawPiece {
        let local: UInt
        let offset: Int
        let count: Int
    }

    /// Writes `pieces` of the pinned cache `local` into cluster `cluster`'s memory at raw `address`, which the
    /// owner checks lies, with every piece, inside one tensor of a cache there that accepts pushes.
    func pushRaw(
        _ pieces: [RawPiece], from local: CacheView, to address: UInt64, cluster: UInt64, operation: String
    ) throws(LLMError) {
        let span = pieces.reduce(0) { max($0, $1.offset + $1.count) }
        let link = try links.link(to: cluster, for: operation)
        let request = ResolveRequest(
            target: .address(address), write: true, tensors: 0..<1, bytesPerSlot: UInt64(span),
            requesterKind: MemoryKind(local.placement), requesterIsBlocks: local.isBlocks, blocks: [])
        try transfer(request, over: link, operation: operation) { grant throws(LLMError) in
            let extent = grant.extents[0]
            let moves = pieces.map { piece in
                let offset = UInt64(piece.offset)
                return ExtentMove(
                    local: piece.local,
                    remote: Grant.Extent(
                        regionID: extent.regionID, offset: extent.offset + offset,
                        length: extent.length >= offset ? extent.length - offset : 0),
                    count: piece.count)
            }
            try move(moves, .write, local: local.placement, over: link, pin: grant.pinID, operation: operation)
        }
    }
}
