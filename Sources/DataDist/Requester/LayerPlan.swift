/// Tensor ranges of a (layer-wise) transfer: `remote` on the peer, `local` here.
struct LayerPlan {
    let remote: Range<Int>
    let local: Range<Int>

    /// The plan for `layers` of caches of `tensors` tensors (nil: every tensor). `layers.source` names the
    /// pull's remote side and the push's local side (`isPush`).
    init(_ layers: LayerRange?, tensors: Int, isPush: Bool = false, operation: String) throws(LLMError) {
        guard let layers else {
            (remote, local) = (0..<tensors, 0..<tensors)
            return
        }
        let perLayer = layers.tensorsPerLayer
        guard perLayer > 0 else { throw .paramInvalid("\(operation) tensorsPerLayer is \(perLayer); it must be > 0") }
        guard tensors % perLayer == 0 else {
            throw .paramInvalid(
                "\(operation): the cache's \(tensors) tensors are not a multiple of tensorsPerLayer \(perLayer)")
        }
        for (name, range) in [("source", layers.source), ("destination", layers.destination)]
        where range.isEmpty || range.lowerBound < 0 || range.upperBound > Int(UInt32.max) / perLayer {
            throw .paramInvalid("\(operation) \(name) layers \(range) must be a non-empty range starting at >= 0")
        }
        guard layers.source.count == layers.destination.count else {
            throw .paramInvalid(
                "\(operation) source layers \(layers.source) and destination layers \(layers.destination) differ in length"
            )
        }
        let source = layers.source.lowerBound * perLayer..<layers.source.upperBound * perLayer
        let destination = layers.destination.lowerBound * perLayer..<layers.destination.upperBound * perLayer
        let localSide = isPush ? source : destination
        guard localSide.upperBound <= tensors else {
            throw .paramInvalid(
                "\(operation) \(isPush ? "source" : "destination") layers \(isPush ? layers.source : layers.destination) exceed the \(tensors / perLayer) layers of the local cache"
            )
        }
        (remote, local) = isPush ? (destination, source) : (source, destination)
    }
}
