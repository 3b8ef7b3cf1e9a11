// A fake Ascend ACL runtime over host memory, built as the dynamic library libFakeAscendCL.so. It exports
// every entry point of CAscendCL's ascend_acl_table (the ACL runtime subset plus dsmi_get_board_info) with the
// vendor's argument checks and error codes, and a few test hooks declared here.
//
// Configuration: each key below is read with getenv at every call unless fake_acl_configure overrode it.
//   FAKE_ACL_DEVICE_COUNT   devices reported (default 8, at most FAKE_ACL_MAX_DEVICES)
//   FAKE_ACL_DEVICE_MEMORY  bytes of device memory per device (default 1 GiB)
//   FAKE_ACL_SOC_NAME       what aclrtGetSocName returns (default "Ascend910B4")
//   FAKE_ACL_BOARD_ID       dsmi board id, decimal or 0x hex (default 0x40, an Atlas 800I A2)
//   FAKE_ACL_STUB_MODE      "1": behave like CANN's stub libraries (every aclError call returns 100039,
//                           aclrtGetSocName returns NULL)
//   FAKE_ACL_IPC            "0": a chip without IPC (the aclrtIpcMem* calls return 207000); default "1"
//   FAKE_ACL_PEER_ACCESS    "0": no device pair can access each other; default "1" (every pair)
//
// Device sharing as the vendor documents it: device memory is a memfd per aclrtMalloc, so a key from
// aclrtIpcMemGetExportKey (65 bytes, page-aligned range inside one allocation) imported by another process of
// the same user maps the same bytes; the importer's PID must be whitelisted with aclrtIpcMemSetImportPid unless
// the export used DISABLE_PID_VALIDATION; an importer closing after the exporter gets 507899; aclrtFree refuses
// memory still exported. Asynchronous copies queue on their stream and run at aclrtSynchronizeStream (or
// aclrtSynchronizeDevice, aclrtDestroyStream); their host side must be pinned. Codes the vendor leaves
// undocumented (a PID not whitelisted, a closed key) are 507899, a driver failure; an unaligned range is 107008.
// Copies stand in for the device's DMA engine as the emulator's do: device-to-device copies of at least 128 KiB
// between separate buffers use streaming stores (the emulator's routine), the others memmove.
//
// Each dlopen'ed copy of the library (a copy at another path is a separate instance) has its own state.
// A process that links this target statically AND dlopens the library must look these hooks up with dlsym
// on the library's handle: calling them directly reaches the statically linked instance instead.
#ifndef DATADIST_CFAKEASCENDCL_H
#define DATADIST_CFAKEASCENDCL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The most devices FAKE_ACL_DEVICE_COUNT may ask for.
#define FAKE_ACL_MAX_DEVICES 64

/// How many times `symbol` (an exported ACL or DSMI entry point) was called since load or the last reset,
/// failing calls included; 0 for a name the fake does not export.
uint64_t fake_acl_call_count(const char *symbol);

/// Sets every call counter to 0.
void fake_acl_reset_counts(void);

/// Overrides one configuration key (see above) for this instance; a NULL value returns the key to its getenv
/// default. Returns 0 on success, -1 for an unknown key, -2 for a value the key cannot take (nothing changes).
int fake_acl_configure(const char *key, const char *value);

/// Live objects of one kind in this instance: "exports", "imports" (keys open here), "streams", "device",
/// "host", "registrations" (allocations); 0 for another name.
uint64_t fake_acl_open_count(const char *what);

/// Bytes copied so far (since load or the last reset) by aclrtMemcpy and by the aclrtMemcpyAsync copies streams
/// ran, for one aclrtMemcpyKind (0 host to host, 1 host to device, 2 device to host, 3 device to device, 4
/// default); 0 for another kind.
uint64_t fake_acl_copied_bytes(int kind);

/// Function-pointer types of the hooks, for callers that resolve them with dlsym.
typedef uint64_t (*fake_acl_call_count_fn)(const char *symbol);
typedef void (*fake_acl_reset_counts_fn)(void);
typedef int (*fake_acl_configure_fn)(const char *key, const char *value);
typedef uint64_t (*fake_acl_open_count_fn)(const char *what);
typedef uint64_t (*fake_acl_copied_bytes_fn)(int kind);

#ifdef __cplusplus
}
#endif
#endif
