import DeviceCaps
import Testing

/// One SoC name / board id pair from spec/ascend-hardware.md §1 and the product it must map to.
struct DetectionCase: Sendable, CustomTestStringConvertible {
    let soc: String?
    let board: UInt32?
    let product: AtlasProduct
    /// Empty: unambiguous. Otherwise every candidate, in `AtlasProduct.allCases` order.
    let candidates: [AtlasProduct]

    init(_ soc: String?, _ board: UInt32? = nil, _ product: AtlasProduct, ambiguous: [AtlasProduct] = []) {
        self.soc = soc
        self.board = board
        self.product = product
        self.candidates = ambiguous
    }

    var testDescription: String {
        "\(soc ?? "nil") board \(board.map { "0x" + String($0, radix: 16) } ?? "nil") → \(product.rawValue)"
    }
}

private let a2Inference: [AtlasProduct] = [.atlas800IA2, .a200IA2Box, .atlas300IA2]
private let allA2: [AtlasProduct] = [.atlas800IA2, .a200IA2Box, .atlas300IA2, .atlasA2Training]

/// Every SoC string of tables 1.1 and 1.2 (and §1.3's stub default), without a board id.
let socCases: [DetectionCase] = [
    // A3 (table 1.1 / 1.2); _9363 is not in HIXL's set but is an A3 SoC.
    .init("Ascend910_9391", nil, .atlasA3Training), .init("Ascend910_9392", nil, .atlasA3Training),
    .init("Ascend910_9381", nil, .atlasA3Training), .init("Ascend910_9382", nil, .atlasA3Training),
    .init("Ascend910_9372", nil, .atlasA3Training), .init("Ascend910_9362", nil, .atlasA3Training),
    .init("Ascend910_9363", nil, .atlasA3Training),
    // A2 without a board id (§1.4)
    .init("Ascend910B1", nil, .atlasA2Training), .init("Ascend910B2", nil, .atlasA2Training),
    .init("Ascend910B2C", nil, .atlasA2Training),
    .init("Ascend910B3", nil, .atlasA2Training, ambiguous: [.atlas800IA2, .atlasA2Training]),
    .init("Ascend910B4", nil, .atlas300IA2, ambiguous: a2Inference),
    .init("Ascend910B4-1", nil, .atlas300IA2, ambiguous: a2Inference),
    // 310B, 310P
    .init("Ascend310B1", nil, .atlas200I500A2), .init("Ascend310B2", nil, .atlas200I500A2),
    .init("Ascend310B3", nil, .atlas200I500A2), .init("Ascend310B4", nil, .atlas200I500A2),
    .init("Ascend310P1", nil, .atlasInference), .init("Ascend310P3", nil, .atlasInference),
    .init("Ascend310P5", nil, .atlasInference), .init("Ascend310P7", nil, .atlasInference),
    // First-generation 910, including the legacy "Ascend910B" string
    .init("Ascend910A", nil, .atlasTraining), .init("Ascend910B", nil, .atlasTraining),
    .init("Ascend910ProA", nil, .atlasTraining), .init("Ascend910ProB", nil, .atlasTraining),
    .init("Ascend910PremiumA", nil, .atlasTraining),
    // 950 (tables 1.1, 1.2; §1.3 stub default), and the pre-release Ascend910_95* name
    .init("Ascend950PR_9599", nil, .ascend950), .init("Ascend950PR_9589", nil, .ascend950),
    .init("Ascend950PR_9579", nil, .ascend950), .init("Ascend950PR_957b", nil, .ascend950),
    .init("Ascend950PR_957c", nil, .ascend950), .init("Ascend950PR_957d", nil, .ascend950),
    .init("Ascend950PR_958b", nil, .ascend950), .init("Ascend950DT_9591", nil, .ascend950),
    .init("Ascend950DT_95A1", nil, .ascend950), .init("Ascend950DT_9581", nil, .ascend950),
    .init("Ascend950DT_9571", nil, .ascend950), .init("Ascend950A", nil, .ascend950),
    .init("Ascend910_9591", nil, .ascend950), .init("Ascend910_9599", nil, .ascend950),
    // Ascend350 (cann-dev only), nothing, garbage
    .init("Ascend350_354f", nil, .unknown), .init("Ascend350_355e", nil, .unknown),
    .init(nil, nil, .unknown), .init("", nil, .unknown), .init("   ", nil, .unknown),
    .init("Ascend910", nil, .unknown), .init("Ascend910B5", nil, .unknown), .init("ascend910b4", nil, .unknown),
    .init("Ascend310", nil, .unknown), .init("NVIDIA H200", nil, .unknown),
    // Surrounding whitespace (npu-smi style output) is ignored
    .init(" Ascend910_9391\n", nil, .atlasA3Training),
]

/// Board ids of tables 1.1, 1.4 and 1.5 combined with the SoC family they belong to.
let boardCases: [DetectionCase] = [
    // A3 board ids (§1.5), and A3 main board ids passed where a board id is expected: the SoC still decides.
    .init("Ascend910_9391", 0xB0, .atlasA3Training), .init("Ascend910_9392", 0xB1, .atlasA3Training),
    .init("Ascend910_9381", 0xB2, .atlasA3Training), .init("Ascend910_9362", 0xB3, .atlasA3Training),
    .init("Ascend910_9372", 0xD1, .atlasA3Training), .init("Ascend910_9363", 0xD3, .atlasA3Training),
    .init("Ascend910_9382", 0x14, .atlasA3Training), .init("Ascend910_9382", 0x15, .atlasA3Training),
    .init("Ascend910_9382", 0x18, .atlasA3Training), .init("Ascend910_9382", 0x19, .atlasA3Training),
    .init("Ascend910_9382", 0x1C, .atlasA3Training), .init("Ascend910_9382", 0x1D, .atlasA3Training),
    // 950: Atlas 350 card boards 0x18–0x1C, main boards 0x68/0x6A/0x6C, PoD 0x03/05/07, servers 0x21–0x2B odd and
    // 0x40–0x46 even (§1.1, §1.5): always Ascend 950.
    .init("Ascend950PR_957c", 0x18, .ascend950), .init("Ascend950PR_957c", 0x19, .ascend950),
    .init("Ascend950PR_957b", 0x1A, .ascend950), .init("Ascend950PR_957b", 0x1B, .ascend950),
    .init("Ascend950PR_957b", 0x1C, .ascend950), .init("Ascend950PR_957b", 0x68, .ascend950),
    .init("Ascend950PR_957b", 0x6A, .ascend950), .init("Ascend950PR_957b", 0x6C, .ascend950),
    .init("Ascend950DT_9591", 0x03, .ascend950), .init("Ascend950DT_9591", 0x05, .ascend950),
    .init("Ascend950DT_9591", 0x07, .ascend950), .init("Ascend950PR_9599", 0x21, .ascend950),
    .init("Ascend950PR_9599", 0x2B, .ascend950), .init("Ascend950PR_9599", 0x40, .ascend950),
    .init("Ascend950PR_9599", 0x46, .ascend950),
    // A board id without a SoC name is not used: board ids are only meaningful inside a chip family.
    .init(nil, 0x40, .unknown), .init("", 0xB0, .unknown),
    // An A2 SoC with a board id that is no A2 board (an A3 board, a 950 server main board, zero)
    .init("Ascend910B3", 0xB0, .atlas300IA2, ambiguous: allA2),
    .init("Ascend910B4", 0x44, .atlas300IA2, ambiguous: allA2),
    .init("Ascend910B1", 0x00, .atlas300IA2, ambiguous: allA2),
    .init("Ascend910B2", 0xFFFF_FFFF, .atlas300IA2, ambiguous: allA2),
    // Non-A2 families ignore the board id
    .init("Ascend310P3", 0x40, .atlasInference), .init("Ascend910B", 0x42, .atlasTraining),
    .init("Ascend310B1", 0x28, .atlas200I500A2),
]

/// The A2 board table of §1.4: board id → product, whatever the A2 SoC bin.
let a2Boards: [(UInt32, AtlasProduct)] =
    [
        (0x40, .atlas800IA2), (0x41, .atlas800IA2), (0x37, .atlas800IA2), (0x42, .atlasA2Training),
        (0x43, .atlasA2Training), (0x54, .a200IA2Box), (0x28, .atlas300IA2), (0x29, .atlas300IA2),
    ]
    + (UInt32(0x30)...0x34).map { ($0, .atlasA2Training) } + (UInt32(0x38)...0x3E).map { ($0, .atlasA2Training) }
    + (UInt32(0x50)...0x53).map { ($0, .atlasA2Training) } + (UInt32(0x10)...0x13).map { ($0, .atlasA2Training) }

let a2SoCNames = ["Ascend910B1", "Ascend910B2", "Ascend910B2C", "Ascend910B3", "Ascend910B4", "Ascend910B4-1"]

@Suite("Product detection")
struct DetectionTests {
    @Test("SoC names of §1", arguments: socCases)
    func socNames(_ c: DetectionCase) {
        expect(c)
    }

    @Test("board ids of §1", arguments: boardCases)
    func boardIDs(_ c: DetectionCase) {
        expect(c)
    }

    @Test("A2 board id decides the product for every A2 SoC", arguments: a2SoCNames, a2Boards.map(\.0))
    func a2BoardTable(soc: String, board: UInt32) throws {
        let expected = try #require(a2Boards.first { $0.0 == board }?.1)
        expect(DetectionCase(soc, board, expected))
    }

    @Test("the A2 board table has no duplicate ids and covers 28 boards")
    func a2BoardTableShape() {
        #expect(Set(a2Boards.map(\.0)).count == a2Boards.count)
        #expect(a2Boards.count == 28)
    }

    @Test("ambiguous detections gate on the candidate supporting the fewest operations")
    func strictestCandidate() {
        for c in (socCases + boardCases) where !c.candidates.isEmpty {
            let detection = DeviceCapabilities.classify(socName: c.soc, boardID: c.board)
            let counts = detection.candidates.map { p in
                Operation.allCases.count { DeviceCapabilities.isSupported($0, on: p).supported }
            }
            let productCount = Operation.allCases.count {
                DeviceCapabilities.isSupported($0, on: detection.product).supported
            }
            #expect(productCount == counts.min(), "\(c.testDescription)")
        }
    }

    @Test("notes name the SoC and the board id that decided")
    func notes() {
        let d = DeviceCapabilities.classify(socName: "Ascend910B3", boardID: 0x42)
        #expect(d.note.contains("Ascend910B3"))
        #expect(d.note.contains("0x42"))
        #expect(d.note.contains("800T A2"))
        let pre = DeviceCapabilities.classify(socName: "Ascend910_9591", boardID: nil)
        #expect(pre.note.contains("pre-release"))
        let a3 = DeviceCapabilities.classify(socName: "Ascend910_9363", boardID: nil)
        #expect(a3.note.contains("HIXL"))
        #expect(a3.note.contains("inference"))
        let legacy = DeviceCapabilities.classify(socName: "Ascend910B", boardID: nil)
        #expect(legacy.note.contains("legacy"))
        let box = DeviceCapabilities.classify(socName: "Ascend950PR_957c", boardID: 0x1A)
        #expect(box.note.contains("Atlas 350"))
    }

    @Test("Detection(candidates:) orders, de-duplicates and never comes out empty")
    func detectionInit() {
        let d = Detection(candidates: [.atlasA2Training, .atlas800IA2, .atlasA2Training], note: "x")
        #expect(d.candidates == [.atlas800IA2, .atlasA2Training])
        #expect(d.product == .atlasA2Training)
        #expect(d.isAmbiguous)
        let empty = Detection(candidates: [], note: "none")
        #expect(empty.product == .unknown)
        #expect(!empty.isAmbiguous)
    }

    private func expect(_ c: DetectionCase, sourceLocation: SourceLocation = #_sourceLocation) {
        let detection = DeviceCapabilities.classify(socName: c.soc, boardID: c.board)
        #expect(detection.product == c.product, sourceLocation: sourceLocation)
        #expect(
            DeviceCapabilities.detect(socName: c.soc, boardID: c.board) == c.product, sourceLocation: sourceLocation)
        #expect(detection.isAmbiguous == !c.candidates.isEmpty, sourceLocation: sourceLocation)
        #expect(
            detection.candidates == (c.candidates.isEmpty ? [c.product] : c.candidates), sourceLocation: sourceLocation)
        #expect(!detection.note.isEmpty, sourceLocation: sourceLocation)
        let caps = DeviceCapabilities(detection: detection, socName: c.soc, boardID: c.board)
        #expect(caps.product == c.product, sourceLocation: sourceLocation)
        #expect(caps.ambiguousCandidates == (c.candidates.isEmpty ? nil : c.candidates), sourceLocation: sourceLocation)
    }
}
