import DeviceRuntime

extension ProbeReport.Transfers {
    /// `DATADIST_HCOMM_LIBRARY` names the one-sided library to look for (default `libhcomm.so`).
    static let hcommVariable = "DATADIST_HCOMM_LIBRARY"

    /// Asks `runtime` which features it has and which device pairs reach each other, and looks for libhcomm.
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
            hcomm: ProbeReport.Library(name: name, present: hcomm.present, detail: hcomm.present ? nil : hcomm.detail))
    }
}
