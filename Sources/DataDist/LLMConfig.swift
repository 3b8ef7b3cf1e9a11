/// A memory pool: `size` bytes cut into pages of `1 << pageShift` bytes (`mem_pool_cfg`).
public struct MemoryPoolConfig: Sendable, Hashable {
    public var size: Int
    public var pageShift: Int = 16

    public init(size: Int, pageShift: Int = 16) {
        self.size = size
        self.pageShift = pageShift
    }
}

/// Configuration of an `LLMDataDist` instance.
public struct LLMConfig: Sendable, Hashable {
    public var deviceID: Int32 = 0
    /// The device pool `allocateCache` and friends take memory from (`mem_pool_cfg`).
    public var memoryPool: MemoryPoolConfig?
    /// The host pool (`host_mem_pool_cfg`).
    public var hostMemoryPool: MemoryPoolConfig?
    /// Deadline of every pull and push (`sync_kv_timeout`).
    public var syncKVTimeout: Duration = .milliseconds(1000)
    /// Makes this instance a link server on this endpoint (`listen_ip_info`).
    public var listenAddress: IPEndpoint?
    public var enableRemoteCacheAccessible = false
    /// When false, operations the detected product does not support log a warning instead of throwing.
    public var enforceProductSupport = true

    public init() {}
}

// TEMPORARY until the option-string work lands (it provides the full validate()).
extension LLMConfig {
    func validate() throws(LLMError) {
        guard deviceID >= 0 else { throw .paramInvalid("deviceID is \(deviceID); it must be >= 0") }
    }
}
