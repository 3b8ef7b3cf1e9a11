import DataDistTestSupport
import DeviceRuntime
import Foundation

/// A private copy of the fake vendor library, loaded under its own path, so that its call counters are one test's
/// alone (the dynamic loader keeps one instance per path).
struct PrivateFakeACL {
    /// Where the copy is; `DATADIST_ACL_LIBRARY` for the instances under test. The file itself is removed once
    /// loaded (the mapping stays).
    let path: String
    let library: ACLLibrary

    /// Copies and loads the fake (`library`: the built product to copy, e.g. the one without IPC); `tag` names the
    /// temporary folder.
    init(tag: String, library source: String = "lib_FakeAscendCL.so") throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("datadist-\(tag)-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        path = directory.appendingPathComponent("libacl_rt.so").path
        try FileManager.default.copyItem(
            atPath: TestPaths.builtProducts.appendingPathComponent(source).path, toPath: path)
        library = try ACLLibrary.load(path)
    }

    /// Calls of the ACL entry point `symbol` so far (`fake_acl_call_count`).
    func callCount(_ symbol: String) -> UInt64 {
        typealias Hook = @convention(c) (UnsafePointer<CChar>?) -> UInt64
        return unsafeBitCast(library.lookup(symbol: "fake_acl_call_count")!, to: Hook.self)(symbol)
    }

    /// Objects of kind `what` open now (`fake_acl_open_count`).
    func openCount(_ what: String) -> UInt64 {
        typealias Hook = @convention(c) (UnsafePointer<CChar>?) -> UInt64
        return unsafeBitCast(library.lookup(symbol: "fake_acl_open_count")!, to: Hook.self)(what)
    }

    /// Bytes copied so far in direction `kind` (`fake_acl_copied_bytes`).
    func copiedBytes(_ kind: MemcpyKind) -> UInt64 {
        typealias Hook = @convention(c) (Int32) -> UInt64
        return unsafeBitCast(library.lookup(symbol: "fake_acl_copied_bytes")!, to: Hook.self)(kind.rawValue)
    }
}
