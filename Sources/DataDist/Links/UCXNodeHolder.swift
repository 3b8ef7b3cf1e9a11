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
                environment: ProcessEnvironment.current)
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
