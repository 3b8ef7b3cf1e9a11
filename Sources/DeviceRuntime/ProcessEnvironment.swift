#if canImport(Glibc)
import Glibc
#endif

/// The process environment as a dictionary. Runtimes take an environment parameter so tests can pass
/// their own instead of mutating the process's.
public enum ProcessEnvironment {
    public static var current: [String: String] {
        var result: [String: String] = [:]
        var cursor = environ
        while let entry = cursor.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            cursor += 1
        }
        return result
    }
}
