/// A device transfer capability a runtime (or the library behind it) may lack.
public enum DeviceFeature: String, Sendable, CaseIterable, Codable {
    /// Exporting device memory to another process by key and importing it (`aclrtIpcMem*`).
    case ipc
    /// One device reaching another's memory (`aclrtDeviceCanAccessPeer` / `aclrtDeviceEnablePeerAccess`).
    case peerAccess
    /// Copies queued on a stream and awaited with a stream sync (`aclrtMemcpyAsync`).
    case asyncCopy
    /// Making existing host memory reachable by a device (`aclrtHostRegister`).
    case hostRegister
}

/// Whether a `DeviceFeature` is available, and if not, why.
public struct FeatureAvailability: Sendable, Hashable {
    public let feature: DeviceFeature
    /// The entry points the loaded library lacks for this feature, in the order they are looked up.
    public let missingSymbols: [String]
    /// Why the feature is unavailable; nil when it is available.
    public let reason: String?

    public var isAvailable: Bool { reason == nil }

    public init(feature: DeviceFeature, missingSymbols: [String] = [], reason: String? = nil) {
        self.feature = feature
        self.missingSymbols = missingSymbols
        self.reason = reason
    }
}

/// A key naming exported device memory (ACL's 65-byte key buffer: at most 64 characters and a NUL).
public struct SharingKey: Sendable, Hashable, CustomStringConvertible {
    /// The key's characters, without the terminating NUL.
    public let text: String

    /// The key for `text`, or nil when it is empty, longer than 64 bytes, or contains a NUL.
    public init?(text: String) {
        let bytes = text.utf8
        guard !bytes.isEmpty, bytes.count < SharingKey.bufferLength, !bytes.contains(0) else { return nil }
        self.text = text
    }

    /// Bytes of the vendor's key buffer, the NUL included.
    public static let bufferLength = 65

    public var description: String { text }
}

/// Which processes may import an export.
public enum ImportValidation: Sendable, Hashable {
    /// Only processes whose PIDs the exporter passes to `allowImport` (the vendor's default).
    case whitelist
    /// Any process of the host (`ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION`).
    case anyProcess
}

/// A queue of asynchronous copies on one device, from `DeviceRuntime.createStream(on:)`.
public struct DeviceStream: Sendable, Hashable {
    /// The runtime's handle for the stream.
    public let id: UInt
    /// The device the stream belongs to.
    public let device: Int32

    public init(id: UInt, device: Int32) {
        self.id = id
        self.device = device
    }
}

/// Device sharing for runtimes that have none: every feature unavailable, every call refused with
/// `.notSupported`. The two runtimes of this module implement all of it.
extension DeviceRuntime {
    public func availability(of feature: DeviceFeature) -> FeatureAvailability {
        FeatureAvailability(feature: feature, reason: "device sharing not available: \(backend) runtime without it")
    }
    public func sharingProcessID() throws(DeviceError) -> Int32 { throw unsupported("sharingProcessID") }
    public func exportRegion(at address: UInt, size: Int, device: Int32, validation: ImportValidation)
        throws(DeviceError) -> SharingKey
    { throw unsupported("exportRegion") }
    public func allowImport(of key: SharingKey, by processIDs: [Int32]) throws(DeviceError) {
        throw unsupported("allowImport")
    }
    public func importRegion(_ key: SharingKey, on device: Int32, peerAccess: Bool) throws(DeviceError) -> UInt {
        throw unsupported("importRegion")
    }
    public func closeShared(_ key: SharingKey) throws(DeviceError) { throw unsupported("closeShared") }
    public func canAccessPeer(_ device: Int32, peer: Int32) throws(DeviceError) -> Bool {
        throw unsupported("canAccessPeer")
    }
    public func enablePeerAccess(from device: Int32, to peer: Int32) throws(DeviceError) {
        throw unsupported("enablePeerAccess")
    }
    public func createStream(on device: Int32) throws(DeviceError) -> DeviceStream {
        throw unsupported("createStream")
    }
    public func copyAsync(
        to destination: UInt, capacity: Int, from source: UInt, count: Int, kind: MemcpyKind, on stream: DeviceStream
    ) throws(DeviceError) { throw unsupported("copyAsync") }
    public func synchronize(_ stream: DeviceStream) throws(DeviceError) { throw unsupported("synchronize") }
    public func destroyStream(_ stream: DeviceStream) throws(DeviceError) { throw unsupported("destroyStream") }
    public func registerHost(at address: UInt, size: Int, device: Int32) throws(DeviceError) -> UInt {
        throw unsupported("registerHost")
    }
    public func unregisterHost(at address: UInt, device: Int32) throws(DeviceError) {
        throw unsupported("unregisterHost")
    }

    private func unsupported(_ call: String) -> DeviceError {
        DeviceError(.notSupported, "\(call): device sharing not available: \(backend) runtime without it")
    }
}
