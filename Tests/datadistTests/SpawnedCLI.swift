import Dispatch
import Foundation
import Synchronization
import Testing

@testable import datadist

/// A running `datadist` child process with a stdin pipe and its stdout read line by line; killed on deinit if it
/// still runs. Same environment as `CLI.run` (`CLI.childEnvironment`).
final class SpawnedCLI {
    let arguments: [String]
    private let process = Process()
    private let input = Pipe()
    private let lines: LineStream
    private let errorFile: URL

    /// Starts `datadist arguments`, inside network namespace `namespace` (through `ip netns exec`, which execs
    /// the binary in place: `pid` is datadist's) when one is given.
    init(_ arguments: [String], environment variables: [String: String] = [:], namespace: String? = nil) throws {
        self.arguments = arguments
        let environment = CLI.childEnvironment(variables)
        errorFile = FileManager.default.temporaryDirectory.appendingPathComponent(
            "datadist-stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: errorFile.path, contents: nil)
        let output = Pipe()
        if let namespace {
            process.executableURL = URL(fileURLWithPath: IPCommand.path ?? "/usr/sbin/ip")
            process.arguments = ["netns", "exec", namespace, CLI.binary.path] + arguments
        } else {
            process.executableURL = CLI.binary
            process.arguments = arguments
        }
        process.environment = environment
        process.standardInput = input
        process.standardOutput = output
        process.standardError = try FileHandle(forWritingTo: errorFile)
        lines = LineStream(fd: output.fileHandleForReading.fileDescriptor)
        try process.run()
        try? output.fileHandleForWriting.close()
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: errorFile)
    }

    var pid: Int32 { process.processIdentifier }

    var isRunning: Bool { process.isRunning }

    var standardError: String { (try? String(contentsOf: errorFile, encoding: .utf8)) ?? "" }

    /// The next stdout line; throws when none arrives within `timeout` or stdout ended.
    func nextLine(timeout: Duration = .seconds(20)) throws -> String {
        switch lines.next(timeout: timeout) {
        case .line(let line): return line
        case .end: throw CLI.Failure(description: "\(self): stdout ended. stderr: \(standardError)")
        case .timedOut: throw CLI.Failure(description: "\(self): no line within \(timeout). stderr: \(standardError)")
        }
    }

    /// The next stdout line parsed as a JSON object.
    func nextJSON(timeout: Duration = .seconds(20)) throws -> [String: Any] {
        let line = try nextLine(timeout: timeout)
        guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
            throw CLI.Failure(description: "\(self) printed a line that is no JSON object: \(line)")
        }
        return object
    }

    /// Writes `line` to the child's stdin; throws (EPIPE) rather than killing the test process with SIGPIPE when
    /// the child is gone.
    func send(_ line: String) throws {
        Glibc.signal(SIGPIPE, SIG_IGN)
        try input.fileHandleForWriting.write(contentsOf: Data((line + "\n").utf8))
    }

    func closeStandardInput() {
        try? input.fileHandleForWriting.close()
    }

    func signal(_ number: Int32) {
        kill(process.processIdentifier, number)
    }

    /// The exit status; kills the process and throws if it runs longer than `timeout`.
    func wait(timeout: Duration = .seconds(20)) throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { usleep(2_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw CLI.Failure(description: "\(self) did not exit within \(timeout); killed. stderr: \(standardError)")
        }
        process.waitUntilExit()
        return process.terminationStatus
    }
}

extension SpawnedCLI: CustomStringConvertible {
    var description: String { "datadist \(arguments.joined(separator: " ")) (pid \(pid))" }
}
