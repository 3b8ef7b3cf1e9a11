import BlockPool
import DeviceCaps
import DeviceRuntime
import Logging
import Synchronization

/// What an initialised instance works with: its runtime, product gates, configuration and pools.
final class EngineContext: Sendable {
    let clusterID: UInt64
    let config: LLMConfig
    let runtime: any DeviceRuntime
    let caps: DeviceCapabilities
    let devicePool: BlockPool?
    let hostPool: BlockPool?
    let logger: Logger
    private let warnedOperations = Mutex<Set<Operation>>([])

    init(
        clusterID: UInt64, config: LLMConfig, runtime: any DeviceRuntime, devicePool: BlockPool?,
        hostPool: BlockPool?, logger: Logger
    ) {
        self.clusterID = clusterID
        self.config = config
        self.runtime = runtime
        self.caps = runtime.capabilities
        self.devicePool = devicePool
        self.hostPool = hostPool
        self.logger = logger
    }

    var pools: [BlockPool] { [devicePool, hostPool].compactMap { $0 } }

    func pool(for placement: Placement) -> BlockPool? { placement == .device ? devicePool : hostPool }

    /// Refuses an operation the detected product does not support, or logs it once when
    /// `enforceProductSupport` is off.
    func gate(_ operation: Operation) throws(LLMError) {
        do {
            try caps.check(operation)
        } catch {
            guard config.enforceProductSupport else {
                let first = warnedOperations.withLock { $0.insert(operation).inserted }
                if first {
                    logger.warning(
                        "\(error.message); continuing because enforceProductSupport is false",
                        metadata: ["operation": "\(operation.rawValue)", "product": "\(caps.product.rawValue)"])
                }
                return
            }
            throw LLMError(.featureNotEnabled, error.message)
        }
    }

    /// Copies bytes through the runtime, in the direction the two placements imply.
    func copy(to destination: UInt, _ destinationPlacement: Placement, from source: UInt, _ sourcePlacement: Placement,
              count: Int) throws(LLMError) {
        let kind: MemcpyKind =
            switch (sourcePlacement, destinationPlacement) {
            case (.host, .host): .hostToHost
            case (.host, .device): .hostToDevice
            case (.device, .host): .deviceToHost
            case (.device, .device): .deviceToDevice
            }
        do {
            try runtime.copy(
                to: destination, capacity: count, from: source, count: count, kind: kind, device: config.deviceID)
        } catch {
            throw LLMError(runtimeError: error, while: "copying \(count) bytes \(kind)")
        }
    }
}

extension LLMError {
    /// Maps a runtime error once, at the DataDist boundary: ACL UCE codes pass through, out-of-memory becomes
    /// `.deviceOutOfMemory`, anything else `.failed`.
    init(runtimeError error: DeviceError, while doing: String) {
        switch error.aclCode {
        case 507_053?: self.init(.deviceMemError, "\(doing): \(error)")
        case 507_057?: self.init(.suspectRemoteError, "\(doing): \(error)")
        case ACLCode.memoryAllocation?: self.init(.deviceOutOfMemory, "\(doing): \(error)")
        default: self.init(.failed, "\(doing): \(error)")
        }
    }
}
