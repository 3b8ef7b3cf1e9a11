import DeviceCaps
import DeviceRuntime
public import Logging

extension ProbeReport {
    /// Selects the device runtime as `LLMDataDist.initialize` would (see `DATADIST_BACKEND`), then reads its
    /// identity, devices and gates, and the host's limits.
    ///
    /// - Throws: `.failed` naming the cause when no runtime can be selected (e.g. `DATADIST_BACKEND=acl` and no
    ///   library loads, or an invalid `DATADIST_*` value), or when a device cannot be queried.
    public static func collect(
        environment: [String: String], logger: Logger = Logger(label: "datadist.probe")
    ) throws(LLMError) -> ProbeReport {
        let choice = try RuntimeChoice.select(environment: environment, logger: logger)
        let runtime = choice.runtime
        var devices: [Device] = []
        for index in 0..<Int32(runtime.deviceCount) {
            let info: DeviceInfo
            do {
                info = try runtime.deviceInfo(index)
            } catch {
                throw LLMError(runtimeError: error, while: "reading device \(index) of the \(runtime.backend) runtime")
            }
            devices.append(
                Device(
                    index: info.index, numaNode: info.numaNode, memoryBytes: info.totalBytes, freeBytes: info.freeBytes)
            )
        }
        let caps = runtime.capabilities
        var operations: [String: Gate] = [:]
        for op in Operation.allCases {
            let support = caps.support(op)
            operations[op.rawValue] = Gate(supported: support.supported, reason: support.reason)
        }
        return ProbeReport(
            backend: runtime.backend.rawValue, backendReason: choice.reason, library: runtime.libraryPath,
            attemptedLibrary: choice.attemptedLibrary, socName: caps.socName, boardID: caps.boardID,
            product: caps.product.rawValue, productName: caps.product.displayName,
            ambiguous: caps.ambiguousCandidates?.map(\.rawValue), detectionNote: caps.note, devices: devices,
            operations: operations, host: Host(HostReport.current()),
            transfers: try Transfers.collect(runtime: runtime, environment: environment))
    }
}

extension ProbeReport.Host {
    init(_ report: HostReport) {
        self.init(
            memlockSoftLimit: report.memlockSoftLimit, memlockHardLimit: report.memlockHardLimit,
            hugePagesTotal: report.hugePagesTotal, hugePagesFree: report.hugePagesFree,
            hugePageSizeBytes: report.hugePageSizeBytes, numaNodes: report.numaNodes,
            numaAvailable: report.numaAvailable)
    }
}
