extension CacheDesc {
    /// Bytes of one tensor, once `numTensors` is in 1...UInt32.max (the reference's uint32) and the shape is
    /// valid (`tensorByteSize`); otherwise `.paramInvalid` naming `operation` and the value.
    @inline(__always)
    func validatedTensorSize(operation: String) throws(LLMError) -> Int {
        guard numTensors > 0, numTensors <= UInt32.max else {
            throw .paramInvalid(
                "\(operation) desc.numTensors is \(numTensors); it must be in 1...\(UInt32.max) (uint32, > 0)")
        }
        do {
            return try tensorByteSize
        } catch {
            throw .paramInvalid("\(operation) desc: \(error.message)")
        }
    }

    /// Bytes of one tensor of caller memory at `addresses` (registered caches, CPU caches): `validatedTensorSize`,
    /// one non-zero address per tensor, the tensors together no larger than `Int.max` bytes, and none running
    /// past the end of the address space. Memory that cannot exist is refused here, so no copy of it computes an
    /// address or a byte count that overflows.
    func validatedCallerMemory(at addresses: [UInt], operation: String) throws(LLMError) -> Int {
        let tensorSize = try validatedTensorSize(operation: operation)
        guard addresses.count == numTensors else {
            throw .paramInvalid("\(operation) got \(addresses.count) addresses for desc.numTensors \(numTensors)")
        }
        guard !numTensors.multipliedReportingOverflow(by: tensorSize).overflow else {
            throw .paramInvalid(
                "\(operation) desc describes \(numTensors) tensors of \(tensorSize) bytes: more memory than the address space holds"
            )
        }
        for (index, address) in addresses.enumerated() {
            guard address != 0 else { throw .paramInvalid("\(operation) addresses[\(index)] is 0") }
            guard !address.addingReportingOverflow(UInt(tensorSize)).overflow else {
                throw .paramInvalid(
                    "\(operation) addresses[\(index)] \(address) + \(tensorSize) bytes runs past the end of the address space"
                )
            }
        }
        return tensorSize
    }
}
