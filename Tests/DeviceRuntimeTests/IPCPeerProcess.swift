import DataDistTestSupport
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The other process of the sharing tests: `datadist-ipc-peer` (Tests/IPCPeer), built next to the test bundle,
/// driven one command line at a time.
final class IPCPeerProcess {
    enum Mode {
        /// Through a copy of the fake ACL library.
        case fake(library: String)
        /// Through the emulator's memfd protocol.
        case memfd
    }

    struct PeerError: Error, CustomStringConvertible {
        let description: String
    }

    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private var buffered = Data()

    var pid: Int32 { process.processIdentifier }

    init(_ mode: Mode) throws {
        process.executableURL = TestPaths.builtProducts.appendingPathComponent("datadist-ipc-peer")
        switch mode {
        case .fake(let library): process.arguments = ["fake", library]
        case .memfd: process.arguments = ["memfd"]
        }
        process.standardInput = input
        process.standardOutput = output
        try process.run()
    }

    /// Sends one command and returns the answer's fields.
    @discardableResult
    func send(_ command: String) throws -> [String] {
        signal(SIGPIPE, SIG_IGN)  // a write to a peer that is gone throws EPIPE instead of killing the test process
        try input.fileHandleForWriting.write(contentsOf: Data((command + "\n").utf8))
        while !buffered.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw PeerError(description: "the peer exited while answering \(command)") }
            buffered.append(chunk)
        }
        let end = buffered.firstIndex(of: UInt8(ascii: "\n"))!
        let line = String(decoding: buffered[buffered.startIndex..<end], as: UTF8.self)
        buffered.removeSubrange(buffered.startIndex...end)
        return line.split(separator: " ").map(String.init)
    }

    /// The ACL code (or protocol status) of a command's answer.
    func code(_ command: String) throws -> Int32 {
        guard let first = try send(command).first, let code = Int32(first) else {
            throw PeerError(description: "no code in the answer to \(command)")
        }
        return code
    }

    /// Whether the `count` bytes at `offset` of the import of `key` hold `bytePattern(count, seed:)`.
    func holdsPattern(_ key: String, offset: Int = 0, count: Int, seed: UInt8) throws -> Bool {
        try send("check \(key) \(offset) \(count) \(seed)") == ["0", "1"]
    }

    /// Ends the peer (its mappings and descriptors go with it) and waits for it.
    func quit() {
        signal(SIGPIPE, SIG_IGN)
        try? input.fileHandleForWriting.write(contentsOf: Data("quit\n".utf8))
        process.waitUntilExit()
    }

    /// Kills the peer (SIGKILL: a test process may pass SIGTERM on ignored) without letting it close anything.
    func kill() {
        _ = Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
