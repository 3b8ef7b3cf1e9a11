// TEMPORARY stub from wt-acl so RuntimeSelection compiles before the emulator lands. DROP AT MERGE: the
// emulator work owns this file and its real EmulatedRuntime replaces this one.
public import DeviceCaps
public import Logging

public final class EmulatedRuntime: DeviceRuntime {
    public let backend = Backend.emulator
    public let libraryPath: String? = nil
    public let capabilities = DeviceCapabilities(product: .unknown)
    public let deviceCount = 0

    public init(environment: [String: String], logger: Logger) throws(DeviceError) {}

    private func missing() -> DeviceError { DeviceError(.unavailable, "EmulatedRuntime stub (wt-acl): not built") }
    public func deviceInfo(_ device: Int32) throws(DeviceError) -> DeviceInfo { throw missing() }
    public func allocateDevice(_ size: Int, on device: Int32) throws(DeviceError) -> DeviceMemory { throw missing() }
    public func allocateHost(_ size: Int) throws(DeviceError) -> DeviceMemory { throw missing() }
    public func free(_ memory: DeviceMemory) throws(DeviceError) { throw missing() }
    public func copy(
        to destination: UInt, capacity: Int, from source: UInt, count: Int, kind: MemcpyKind, device: Int32
    ) throws(DeviceError) { throw missing() }
}
