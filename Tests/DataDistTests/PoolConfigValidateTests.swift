import DataDist
import Testing

@Suite("MemoryPoolConfig.validate (spec §8.1)")
struct PoolConfigValidateTests {
    @Test(
        "C02: accepts page shifts 10...30 when memory_size holds a page",
        arguments: [
            MemoryPoolConfig(size: 1 << 10, pageShift: 10),
            MemoryPoolConfig(size: 1 << 30, pageShift: 30),
            MemoryPoolConfig(size: 1 << 16),
            MemoryPoolConfig(size: 262_144),
            MemoryPoolConfig(size: ((1 << 32) - 1) << 10 - 1, pageShift: 10),  // 2^32 - 2 pages
        ])
    func accepts(pool: MemoryPoolConfig) throws {
        try pool.validate()
    }

    @Test(
        "C02 and §8.1: refuses bad sizes and shifts, naming field and value",
        arguments: [
            (MemoryPoolConfig(size: 1 << 20, pageShift: 9), "page_shift 9"),
            (MemoryPoolConfig(size: (1 << 16) - 1, pageShift: 16), "memory_size 65535"),
            (MemoryPoolConfig(size: 1 << 40, pageShift: 31), "page_shift 31"),
            (MemoryPoolConfig(size: (1 << 30) - 1, pageShift: 30), "memory_size 1073741823"),
            (MemoryPoolConfig(size: (1 << 10) - 1, pageShift: 10), "memory_size 1023"),
            (MemoryPoolConfig(size: 0), "memory_size 0"),
            (MemoryPoolConfig(size: -4096), "memory_size -4096"),
            (MemoryPoolConfig(size: 1 << 20, pageShift: -1), "page_shift -1"),
            (MemoryPoolConfig(size: 1 << 20, pageShift: 64), "page_shift 64"),
            (MemoryPoolConfig(size: ((1 << 32) - 1) << 10, pageShift: 10), "4294967295 pages"),
            (MemoryPoolConfig(size: Int.max, pageShift: 16), "page_shift 16"),
        ])
    func refuses(pool: MemoryPoolConfig, named: String) throws {
        let error = try #require(caught { try pool.validate() })
        #expect(error.status == .paramInvalid)
        #expect(error.message.contains(named), "\(error.message)")
    }

    @Test("C02 through the option string: page_shift 9 / small pool / page_shift 31 fail, 10 and 30 pass")
    func c02ThroughOptions() throws {
        for json in [
            #"{"memory_size": 1048576, "page_shift": 9}"#, #"{"memory_size": 65535, "page_shift": 16}"#,
            #"{"memory_size": 4294967296, "page_shift": 31}"#,
        ] {
            for key in ["llm.MemPoolConfig", "llm.HostMemPoolConfig"] {
                let error = try #require(caught { _ = try LLMConfig(options: [key: json]) })
                #expect(error.status == .paramInvalid)
                #expect(error.message.contains(key) && error.message.contains(json), "\(error.message)")
            }
        }
        let low = try LLMConfig(options: ["llm.MemPoolConfig": #"{"memory_size": 1024, "page_shift": 10}"#])
        #expect(low.memoryPool == MemoryPoolConfig(size: 1024, pageShift: 10))
        let high = try LLMConfig(options: ["llm.HostMemPoolConfig": #"{"memory_size": 1073741824, "page_shift": 30}"#])
        #expect(high.hostMemoryPool == MemoryPoolConfig(size: 1 << 30, pageShift: 30))
    }
}
