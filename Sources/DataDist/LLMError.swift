/// A status code of the reference implementation, with its numeric value (`llm_error_codes.h`).
public struct LLMStatusCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let success = LLMStatusCode(rawValue: 0)
    public static let failed = LLMStatusCode(rawValue: 0xFFFF_FFFF)
    public static let waitProcessTimeout = LLMStatusCode(rawValue: 0x5010_B001)
    public static let kvCacheNotExist = LLMStatusCode(rawValue: 0x5010_B002)
    public static let repeatRequest = LLMStatusCode(rawValue: 0x5010_B003)
    public static let requestAlreadyCompleted = LLMStatusCode(rawValue: 0x5010_B004)
    public static let paramInvalid = LLMStatusCode(rawValue: 0x5010_B005)
    public static let engineFinalized = LLMStatusCode(rawValue: 0x5010_B006)
    public static let notYetLink = LLMStatusCode(rawValue: 0x5010_B007)
    public static let alreadyLink = LLMStatusCode(rawValue: 0x5010_B008)
    public static let linkFailed = LLMStatusCode(rawValue: 0x5010_B009)
    public static let unlinkFailed = LLMStatusCode(rawValue: 0x5010_B00A)
    public static let notifyPromptUnlinkFailed = LLMStatusCode(rawValue: 0x5010_B00B)
    public static let clusterNumExceedLimit = LLMStatusCode(rawValue: 0x5010_B00C)
    public static let processingLink = LLMStatusCode(rawValue: 0x5010_B00D)
    public static let deviceOutOfMemory = LLMStatusCode(rawValue: 0x5010_B00E)
    public static let prefixAlreadyExist = LLMStatusCode(rawValue: 0x5010_B00F)
    public static let prefixNotExist = LLMStatusCode(rawValue: 0x5010_B010)
    public static let seqLenOverLimit = LLMStatusCode(rawValue: 0x5010_B011)
    public static let noFreeBlock = LLMStatusCode(rawValue: 0x5010_B012)
    public static let blocksOutOfMemory = LLMStatusCode(rawValue: 0x5010_B013)
    public static let cacheIncompatible = LLMStatusCode(rawValue: 0x5010_B014)
    public static let cacheKeyAlreadyExist = LLMStatusCode(rawValue: 0x5010_B015)
    public static let copyCacheFailed = LLMStatusCode(rawValue: 0x5010_B016)
    public static let cacheIDAlreadyExist = LLMStatusCode(rawValue: 0x5010_B017)
    public static let existLink = LLMStatusCode(rawValue: 0x5010_B018)
    public static let featureNotEnabled = LLMStatusCode(rawValue: 0x5010_B019)
    public static let timeout = LLMStatusCode(rawValue: 0x5010_B01A)
    public static let linkBusy = LLMStatusCode(rawValue: 0x5010_B01B)
    public static let outOfMemory = LLMStatusCode(rawValue: 0x5010_B01C)
    /// ACL 507053, passed through: uncorrectable error in device memory.
    public static let deviceMemError = LLMStatusCode(rawValue: 507_053)
    /// ACL 507057, passed through: suspected uncorrectable error on the remote side.
    public static let suspectRemoteError = LLMStatusCode(rawValue: 507_057)

    static let names: [UInt32: String] = [
        0: "LLM_SUCCESS", 0xFFFF_FFFF: "LLM_FAILED", 0x5010_B001: "LLM_WAIT_PROCESS_TIMEOUT",
        0x5010_B002: "LLM_KV_CACHE_NOT_EXIST", 0x5010_B003: "LLM_REPEAT_REQUEST",
        0x5010_B004: "LLM_REQUEST_ALREADY_COMPLETED", 0x5010_B005: "LLM_PARAM_INVALID",
        0x5010_B006: "LLM_ENGINE_FINALIZED", 0x5010_B007: "LLM_NOT_YET_LINK", 0x5010_B008: "LLM_ALREADY_LINK",
        0x5010_B009: "LLM_LINK_FAILED", 0x5010_B00A: "LLM_UNLINK_FAILED",
        0x5010_B00B: "LLM_NOTIFY_PROMPT_UNLINK_FAILED", 0x5010_B00C: "LLM_CLUSTER_NUM_EXCEED_LIMIT",
        0x5010_B00D: "LLM_PROCESSING_LINK", 0x5010_B00E: "LLM_DEVICE_OUT_OF_MEMORY",
        0x5010_B00F: "LLM_PREFIX_ALREADY_EXIST", 0x5010_B010: "LLM_PREFIX_NOT_EXIST",
        0x5010_B011: "LLM_SEQ_LEN_OVER_LIMIT", 0x5010_B012: "LLM_NO_FREE_BLOCK",
        0x5010_B013: "LLM_BLOCKS_OUT_OF_MEMORY", 0x5010_B014: "LLM_CACHE_INCOMPATIBLE",
        0x5010_B015: "LLM_CACHE_KEY_ALREADY_EXIST", 0x5010_B016: "LLM_COPY_CACHE_FAILED",
        0x5010_B017: "LLM_CACHE_ID_ALREADY_EXIST", 0x5010_B018: "LLM_EXIST_LINK",
        0x5010_B019: "LLM_FEATURE_NOT_ENABLED", 0x5010_B01A: "LLM_TIMEOUT", 0x5010_B01B: "LLM_LINK_BUSY",
        0x5010_B01C: "LLM_OUT_OF_MEMORY", 507_053: "LLM_DEVICE_MEM_ERROR", 507_057: "LLM_SUSPECT_REMOTE_ERROR",
    ]

    /// Every named status code.
    public static var allKnown: [LLMStatusCode] { names.keys.sorted().map(LLMStatusCode.init(rawValue:)) }

    /// The reference's name, e.g. `LLM_PARAM_INVALID`.
    public var name: String { Self.names[rawValue] ?? "LLM_FAILED" }

    public var description: String { "\(name) (0x\(String(rawValue, radix: 16, uppercase: true)))" }
}

/// The one error DataDist throws: a status code and a message naming what was wrong and with which value.
public struct LLMError: Error, Sendable, Hashable, CustomStringConvertible {
    public let status: LLMStatusCode
    public let message: String

    public init(_ status: LLMStatusCode, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "\(status.name): \(message)" }

    static func paramInvalid(_ message: String) -> LLMError { LLMError(.paramInvalid, message) }
}
