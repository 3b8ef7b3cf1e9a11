import Dispatch
import Foundation
import Synchronization
import Testing

/// A running `datadist` child process with a stdin pipe and its stdout read line by line; killed on deinit if it
/// still runs. Same environment policy as `CLI.run`: PATH (and LD_LIBRARY_PATH) plus `environment`.
final class SpawnedCLI {
    let arguments: [String]
    private let process = Process()
    private let input = Pipe()
    private let lines = LineBuffer()
    private let errorFile: URL

    init(_ arguments: [String], environment variables: [String: String] = [:]) throws {
        self.arguments = arguments
        let parent = ProcessInfo.processInfo.environment
        var environment = ["PATH": parent["PATH"] ?? "/usr/bin:/bin"]
        if let libraryPath = parent["LD_LIBRARY_PATH"] { environment["LD_LIBRARY_PATH"] = libraryPath }
        environment.merge(variables) { _, new in new }
        errorFile = FileManager.default.temporaryDirectory.appendingPathComponent("datadist-stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: errorFile.path, contents: nil)
        let output = Pipe()
        process.executableURL = CLI.binary
        process.arguments = arguments
        process.environment = environment
        process.standardInput = input
        process.standardOutput = output
        process.standardError = try FileHandle(forWritingTo: errorFile)
        try process.run()
        try? output.fileHandleForWriting.close()
        lines.startReading(fd: output.fileHandleForReading.fileDescriptor)
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: errorFile)
    }

    var pid: Int32 { process.processIdentifier }

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
        guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw CLI.Failure(description: "\(self) printed a line that is no JSON object: \(line)")
        }
        return object
    }

    func send(_ line: String) throws {
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

/// Lines read from a descriptor by a background thread.
final class LineBuffer: Sendable {
    enum Next {
        case line(String)
        case end
        case timedOut
    }

    private let state = Mutex<(lines: [String], partial: [UInt8], ended: Bool)>(([], [], false))
    private let arrived = DispatchSemaphore(value: 0)

    func startReading(fd: Int32) {
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                let complete = state.withLock { state -> Int in
                    var complete = 0
                    for byte in buffer[..<count] {
                        if byte == UInt8(ascii: "\n") {
                            state.lines.append(String(decoding: state.partial, as: UTF8.self))
                            state.partial.removeAll()
                            complete += 1
                        } else {
                            state.partial.append(byte)
                        }
                    }
                    return complete
                }
                for _ in 0..<complete { arrived.signal() }
            }
            state.withLock { $0.ended = true }
            arrived.signal()
        }
    }

    func next(timeout: Duration) -> Next {
        let deadline = ContinuousClock.now + timeout
        while true {
            let next: Next? = state.withLock { state in
                if !state.lines.isEmpty { return .line(state.lines.removeFirst()) }
                return state.ended ? .end : nil
            }
            if let next { return next }
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero, arrived.wait(timeout: .now() + left.timeInterval) == .success else { return .timedOut }
        }
    }
}

extension SpawnedCLI: CustomStringConvertible {
    var description: String { "datadist \(arguments.joined(separator: " ")) (pid \(pid))" }
}

extension Duration {
    var timeInterval: DispatchTimeInterval {
        let (seconds, attoseconds) = components
        return .nanoseconds(Int(clamping: seconds * 1_000_000_000 + attoseconds / 1_000_000_000))
    }

    var secondsValue: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
