import DataDist
import DataDistTestSupport
import Foundation
import Testing

/// A data plane the transfer suites run over: each suite's tests take it as an argument, so every test runs
/// over the memfd mapping, over UCX, and over the ACL backend's IPC keys (the fake vendor library).
enum TestTransport: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case sharedMemory
    /// UCX with the transports UCX picks on one host (shared memory, cma, TCP).
    case ucx
    /// UCX forced onto TCP, as between hosts (set in each instance's UCX context, not the process environment).
    case ucxTCP
    /// The ACL backend over the fake vendor library: device pools exported and imported by IPC key.
    case aclIPC
    /// The ACL backend over the fake vendor library, linked over UCX on TCP as between hosts: device memory is
    /// staged through pinned host buffers.
    case aclUCX

    /// Every transfer test runs over these.
    static let transfers: [TestTransport] = [.sharedMemory, .ucx, .aclIPC, .aclUCX]
    /// A few tests run over UCX on TCP only too (the malicious client, peer deaths, a pull, linkTransport).
    static let all: [TestTransport] = [.sharedMemory, .ucx, .ucxTCP, .aclIPC, .aclUCX]

    var preference: TransportPreference { self == .sharedMemory || self == .aclIPC ? .sharedMemory : .ucx }

    /// What an instance's environment adds for this transport.
    var environment: [String: String] {
        switch self {
        case .ucxTCP: ["UCX_TLS": "tcp"]
        case .aclIPC:
            [
                "DATADIST_BACKEND": "acl",
                "DATADIST_ACL_LIBRARY": TestPaths.builtProducts.appendingPathComponent("lib_FakeAscendCL.so").path,
            ]
        case .aclUCX:
            [
                "DATADIST_BACKEND": "acl", "UCX_TLS": "tcp",
                "DATADIST_ACL_LIBRARY": TestPaths.builtProducts.appendingPathComponent("lib_FakeAscendCL.so").path,
            ]
        default: [:]
        }
    }

    var testDescription: String { rawValue }
}
