/// Requester → owner, over a data plane where the owner delivers reads (`DataPlane.ownerDeliversReads`): a slot
/// read's resolve that also asks for its bytes, so that the pull takes one round trip instead of two (resolve,
/// then `deliver`). The owner resolves `resolve` exactly as a `resolve` message and answers with the grant or a
/// refusal; before a grant goes back it sends the granted bytes tagged `token`, when `delivery(for:)` says the
/// grant matches what the requester expects. Both sides apply that one rule, so both know whether bytes come.
package struct DeliveringResolve: Sendable, Hashable {
    /// A slot read (`write` false, no blocks).
    package var resolve: ResolveRequest
    /// The delivery the requester opened for `destinations`.
    package var token: UInt64
    /// The source's tensor count the requester requires (a pull of whole caches), or 0 for any.
    package var tensorCount: UInt32
    /// Where tensor `i` of `resolve.tensors` lands in the requester's memory: `resolve.bytesPerSlot` bytes each.
    package var destinations: [UInt64]

    package init(resolve: ResolveRequest, token: UInt64, tensorCount: UInt32, destinations: [UInt64]) {
        self.resolve = resolve
        self.token = token
        self.tensorCount = tensorCount
        self.destinations = destinations
    }

    /// Whether bytes come with `grant`: it has the required tensor count, one extent per destination, and every
    /// extent holds `bytesPerSlot` bytes.
    package func matches(_ grant: Grant) -> Bool {
        (tensorCount == 0 || grant.tensorCount == tensorCount) && grant.extents.count == destinations.count
            && grant.extents.allSatisfy { $0.length >= resolve.bytesPerSlot }
    }

    /// What the owner sends under `grant`: one move per tensor, the first `bytesPerSlot` bytes of its extent into
    /// its destination. Nil, and nothing is sent, when the grant does not match (`matches`).
    package func delivery(for grant: Grant) -> DeliveryRequest? {
        guard matches(grant) else { return nil }
        let moves = zip(grant.extents, destinations).map { extent, destination in
            DeliveryRequest.Move(
                regionID: extent.regionID, offset: extent.offset, count: resolve.bytesPerSlot, destination: destination)
        }
        return DeliveryRequest(pinID: grant.pinID, token: token, moves: moves)
    }

    package func encoded() -> [UInt8] {
        let resolvePayload = resolve.encoded()
        var writer = WireWriter(capacity: 20 + 8 * destinations.count + resolvePayload.count)
        writer.u64(token)
        writer.u32(tensorCount)
        writer.u32(UInt32(destinations.count))
        for destination in destinations { writer.u64(destination) }
        writer.u32(UInt32(resolvePayload.count))
        writer.raw(resolvePayload)
        return writer.bytes
    }

    /// Decodes strictly: a slot read with one destination per tensor, at least one byte each, nothing after the
    /// end.
    package init(payload: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(payload[...])
        token = try reader.u64()
        tensorCount = try reader.u32()
        let count = try reader.count(elementSize: 8, limit: DeliveryRequest.maxMoves)
        var destinations: [UInt64] = []
        destinations.reserveCapacity(count)
        for _ in 0..<count { destinations.append(try reader.u64()) }
        self.destinations = destinations
        let resolveBytes = try reader.count(elementSize: 1, limit: Frame.maxPayload)
        resolve = try ResolveRequest(payload: try reader.raw(count: resolveBytes))
        try reader.expectEnd()
        guard !resolve.write, !resolve.requesterIsBlocks, resolve.blocks.isEmpty else {
            throw .malformed("a delivering resolve is a slot read")
        }
        guard resolve.bytesPerSlot > 0 else { throw .malformed("a delivering resolve of 0 bytes per slot") }
        guard destinations.count == resolve.tensors.count else {
            throw .malformed("\(destinations.count) destinations for \(resolve.tensors.count) tensors")
        }
    }
}
