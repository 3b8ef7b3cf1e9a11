internal import CAscendCL
import Synchronization
import ThreadSanitizerSupport

/// One loaded ACL runtime library: its entry points, loaded at most once per path per process and never
/// unloaded, and initialised (`aclInit`) at most once.
package final class ACLLibrary: @unchecked Sendable {
    // @unchecked: `handle` is the loader's record, immutable after load and alive for the whole process;
    // the mutable state is behind a Lock.

    /// Why a library could not be loaded.
    enum LoadFailure: Error {
        /// dlopen failed; the text is dlerror's.
        case dlopenFailed(String)
        /// The library lacks a required entry point.
        case missingSymbol(String)

        /// The file does not exist (as opposed to existing and being unusable).
        var isNotFound: Bool {
            if case .dlopenFailed(let detail) = self { return detail.contains("No such file or directory") }
            return false
        }

        var text: String {
            switch self {
            case .dlopenFailed(let detail): "dlopen failed: \(detail)"
            case .missingSymbol(let name): "missing required symbol \(name)"
            }
        }
    }

    /// The path the library was loaded by.
    package let path: String
    private let handle: OpaquePointer
    /// aclInit's result once it ran.
    private let initResult = Lock<Int32?>(nil)

    private static let loaded = Lock<[String: ACLLibrary]>([:])

    private init(path: String, handle: OpaquePointer) {
        self.path = path
        self.handle = handle
    }

    /// The library at `path` (a file path or a bare name for the loader's search), loaded on first use.
    /// Failures are not remembered: a later call tries again.
    package static func load(_ path: String) throws(DeviceError) -> ACLLibrary {
        do {
            return try open(path)
        } catch {
            throw DeviceError(.unavailable, "\(path): \(error.text)")
        }
    }

    static func open(_ path: String) throws(LoadFailure) -> ACLLibrary {
        try loaded.withLock { (libraries) throws(LoadFailure) -> ACLLibrary in
            if let library = libraries[path] { return library }
            var detail = [CChar](repeating: 0, count: 1024)
            var record: OpaquePointer?
            let status = ascend_library_open(path, &record, &detail, detail.count)
            let text = detail.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            guard status == ASCEND_LOAD_OK, let record else {
                throw status == ASCEND_LOAD_MISSING_SYMBOL ? .missingSymbol(text) : .dlopenFailed(text)
            }
            let library = ACLLibrary(path: path, handle: record)
            libraries[path] = library
            return library
        }
    }

    /// The resolved entry points; required ones are non-nil.
    var table: ascend_acl_table { ascend_library_table(handle).pointee }

    /// Runs `aclInit(NULL)` the first time it is called for this library, and reports its result every time:
    /// success (100002, already initialised, counts as success) or the ACL error, e.g. 100039 for a stub.
    package func initialize() throws(DeviceError) {
        let table = self.table
        let code = initResult.withLock { (result) -> Int32 in
            if let result { return result }
            let code = table.aclInit!(nil)
            result = code
            return code
        }
        switch code {
        case ACLCode.success, ACLCode.repeatInitialize:
            return
        case ACLCode.stubMode:
            throw DeviceError(.acl(code), "\(path) is a stub library")
        default:
            throw DeviceError(.acl(code), "aclInit(NULL) in \(path) failed")
        }
    }

    /// The address of `symbol` in the library, for optional or diagnostic entry points.
    package func lookup(symbol: String) -> UnsafeMutableRawPointer? {
        ascend_library_lookup(handle, symbol)
    }

    /// Makes `device` current on the calling thread, as every device call requires.
    func bind(_ device: Int32) throws(DeviceError) {
        try check(ascend_bind_device(handle, device), "aclrtSetDevice(\(device))")
    }

    /// Throws `.acl(code)` naming `call` when `code` is not success, with the runtime's own message if it
    /// has one.
    func check(_ code: Int32, _ call: @autoclosure () -> String) throws(DeviceError) {
        guard code != ACLCode.success else { return }
        var message = "\(call()) failed"
        if let recent = table.aclGetRecentErrMsg?(), recent.pointee != 0 {
            message += ": \(String(cString: recent))"
        }
        throw DeviceError(.acl(code), message)
    }
}
