/// The option keys `LLMConfig(options:)` accepts, spelled exactly as the reference spells them.
public enum LLMOptionKey {
    /// Device id (`ge.exec.deviceId`); one non-negative int32.
    public static let deviceID = "ge.exec.deviceId"
    /// C++ alias of `deviceID` (`llm.DeviceId`).
    public static let deviceIDAlias = "llm.DeviceId"
    /// Session device id, emitted equal to the device id (`ge.session_device_id`).
    public static let sessionDeviceID = "ge.session_device_id"
    /// Pull/push timeout in milliseconds (`llm.SyncKvCacheWaitTime`).
    public static let syncKVTimeout = "llm.SyncKvCacheWaitTime"
    /// Listen endpoint (`llm.listenIpInfo`, the Python spelling).
    public static let listenIPInfo = "llm.listenIpInfo"
    /// C++ alias of `listenIPInfo` (`llm.ListenIpInfo`).
    public static let listenIPInfoAlias = "llm.ListenIpInfo"
    /// `"1"` / `"0"` (`llm.EnableRemoteCacheAccessible`).
    public static let enableRemoteCacheAccessible = "llm.EnableRemoteCacheAccessible"
    /// Must be `"1"` when present (`llm.EnableCacheManager`).
    public static let enableCacheManager = "llm.EnableCacheManager"
    /// Device pool JSON (`llm.MemPoolConfig`).
    public static let memoryPool = "llm.MemPoolConfig"
    /// Host pool JSON (`llm.HostMemPoolConfig`).
    public static let hostMemoryPool = "llm.HostMemPoolConfig"
    /// `"1"` / `"0"`; DataDist's own key, not the reference's (`llm.EnforceProductSupport`).
    public static let enforceProductSupport = "llm.EnforceProductSupport"
    /// Threads that copy one large transfer, 1...256; DataDist's own key (`llm.CopyThreads`).
    public static let copyThreads = "llm.CopyThreads"
    /// Lease of unpulled request keys in milliseconds, 1...Int32.max; DataDist's own key
    /// (`llm.RequestKeyLeaseTime`).
    public static let requestKeyLease = "llm.RequestKeyLeaseTime"
    /// The secret linked clusters share, 16...1024 bytes; DataDist's own key (`llm.LinkSecret`).
    public static let linkSecret = "llm.LinkSecret"
    /// `auto`, `shm` or `ucx`; DataDist's own key (`llm.Transport`).
    public static let transport = "llm.Transport"

    /// Link timeout in seconds, 0...2^32−1 (`llm.LinkTotalTime`).
    public static let linkTotalTime = "llm.LinkTotalTime"
    /// Link retries, 1...100 (`llm.LinkRetryCount`).
    public static let linkRetryCount = "llm.LinkRetryCount"
    /// uint32 (`llm.RdmaTrafficClass`).
    public static let rdmaTrafficClass = "llm.RdmaTrafficClass"
    /// uint32 (`llm.RdmaServiceLevel`).
    public static let rdmaServiceLevel = "llm.RdmaServiceLevel"
    /// Decimal in 0...1 (`llm.MemoryUtilization`, legacy).
    public static let memoryUtilization = "llm.MemoryUtilization"
    /// Local communication resource JSON (`llm.LocalCommRes`).
    public static let localCommRes = "llm.LocalCommRes"
    /// Only `"hixl"` (`llm.TransferBackend`).
    public static let transferBackend = "llm.TransferBackend"
    /// HIXL resource JSON (`llm.GlobalResourceConfig`).
    public static let globalResourceConfig = "llm.GlobalResourceConfig"
    /// `Prompt`, `Decoder` or `Mix` (`llm.Role`); the engine sets its own.
    public static let role = "llm.Role"
    /// Legacy v1 flag, `"1"` / `"0"`, ignored (`llm.EnableSwitchRole`).
    public static let enableSwitchRole = "llm.EnableSwitchRole"
    /// Legacy v1 buffer pool string, ignored (`llm.BufPoolCfg`).
    public static let bufferPoolConfig = "llm.BufPoolCfg"
    /// All digits (`ge.flowGraphMemMaxSize`).
    public static let flowGraphMemMaxSize = "ge.flowGraphMemMaxSize"

    /// Keys mapped onto `LLMConfig` fields (never stored in `additionalOptions`).
    public static let fieldKeys: [String] = [
        deviceID, deviceIDAlias, sessionDeviceID, syncKVTimeout, listenIPInfo, listenIPInfoAlias,
        enableRemoteCacheAccessible, enableCacheManager, memoryPool, hostMemoryPool, enforceProductSupport,
        copyThreads, requestKeyLease, linkSecret, transport,
    ]

    /// Named keys kept verbatim in `additionalOptions`; any other `ge.*` key is kept too.
    public static let passThroughKeys: [String] = [
        linkTotalTime, linkRetryCount, rdmaTrafficClass, rdmaServiceLevel, memoryUtilization, localCommRes,
        transferBackend, globalResourceConfig, role, enableSwitchRole, bufferPoolConfig, flowGraphMemMaxSize,
    ]

    /// Every named key.
    public static var allKeys: [String] { fieldKeys + passThroughKeys }

    /// True for keys that may live in `additionalOptions`.
    static func isPassThrough(_ key: String) -> Bool {
        if fieldKeys.contains(key) { return false }
        return passThroughKeys.contains(key) || key.hasPrefix("ge.")
    }

    /// True for a key that differs from a named key only in letter case (a typo, even under `ge.`).
    static func isMiscasedKnownKey(_ key: String) -> Bool {
        !allKeys.contains(key) && allKeys.contains { $0.lowercased() == key.lowercased() }
    }

    /// The named keys most like `key` (case-insensitive edit distance ≤ 3), closest first.
    static func suggestions(for key: String) -> [String] {
        let target = Array(key.lowercased().unicodeScalars)
        let scored = allKeys.map { ($0, editDistance(target, Array($0.lowercased().unicodeScalars))) }
        return scored.filter { $0.1 <= 3 }.sorted { ($0.1, $0.0) < ($1.1, $1.0) }.map(\.0)
    }

    /// The message for a key that is not accepted.
    static func unknownKeyMessage(_ key: String, _ value: String) -> String {
        let close = suggestions(for: key)
        let hint =
            close.isEmpty
            ? "valid keys: \(allKeys.joined(separator: ", ")), or any ge.* key"
            : "did you mean \(close.map { "\"\($0)\"" }.joined(separator: " or "))?"
        return "unknown option \"\(key)\" = \"\(value)\"; \(hint)"
    }

    /// Levenshtein distance.
    private static func editDistance(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> Int {
        if a.isEmpty { return b.count }
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: b.count)
            for (j, y) in b.enumerated() {
                current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
