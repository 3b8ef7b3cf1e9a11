internal import CAscendCL
public import DeviceCaps
public import Logging
import Synchronization
import ThreadSanitizerSupport

/// The device runtime backed by the vendor's ACL library, loaded at run time.
public final class ACLRuntime: DeviceRuntime {
    public let backend = Backend.acl
    public var libraryPath: String? { library.path }
    public let capabilities: DeviceCapabilities
    public let deviceCount: Int
    /// `DATADIST_FAULTS` (see `FaultPlan`): allocations fail with 207001, copies with 507013, before ACL is called.
    public let faults: FaultPlan?

    let library: ACLLibrary
    private let logger: Logger
    /// Memory handed out and not yet freed, by address; `free` accepts only these.
    private let live = Lock<[UInt: DeviceMemory]>([:])
    /// Keys, streams and host registrations open for device sharing (ACLSharing.swift).
    let shared = Lock<ACLSharedState>(ACLSharedState())

    /// Loads the ACL library at `libraryPath` (a path, or a bare name for the loader's search), initialises
    /// ACL, and reads the device count and product identity. `environment["DATADIST_PRODUCT"]` overrides the
    /// detected product.
    public convenience init(libraryPath: String, environment: [String: String], logger: Logger) throws(DeviceError) {
        try self.init(library: ACLLibrary.load(libraryPath), environment: environment, logger: logger)
    }

    init(library: ACLLibrary, environment: [String: String], logger: Logger) throws(DeviceError) {
        faults = try FaultPlan.make(environment: environment)
        try library.initialize()
        var count: UInt32 = 0
        try library.check(library.table.aclrtGetDeviceCount!(&count), "aclrtGetDeviceCount")
        self.library = library
        self.logger = logger
        self.deviceCount = Int(count)
        self.capabilities = try Self.identify(library, deviceCount: Int(count), environment: environment)
        logger.debug(
            "ACL runtime loaded",
            metadata: [
                "library": "\(library.path)", "devices": "\(count)", "soc": "\(capabilities.socName ?? "-")",
                "product": "\(capabilities.product.rawValue)",
            ])
    }

    private static func identify(
        _ library: ACLLibrary, deviceCount: Int, environment: [String: String]
    ) throws(DeviceError) -> DeviceCapabilities {
        let table = library.table
        let socName = table.aclrtGetSocName!().map { String(cString: $0) }
        var boardID: UInt32?
        if deviceCount > 0, let boardInfo = table.dsmi_get_board_info {
            var info = ascend_dsmi_board_info()
            if boardInfo(0, &info) == 0 { boardID = info.board_id }
        }
        do {
            return try DeviceCapabilities.identify(
                socName: socName, boardID: boardID, productOverride: environment["DATADIST_PRODUCT"])
        } catch {
            throw DeviceError(.unavailable, error.message)
        }
    }

    /// How often the loaded library's `symbol` was called: only the fake test library counts calls, so this
    /// is nil on a real ACL runtime.
    public func callCount(_ symbol: String) -> UInt64? {
        guard let address = library.lookup(symbol: "fake_acl_call_count") else { return nil }
        typealias CallCount = @convention(c) (UnsafePointer<CChar>?) -> UInt64
        return unsafeBitCast(address, to: CallCount.self)(symbol)
    }

    /// How many objects of one kind the loaded fake test library holds open ("exports", "imports", "streams",
    /// "device", "host", "registrations"); nil on a real ACL runtime.
    public func fakeOpenCount(_ what: String) -> UInt64? {
        guard let address = library.lookup(symbol: "fake_acl_open_count") else { return nil }
        typealias OpenCount = @convention(c) (UnsafePointer<CChar>?) -> UInt64
        return unsafeBitCast(address, to: OpenCount.self)(what)
    }

    /// Bytes the loaded fake test library copied in direction `kind` (its synchronous copies and the queued ones
    /// its streams ran); nil on a real ACL runtime.
    public func fakeCopiedBytes(_ kind: MemcpyKind) -> UInt64? {
        guard let address = library.lookup(symbol: "fake_acl_copied_bytes") else { return nil }
        typealias CopiedBytes = @convention(c) (Int32) -> UInt64
        return unsafeBitCast(address, to: CopiedBytes.self)(kind.rawValue)
    }

    public func deviceInfo(_ device: Int32) throws(DeviceError) -> DeviceInfo {
        try library.bind(device)
        var free = 0
        var total = 0
        try library.check(
            library.table.aclrtGetMemInfo!(Int32(ACL_HBM_MEM), &free, &total),
            "aclrtGetMemInfo(ACL_HBM_MEM) on device \(device)")
        return DeviceInfo(index: device, numaNode: nil, totalBytes: total, freeBytes: free)
    }

    public func allocateDevice(_ size: Int, on device: Int32) throws(DeviceError) -> DeviceMemory {
        guard size >= 0 else {
            throw DeviceError(.acl(ACLCode.invalidParam), "allocateDevice: size \(size) is negative")
        }
        try injectFault(.alloc, ACLCode.memoryAllocation, "aclrtMalloc(size: \(size)) on device \(device)")
        try library.bind(device)
        var pointer: UnsafeMutableRawPointer?
        try library.check(
            library.table.aclrtMalloc!(&pointer, size, Int32(ACL_MEM_MALLOC_HUGE_FIRST)),
            "aclrtMalloc(size: \(size), policy: HUGE_FIRST) on device \(device)")
        return remember(pointer, size: size, placement: .device(device), call: "aclrtMalloc")
    }

    public func allocateHost(_ size: Int) throws(DeviceError) -> DeviceMemory {
        guard size >= 0 else {
            throw DeviceError(.acl(ACLCode.invalidParam), "allocateHost: size \(size) is negative")
        }
        try injectFault(.alloc, ACLCode.memoryAllocation, "aclrtMallocHost(size: \(size))")
        try library.bind(0)
        var pointer: UnsafeMutableRawPointer?
        try library.check(library.table.aclrtMallocHost!(&pointer, size), "aclrtMallocHost(size: \(size))")
        return remember(pointer, size: size, placement: .host, call: "aclrtMallocHost")
    }

    func injectFault(_ kind: FaultPlan.Kind, _ code: Int32, _ call: @autoclosure () -> String)
        throws(DeviceError)
    {
        guard let faults, faults.shouldFail(kind) else { return }
        throw DeviceError(.acl(code), "\(FaultPlan.describe(kind)): \(call())")
    }

    private func remember(
        _ pointer: UnsafeMutableRawPointer?, size: Int, placement: MemoryPlacement, call: String
    ) -> DeviceMemory {
        guard let pointer else { preconditionFailure("\(call) reported success without an address") }
        let memory = DeviceMemory(address: UInt(bitPattern: pointer), size: size, placement: placement, shared: nil)
        live.withLock { $0[memory.address] = memory }
        return memory
    }

    public func free(_ memory: DeviceMemory) throws(DeviceError) {
        let known = live.withLock { (live) -> DeviceMemory? in
            guard live[memory.address] == memory else { return nil }
            return live.removeValue(forKey: memory.address)
        }
        guard known != nil else {
            throw DeviceError(
                .acl(ACLCode.memoryFree),
                "free: \(memory.placement) memory at 0x\(String(memory.address, radix: 16)) of \(memory.size) bytes "
                    + "is not live memory of this runtime")
        }
        do {
            let pointer = UnsafeMutableRawPointer(bitPattern: memory.address)
            switch memory.placement {
            case .device(let device):
                try library.bind(device)
                try library.check(
                    library.table.aclrtFree!(pointer), "aclrtFree(0x\(String(memory.address, radix: 16)))")
            case .host:
                try library.bind(0)
                try library.check(
                    library.table.aclrtFreeHost!(pointer), "aclrtFreeHost(0x\(String(memory.address, radix: 16)))")
            }
        } catch {
            live.withLock { $0[memory.address] = memory }
            throw error
        }
    }

    public func copy(
        to destination: UInt, capacity: Int, from source: UInt, count: Int, kind: MemcpyKind, device: Int32
    ) throws(DeviceError) {
        guard capacity >= 0 else {
            throw DeviceError(.acl(ACLCode.invalidParam), "copy: capacity \(capacity) is negative")
        }
        guard count >= 0 else {
            throw DeviceError(.acl(ACLCode.invalidParam), "copy: count \(count) is negative")
        }
        try injectFault(.copy, ACLCode.systemDMA, "aclrtMemcpy(count: \(count), kind: \(kind))")
        try library.bind(device)
        try library.check(
            library.table.aclrtMemcpy!(
                UnsafeMutableRawPointer(bitPattern: destination), capacity, UnsafeRawPointer(bitPattern: source),
                count, kind.rawValue),
            "aclrtMemcpy(dst: 0x\(String(destination, radix: 16)), destMax: \(capacity), "
                + "src: 0x\(String(source, radix: 16)), count: \(count), kind: \(kind)) on device \(device)")
    }
}
