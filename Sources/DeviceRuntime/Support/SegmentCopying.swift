/// A runtime that carries out a batch of copies of one kind with one check for the whole batch (one lock
/// acquisition for all its segments instead of one per segment), as a transfer of many small blocks hands them
/// over.
package protocol SegmentCopying: Sendable {
    /// Copies every segment, each as `copy(to:capacity:from:count:kind:device:)` with its count as the capacity
    /// would: every segment is checked first, then they are copied in order. Throws the error that call would
    /// throw for the first segment that fails.
    func copy(_ segments: [CopySegment], kind: MemcpyKind, device: Int32) throws(DeviceError)
}
