import BlockPool
import DeviceCaps
import DeviceRuntime
import Synchronization

extension CacheManager {
    /// Copies one batch slot of every tensor of `src` into a slot of `dst` (note: destination first, as in the
    /// reference). `size` -1 copies the rest of the source slot from `offset`.
    public func copyCache(
        dst: Cache, src: Cache, dstBatchIndex: Int = 0, srcBatchIndex: Int = 0, offset: Int = 0, size: Int = -1
    ) throws(LLMError) {
        try resources.gate(.copyCache)
        try resources.issuer.admit(dst, "dst", in: "copyCache")
        try resources.issuer.admit(src, "src", in: "copyCache")
        guard !dst.isBlocksCache, !src.isBlocksCache else {
            let which = dst.isBlocksCache ? "dst \(dst.cacheID)" : "src \(src.cacheID)"
            throw .paramInvalid("copyCache \(which) is a blocks cache; use copyBlocks")
        }
        guard size == -1 || size > 0 else { throw .paramInvalid("copyCache size is \(size); it must be -1 or > 0") }
        guard dstBatchIndex >= 0 else { throw .paramInvalid("copyCache dstBatchIndex is \(dstBatchIndex)") }
        guard srcBatchIndex >= 0 else { throw .paramInvalid("copyCache srcBatchIndex is \(srcBatchIndex)") }
        guard offset >= 0 else { throw .paramInvalid("copyCache offset is \(offset); it must be >= 0") }
        try store.withPinned(dst.cacheID, src.cacheID, operation: "copyCache") { to, from throws(LLMError) in
            guard to.numTensors == from.numTensors else {
                throw .paramInvalid(
                    "copyCache dst has \(to.numTensors) tensors, src has \(from.numTensors); they must be equal")
            }
            guard srcBatchIndex < from.slots else {
                throw .paramInvalid("copyCache srcBatchIndex \(srcBatchIndex) is not < src batch size \(from.slots)")
            }
            guard dstBatchIndex < to.slots else {
                throw .paramInvalid("copyCache dstBatchIndex \(dstBatchIndex) is not < dst batch size \(to.slots)")
            }
            guard offset == 0 || (offset < from.stride && offset < to.stride) else {
                throw .paramInvalid(
                    "copyCache offset \(offset) must be < the src slot (\(from.stride) bytes) and dst slot (\(to.stride) bytes)"
                )
            }
            let length = size == -1 ? from.stride - offset : size
            guard length <= from.stride - offset, length <= to.stride - offset else {
                throw .paramInvalid(
                    "copyCache copies \(length) bytes from offset \(offset): src slots are \(from.stride) bytes, dst slots \(to.stride)"
                )
            }
            try resources.copy(count: to.numTensors, bytesEach: length, to: to.placement, from: from.placement) {
                tensor in
                CopySegment(
                    destination: to.address(tensor: tensor, slot: dstBatchIndex, offset: offset),
                    source: from.address(tensor: tensor, slot: srcBatchIndex, offset: offset), count: length)
            }
        }
    }

    /// Copies blocks inside one blocks cache: `copies[src]` lists the destination blocks of block `src`.
    public func copyBlocks(_ cache: Cache, _ copies: [Int: [Int]]) throws(LLMError) {
        try resources.gate(.copyBlocks)
        try resources.issuer.admit(cache, "cache", in: "copyBlocks")
        guard cache.isBlocksCache else {
            throw .paramInvalid("copyBlocks cache \(cache.cacheID) is not a blocks cache")
        }
        try store.withPinned([cache.cacheID], operation: "copyBlocks") { views throws(LLMError) in
            let view = views[0]
            let pairs = copies.sorted { $0.key < $1.key }.flatMap { source, destinations in
                destinations.map { (source, $0) }
            }
            for (source, destination) in pairs {
                for (name, block) in [("source", source), ("destination", destination)]
                where !(0..<view.slots).contains(block) {
                    throw .paramInvalid("copyBlocks \(name) block \(block) is outside 0..<\(view.slots)")
                }
            }
            let moved = pairs.filter { $0.0 != $0.1 }
            let (perTensor, overflows) = view.stride.multipliedReportingOverflow(by: moved.count)
            guard !overflows, !perTensor.multipliedReportingOverflow(by: view.numTensors).overflow else {
                throw .paramInvalid(
                    "copyBlocks makes \(moved.count) copies of \(view.stride)-byte blocks in each of \(view.numTensors) tensors: more than \(Int.max) bytes"
                )
            }
            let segments = moved.flatMap { source, destination in
                (0..<view.numTensors).map { tensor in
                    CopySegment(
                        destination: view.address(tensor: tensor, slot: destination),
                        source: view.address(tensor: tensor, slot: source), count: view.stride)
                }
            }
            try resources.copy(segments, to: view.placement, from: view.placement)
        }
    }

    /// Moves blocks between a host and a device blocks cache (swap-in or swap-out): `srcToDst[s] = d` copies block
    /// `s` of `src` into block `d` of `dst`. Runs of consecutive blocks are copied at once.
    public func swapBlocks(src: Cache, dst: Cache, _ srcToDst: [Int: Int]) throws(LLMError) {
        try resources.gate(.swapBlocks)
        try resources.issuer.admit(src, "src", in: "swapBlocks")
        try resources.issuer.admit(dst, "dst", in: "swapBlocks")
        guard src.isBlocksCache, dst.isBlocksCache else {
            let which = src.isBlocksCache ? "dst \(dst.cacheID)" : "src \(src.cacheID)"
            throw .paramInvalid("swapBlocks \(which) is not a blocks cache")
        }
        guard src.desc.placement != dst.desc.placement else {
            throw .paramInvalid(
                "swapBlocks moves between host and device; src and dst are both .\(src.desc.placement)")
        }
        let tracked = [src, dst].filter { $0.cacheID != -1 }.map(\.cacheID)
        try store.withPinned(tracked, operation: "swapBlocks") { views throws(LLMError) in
            let from = try swapView(of: src, tracked: views)
            let to = try swapView(of: dst, tracked: views)
            guard from.numTensors == to.numTensors else {
                throw .paramInvalid(
                    "swapBlocks src has \(from.numTensors) tensors, dst \(to.numTensors); they must match")
            }
            guard from.stride == to.stride else {
                throw .paramInvalid(
                    "swapBlocks src blocks are \(from.stride) bytes, dst blocks \(to.stride); they must match")
            }
            for (source, destination) in srcToDst {
                guard (0..<from.slots).contains(source) else {
                    throw .paramInvalid("swapBlocks source block \(source) is outside 0..<\(from.slots)")
                }
                guard (0..<to.slots).contains(destination) else {
                    throw .paramInvalid("swapBlocks destination block \(destination) is outside 0..<\(to.slots)")
                }
            }
            let runs = consecutiveRuns(srcToDst.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
            let segments = runs.flatMap { run in
                (0..<from.numTensors).map { tensor in
                    CopySegment(
                        destination: to.address(tensor: tensor, slot: run.destination),
                        source: from.address(tensor: tensor, slot: run.source), count: run.count * from.stride)
                }
            }
            try resources.copy(segments, to: to.placement, from: from.placement)
        }
    }

    private func swapView(of cache: Cache, tracked views: [CacheView]) throws(LLMError) -> CacheView {
        guard cache.cacheID == -1 else {
            let view = views.first { $0.id == cache.cacheID }!
            guard view.isOwned else {
                throw .paramInvalid(
                    "swapBlocks cache \(cache.cacheID) is registered memory; swap between a pool blocks cache and Cache.createCPUCache"
                )
            }
            return view
        }
        let tensorSize = try cache.desc.validatedCallerMemory(at: cache.tensorAddresses, operation: "swapBlocks")
        let blocks = Int(cache.desc.shape[0])
        return CacheView(
            id: -1, addresses: cache.tensorAddresses, numTensors: cache.desc.numTensors, tensorSize: tensorSize,
            slots: blocks, stride: tensorSize / blocks, placement: cache.desc.placement, isBlocks: true, isOwned: false)
    }
}
