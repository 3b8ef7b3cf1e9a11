import DataDist

/// What the getting-started walk-through ends with.
struct GettingStartedOutcome {
    /// Tensor 1 of the pulled request, as the decoder reads it back.
    var pulled: [Int32]
    /// Both audits, taken after everything was released.
    var promptAudit: CacheAudit
    var decoderAudit: CacheAudit
}

/// The code of `Sources/DataDist/DataDist.docc/GettingStarted.md`. Each region between `// article: begin` and
/// `// article: end` is one of the article's Swift code blocks, indented one level here; GettingStartedArticleTests
/// checks that they match and runs this function.
func gettingStarted() throws(LLMError) -> GettingStartedOutcome {
    // article: begin
    let prompt = LLMDataDist(role: .prompt, clusterID: 1)
    var promptConfig = LLMConfig()
    promptConfig.hostMemoryPool = MemoryPoolConfig(size: 1 << 20)
    promptConfig.listenAddress = IPEndpoint(host: "127.0.0.1", port: 0)
    try prompt.initialize(promptConfig)

    let decoder = LLMDataDist(role: .decoder, clusterID: 2)
    var decoderConfig = LLMConfig()
    decoderConfig.memoryPool = MemoryPoolConfig(size: 1 << 20)
    decoderConfig.hostMemoryPool = MemoryPoolConfig(size: 1 << 20)
    try decoder.initialize(decoderConfig)
    // article: end

    // article: begin
    let promptCaches = try prompt.cacheManager
    let keys = (0..<4).map { CacheKey(promptClusterID: 1, reqID: 100 + UInt64($0)) }
    let source = try promptCaches.allocateCache(
        CacheDesc(numTensors: 2, shape: [4, 16], dataType: .int32, placement: .host), keys: keys)
    // article: end

    // article: begin
    for (tensor, address) in source.tensorAddresses.enumerated() {
        let ints = UnsafeMutableRawPointer(bitPattern: address)!.bindMemory(to: Int32.self, capacity: 4 * 16)
        for index in 0..<4 * 16 { ints[index] = Int32(tensor * 1000 + index) }
    }
    // article: end

    // article: begin
    let promptInfo = LLMClusterInfo(remoteClusterID: 1, remoteIPInfos: [prompt.listenEndpoint!])
    let (status, perCluster) = decoder.linkClusters([promptInfo])
    guard status == .success else { throw LLMError(status, "linking failed: \(perCluster)") }
    // article: end

    // article: begin
    let decoderCaches = try decoder.cacheManager
    let destination = try decoderCaches.allocateCache(CacheDesc(numTensors: 2, shape: [1, 16], dataType: .int32))
    try decoderCaches.pullCache(keys[2], into: destination)
    // article: end

    // article: begin
    let readable = try decoderCaches.allocateCache(
        CacheDesc(numTensors: 2, shape: [1, 16], dataType: .int32, placement: .host))
    try decoderCaches.copyCache(dst: readable, src: destination)
    let ints = UnsafeRawPointer(bitPattern: readable.tensorAddresses[1])!.bindMemory(to: Int32.self, capacity: 16)
    let pulled = Array(UnsafeBufferPointer(start: ints, count: 16))
    // pulled == [1032, 1033, …, 1047]: tensor 1, batch slot 2
    // article: end

    // article: begin
    try decoderCaches.deallocateCache(readable)
    try decoderCaches.deallocateCache(destination)
    for key in keys { try promptCaches.removeCacheKey(key) }
    try promptCaches.deallocateCache(source)
    _ = decoder.unlinkClusters([promptInfo])
    let promptAudit = promptCaches.audit()
    let decoderAudit = decoderCaches.audit()
    decoder.finalize()
    prompt.finalize()
    // article: end

    return GettingStartedOutcome(pulled: pulled, promptAudit: promptAudit, decoderAudit: decoderAudit)
}
