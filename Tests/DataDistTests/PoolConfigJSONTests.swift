import DataDist
import DataDistTestSupport
import Testing

@Suite("MemoryPoolConfig JSON")
struct PoolConfigJSONTests {
    @Test(
        "reads valid pool JSON",
        arguments: [
            (#"{"memory_size": 1048576}"#, MemoryPoolConfig(size: 1_048_576, pageShift: 16)),
            (#"{"memory_size":1048576,"page_shift":12}"#, MemoryPoolConfig(size: 1_048_576, pageShift: 12)),
            (#"{"page_shift": 20, "memory_size": 4194304}"#, MemoryPoolConfig(size: 4_194_304, pageShift: 20)),
            (" \t\n{ \"memory_size\" : 0 ,\r\n \"page_shift\" : 0 } \n", MemoryPoolConfig(size: 0, pageShift: 0)),
            (#"{"memory\u005fsize": 65536}"#, MemoryPoolConfig(size: 65536)),
            (#"{"memory_size": 9223372036854775807}"#, MemoryPoolConfig(size: Int.max)),
        ])
    func readsValid(json: String, expected: MemoryPoolConfig) throws {
        #expect(try MemoryPoolConfig(json: json) == expected)
    }

    @Test(
        "C01: {}, {memory_size} and memory_size 2^64-1 are refused",
        arguments: [
            ("{}", "memory_size"),
            ("{memory_size}", "memory_size}"),
            (#"{"memory_size": 18446744073709551615}"#, "18446744073709551615"),
        ])
    func c01(json: String, named: String) throws {
        let error = try #require(caught { _ = try MemoryPoolConfig(json: json) })
        #expect(error.status == .paramInvalid)
        #expect(error.message.contains(named), "\(error.message)")
        // And through the option key, the failure names the key.
        let viaOptions = try #require(caught { _ = try LLMConfig(options: ["llm.MemPoolConfig": json]) })
        #expect(viaOptions.status == .paramInvalid)
        #expect(viaOptions.message.contains("llm.MemPoolConfig"), "\(viaOptions.message)")
    }

    @Test(
        "refuses malformed JSON, naming what is wrong",
        arguments: [
            ("", "not valid JSON"),
            ("[]", "'{'"),
            (#"{"memory_size": 1.5}"#, "1.5"),
            (#"{"memory_size": 1e6}"#, "1e6"),
            (#"{"memory_size": -1}"#, "negative"),
            (#"{"memory_size": "1024"}"#, "string \"1024\""),
            (#"{"memory_size": {"a": 1}}"#, "nested"),
            (#"{"memory_size": [1]}"#, "nested"),
            (#"{"memory_size": true}"#, "true"),
            (#"{"memory_size": null}"#, "null"),
            (#"{"memory_size": 0100}"#, "leading zeros"),
            (#"{"memory_size": 1, "memory_size": 2}"#, "duplicate key \"memory_size\""),
            (#"{"memory_size": 1} x"#, "not valid JSON"),
            (#"{"memory_size": 1}}"#, "not valid JSON"),
            (#"{"memory_size": 1,}"#, "trailing comma"),
            ("{\"memory_size\": 1 ,\n }", "trailing comma"),
            (#"{"memory_size" 1}"#, "not valid JSON"),
            (#"{"memory_size": }"#, "not valid JSON"),
            (#"{"memory_size": 1"#, "not valid JSON"),
            (#"{"memory_size": 1 "page_shift": 2}"#, "not valid JSON"),
            (#"{"memory_size"#, "not valid JSON"),
            (#"{"memory_size": 18446744073709551616}"#, "18446744073709551616"),
            (#"{"memory_size": 1024, "page_size": 10}"#, "unknown key \"page_size\""),
            (#"{"page_shift": 16}"#, "\"memory_size\" is required"),
            (#"{"memory_size": 1024, "page_shift": 9223372036854775808}"#, "page_shift"),
            (#"{"mem\q": 1}"#, "not valid JSON"),
            (#"{"\ud800": 1}"#, "not valid JSON"),
            // JSONDecoder reads these as integers or keeps the first of two keys; the pool JSON refuses them.
            (#"{"memory_size": 1.0}"#, "1.0"),
            (#"{"memory_size": 1E2}"#, "1E2"),
            (#"{"memory_size": -0}"#, "negative"),
            (#"{"memory_size": 1, "memory\u005fsize": 2}"#, "duplicate key \"memory_size\""),
            (#"{"page_shift": 12, "memory_size": 4096, "page_shift": 13}"#, "duplicate key \"page_shift\""),
            ("1", "'{'"),
        ])
    func refusesMalformed(json: String, named: String) throws {
        let error = try #require(caught { _ = try MemoryPoolConfig(json: json) })
        #expect(error.status == .paramInvalid)
        #expect(error.message.contains(named), "\(error.message)")
        #expect(error.message.contains(json), "the message quotes the JSON: \(error.message)")
    }

    @Test("json is canonical")
    func canonical() {
        #expect(MemoryPoolConfig(size: 1_048_576).json == #"{"memory_size": 1048576, "page_shift": 16}"#)
        #expect(MemoryPoolConfig(size: 1024, pageShift: 10).json == #"{"memory_size": 1024, "page_shift": 10}"#)
    }

    @Test("json round-trips for any non-negative fields")
    func roundTrips() throws {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<500 {
            let pool = MemoryPoolConfig(
                size: Int.random(in: 0...Int.max, using: &rng), pageShift: Int.random(in: 0...63, using: &rng))
            #expect(try MemoryPoolConfig(json: pool.json) == pool)
        }
    }
}
