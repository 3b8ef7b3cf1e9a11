extension LLMConfig {
    /// Reads the reference's option strings (see the key list on `LLMConfig`), then `validate()`s the result.
    ///
    /// Throws `.paramInvalid` naming the key and value for a malformed value, an unknown key (with the closest
    /// valid keys), or aliases that disagree; `.featureNotEnabled` for `llm.EnableCacheManager` = `"0"`.
    /// Keys are read in sorted order, so the error for several bad keys is always the same one.
    public init(options: [String: String]) throws(LLMError) {
        self.init()
        var devices: [(key: String, value: String, id: Int32)] = []
        var session: (value: String, id: Int32)?
        var listens: [(key: String, value: String, endpoint: IPEndpoint)] = []
        var remoteAccessible: Bool?
        for (key, value) in options.sorted(by: { $0.key < $1.key }) {
            switch key {
            case LLMOptionKey.deviceID, LLMOptionKey.deviceIDAlias:
                devices.append((key, value, try OptionValue.deviceID(key, value)))
            case LLMOptionKey.sessionDeviceID:
                session = (value, try OptionValue.deviceID(key, value))
            case LLMOptionKey.syncKVTimeout:
                syncKVTimeout = .milliseconds(try OptionValue.timeoutMilliseconds(key, value))
            case LLMOptionKey.listenIPInfo, LLMOptionKey.listenIPInfoAlias:
                listens.append((key, value, try OptionValue.endpoint(key, value)))
            case LLMOptionKey.enableRemoteCacheAccessible:
                remoteAccessible = try OptionValue.flag(key, value)
            case LLMOptionKey.enableCacheManager:
                if value == "0" {
                    throw LLMError(
                        .featureNotEnabled,
                        "option \"\(key)\" = \"0\": only cache-manager mode exists; remove the key or set \"1\"")
                }
                guard value == "1" else { throw OptionValue.invalid(key, value, "must be \"1\"") }
            case LLMOptionKey.memoryPool:
                memoryPool = try Self.pool(key, value)
            case LLMOptionKey.hostMemoryPool:
                hostMemoryPool = try Self.pool(key, value)
            case LLMOptionKey.enforceProductSupport:
                enforceProductSupport = try OptionValue.flag(key, value)
            case LLMOptionKey.copyThreads:
                copyThreads = Int(try OptionValue.unsigned(key, value, in: LLMConfig.copyThreadsRange))
            case LLMOptionKey.requestKeyLease:
                requestKeyLease = .milliseconds(try OptionValue.timeoutMilliseconds(key, value))
            case LLMOptionKey.linkSecret:
                linkSecret = value
            case LLMOptionKey.transport:
                guard let preference = TransportPreference(optionValue: value) else {
                    throw OptionValue.invalid(key, value, "must be auto, shm or ucx")
                }
                transport = preference
            default:
                try OptionValue.checkPassThrough(key, value)
                additionalOptions[key] = value
            }
        }
        if devices.count == 2, devices[0].id != devices[1].id {
            throw .paramInvalid(
                "options \"\(devices[0].key)\" = \"\(devices[0].value)\" and \"\(devices[1].key)\" = "
                    + "\"\(devices[1].value)\" name different devices; give one device id")
        }
        deviceID = devices.first?.id ?? 0
        if let session, session.id != deviceID {
            throw .paramInvalid(
                "option \"\(LLMOptionKey.sessionDeviceID)\" = \"\(session.value)\" differs from the device id "
                    + "\(deviceID); it must equal \"\(LLMOptionKey.deviceID)\"")
        }
        if listens.count == 2, listens[0].endpoint != listens[1].endpoint {
            throw .paramInvalid(
                "options \"\(listens[0].key)\" = \"\(listens[0].value)\" and \"\(listens[1].key)\" = "
                    + "\"\(listens[1].value)\" name different endpoints; give one")
        }
        listenAddress = listens.first?.endpoint
        // As the reference's init: a local comm resource or a transfer backend turns the flag on unless given.
        enableRemoteCacheAccessible =
            remoteAccessible
            ?? (additionalOptions[LLMOptionKey.localCommRes] != nil
                || additionalOptions[LLMOptionKey.transferBackend] != nil)
        try validate()
    }

    /// The option strings for this configuration; `init(options:)` reads them back to an equal value.
    ///
    /// Always emits `ge.exec.deviceId`, `ge.session_device_id`, `llm.SyncKvCacheWaitTime`,
    /// `llm.EnableCacheManager` (`"1"`) and `llm.EnableRemoteCacheAccessible` (explicit, so no default of the
    /// reference applies); `llm.listenIpInfo` and the pools when set; `llm.EnforceProductSupport` only when
    /// `"0"`; `llm.CopyThreads`, `llm.RequestKeyLeaseTime` and `llm.LinkSecret` when set; `llm.Transport` unless
    /// `.automatic`; and `additionalOptions` verbatim. Aliases are written under their primary key.
    public var options: [String: String] {
        var result = additionalOptions
        result[LLMOptionKey.deviceID] = String(deviceID)
        result[LLMOptionKey.sessionDeviceID] = String(deviceID)
        // A timeout that is not whole milliseconds is written so that reading it back fails.
        result[LLMOptionKey.syncKVTimeout] =
            Self.wholeMilliseconds(syncKVTimeout).map { String($0) } ?? "\(syncKVTimeout)"
        result[LLMOptionKey.enableCacheManager] = "1"
        result[LLMOptionKey.enableRemoteCacheAccessible] = enableRemoteCacheAccessible ? "1" : "0"
        if let listenAddress { result[LLMOptionKey.listenIPInfo] = listenAddress.description }
        if let memoryPool { result[LLMOptionKey.memoryPool] = memoryPool.json }
        if let hostMemoryPool { result[LLMOptionKey.hostMemoryPool] = hostMemoryPool.json }
        if !enforceProductSupport { result[LLMOptionKey.enforceProductSupport] = "0" }
        if let copyThreads { result[LLMOptionKey.copyThreads] = String(copyThreads) }
        if let requestKeyLease {
            result[LLMOptionKey.requestKeyLease] =
                Self.wholeMilliseconds(requestKeyLease).map { String($0) } ?? "\(requestKeyLease)"
        }
        if let linkSecret { result[LLMOptionKey.linkSecret] = linkSecret }
        if transport != .automatic { result[LLMOptionKey.transport] = transport.optionValue }
        return result
    }

    private static func pool(_ key: String, _ value: String) throws(LLMError) -> MemoryPoolConfig {
        let pool: MemoryPoolConfig
        do {
            pool = try MemoryPoolConfig(json: value)
        } catch {
            throw .paramInvalid("option \"\(key)\": \(error.message)")
        }
        do {
            try pool.validate()
        } catch {
            throw OptionValue.invalid(key, value, error.message)
        }
        return pool
    }
}
