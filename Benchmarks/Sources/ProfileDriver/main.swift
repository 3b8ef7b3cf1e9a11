// A small driver for instruction-level profiling of one benchmark row outside package-benchmark:
//
//   swift build -c release --product ProfileDriver
//   cp .build/release/ProfileDriver /tmp/pd && strip -g /tmp/pd   # valgrind 3.19 cannot read Swift's DWARF
//   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out /tmp/pd alloc 20000
//   callgrind_annotate /tmp/cg.out | head -60
//
// Modes: alloc (4x256KiB allocate+deallocate), alloc-keys (with 2 keys + removeCacheKey), remove-absent,
// remove-present (1024 live keys), copy (64 KiB copyCache), pull-local (16 KiB pullCache by request key between two
// engines of this process, keys bound 1024 at a time).
import DataDist

func makeDataDist(poolSize: Int, pageShift: Int) throws -> LLMDataDist {
    let dataDist = LLMDataDist(role: .prompt, clusterID: 1)
    var config = LLMConfig()
    config.memoryPool = MemoryPoolConfig(size: poolSize, pageShift: pageShift)
    try dataDist.initialize(
        config, environment: ["DATADIST_BACKEND": "emulator", "DATADIST_EMULATE_DEVICE_MEMORY": "8GiB"])
    return dataDist
}

let arguments = CommandLine.arguments
let mode = arguments.count > 1 ? arguments[1] : "alloc"
let count = arguments.count > 2 ? Int(arguments[2]) ?? 10_000 : 10_000

let dataDist = try makeDataDist(poolSize: 64 << 20, pageShift: 16)
let manager = try dataDist.cacheManager
let kvDesc = CacheDesc(numTensors: 4, shape: [2, 64, 8, 128], dataType: .float16)

switch mode {
case "alloc":
    for _ in 0..<count {
        let cache = try manager.allocateCache(kvDesc)
        try manager.deallocateCache(cache)
    }
case "alloc-keys":
    for index in 0..<count {
        let first = CacheKey(promptClusterID: 1, reqID: UInt64(2 * index))
        let second = CacheKey(promptClusterID: 1, reqID: UInt64(2 * index + 1))
        let cache = try manager.allocateCache(kvDesc, keys: [first, second])
        try manager.deallocateCache(cache)
        try manager.removeCacheKey(first)
        try manager.removeCacheKey(second)
    }
case "remove-absent":
    for index in 0..<count {
        try manager.removeCacheKey(CacheKey(promptClusterID: 1, reqID: (1 << 62) | UInt64(index)))
    }
case "remove-present":
    let desc = CacheDesc(numTensors: 1, shape: [1024, 1], dataType: .int8)
    var next: UInt64 = 0
    for _ in 0..<(count / 1024 + 1) {
        let keys = (0..<1024).map { _ in
            defer { next += 1 }
            return CacheKey(promptClusterID: 1, reqID: next)
        }
        let cache = try manager.allocateCache(desc, keys: keys)
        for key in keys { try manager.removeCacheKey(key) }
        try manager.deallocateCache(cache)
    }
case "copy":
    let desc = CacheDesc(numTensors: 1, shape: [1, 64 << 10], dataType: .int8)
    let source = try manager.allocateCache(desc)
    let destination = try manager.allocateCache(desc)
    for _ in 0..<count { try manager.copyCache(dst: destination, src: source) }
case "pull-local":
    let environment = ["DATADIST_BACKEND": "emulator", "DATADIST_EMULATE_DEVICE_MEMORY": "8GiB"]
    let prompt = LLMDataDist(role: .prompt, clusterID: 41)
    var promptConfig = LLMConfig()
    promptConfig.memoryPool = MemoryPoolConfig(size: 64 << 20)
    promptConfig.listenAddress = IPEndpoint(host: "127.0.0.1", port: 0)
    try prompt.initialize(promptConfig, environment: environment)
    let owner = try prompt.cacheManager
    let cluster = LLMClusterInfo(
        remoteClusterID: 41, remoteRoleType: .prompt, remoteIPInfos: [prompt.listenEndpoint!])
    let (status, _) = dataDist.linkClusters([cluster], timeout: .seconds(10))
    precondition(status == .success, "linkClusters: \(status)")
    let slots = 1024
    let desc = CacheDesc(numTensors: 1, shape: [Int64(slots), 8 << 10], dataType: .float16)
    let destination = try manager.allocateCache(CacheDesc(numTensors: 1, shape: [1, 8 << 10], dataType: .float16))
    var next: UInt64 = 0
    for _ in 0..<(count / slots + 1) {
        let keys = (0..<slots).map { _ in
            defer { next += 1 }
            return CacheKey(promptClusterID: 41, reqID: next)
        }
        let source = try owner.allocateCache(desc, keys: keys)
        for key in keys { try manager.pullCache(key, into: destination) }
        try owner.deallocateCache(source)
    }
    _ = dataDist.unlinkClusters([cluster], timeout: .seconds(5))
    precondition(owner.audit().orphans == 0)
    prompt.finalize()
default:
    fatalError("unknown mode \(mode); see the comment at the top of main.swift")
}
precondition(manager.audit().orphans == 0)
print("\(mode): \(count) operations done")
