import DataDist
import Testing

@Suite("LLMConfig(options:) pass-through and unknown keys")
struct LLMConfigPassThroughTests {
    static let valid: [(String, String)] = [
        ("llm.LinkTotalTime", "0"), ("llm.LinkTotalTime", "4294967295"), ("llm.LinkRetryCount", "1"),
        ("llm.LinkRetryCount", "100"), ("llm.RdmaTrafficClass", "132"), ("llm.RdmaTrafficClass", "4294967295"),
        ("llm.RdmaServiceLevel", "4"), ("llm.MemoryUtilization", "0.0"), ("llm.MemoryUtilization", "1.0"),
        ("llm.MemoryUtilization", "0.5"), ("llm.MemoryUtilization", "0.95"), ("llm.MemoryUtilization", "1"),
        ("llm.GlobalResourceConfig", ""), ("llm.GlobalResourceConfig", #"{"k":"v"}"#), ("llm.Role", "Prompt"),
        ("llm.Role", "Decoder"), ("llm.Role", "Mix"), ("llm.EnableSwitchRole", "1"), ("llm.BufPoolCfg", "x"),
        ("ge.flowGraphMemMaxSize", "1024"), ("ge.graphRunMode", "1"), ("ge.anything", "kept as is"),
    ]

    @Test("valid pass-through values are stored and emitted unchanged", arguments: valid)
    func passThrough(key: String, value: String) throws {
        let config = try LLMConfig(options: [key: value])
        #expect(config.additionalOptions == [key: value])
        #expect(config.options[key] == value)
        #expect(try LLMConfig(options: config.options) == config)
    }

    @Test("local comm res and the hixl backend pass through")
    func commAndBackend() throws {
        let options = [
            "llm.LocalCommRes": #"{"version": "1.3"}"#, "llm.TransferBackend": "hixl",
            "llm.listenIpInfo": "192.168.1.2:26000",
        ]
        let config = try LLMConfig(options: options)
        #expect(config.additionalOptions["llm.LocalCommRes"] == #"{"version": "1.3"}"#)
        #expect(config.options["llm.TransferBackend"] == "hixl")
    }

    static let invalid: [(String, String)] = [
        ("llm.LinkRetryCount", "0"), ("llm.LinkRetryCount", "101"), ("llm.LinkTotalTime", "-1"),  // A05
        ("llm.LinkTotalTime", "4294967296"), ("llm.LinkRetryCount", "abc"), ("llm.RdmaTrafficClass", "-4"),
        ("llm.RdmaServiceLevel", "4294967296"), ("llm.RdmaServiceLevel", "4.0"),
        ("llm.MemoryUtilization", "1.5"), ("llm.MemoryUtilization", "-0.1"),  // A02
        ("llm.MemoryUtilization", "nan"), ("llm.MemoryUtilization", "inf"), ("llm.MemoryUtilization", "0x1p-1"),
        ("llm.MemoryUtilization", ""), ("llm.TransferBackend", "hccl"), ("llm.TransferBackend", ""),
        ("llm.Role", "prompt"), ("llm.Role", "2"), ("llm.EnableSwitchRole", "true"),
        ("ge.flowGraphMemMaxSize", "1024,2048"), ("ge.flowGraphMemMaxSize", "1.23"),  // B03
        ("ge.flowGraphMemMaxSize", "-1"), ("ge.flowGraphMemMaxSize", ""),
    ]

    @Test("invalid pass-through values are refused, naming key and value", arguments: invalid)
    func refused(key: String, value: String) throws {
        let error = try #require(caught { _ = try LLMConfig(options: [key: value]) })
        #expect(error.status == .paramInvalid)
        #expect(error.message.contains("\"\(key)\" = \"\(value)\""), "\(error.message)")
    }

    @Test("A05: link retry count and total time defaults are absent (engine defaults 1 and 0)")
    func a05Defaults() {
        #expect(LLMConfig().options["llm.LinkRetryCount"] == nil)
        #expect(LLMConfig().options["llm.LinkTotalTime"] == nil)
    }

    @Test(
        "unknown keys are refused with the closest valid keys",
        arguments: [
            ("llm.SyncKvCacheWaitTim", "llm.SyncKvCacheWaitTime"), ("llm.listenipinfo", "llm.listenIpInfo"),
            ("llm.deviceid", "llm.DeviceId"), ("llm.MemPoolCfg", "llm.MemPoolConfig"),
            ("ge.exec.deviceID", "ge.exec.deviceId"), ("llm.LinkRetryCounts", "llm.LinkRetryCount"),
        ])
    func unknownWithSuggestion(key: String, suggestion: String) throws {
        let error = try #require(caught { _ = try LLMConfig(options: [key: "1"]) })
        #expect(error.status == .paramInvalid)
        #expect(error.message.contains("\"\(key)\" = \"1\""), "\(error.message)")
        #expect(
            error.message.contains("did you mean") && error.message.contains("\"\(suggestion)\""), "\(error.message)")
    }

    @Test("a key like nothing we know lists the valid keys", arguments: ["foo", "llm.ListenIp", "hccl.Timeout", ""])
    func unknownListsKeys(key: String) throws {
        let error = try #require(caught { _ = try LLMConfig(options: [key: "v"]) })
        #expect(error.status == .paramInvalid)
        #expect(error.message.contains("\"\(key)\" = \"v\""), "\(error.message)")
        #expect(error.message.contains("llm.SyncKvCacheWaitTime") || error.message.contains("did you mean"))
    }

    @Test("several bad keys: the error is always about the first in sorted order")
    func deterministicError() throws {
        let options = ["llm.SyncKvCacheWaitTime": "0", "llm.LinkRetryCount": "0", "zzz": "1"]
        for _ in 0..<20 {
            let error = try #require(caught { _ = try LLMConfig(options: options) })
            #expect(error.message.contains("llm.LinkRetryCount"), "\(error.message)")
        }
    }

    @Test("hixl needs a listen address and remote cache access (B05, B06)")
    func hixlRules() throws {
        let noListen = try #require(caught { _ = try LLMConfig(options: ["llm.TransferBackend": "hixl"]) })
        #expect(
            noListen.status == .paramInvalid && noListen.message.contains("llm.listenIpInfo"), "\(noListen.message)")
        let off = try #require(
            caught {
                _ = try LLMConfig(options: [
                    "llm.TransferBackend": "hixl", "llm.listenIpInfo": "127.0.0.1:1",
                    "llm.EnableRemoteCacheAccessible": "0",
                ])
            })
        #expect(off.status == .paramInvalid && off.message.contains("llm.EnableRemoteCacheAccessible"))
    }
}
