internal import CUCX

/// Local memory registered with an instance's UCX context (`ucp_mem_map`) and its packed remote key, which a
/// peer unpacks to reach it. Unregistered when the last holder lets go.
final class UCXRegistration: Sendable {
    private let worker: UCXWorker
    nonisolated(unsafe) private let memory: OpaquePointer
    let base: UInt
    let size: Int
    let packedKey: [UInt8]

    init(worker: UCXWorker, base: UInt, size: Int, remoteWrite: Bool) throws(LinkError) {
        guard size > 0, let address = UnsafeMutableRawPointer(bitPattern: base) else {
            throw LinkError(.io, "UCX: cannot register \(size) bytes at \(base)")
        }
        var memory: OpaquePointer?
        var status = datadist_ucp_mem_map(worker.context, address, size, remoteWrite ? 1 : 0, &memory)
        guard status == UCS_OK, let memory else {
            throw LinkError(.io, "UCX: ucp_mem_map of \(size) bytes failed: \(ucxDescription(status))")
        }
        var buffer: UnsafeMutableRawPointer?
        var length = 0
        status = ucp_rkey_pack(worker.context, memory, &buffer, &length)
        guard status == UCS_OK, let buffer else {
            ucp_mem_unmap(worker.context, memory)
            throw LinkError(.io, "UCX: ucp_rkey_pack failed: \(ucxDescription(status))")
        }
        packedKey = Array(UnsafeRawBufferPointer(start: buffer, count: length))
        ucp_rkey_buffer_release(buffer)
        self.worker = worker
        self.memory = memory
        self.base = base
        self.size = size
    }

    deinit { ucp_mem_unmap(worker.context, memory) }
}
