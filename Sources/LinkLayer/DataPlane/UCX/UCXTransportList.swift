internal import CUCX

/// The transports UCX finds on this host (`ucx_info -d`'s list), for `datadist probe`.
package enum UCXTransportList {
    /// Every transport resource as "transport/device" (e.g. `tcp/eth0`, `cma/memory`), in UCX's order; or why
    /// UCX could not list them. `UCX_TLS` does not narrow this list: it restricts what UCP then picks from it.
    package static func query() -> Result<[String], LinkError> {
        var status = UCS_OK
        var buffer = [CChar](repeating: 0, count: 16 << 10)
        let count = buffer.withUnsafeMutableBufferPointer { bytes in
            datadist_uct_list_transports(bytes.baseAddress, bytes.count, &status)
        }
        guard count >= 0 else {
            return .failure(LinkError(.io, "UCX: uct_query_components failed: \(ucxDescription(status))"))
        }
        let text = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return .success(text.split(separator: "\n").map(String.init))
    }
}
