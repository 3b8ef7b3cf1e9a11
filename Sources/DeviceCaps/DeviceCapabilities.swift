/// The identity of the Atlas product the process runs on, and the operations it may use there.
///
/// Gating follows the vendor's product support tables (see `matrixMarkdown`). When detection is ambiguous,
/// an operation is allowed only if every candidate product supports it.
public struct DeviceCapabilities: Sendable, Hashable {
    /// The product to gate on; when ambiguous, the strictest candidate (the one supporting the fewest operations).
    public let product: AtlasProduct
    /// The SoC name the runtime reported (`aclrtGetSocName`), nil on the emulator.
    public let socName: String?
    /// The DCMI board id, when it could be read.
    public let boardID: UInt32?
    /// Every product detection could not exclude; nil unless detection was ambiguous.
    public let ambiguousCandidates: [AtlasProduct]?
    /// How the product was decided (detection rule, override, or explicit).
    public let note: String

    /// Capabilities of a product known in advance (the emulator, tests).
    public init(product: AtlasProduct, socName: String? = nil, boardID: UInt32? = nil) {
        self.init(
            product: product, socName: socName, boardID: boardID, candidates: nil, note: "product given explicitly")
    }

    /// Capabilities from a detection result; ambiguous detections keep their candidates.
    public init(detection: Detection, socName: String?, boardID: UInt32?) {
        self.init(
            product: detection.product, socName: socName, boardID: boardID,
            candidates: detection.isAmbiguous ? detection.candidates : nil, note: detection.note)
    }

    private init(
        product: AtlasProduct, socName: String?, boardID: UInt32?, candidates: [AtlasProduct]?, note: String
    ) {
        self.product = product
        self.socName = socName
        self.boardID = boardID
        self.ambiguousCandidates = candidates
        self.note = note
    }

    /// Detects the product from the SoC name and board id, unless `productOverride` (the value of
    /// `DATADIST_PRODUCT`, an `AtlasProduct` raw value) names it. A nil or empty override means "detect";
    /// an invalid one throws a `CapsError` that lists the valid ids.
    public static func identify(
        socName: String?, boardID: UInt32?, productOverride: String?
    ) throws(CapsError) -> DeviceCapabilities {
        let detection = classify(socName: socName, boardID: boardID)
        guard let raw = productOverride, !raw.isEmpty else {
            return DeviceCapabilities(detection: detection, socName: socName, boardID: boardID)
        }
        let product: AtlasProduct
        do {
            product = try AtlasProduct.parse(override: raw)
        } catch {
            throw CapsError(operation: error.operation, product: detection.product, message: error.message)
        }
        return DeviceCapabilities(
            product: product, socName: socName, boardID: boardID, candidates: nil,
            note: "DATADIST_PRODUCT=\(raw) overrides detection, which said \(detection.product.rawValue): "
                + detection.note)
    }

    /// The products the gates consider: the ambiguous candidates, or just `product`.
    public var candidates: [AtlasProduct] { ambiguousCandidates ?? [product] }

    /// Whether `op` may run here (when ambiguous: only if every candidate supports it).
    public func supports(_ op: Operation) -> Bool {
        guard let ambiguous = ambiguousCandidates else { return SupportTable.isListed(op, product) }
        return ambiguous.allSatisfy { SupportTable.isListed(op, $0) }
    }

    /// Whether `op` may run here, and why.
    public func support(_ op: Operation) -> Support {
        guard let ambiguous = ambiguousCandidates else { return Self.isSupported(op, on: product) }
        let list = ambiguous.map(\.rawValue).joined(separator: ", ")
        let refusing = ambiguous.map { Self.isSupported(op, on: $0) }.first { !$0.supported }
        if let refusing {
            return Support(supported: false, reason: "the product is ambiguous (\(list)) and " + refusing.reason)
        }
        return Support(
            supported: true,
            reason: "every possible product (\(list)) supports it: " + Self.isSupported(op, on: product).reason)
    }

    /// Throws a `CapsError` naming the operation, this product and the products that do support `op`,
    /// unless `op` is supported here.
    public func check(_ op: Operation) throws(CapsError) {
        guard !supports(op) else { return }
        let verdict = support(op)
        let supporters = AtlasProduct.allCases.filter { Self.isSupported(op, on: $0).supported }
        let on =
            ambiguousCandidates == nil
            ? "\(product.displayName) (\(product.rawValue))"
            : "this host (gated as \(product.rawValue), the strictest possible product)"
        var message = "\(op.rawValue) is not supported on \(on): \(verdict.reason). "
        message +=
            supporters.isEmpty
            ? "No product supports it."
            : "Supported on: " + supporters.map(\.rawValue).joined(separator: ", ") + "."
        if ambiguousCandidates != nil {
            message += " Set DATADIST_PRODUCT to the exact product to lift the ambiguity."
        }
        throw CapsError(operation: op, product: product, message: message)
    }

    /// The product for a SoC name and board id; for ambiguous input, the strictest candidate.
    public static func detect(socName: String?, boardID: UInt32?) -> AtlasProduct {
        classify(socName: socName, boardID: boardID).product
    }

    /// The full detection result for a SoC name and board id: product, candidates and the rule applied.
    public static func classify(socName: String?, boardID: UInt32?) -> Detection {
        Classifier.classify(socName: socName, boardID: boardID)
    }

    /// Whether the vendor docs list `op` for `product`, with the reason and its source.
    public static func isSupported(_ op: Operation, on product: AtlasProduct) -> Support {
        SupportTable.cell(op, product).support
    }
}
