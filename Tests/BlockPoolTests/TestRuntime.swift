import DeviceCaps
import DeviceRuntime

#if canImport(Glibc)
import Glibc
import Synchronization
import ThreadSanitizerSupport
#endif

/// A minimal host-memory runtime for pool tests: posix_memalign'd blocks, counted.
final class TestRuntime: DeviceRuntime {
    let backend = Backend.emulator
    let libraryPath: String? = nil
    let capabilities = DeviceCapabilities(product: .atlas800IA2)
    let deviceCount = 1
    let live = Lock<Set<UInt>>([])
    let refuseAllocations: Bool

    init(refuseAllocations: Bool = false) { self.refuseAllocations = refuseAllocations }

    func deviceInfo(_ device: Int32) throws(DeviceError) -> DeviceInfo {
        DeviceInfo(index: device, numaNode: 0, totalBytes: 1 << 30, freeBytes: 1 << 30)
    }
    func allocateDevice(_ size: Int, on device: Int32) throws(DeviceError) -> DeviceMemory {
        try allocate(size, placement: .device(device))
    }
    func allocateHost(_ size: Int) throws(DeviceError) -> DeviceMemory { try allocate(size, placement: .host) }
    private func allocate(_ size: Int, placement: MemoryPlacement) throws(DeviceError) -> DeviceMemory {
        if refuseAllocations { throw DeviceError(.acl(ACLCode.memoryAllocation), "refused \(size) bytes") }
        var pointer: UnsafeMutableRawPointer?
        guard posix_memalign(&pointer, 64, size) == 0, let pointer else {
            throw DeviceError(.acl(ACLCode.memoryAllocation), "posix_memalign \(size)")
        }
        let address = UInt(bitPattern: pointer)
        live.withLock { _ = $0.insert(address) }
        return DeviceMemory(address: address, size: size, placement: placement, shared: nil)
    }
    func free(_ memory: DeviceMemory) throws(DeviceError) {
        guard live.withLock({ $0.remove(memory.address) }) != nil else {
            throw DeviceError(.acl(ACLCode.memoryFree), "unknown memory")
        }
        Glibc.free(UnsafeMutableRawPointer(bitPattern: memory.address))
    }
    func copy(to destination: UInt, capacity: Int, from source: UInt, count: Int, kind: MemcpyKind, device: Int32)
        throws(DeviceError)
    {
        memcpy(UnsafeMutableRawPointer(bitPattern: destination)!, UnsafeRawPointer(bitPattern: source)!, count)
    }
}
