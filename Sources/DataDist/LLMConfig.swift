/// A memory pool: `size` bytes cut into pages of `1 << pageShift` bytes (`mem_pool_cfg`).
///
/// Written as JSON in the options `llm.MemPoolConfig` / `llm.HostMemPoolConfig`:
/// `{"memory_size": 1048576, "page_shift": 16}` (`page_shift` optional, default 16). See `init(json:)`,
/// `json` and `validate()`.
public struct MemoryPoolConfig: Sendable, Hashable {
    public var size: Int
    public var pageShift: Int = 16

    public init(size: Int, pageShift: Int = 16) {
        self.size = size
        self.pageShift = pageShift
    }
}

/// Configuration of an `LLMDataDist` instance.
///
/// Build one field by field, or from the reference's option strings with `init(options:)`; `options` writes
/// them back (`LLMConfig(options: config.options) == config` for every config that passes `validate()`).
///
/// Option keys (names exactly as the reference's), and the field each sets:
///
/// - `ge.exec.deviceId`, alias `llm.DeviceId` → `deviceID`: one non-negative int32. A list such as `"0;1"` is
///   refused: one device per instance. `ge.session_device_id`, when given, must equal it.
/// - `llm.SyncKvCacheWaitTime` → `syncKVTimeout`: milliseconds, digits only, 1...Int32.max.
/// - `llm.listenIpInfo`, alias `llm.ListenIpInfo` → `listenAddress`: `"ip:port"` or `"[ipv6]:port"`, with a
///   numeric address.
/// - `llm.EnableRemoteCacheAccessible` → `enableRemoteCacheAccessible`: `"1"` / `"0"`. Absent means `"0"`, or
///   `"1"` when `llm.LocalCommRes` or `llm.TransferBackend` is given (as the reference).
/// - `llm.EnableCacheManager`: `"1"` when present; `"0"` throws `.featureNotEnabled` (only cache-manager mode
///   exists).
/// - `llm.MemPoolConfig` → `memoryPool`, `llm.HostMemPoolConfig` → `hostMemoryPool`: pool JSON, see
///   `MemoryPoolConfig.init(json:)`.
/// - `llm.CopyThreads` → `copyThreads`: 1...256. **DataDist's own key.**
/// - `llm.EnforceProductSupport` → `enforceProductSupport`: `"1"` / `"0"`. **DataDist's own key**, not the
///   reference's: `"0"` makes operations the detected product does not support log a warning instead of
///   throwing.
/// - `llm.RequestKeyLeaseTime` → `requestKeyLease`: milliseconds, digits only, 1...Int32.max. **DataDist's own
///   key**; absent (the default) means no lease, as the reference.
/// - `llm.LinkSecret` → `linkSecret`: 16...1024 bytes of UTF-8. **DataDist's own key**; absent (the default)
///   means links are not authenticated, as the reference.
/// - `llm.Transport` → `transport`: `auto`, `shm` or `ucx` (`TransportPreference`). **DataDist's own key.**
///
/// Keys kept verbatim in `additionalOptions` (validated where the reference gives a rule):
/// `llm.LinkTotalTime` (seconds, 0...2^32−1), `llm.LinkRetryCount` (1...100), `llm.RdmaTrafficClass` and
/// `llm.RdmaServiceLevel` (uint32), `llm.MemoryUtilization` (decimal in 0...1), `llm.LocalCommRes` (JSON),
/// `llm.TransferBackend` (only `"hixl"`), `llm.GlobalResourceConfig` (JSON), `llm.Role` (`Prompt`, `Decoder`
/// or `Mix`; the engine sets its own from the constructor), `llm.EnableSwitchRole` (`"1"` / `"0"`, legacy,
/// ignored), `llm.BufPoolCfg` (legacy, ignored), `ge.flowGraphMemMaxSize` (all digits), and any other `ge.*` key.
///
/// Any other key throws `.paramInvalid` naming it and the valid keys closest to it.
/// `LLMOptionKey` has every key as a constant.
public struct LLMConfig: Sendable, Hashable {
    public var deviceID: Int32 = 0
    /// The device pool `allocateCache` and friends take memory from (`mem_pool_cfg`).
    public var memoryPool: MemoryPoolConfig?
    /// The host pool (`host_mem_pool_cfg`).
    public var hostMemoryPool: MemoryPoolConfig?
    /// Deadline of every pull and push (`sync_kv_timeout`); a whole, positive number of milliseconds.
    public var syncKVTimeout: Duration = .milliseconds(1000)
    /// Makes this instance a link server on this endpoint (`listen_ip_info`).
    public var listenAddress: IPEndpoint?
    /// Peers read this instance's cache table one-sidedly (`enable_remote_cache_accessible`).
    public var enableRemoteCacheAccessible = false
    /// When false, operations the detected product does not support log a warning instead of throwing.
    public var enforceProductSupport = true
    /// Threads that copy one large transfer (the calling thread included); nil uses every available core.
    /// Transfers under `parallelCopyThreshold` bytes always stay on the calling thread.
    public var copyThreads: Int?
    /// How long a request key of an allocated cache may stay bound without being pulled; nil (the default) keeps
    /// it until it is pulled or removed, as the reference does. Once its lease runs out the key is unbound as
    /// `CacheManager.removeCacheKey` would (the cache's memory goes if nothing else holds it), counted in
    /// `CacheAudit.expiredKeys` and logged. A lease starts when the key is bound, and again when a pull gives
    /// it back (a failed transfer) or pulls only some of its layers; a key taken by a pull in flight never
    /// expires. Prefix keys, blocks keys and keys of registered caches have no lease. A whole, positive number
    /// of milliseconds; refused with `enableRemoteCacheAccessible`, where pulls do not consume keys.
    public var requestKeyLease: Duration?
    /// A secret shared by the clusters allowed to link with this one; nil (the default) links with any peer, as the
    /// reference does. With a secret, both sides of a link prove they hold the same one (a challenge-response
    /// with HMAC-SHA256 over fresh nonces; the secret never crosses the wire) before the link is set up: a peer
    /// without it, or with another, is refused with `.linkFailed` before it holds a cluster id here, so it
    /// cannot claim another cluster's id. Both sides need it, or neither. It authenticates the link, it does
    /// not encrypt it. 16...1024 bytes of UTF-8; never shown in error messages.
    public var linkSecret: String?
    /// The bytes a `linkSecret` may have.
    public static let linkSecretLengths: ClosedRange<Int> = 16...1024
    /// Which data plane moves this instance's transfers: the memfd mapping on one host, UCX otherwise (the
    /// default, `.automatic`), or only one of them. `DATADIST_TRANSPORT` overrides `.automatic`.
    public var transport: TransportPreference = .automatic
    /// The size, in bytes, from which one pull or push is split over `copyThreads` threads; smaller transfers
    /// are copied on the calling thread. Default and current value: 2 MiB (2,097,152 bytes), the split point
    /// measured by `datadist bench`'s `copy_engine` rows (README, Performance). Read-only: tune the split with
    /// `copyThreads` (1 keeps every transfer on the calling thread).
    public static let parallelCopyThreshold = CopyEngine.defaultParallelThreshold

    static let copyThreadsRange: ClosedRange<UInt64> = 1...256
    /// Reference options without a field of their own (`llm.LinkRetryCount`, `llm.LocalCommRes`, `ge.*`, …),
    /// kept and emitted verbatim. `validate()` checks each against its rule; keys that have a field
    /// (`ge.exec.deviceId`, `llm.SyncKvCacheWaitTime`, …) are refused here.
    public var additionalOptions: [String: String] = [:]

    public init() {}
}
