import DataDistTestSupport
import Foundation
import Testing

/// Runs the built `datadist` binary in a child process with an explicit environment.
enum CLI {
    /// What a finished run produced.
    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The built `datadist` binary, next to the test bundle.
    static var binary: URL { TestPaths.builtProducts.appendingPathComponent("datadist") }

    /// `lib_FakeAscendCL.so`, next to the test bundle (or next to the `datadist` binary).
    static var fakeLibrary: String? {
        let name = "lib_FakeAscendCL.so"
        let folders = [TestPaths.builtProducts, binary.resolvingSymlinksInPath().deletingLastPathComponent()]
        return folders.map { $0.appendingPathComponent(name).path }.first(where: FileManager.default.fileExists)
    }

    /// Runs `datadist arguments` with `PATH` (and `LD_LIBRARY_PATH`, if set) of this process plus `variables`,
    /// nothing else. Kills the child and throws after `timeout`.
    /// What a spawned `datadist` sees: PATH, LD_LIBRARY_PATH and the sanitizers' options of this process, plus
    /// `variables`; nothing else (so a developer's DATADIST_* settings cannot change a test).
    static func childEnvironment(_ variables: [String: String]) -> [String: String] {
        let parent = ProcessInfo.processInfo.environment
        var environment = ["PATH": parent["PATH"] ?? "/usr/bin:/bin"]
        for name in ["LD_LIBRARY_PATH", "ASAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS"] {
            if let value = parent[name] { environment[name] = value }
        }
        // No Swift backtracer in a crashing child: it inherits the child's stdout, and once it hung (under ASan, after
        // UCX aborted a `serve`) holding the pipe open, so the test waiting for that stdout to end never did.
        environment["SWIFT_BACKTRACE"] = parent["SWIFT_BACKTRACE"] ?? "enable=no"
        environment.merge(variables) { _, new in new }
        return environment
    }

    static func run(
        _ arguments: [String], environment variables: [String: String] = [:], timeout: Duration = .seconds(30)
    ) throws -> Output {
        let environment = childEnvironment(variables)

        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("datadist-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let outURL = folder.appendingPathComponent("stdout")
        let errURL = folder.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        defer {
            try? out.close()
            try? err.close()
        }

        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        try process.run()

        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { usleep(5_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw Failure(description: "datadist \(arguments.joined(separator: " ")) did not finish within \(timeout)")
        }
        process.waitUntilExit()
        return Output(
            status: process.terminationStatus,
            stdout: try String(contentsOf: outURL, encoding: .utf8),
            stderr: try String(contentsOf: errURL, encoding: .utf8))
    }

    /// Runs `datadist probe --json` and parses its one JSON object.
    static func probeJSON(environment: [String: String] = [:]) throws -> [String: Any] {
        let output = try run(["probe", "--json"], environment: environment)
        guard output.status == 0 else {
            throw Failure(description: "probe --json exited \(output.status): \(output.stderr)")
        }
        let object = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8))
        guard let report = object as? [String: Any] else {
            throw Failure(description: "probe --json printed no JSON object: \(output.stdout)")
        }
        return report
    }
}
