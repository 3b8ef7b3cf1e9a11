/// One contiguous copy of a transfer: `count` bytes from `source` to `destination`.
package struct CopySegment: Sendable, Hashable {
    package var destination: UInt
    package var source: UInt
    package var count: Int

    package init(destination: UInt, source: UInt, count: Int) {
        self.destination = destination
        self.source = source
        self.count = count
    }
}
