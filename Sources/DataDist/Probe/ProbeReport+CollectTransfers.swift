import DeviceRuntime
import LinkLayer

extension ProbeReport.Transfers {
    /// `DATADIST_HCOMM_LIBRARY` names the one-sided library to look for (default `libhcomm.so`).
    static let hcommVariable = "DATADIST_HCOMM_LIBRARY"

    /// Asks `runtime` which features it has and which device pairs reach each other, looks for libhcomm, and asks
    /// UCX for its transports.
    ///
    /// - Throws: `.failed` naming the pair when the runtime cannot answer for a pair of valid devices.
    static func collect(runtime: any DeviceRuntime, environment: [String: String]) throws(LLMError) -> Self {
        func feature(_ feature: DeviceFeature) -> ProbeReport.Feature {
            let availability = runtime.availability(of: feature)
            return ProbeReport.Feature(
                available: availability.isAvailable, reason: availability.reason,
                missingSymbols: availability.missingSymbols)
        }
        let peer = runtime.availability(of: .peerAccess)
        var pairs: [ProbeReport.PeerAccess.Pair] = []
        if peer.isAvailable {
            let devices = Int32(runtime.deviceCount)
            for device in 0..<devices {
                for other in 0..<devices where other != device {
                    do {
                        let accessible = try runtime.canAccessPeer(device, peer: other)
                        pairs.append(.init(device: device, peer: other, accessible: accessible))
                    } catch {
                        throw LLMError(runtimeError: error, while: "asking whether device \(device) reaches \(other)")
                    }
                }
            }
        }
        let name = environment[hcommVariable].flatMap { $0.isEmpty ? nil : $0 } ?? "libhcomm.so"
        let hcomm = VendorLibraryPresence.detect(name)
        return ProbeReport.Transfers(
            ipc: feature(.ipc),
            peerAccess: ProbeReport.PeerAccess(available: peer.isAvailable, reason: peer.reason, pairs: pairs),
            asyncCopy: feature(.asyncCopy), hostRegister: feature(.hostRegister),
            hcomm: ProbeReport.Library(name: name, present: hcomm.present, detail: hcomm.present ? nil : hcomm.detail),
            ucx: try ucxTransports(environment: environment, staging: runtime.backend == .acl))
    }

    /// - Throws: `.paramInvalid` for a `DATADIST_UCX_STAGING_BYTES` that is not a size in range.
    private static func ucxTransports(environment: [String: String], staging: Bool) throws(LLMError)
        -> ProbeReport.UCXTransports
    {
        let selection = environment["UCX_TLS"].flatMap { $0.isEmpty ? nil : $0 }
        let stagingBytes = staging ? try UCXNodeHolder.stagingBytes(in: environment) : nil
        switch UCXTransportList.query() {
        case .success(let transports):
            return ProbeReport.UCXTransports(
                available: !transports.isEmpty, reason: transports.isEmpty ? "UCX found no transport" : nil,
                transports: transports, selection: selection, stagingBytesPerLink: stagingBytes)
        case .failure(let error):
            return ProbeReport.UCXTransports(
                available: false, reason: error.message, transports: [], selection: selection,
                stagingBytesPerLink: stagingBytes)
        }
    }
}
