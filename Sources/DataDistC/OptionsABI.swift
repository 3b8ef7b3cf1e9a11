import CDataDist
import DataDist
import FoundationEssentials

// The option and diagnostics functions of datadist.h: the key list (the one source of the option strings other
// languages emit), option checking, status names, the backend.

/// "name=key" lines of every `LLMOptionKey`, NUL-terminated, built once and never freed or written (hence
/// safe to share).
nonisolated(unsafe) private let optionKeyText: UnsafeMutablePointer<CChar> = {
    let pairs: [(String, String)] = [
        ("deviceID", LLMOptionKey.deviceID), ("deviceIDAlias", LLMOptionKey.deviceIDAlias),
        ("sessionDeviceID", LLMOptionKey.sessionDeviceID), ("syncKVTimeout", LLMOptionKey.syncKVTimeout),
        ("listenIPInfo", LLMOptionKey.listenIPInfo), ("listenIPInfoAlias", LLMOptionKey.listenIPInfoAlias),
        ("enableRemoteCacheAccessible", LLMOptionKey.enableRemoteCacheAccessible),
        ("enableCacheManager", LLMOptionKey.enableCacheManager), ("memoryPool", LLMOptionKey.memoryPool),
        ("hostMemoryPool", LLMOptionKey.hostMemoryPool),
        ("enforceProductSupport", LLMOptionKey.enforceProductSupport), ("copyThreads", LLMOptionKey.copyThreads),
        ("requestKeyLease", LLMOptionKey.requestKeyLease), ("linkTotalTime", LLMOptionKey.linkTotalTime),
        ("linkRetryCount", LLMOptionKey.linkRetryCount), ("rdmaTrafficClass", LLMOptionKey.rdmaTrafficClass),
        ("rdmaServiceLevel", LLMOptionKey.rdmaServiceLevel), ("memoryUtilization", LLMOptionKey.memoryUtilization),
        ("localCommRes", LLMOptionKey.localCommRes), ("transferBackend", LLMOptionKey.transferBackend),
        ("globalResourceConfig", LLMOptionKey.globalResourceConfig), ("role", LLMOptionKey.role),
        ("enableSwitchRole", LLMOptionKey.enableSwitchRole), ("bufferPoolConfig", LLMOptionKey.bufferPoolConfig),
        ("flowGraphMemMaxSize", LLMOptionKey.flowGraphMemMaxSize), ("deployResPath", LLMOptionKey.deployResPath),
        ("clusterInfo", LLMOptionKey.clusterInfo), ("outputMaxSize", LLMOptionKey.outputMaxSize),
        ("linkSecret", LLMOptionKey.linkSecret), ("transport", LLMOptionKey.transport),
    ]
    return copyCString(pairs.map { "\($0.0)=\($0.1)\n" }.joined())
}()

/// Status names, NUL-terminated, built once and never freed or written.
nonisolated(unsafe) private let statusNames: [UInt32: UnsafeMutablePointer<CChar>] = Dictionary(
    uniqueKeysWithValues: LLMStatusCode.allKnown.map { ($0.rawValue, copyCString($0.name)) })
nonisolated(unsafe) private let failedName = copyCString(LLMStatusCode.failed.name)

/// A malloc'ed copy of `text`, NUL-terminated; nil when out of memory.
func mallocCString(_ text: String) -> UnsafeMutablePointer<CChar>? {
    var text = text
    return text.withUTF8 { bytes in
        bytes.withMemoryRebound(to: CChar.self) { datadist_support_copy_string($0.baseAddress, $0.count) }
    }
}

/// A string kept for the life of the process (made once, at first use; a process without the few bytes fails
/// there).
func copyCString(_ text: String) -> UnsafeMutablePointer<CChar> {
    guard let copy = mallocCString(text) else { fatalError("out of memory copying \(text.utf8.count) bytes") }
    return copy
}

@_cdecl("datadist_option_keys")
public func datadistOptionKeys() -> UnsafePointer<CChar> { UnsafePointer(optionKeyText) }

@_cdecl("datadist_status_name")
public func datadistStatusName(_ status: UInt32) -> UnsafePointer<CChar> {
    UnsafePointer(statusNames[status] ?? failedName)
}

@_cdecl("datadist_check_options")
public func datadistCheckOptions(
    _ keys: UnsafePointer<UnsafePointer<CChar>?>?, _ values: UnsafePointer<UnsafePointer<CChar>?>?, _ count: Int
) -> UInt32 {
    abiCall { () throws(LLMError) in _ = try LLMConfig(options: try CValues.options(keys, values, count)) }
}

@_cdecl("datadist_backend")
public func datadistBackend(_ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> UInt32 {
    abiCall { () throws(LLMError) in
        let out = try requireOutput(out, "out")
        let report = try ProbeReport.collect(environment: ProcessInfo.processInfo.environment)
        guard let text = mallocCString("\(report.backend)\n\(report.backendReason)") else {
            throw LLMError(.failed, "out of memory copying the backend report")
        }
        out.pointee = text
    }
}
