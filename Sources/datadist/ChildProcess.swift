import Dispatch
import Foundation
import Synchronization
import SystemPackage
import ThreadSanitizerSupport

/// Another `datadist` process: its stdout read line by line on a thread, its stdin optionally a pipe we close.
/// stderr is inherited.
final class ChildProcess {
    let process = Process()
    private let input: Pipe?
    let lines: LineStream

    /// Starts this executable (`/proc/self/exe`) with `arguments`, inside network namespace `namespace` when one
    /// is given (through `ip netns exec`), with `environment` added to this process's.
    init(
        arguments: [String], stdinPipe: Bool, namespace: String? = nil, environment: [String: String] = [:]
    ) throws {
        let output = Pipe()
        input = stdinPipe ? Pipe() : nil
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        if let namespace {
            guard let ip = IPCommand.path else { throw ChildProcessError(message: "iproute2's `ip` is not installed") }
            process.executableURL = URL(fileURLWithPath: ip)
            process.arguments = ["netns", "exec", namespace, executable.path] + arguments
        } else {
            process.executableURL = executable
            process.arguments = arguments
        }
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, added in added }
        }
        process.standardInput = input ?? FileHandle.nullDevice
        process.standardOutput = output
        lines = LineStream(fd: output.fileHandleForReading.fileDescriptor)
        try process.run()
        try? output.fileHandleForWriting.close()
    }

    var pid: Int32 { process.processIdentifier }

    /// Writes `line` and a newline to the child's stdin (a pipe only with `stdinPipe`).
    func send(_ line: String) throws {
        guard let input else { throw ChildProcessError(message: "the child's stdin is not a pipe") }
        try input.fileHandleForWriting.write(contentsOf: Data((line + "\n").utf8))
    }

    /// Closes the child's stdin (a `serve` then stops).
    func closeStandardInput() {
        try? input?.fileHandleForWriting.close()
    }

    /// The exit status, or nil if it still runs after `timeout`.
    func wait(timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { usleep(2_000) }
        guard !process.isRunning else { return nil }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// SIGKILL, then reap.
    func kill() {
        guard process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

struct ChildProcessError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Lines read from a descriptor by a background thread.
final class LineStream: Sendable {
    enum Next: Equatable {
        case line(String)
        case end
        case timedOut
    }

    private struct State {
        var lines: [String] = []
        var partial: [UInt8] = []
        var ended = false
    }

    private let state = Lock(State())
    private let arrived = DispatchSemaphore(value: 0)

    init(fd: Int32) {
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            while true {
                let count =
                    (try? buffer.withUnsafeMutableBytes { try FileDescriptor(rawValue: fd).read(into: $0) }) ?? 0
                guard count > 0 else { break }
                let complete = state.withLock { state -> Int in
                    var complete = 0
                    for byte in buffer[..<count] {
                        if byte == UInt8(ascii: "\n") {
                            state.lines.append(String(decoding: state.partial, as: UTF8.self))
                            state.partial.removeAll(keepingCapacity: true)
                            complete += 1
                        } else {
                            state.partial.append(byte)
                        }
                    }
                    return complete
                }
                for _ in 0..<complete { arrived.signal() }
            }
            state.withLock { state in
                if !state.partial.isEmpty { state.lines.append(String(decoding: state.partial, as: UTF8.self)) }
                state.ended = true
            }
            arrived.signal()
        }
    }

    /// The next line, waiting up to `timeout`.
    func next(timeout: Duration) -> Next {
        let (seconds, attoseconds) = timeout.components
        let deadline =
            DispatchTime.now() + .nanoseconds(Int(clamping: seconds * 1_000_000_000 + attoseconds / 1_000_000_000))
        while true {
            let next: Next? = state.withLock { state in
                if !state.lines.isEmpty { return .line(state.lines.removeFirst()) }
                return state.ended ? .end : nil
            }
            if let next { return next }
            if arrived.wait(timeout: deadline) == .timedOut { return .timedOut }
        }
    }
}
