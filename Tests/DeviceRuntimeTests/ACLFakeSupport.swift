import CFakeAscendCL
import DataDistTestSupport
import DeviceRuntime
import Foundation
import Logging
import Synchronization
import ThreadSanitizerSupport

/// Test access to the fake ACL library (lib_FakeAscendCL.so, built next to the test bundle).
///
/// The fake's state (initialisation, allocations, configuration, call counters) is per loaded instance, and
/// dlopen treats a copy at another path as another library: every test takes its own copy, so tests never
/// see each other's state or need the process environment.
enum FakeACL {
    /// The fake, built next to the test bundle.
    static var libraryPath: String { TestPaths.builtProducts.appendingPathComponent("lib_FakeAscendCL.so").path }
    /// The fake built without aclrtMemset.
    static var noMemsetPath: String {
        TestPaths.builtProducts.appendingPathComponent("lib_FakeAscendCLNoMemset.so").path
    }

    /// The fake built without the IPC entry points.
    static var noIPCPath: String { TestPaths.builtProducts.appendingPathComponent("lib_FakeAscendCLNoIPC.so").path }

    static let logger = Logger(label: "test.acl", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Removes a directory made by `temporaryDirectory()`.
    static func remove(_ directory: URL) {
        try? FileManager.default.removeItem(at: directory)
    }

    /// A fresh empty directory.
    static func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("datadist-acl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// Copies `source` (default: the fake) to `directory/name` and returns the copy's path.
    @discardableResult
    static func copy(_ source: String = libraryPath, to directory: URL, as name: String) throws -> String {
        let destination = directory.appendingPathComponent(name)
        try FileManager.default.createDirectory(
            at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: source, toPath: destination.path)
        return destination.path
    }

    /// A private, loaded (not yet initialised) instance of the fake, named `name`, configured with `settings`
    /// (keys of CFakeAscendCL.h) before anything calls into it.
    static func instance(
        named name: String = "libacl_rt.so", _ settings: [String: String] = [:]
    ) throws -> FakeInstance {
        let directory = try temporaryDirectory()
        let path = try copy(to: directory, as: name)
        let instance = FakeInstance(library: try ACLLibrary.load(path))
        // Loaded libraries are cached by path and never unloaded, so the file is no longer needed.
        try FileManager.default.removeItem(at: directory)
        for (key, value) in settings {
            let status = instance.configure(key, value)
            guard status == 0 else { throw ConfigureError(key: key, value: value, status: status) }
        }
        return instance
    }

    struct ConfigureError: Error {
        let key: String
        let value: String
        let status: Int32
    }
}

/// One loaded copy of the fake and its test hooks, reached through the library's own symbols.
struct FakeInstance: Sendable {
    let library: ACLLibrary

    var path: String { library.path }
    var acl: FakeEntryPoints { FakeEntryPoints(library: library) }

    func configure(_ key: String, _ value: String?) -> Int32 {
        let address = library.lookup(symbol: "fake_acl_configure")!
        return unsafeBitCast(address, to: fake_acl_configure_fn.self)(key, value)
    }

    func count(_ symbol: String) -> UInt64 {
        let address = library.lookup(symbol: "fake_acl_call_count")!
        return unsafeBitCast(address, to: fake_acl_call_count_fn.self)(symbol)
    }

    func resetCounts() {
        let address = library.lookup(symbol: "fake_acl_reset_counts")!
        unsafeBitCast(address, to: fake_acl_reset_counts_fn.self)()
    }

    /// An ACLRuntime over this instance.
    func runtime(_ environment: [String: String] = [:]) throws(DeviceError) -> ACLRuntime {
        try ACLRuntime(libraryPath: path, environment: environment, logger: FakeACL.logger)
    }
}

/// The fake's ACL entry points, resolved by name in the loaded instance, for checks at the C level.
struct FakeEntryPoints: Sendable {
    let library: ACLLibrary

    private func function<F>(_ symbol: String, _ type: F.Type) -> F {
        unsafeBitCast(library.lookup(symbol: symbol)!, to: F.self)
    }

    func initialize() -> Int32 {
        function("aclInit", (@convention(c) (UnsafePointer<CChar>?) -> Int32).self)(nil)
    }
    func finalize() -> Int32 { function("aclFinalize", (@convention(c) () -> Int32).self)() }
    func setDevice(_ device: Int32) -> Int32 {
        function("aclrtSetDevice", (@convention(c) (Int32) -> Int32).self)(device)
    }
    func deviceCount() -> (Int32, UInt32) {
        var count: UInt32 = 0
        let rc = function("aclrtGetDeviceCount", (@convention(c) (UnsafeMutablePointer<UInt32>?) -> Int32).self)(&count)
        return (rc, count)
    }
    func socName() -> String? {
        function("aclrtGetSocName", (@convention(c) () -> UnsafePointer<CChar>?).self)().map { String(cString: $0) }
    }
    private typealias Malloc = @convention(c) (UnsafeMutablePointer<UnsafeMutableRawPointer?>?, Int, Int32) -> Int32
    func malloc(_ size: Int) -> (Int32, UInt) {
        var pointer: UnsafeMutableRawPointer?
        let rc = function("aclrtMalloc", Malloc.self)(&pointer, size, 0)
        return (rc, UInt(bitPattern: pointer))
    }
    func mallocWithoutOutPointer(_ size: Int) -> Int32 { function("aclrtMalloc", Malloc.self)(nil, size, 0) }
    func free(_ address: UInt) -> Int32 {
        function("aclrtFree", (@convention(c) (UnsafeMutableRawPointer?) -> Int32).self)(
            UnsafeMutableRawPointer(bitPattern: address))
    }
    func mallocHost(_ size: Int) -> (Int32, UInt) {
        var pointer: UnsafeMutableRawPointer?
        let rc = function(
            "aclrtMallocHost", (@convention(c) (UnsafeMutablePointer<UnsafeMutableRawPointer?>?, Int) -> Int32).self)(
                &pointer, size)
        return (rc, UInt(bitPattern: pointer))
    }
    func freeHost(_ address: UInt) -> Int32 {
        function("aclrtFreeHost", (@convention(c) (UnsafeMutableRawPointer?) -> Int32).self)(
            UnsafeMutableRawPointer(bitPattern: address))
    }
    func memcpy(_ dst: UInt, _ destMax: Int, _ src: UInt, _ count: Int, _ kind: Int32) -> Int32 {
        function(
            "aclrtMemcpy",
            (@convention(c) (UnsafeMutableRawPointer?, Int, UnsafeRawPointer?, Int, Int32) -> Int32).self)(
                UnsafeMutableRawPointer(bitPattern: dst), destMax, UnsafeRawPointer(bitPattern: src), count, kind)
    }
    func memset(_ dst: UInt, _ maxCount: Int, _ value: Int32, _ count: Int) -> Int32 {
        function("aclrtMemset", (@convention(c) (UnsafeMutableRawPointer?, Int, Int32, Int) -> Int32).self)(
            UnsafeMutableRawPointer(bitPattern: dst), maxCount, value, count)
    }
    func memInfo(_ attr: Int32) -> (Int32, free: Int, total: Int) {
        var free = 0
        var total = 0
        let rc = function(
            "aclrtGetMemInfo",
            (@convention(c) (Int32, UnsafeMutablePointer<Int>?, UnsafeMutablePointer<Int>?) -> Int32).self)(
                attr, &free, &total)
        return (rc, free, total)
    }
    func deviceInfo(_ device: UInt32, _ attr: Int32) -> (Int32, Int64) {
        var value: Int64 = 0
        let rc = function(
            "aclrtGetDeviceInfo", (@convention(c) (UInt32, Int32, UnsafeMutablePointer<Int64>?) -> Int32).self)(
                device, attr, &value)
        return (rc, value)
    }
    /// dsmi_get_board_info; the info struct is four unsigned ints, board_id first.
    func boardID(_ device: Int32) -> (Int32, UInt32) {
        var info: [UInt32] = [0, 0, 0, 0]
        let rc = info.withUnsafeMutableBufferPointer {
            function("dsmi_get_board_info", (@convention(c) (Int32, UnsafeMutablePointer<UInt32>?) -> Int32).self)(
                device, $0.baseAddress)
        }
        return (rc, info[0])
    }
    func recentError() -> String? {
        function("aclGetRecentErrMsg", (@convention(c) () -> UnsafePointer<CChar>?).self)().map { String(cString: $0) }
    }
}

/// Runs `body` on a newly created thread and returns its result: ACL's current device is per thread, so a
/// new thread starts with none.
func onNewThread<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
    let result = Lock<T?>(nil)
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        let value = body()
        result.withLock { $0 = value }
        done.signal()
    }
    thread.start()
    done.wait()
    return result.withLock { $0! }
}

/// The ACL code `body` fails with: nil when it succeeds, -1 for an error without an ACL code.
func code(_ body: () throws -> Void) -> Int32? {
    do {
        try body()
        return nil
    } catch {
        return (error as? DeviceError)?.aclCode ?? -1
    }
}
