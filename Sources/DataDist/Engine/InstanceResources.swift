import BlockPool
import DeviceCaps
import DeviceRuntime
import Logging
import Synchronization
import ThreadSanitizerSupport

/// What an initialised instance works with: its runtime, product gates, configuration and pools.
final class InstanceResources: Sendable {
    let clusterID: UInt64
    /// What the caches this instance issues carry; operations refuse caches with another.
    let issuer: CacheIssuer
    let config: LLMConfig
    let runtime: any DeviceRuntime
    let caps: DeviceCapabilities
    let devicePool: BlockPool?
    let hostPool: BlockPool?
    let logger: Logger
    let copyEngine: CopyEngine
    /// The runtime's batched copy, when it has one (the emulator): a transfer's segments checked in one go.
    private let segmentCopier: (any SegmentCopying)?
    /// The instance's swift-metrics figures, and those of each pool (made with the pool).
    let meters: InstanceMeters
    let devicePoolMeters: PoolMeters?
    let hostPoolMeters: PoolMeters?
    private let warnedOperations = Lock<Set<Operation>>([])
    /// Whether the detected product supports every operation (the usual case): `gate` then checks nothing.
    private let supportsEverything: Bool
    /// Whether either pool is configured (checked by every pool operation).
    let hasAnyPool: Bool

    init(
        clusterID: UInt64, issuer: CacheIssuer, config: LLMConfig, runtime: any DeviceRuntime,
        devicePool: BlockPool?, hostPool: BlockPool?, logger: Logger, meters: InstanceMeters
    ) {
        self.clusterID = clusterID
        self.issuer = issuer
        self.config = config
        self.runtime = runtime
        self.caps = runtime.capabilities
        self.supportsEverything = Operation.allCases.allSatisfy(runtime.capabilities.supports)
        self.devicePool = devicePool
        self.hostPool = hostPool
        self.hasAnyPool = devicePool != nil || hostPool != nil
        self.logger = logger
        self.copyEngine = CopyEngine(threads: config.copyThreads ?? ProcessorAffinity.availableCores)
        self.segmentCopier = runtime as? any SegmentCopying
        self.meters = meters
        self.devicePoolMeters = devicePool.map { _ in meters.pool("device") }
        self.hostPoolMeters = hostPool.map { _ in meters.pool("host") }
    }

    var pools: [BlockPool] { [devicePool, hostPool].compactMap { $0 } }

    @inline(__always)
    func pool(for placement: Placement) -> BlockPool? { placement == .device ? devicePool : hostPool }

    /// Refuses an operation the detected product does not support, or logs it once when
    /// `enforceProductSupport` is off.
    @inline(__always)
    func gate(_ operation: Operation) throws(LLMError) {
        if supportsEverything { return }
        try gateChecked(operation)
    }

    private func gateChecked(_ operation: Operation) throws(LLMError) {
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

    /// Copies every segment through the runtime, large transfers split over the copy engine's threads.
    func copy(_ segments: [CopySegment], to destinationPlacement: Placement, from sourcePlacement: Placement)
        throws(LLMError)
    {
        let kind = Self.kind(to: destinationPlacement, from: sourcePlacement)
        let total = segments.reduce(0) { $0 + $1.count }
        if copyEngine.runsInline(totalBytes: total) {
            guard let segmentCopier, segments.count > 1 else {
                for segment in segments { try copyNow(segment, kind: kind) }
                return
            }
            do throws(DeviceError) {
                try segmentCopier.copy(segments, kind: kind, device: config.deviceID)
            } catch {
                throw LLMError(
                    runtimeError: error, while: "copying \(total) bytes in \(segments.count) segments \(kind)")
            }
            return
        }
        let runtime = self.runtime
        let device = config.deviceID
        try copyEngine.run(segments) { segment throws(LLMError) in
            try Self.copy(segment, kind: kind, runtime: runtime, device: device)
        }
    }

    /// Copies `count` segments of `bytesEach` bytes, `segment(i)` giving the i-th: no array and no closure on
    /// the heap when the copy stays on the calling thread.
    func copy(
        count: Int, bytesEach: Int, to destinationPlacement: Placement, from sourcePlacement: Placement,
        segment: (Int) -> CopySegment
    ) throws(LLMError) {
        guard copyEngine.runsInline(totalBytes: count * bytesEach) else {
            try copy((0..<count).map(segment), to: destinationPlacement, from: sourcePlacement)
            return
        }
        let kind = Self.kind(to: destinationPlacement, from: sourcePlacement)
        for index in 0..<count { try copyNow(segment(index), kind: kind) }
    }

    private func copyNow(_ segment: CopySegment, kind: MemcpyKind) throws(LLMError) {
        try Self.copy(segment, kind: kind, runtime: runtime, device: config.deviceID)
    }

    private static func copy(_ segment: CopySegment, kind: MemcpyKind, runtime: any DeviceRuntime, device: Int32)
        throws(LLMError)
    {
        do throws(DeviceError) {
            try runtime.copy(
                to: segment.destination, capacity: segment.count, from: segment.source, count: segment.count,
                kind: kind, device: device)
        } catch {
            throw LLMError(runtimeError: error, while: "copying \(segment.count) bytes \(kind)")
        }
    }

    private static func kind(to destinationPlacement: Placement, from sourcePlacement: Placement) -> MemcpyKind {
        switch (sourcePlacement, destinationPlacement) {
        case (.host, .host): .hostToHost
        case (.host, .device): .hostToDevice
        case (.device, .host): .deviceToHost
        case (.device, .device): .deviceToDevice
        }
    }
}

extension LLMError {
    /// Maps a runtime error once, at the DataDist boundary: a missing feature (`.notSupported`, ACL's 207000)
    /// becomes `.featureNotEnabled`, ACL UCE codes pass through, out-of-memory becomes `.deviceOutOfMemory`,
    /// anything else `.failed`.
    init(runtimeError error: DeviceError, while doing: String) {
        if error.code == .notSupported || error.aclCode == ACLCode.featureNotSupported {
            self.init(.featureNotEnabled, "\(doing): \(error)")
            return
        }
        switch error.aclCode {
        case 507_053?: self.init(.deviceMemError, "\(doing): \(error)")
        case 507_057?: self.init(.suspectRemoteError, "\(doing): \(error)")
        case ACLCode.memoryAllocation?: self.init(.deviceOutOfMemory, "\(doing): \(error)")
        default: self.init(.failed, "\(doing): \(error)")
        }
    }
}
