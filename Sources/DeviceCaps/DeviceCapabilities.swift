// PLACEHOLDER (replaced by the DeviceCaps work): minimal shape so the layers above compile.
public enum Operation: String, CaseIterable, Sendable {
    case allocateCache = "allocate_cache"
    case deallocateCache = "deallocate_cache"
    case removeCacheKey = "remove_cache_key"
    case copyCache = "copy_cache"
    case allocateBlocksCache = "allocate_blocks_cache"
    case deallocateBlocksCache = "deallocate_blocks_cache"
    case copyBlocks = "copy_blocks"
    case swapBlocks = "swap_blocks"
    case pullCache = "pull_cache"
    case pullBlocks = "pull_blocks"
    case pushCache = "push_cache"
    case pushBlocks = "push_blocks"
    case registerCache = "register_cache"
    case registerBlocksCache = "register_blocks_cache"
    case unregisterCache = "unregister_cache"
    case linkClusters = "link_clusters"
    case unlinkClusters = "unlink_clusters"
    case switchRole = "switch_role"
}

public struct CapsError: Error, Sendable, CustomStringConvertible {
    public let operation: Operation
    public let product: AtlasProduct
    public let message: String
    public var description: String { message }
}

public struct DeviceCapabilities: Sendable {
    public let product: AtlasProduct
    public let socName: String?
    public let boardID: UInt32?
    public let ambiguousCandidates: [AtlasProduct]?
    public init(product: AtlasProduct, socName: String? = nil, boardID: UInt32? = nil) {
        self.product = product
        self.socName = socName
        self.boardID = boardID
        self.ambiguousCandidates = nil
    }
    public func supports(_ op: Operation) -> Bool { true }
    public func check(_ op: Operation) throws(CapsError) {}
    public static func detect(socName: String?, boardID: UInt32?) -> AtlasProduct { .unknown }
    public static var matrixMarkdown: String { "" }
}
