// Sharing a memfd-backed region with another process by a printable key: the protocol of ACL's
// aclrtIpcMem* calls (export, whitelist importer PIDs, import, close) over host memory. Used by the emulator
// (through CLinuxSupport) and compiled privately into the fake ACL library (which defines DATADIST_IPC_API as
// `static` before including ipc_share.c), so both behave alike.
//
// The exporter keeps two descriptors open for as long as the export lives: the region's memfd and a one-page
// control memfd holding the whitelist, the importers and the closed flag. A key names the exporter's PID, the
// control descriptor and a random nonce; an importer opens both descriptors through /proc/<pid>/fd (same user
// only), and takes flock on the control page for every read-modify-write, so a dying holder never blocks others.
#ifndef DATADIST_IPC_H
#define DATADIST_IPC_H

#include <stddef.h>
#include <stdint.h>

#ifndef DATADIST_IPC_API
#define DATADIST_IPC_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/// Bytes of a key buffer, the terminating NUL included (ACL's key length).
#define DATADIST_IPC_KEY_LEN 65
/// Export flag: any process may import (ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION).
#define DATADIST_IPC_NO_PID_VALIDATION 0x1u
/// Most PIDs one export can whitelist, and most importing processes it tracks.
#define DATADIST_IPC_MAX_PIDS 64

typedef enum datadist_ipc_status {
    DATADIST_IPC_OK = 0,
    DATADIST_IPC_BAD_KEY = 1,          // not a key of this protocol, or its control page does not match it
    DATADIST_IPC_EXPORTER_GONE = 2,    // the exporting process or its descriptors are gone
    DATADIST_IPC_CLOSED = 3,           // the exporter closed the key (before this importer did)
    DATADIST_IPC_NOT_WHITELISTED = 4,  // the importer's PID was not set with datadist_ipc_export_allow
    DATADIST_IPC_FULL = 5,             // more than DATADIST_IPC_MAX_PIDS PIDs
    DATADIST_IPC_SYSTEM = 6,           // a system call failed; errno says which way
} datadist_ipc_status;

typedef struct datadist_ipc_export datadist_ipc_export;
typedef struct datadist_ipc_import datadist_ipc_import;

/// Exports `size` bytes at byte `offset` of memfd `data_fd` (offset a multiple of the page size), recording
/// `device` and `flags` for importers. Writes the NUL-terminated key (at most DATADIST_IPC_KEY_LEN bytes, starting
/// with `prefix`, at most 16 characters) into `key`. The export holds its own duplicate of `data_fd`.
DATADIST_IPC_API datadist_ipc_status datadist_ipc_export_create(int data_fd, uint64_t offset, uint64_t size,
                                                                int32_t device, uint32_t flags, const char *prefix,
                                                                char key[DATADIST_IPC_KEY_LEN],
                                                                datadist_ipc_export **out);

/// Adds `count` PIDs to the export's whitelist (a PID already there is not added twice).
DATADIST_IPC_API datadist_ipc_status datadist_ipc_export_allow(datadist_ipc_export *export_record,
                                                               const int32_t *pids, size_t count);

/// Closes the export: importers from now on are refused and an importer closing later sees
/// DATADIST_IPC_CLOSED. Frees the record. Returns how many importing processes, still alive, had not closed.
DATADIST_IPC_API int datadist_ipc_export_close(datadist_ipc_export *export_record);

/// Imports `key` as this process (getpid): maps the exported bytes read-write at a new address in this process.
/// On success *address, *size and *device (the exporter's device) describe the region.
DATADIST_IPC_API datadist_ipc_status datadist_ipc_import_open(const char *key, datadist_ipc_import **out, void **address,
                                                              uint64_t *size, int32_t *device);

/// Unmaps an import and frees the record, always; returns DATADIST_IPC_CLOSED when the exporter had closed the
/// key first (the wrong order), else DATADIST_IPC_OK.
DATADIST_IPC_API datadist_ipc_status datadist_ipc_import_close(datadist_ipc_import *import_record);

/// A short text for a status.
DATADIST_IPC_API const char *datadist_ipc_status_text(datadist_ipc_status status);

#ifdef __cplusplus
}
#endif
#endif
