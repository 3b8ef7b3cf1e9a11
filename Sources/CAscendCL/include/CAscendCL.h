// The ACL subset DataDist needs and the function-pointer table that dlopen/dlsym fill (loader.c). Values follow
// CANN's acl_base_rt.h / acl_rt.h. Linux system calls live in CLinuxSupport.
#ifndef DATADIST_CASCENDCL_H
#define DATADIST_CASCENDCL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int aclError;

// Error codes (acl_base_rt.h, rt_error_codes.h).
enum {
    ACL_SUCCESS = 0,
    ACL_ERROR_INVALID_PARAM = 100000,
    ACL_ERROR_UNINITIALIZE = 100001,
    ACL_ERROR_REPEAT_INITIALIZE = 100002,
    ACL_ERROR_REPEAT_FINALIZE = 100037,
    ACL_ERROR_COMPILING_STUB_MODE = 100039,
    ACL_ERROR_BAD_ALLOC = 200000,
    ACL_ERROR_INVALID_DEVICE = 200002,
    ACL_ERROR_RT_PARAM_INVALID = 107000,
    ACL_ERROR_RT_INVALID_DEVICEID = 107001,
    ACL_ERROR_RT_CONTEXT_NULL = 107002,
    ACL_ERROR_RT_ADDR_UNALIGNED = 107008,
    ACL_ERROR_RT_FEATURE_NOT_SUPPORT = 207000,
    ACL_ERROR_RT_MEMORY_ALLOCATION = 207001,
    ACL_ERROR_RT_MEMORY_FREE = 207002,
    ACL_ERROR_RT_NO_DEVICE = 207004,
    ACL_ERROR_RT_INTERNAL_ERROR = 507000,
    ACL_ERROR_RT_DEVICE_MEM_ERROR = 507053,
    ACL_ERROR_RT_DRV_INTERNAL_ERROR = 507899,
};

// aclrtIpcMem* flags and key length (acl_rt.h, CANN 8.3).
#define ACL_RT_IPC_MEM_EXPORT_FLAG_DEFAULT 0x0UL
#define ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION 0x1UL
#define ACL_RT_IPC_MEM_IMPORT_FLAG_DEFAULT 0x0UL
#define ACL_RT_IPC_MEM_IMPORT_FLAG_ENABLE_PEER_ACCESS 0x1UL
enum { ACL_IPC_KEY_LEN = 65 };

// aclrtHostRegisterType
enum { ACL_HOST_REGISTER_MAPPED = 0 };

typedef void *aclrtStream;

// aclrtMemcpyKind
enum {
    ACL_MEMCPY_HOST_TO_HOST = 0,
    ACL_MEMCPY_HOST_TO_DEVICE = 1,
    ACL_MEMCPY_DEVICE_TO_HOST = 2,
    ACL_MEMCPY_DEVICE_TO_DEVICE = 3,
    ACL_MEMCPY_DEFAULT = 4,
};

// aclrtMemMallocPolicy (the version-stable subset)
enum {
    ACL_MEM_MALLOC_HUGE_FIRST = 0,
    ACL_MEM_MALLOC_HUGE_ONLY = 1,
    ACL_MEM_MALLOC_NORMAL_ONLY = 2,
};

// aclrtMemAttr (the version-stable subset)
enum {
    ACL_DDR_MEM = 0,
    ACL_HBM_MEM = 1,
};

// aclrtDevAttr values used for identity (newer CANN; optional)
enum {
    ACL_DEV_ATTR_TOTAL_GLOBAL_MEM_SIZE = 301,
    ACL_DEV_ATTR_MAINBOARD_ID = 407,
};

/// DSMI board information (dsmi_common_interface.h); the board id tells Atlas products apart.
typedef struct ascend_dsmi_board_info {
    unsigned int board_id;
    unsigned int pcb_id;
    unsigned int bom_id;
    unsigned int slot_id;
} ascend_dsmi_board_info;

/// Every entry point DataDist calls. Required entries are non-NULL after a successful load; optional ones
/// (marked) may be NULL.
typedef struct ascend_acl_table {
    aclError (*aclInit)(const char *configPath);
    aclError (*aclFinalize)(void);
    aclError (*aclrtSetDevice)(int32_t deviceId);
    aclError (*aclrtResetDevice)(int32_t deviceId);
    aclError (*aclrtGetDeviceCount)(uint32_t *count);
    const char *(*aclrtGetSocName)(void);
    aclError (*aclrtMalloc)(void **devPtr, size_t size, int policy);
    aclError (*aclrtFree)(void *devPtr);
    aclError (*aclrtMallocHost)(void **hostPtr, size_t size);
    aclError (*aclrtFreeHost)(void *hostPtr);
    aclError (*aclrtMemcpy)(void *dst, size_t destMax, const void *src, size_t count, int kind);
    aclError (*aclrtMemset)(void *devPtr, size_t maxCount, int32_t value, size_t count);
    aclError (*aclrtGetMemInfo)(int attr, size_t *freeBytes, size_t *totalBytes);
    aclError (*aclrtSynchronizeDevice)(void);
    // optional
    aclError (*aclrtGetDeviceInfo)(uint32_t deviceId, int attr, int64_t *value);
    const char *(*aclGetRecentErrMsg)(void);
    int (*dsmi_get_board_info)(int deviceId, ascend_dsmi_board_info *info);
    // optional: device sharing (IPC, peer access, streams, host registration); see ascend_sharing_symbols
    aclError (*aclrtIpcMemGetExportKey)(void *devPtr, size_t size, char *key, size_t len, uint64_t flags);
    aclError (*aclrtIpcMemSetImportPid)(const char *key, int32_t *pid, size_t num);
    aclError (*aclrtIpcMemImportByKey)(void **devPtr, const char *key, uint64_t flags);
    aclError (*aclrtIpcMemClose)(const char *key);
    aclError (*aclrtDeviceGetBareTgid)(int32_t *pid);
    aclError (*aclrtDeviceCanAccessPeer)(int32_t *canAccessPeer, int32_t deviceId, int32_t peerDeviceId);
    aclError (*aclrtDeviceEnablePeerAccess)(int32_t peerDeviceId, uint32_t flags);
    aclError (*aclrtCreateStream)(aclrtStream *stream);
    aclError (*aclrtDestroyStream)(aclrtStream stream);
    aclError (*aclrtSynchronizeStream)(aclrtStream stream);
    aclError (*aclrtMemcpyAsync)(void *dst, size_t destMax, const void *src, size_t count, int kind,
                                 aclrtStream stream);
    aclError (*aclrtHostRegister)(void *ptr, uint64_t size, int type, void **devPtr);
    aclError (*aclrtHostUnregister)(void *ptr);
} ascend_acl_table;

typedef enum ascend_load_status {
    ASCEND_LOAD_OK = 0,
    ASCEND_LOAD_DLOPEN_FAILED = 1,    // detail: dlerror()
    ASCEND_LOAD_MISSING_SYMBOL = 2,   // detail: the name of the first missing required symbol
} ascend_load_status;

typedef struct ascend_library ascend_library;

/// Loads `path` and resolves every required symbol, or none: on failure nothing stays loaded and `detail`
/// (NUL-terminated, at most `detail_len` bytes) says why. A loaded library is never unloaded.
ascend_load_status ascend_library_open(const char *path, ascend_library **out, char *detail, size_t detail_len);

const ascend_acl_table *ascend_library_table(const ascend_library *library);
const char *ascend_library_path(const ascend_library *library);

/// dlsym on the loaded library, for optional or diagnostic symbols; NULL if absent.
void *ascend_library_lookup(const ascend_library *library, const char *symbol);

/// Whether `name` loads with dlopen (then closed again at once: detection only, nothing is called). Returns 1,
/// or 0 with dlerror's text in `detail`.
int ascend_library_present(const char *name, char *detail, size_t detail_len);

/// Makes `device` current on the calling thread (aclrtSetDevice) unless it already is; ACL keeps the
/// current device per thread.
aclError ascend_bind_device(const ascend_library *library, int32_t device);

#ifdef __cplusplus
}
#endif
#endif
