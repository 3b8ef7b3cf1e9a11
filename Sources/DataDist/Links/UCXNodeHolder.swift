import DeviceRuntime
import LinkLayer
import Synchronization
import ThreadSanitizerSupport

/// An instance's UCX node, made on first use (UCX is set up only by an instance that links over it) and kept
/// while the instance lives; links over UCX hold it too.
final class UCXNodeHolder: Sendable {
    private let state = Lock(State())
    private let transferTimeout: Duration

    private struct State {
        var node: UCXNode?
        var overrides: [String: String] = [:]
        var staging: UCXStaging?
    }

    init(transferTimeout: Duration) { self.transferTimeout = transferTimeout }

    /// UCX variables (without `UCX_`) that win over the environment for a node made later: tests pin a
    /// transport with them (`["TLS": "tcp"]`) without touching the process environment.
    var overrides: [String: String] {
        get { state.withLock { $0.overrides } }
        set { state.withLock { $0.overrides = newValue } }
    }

    /// The `UCX_*` variables of an instance's `environment` that the process environment does not have (an
    /// embedder's or a test's own environment): set in the instance's UCX context, since UCX itself reads only
    /// the process's. Names without the `UCX_` prefix.
    static func overrides(in environment: [String: String], process: [String: String]) -> [String: String] {
        var result: [String: String] = [:]
        for (name, value) in environment where name.hasPrefix("UCX_") && process[name] != value {
            result[String(name.dropFirst(4))] = value
        }
        return result
    }

    /// How a node made later moves device memory host code cannot address (the ACL backend); nil: all is host
    /// memory to UCX (the emulator).
    var staging: UCXStaging? {
        get { state.withLock { $0.staging } }
        set { state.withLock { $0.staging = newValue } }
    }

    /// Makes a node made later stage the device memory of `runtime` when host code cannot address it (the ACL
    /// backend; the emulator's device memory is host memory): UCX then gets only pinned host buffers of at most
    /// `bytesPerLink` per link, and host memory (`hostPool`, host regions).
    func stageDeviceMemory(of runtime: any DeviceRuntime, device: Int32, bytesPerLink: Int, hostPool: DeviceMemory?) {
        guard runtime.backend == .acl else { return }
        staging = UCXStaging(
            runtime: runtime, device: device, bytesPerLink: bytesPerLink,
            hostRanges: hostPool.map { [$0.address..<($0.address + UInt($0.size))] } ?? [])
    }

    /// The local ranges the node registered with UCX (none without a node).
    var registeredRanges: [Range<UInt>] { state.withLock { $0.node }?.registeredRanges ?? [] }

    /// The bytes of staging memory per link `environment` asks for (`DATADIST_UCX_STAGING_BYTES`, a `ByteSize`
    /// text), or the default. Throws `.paramInvalid` naming the variable and value for any other text or a size
    /// outside `UCXStaging.bytesPerLinkRange`.
    static func stagingBytes(in environment: [String: String]) throws(LLMError) -> Int {
        guard let text = environment[UCXStaging.variable] else { return UCXStaging.defaultBytesPerLink }
        let range = UCXStaging.bytesPerLinkRange
        guard let size = ByteSize(text), range.contains(size.bytes) else {
            throw .paramInvalid(
                "\(UCXStaging.variable) is \"\(text)\"; it must be a size from \(ByteSize(bytes: range.lowerBound)) to \(ByteSize(bytes: range.upperBound)) (\(ByteSize.grammar))"
            )
        }
        return size.bytes
    }

    /// Lets the node go (finalize): it stops once the links that still hold it are gone.
    func release() { state.withLock { $0.node = nil } }

    /// Unregisters `regions` from the node's UCX context, if there is a node (without one nothing is registered).
    func withdraw(_ regions: [UInt32]) {
        state.withLock { $0.node }?.withdraw(regions)
    }

    /// The node, made now if there is none.
    func node() throws(LinkError) -> UCXNode {
        try state.withLock { state throws(LinkError) in
            if let node = state.node { return node }
            let node = try UCXNode(
                settings: UCXSettings(overrides: state.overrides, transferTimeout: transferTimeout),
                environment: ProcessEnvironment.current, staging: state.staging)
            state.node = node
            return node
        }
    }
}

extension TransportChoice {
    init(_ preference: TransportPreference) {
        switch preference {
        case .automatic: self = .automatic
        case .sharedMemory: self = .sharedMemory
        case .ucx: self = .ucx
        }
    }
}

extension LinkTable {
    /// The data plane of the live link to `clusterID`, as a preference: `.ucx` or `.sharedMemory`; nil unlinked.
    func transport(toCluster clusterID: UInt64) -> TransportPreference? {
        guard let link = registry.withLock({ $0.links[clusterID] }), link.channel.isOpen else { return nil }
        return link.channel.dataPlane is UCXDataPlane ? .ucx : .sharedMemory
    }
}
