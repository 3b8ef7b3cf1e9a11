internal import CLinuxSupport

#if canImport(Glibc)
import Glibc
#endif

/// One export of the emulator's key protocol (CLinuxSupport's `datadist_ipc_*`, the same protocol the fake ACL
/// library speaks). This file holds the emulator's calls into it.
struct IPCExport: @unchecked Sendable {
    // @unchecked: the record is owned by the runtime's sharing state and used under its lock.
    let record: OpaquePointer
    let key: SharingKey

    static func create(fd: Int32, offset: Int, size: Int, device: Int32, validation: ImportValidation)
        throws(DeviceError) -> IPCExport
    {
        var buffer = [CChar](repeating: 0, count: SharingKey.bufferLength)
        var record: OpaquePointer?
        let flags = validation == .anyProcess ? UInt32(DATADIST_IPC_NO_PID_VALIDATION) : 0
        let status = datadist_ipc_export_create(
            fd, UInt64(offset), UInt64(size), device, flags, "datadist-emu", &buffer, &record)
        guard status == DATADIST_IPC_OK, let record else {
            throw IPCExport.error(status, "exporting \(size) bytes at offset \(offset) of device \(device) memory")
        }
        let text = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        guard let key = SharingKey(text: text) else { preconditionFailure("the IPC protocol made an invalid key") }
        return IPCExport(record: record, key: key)
    }

    func allow(_ processIDs: [Int32]) throws(DeviceError) {
        let status = datadist_ipc_export_allow(record, processIDs, processIDs.count)
        guard status == DATADIST_IPC_OK else {
            throw IPCExport.error(status, "whitelisting \(processIDs.count) PIDs for key \(key)")
        }
    }

    /// Closes the export; returns how many importing processes, alive, had not closed it.
    func close() -> Int { Int(datadist_ipc_export_close(record)) }

    /// A key that names no live export reads as ACL's 107000; the refusals the vendor leaves undocumented (a PID
    /// not whitelisted, a closed export, a gone exporter) as a driver failure, 507899, like the fake library.
    static func error(_ status: datadist_ipc_status, _ doing: String) -> DeviceError {
        let text = String(cString: datadist_ipc_status_text(status))
        if status == DATADIST_IPC_BAD_KEY {
            return DeviceError(.acl(ACLCode.runtimeParamInvalid), "\(doing): \(text)")
        }
        let detail = status == DATADIST_IPC_SYSTEM ? " (errno \(errno))" : ""
        return DeviceError(.acl(ACLCode.driverInternal), "\(doing): \(text)\(detail)")
    }
}

/// Another process's export mapped into this one.
struct IPCImport: @unchecked Sendable {
    // @unchecked: as IPCExport.
    let record: OpaquePointer
    let address: UInt
    let size: Int
    /// The exporter's device.
    let exportDevice: Int32

    static func open(_ key: SharingKey) throws(DeviceError) -> IPCImport {
        var record: OpaquePointer?
        var address: UnsafeMutableRawPointer?
        var size: UInt64 = 0
        var device: Int32 = -1
        let status = key.text.withCString { datadist_ipc_import_open($0, &record, &address, &size, &device) }
        guard status == DATADIST_IPC_OK, let record, let address else {
            throw IPCExport.error(status, "importing key \(key) as process \(getpid())")
        }
        return IPCImport(record: record, address: UInt(bitPattern: address), size: Int(size), exportDevice: device)
    }

    /// Unmaps the import; false when the exporter had closed the key first.
    func close() -> Bool { datadist_ipc_import_close(record) == DATADIST_IPC_OK }
}
