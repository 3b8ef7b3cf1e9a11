import LinkLayer

extension Requester {
    /// `pullSlot` where the owner sends the bytes (`DataPlane.ownerDeliversReads`): they come with the grant, one
    /// round trip (`PeerChannel.resolveDelivering`). `tensorCount`: what the source must have (a whole-cache pull).
    func pullDelivered(
        _ request: ResolveRequest, over link: PeerLink, into destinations: [UInt], tensorCount: Int?
    ) throws(LLMError) {
        var answer: PeerChannel.DeliveredGrant?
        defer { answer?.delivery?.finish() }
        let resolve = { (timeout: Duration) throws(LinkError) -> Grant in
            let delivered = try link.channel.resolveDelivering(
                request, into: destinations, tensorCount: UInt32(tensorCount ?? 0), timeout: timeout,
                what: "pullCache")
            answer = delivered
            return delivered.grant
        }
        try transfer(request, over: link, operation: "pullCache", resolve: resolve) { grant throws(LLMError) in
            try Self.require(grant, hasTensors: tensorCount)
            guard let answer, let delivery = answer.delivery else {
                throw LLMError(
                    .linkFailed,
                    "pullCache: cluster \(link.remoteClusterID) granted extents shorter than the \(request.bytesPerSlot) bytes asked"
                )
            }
            do throws(LinkError) {
                try delivery.wait(until: answer.deadline)
            } catch {
                throw Self.dataPlaneFailure(error, operation: "pullCache")
            }
            link.meters.moved(bytes: destinations.count * Int(request.bytesPerSlot))
        }
    }
}
