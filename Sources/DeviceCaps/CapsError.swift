/// An operation refused because the product does not support it, or an invalid product override.
public struct CapsError: Error, Sendable, CustomStringConvertible {
    /// The operation that was refused (`.initialize` for an invalid `DATADIST_PRODUCT`).
    public let operation: Operation
    /// The product the decision was made for (`.unknown` for an invalid override).
    public let product: AtlasProduct
    /// A message naming the operation, the product and what would work instead.
    public let message: String

    /// An error for `operation` on `product`, described by `message`.
    public init(operation: Operation, product: AtlasProduct, message: String) {
        self.operation = operation
        self.product = product
        self.message = message
    }

    public var description: String { message }
}
