extension EmulatedRuntime: SegmentCopying {
    package func copy(_ segments: [CopySegment], kind: MemcpyKind, device: Int32) throws(DeviceError) {
        try checkDevice(device)
        for segment in segments {
            guard segment.destination != 0, segment.source != 0 else {
                throw DeviceError(
                    .acl(ACLCode.invalidParam),
                    "copy with a null pointer (destination 0x\(String(segment.destination, radix: 16)), source 0x\(String(segment.source, radix: 16)))"
                )
            }
            guard segment.count >= 0 else {
                throw DeviceError(
                    .acl(ACLCode.invalidParam),
                    "copy count \(segment.count) does not fit the destination capacity \(segment.count)")
            }
        }
        try checkDeviceSides(of: segments, kind: kind)
        let batchBytes = segments.reduce(0) { $0 &+ $1.count }
        for segment in segments where segment.count > 0 {
            if let faults, faults.shouldFail(.copy) {
                throw DeviceError(
                    .acl(ACLCode.systemDMA),
                    "\(FaultPlan.describe(.copy)): \(kind) copy of \(segment.count) bytes failed")
            }
            // Non-null and checked above (device sides against live allocations; host sides are the caller's).
            HostCopy.copy(segment, inBatchOf: batchBytes)
        }
    }
}
