import DataDistTestSupport
import Foundation
import Testing

/// Compiles `Tests/CPrograms/abi_pull.c` with the system C compiler against the installed header and the built
/// `libdatadist_c.so`, and runs it: two engines link, pull and verify through datadist.h alone.
@Suite struct CProgramTests {
    /// The library and a program linked against it need the same sanitizer runtime; the sanitized suites
    /// (`make tsan`, `make asan`) run the ABI through the Swift-side tests only.
    static var sanitized: Bool {
        let process = dlopen(nil, RTLD_NOW)
        return dlsym(process, "__asan_init") != nil || dlsym(process, "__tsan_init") != nil
    }

    @Test(.enabled(if: !sanitized), .timeLimit(.minutes(1)))
    func cProgramLinksPullsAndVerifiesThroughTheHeader() throws {
        let library = TestPaths.builtProducts.appendingPathComponent("libdatadist_c.so")
        try #require(FileManager.default.fileExists(atPath: library.path), "\(library.path) not built")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("datadist-c-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let program = folder.appendingPathComponent("abi_pull")
        let root = TestPaths.packageRoot
        let compile = try run(
            "/usr/bin/env",
            [
                "cc", "-std=c11", "-Wall", "-Wextra", "-Werror",
                "-I", root.appendingPathComponent("Sources/CDataDist/include").path,
                root.appendingPathComponent("Tests/CPrograms/abi_pull.c").path,
                "-o", program.path, "-L", TestPaths.builtProducts.path, "-ldatadist_c",
                "-Wl,-rpath," + TestPaths.builtProducts.path,
            ])
        try #require(compile.status == 0, "cc failed: \(compile.output)")
        var environment = ProcessInfo.processInfo.environment
        environment["DATADIST_BACKEND"] = "emulator"
        let result = try run(program.path, [], environment: environment)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("ok 65536"))
    }

    private func run(_ path: String, _ arguments: [String], environment: [String: String]? = nil) throws -> (
        status: Int32, output: String
    ) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
