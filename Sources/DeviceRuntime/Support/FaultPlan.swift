import Synchronization

/// Faults to inject, from `DATADIST_FAULTS` and `DATADIST_FAULT_SEED`, and the decision whether a given call
/// fails now. Lets users (and our tests) exercise their error handling against failures the real system can
/// produce.
///
/// Grammar: `DATADIST_FAULTS` is a comma-separated list of rules, at most one per kind:
/// - `kind:P`: each call of that kind fails with probability `P` (0 < P ≤ 1), decided by `DATADIST_FAULT_SEED`
///   (an unsigned integer, default 0) and the call's number, so a seed replays the same failures;
/// - `kind@N`: only the `N`th call (N ≥ 1) of that kind fails;
/// - `peer-death@after=D`: every link dies `D` (`250ms`, `5s`; at most a day) after it is established.
///
/// Kinds (`Kind`): `alloc`, `copy`, `send`, `receive`, `peer-death`. Calls are counted per kind, per runtime
/// (each `initialize` gets a new one). An empty or unset `DATADIST_FAULTS` injects nothing; any other value that
/// is not a valid spec refuses the runtime.
public final class FaultPlan: Sendable {
    public static let specVariable = "DATADIST_FAULTS"
    public static let seedVariable = "DATADIST_FAULT_SEED"

    /// What can be made to fail.
    public enum Kind: String, CaseIterable, Sendable {
        /// Device and host allocations of the runtime (ACL's out-of-memory, 207001).
        case alloc
        /// The runtime's copies, the data plane's included (ACL's DMA error, 507013).
        case copy
        /// Frames sent on a link's control connection (the link fails as on a broken socket).
        case send
        /// Frames received on a link's control connection (the link fails as on a failed read).
        case receive
        /// Requests sent on a link: the link drops as if the peer had died.
        case peerDeath = "peer-death"
    }

    /// When calls of one kind fail.
    public enum Trigger: Sendable, Hashable {
        /// Each call with this probability.
        case probability(Double)
        /// The call with this number (counted from 1).
        case nthCall(UInt64)
        /// A link, this long after it was established (`peer-death` only).
        case after(Duration)
    }

    public let triggers: [Kind: Trigger]
    public let seed: UInt64
    /// Calls counted so far, one counter per kind in `Kind.allCases` order.
    private let counters: [Counter]
    /// Triggers in `Kind.allCases` order (no hashing on the hot path).
    private let ordered: [Trigger?]

    private final class Counter: Sendable {
        let calls = Atomic<UInt64>(0)
    }

    /// The plan `environment` asks for, or nil when it asks for none.
    ///
    /// - Throws: `DeviceError(.unavailable)` naming the variable and the token that is not valid.
    public static func make(environment: [String: String]) throws(DeviceError) -> FaultPlan? {
        let seed = try parseSeed(environment[seedVariable])
        guard let spec = environment[specVariable], !spec.isEmpty else { return nil }
        return FaultPlan(triggers: try parse(spec), seed: seed)
    }

    public init(triggers: [Kind: Trigger], seed: UInt64) {
        self.triggers = triggers
        self.seed = seed
        ordered = Kind.allCases.map { triggers[$0] }
        counters = Kind.allCases.map { _ in Counter() }
    }

    /// Counts a call of `kind` and says whether it is to fail.
    public func shouldFail(_ kind: Kind) -> Bool {
        let index = kind.index
        guard let trigger = ordered[index] else { return false }
        let call = counters[index].calls.wrappingAdd(1, ordering: .relaxed).newValue
        switch trigger {
        case .probability(let probability):
            return Self.unitValue(seed: seed, kind: index, call: call) < probability
        case .nthCall(let number):
            return call == number
        case .after:
            return false
        }
    }

    /// How long a link lives before it dies, when `peer-death@after=` asks for it.
    public var peerDeathDelay: Duration? {
        if case .after(let delay)? = ordered[Kind.peerDeath.index] { return delay }
        return nil
    }

    /// The text injected failures carry, so a log or an error says the failure was not real.
    public static func describe(_ kind: Kind) -> String {
        "injected fault (\(specVariable) \(kind.rawValue))"
    }

    // MARK: - Decision

    /// A value in [0, 1) fixed by the seed, the kind and the call's number (SplitMix64's finaliser).
    private static func unitValue(seed: UInt64, kind: Int, call: UInt64) -> Double {
        var z = seed &+ UInt64(kind + 1) &* 0xD1B5_4A32_D192_ED03 &+ call &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / Double(UInt64(1) << 53)
    }

    // MARK: - Parsing

    static let grammar =
        "rules kind:P (0 < P <= 1), kind@N (N >= 1) or peer-death@after=D (D like 250ms or 5s, at most 86400s), "
        + "comma-separated, one per kind; kinds: \(Kind.allCases.map(\.rawValue).joined(separator: ", "))"

    static func parse(_ spec: String) throws(DeviceError) -> [Kind: Trigger] {
        var triggers: [Kind: Trigger] = [:]
        for token in spec.split(separator: ",", omittingEmptySubsequences: false) {
            let rule = String(token)
            guard let (kind, trigger) = parseRule(rule) else {
                throw refusal("\"\(rule)\" is not a rule (\(grammar))", spec: spec)
            }
            guard triggers[kind] == nil else {
                throw refusal("\"\(rule)\" repeats kind \(kind.rawValue) (one rule per kind)", spec: spec)
            }
            triggers[kind] = trigger
        }
        return triggers
    }

    private static func parseRule(_ rule: String) -> (Kind, Trigger)? {
        if let colon = rule.firstIndex(of: ":") {
            guard let kind = Kind(rawValue: String(rule[..<colon])),
                let probability = Double(rule[rule.index(after: colon)...]), probability > 0, probability <= 1
            else { return nil }
            return (kind, .probability(probability))
        }
        guard let at = rule.firstIndex(of: "@"), let kind = Kind(rawValue: String(rule[..<at])) else { return nil }
        let argument = rule[rule.index(after: at)...]
        if argument.hasPrefix("after=") {
            guard kind == .peerDeath, let delay = parseDuration(argument.dropFirst("after=".count)) else { return nil }
            return (kind, .after(delay))
        }
        guard argument.allSatisfy(\.isASCIIDigit), let number = UInt64(argument), number >= 1 else { return nil }
        return (kind, .nthCall(number))
    }

    /// The longest `peer-death@after=` delay: one day.
    static let maximumDelayMilliseconds: Int64 = 86_400_000

    /// `250ms` or `5s`: a positive whole number of milliseconds or seconds, at most a day.
    private static func parseDuration(_ text: Substring) -> Duration? {
        let (digits, scale): (Substring, Int64) =
            text.hasSuffix("ms") ? (text.dropLast(2), 1) : text.hasSuffix("s") ? (text.dropLast(1), 1000) : ("", 0)
        guard !digits.isEmpty, digits.allSatisfy(\.isASCIIDigit), let count = Int64(digits), count > 0,
            count <= maximumDelayMilliseconds / scale
        else { return nil }
        return .milliseconds(count * scale)
    }

    private static func parseSeed(_ text: String?) throws(DeviceError) -> UInt64 {
        guard let text else { return 0 }
        guard text.allSatisfy(\.isASCIIDigit), let seed = UInt64(text) else {
            throw DeviceError(.unavailable, "\(seedVariable)=\"\(text)\" is not an unsigned integer seed")
        }
        return seed
    }

    private static func refusal(_ problem: String, spec: String) -> DeviceError {
        DeviceError(.unavailable, "\(specVariable)=\"\(spec)\": \(problem)")
    }
}

extension FaultPlan.Kind {
    /// Position in `allCases`.
    fileprivate var index: Int {
        switch self {
        case .alloc: 0
        case .copy: 1
        case .send: 2
        case .receive: 3
        case .peerDeath: 4
        }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
