import DataDist
import Testing

/// `import DataDist` alone reaches the capability types its API hands out, with their members; the rest of
/// `DeviceCaps` stays behind its own import.
@Suite struct ExportsTests {
    @Test func capabilityTypesComeWithDataDist() throws {
        let caps = DeviceCapabilities(product: .atlas300IA2)
        #expect(caps.product.displayName == "Atlas 300I A2 inference card")
        #expect(Operation.allCases.contains(.allocateCache))
        let refused = Operation.allCases.first { !caps.supports($0) }
        let operation = try #require(refused, "the Atlas 300I A2 card lacks some operation")
        #expect(throws: CapsError.self) { try caps.check(operation) }
    }
}
