import DeviceCaps
import Testing

@Suite("Gating and override")
struct GatingTests {
    @Test("check passes for supported operations and throws a message naming op, product and supporters")
    func checkMessages() throws {
        let caps = DeviceCapabilities(product: .atlasA2Training)
        let error = try #require(throws: CapsError.self) { try caps.check(.removeCacheKey) }
        #expect(error.operation == .removeCacheKey)
        #expect(error.product == .atlasA2Training)
        #expect(error.message.contains("remove_cache_key"))
        #expect(error.message.contains("Atlas A2 training series"))
        #expect(error.message.contains("atlas-a2-training"))
        #expect(
            error.message.contains(
                "Supported on: atlas-a3-training, atlas-a3-inference, atlas-800i-a2, "
                    + "a200i-a2-box, ascend-950."))
        #expect(error.description == error.message)

        try DeviceCapabilities(product: .atlas800IA2).check(.removeCacheKey)
        try DeviceCapabilities(product: .ascend950).check(.pullCache)
        #expect(throws: CapsError.self) { try DeviceCapabilities(product: .ascend950).check(.link) }
    }

    @Test(
        "every refused cell's check message names the operation and the product",
        arguments: Operation.allCases, AtlasProduct.allCases)
    func everyRefusal(op: Operation, product: AtlasProduct) {
        let caps = DeviceCapabilities(product: product)
        #expect(caps.supports(op) == DeviceCapabilities.isSupported(op, on: product).supported)
        do {
            try caps.check(op)
            #expect(caps.supports(op))
        } catch {
            #expect(!caps.supports(op))
            #expect(error.operation == op)
            #expect(error.product == product)
            #expect(error.message.contains(op.rawValue))
            #expect(error.message.contains(product.rawValue))
        }
    }

    @Test("ambiguous B3 gates on every candidate")
    func ambiguousGating() throws {
        let caps = try DeviceCapabilities.identify(socName: "Ascend910B3", boardID: nil, productOverride: nil)
        #expect(caps.ambiguousCandidates == [.atlas800IA2, .atlasA2Training])
        #expect(caps.product == .atlasA2Training)
        #expect(!caps.supports(.pullCache))
        let error = try #require(throws: CapsError.self) { try caps.check(.pullCache) }
        #expect(error.message.contains("atlas-800i-a2"))
        #expect(error.message.contains("DATADIST_PRODUCT"))
        #expect(caps.support(.pullCache).reason.contains("ambiguous"))
    }

    @Test("ambiguity between products that all support an op allows it")
    func ambiguousAllSupport() {
        let caps = DeviceCapabilities(
            detection: Detection(candidates: [.atlas800IA2, .a200IA2Box], note: "test"), socName: nil, boardID: nil)
        #expect(caps.candidates == [.atlas800IA2, .a200IA2Box])
        #expect(caps.supports(.removeCacheKey))
        #expect(caps.support(.removeCacheKey).reason.contains("every possible product"))
        let mixed = DeviceCapabilities(
            detection: Detection(candidates: [.atlas800IA2, .ascend950], note: "test"), socName: nil, boardID: nil)
        #expect(mixed.supports(.pullCache))
        #expect(!mixed.supports(.link))  // 950 refuses link although 800I A2 allows it
    }

    @Test("valid overrides replace detection", arguments: AtlasProduct.allCases)
    func validOverride(product: AtlasProduct) throws {
        let caps = try DeviceCapabilities.identify(
            socName: "Ascend910B3", boardID: nil, productOverride: product.rawValue)
        #expect(caps.product == product)
        #expect(caps.ambiguousCandidates == nil)
        #expect(caps.socName == "Ascend910B3")
        #expect(caps.note.contains("DATADIST_PRODUCT=\(product.rawValue)"))
    }

    @Test("nil or empty override means detect")
    func emptyOverride() throws {
        for value in [nil, ""] as [String?] {
            let caps = try DeviceCapabilities.identify(socName: "Ascend910B4", boardID: 0x40, productOverride: value)
            #expect(caps.product == .atlas800IA2)
            #expect(caps.boardID == 0x40)
        }
    }

    @Test(
        "invalid overrides throw, naming the value and listing the valid ids",
        arguments: ["atlas-800I-a2", "800i", " atlas-800i-a2", "atlasA3Training", "ascend950", "none"])
    func invalidOverride(value: String) throws {
        let error = try #require(throws: CapsError.self) {
            try DeviceCapabilities.identify(socName: "Ascend910B4", boardID: 0x40, productOverride: value)
        }
        #expect(error.message.contains("DATADIST_PRODUCT"))
        #expect(error.message.contains("'\(value)'"))
        for product in AtlasProduct.allCases { #expect(error.message.contains(product.rawValue)) }
        #expect(error.product == .atlas800IA2)
        #expect(error.operation == .initialize)
    }

    @Test("display names and short names are distinct")
    func names() {
        #expect(AtlasProduct.atlas800IA2.displayName == "Atlas 800I A2 inference server")
        #expect(Set(AtlasProduct.allCases.map(\.displayName)).count == AtlasProduct.allCases.count)
        #expect(Set(AtlasProduct.allCases.map(\.shortName)).count == AtlasProduct.allCases.count)
    }
}
