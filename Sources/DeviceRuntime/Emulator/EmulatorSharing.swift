import Synchronization
import ThreadSanitizerSupport

#if canImport(Glibc)
import Glibc
#endif

/// What an emulator has open for device sharing.
struct EmulatorSharedState: Sendable {
    struct Export: Sendable {
        let record: IPCExport
        /// Base of the device allocation the exported range lies in.
        let allocation: UInt
        let device: Int32
    }
    struct Import: Sendable {
        let record: IPCImport
        let device: Int32
    }
    struct PendingCopy: Sendable {
        let destination: UInt
        let capacity: Int
        let source: UInt
        let count: Int
        let kind: MemcpyKind
    }
    struct Stream: Sendable {
        let device: Int32
        var pending: [PendingCopy] = []
    }

    var exports: [SharingKey: Export] = [:]
    var imports: [SharingKey: Import] = [:]
    var streams: [UInt: Stream] = [:]
    var nextStream: UInt = 1
    /// Registered host ranges by address: size and device.
    var registrations: [UInt: (size: Int, device: Int32)] = [:]
    /// `[device, peer]` pairs with peer access enabled.
    var peers: Set<[Int32]> = []

    /// Whether all of `[address, address + count)` is inside an import or a host registration.
    func deviceReachable(_ address: UInt, count: Int) -> Bool {
        func inside(_ base: UInt, _ size: Int) -> Bool {
            address >= base && address - base < UInt(size) && size - Int(address - base) >= count
        }
        return imports.values.contains { inside($0.record.address, $0.record.size) }
            || registrations.contains { inside($0.key, $0.value.size) }
    }

    /// Whether all of `[address, address + count)` is inside a host registration.
    func registered(_ address: UInt, count: Int) -> Bool {
        registrations.contains { base, entry in
            address >= base && address - base < UInt(entry.size) && entry.size - Int(address - base) >= count
        }
    }
}

/// Device sharing over the emulator's memfds, with the protocol of the fake ACL library: keys name a memfd that
/// another process of the same user opens through /proc, importers must be whitelisted unless the export says
/// otherwise, importers close before the exporter. Peer access is available between every pair of devices;
/// asynchronous copies queue until their stream is synchronized.
extension EmulatedRuntime {
    public func availability(of feature: DeviceFeature) -> FeatureAvailability { FeatureAvailability(feature: feature) }

    public func sharingProcessID() throws(DeviceError) -> Int32 { getpid() }

    private func requireDevice(_ device: Int32, _ call: String) throws(DeviceError) {
        guard device >= 0, Int(device) < deviceCount else {
            throw DeviceError(.acl(ACLCode.invalidDeviceID), "\(call): device \(device) is not in 0..<\(deviceCount)")
        }
    }

    public func exportRegion(at address: UInt, size: Int, device: Int32, validation: ImportValidation)
        throws(DeviceError) -> SharingKey
    {
        try requireDevice(device, "exportRegion")
        guard size > 0 else {
            throw DeviceError(.acl(ACLCode.runtimeParamInvalid), "exportRegion: size \(size) must be positive")
        }
        guard let allocation = liveAllocation(containing: address, count: size, placement: .device),
            allocation.memory.placement == .device(device)
        else {
            throw DeviceError(
                .acl(ACLCode.runtimeParamInvalid),
                "exportRegion: \(size) bytes at 0x\(String(address, radix: 16)) are not inside one live allocation of device \(device)"
            )
        }
        let offset = Int(address - allocation.memory.address)
        guard offset % MemfdMapping.pageSize == 0 else {
            throw DeviceError(
                .acl(ACLCode.addressUnaligned),
                "exportRegion: address 0x\(String(address, radix: 16)) is not aligned to the \(MemfdMapping.pageSize)-byte page"
            )
        }
        let export = try IPCExport.create(
            fd: allocation.mapping.fd, offset: offset, size: size, device: device, validation: validation)
        shared.withLock {
            $0.exports[export.key] = .init(record: export, allocation: allocation.memory.address, device: device)
        }
        return export.key
    }

    public func allowImport(of key: SharingKey, by processIDs: [Int32]) throws(DeviceError) {
        guard !processIDs.isEmpty else {
            throw DeviceError(.acl(ACLCode.runtimeParamInvalid), "allowImport: processIDs of key \(key) is empty")
        }
        if let bad = processIDs.first(where: { $0 <= 0 }) {
            throw DeviceError(.acl(ACLCode.runtimeParamInvalid), "allowImport: process id \(bad) is not a PID")
        }
        guard let export = shared.withLock({ $0.exports[key] }) else {
            throw DeviceError(
                .acl(ACLCode.runtimeParamInvalid), "allowImport: key \(key) is not an open export of this runtime")
        }
        try export.record.allow(processIDs)
    }

    public func importRegion(_ key: SharingKey, on device: Int32, peerAccess: Bool) throws(DeviceError) -> UInt {
        try requireDevice(device, "importRegion")
        guard shared.withLock({ $0.imports[key] }) == nil else {
            throw DeviceError(.acl(ACLCode.runtimeParamInvalid), "importRegion: key \(key) is already imported here")
        }
        let imported = try IPCImport.open(key)
        let peerAllowed = peerAccess || shared.withLock { $0.peers.contains([device, imported.exportDevice]) }
        let accepted = shared.withLock { state -> Bool in
            guard state.imports[key] == nil, imported.exportDevice == device || peerAllowed else { return false }
            state.imports[key] = .init(record: imported, device: device)
            return true
        }
        guard accepted else {
            _ = imported.close()
            throw DeviceError(
                .acl(ACLCode.runtimeParamInvalid),
                imported.exportDevice == device
                    ? "importRegion: key \(key) is already imported here"
                    : "importRegion: key \(key) was exported on device \(imported.exportDevice), imported on device \(device): needs peerAccess or enablePeerAccess"
            )
        }
        return imported.address
    }

    public func closeShared(_ key: SharingKey) throws(DeviceError) {
        let (imported, exported) = shared.withLock {
            state -> (EmulatorSharedState.Import?, EmulatorSharedState.Export?) in
            if let imported = state.imports.removeValue(forKey: key) { return (imported, nil) }
            return (nil, state.exports.removeValue(forKey: key))
        }
        if let imported {
            guard imported.record.close() else {
                throw DeviceError(
                    .acl(ACLCode.driverInternal), "closeShared: the exporter closed key \(key) before this importer did"
                )
            }
        } else if let exported {
            _ = exported.record.close()
        } else {
            throw DeviceError(
                .acl(ACLCode.runtimeParamInvalid), "closeShared: key \(key) is not open (imported or exported) here")
        }
    }

    public func canAccessPeer(_ device: Int32, peer: Int32) throws(DeviceError) -> Bool {
        try requireDevice(device, "canAccessPeer")
        try requireDevice(peer, "canAccessPeer")
        guard device != peer else {
            throw DeviceError(.acl(ACLCode.runtimeParamInvalid), "canAccessPeer: device and peer are both \(device)")
        }
        return true
    }

    public func enablePeerAccess(from device: Int32, to peer: Int32) throws(DeviceError) {
        _ = try canAccessPeer(device, peer: peer)
        _ = shared.withLock { $0.peers.insert([device, peer]) }
    }

    public func createStream(on device: Int32) throws(DeviceError) -> DeviceStream {
        try requireDevice(device, "createStream")
        return shared.withLock { state in
            let stream = DeviceStream(id: state.nextStream, device: device)
            state.nextStream += 1
            state.streams[stream.id] = .init(device: device)
            return stream
        }
    }

    private func checkStream(_ stream: DeviceStream, _ call: String) throws(DeviceError) {
        guard shared.withLock({ $0.streams[stream.id]?.device }) == stream.device else {
            throw DeviceError(
                .acl(ACLCode.runtimeParamInvalid),
                "\(call): stream \(stream.id) on device \(stream.device) is not a live stream here")
        }
    }

    public func copyAsync(
        to destination: UInt, capacity: Int, from source: UInt, count: Int, kind: MemcpyKind, on stream: DeviceStream
    ) throws(DeviceError) {
        try checkStream(stream, "copyAsync")
        guard destination != 0, source != 0 else {
            throw DeviceError(
                .acl(ACLCode.invalidParam),
                "copyAsync with a null pointer (destination 0x\(String(destination, radix: 16)), source 0x\(String(source, radix: 16)))"
            )
        }
        guard count >= 0, capacity >= 0, count <= capacity else {
            throw DeviceError(
                .acl(ACLCode.invalidParam), "copyAsync count \(count) does not fit the destination capacity \(capacity)"
            )
        }
        try checkDeviceSides(to: destination, from: source, count: count, kind: kind)
        let hostSides = [
            (source, "source", kind == .hostToDevice || kind == .hostToHost),
            (destination, "destination", kind == .deviceToHost || kind == .hostToHost),
        ]
        for (address, role, onHost) in hostSides where onHost {
            guard
                liveAllocation(containing: address, count: count, placement: .host) != nil
                    || shared.withLock({ $0.registered(address, count: count) })
            else {
                throw DeviceError(
                    .acl(ACLCode.runtimeParamInvalid),
                    "copyAsync: host \(role) 0x\(String(address, radix: 16)) is not pinned (allocateHost or registerHost)"
                )
            }
        }
        let queued = shared.withLock { state -> Bool in
            guard state.streams[stream.id] != nil else { return false }
            state.streams[stream.id]!.pending.append(
                .init(destination: destination, capacity: capacity, source: source, count: count, kind: kind))
            return true
        }
        guard queued else {
            throw DeviceError(.acl(ACLCode.runtimeParamInvalid), "copyAsync: stream \(stream.id) was destroyed")
        }
    }

    public func synchronize(_ stream: DeviceStream) throws(DeviceError) {
        try checkStream(stream, "synchronize")
        try drain(stream)
    }

    /// Runs the stream's queued copies in order, each checked again (memory freed since fails it); the queue is
    /// empty afterwards either way.
    private func drain(_ stream: DeviceStream) throws(DeviceError) {
        let pending = shared.withLock { state -> [EmulatorSharedState.PendingCopy] in
            let pending = state.streams[stream.id]?.pending ?? []
            state.streams[stream.id]?.pending = []
            return pending
        }
        for copy in pending {
            try self.copy(
                to: copy.destination, capacity: copy.capacity, from: copy.source, count: copy.count, kind: copy.kind,
                device: stream.device)
        }
    }

    public func destroyStream(_ stream: DeviceStream) throws(DeviceError) {
        try checkStream(stream, "destroyStream")
        defer { _ = shared.withLock { $0.streams.removeValue(forKey: stream.id) } }
        try drain(stream)
    }

    public func registerHost(at address: UInt, size: Int, device: Int32) throws(DeviceError) -> UInt {
        try requireDevice(device, "registerHost")
        guard address != 0 else { throw DeviceError(.acl(ACLCode.invalidParam), "registerHost: address 0x0 is null") }
        guard size > 0, UInt(size) <= UInt.max - address else {
            throw DeviceError(.acl(ACLCode.runtimeParamInvalid), "registerHost: size \(size) must be positive")
        }
        let overlapsDevice =
            liveAllocation(containing: address, count: 1, placement: .device) != nil
            || liveAllocation(containing: address + UInt(size) - 1, count: 1, placement: .device) != nil
        let added = shared.withLock { state -> Bool in
            let overlaps = state.registrations.contains { base, entry in
                address < base + UInt(entry.size) && address + UInt(size) > base
            }
            guard !overlaps, !overlapsDevice else { return false }
            state.registrations[address] = (size, device)
            return true
        }
        guard added else {
            throw DeviceError(
                .acl(ACLCode.runtimeParamInvalid),
                "registerHost: \(size) bytes at 0x\(String(address, radix: 16)) overlap device or registered memory")
        }
        return address
    }

    public func unregisterHost(at address: UInt, device: Int32) throws(DeviceError) {
        let removed = shared.withLock { state -> Bool in
            guard state.registrations[address]?.device == device else { return false }
            state.registrations.removeValue(forKey: address)
            return true
        }
        guard removed else {
            throw DeviceError(
                .acl(ACLCode.runtimeParamInvalid),
                "unregisterHost: 0x\(String(address, radix: 16)) is not host memory registered for device \(device)")
        }
    }
}
