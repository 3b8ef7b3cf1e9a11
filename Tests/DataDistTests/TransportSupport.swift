import DataDist
import Testing

/// A data plane the transfer suites run over: each suite's tests take it as an argument, so every test runs
/// over the memfd mapping and over UCX.
enum TestTransport: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case sharedMemory
    /// UCX with the transports UCX picks on one host (shared memory, cma, TCP).
    case ucx
    /// UCX forced onto TCP, as between hosts (set in each instance's UCX context, not the process environment).
    case ucxTCP

    /// Every transfer test runs over these.
    static let transfers: [TestTransport] = [.sharedMemory, .ucx]
    /// A few tests run over UCX on TCP only too (the malicious client, peer deaths, a pull, linkTransport).
    static let all: [TestTransport] = allCases

    var preference: TransportPreference { self == .sharedMemory ? .sharedMemory : .ucx }

    /// What an instance's environment adds for this transport.
    var environment: [String: String] { self == .ucxTCP ? ["UCX_TLS": "tcp"] : [:] }

    var testDescription: String { rawValue }
}
