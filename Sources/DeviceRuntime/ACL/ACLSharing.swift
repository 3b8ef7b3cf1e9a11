internal import CAscendCL
import Synchronization
import ThreadSanitizerSupport

/// What an ACLRuntime has open for device sharing; every call checks its argument against this before ACL
/// sees it, so a stale or foreign handle is refused rather than handed to the vendor library.
struct ACLSharedState: Sendable {
    /// Keys exported here, with the device they were exported on.
    var exports: [SharingKey: Int32] = [:]
    /// Keys imported here, with the importing device.
    var imports: [SharingKey: Int32] = [:]
    /// Live streams by handle, with their device.
    var streams: [UInt: Int32] = [:]
    /// Registered host ranges by address: size and device.
    var registrations: [UInt: (size: Int, device: Int32)] = [:]
}

extension ACLLibrary {
    /// The entry points `feature` needs that this library lacks, in lookup order.
    func missingSymbols(for feature: DeviceFeature) -> [String] {
        let table = self.table
        let entries: [(String, Bool)]
        switch feature {
        case .ipc:
            entries = [
                ("aclrtIpcMemGetExportKey", table.aclrtIpcMemGetExportKey != nil),
                ("aclrtIpcMemSetImportPid", table.aclrtIpcMemSetImportPid != nil),
                ("aclrtIpcMemImportByKey", table.aclrtIpcMemImportByKey != nil),
                ("aclrtIpcMemClose", table.aclrtIpcMemClose != nil),
                ("aclrtDeviceGetBareTgid", table.aclrtDeviceGetBareTgid != nil),
            ]
        case .peerAccess:
            entries = [
                ("aclrtDeviceCanAccessPeer", table.aclrtDeviceCanAccessPeer != nil),
                ("aclrtDeviceEnablePeerAccess", table.aclrtDeviceEnablePeerAccess != nil),
            ]
        case .asyncCopy:
            entries = [
                ("aclrtCreateStream", table.aclrtCreateStream != nil),
                ("aclrtDestroyStream", table.aclrtDestroyStream != nil),
                ("aclrtSynchronizeStream", table.aclrtSynchronizeStream != nil),
                ("aclrtMemcpyAsync", table.aclrtMemcpyAsync != nil),
            ]
        case .hostRegister:
            entries = [
                ("aclrtHostRegister", table.aclrtHostRegister != nil),
                ("aclrtHostUnregister", table.aclrtHostUnregister != nil),
            ]
        }
        return entries.filter { !$0.1 }.map(\.0)
    }
}

extension ACLRuntime {
    public func availability(of feature: DeviceFeature) -> FeatureAvailability {
        let missing = library.missingSymbols(for: feature)
        guard let first = missing.first else { return FeatureAvailability(feature: feature) }
        return FeatureAvailability(
            feature: feature, missingSymbols: missing,
            reason: "device sharing not available: \(first) is missing from \(library.path)")
    }

    /// Throws `.notSupported` naming the first missing symbol when `feature` is unavailable.
    private func require(_ feature: DeviceFeature, for call: String) throws(DeviceError) {
        if let reason = availability(of: feature).reason {
            throw DeviceError(.notSupported, "\(call): \(reason)")
        }
    }

    private func checkDevice(_ device: Int32, _ call: String) throws(DeviceError) {
        guard device >= 0, Int(device) < deviceCount else {
            throw DeviceError(.acl(ACLCode.invalidDeviceID), "\(call): device \(device) is not in 0..<\(deviceCount)")
        }
    }

    public func sharingProcessID() throws(DeviceError) -> Int32 {
        try require(.ipc, for: "sharingProcessID")
        var pid: Int32 = 0
        try library.check(library.table.aclrtDeviceGetBareTgid!(&pid), "aclrtDeviceGetBareTgid")
        return pid
    }

    public func exportRegion(at address: UInt, size: Int, device: Int32, validation: ImportValidation)
        throws(DeviceError) -> SharingKey
    {
        try require(.ipc, for: "exportRegion")
        try checkDevice(device, "exportRegion")
        guard address != 0 else {
            throw DeviceError(.acl(ACLCode.invalidParam), "exportRegion: address 0x0 is null")
        }
        guard size > 0 else {
            throw DeviceError(.acl(ACLCode.runtimeParamInvalid), "exportRegion: size \(size) must be positive")
        }
        try library.bind(device)
        let flags = validation == .anyProcess ? UInt64(ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION) : 0
        var buffer = [CChar](repeating: 0, count: SharingKey.bufferLength)
        try library.check(
            library.table.aclrtIpcMemGetExportKey!(
                UnsafeMutableRawPointer(bitPattern: address), size, &buffer, buffer.count, flags),
            "aclrtIpcMemGetExportKey(0x\(String(address, radix: 16)), size: \(size), flags: \(flags)) on device \(device)"
        )
        let text = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        guard let key = SharingKey(text: text) else {
            preconditionFailure("aclrtIpcMemGetExportKey returned an empty or unterminated key")
        }
        shared.withLock { $0.exports[key] = device }
        return key
    }

    public func allowImport(of key: SharingKey, by processIDs: [Int32]) throws(DeviceError) {
        try require(.ipc, for: "allowImport")
        guard !processIDs.isEmpty else {
            throw DeviceError(.acl(ACLCode.runtimeParamInvalid), "allowImport: processIDs of key \(key) is empty")
        }
        if let bad = processIDs.first(where: { $0 <= 0 }) {
            throw DeviceError(.acl(ACLCode.runtimeParamInvalid), "allowImport: process id \(bad) is not a PID")
        }
        guard let device = shared.withLock({ $0.exports[key] }) else {
            throw DeviceError(
                .acl(ACLCode.runtimeParamInvalid), "allowImport: key \(key) is not an open export of this runtime")
        }
        try library.bind(device)
        var pids = processIDs
        try library.check(
            key.text.withCString { library.table.aclrtIpcMemSetImportPid!($0, &pids, pids.count) },
            "aclrtIpcMemSetImportPid(\(key), \(processIDs))")
    }

    public func importRegion(_ key: SharingKey, on device: Int32, peerAccess: Bool) throws(DeviceError) -> UInt {
        try require(.ipc, for: "importRegion")
        try checkDevice(device, "importRegion")
        // Claimed before the call so that two threads cannot import one key twice.
        let claimed = shared.withLock { state -> Bool in
            guard state.imports[key] == nil else { return false }
            state.imports[key] = device
            return true
        }
        guard claimed else {
            throw DeviceError(.acl(ACLCode.runtimeParamInvalid), "importRegion: key \(key) is already imported here")
        }
        do {
            try library.bind(device)
            var pointer: UnsafeMutableRawPointer?
            let flags = peerAccess ? UInt64(ACL_RT_IPC_MEM_IMPORT_FLAG_ENABLE_PEER_ACCESS) : 0
            try library.check(
                key.text.withCString { library.table.aclrtIpcMemImportByKey!(&pointer, $0, flags) },
                "aclrtIpcMemImportByKey(\(key), flags: \(flags)) on device \(device)")
            guard let pointer else { preconditionFailure("aclrtIpcMemImportByKey reported success without an address") }
            return UInt(bitPattern: pointer)
        } catch {
            _ = shared.withLock { $0.imports.removeValue(forKey: key) }
            throw error
        }
    }

    public func closeShared(_ key: SharingKey) throws(DeviceError) {
        try require(.ipc, for: "closeShared")
        let (device, isImport) = shared.withLock { state -> (Int32?, Bool) in
            if let device = state.imports[key] { return (device, true) }
            return (state.exports[key], false)
        }
        guard let device else {
            throw DeviceError(
                .acl(ACLCode.runtimeParamInvalid), "closeShared: key \(key) is not open (imported or exported) here")
        }
        try library.bind(device)
        let code = key.text.withCString { library.table.aclrtIpcMemClose!($0) }
        // An import is gone once the call ran, whatever it returned (the vendor releases the mapping, and an error
        // only reports that the exporter closed first); an export only when the call succeeded.
        if isImport || code == ACLCode.success {
            _ = shared.withLock { state in
                isImport ? state.imports.removeValue(forKey: key) : state.exports.removeValue(forKey: key)
            }
        }
        try library.check(code, "aclrtIpcMemClose(\(key))")
    }

    public func canAccessPeer(_ device: Int32, peer: Int32) throws(DeviceError) -> Bool {
        try require(.peerAccess, for: "canAccessPeer")
        try checkDevice(device, "canAccessPeer")
        try checkDevice(peer, "canAccessPeer")
        guard device != peer else {
            throw DeviceError(.acl(ACLCode.runtimeParamInvalid), "canAccessPeer: device and peer are both \(device)")
        }
        var can: Int32 = 0
        try library.check(
            library.table.aclrtDeviceCanAccessPeer!(&can, device, peer), "aclrtDeviceCanAccessPeer(\(device), \(peer))")
        return can != 0
    }

    public func enablePeerAccess(from device: Int32, to peer: Int32) throws(DeviceError) {
        try require(.peerAccess, for: "enablePeerAccess")
        try checkDevice(device, "enablePeerAccess")
        try checkDevice(peer, "enablePeerAccess")
        guard device != peer else {
            throw DeviceError(.acl(ACLCode.runtimeParamInvalid), "enablePeerAccess: device and peer are both \(device)")
        }
        try library.bind(device)
        try library.check(
            library.table.aclrtDeviceEnablePeerAccess!(peer, 0),
            "aclrtDeviceEnablePeerAccess(\(peer)) on device \(device)")
    }

    public func createStream(on device: Int32) throws(DeviceError) -> DeviceStream {
        try require(.asyncCopy, for: "createStream")
        try checkDevice(device, "createStream")
        try library.bind(device)
        var handle: UnsafeMutableRawPointer?
        try library.check(library.table.aclrtCreateStream!(&handle), "aclrtCreateStream on device \(device)")
        guard let handle else { preconditionFailure("aclrtCreateStream reported success without a stream") }
        let stream = DeviceStream(id: UInt(bitPattern: handle), device: device)
        shared.withLock { $0.streams[stream.id] = device }
        return stream
    }

    private func checkStream(_ stream: DeviceStream, _ call: String) throws(DeviceError) {
        guard shared.withLock({ $0.streams[stream.id] }) == stream.device else {
            throw DeviceError(
                .acl(ACLCode.runtimeParamInvalid),
                "\(call): stream 0x\(String(stream.id, radix: 16)) on device \(stream.device) is not a live stream here"
            )
        }
    }

    public func copyAsync(
        to destination: UInt, capacity: Int, from source: UInt, count: Int, kind: MemcpyKind, on stream: DeviceStream
    ) throws(DeviceError) {
        try require(.asyncCopy, for: "copyAsync")
        try checkStream(stream, "copyAsync")
        guard capacity >= 0, count >= 0 else {
            throw DeviceError(
                .acl(ACLCode.invalidParam), "copyAsync: capacity \(capacity) and count \(count) must not be negative")
        }
        try injectFault(.copy, ACLCode.systemDMA, "aclrtMemcpyAsync(count: \(count), kind: \(kind))")
        try library.bind(stream.device)
        try library.check(
            library.table.aclrtMemcpyAsync!(
                UnsafeMutableRawPointer(bitPattern: destination), capacity, UnsafeRawPointer(bitPattern: source), count,
                kind.rawValue, UnsafeMutableRawPointer(bitPattern: stream.id)),
            "aclrtMemcpyAsync(dst: 0x\(String(destination, radix: 16)), destMax: \(capacity), "
                + "src: 0x\(String(source, radix: 16)), count: \(count), kind: \(kind)) on device \(stream.device)")
    }

    public func synchronize(_ stream: DeviceStream) throws(DeviceError) {
        try require(.asyncCopy, for: "synchronize")
        try checkStream(stream, "synchronize")
        try library.bind(stream.device)
        try library.check(
            library.table.aclrtSynchronizeStream!(UnsafeMutableRawPointer(bitPattern: stream.id)),
            "aclrtSynchronizeStream on device \(stream.device)")
    }

    public func destroyStream(_ stream: DeviceStream) throws(DeviceError) {
        try require(.asyncCopy, for: "destroyStream")
        try checkStream(stream, "destroyStream")
        try library.bind(stream.device)
        // The stream is gone once destroy ran, even when one of its queued copies failed.
        _ = shared.withLock { $0.streams.removeValue(forKey: stream.id) }
        try library.check(
            library.table.aclrtDestroyStream!(UnsafeMutableRawPointer(bitPattern: stream.id)),
            "aclrtDestroyStream on device \(stream.device)")
    }

    public func registerHost(at address: UInt, size: Int, device: Int32) throws(DeviceError) -> UInt {
        try require(.hostRegister, for: "registerHost")
        try checkDevice(device, "registerHost")
        guard address != 0 else { throw DeviceError(.acl(ACLCode.invalidParam), "registerHost: address 0x0 is null") }
        guard size > 0 else {
            throw DeviceError(.acl(ACLCode.runtimeParamInvalid), "registerHost: size \(size) must be positive")
        }
        try library.bind(device)
        var devicePointer: UnsafeMutableRawPointer?
        try library.check(
            library.table.aclrtHostRegister!(
                UnsafeMutableRawPointer(bitPattern: address), UInt64(size), Int32(ACL_HOST_REGISTER_MAPPED),
                &devicePointer),
            "aclrtHostRegister(0x\(String(address, radix: 16)), size: \(size)) on device \(device)")
        guard let devicePointer else { preconditionFailure("aclrtHostRegister reported success without an address") }
        shared.withLock { $0.registrations[address] = (size, device) }
        return UInt(bitPattern: devicePointer)
    }

    public func unregisterHost(at address: UInt, device: Int32) throws(DeviceError) {
        try require(.hostRegister, for: "unregisterHost")
        guard shared.withLock({ $0.registrations[address]?.device }) == device else {
            throw DeviceError(
                .acl(ACLCode.runtimeParamInvalid),
                "unregisterHost: 0x\(String(address, radix: 16)) is not host memory registered for device \(device)")
        }
        try library.bind(device)
        try library.check(
            library.table.aclrtHostUnregister!(UnsafeMutableRawPointer(bitPattern: address)),
            "aclrtHostUnregister(0x\(String(address, radix: 16)))")
        _ = shared.withLock { $0.registrations.removeValue(forKey: address) }
    }
}
