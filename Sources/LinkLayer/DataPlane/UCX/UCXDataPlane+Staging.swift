import DeviceRuntime

extension UCXDataPlane {
    /// Sends `pieces` (their headers at `headers`), those of device memory through a lane of `lanes`: chunk k
    /// is copied device → pinned buffer (on the lane's stream, then a sync) and sent from there as an eager
    /// message, and chunk k+1 is copied while chunk k is on the wire; a buffer is reused once its message
    /// completed. A failed copy fails this transfer only (what is already sent completes first); a failed send
    /// fails the endpoint as in `complete`. A lane with a message UCX did not end is kept, not reused or freed.
    func sendStaged(
        _ pieces: [Piece], headers: UnsafeMutableRawPointer, lanes: UCXStagingLanes, what: String
    ) -> (problem: LinkError?, settled: Bool) {
        let deadline = ContinuousClock.now.advanced(by: transferTimeout)
        guard let lane = lanes.take(until: deadline) else {
            return (
                LinkError(.timedOut, "\(what): no staging lane of the link was free within \(transferTimeout)"), true
            )
        }
        let runtime = lanes.staging.runtime
        var idle = Array(lane.buffers.indices.reversed())
        var inFlight: [(buffer: Int?, requests: [UnsafeMutableRawPointer])] = []
        var problem: LinkError?
        var settled = true

        /// Waits for the oldest message in flight; its buffer is idle again once UCX ended it.
        func retireOldest() {
            let oldest = inFlight.removeFirst()
            let outcome = complete(.requests(oldest.requests), what: what)
            if !outcome.settled {
                settled = false
            } else if let buffer = oldest.buffer {
                idle.append(buffer)
            }
            if problem == nil { problem = outcome.problem }
        }

        for (index, piece) in pieces.enumerated() {
            var source = piece.source
            var buffer: Int?
            if piece.device {
                while idle.isEmpty, problem == nil, !inFlight.isEmpty { retireOldest() }
                guard problem == nil, let taken = idle.popLast() else { break }
                let staged = lane.buffers[taken]
                do throws(DeviceError) {
                    try runtime.copyAsync(
                        to: staged.address, capacity: staged.size, from: piece.source, count: piece.count,
                        kind: .deviceToHost, on: lane.stream)
                    try runtime.synchronize(lane.stream)
                } catch {
                    idle.append(taken)
                    problem = LinkError(
                        .io, "\(what): copying \(piece.count) bytes out of device memory failed: \(error)")
                    break
                }
                source = staged.address
                buffer = taken
            }
            let message = UCXEndpoint.Message(
                header: UInt(bitPattern: headers + index * UCXInbox.Header.size), source: source, count: piece.count)
            switch sendingEndpoint.send([message], flush: false) {
            case .requests(let requests):
                if requests.isEmpty {
                    if let buffer { idle.append(buffer) }
                } else {
                    inFlight.append((buffer, requests))
                }
            case .unusable(let reason):
                if let buffer { idle.append(buffer) }
                problem = LinkError(.closed, "\(what): \(reason)")
            case .failed(let reason, let requests):
                inFlight.append((buffer, requests))
                problem = LinkError(.closed, "\(what): \(reason)")
            }
            if problem != nil { break }
        }
        if problem == nil {
            inFlight.append((nil, []))
            switch sendingEndpoint.send([], flush: true) {
            case .requests(let requests): inFlight[inFlight.count - 1].requests = requests
            case .unusable(let reason): problem = LinkError(.closed, "\(what): \(reason)")
            case .failed(let reason, let requests):
                inFlight[inFlight.count - 1].requests = requests
                problem = LinkError(.closed, "\(what): \(reason)")
            }
        }
        while !inFlight.isEmpty { retireOldest() }
        if settled { lanes.give(lane) }
        return (problem, settled)
    }
}
