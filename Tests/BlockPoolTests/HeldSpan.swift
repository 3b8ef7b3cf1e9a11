import BlockPool

/// A single span (`allocate(count: 1, bytes:)`) kept in an object, so a test can hold many in an array or share
/// one between threads; the pages return to the pool when the object goes.
final class HeldSpan: Sendable {
    let spans: TensorSpans

    init(_ pool: BlockPool, bytes: Int) throws(PoolError) { spans = try pool.allocate(count: 1, bytes: bytes) }

    var address: UInt { spans.address(0) }
    var firstPage: Int { spans.firstPage(0) }
    var pages: Int { spans.pages }
}
