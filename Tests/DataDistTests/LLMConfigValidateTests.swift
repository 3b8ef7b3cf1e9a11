import DataDist
import Testing

@Suite("LLMConfig.validate")
struct LLMConfigValidateTests {
    @Test("the default config is valid")
    func defaultValid() throws {
        try LLMConfig().validate()
    }

    @Test("a negative device id is refused")
    func deviceID() throws {
        var config = LLMConfig()
        config.deviceID = -1
        let error = try #require(caught { try config.validate() })
        #expect(error.status == .paramInvalid && error.message.contains("deviceID") && error.message.contains("-1"))
    }

    @Test(
        "timeouts must be whole positive milliseconds within Int32",
        arguments: [
            Duration.microseconds(1500), .zero, .milliseconds(-5), .nanoseconds(1),
            .milliseconds(Int64(Int32.max) + 1), .seconds(Int64.max),
        ])
    func badTimeout(timeout: Duration) throws {
        var config = LLMConfig()
        config.syncKVTimeout = timeout
        let error = try #require(caught { try config.validate() })
        #expect(error.status == .paramInvalid)
        #expect(error.message.contains("syncKVTimeout") && error.message.contains("llm.SyncKvCacheWaitTime"))
        #expect(error.message.contains("\(timeout)"), "\(error.message)")
        // Its option string does not read back as a valid config either.
        #expect(caught { _ = try LLMConfig(options: config.options) } != nil)
    }

    @Test(
        "whole-millisecond timeouts are accepted",
        arguments: [Duration.seconds(2), .milliseconds(1), .milliseconds(Int32.max)])
    func goodTimeout(timeout: Duration) throws {
        var config = LLMConfig()
        config.syncKVTimeout = timeout
        try config.validate()
        #expect(try LLMConfig(options: config.options).syncKVTimeout == timeout)
    }

    @Test("invalid pools are refused, naming the field")
    func pools() throws {
        var config = LLMConfig()
        config.memoryPool = MemoryPoolConfig(size: 100)
        let device = try #require(caught { try config.validate() })
        #expect(device.message.contains("memoryPool") && device.message.contains("memory_size 100"))
        config.memoryPool = nil
        config.hostMemoryPool = MemoryPoolConfig(size: 1 << 20, pageShift: 31)
        let host = try #require(caught { try config.validate() })
        #expect(host.message.contains("hostMemoryPool") && host.message.contains("page_shift 31"))
    }

    @Test("listen addresses must be numeric", arguments: ["example.com", "[::1]", "", "1.2.3"])
    func listen(host: String) throws {
        var config = LLMConfig()
        config.listenAddress = IPEndpoint(host: host, port: 80)
        let error = try #require(caught { try config.validate() })
        #expect(error.status == .paramInvalid && error.message.contains("listenAddress"))
        #expect(error.message.contains("\"\(host)\""), "\(error.message)")
    }

    @Test(
        "additionalOptions: field keys, bad values and unknown keys are refused",
        arguments: [
            ("ge.exec.deviceId", "1", "deviceID"), ("llm.SyncKvCacheWaitTime", "5", "syncKVTimeout"),
            ("llm.ListenIpInfo", "1.2.3.4:5", "listenAddress"), ("llm.EnableCacheManager", "1", "cache-manager"),
            ("llm.LinkRetryCount", "0", "llm.LinkRetryCount"), ("llm.Bogus", "1", "llm.Bogus"),
            ("GE.exec.deviceid", "1", "did you mean"),
        ])
    func additional(key: String, value: String, named: String) throws {
        var config = LLMConfig()
        config.additionalOptions[key] = value
        let error = try #require(caught { try config.validate() })
        #expect(error.status == .paramInvalid)
        #expect(
            error.message.contains(key) && error.message.contains(value) && error.message.contains(named),
            "\(error.message)")
    }

    @Test("hixl needs remote cache access and a listen address")
    func hixl() throws {
        var config = LLMConfig()
        config.additionalOptions["llm.TransferBackend"] = "hixl"
        #expect(caught { try config.validate() }?.message.contains("llm.listenIpInfo") == true)
        config.listenAddress = IPEndpoint(host: "127.0.0.1", port: 26000)
        #expect(caught { try config.validate() }?.message.contains("llm.EnableRemoteCacheAccessible") == true)
        config.enableRemoteCacheAccessible = true
        try config.validate()
    }
}
