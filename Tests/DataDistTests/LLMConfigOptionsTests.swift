import DataDist
import Testing

@Suite("LLMConfig(options:) field keys")
struct LLMConfigOptionsTests {
    @Test("the default config emits the minimal explicit set, and reads back")
    func defaults() throws {
        #expect(LLMConfig().options == defaultOptions())
        #expect(try LLMConfig(options: [:]) == LLMConfig())
        #expect(try LLMConfig(options: defaultOptions()) == LLMConfig())
    }

    @Test(
        "device id from either key", arguments: ["ge.exec.deviceId", "llm.DeviceId"], ["0", "7", "2147483647", "007"])
    func deviceID(key: String, value: String) throws {
        let config = try LLMConfig(options: [key: value])
        #expect(config.deviceID == Int32(value)!)
        #expect(config.options["ge.exec.deviceId"] == String(Int32(value)!))
        #expect(config.options["ge.session_device_id"] == String(Int32(value)!))
        #expect(config.options["llm.DeviceId"] == nil)
    }

    @Test("A01: the list form \"0;1\" is rejected here (one device per instance, spec §14 #8)")
    func a01ListRejected() throws {
        for key in ["ge.exec.deviceId", "llm.DeviceId"] {
            let error = try #require(caught { _ = try LLMConfig(options: [key: "0;1"]) })
            #expect(error.status == .paramInvalid)
            #expect(error.message.contains(key) && error.message.contains("\"0;1\""), "\(error.message)")
            #expect(error.message.contains("one device per instance"))
        }
    }

    @Test(
        "invalid device ids", arguments: ["ge.exec.deviceId", "llm.DeviceId", "ge.session_device_id"],
        ["-1", "abc", "", "2147483648", "1.0", " 1", "+1", "0,1", "99999999999999999999999"])
    func invalidDeviceID(key: String, value: String) throws {
        let error = try #require(caught { _ = try LLMConfig(options: [key: value]) })
        #expect(error.status == .paramInvalid)
        #expect(error.message.contains("\"\(key)\" = \"\(value)\""), "\(error.message)")
    }

    @Test("device id aliases and the session id must agree")
    func deviceAgreement() throws {
        #expect(try LLMConfig(options: ["ge.exec.deviceId": "3", "llm.DeviceId": "3"]).deviceID == 3)
        #expect(try LLMConfig(options: ["ge.exec.deviceId": "3", "ge.session_device_id": "3"]).deviceID == 3)
        let clash = try #require(caught { _ = try LLMConfig(options: ["ge.exec.deviceId": "3", "llm.DeviceId": "4"]) })
        #expect(clash.message.contains("\"3\"") && clash.message.contains("\"4\""), "\(clash.message)")
        let session = try #require(
            caught { _ = try LLMConfig(options: ["ge.exec.deviceId": "3", "ge.session_device_id": "4"]) })
        #expect(session.message.contains("ge.session_device_id") && session.message.contains("\"4\""))
        // The session id alone must match the default device 0.
        #expect(caught { _ = try LLMConfig(options: ["ge.session_device_id": "1"]) } != nil)
    }

    @Test("A06: sync_kv_timeout \"abc\" and \"0\" fail, \"3000\" is 3000 ms")
    func a06() throws {
        for bad in ["abc", "0"] {
            let error = try #require(caught { _ = try LLMConfig(options: ["llm.SyncKvCacheWaitTime": bad]) })
            #expect(error.status == .paramInvalid)
            #expect(error.message.contains("llm.SyncKvCacheWaitTime") && error.message.contains("\"\(bad)\""))
        }
        let config = try LLMConfig(options: ["llm.SyncKvCacheWaitTime": "3000"])
        #expect(config.syncKVTimeout == .milliseconds(3000))
        #expect(config.options["llm.SyncKvCacheWaitTime"] == "3000")
    }

    @Test("timeout bounds", arguments: ["-1", "", "00", "2147483648", "1.5", "1000ms", "99999999999999999999999"])
    func invalidTimeout(value: String) throws {
        let error = try #require(caught { _ = try LLMConfig(options: ["llm.SyncKvCacheWaitTime": value]) })
        #expect(error.status == .paramInvalid)
        #expect(error.message.contains("\"llm.SyncKvCacheWaitTime\" = \"\(value)\""), "\(error.message)")
    }

    @Test("timeout extremes and leading zeros")
    func timeoutExtremes() throws {
        #expect(
            try LLMConfig(options: ["llm.SyncKvCacheWaitTime": "2147483647"]).syncKVTimeout == .milliseconds(Int32.max))
        #expect(try LLMConfig(options: ["llm.SyncKvCacheWaitTime": "1"]).syncKVTimeout == .milliseconds(1))
        #expect(try LLMConfig(options: ["llm.SyncKvCacheWaitTime": "007"]).options["llm.SyncKvCacheWaitTime"] == "7")
    }

    @Test(
        "listen endpoints from either key",
        arguments: ["llm.listenIpInfo", "llm.ListenIpInfo"],
        [
            ("127.0.0.1:26000", "127.0.0.1:26000"), ("[::1]:26000", "[::1]:26000"),
            ("[2001:db8::5]:1", "[2001:db8::5]:1"), ("10.0.0.1:00080", "10.0.0.1:80"), ("0.0.0.0:0", "0.0.0.0:0"),
        ])
    func listen(key: String, pair: (String, String)) throws {
        let config = try LLMConfig(options: [key: pair.0])
        #expect(config.listenAddress?.description == pair.1)
        #expect(config.options["llm.listenIpInfo"] == pair.1)
        #expect(config.options["llm.ListenIpInfo"] == nil)
    }

    @Test(
        "invalid listen endpoints", arguments: ["llm.listenIpInfo", "llm.ListenIpInfo"],
        [
            "localhost:80", "1.2.3.4", "1.2.3.4:70000", "::1:80", "[::1]", "1.2.3.256:1", "", ":80", "01.2.3.4:80",
            "[host]:80", "1.2.3.4:-1",
        ])
    func invalidListen(key: String, value: String) throws {
        let error = try #require(caught { _ = try LLMConfig(options: [key: value]) })
        #expect(error.status == .paramInvalid)
        #expect(error.message.contains("\"\(key)\" = \"\(value)\""), "\(error.message)")
    }

    @Test("listen aliases must agree")
    func listenAgreement() throws {
        let same = ["llm.listenIpInfo": "127.0.0.1:1", "llm.ListenIpInfo": "127.0.0.1:01"]
        #expect(try LLMConfig(options: same).listenAddress == IPEndpoint(host: "127.0.0.1", port: 1))
        let error = try #require(
            caught {
                _ = try LLMConfig(options: ["llm.listenIpInfo": "127.0.0.1:1", "llm.ListenIpInfo": "127.0.0.1:2"])
            })
        #expect(error.message.contains("127.0.0.1:1") && error.message.contains("127.0.0.1:2"))
    }

    @Test("EnableRemoteCacheAccessible: 1/0, defaults as the reference")
    func remoteAccessible() throws {
        let key = "llm.EnableRemoteCacheAccessible"
        #expect(try LLMConfig(options: [key: "1"]).enableRemoteCacheAccessible)
        #expect(try !LLMConfig(options: [key: "0"]).enableRemoteCacheAccessible)
        #expect(try !LLMConfig(options: [:]).enableRemoteCacheAccessible)
        // A local comm resource turns it on unless given.
        #expect(try LLMConfig(options: ["llm.LocalCommRes": #"{"version":"1.3"}"#]).enableRemoteCacheAccessible)
        let explicitOff = try LLMConfig(options: ["llm.LocalCommRes": "", key: "0"])
        #expect(!explicitOff.enableRemoteCacheAccessible)
        #expect(try LLMConfig(options: explicitOff.options) == explicitOff)
        let hixl = try LLMConfig(options: ["llm.TransferBackend": "hixl", "llm.listenIpInfo": "127.0.0.1:26000"])
        #expect(hixl.enableRemoteCacheAccessible)
        for bad in ["true", "2", "", " 1"] {
            let error = try #require(caught { _ = try LLMConfig(options: [key: bad]) })
            #expect(error.status == .paramInvalid && error.message.contains("\"\(key)\" = \"\(bad)\""))
        }
    }

    @Test("EnableCacheManager: \"1\" accepted and emitted, \"0\" is featureNotEnabled, others invalid")
    func cacheManager() throws {
        #expect(try LLMConfig(options: ["llm.EnableCacheManager": "1"]) == LLMConfig())
        let off = try #require(caught { _ = try LLMConfig(options: ["llm.EnableCacheManager": "0"]) })
        #expect(off.status == .featureNotEnabled)
        #expect(off.message.contains("llm.EnableCacheManager") && off.message.contains("\"0\""))
        let bad = try #require(caught { _ = try LLMConfig(options: ["llm.EnableCacheManager": "yes"]) })
        #expect(bad.status == .paramInvalid && bad.message.contains("\"yes\""))
    }

    @Test("EnforceProductSupport (ours): emitted only when off")
    func enforce() throws {
        let off = try LLMConfig(options: ["llm.EnforceProductSupport": "0"])
        #expect(!off.enforceProductSupport)
        #expect(off.options["llm.EnforceProductSupport"] == "0")
        let on = try LLMConfig(options: ["llm.EnforceProductSupport": "1"])
        #expect(on.enforceProductSupport && on.options["llm.EnforceProductSupport"] == nil)
        let error = try #require(caught { _ = try LLMConfig(options: ["llm.EnforceProductSupport": "yes"]) })
        #expect(error.message.contains("llm.EnforceProductSupport") && error.message.contains("\"yes\""))
    }

    @Test("pools from option strings are emitted canonically")
    func pools() throws {
        let config = try LLMConfig(options: [
            "llm.MemPoolConfig": #"{ "memory_size" : 262144 }"#,
            "llm.HostMemPoolConfig": #"{"page_shift":20,"memory_size":1048576}"#,
        ])
        #expect(config.memoryPool == MemoryPoolConfig(size: 262_144))
        #expect(config.hostMemoryPool == MemoryPoolConfig(size: 1_048_576, pageShift: 20))
        #expect(config.options["llm.MemPoolConfig"] == #"{"memory_size": 262144, "page_shift": 16}"#)
        #expect(config.options["llm.HostMemPoolConfig"] == #"{"memory_size": 1048576, "page_shift": 20}"#)
    }
}
