import DeviceCaps
import Testing

/// The seed page's CacheManager operations (remove_cache_key.md and its siblings).
let seedOperations: [Operation] = [
    .allocateCache, .deallocateCache, .removeCacheKey, .copyCache, .allocateBlocksCache, .deallocateBlocksCache,
    .copyBlocks, .swapBlocks,
]
/// Operations the current docs list for 950, A3, 800I A2 and A200I A2 Box (spec §11.1).
let coreOperations: [Operation] = [
    .initialize, .finalize, .linkClusters, .unlinkClusters, .switchRole, .registerCache, .registerBlocksCache,
    .unregisterCache, .pullCache, .pullBlocks, .pushCache, .pushBlocks, .transferCacheAsync,
]
/// Operations the current docs refuse on 950 only.
let notOn950Operations: [Operation] = [.link, .unlink, .queryRegisterMemStatus, .remapRegisteredMemory]

/// Expected ✓ set per operation group, written out from the docs rather than from the code.
let seedSupported: Set<AtlasProduct> = [.atlasA3Training, .atlasA3Inference, .atlas800IA2, .a200IA2Box, .ascend950]
let coreSupported: Set<AtlasProduct> = [.atlasA3Training, .atlasA3Inference, .atlas800IA2, .a200IA2Box, .ascend950]
let notOn950Supported: Set<AtlasProduct> = [.atlasA3Training, .atlasA3Inference, .atlas800IA2, .a200IA2Box]

@Suite("Support matrix")
struct MatrixTests {
    @Test("operation raw values are the Python API names")
    func rawValues() {
        #expect(Operation.initialize.rawValue == "init")
        #expect(Operation(rawValue: "remove_cache_key") == .removeCacheKey)
        #expect(Operation(rawValue: "query_register_mem_status") == .queryRegisterMemStatus)
        #expect(Operation.allCases.count == 25)
        #expect(Set(seedOperations + coreOperations + notOn950Operations) == Set(Operation.allCases))
    }

    @Test("seed CacheManager rows", arguments: seedOperations, AtlasProduct.allCases)
    func seedRows(op: Operation, product: AtlasProduct) {
        let support = DeviceCapabilities.isSupported(op, on: product)
        #expect(support.supported == seedSupported.contains(product))
        #expect(support.reason.contains(op.rawValue))
        if product != .unknown {
            #expect(support.reason.contains(product.displayName))
            #expect(support.reason.contains("remove_cache_key.md"))
        }
        if product == .ascend950 { #expect(support.reason.contains("per the current docs (HEAD)")) }
        if product == .atlas300IA2 { #expect(support.reason.contains("#221")) }
    }

    @Test("core rows", arguments: coreOperations, AtlasProduct.allCases)
    func coreRows(op: Operation, product: AtlasProduct) {
        let support = DeviceCapabilities.isSupported(op, on: product)
        #expect(support.supported == coreSupported.contains(product))
        #expect(support.reason.contains(op.rawValue))
        if product != .unknown { #expect(support.reason.contains("§11")) }
    }

    @Test("link/unlink/query/remap rows", arguments: notOn950Operations, AtlasProduct.allCases)
    func notOn950Rows(op: Operation, product: AtlasProduct) {
        let support = DeviceCapabilities.isSupported(op, on: product)
        #expect(support.supported == notOn950Supported.contains(product))
        #expect(support.reason.contains(op.rawValue))
    }

    @Test("the brief's reason wording for A2 training")
    func a2TrainingReason() {
        let reason = DeviceCapabilities.isSupported(.removeCacheKey, on: .atlasA2Training).reason
        #expect(
            reason.hasPrefix(
                "Atlas A2 training series is not listed for remove_cache_key in the CANN llm_datadist product table"))
    }

    @Test("A3 training and inference have identical support, so detection may report either")
    func a3Identical() {
        for op in Operation.allCases {
            #expect(
                DeviceCapabilities.isSupported(op, on: .atlasA3Training).supported
                    == DeviceCapabilities.isSupported(op, on: .atlasA3Inference).supported, "\(op)")
        }
    }

    @Test("markdown: header, one row per operation with one cell per product, marked 950 and 300I A2 cells")
    func markdownShape() throws {
        let md = DeviceCapabilities.matrixMarkdown
        #expect(md == DeviceCapabilities.matrixMarkdown)
        #expect(!md.hasSuffix("\n"))
        let lines = md.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let header = "| operation | A3 T | A3 I | 800I A2 | A200I Box | 300I A2 | A2 T | 200I/500 A2 | Inf | Train "
        #expect(lines[0] == header + "| 950 | ? |")
        #expect(lines[1] == "|---|" + String(repeating: ":-:|", count: AtlasProduct.allCases.count))
        for (index, op) in Operation.allCases.enumerated() {
            let row = lines[2 + index]
            let cells = row.split(separator: "|").map { $0.trimmingSpaces }
            try #require(cells.count == 1 + AtlasProduct.allCases.count, "\(row)")
            #expect(cells[0] == "`\(op.rawValue)`")
            for (column, product) in AtlasProduct.allCases.enumerated() {
                let cell = cells[1 + column]
                let supported = DeviceCapabilities.isSupported(op, on: product).supported
                #expect(cell.hasPrefix(supported ? "✓" : "✗"), "\(op) \(product): \(cell)")
                let marked = (product == .ascend950 || product == .atlas300IA2) && seedOperations.contains(op)
                #expect(cell.count == (marked ? 2 : 1), "\(op) \(product): \(cell)")
            }
        }
        #expect(lines[2] == "| `allocate_cache` | ✓ | ✓ | ✓ | ✓ | ✗² | ✗ | ✗ | ✗ | ✗ | ✓¹ | ✗ |")
        #expect(lines.contains("| `link` | ✓ | ✓ | ✓ | ✓ | ✗ | ✗ | ✗ | ✗ | ✗ | ✗ | ✗ |"))
        #expect(lines.contains("| `init` | ✓ | ✓ | ✓ | ✓ | ✗ | ✗ | ✗ | ✗ | ✗ | ✓ | ✗ |"))
        for product in AtlasProduct.allCases {
            #expect(md.contains("`\(product.rawValue)`, \(product.displayName)"))
        }
        #expect(md.contains("¹ Ascend 950"))
        #expect(md.contains("² The Atlas 300I A2"))
    }
}

extension Substring {
    var trimmingSpaces: String {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
