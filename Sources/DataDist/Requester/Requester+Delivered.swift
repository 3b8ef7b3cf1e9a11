import LinkLayer

extension Requester {
    /// `pullSlot` where the owner sends the bytes (`DataPlane.ownerDeliversReads`): they come with the grant, one
    /// round trip (`PeerChannel.resolveDelivering`). `tensorCount`: what the source must have (a whole-cache pull).
    func pullDelivered(
        _ request: ResolveRequest, over link: PeerLink, into destinations: [UInt], tensorCount: Int?
    ) throws(LLMError) {
        var delivery: (any IncomingDelivery)?
        var deadline = ContinuousClock.now
        defer { delivery?.finish() }
        let resolve = { (timeout: Duration) throws(LinkError) -> Grant in
            let answer = try link.channel.resolveDelivering(
                request, into: destinations, tensorCount: UInt32(tensorCount ?? 0), timeout: timeout,
                what: "pullCache")
            delivery = answer.delivery
            deadline = answer.deadline
            return answer.grant
        }
        try transfer(request, over: link, operation: "pullCache", resolve: resolve) { grant throws(LLMError) in
            if let tensorCount, Int(grant.tensorCount) != tensorCount {
                throw .paramInvalid(
                    "pullCache: the remote cache has \(grant.tensorCount) tensors, the local cache \(tensorCount)")
            }
            guard let delivery else {
                throw LLMError(
                    .linkFailed,
                    "pullCache: cluster \(link.remoteClusterID) granted extents shorter than the \(request.bytesPerSlot) bytes asked"
                )
            }
            do throws(LinkError) {
                try delivery.wait(until: deadline)
            } catch {
                // As `move`: a delivery that times out gives `.timeout`; every other failure fails the link.
                throw LLMError(error.kind == .timedOut ? .timeout : .linkFailed, "pullCache: \(error.message)")
            }
            link.meters.moved(bytes: destinations.count * Int(request.bytesPerSlot))
        }
    }
}
