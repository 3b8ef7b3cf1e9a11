public import DeviceCaps

/// Which implementation of the device runtime is in use.
public enum Backend: String, Sendable, Codable {
    /// The vendor ACL library, loaded at run time.
    case acl
    /// NUMA-aware host memory standing in for NPUs.
    case emulator
}

/// Direction of a copy, with the values of `aclrtMemcpyKind`.
public enum MemcpyKind: Int32, Sendable {
    case hostToHost = 0
    case hostToDevice = 1
    case deviceToHost = 2
    case deviceToDevice = 3
}

/// Where a block of runtime memory lives.
public enum MemoryPlacement: Sendable, Hashable {
    case host
    case device(Int32)
}

/// A file descriptor that maps a block of memory, so another process can map the same bytes.
public struct SharedRegion: Sendable, Hashable {
    /// An open descriptor (memfd) owned by the runtime; valid until the memory is freed.
    public let fd: Int32
    /// Byte offset of the memory inside the descriptor.
    public let offset: Int
    /// Mapped length in bytes (at least the memory's size).
    public let length: Int

    public init(fd: Int32, offset: Int, length: Int) {
        self.fd = fd
        self.offset = offset
        self.length = length
    }
}

/// A block of memory obtained from a runtime.
public struct DeviceMemory: Sendable, Hashable {
    /// Base address; 64-byte aligned like `aclrtMalloc`.
    public let address: UInt
    /// Bytes the caller asked for.
    public let size: Int
    public let placement: MemoryPlacement
    /// Present when the memory can be mapped by another process (the emulator's memfd-backed memory).
    public let shared: SharedRegion?

    public init(address: UInt, size: Int, placement: MemoryPlacement, shared: SharedRegion?) {
        self.address = address
        self.size = size
        self.placement = placement
        self.shared = shared
    }
}

/// One device as the runtime reports it.
public struct DeviceInfo: Sendable, Hashable, Codable {
    public let index: Int32
    /// Home NUMA node of the device, when known.
    public let numaNode: Int?
    public let totalBytes: Int
    public let freeBytes: Int

    public init(index: Int32, numaNode: Int?, totalBytes: Int, freeBytes: Int) {
        self.index = index
        self.numaNode = numaNode
        self.totalBytes = totalBytes
        self.freeBytes = freeBytes
    }
}

/// The device runtime: devices, their identity, memory, and copies. Calls are synchronous and thread-safe;
/// implementations make the target device current on the calling thread as ACL requires.
public protocol DeviceRuntime: AnyObject, Sendable {
    var backend: Backend { get }
    /// Path of the loaded vendor library, nil on the emulator.
    var libraryPath: String? { get }
    /// Product identity (SoC, board id, detected product) and the operation gates that follow from it.
    var capabilities: DeviceCapabilities { get }
    var deviceCount: Int { get }
    /// The faults `DATADIST_FAULTS` asks to inject into this runtime and the links of the instance using it;
    /// nil (the default) when none.
    var faults: FaultPlan? { get }

    func deviceInfo(_ device: Int32) throws(DeviceError) -> DeviceInfo
    /// Device memory on `device`, like `aclrtMalloc` (64-byte aligned, capacity-limited).
    func allocateDevice(_ size: Int, on device: Int32) throws(DeviceError) -> DeviceMemory
    /// Pinned host memory, like `aclrtMallocHost`.
    func allocateHost(_ size: Int) throws(DeviceError) -> DeviceMemory
    /// Returns memory obtained from `allocateDevice` or `allocateHost`.
    func free(_ memory: DeviceMemory) throws(DeviceError)
    /// Copies `count` bytes like `aclrtMemcpy`; `capacity` is the destination's room (destMax).
    func copy(
        to destination: UInt, capacity: Int, from source: UInt, count: Int, kind: MemcpyKind, device: Int32
    ) throws(DeviceError)

    // Device sharing (DeviceSharing.swift has the types and, for runtimes without it, refusing defaults). A call
    // whose feature is unavailable throws `.notSupported` naming what is missing.

    /// Whether `feature` is available, and if not, why (e.g. the library lacks a symbol).
    func availability(of feature: DeviceFeature) -> FeatureAvailability
    /// The PID an exporter whitelists for this process (`aclrtDeviceGetBareTgid`: the host PID, also in containers).
    func sharingProcessID() throws(DeviceError) -> Int32
    /// Exports `size` bytes at `address` (page-aligned, inside one live device allocation on `device`) for other
    /// processes to import by the returned key (`aclrtIpcMemGetExportKey`).
    func exportRegion(at address: UInt, size: Int, device: Int32, validation: ImportValidation)
        throws(DeviceError) -> SharingKey
    /// Whitelists `processIDs` for importing `key`, an export of this runtime (`aclrtIpcMemSetImportPid`).
    func allowImport(of key: SharingKey, by processIDs: [Int32]) throws(DeviceError)
    /// Maps another process's export into this one for `device`; returns its address here
    /// (`aclrtIpcMemImportByKey`). An export from another device needs `peerAccess` or `enablePeerAccess`.
    func importRegion(_ key: SharingKey, on device: Int32, peerAccess: Bool) throws(DeviceError) -> UInt
    /// Closes an import or an export of this runtime (`aclrtIpcMemClose`): importers close first, the exporter last.
    func closeShared(_ key: SharingKey) throws(DeviceError)
    /// Whether `device` can reach `peer`'s memory (`aclrtDeviceCanAccessPeer`); the two must differ.
    func canAccessPeer(_ device: Int32, peer: Int32) throws(DeviceError) -> Bool
    /// Lets `device` reach `peer`'s memory (`aclrtDeviceEnablePeerAccess`).
    func enablePeerAccess(from device: Int32, to peer: Int32) throws(DeviceError)
    /// A new stream on `device` (`aclrtCreateStream`).
    func createStream(on device: Int32) throws(DeviceError) -> DeviceStream
    /// Queues a copy on `stream` (`aclrtMemcpyAsync`); its host side must be pinned (`allocateHost` or
    /// `registerHost`), and the bytes are only there after `synchronize`.
    func copyAsync(
        to destination: UInt, capacity: Int, from source: UInt, count: Int, kind: MemcpyKind, on stream: DeviceStream
    ) throws(DeviceError)
    /// Waits for every copy queued on `stream` (`aclrtSynchronizeStream`).
    func synchronize(_ stream: DeviceStream) throws(DeviceError)
    /// Finishes the stream's copies and destroys it (`aclrtDestroyStream`).
    func destroyStream(_ stream: DeviceStream) throws(DeviceError)
    /// Pins `size` bytes of the caller's host memory at `address` for `device`; returns the address the device
    /// uses for it (`aclrtHostRegister`).
    func registerHost(at address: UInt, size: Int, device: Int32) throws(DeviceError) -> UInt
    /// Undoes `registerHost` (`aclrtHostUnregister`).
    func unregisterHost(at address: UInt, device: Int32) throws(DeviceError)
}

extension DeviceRuntime {
    public var faults: FaultPlan? { nil }
}
