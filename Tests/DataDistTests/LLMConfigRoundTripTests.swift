import DataDist
import DataDistTestSupport
import Testing

@Suite("LLMConfig option round trips")
struct LLMConfigRoundTripTests {
    /// A random config that passes validate().
    static func randomConfig(_ rng: inout SplitMix64) -> LLMConfig {
        var config = LLMConfig()
        config.deviceID =
            Bool.random(using: &rng) ? Int32.random(in: 0...15, using: &rng) : .random(in: 0...Int32.max, using: &rng)
        config.syncKVTimeout = .milliseconds(Int32.random(in: 1...Int32.max, using: &rng))
        if Bool.random(using: &rng) { config.memoryPool = randomPool(&rng) }
        if Bool.random(using: &rng) { config.hostMemoryPool = randomPool(&rng) }
        if Bool.random(using: &rng) {
            let hosts = [
                "127.0.0.1", "0.0.0.0", "::1", "fe80::1234", "2001:db8::5", "::ffff:10.1.2.3",
                "\(UInt8.random(in: 0...255, using: &rng)).\(UInt8.random(in: 0...255, using: &rng)).0.1",
            ]
            config.listenAddress = IPEndpoint(
                host: hosts.randomElement(using: &rng)!, port: .random(in: 0...65535, using: &rng))
        }
        config.enableRemoteCacheAccessible = Bool.random(using: &rng)
        config.enforceProductSupport = Bool.random(using: &rng)
        if Int.random(in: 0..<3, using: &rng) == 0 {
            let printable = (0..<Int.random(in: 16...64, using: &rng)).map { _ in
                Character(Unicode.Scalar(UInt8.random(in: 0x20...0x7E, using: &rng)))
            }
            config.linkSecret = Bool.random(using: &rng) ? String(printable) : "ключ " + String(printable)
        }
        let extras: [(String, [String])] = [
            ("llm.LinkTotalTime", ["0", "120", "4294967295"]), ("llm.LinkRetryCount", ["1", "3", "100", "007"]),
            ("llm.RdmaTrafficClass", ["132"]), ("llm.RdmaServiceLevel", ["4"]),
            ("llm.MemoryUtilization", ["0.95", "0", "1"]), ("llm.LocalCommRes", ["", #"{"version":"1.3"}"#]),
            ("llm.GlobalResourceConfig", ["", "{}"]), ("llm.Role", ["Prompt", "Decoder", "Mix"]),
            ("ge.flowGraphMemMaxSize", ["1024"]), ("ge.graphRunMode", ["0", "1"]),
        ]
        for (key, values) in extras where Int.random(in: 0..<4, using: &rng) == 0 {
            config.additionalOptions[key] = values.randomElement(using: &rng)!
        }
        if config.listenAddress != nil, config.enableRemoteCacheAccessible, Bool.random(using: &rng) {
            config.additionalOptions["llm.TransferBackend"] = "hixl"
        }
        return config
    }

    static func randomPool(_ rng: inout SplitMix64) -> MemoryPoolConfig {
        let shift = Int.random(in: 10...30, using: &rng)
        let maxSize = ((1 << 32) - 1) << shift - 1
        let size =
            Bool.random(using: &rng)
            ? Int.random(in: (1 << shift)...(1 << shift) * 8, using: &rng)
            : Int.random(in: (1 << shift)...maxSize, using: &rng)
        return MemoryPoolConfig(size: size, pageShift: shift)
    }

    @Test("LLMConfig(options: cfg.options) == cfg for 2000 generated valid configs")
    func roundTrip() throws {
        var rng = SplitMix64(seed: 0xDA7A_D157)
        for _ in 0..<2000 {
            let config = Self.randomConfig(&rng)
            try config.validate()
            let back = try LLMConfig(options: config.options)
            // #require stops at the first counterexample instead of flooding the log.
            try #require(back == config, "\(config.options)")
            try #require(back.options == config.options)
        }
    }

    @Test("options read from aliases and non-canonical spellings come back normalised")
    func normalisation() throws {
        let given = [
            "llm.DeviceId": "02", "llm.SyncKvCacheWaitTime": "0500", "llm.ListenIpInfo": "[0:0::1]:080",
            "llm.MemPoolConfig": #"{"page_shift":10, "memory_size":2048}"#, "llm.EnableCacheManager": "1",
            "llm.EnforceProductSupport": "1", "llm.LinkRetryCount": "007", "ge.custom": " spaced ",
        ]
        let expected = [
            "ge.exec.deviceId": "2", "ge.session_device_id": "2", "llm.SyncKvCacheWaitTime": "500",
            "llm.listenIpInfo": "[0:0::1]:80", "llm.MemPoolConfig": #"{"memory_size": 2048, "page_shift": 10}"#,
            "llm.EnableCacheManager": "1", "llm.EnableRemoteCacheAccessible": "0", "llm.LinkRetryCount": "007",
            "ge.custom": " spaced ",
        ]
        let options = try LLMConfig(options: given).options
        #expect(options == expected)
        #expect(try LLMConfig(options: options).options == options)
    }

    @Test("normalising twice changes nothing, over generated option sets with aliases")
    func idempotent() throws {
        var rng = SplitMix64(seed: 42)
        for _ in 0..<500 {
            var options = Self.randomConfig(&rng).options
            if Bool.random(using: &rng), let id = options.removeValue(forKey: "ge.exec.deviceId") {
                options["llm.DeviceId"] = id
                options.removeValue(forKey: "ge.session_device_id")
            }
            if Bool.random(using: &rng), let listen = options.removeValue(forKey: "llm.listenIpInfo") {
                options["llm.ListenIpInfo"] = listen
            }
            if Bool.random(using: &rng) { options.removeValue(forKey: "llm.EnableCacheManager") }
            let once = try LLMConfig(options: options).options
            #expect(try LLMConfig(options: once).options == once)
            #expect(once["llm.DeviceId"] == nil && once["llm.ListenIpInfo"] == nil)
            #expect(once["ge.exec.deviceId"] == options["ge.exec.deviceId"] ?? options["llm.DeviceId"])
        }
    }
}
