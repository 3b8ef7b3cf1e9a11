internal import CUCX
import Logging

#if canImport(Glibc)
internal import Glibc
#endif

/// UCX's own log messages, sent to swift-log (label `datadist.ucx`) instead of UCX's default of printing them on
/// stdout, which belongs to the application. Left to UCX when `UCX_LOG_FILE` names a file.
enum UCXLog {
    static let logger = Logger(label: "datadist.ucx")

    /// Installs the forwarding once per process, before the first UCX context.
    static let installed: Void = {
        guard getenv("UCX_LOG_FILE") == nil else { return }
        datadist_ucx_forward_log()
    }()

    /// swift-log's level for a `ucs_log_level_t`.
    static func level(_ ucxLevel: Int32) -> Logger.Level {
        switch ucxLevel {
        case Int32(UCS_LOG_LEVEL_FATAL.rawValue), Int32(UCS_LOG_LEVEL_ERROR.rawValue): .error
        case Int32(UCS_LOG_LEVEL_WARN.rawValue): .warning
        case Int32(UCS_LOG_LEVEL_DIAG.rawValue), Int32(UCS_LOG_LEVEL_INFO.rawValue),
            Int32(UCS_LOG_LEVEL_PRINT.rawValue):
            .info
        default: .debug
        }
    }
}

/// Called by the UCX log handler of CUCX.h with one formatted message.
@_cdecl("datadist_ucx_log_message")
func datadistUCXLogMessage(
    _ level: Int32, _ file: UnsafePointer<CChar>?, _ line: UInt32, _ message: UnsafePointer<CChar>?
) {
    let text = message.map { String(cString: $0) } ?? ""
    let source = file.map { String(cString: $0) } ?? "?"
    UCXLog.logger.log(level: UCXLog.level(level), "[UCX] \(text)", metadata: ["ucx.source": "\(source):\(line)"])
}
