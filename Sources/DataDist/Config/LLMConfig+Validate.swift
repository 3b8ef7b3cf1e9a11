import LinkLayer

extension LLMConfig {
    /// Checks every field: `deviceID >= 0`; `syncKVTimeout` and `requestKeyLease` whole numbers of milliseconds
    /// in 1...Int32.max, the lease only without `enableRemoteCacheAccessible`; `linkSecret` 16...1024 bytes;
    /// both pools (`MemoryPoolConfig.validate()`); `listenAddress` a numeric IPv4/IPv6 address; every
    /// `additionalOptions` entry against its key's rule (keys with a field of their own are refused); and that
    /// `llm.TransferBackend` comes with remote cache access and a listen address, as the reference requires.
    /// Throws `.paramInvalid` naming the field (and its option key) and the value.
    public func validate() throws(LLMError) {
        guard deviceID >= 0 else {
            throw .paramInvalid("deviceID (\(LLMOptionKey.deviceID)) \(deviceID) must be >= 0")
        }
        try Self.validateMilliseconds(syncKVTimeout, "syncKVTimeout (\(LLMOptionKey.syncKVTimeout))")
        if let requestKeyLease {
            let field = "requestKeyLease (\(LLMOptionKey.requestKeyLease))"
            try Self.validateMilliseconds(requestKeyLease, field)
            guard !enableRemoteCacheAccessible else {
                throw .paramInvalid(
                    "\(field) \(requestKeyLease) needs enableRemoteCacheAccessible false "
                        + "(\(LLMOptionKey.enableRemoteCacheAccessible) = \"0\"): pulls consume no keys there")
            }
        }
        if let linkSecret {
            let bytes = linkSecret.utf8.count
            guard Self.linkSecretLengths ~= bytes else {
                throw .paramInvalid(
                    "linkSecret (\(LLMOptionKey.linkSecret)) has \(bytes) bytes; it needs \(Self.linkSecretLengths) "
                        + "(the value is not shown)")
            }
        }
        if let copyThreads, !(Self.copyThreadsRange ~= UInt64(max(0, copyThreads))) || copyThreads < 1 {
            throw .paramInvalid(
                "copyThreads (\(LLMOptionKey.copyThreads)) \(copyThreads) must be in \(Self.copyThreadsRange)")
        }
        for (name, key, pool) in [
            ("memoryPool", LLMOptionKey.memoryPool, memoryPool),
            ("hostMemoryPool", LLMOptionKey.hostMemoryPool, hostMemoryPool),
        ] {
            guard let pool else { continue }
            do {
                try pool.validate()
            } catch {
                throw .paramInvalid("\(name) (\(key)) \(pool.json): \(error.message)")
            }
        }
        if let listenAddress, !SocketEndpoint.isNumericAddress(listenAddress.host) {
            throw .paramInvalid(
                "listenAddress (\(LLMOptionKey.listenIPInfo)) \(listenAddress): \"\(listenAddress.host)\" is not "
                    + "a numeric IPv4 or IPv6 address")
        }
        for (key, value) in additionalOptions.sorted(by: { $0.key < $1.key }) {
            if let field = Self.fieldName[key] {
                throw .paramInvalid(
                    "additionalOptions[\"\(key)\"] = \"\(value)\": this key has its own field; set \(field) instead")
            }
            try OptionValue.checkPassThrough(key, value)
        }
        if let backend = additionalOptions[LLMOptionKey.transferBackend] {
            let given = "option \"\(LLMOptionKey.transferBackend)\" = \"\(backend)\""
            guard listenAddress != nil else {
                throw .paramInvalid("\(given) needs \"\(LLMOptionKey.listenIPInfo)\" (listenAddress is nil)")
            }
            guard enableRemoteCacheAccessible else {
                throw .paramInvalid(
                    "\(given) needs \"\(LLMOptionKey.enableRemoteCacheAccessible)\" = \"1\" "
                        + "(enableRemoteCacheAccessible is false)")
            }
        }
    }

    /// Refuses a `duration` that is not a whole number of milliseconds in 1...Int32.max; `name` names the field.
    private static func validateMilliseconds(_ duration: Duration, _ name: String) throws(LLMError) {
        let field = "\(name) \(duration)"
        guard let milliseconds = wholeMilliseconds(duration) else {
            throw .paramInvalid("\(field) is not a whole number of milliseconds")
        }
        guard milliseconds > 0 else { throw .paramInvalid("\(field) must be > 0") }
        guard milliseconds <= Int64(Int32.max) else {
            throw .paramInvalid("\(field) is \(milliseconds) ms, above Int32.max ms")
        }
    }

    /// `duration` in milliseconds, or nil when it is not a whole number of them (or overflows Int64).
    static func wholeMilliseconds(_ duration: Duration) -> Int64? {
        let (seconds, attoseconds) = duration.components
        let attosecondsPerMillisecond: Int64 = 1_000_000_000_000_000
        guard attoseconds % attosecondsPerMillisecond == 0 else { return nil }
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        guard !overflow else { return nil }
        let (total, overflow2) = scaled.addingReportingOverflow(attoseconds / attosecondsPerMillisecond)
        return overflow2 ? nil : total
    }

    /// The `LLMConfig` field each field key sets.
    private static let fieldName: [String: String] = [
        LLMOptionKey.deviceID: "deviceID", LLMOptionKey.deviceIDAlias: "deviceID",
        LLMOptionKey.sessionDeviceID: "deviceID", LLMOptionKey.syncKVTimeout: "syncKVTimeout",
        LLMOptionKey.listenIPInfo: "listenAddress", LLMOptionKey.listenIPInfoAlias: "listenAddress",
        LLMOptionKey.enableRemoteCacheAccessible: "enableRemoteCacheAccessible",
        LLMOptionKey.enableCacheManager: "nothing (cache-manager mode is always on)",
        LLMOptionKey.memoryPool: "memoryPool", LLMOptionKey.hostMemoryPool: "hostMemoryPool",
        LLMOptionKey.enforceProductSupport: "enforceProductSupport", LLMOptionKey.copyThreads: "copyThreads",
        LLMOptionKey.requestKeyLease: "requestKeyLease", LLMOptionKey.linkSecret: "linkSecret",
        LLMOptionKey.transport: "transport",
    ]
}
