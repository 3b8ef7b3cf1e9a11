import LinkLayer

/// Sends layers of a task's source to one config's destination over the ordinary push path (`Requester`):
/// a slot or blocks push for key configs, pushes to raw addresses for `TransferConfig`.
struct LayerSender: Sendable {
    let requester: Requester
    let blocks: BlockMapping

    static let operation = "transferCacheAsync"

    /// Sends source layers `layers` (all covered by `config`) to `config`'s destination.
    func send(layers: Range<Int>, of source: CacheView, to config: LayerTransfer) throws(LLMError) {
        switch config.destination {
        case .slot(let key, let first):
            let plan = try plan(layers, to: config.destinationLayer(of: layers.lowerBound, first: first), source)
            try requester.pushSlot(
                from: source, srcBatchIndex: config.sourceBatchIndex, to: key, plan: plan, operation: Self.operation)
        case .blocks(let key, let first):
            let plan = try plan(layers, to: config.destinationLayer(of: layers.lowerBound, first: first), source)
            let local = blocks.source ?? Array(0..<source.slots)
            try requester.transferBlocks(
                .blocks(modelID: key.modelID), cluster: key.clusterID, local: source,
                remoteBlocks: blocks.destination ?? local, localBlocks: local, plan: plan, push: true,
                operation: Self.operation)
        case .addresses(let addresses):
            for layer in layers {
                let index = 2 * (layer - config.sourceLayers.lowerBound)
                for part in 0..<2 {
                    try requester.pushRaw(
                        pieces(tensor: 2 * layer + part, of: source, batch: config.sourceBatchIndex), from: source,
                        to: UInt64(addresses[index + part]), cluster: config.cluster, operation: Self.operation)
                }
            }
        }
    }

    private func plan(_ layers: Range<Int>, to destination: Int, _ source: CacheView) throws(LLMError) -> LayerPlan {
        try LayerPlan(
            LayerRange(source: layers, destination: destination..<destination + layers.count),
            tensors: source.numTensors, isPush: true, operation: Self.operation)
    }

    /// What of tensor `tensor` goes where, relative to its destination address.
    private func pieces(tensor: Int, of source: CacheView, batch: Int) -> [Requester.RawPiece] {
        let stride = source.stride
        if source.isBlocks {
            guard let local = blocks.source, let remote = blocks.destination else {
                return [.init(local: source.addresses[tensor], offset: 0, count: source.tensorSize)]
            }
            return zip(local, remote).map { from, to in
                .init(local: source.address(tensor: tensor, slot: from), offset: to * stride, count: stride)
            }
        }
        guard let remote = blocks.destination, let chunk = blocks.destinationBlockBytes else {
            return [.init(local: source.address(tensor: tensor, slot: batch), offset: 0, count: stride)]
        }
        // Contiguous → blocks: the slot is cut into destination-block-sized chunks, chunk i → block remote[i].
        return stride.chunks(of: chunk).enumerated().map { index, range in
            .init(
                local: source.address(tensor: tensor, slot: batch, offset: range.lowerBound),
                offset: remote[index] * chunk, count: range.count)
        }
    }
}

extension Int {
    /// `0..<self` cut into consecutive ranges of `size` (the last may be shorter).
    func chunks(of size: Int) -> [Range<Int>] {
        Swift.stride(from: 0, to: self, by: size).map { $0..<Swift.min($0 + size, self) }
    }
}
