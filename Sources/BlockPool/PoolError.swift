public import DeviceRuntime

/// Why a pool could not be built or could not serve a request.
public enum PoolError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A configuration value is out of range; names the field and the value.
    case invalidConfiguration(field: String, message: String)
    /// Not enough contiguous free pages; nothing was allocated.
    case exhausted(requestedBytes: Int, requestedPages: Int, freePages: Int, largestFreePages: Int)
    /// The runtime could not provide the pool's region.
    case runtime(DeviceError)

    public var description: String {
        switch self {
        case .invalidConfiguration(_, let message): message
        case .exhausted(let bytes, let pages, let free, let largest):
            "pool exhausted: \(bytes) bytes need \(pages) contiguous pages; \(free) pages free, largest free run \(largest)"
        case .runtime(let error): "the runtime could not provide the pool: \(error)"
        }
    }
}
