// The only dlopen/dlsym in DataDist.
#include "CAscendCL.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ascend_library {
    void *handle;
    void *dsmi_handle;   // libdrvdsmi_host.so when the board id is not exported by the ACL library itself
    char *path;
    ascend_acl_table table;
};

#define REQUIRED_SYMBOLS(_) \
    _(aclInit) _(aclFinalize) _(aclrtSetDevice) _(aclrtResetDevice) _(aclrtGetDeviceCount) \
    _(aclrtGetSocName) _(aclrtMalloc) _(aclrtFree) _(aclrtMallocHost) _(aclrtFreeHost) _(aclrtMemcpy) \
    _(aclrtMemset) _(aclrtGetMemInfo) _(aclrtSynchronizeDevice)

#define OPTIONAL_SYMBOLS(_) _(aclrtGetDeviceInfo) _(aclGetRecentErrMsg) _(dsmi_get_board_info) \
    _(aclrtIpcMemGetExportKey) _(aclrtIpcMemSetImportPid) _(aclrtIpcMemImportByKey) _(aclrtIpcMemClose) \
    _(aclrtDeviceGetBareTgid) _(aclrtDeviceCanAccessPeer) _(aclrtDeviceEnablePeerAccess) _(aclrtCreateStream) \
    _(aclrtDestroyStream) _(aclrtSynchronizeStream) _(aclrtMemcpyAsync) _(aclrtHostRegister) _(aclrtHostUnregister)

static void set_detail(char *detail, size_t len, const char *text) {
    if (detail == NULL || len == 0) return;
    snprintf(detail, len, "%s", text ? text : "unknown error");
}

ascend_load_status ascend_library_open(const char *path, ascend_library **out, char *detail, size_t detail_len) {
    *out = NULL;
    dlerror();
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        set_detail(detail, detail_len, dlerror());
        return ASCEND_LOAD_DLOPEN_FAILED;
    }
    ascend_library *lib = calloc(1, sizeof *lib);
    if (lib == NULL) {
        dlclose(handle);
        set_detail(detail, detail_len, "out of memory");
        return ASCEND_LOAD_DLOPEN_FAILED;
    }
    lib->handle = handle;
#define RESOLVE_REQUIRED(name) \
    *(void **)(&lib->table.name) = dlsym(handle, #name); \
    if (lib->table.name == NULL) { \
        set_detail(detail, detail_len, #name); \
        dlclose(handle); \
        free(lib); \
        return ASCEND_LOAD_MISSING_SYMBOL; \
    }
    REQUIRED_SYMBOLS(RESOLVE_REQUIRED)
#undef RESOLVE_REQUIRED
#define RESOLVE_OPTIONAL(name) *(void **)(&lib->table.name) = dlsym(handle, #name);
    OPTIONAL_SYMBOLS(RESOLVE_OPTIONAL)
#undef RESOLVE_OPTIONAL
    if (lib->table.dsmi_get_board_info == NULL) {
        // The driver's DSMI library carries the board id on real hosts; its absence only loses the board id.
        lib->dsmi_handle = dlopen("libdrvdsmi_host.so", RTLD_NOW | RTLD_LOCAL);
        if (lib->dsmi_handle != NULL) {
            *(void **)(&lib->table.dsmi_get_board_info) = dlsym(lib->dsmi_handle, "dsmi_get_board_info");
        }
    }
    lib->path = strdup(path);
    if (lib->path == NULL) {
        if (lib->dsmi_handle != NULL) dlclose(lib->dsmi_handle);
        dlclose(handle);
        free(lib);
        set_detail(detail, detail_len, "out of memory");
        return ASCEND_LOAD_DLOPEN_FAILED;
    }
    *out = lib;
    return ASCEND_LOAD_OK;
}

const ascend_acl_table *ascend_library_table(const ascend_library *library) { return &library->table; }

const char *ascend_library_path(const ascend_library *library) { return library->path; }

void *ascend_library_lookup(const ascend_library *library, const char *symbol) {
    return dlsym(library->handle, symbol);
}

int ascend_library_present(const char *name, char *detail, size_t detail_len) {
    dlerror();
    void *handle = dlopen(name, RTLD_LAZY | RTLD_LOCAL);
    if (handle == NULL) {
        set_detail(detail, detail_len, dlerror());
        return 0;
    }
    dlclose(handle);
    set_detail(detail, detail_len, "");
    return 1;
}

static __thread const ascend_library *bound_library;
static __thread int32_t bound_device = -1;

aclError ascend_bind_device(const ascend_library *library, int32_t device) {
    if (bound_library == library && bound_device == device) return ACL_SUCCESS;
    aclError rc = library->table.aclrtSetDevice(device);
    if (rc == ACL_SUCCESS) {
        bound_library = library;
        bound_device = device;
    }
    return rc;
}
