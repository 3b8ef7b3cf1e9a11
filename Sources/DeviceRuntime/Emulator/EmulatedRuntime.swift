internal import CNuma
public import DeviceCaps
public import Logging
import Synchronization
import ThreadSanitizerSupport

#if canImport(Glibc)
import Glibc
#endif

/// NUMA-aware host memory standing in for Atlas NPUs, mirroring ACL's allocation and copy semantics.
///
/// - Topology: read from hwloc (`Topology.load(environment:)`), so `HWLOC_SYNTHETIC` / `HWLOC_XMLFILE` in the
///   environment dictionary give a multi-node layout on a one-node machine.
/// - Devices: `DATADIST_EMULATE_DEVICES` (1...64, default 8), each with a home NUMA node per
///   `Topology.homeNodes` and `Topology.deviceHomeNodes(deviceCount:)`: the first node of each package when
///   there are several packages, else every node; devices split into contiguous equal groups over them.
/// - Capacity: `DATADIST_EMULATE_DEVICE_MEMORY` bytes per device (default 64 GiB). Like `aclrtMalloc` on
///   A2/A3 each allocation is charged its size rounded up to 32 bytes plus 32 (rounded only, on Ascend 950).
/// - Memory: every allocation is its own memfd, mapped shared, so another process can map the same bytes
///   (`DeviceMemory.shared`). Pages are only backed when touched. Device memory prefers its home node
///   (`mbind`) when that node exists on this machine; otherwise it stays on the default policy, with one
///   warning per runtime.
/// - Product: `DATADIST_PRODUCT`, else `DATADIST_EMULATE_PRODUCT` (default `atlas-800i-a2`).
/// - Faults: `DATADIST_FAULTS` and `DATADIST_FAULT_SEED` (see `FaultPlan`); an injected allocation failure is
///   ACL's 207001, an injected copy failure 507013.
///
/// Thread-safe; copies run without holding the runtime's lock.
public final class EmulatedRuntime: DeviceRuntime {
    /// The host layout hwloc reported.
    public let topology: Topology
    public let capabilities: DeviceCapabilities
    /// Bytes each device can hold.
    public let deviceCapacity: Int
    public var backend: Backend { .emulator }
    public var libraryPath: String? { nil }
    public var deviceCount: Int { homeNodes.count }
    public let faults: FaultPlan?

    private let homeNodes: [Int]
    /// Home nodes that do not exist on this machine (or all of them, without libnuma).
    private let emulatedNodes: [Int]
    private let logger: Logger
    private let state: Lock<State>
    /// Keys, streams, host registrations and peer access for device sharing (EmulatorSharing.swift). Never
    /// locked together with `state`.
    let shared = Lock<EmulatorSharedState>(EmulatorSharedState())

    private struct State {
        var table = EmulatorAllocationTable()
        /// Bytes charged per device, including reservations for allocations being mapped.
        var used: [Int]
        /// Warnings issued because device memory could not be bound to its home node (at most 1).
        var bindingWarnings = 0
        /// Device allocations left on the default memory policy.
        var unboundAllocations = 0
    }

    /// Builds an emulator from `environment` (see the type's documentation for the variables).
    ///
    /// - Throws: `DeviceError(.unavailable)` naming the variable and its value when a setting is invalid or
    ///   the topology cannot be loaded.
    public init(
        environment: [String: String] = ProcessEnvironment.current,
        logger: Logger = Logger(label: "datadist.emulator")
    ) throws(DeviceError) {
        let configuration = try EmulatorConfiguration(environment: environment)
        faults = try FaultPlan.make(environment: environment)
        topology = try Topology.load(environment: environment)
        homeNodes = topology.deviceHomeNodes(deviceCount: configuration.deviceCount)
        deviceCapacity = configuration.capacity
        capabilities = DeviceCapabilities(product: configuration.product, socName: nil, boardID: nil)
        self.logger = logger
        state = Lock(State(used: Array(repeating: 0, count: configuration.deviceCount)))

        let maxPhysicalNode = numa_available() >= 0 ? Int(numa_max_node()) : -1
        emulatedNodes = Array(Set(homeNodes.filter { $0 > maxPhysicalNode })).sorted()
        logger.debug(
            "emulated runtime ready",
            metadata: [
                "devices": "\(configuration.deviceCount)", "capacity": "\(configuration.capacity)",
                "product": "\(configuration.product.rawValue)", "homeNodes": "\(homeNodes)",
                "emulatedNodes": "\(emulatedNodes)",
            ])
    }

    /// The home NUMA node (OS index) of `device`, or -1 when `device` is not in `0..<deviceCount`.
    public func homeNode(of device: Int32) -> Int {
        isDevice(device) ? homeNodes[Int(device)] : -1
    }

    public func deviceInfo(_ device: Int32) throws(DeviceError) -> DeviceInfo {
        try checkDevice(device)
        let used = state.withLock { $0.used[Int(device)] }
        return DeviceInfo(
            index: device, numaNode: homeNodes[Int(device)], totalBytes: deviceCapacity,
            freeBytes: deviceCapacity - used)
    }

    public func allocateDevice(_ size: Int, on device: Int32) throws(DeviceError) -> DeviceMemory {
        try checkDevice(device)
        guard size > 0 else {
            throw DeviceError(.acl(ACLCode.invalidParam), "size \(size) for device \(device) must be positive")
        }
        try injectAllocationFault("device \(device): cannot allocate \(size) bytes")
        let charge = accountedBytes(for: size)
        try reserve(charge, size: size, on: device)
        let mapping: MemfdMapping
        do {
            mapping = try MemfdMapping.create(name: "datadist-dev\(device)", byteCount: size)
        } catch {
            state.withLock { $0.used[Int(device)] -= charge }
            throw error
        }
        bind(mapping, to: homeNodes[Int(device)], device: device)
        return register(mapping, size: size, placement: .device(device), accounted: charge)
    }

    public func allocateHost(_ size: Int) throws(DeviceError) -> DeviceMemory {
        guard size > 0 else {
            throw DeviceError(.acl(ACLCode.invalidParam), "host allocation size \(size) must be positive")
        }
        try injectAllocationFault("cannot allocate \(size) bytes of host memory")
        let mapping = try MemfdMapping.create(name: "datadist-host", byteCount: size)
        return register(mapping, size: size, placement: .host, accounted: 0)
    }

    public func free(_ memory: DeviceMemory) throws(DeviceError) {
        let exports = shared.withLock { $0.exports.values.count { $0.allocation == memory.address } }
        guard exports == 0 else {
            throw DeviceError(
                .acl(ACLCode.memoryFree),
                "memory at 0x\(String(memory.address, radix: 16)) is still exported by \(exports) key(s); close them first"
            )
        }
        let removed = state.withLock { state -> EmulatorAllocation? in
            guard let allocation = state.table.remove(memory) else { return nil }
            if case .device(let device) = allocation.memory.placement {
                state.used[Int(device)] -= allocation.accounted
            }
            return allocation
        }
        guard let removed else {
            throw DeviceError(
                .acl(ACLCode.memoryFree),
                "memory at 0x\(String(memory.address, radix: 16)) (\(memory.placement)) is not a live allocation of this runtime"
            )
        }
        removed.mapping.release()
    }

    public func copy(
        to destination: UInt, capacity: Int, from source: UInt, count: Int, kind: MemcpyKind, device: Int32
    ) throws(DeviceError) {
        try checkDevice(device)
        guard let target = UnsafeMutableRawPointer(bitPattern: destination),
            let origin = UnsafeRawPointer(bitPattern: source)
        else {
            throw DeviceError(
                .acl(ACLCode.invalidParam),
                "copy with a null pointer (destination 0x\(String(destination, radix: 16)), source 0x\(String(source, radix: 16)))"
            )
        }
        guard count >= 0, capacity >= 0, count <= capacity else {
            throw DeviceError(
                .acl(ACLCode.invalidParam), "copy count \(count) does not fit the destination capacity \(capacity)")
        }
        try checkDeviceSides(to: destination, from: source, count: count, kind: kind)
        guard count > 0 else { return }
        if let faults, faults.shouldFail(.copy) {
            throw DeviceError(
                .acl(ACLCode.systemDMA), "\(FaultPlan.describe(.copy)): \(kind) copy of \(count) bytes failed")
        }
        // The ranges were checked against live allocations (device side) or are the caller's (host side).
        HostCopy.copy(to: target, from: origin, count: count)
    }

    /// Warnings issued so far because device memory stayed off its home node (at most one per runtime).
    var bindingWarningCount: Int { state.withLock { $0.bindingWarnings } }

    /// Device allocations left on the default memory policy.
    var unboundAllocationCount: Int { state.withLock { $0.unboundAllocations } }

    /// Live allocations, device and host.
    var liveAllocationCount: Int { state.withLock { $0.table.count } }

    // MARK: - Helpers

    /// Bytes `aclrtMalloc` charges for `size`: rounded up to 32, plus 32 before Ascend 950.
    func accountedBytes(for size: Int) -> Int {
        let extra = capabilities.product == .ascend950 ? 0 : 32
        guard size <= Int.max - 31 - extra else { return Int.max }
        return (size + 31) / 32 * 32 + extra
    }

    private func injectAllocationFault(_ failure: @autoclosure () -> String) throws(DeviceError) {
        guard let faults, faults.shouldFail(.alloc) else { return }
        throw DeviceError(.acl(ACLCode.memoryAllocation), "\(FaultPlan.describe(.alloc)): \(failure())")
    }

    private func isDevice(_ device: Int32) -> Bool {
        device >= 0 && Int(device) < homeNodes.count
    }

    func checkDevice(_ device: Int32) throws(DeviceError) {
        guard isDevice(device) else {
            throw DeviceError(
                .acl(ACLCode.invalidDeviceID), "device \(device) is not in 0..<\(homeNodes.count)")
        }
    }

    private func reserve(_ charge: Int, size: Int, on device: Int32) throws(DeviceError) {
        let capacity = deviceCapacity
        try state.withLock { state throws(DeviceError) in
            let free = capacity - state.used[Int(device)]
            guard charge <= free else {
                throw DeviceError(
                    .acl(ACLCode.memoryAllocation),
                    "device \(device): cannot allocate \(size) bytes (\(charge) with ACL rounding), \(free) of \(capacity) bytes free"
                )
            }
            state.used[Int(device)] += charge
        }
    }

    private func register(
        _ mapping: MemfdMapping, size: Int, placement: MemoryPlacement, accounted: Int
    ) -> DeviceMemory {
        let memory = DeviceMemory(
            address: mapping.address, size: size, placement: placement,
            shared: SharedRegion(fd: mapping.fd, offset: 0, length: mapping.length))
        state.withLock { $0.table.insert(EmulatorAllocation(mapping: mapping, memory: memory, accounted: accounted)) }
        return memory
    }

    /// Prefers `node` for the mapping's pages when the node exists here; otherwise warns once per runtime.
    private func bind(_ mapping: MemfdMapping, to node: Int, device: Int32) {
        let reason: String
        if emulatedNodes.contains(node) {
            reason = "NUMA node \(node) of device \(device) is emulated (not on this machine)"
        } else if let failure = mapping.prefer(node: node) {
            reason = "mbind to NUMA node \(node) for device \(device) failed (errno \(failure))"
        } else {
            return
        }
        let isFirst = state.withLock { state -> Bool in
            state.unboundAllocations += 1
            guard state.bindingWarnings == 0 else { return false }
            state.bindingWarnings = 1
            return true
        }
        if isFirst {
            logger.warning("\(reason); device memory stays on the default memory policy")
        }
    }

    /// Checks that the device sides of a `kind` copy lie inside live device memory: an allocation of this
    /// runtime, an import, or a host registration.
    func checkDeviceSides(to destination: UInt, from source: UInt, count: Int, kind: MemcpyKind) throws(DeviceError) {
        let (destinationOnDevice, sourceOnDevice) = Self.deviceSides(of: kind)
        if destinationOnDevice { try checkDeviceSide(destination, "destination", count: count, kind: kind) }
        if sourceOnDevice { try checkDeviceSide(source, "source", count: count, kind: kind) }
    }

    /// `checkDeviceSides` for every segment of a batch, with one acquisition of the allocation table's lock; from
    /// the first segment not inside this runtime's own allocations on, one segment at a time (imports and host
    /// registrations are looked up then, and a failure names that segment as a single copy's check would).
    func checkDeviceSides(of segments: [CopySegment], kind: MemcpyKind) throws(DeviceError) {
        let (destinationOnDevice, sourceOnDevice) = Self.deviceSides(of: kind)
        guard destinationOnDevice || sourceOnDevice else { return }
        let outside = state.withLock { state in
            segments.firstIndex { segment in
                (destinationOnDevice && !state.table.holdsDeviceBytes(at: segment.destination, count: segment.count))
                    || (sourceOnDevice && !state.table.holdsDeviceBytes(at: segment.source, count: segment.count))
            }
        }
        guard let outside else { return }
        for segment in segments[outside...] {
            try checkDeviceSides(to: segment.destination, from: segment.source, count: segment.count, kind: kind)
        }
    }

    private static func deviceSides(of kind: MemcpyKind) -> (destination: Bool, source: Bool) {
        (kind == .hostToDevice || kind == .deviceToDevice, kind == .deviceToHost || kind == .deviceToDevice)
    }

    private func checkDeviceSide(_ address: UInt, _ role: String, count: Int, kind: MemcpyKind) throws(DeviceError) {
        guard
            liveAllocation(containing: address, count: count, placement: .device) != nil
                || shared.withLock({ $0.deviceReachable(address, count: count) })
        else {
            throw DeviceError(
                .acl(ACLCode.runtimeParamInvalid),
                "\(role) 0x\(String(address, radix: 16)) of a \(kind) copy of \(count) bytes is not inside a live device allocation"
            )
        }
    }

    enum PlacementKind { case device, host }

    /// The live allocation of `placement`'s kind holding all of `[address, address + count)`.
    func liveAllocation(containing address: UInt, count: Int, placement: PlacementKind) -> EmulatorAllocation? {
        state.withLock { state -> EmulatorAllocation? in
            guard let allocation = state.table.allocation(containing: address),
                Int(address - allocation.memory.address) <= allocation.memory.size - count
            else { return nil }
            switch (allocation.memory.placement, placement) {
            case (.device, .device), (.host, .host): return allocation
            default: return nil
            }
        }
    }
}
