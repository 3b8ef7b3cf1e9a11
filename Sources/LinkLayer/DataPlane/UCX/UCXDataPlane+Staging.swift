import DeviceRuntime

extension UCXDataPlane {
    /// Sends `pieces` (their headers at `headers`), those of device memory through a lane of `lanes`: chunk k
    /// is copied device → pinned buffer on that buffer's stream and sent from there as an eager message once its
    /// stream is synchronized. The copies run ahead of the sends: every idle buffer gets the next chunk's copy
    /// queued, so chunks k+1… copy while chunk k is on the wire; a buffer is reused once its message completed.
    /// A failed copy fails this transfer only (what is already sent completes first); a failed send fails the
    /// endpoint as in `complete`. A lane with a message UCX did not end is kept, not reused or freed.
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
        /// Buffers whose copy is queued, in the order of their pieces (each a device piece not sent yet).
        var copying: [Int] = []
        /// The first piece whose copy is not queued yet (pieces of host memory need none).
        var nextCopy = 0
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

        /// Queues the copies of the next device pieces, one per idle buffer.
        func queueCopies() {
            while problem == nil, nextCopy < pieces.count {
                let piece = pieces[nextCopy]
                if piece.device {
                    guard let taken = idle.popLast() else { return }
                    do throws(DeviceError) {
                        try runtime.copyAsync(
                            to: lane.buffers[taken].address, capacity: lane.buffers[taken].size, from: piece.source,
                            count: piece.count, kind: .deviceToHost, on: lane.streams[taken])
                    } catch {
                        idle.append(taken)
                        problem = LinkError(
                            .io, "\(what): copying \(piece.count) bytes out of device memory failed: \(error)")
                        return
                    }
                    copying.append(taken)
                }
                nextCopy += 1
            }
        }

        for (index, piece) in pieces.enumerated() {
            var source = piece.source
            var buffer: Int?
            if piece.device {
                // Every earlier piece is sent, so a buffer not idle holds a message in flight.
                queueCopies()
                while problem == nil, nextCopy <= index, !inFlight.isEmpty {
                    retireOldest()
                    queueCopies()
                }
                guard problem == nil, nextCopy > index, !copying.isEmpty else { break }
                let taken = copying.removeFirst()
                do throws(DeviceError) {
                    try runtime.synchronize(lane.streams[taken])
                } catch {
                    idle.append(taken)
                    problem = LinkError(
                        .io, "\(what): copying \(piece.count) bytes out of device memory failed: \(error)")
                    break
                }
                source = lane.buffers[taken].address
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
        // Copies queued for pieces a failure left unsent still write their buffers: they end before the lane is
        // reused.
        for taken in copying { try? runtime.synchronize(lane.streams[taken]) }
        if settled { lanes.give(lane) }
        return (problem, settled)
    }
}
