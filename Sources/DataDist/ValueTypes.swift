/// The role label of an instance; in this mode it does not change how transfers behave.
public enum LLMRole: Int32, Sendable, Hashable, CaseIterable {
    case prompt = 1
    case decoder = 2
    case mix = 3
}

/// Where a cache lives.
public enum Placement: UInt32, Sendable, Hashable {
    case host = 0
    case device = 1
}

/// Element types, with GE's numeric values.
public enum DataType: Int32, Sendable, Hashable, CaseIterable {
    case float32 = 0
    case float16 = 1
    case int8 = 2
    case int32 = 3
    case uint8 = 4
    case int16 = 6
    case uint16 = 7
    case uint32 = 8
    case int64 = 9
    case uint64 = 10
    case double = 11
    case bool = 12
    case string = 13
    case bfloat16 = 27

    /// Bytes per element (`DT_STRING` counts as two 64-bit words, as the reference does).
    public var byteWidth: Int? {
        switch self {
        case .int8, .uint8, .bool: 1
        case .float16, .bfloat16, .int16, .uint16: 2
        case .float32, .int32, .uint32: 4
        case .int64, .uint64, .double: 8
        case .string: 16
        }
    }
}

/// The shape of a cache: `numTensors` tensors of `shape` each.
public struct CacheDesc: Sendable, Hashable {
    public var numTensors: Int
    public var shape: [Int64]
    public var dataType: DataType
    public var placement: Placement = .device

    public init(numTensors: Int, shape: [Int64], dataType: DataType, placement: Placement = .device) {
        self.numTensors = numTensors
        self.shape = shape
        self.dataType = dataType
        self.placement = placement
    }

    /// Bytes of one tensor; `.paramInvalid` when a dimension is not positive, the rank is outside 1...31,
    /// or the size overflows.
    public var tensorByteSize: Int {
        get throws(LLMError) {
            guard (1...31).contains(shape.count) else {
                throw .paramInvalid("shape \(shape) has rank \(shape.count); rank must be in 1...31")
            }
            guard let width = dataType.byteWidth else {
                throw .paramInvalid("dataType \(dataType) has no fixed element size")
            }
            var bytes = Int64(width)
            for dim in shape {
                guard dim > 0 else {
                    throw .paramInvalid("shape \(shape) has dimension \(dim); every dimension must be > 0")
                }
                let (product, overflow) = bytes.multipliedReportingOverflow(by: dim)
                guard !overflow else { throw .paramInvalid("shape \(shape) of \(dataType) overflows Int64 bytes") }
                bytes = product
            }
            return Int(bytes)
        }
    }
}

/// A request's KV, bound to one batch slot of a cache.
public struct CacheKey: Sendable, Hashable, CustomStringConvertible {
    public var promptClusterID: UInt64
    public var reqID: UInt64
    public var modelID: UInt64 = 0
    public var prefixID: UInt64 = .max

    public init(promptClusterID: UInt64, reqID: UInt64, modelID: UInt64 = 0, prefixID: UInt64 = .max) {
        self.promptClusterID = promptClusterID
        self.reqID = reqID
        self.modelID = modelID
        self.prefixID = prefixID
    }

    /// A key that keeps its batch slot empty.
    public static func placeholder(modelID: UInt64 = 0) -> CacheKey {
        CacheKey(promptClusterID: 0, reqID: .max, modelID: modelID)
    }

    /// True for a placeholder: no request id and no prefix id.
    public var isPlaceholder: Bool { reqID == .max && prefixID == .max }

    public var description: String {
        var text =
            "CacheKey(cluster: \(promptClusterID), req: \(reqID == .max ? "none" : String(reqID)), model: \(modelID)"
        if prefixID != .max { text += ", prefix: \(prefixID)" }
        return text + ")"
    }
}

/// Slot `batchIndex` of cache `cacheID` on cluster `clusterID`.
public struct CacheKeyByIdAndIndex: Sendable, Hashable {
    public var clusterID: UInt64
    public var cacheID: Int64
    public var batchIndex: UInt32

    public init(clusterID: UInt64, cacheID: Int64, batchIndex: UInt32 = 0) {
        self.clusterID = clusterID
        self.cacheID = cacheID
        self.batchIndex = batchIndex
    }
}

/// The key of a blocks (PagedAttention) cache: one per model id.
public struct BlocksCacheKey: Sendable, Hashable {
    public var clusterID: UInt64
    public var modelID: UInt64

    public init(clusterID: UInt64, modelID: UInt64 = 0) {
        self.clusterID = clusterID
        self.modelID = modelID
    }
}

/// Which layers a layer-wise transfer moves. A layer is `tensorsPerLayer` consecutive tensors (K, V).
public struct LayerRange: Sendable, Hashable {
    public var source: Range<Int>
    public var destination: Range<Int>
    public var tensorsPerLayer: Int = 2

    public init(source: Range<Int>, destination: Range<Int>, tensorsPerLayer: Int = 2) {
        self.source = source
        self.destination = destination
        self.tensorsPerLayer = tensorsPerLayer
    }
}

/// A host and port, written `"127.0.0.1:26000"` or `"[::1]:26000"`.
public struct IPEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    public init?(_ text: String) {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portPart = rest.dropFirst()
        } else {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2 else { return nil }
            hostPart = parts[0]
            portPart = parts[1]
        }
        guard !hostPart.isEmpty, !portPart.isEmpty, portPart.allSatisfy(\.isASCII),
            portPart.allSatisfy(\.isNumber), let port = UInt16(portPart)
        else { return nil }
        self.host = String(hostPart)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A peer to link with or unlink from.
public struct LLMClusterInfo: Sendable, Hashable {
    public var remoteClusterID: UInt64
    public var remoteRoleType: LLMRole?
    public var localIPInfos: [IPEndpoint]
    public var remoteIPInfos: [IPEndpoint]

    public init(
        remoteClusterID: UInt64, remoteRoleType: LLMRole? = nil, localIPInfos: [IPEndpoint] = [],
        remoteIPInfos: [IPEndpoint] = []
    ) {
        self.remoteClusterID = remoteClusterID
        self.remoteRoleType = remoteRoleType
        self.localIPInfos = localIPInfos
        self.remoteIPInfos = remoteIPInfos
    }
}
