internal import CAscendCL

/// Whether a vendor library is installed, found by `dlopen` alone: nothing in it is called.
public struct VendorLibraryPresence: Sendable, Hashable {
    /// The name or path tried.
    public let name: String
    public let present: Bool
    /// `dlerror`'s text when absent; empty when present.
    public let detail: String

    /// Tries `name` (a bare name for the loader's search, or a path) and closes it again at once.
    public static func detect(_ name: String) -> VendorLibraryPresence {
        var detail = [CChar](repeating: 0, count: 512)
        let present = ascend_library_present(name, &detail, detail.count) == 1
        let text = detail.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return VendorLibraryPresence(name: name, present: present, detail: text)
    }
}
