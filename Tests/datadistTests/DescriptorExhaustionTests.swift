import Foundation
import Testing

/// A prompt whose descriptors ran out (a flood of connections that never say hello, under a lowered
/// RLIMIT_NOFILE) keeps its listener: once the flood is gone, a decoder links and pulls.
@Suite("datadist serve: running out of descriptors", .serialized)
struct DescriptorExhaustionTests {
    static let shape = ["--layers", "2", "--tokens", "64", "--hidden", "256"]

    /// Descriptors `pid` has open.
    static func openDescriptors(_ pid: Int32) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
    }

    /// A TCP connection to 127.0.0.1:`port` that sends nothing.
    static func connect(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        try #require(result == 0, "connect: \(String(cString: strerror(errno)))")
        return fd
    }

    @Test("accept() failing with EMFILE does not end the listener: a decoder links once descriptors are free again")
    func listenerSurvivesDescriptorExhaustion() throws {
        let (serve, port) = try TransferCommandTests.startServe(["--requests", "2"] + Self.shape)
        defer {
            serve.closeStandardInput()
            _ = try? serve.wait()
        }
        let limit = Self.openDescriptors(serve.pid) + 16
        let prlimit = try Process.run(
            URL(fileURLWithPath: "/usr/bin/prlimit"),
            arguments: ["--pid", "\(serve.pid)", "--nofile=\(limit):\(limit)"])
        prlimit.waitUntilExit()
        try #require(prlimit.terminationStatus == 0)

        // More connections than the prompt may hold descriptors for: its accepts fail with EMFILE.
        let flood = try (0..<48).map { _ in try Self.connect(port: port) }
        let full = ContinuousClock.now + .seconds(10)
        while Self.openDescriptors(serve.pid) < limit, ContinuousClock.now < full { usleep(10_000) }
        #expect(Self.openDescriptors(serve.pid) >= limit, "the prompt never ran out of descriptors")
        usleep(100_000)  // a few failed accepts while it is out of them
        for fd in flood { close(fd) }

        let (status, report) = try TransferCommandTests.runPull(["--port", "\(port)", "--requests", "2"] + Self.shape)
        #expect(status == 0, "\(report)")
        #expect(report["ok"] as? Bool == true, "\(report)")
    }
}
