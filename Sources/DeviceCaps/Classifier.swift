/// SoC name + board id → product, following spec/ascend-hardware.md §1.
enum Classifier {
    /// A2 SoC names (HIXL's kV2 set).
    static let a2SoCs: Set<String> = [
        "Ascend910B1", "Ascend910B2", "Ascend910B2C", "Ascend910B3", "Ascend910B4", "Ascend910B4-1",
    ]
    /// A3 SoC names from the runtime's platform ini files (HIXL's kV3 set plus `_9363`).
    static let a3SoCs: Set<String> = [
        "Ascend910_9391", "Ascend910_9392", "Ascend910_9381", "Ascend910_9382", "Ascend910_9372",
        "Ascend910_9362", "Ascend910_9363",
    ]
    /// A3 board ids (DCMI reports all of them as "Atlas 900 A3 SuperPoD").
    static let a3Boards: Set<UInt32> = [0xB0, 0xB1, 0xB2, 0xB3, 0xD1, 0xD3]
    /// First-generation Ascend 910 SoC names; `Ascend910B` here is the legacy string, not A2.
    static let firstGenerationSoCs: Set<String> = [
        "Ascend910A", "Ascend910B", "Ascend910ProA", "Ascend910ProB", "Ascend910PremiumA",
    ]
    /// Atlas 350 card board ids (one Ascend 950PR per card).
    static let atlas350Boards: ClosedRange<UInt32> = 0x18...0x1C

    static let a2Products: [AtlasProduct] = [.atlas800IA2, .a200IA2Box, .atlas300IA2, .atlasA2Training]

    /// The A2 product and board name for a DCMI board id of an Ascend 910B (A2) device.
    static func a2Board(_ id: UInt32) -> (product: AtlasProduct, board: String)? {
        switch id {
        case 0x40, 0x41: (.atlas800IA2, "Atlas 800I A2")
        case 0x37: (.atlas800IA2, "Atlas 800I A2 (280T-64G, no HCCS)")
        case 0x42, 0x43: (.atlasA2Training, "Atlas 800T A2")
        case 0x30...0x34, 0x38...0x3E: (.atlasA2Training, "Atlas 900 A2 PoD")
        case 0x50...0x53: (.atlasA2Training, "Atlas 200T A2 Box16")
        case 0x54: (.a200IA2Box, "A200I A2 Box")
        case 0x10...0x13: (.atlasA2Training, "Atlas 300T A2 card")
        case 0x28, 0x29: (.atlas300IA2, "Atlas 300I A2 card")
        default: nil
        }
    }

    static func classify(socName: String?, boardID: UInt32?) -> Detection {
        let soc = trimmed(socName ?? "")
        guard !soc.isEmpty else {
            var note = "no SoC name was reported (no runtime or no device)"
            if let boardID {
                note +=
                    "; board id \(hex(boardID)) is not used alone, since board ids are read within the chip "
                    + "family the SoC name gives"
            }
            return Detection(product: .unknown, note: note)
        }
        if soc.contains("Ascend950") {
            var note = "SoC \(soc) contains \"Ascend950\" (A5)"
            if let boardID, atlas350Boards.contains(boardID) {
                note += "; board id \(hex(boardID)) is an Atlas 350 card, which the docs cover as 950PR"
            }
            return Detection(product: .ascend950, note: note)
        }
        if soc.hasPrefix("Ascend910_95") {
            return Detection(
                product: .ascend950,
                note: "SoC \(soc) is a pre-release Ascend 950 name (Ascend910_95*); treated as Ascend 950")
        }
        if soc.hasPrefix("Ascend910_93") { return a3(soc: soc, boardID: boardID) }
        if a2SoCs.contains(soc) { return a2(soc: soc, boardID: boardID) }
        if firstGenerationSoCs.contains(soc) {
            let legacy = soc == "Ascend910B" ? " (the legacy first-generation string, not A2)" : ""
            return Detection(product: .atlasTraining, note: "SoC \(soc)\(legacy) is a first-generation Ascend 910")
        }
        if soc.hasPrefix("Ascend310P") {
            return Detection(product: .atlasInference, note: "SoC \(soc) is an Ascend 310P (Atlas inference series)")
        }
        if soc.hasPrefix("Ascend310B") {
            return Detection(product: .atlas200I500A2, note: "SoC \(soc) is an Ascend 310B (Atlas 200I/500 A2)")
        }
        if soc.hasPrefix("Ascend350") {
            return Detection(
                product: .unknown,
                note: "SoC \(soc) (Ascend350_*) ships only in cann-dev and no support table names its product")
        }
        return Detection(product: .unknown, note: "SoC \(soc) is not a recognised Ascend SoC name")
    }

    private static func a3(soc: String, boardID: UInt32?) -> Detection {
        var note = "SoC \(soc) is A3"
        if !a3SoCs.contains(soc) {
            note += " by its Ascend910_93 prefix (not in the runtime's SoC catalogue)"
        } else if soc == "Ascend910_9363" {
            note += " (missing from HIXL's own A3 set, which would treat it as another SoC)"
        }
        if let boardID {
            note +=
                a3Boards.contains(boardID)
                ? "; board id \(hex(boardID)) is an A3 board"
                : "; board id \(hex(boardID)) is not a known A3 board id, the SoC name decides"
        }
        note +=
            "; A3 training and inference cannot be told apart from SoC name or board id and have identical "
            + "support, so atlas-a3-training is reported"
        return Detection(product: .atlasA3Training, note: note)
    }

    private static func a2(soc: String, boardID: UInt32?) -> Detection {
        if let boardID {
            if let (product, board) = a2Board(boardID) {
                return Detection(
                    product: product, note: "SoC \(soc) is A2 and board id \(hex(boardID)) is an \(board)")
            }
            return Detection(
                candidates: a2Products,
                note: "SoC \(soc) is A2 but board id \(hex(boardID)) is not a known A2 board id, so any A2 product "
                    + "is possible")
        }
        switch soc {
        case "Ascend910B4", "Ascend910B4-1":
            return Detection(
                candidates: [.atlas800IA2, .atlas300IA2, .a200IA2Box],
                note: "SoC \(soc) is an A2 inference bin (Atlas 800I A2, 300I A2 or A200I A2 Box) and no board id "
                    + "was read to tell them apart")
        case "Ascend910B3":
            return Detection(
                candidates: [.atlas800IA2, .atlasA2Training],
                note: "SoC Ascend910B3 is used by both the Atlas 800I A2 and the Atlas 800T A2, and no board id "
                    + "was read to tell them apart")
        case "Ascend910B2C":
            return Detection(
                product: .atlasA2Training,
                note: "SoC Ascend910B2C is a 24-core A2 bin like B1/B2 (training SKUs) whose product is not "
                    + "documented; no board id was read, so Atlas A2 training series is assumed")
        default:  // B1, B2
            return Detection(
                product: .atlasA2Training,
                note: "SoC \(soc) has been seen only on A2 training SKUs; no board id was read to confirm it, so "
                    + "Atlas A2 training series is assumed")
        }
    }

    private static func trimmed(_ text: String) -> String {
        var view = Substring(text)
        while let first = view.first, first.isWhitespace || first == "\0" { view.removeFirst() }
        while let last = view.last, last.isWhitespace || last == "\0" { view.removeLast() }
        return String(view)
    }
}
