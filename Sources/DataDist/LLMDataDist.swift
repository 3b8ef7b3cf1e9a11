import BlockPool
public import CoreMetrics
public import DeviceCaps
import DeviceRuntime
public import Logging
import Synchronization
import ThreadSanitizerSupport

/// One DataDist instance (a prompt or decoder cluster): owns its runtime, pools and cache manager. Several
/// instances may live in one process, each with its own pools. Thread-safe.
public final class LLMDataDist: Sendable {
    public let clusterID: UInt64
    /// Unique in the process; with the initialisation count it tells the caches this instance issued.
    let serial: UInt64
    let state: Lock<InstanceState>
    let logger: Logger
    /// What it reports through swift-metrics (and `metrics()`), across `initialize` and `finalize`.
    let meters: InstanceMeters

    struct InstanceState: Sendable {
        var role: LLMRole
        /// What exists between `initialize` and `finalize` (the manager holds the runtime, pools and links).
        var manager: CacheManager?
        /// Successful `initialize` calls so far (the generation of the caches the manager issues).
        var initializations: UInt64 = 0
    }

    public convenience init(role: LLMRole, clusterID: UInt64) {
        self.init(role: role, clusterID: clusterID, logger: Logger(label: "datadist.cluster.\(clusterID)"))
    }

    /// An instance that logs to `logger` (warnings about unsupported operations, backend selection) and reports
    /// its metrics to the backend the application bootstrapped (`MetricsSystem.factory`; none: nothing is sent).
    public convenience init(role: LLMRole, clusterID: UInt64, logger: Logger) {
        self.init(role: role, clusterID: clusterID, logger: logger, metricsFactory: MetricsSystem.factory)
    }

    /// An instance that reports its metrics (see `MetricName`) to `metricsFactory` instead of the process's
    /// bootstrapped backend.
    public init(role: LLMRole, clusterID: UInt64, logger: Logger, metricsFactory: any MetricsFactory) {
        self.clusterID = clusterID
        self.serial = instanceSerials.wrappingAdd(1, ordering: .relaxed).newValue
        self.state = Lock(InstanceState(role: role))
        self.logger = logger
        self.meters = InstanceMeters(clusterID: clusterID, factory: metricsFactory)
    }

    /// An instance dropped without `finalize()` finalizes itself (unlinks, stops listening, frees its pools).
    deinit { finalize() }

    /// The role label given at construction or by `switchRole`.
    public var role: LLMRole { state.withLock { $0.role } }

    /// Whether `initialize` has run and `finalize` has not.
    public var isInitialized: Bool { state.withLock { $0.manager != nil } }

    /// Selects the device runtime (see `DATADIST_BACKEND`), builds the configured pools and reads the product's
    /// capabilities. A second call on an initialised instance returns silently.
    public func initialize(_ config: LLMConfig) throws(LLMError) {
        try initialize(config, environment: ProcessEnvironment.current)
    }

    /// `initialize(_:)` with an explicit environment instead of the process's (for tests and embedders). Its
    /// `UCX_*` variables that the process environment lacks configure this instance's UCX context (UCX reads
    /// the process environment by itself).
    public func initialize(_ config: LLMConfig, environment: [String: String]) throws(LLMError) {
        try state.withLock { state throws(LLMError) in
            guard state.manager == nil else { return }
            let issuer = CacheIssuer(instance: serial, generation: state.initializations + 1)
            state.manager = try makeManager(config, environment: environment, issuer: issuer)
            state.initializations = issuer.generation
        }
    }

    /// Unlinks every peer, stops listening and releases every cache, key and pool of this instance. Idempotent; a
    /// never-initialised instance is a no-op.
    public func finalize() {
        let manager = state.withLock { state in
            defer { state.manager = nil }
            return state.manager
        }
        manager?.close()
    }

    /// The cache manager; `.failed` before `initialize`.
    public var cacheManager: CacheManager {
        get throws(LLMError) { try manager() }
    }

    /// The detected product, its identity and its operation gates; `.failed` before `initialize`.
    public var caps: DeviceCapabilities {
        get throws(LLMError) { try manager().resources.caps }
    }

    /// The endpoint this instance serves links on (with the port actually bound), nil when it is not listening.
    public var listenEndpoint: IPEndpoint? { state.withLock { $0.manager }?.links.listenEndpoint }

    /// Which transport the live link to cluster `clusterID` moves its bytes over (`.sharedMemory` or `.ucx`), or
    /// nil when that cluster is not linked.
    public func linkTransport(toCluster clusterID: UInt64) -> TransportPreference? {
        state.withLock { $0.manager }?.links.transport(toCluster: clusterID)
    }

    /// Links this instance to each cluster over its one `remoteIPInfos` endpoint (in parallel). The first element
    /// is `.success` only if every cluster linked, else the code of the last failing cluster; the second has one
    /// code per cluster, in order. An already linked cluster gives `.alreadyLink`, an unreachable one `.linkFailed`.
    public func linkClusters(_ clusters: [LLMClusterInfo], timeout: Duration = .seconds(3)) -> (
        LLMStatusCode, [LLMStatusCode]
    ) {
        switch manager(for: .linkClusters) {
        case .success(let manager): manager.links.link(clusters, timeout: timeout)
        case .failure(let error): (error.status, [])
        }
    }

    /// Unlinks each cluster: tells the peer and tears down both sides, or with `force` only this side. Unlinking a
    /// cluster that is not linked succeeds. Without `force`, transfers in flight on the link finish first (within
    /// `timeout`), so what they consumed at the peer stays consumed; no new transfer starts on it.
    public func unlinkClusters(
        _ clusters: [LLMClusterInfo], timeout: Duration = .seconds(3), force: Bool = false
    ) -> (LLMStatusCode, [LLMStatusCode]) {
        switch manager(for: .unlinkClusters) {
        case .success(let manager): manager.links.unlink(clusters, timeout: timeout, force: force)
        case .failure(let error): (error.status, [])
        }
    }

    /// Changes the role label and what this instance listens on: an endpoint starts (or moves) the listener, nil
    /// stops it. Refused with `.existLink` while any link exists.
    public func switchRole(_ role: LLMRole, listenAddress: IPEndpoint? = nil) throws(LLMError) {
        let manager = try manager()
        try manager.resources.gate(.switchRole)
        let links = manager.links.linkCount
        guard links == 0 else {
            throw LLMError(.existLink, "switchRole on cluster \(clusterID) with \(links) live links; unlink them first")
        }
        if let listenAddress {
            if manager.links.listenEndpoint.map({ $0.host != listenAddress.host || $0.port != listenAddress.port })
                ?? true
            {
                try manager.links.startListening(on: listenAddress)
            }
        } else {
            manager.links.stopListening()
        }
        state.withLock { $0.role = role }
    }

    /// The cache manager of the initialised instance and its product gate for a link operation, which reports
    /// failures as a status (the link operations return statuses, as the reference does) and logs them.
    private func manager(for operation: Operation) -> Result<CacheManager, LLMError> {
        do {
            let manager = try manager()
            try manager.resources.gate(operation)
            return .success(manager)
        } catch {
            logger.warning("\(operation.rawValue): \(error)")
            return .failure(error)
        }
    }

    func manager() throws(LLMError) -> CacheManager {
        guard let manager = state.withLock({ $0.manager }) else {
            throw LLMError(.failed, "LLMDataDist of cluster \(clusterID) is not initialized; call initialize(_:) first")
        }
        return manager
    }

    private func makeManager(_ config: LLMConfig, environment: [String: String], issuer: CacheIssuer)
        throws(LLMError) -> CacheManager
    {
        try config.validate()
        var config = config
        config.transport = try TransportPreference.effective(config.transport, environment: environment)
        let stagingBytes = try UCXNodeHolder.stagingBytes(in: environment)
        let choice = try RuntimeChoice.select(environment: environment, logger: logger)
        let runtime = choice.runtime
        guard Int(config.deviceID) < runtime.deviceCount else {
            throw .paramInvalid(
                "deviceID \(config.deviceID) is not < the \(runtime.deviceCount) devices of the \(runtime.backend) runtime"
            )
        }
        let devicePool = try makePool(config.memoryPool, field: "memoryPool", runtime, .device(config.deviceID))
        let hostPool = try makePool(config.hostMemoryPool, field: "hostMemoryPool", runtime, .host)
        // Peers write our pools only when both sides enable remote cache access (pushes); otherwise no process may
        // ever map them writable again, not even one able to re-open its read-only descriptor through /proc.
        for pool in [devicePool, hostPool].compactMap({ $0 }) {
            do {
                try pool.region.shared?.finishSealing(peersMayWrite: config.enableRemoteCacheAccessible)
            } catch {
                throw LLMError(runtimeError: error, while: "sealing a pool's memory")
            }
        }
        logger.debug(
            "initialized",
            metadata: [
                "backend": "\(runtime.backend.rawValue)", "reason": "\(choice.reason)",
                "product": "\(runtime.capabilities.product.rawValue)",
            ])
        let resources = InstanceResources(
            clusterID: clusterID, issuer: issuer, config: config, runtime: runtime, devicePool: devicePool,
            hostPool: hostPool, logger: logger, meters: meters)
        let manager = CacheManager(resources: resources)
        manager.links.ucx.overrides = UCXNodeHolder.overrides(in: environment, process: ProcessEnvironment.current)
        manager.links.ucx.stageDeviceMemory(
            of: runtime, device: config.deviceID, bytesPerLink: stagingBytes, hostPool: hostPool?.region)
        do throws(LLMError) {
            try manager.startLeases()
            if let endpoint = config.listenAddress {
                try manager.links.startListening(on: endpoint)
            }
        } catch {
            manager.close()
            throw error
        }
        return manager
    }

    private func makePool(
        _ pool: MemoryPoolConfig?, field: String, _ runtime: any DeviceRuntime, _ placement: MemoryPlacement
    ) throws(LLMError) -> BlockPool? {
        guard let pool else { return nil }
        do {
            return try BlockPool(runtime: runtime, placement: placement, size: pool.size, pageShift: pool.pageShift)
        } catch {
            switch error {
            case .invalidConfiguration(_, let message): throw .paramInvalid("LLMConfig.\(field): \(message)")
            case .runtime(let inner):
                if inner.aclCode == ACLCode.memoryAllocation {
                    throw LLMError(.deviceOutOfMemory, "LLMConfig.\(field) of \(pool.size) bytes: \(inner)")
                }
                throw LLMError(runtimeError: inner, while: "allocating LLMConfig.\(field) of \(pool.size) bytes")
            case .exhausted: throw LLMError(.failed, "LLMConfig.\(field): \(error)")
            }
        }
    }
}

/// Serials of `LLMDataDist` instances (the last one given out).
private let instanceSerials = Atomic<UInt64>(0)

extension RuntimeChoice {
    /// `RuntimeSelection.select`, with its failure mapped to `.failed` at the DataDist boundary.
    static func select(environment: [String: String], logger: Logger) throws(LLMError) -> RuntimeChoice {
        do {
            return try RuntimeSelection.select(environment: environment, logger: logger)
        } catch {
            throw LLMError(.failed, "no device runtime: \(error)")
        }
    }
}
