/// An error from the device runtime layer.
public struct DeviceError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// An ACL error code, from the vendor library or mirrored by the emulator.
        case acl(Int32)
        /// A failed system call, with its errno.
        case system(Int32)
        /// The runtime could not be loaded or selected.
        case unavailable
        /// The runtime or its library lacks the feature the call needs; the message names what is missing.
        case notSupported
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The ACL code, if this error carries one.
    public var aclCode: Int32? {
        if case .acl(let value) = code { return value }
        return nil
    }

    public var description: String {
        switch code {
        case .acl(let value): "\(message) (ACL error \(value))"
        case .system(let errno): "\(message) (errno \(errno))"
        case .unavailable, .notSupported: message
        }
    }
}

/// ACL error codes the runtimes produce (values of acl_base_rt.h / rt_error_codes.h).
public enum ACLCode {
    public static let success: Int32 = 0
    public static let invalidParam: Int32 = 100_000
    public static let uninitialized: Int32 = 100_001
    public static let repeatInitialize: Int32 = 100_002
    public static let stubMode: Int32 = 100_039
    public static let runtimeParamInvalid: Int32 = 107_000
    public static let invalidDeviceID: Int32 = 107_001
    public static let contextNull: Int32 = 107_002
    public static let memoryAllocation: Int32 = 207_001
    public static let memoryFree: Int32 = 207_002
    public static let noDevice: Int32 = 207_004
    /// `ACL_ERROR_RT_FEATURE_NOT_SUPPORT`, e.g. IPC on a chip without it.
    public static let featureNotSupported: Int32 = 207_000
    /// `ACL_ERROR_RT_ADDR_UNALIGNED`.
    public static let addressUnaligned: Int32 = 107_008
    /// A driver failure (the code the fake uses for refusals the vendor leaves undocumented).
    public static let driverInternal: Int32 = 507_899
    /// `ACL_ERROR_RT_SYS_DMA`: the copy engine failed.
    public static let systemDMA: Int32 = 507_013
}
