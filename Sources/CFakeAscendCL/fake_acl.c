// A fake ACL runtime: every ascend_acl_table entry point over host memory, with the vendor's argument checks,
// per-thread current device, per-device capacity accounting and error codes. See CFakeAscendCL.h.
//
// Everything not exported is static, so a process that also links these objects statically (the test
// bundle does) cannot interpose on this instance's internals.
//
// Build switch: FAKE_ACL_OMIT_MEMSET leaves aclrtMemset out, giving a library that lacks one required symbol.
#include "include/CFakeAscendCL.h"
#include "../CAscendCL/include/CAscendCL.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

// MARK: - Call counters

#define COUNTED_SYMBOLS(_) \
    _(aclInit) _(aclFinalize) _(aclrtSetDevice) _(aclrtResetDevice) _(aclrtGetDeviceCount) \
    _(aclrtGetSocName) _(aclrtMalloc) _(aclrtFree) _(aclrtMallocHost) _(aclrtFreeHost) _(aclrtMemcpy) \
    _(aclrtMemset) _(aclrtGetMemInfo) _(aclrtSynchronizeDevice) _(aclrtGetDeviceInfo) \
    _(aclGetRecentErrMsg) _(dsmi_get_board_info)

enum {
#define SYMBOL_INDEX(name) INDEX_##name,
    COUNTED_SYMBOLS(SYMBOL_INDEX)
#undef SYMBOL_INDEX
    SYMBOL_COUNT
};

static const char *const symbol_names[SYMBOL_COUNT] = {
#define SYMBOL_NAME(name) #name,
    COUNTED_SYMBOLS(SYMBOL_NAME)
#undef SYMBOL_NAME
};

static uint64_t call_counts[SYMBOL_COUNT];

#define COUNT(name) __atomic_fetch_add(&call_counts[INDEX_##name], 1, __ATOMIC_RELAXED)

EXPORT uint64_t fake_acl_call_count(const char *symbol) {
    if (symbol == NULL) return 0;
    for (int i = 0; i < SYMBOL_COUNT; i++) {
        if (strcmp(symbol_names[i], symbol) == 0) return __atomic_load_n(&call_counts[i], __ATOMIC_RELAXED);
    }
    return 0;
}

EXPORT void fake_acl_reset_counts(void) {
    for (int i = 0; i < SYMBOL_COUNT; i++) __atomic_store_n(&call_counts[i], 0, __ATOMIC_RELAXED);
}

// MARK: - Configuration

enum config_key { KEY_DEVICE_COUNT, KEY_DEVICE_MEMORY, KEY_SOC_NAME, KEY_BOARD_ID, KEY_STUB_MODE, KEY_COUNT };

static const char *const key_names[KEY_COUNT] = {
    "FAKE_ACL_DEVICE_COUNT", "FAKE_ACL_DEVICE_MEMORY", "FAKE_ACL_SOC_NAME", "FAKE_ACL_BOARD_ID",
    "FAKE_ACL_STUB_MODE",
};

typedef struct config {
    uint32_t device_count;
    uint64_t device_memory;
    const char *soc_name;   // interned: valid for the life of the process
    uint32_t board_id;
    int stub_mode;
} config;

static const config defaults = {
    .device_count = 8, .device_memory = 1ull << 30, .soc_name = "Ascend910B4", .board_id = 0x40, .stub_mode = 0,
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *overrides[KEY_COUNT];   // NULL: use getenv; guarded by lock

typedef struct interned {
    struct interned *next;
    char text[];
} interned;
static interned *interned_names;   // never freed, so returned SoC names stay valid

static const char *intern(const char *text) {
    for (interned *entry = interned_names; entry != NULL; entry = entry->next) {
        if (strcmp(entry->text, text) == 0) return entry->text;
    }
    size_t length = strlen(text);
    interned *entry = malloc(sizeof *entry + length + 1);
    if (entry == NULL) return NULL;
    memcpy(entry->text, text, length + 1);
    entry->next = interned_names;
    interned_names = entry;
    return entry->text;
}

static int parse_unsigned(const char *text, int allow_hex, uint64_t max, uint64_t *out) {
    if (text == NULL || *text == '\0' || *text == '-' || *text == '+' || *text == ' ') return 0;
    int base = 10;
    if (allow_hex && (strncmp(text, "0x", 2) == 0 || strncmp(text, "0X", 2) == 0)) {
        base = 16;
        text += 2;
        if (*text == '\0') return 0;
    }
    char *end = NULL;
    unsigned long long value = strtoull(text, &end, base);
    if (end == NULL || *end != '\0' || value > max) return 0;
    *out = value;
    return 1;
}

// Applies `text` for `key` to `into`; returns 0 if the text is not a valid value (into unchanged).
static int apply(enum config_key key, const char *text, config *into) {
    uint64_t value = 0;
    switch (key) {
    case KEY_DEVICE_COUNT:
        if (!parse_unsigned(text, 0, FAKE_ACL_MAX_DEVICES, &value)) return 0;
        into->device_count = (uint32_t)value;
        return 1;
    case KEY_DEVICE_MEMORY:
        if (!parse_unsigned(text, 1, UINT64_MAX, &value)) return 0;
        into->device_memory = value;
        return 1;
    case KEY_SOC_NAME: {
        if (text == NULL || *text == '\0') return 0;
        const char *name = intern(text);
        if (name == NULL) return 0;
        into->soc_name = name;
        return 1;
    }
    case KEY_BOARD_ID:
        if (!parse_unsigned(text, 1, UINT32_MAX, &value)) return 0;
        into->board_id = (uint32_t)value;
        return 1;
    case KEY_STUB_MODE:
        if (text == NULL || strcmp(text, "0") == 0 || *text == '\0') into->stub_mode = 0;
        else if (strcmp(text, "1") == 0) into->stub_mode = 1;
        else return 0;
        return 1;
    case KEY_COUNT:
        break;
    }
    return 0;
}

// The effective configuration: overrides, then the environment, then defaults. Call with the lock held.
static config current_config(void) {
    config result = defaults;
    for (int key = 0; key < KEY_COUNT; key++) {
        const char *text = overrides[key] != NULL ? overrides[key] : getenv(key_names[key]);
        if (text != NULL) (void)apply((enum config_key)key, text, &result);   // invalid text keeps the default
    }
    return result;
}

EXPORT int fake_acl_configure(const char *key, const char *value) {
    if (key == NULL) return -1;
    int index = -1;
    for (int i = 0; i < KEY_COUNT; i++) {
        if (strcmp(key_names[i], key) == 0) index = i;
    }
    if (index < 0) return -1;
    pthread_mutex_lock(&lock);
    int result = 0;
    if (value == NULL) {
        free(overrides[index]);
        overrides[index] = NULL;
    } else {
        config probe = defaults;
        char *copy = strdup(value);
        if (copy == NULL || !apply((enum config_key)index, value, &probe)) {
            free(copy);
            result = -2;
        } else {
            free(overrides[index]);
            overrides[index] = copy;
        }
    }
    pthread_mutex_unlock(&lock);
    return result;
}

// MARK: - Runtime state (guarded by lock)

typedef struct allocation {
    uintptr_t base;
    size_t size;      // bytes asked for
    size_t charged;   // bytes counted against the device's capacity (0 for host memory)
    int32_t device;   // -1: host memory from aclrtMallocHost
} allocation;

static int initialized;
static int finalized_once;
static unsigned generation = 1;   // aclFinalize bumps it, voiding every thread's current device
static uint64_t device_used[FAKE_ACL_MAX_DEVICES];
static allocation *allocations;
static size_t allocation_count;
static size_t allocation_capacity;

static __thread int32_t current_device = -1;
static __thread unsigned current_generation;
static __thread char recent_error[256];
static __thread char recent_error_out[256];

// Records the message aclGetRecentErrMsg returns on this thread, and returns `code`.
__attribute__((format(printf, 2, 3))) static aclError fail(aclError code, const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(recent_error, sizeof recent_error, format, args);
    va_end(args);
    return code;
}

// Checks every aclError entry point shares. Call with the lock held.
static aclError enter(const config *cfg, int needs_device, const char *call) {
    if (cfg->stub_mode) return ACL_ERROR_COMPILING_STUB_MODE;
    if (!initialized) return fail(ACL_ERROR_UNINITIALIZE, "%s: aclInit has not been called", call);
    if (needs_device && (current_device < 0 || current_generation != generation)) {
        return fail(ACL_ERROR_RT_CONTEXT_NULL, "%s: no device is set on this thread (aclrtSetDevice)", call);
    }
    return ACL_SUCCESS;
}

static allocation *find_allocation(uintptr_t base, int device_memory) {
    for (size_t i = 0; i < allocation_count; i++) {
        allocation *entry = &allocations[i];
        if (entry->base == base && (entry->device >= 0) == device_memory) return entry;
    }
    return NULL;
}

static int record_allocation(allocation entry) {
    if (allocation_count == allocation_capacity) {
        size_t capacity = allocation_capacity == 0 ? 64 : allocation_capacity * 2;
        allocation *grown = realloc(allocations, capacity * sizeof *grown);
        if (grown == NULL) return 0;
        allocations = grown;
        allocation_capacity = capacity;
    }
    allocations[allocation_count++] = entry;
    return 1;
}

static void remove_allocation(allocation *entry) {
    free((void *)entry->base);
    *entry = allocations[--allocation_count];
}

enum location { LOCATION_HOST, LOCATION_DEVICE, LOCATION_STRADDLES };

// Where [address, address + count) lies: inside one live device allocation, clear of all of them, or across
// an allocation's edge. An empty range is located by its first byte.
static enum location locate(uintptr_t address, size_t count) {
    size_t length = count == 0 ? 1 : count;
    if (length > UINTPTR_MAX - address) return LOCATION_STRADDLES;
    for (size_t i = 0; i < allocation_count; i++) {
        const allocation *entry = &allocations[i];
        if (entry->device < 0) continue;
        uintptr_t end = entry->base + entry->size;
        int starts_inside = address >= entry->base && address < end;
        int overlaps = address < end && address + length > entry->base;
        if (starts_inside && length <= end - address) return LOCATION_DEVICE;
        if (overlaps) return LOCATION_STRADDLES;
    }
    return LOCATION_HOST;
}

static const char *location_name(enum location where) {
    return where == LOCATION_DEVICE ? "device" : "host";
}

// MARK: - Lifecycle and devices

EXPORT aclError aclInit(const char *configPath) {
    COUNT(aclInit);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = ACL_SUCCESS;
    if (cfg.stub_mode) {
        rc = ACL_ERROR_COMPILING_STUB_MODE;
    } else if (initialized) {
        rc = fail(ACL_ERROR_REPEAT_INITIALIZE, "aclInit: already initialized");
    } else if (configPath != NULL && *configPath != '\0') {
        FILE *file = fopen(configPath, "r");
        if (file == NULL) rc = fail(ACL_ERROR_INVALID_PARAM, "aclInit: cannot read config %s", configPath);
        else fclose(file);
    }
    if (rc == ACL_SUCCESS) initialized = 1;
    pthread_mutex_unlock(&lock);
    return rc;
}

EXPORT aclError aclFinalize(void) {
    COUNT(aclFinalize);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = ACL_SUCCESS;
    if (cfg.stub_mode) {
        rc = ACL_ERROR_COMPILING_STUB_MODE;
    } else if (!initialized) {
        rc = finalized_once ? fail(ACL_ERROR_REPEAT_FINALIZE, "aclFinalize: already finalized")
                            : fail(ACL_ERROR_UNINITIALIZE, "aclFinalize: aclInit has not been called");
    } else {
        initialized = 0;
        finalized_once = 1;
        generation++;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

static aclError check_device(const config *cfg, int32_t deviceId, const char *call) {
    if (deviceId < 0 || (uint32_t)deviceId >= cfg->device_count) {
        return fail(ACL_ERROR_RT_INVALID_DEVICEID, "%s: device %d is not in 0..<%u", call, deviceId,
                    cfg->device_count);
    }
    return ACL_SUCCESS;
}

EXPORT aclError aclrtSetDevice(int32_t deviceId) {
    COUNT(aclrtSetDevice);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = enter(&cfg, 0, "aclrtSetDevice");
    if (rc == ACL_SUCCESS) rc = check_device(&cfg, deviceId, "aclrtSetDevice");
    if (rc == ACL_SUCCESS) {
        current_device = deviceId;
        current_generation = generation;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

EXPORT aclError aclrtResetDevice(int32_t deviceId) {
    COUNT(aclrtResetDevice);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = enter(&cfg, 0, "aclrtResetDevice");
    if (rc == ACL_SUCCESS) rc = check_device(&cfg, deviceId, "aclrtResetDevice");
    if (rc == ACL_SUCCESS && current_device == deviceId) current_device = -1;
    pthread_mutex_unlock(&lock);
    return rc;
}

EXPORT aclError aclrtGetDeviceCount(uint32_t *count) {
    COUNT(aclrtGetDeviceCount);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = enter(&cfg, 0, "aclrtGetDeviceCount");
    if (rc == ACL_SUCCESS && count == NULL) rc = fail(ACL_ERROR_INVALID_PARAM, "aclrtGetDeviceCount: count is NULL");
    if (rc == ACL_SUCCESS) *count = cfg.device_count;
    pthread_mutex_unlock(&lock);
    return rc;
}

EXPORT const char *aclrtGetSocName(void) {
    COUNT(aclrtGetSocName);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    const char *name = NULL;
    if (!cfg.stub_mode) {
        if (initialized) name = cfg.soc_name;
        else (void)fail(ACL_ERROR_UNINITIALIZE, "aclrtGetSocName: aclInit has not been called");
    }
    pthread_mutex_unlock(&lock);
    return name;
}

EXPORT aclError aclrtGetDeviceInfo(uint32_t deviceId, int attr, int64_t *value) {
    COUNT(aclrtGetDeviceInfo);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = enter(&cfg, 0, "aclrtGetDeviceInfo");
    if (rc == ACL_SUCCESS && value == NULL) rc = fail(ACL_ERROR_INVALID_PARAM, "aclrtGetDeviceInfo: value is NULL");
    if (rc == ACL_SUCCESS && deviceId >= cfg.device_count) {
        rc = fail(ACL_ERROR_RT_INVALID_DEVICEID, "aclrtGetDeviceInfo: device %u is not in 0..<%u", deviceId,
                  cfg.device_count);
    }
    if (rc == ACL_SUCCESS) {
        if (attr == ACL_DEV_ATTR_TOTAL_GLOBAL_MEM_SIZE) {
            *value = (int64_t)cfg.device_memory;
        } else {
            rc = fail(ACL_ERROR_RT_FEATURE_NOT_SUPPORT, "aclrtGetDeviceInfo: attribute %d is not supported", attr);
        }
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

EXPORT aclError aclrtSynchronizeDevice(void) {
    COUNT(aclrtSynchronizeDevice);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = enter(&cfg, 1, "aclrtSynchronizeDevice");
    pthread_mutex_unlock(&lock);
    return rc;   // copies are synchronous here, so there is never anything to wait for
}

EXPORT const char *aclGetRecentErrMsg(void) {
    COUNT(aclGetRecentErrMsg);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    pthread_mutex_unlock(&lock);
    if (cfg.stub_mode || recent_error[0] == '\0') return NULL;
    memcpy(recent_error_out, recent_error, sizeof recent_error_out);
    recent_error[0] = '\0';   // the vendor call reports a message once
    return recent_error_out;
}

// drvError_t values (ascend_hal_error.h).
enum { DRV_ERROR_NONE = 0, DRV_ERROR_INVALID_DEVICE = 2, DRV_ERROR_INVALID_VALUE = 3 };

EXPORT int dsmi_get_board_info(int deviceId, ascend_dsmi_board_info *info) {
    COUNT(dsmi_get_board_info);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    int rc = DRV_ERROR_NONE;
    if (info == NULL) rc = DRV_ERROR_INVALID_VALUE;
    else if (deviceId < 0 || (uint32_t)deviceId >= cfg.device_count) rc = DRV_ERROR_INVALID_DEVICE;
    else *info = (ascend_dsmi_board_info){.board_id = cfg.board_id, .slot_id = (unsigned)deviceId};
    pthread_mutex_unlock(&lock);
    return rc;
}

// MARK: - Memory

static aclError device_malloc(const config *cfg, void **devPtr, size_t size) {
    if (devPtr == NULL) return fail(ACL_ERROR_INVALID_PARAM, "aclrtMalloc: devPtr is NULL");
    if (size == 0) return fail(ACL_ERROR_INVALID_PARAM, "aclrtMalloc: size is 0");
    uint64_t capacity = cfg->device_memory;
    uint64_t used = device_used[current_device];
    uint64_t free_bytes = used < capacity ? capacity - used : 0;
    // The runtime rounds up to 32 bytes and adds 32 more (A2/A3); all of it counts against the capacity.
    if (size > SIZE_MAX - 64 || ((size + 31) / 32) * 32 + 32 > free_bytes) {
        return fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMalloc: %zu bytes exceed the %llu free of %llu on device %d",
                    size, (unsigned long long)free_bytes, (unsigned long long)capacity, current_device);
    }
    size_t charged = ((size + 31) / 32) * 32 + 32;
    void *memory = NULL;
    if (posix_memalign(&memory, 64, charged) != 0) {
        return fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMalloc: host allocation of %zu bytes failed", charged);
    }
    allocation entry = {.base = (uintptr_t)memory, .size = size, .charged = charged, .device = current_device};
    if (!record_allocation(entry)) {
        free(memory);
        return fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMalloc: out of bookkeeping memory");
    }
    device_used[current_device] += charged;
    *devPtr = memory;
    return ACL_SUCCESS;
}

EXPORT aclError aclrtMalloc(void **devPtr, size_t size, int policy) {
    COUNT(aclrtMalloc);
    (void)policy;   // the runtime falls back to huge pages for unknown policies; placement is moot here
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = enter(&cfg, 1, "aclrtMalloc");
    if (rc == ACL_SUCCESS) rc = device_malloc(&cfg, devPtr, size);
    pthread_mutex_unlock(&lock);
    return rc;
}

EXPORT aclError aclrtFree(void *devPtr) {
    COUNT(aclrtFree);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = enter(&cfg, 1, "aclrtFree");
    if (rc == ACL_SUCCESS) {
        allocation *entry = devPtr == NULL ? NULL : find_allocation((uintptr_t)devPtr, 1);
        if (devPtr == NULL) {
            rc = fail(ACL_ERROR_INVALID_PARAM, "aclrtFree: devPtr is NULL");
        } else if (entry == NULL) {
            rc = fail(ACL_ERROR_RT_MEMORY_FREE, "aclrtFree: %p is not a live aclrtMalloc allocation", devPtr);
        } else {
            device_used[entry->device] -= entry->charged;
            remove_allocation(entry);
        }
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

EXPORT aclError aclrtMallocHost(void **hostPtr, size_t size) {
    COUNT(aclrtMallocHost);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = enter(&cfg, 1, "aclrtMallocHost");
    if (rc == ACL_SUCCESS && hostPtr == NULL) rc = fail(ACL_ERROR_INVALID_PARAM, "aclrtMallocHost: hostPtr is NULL");
    if (rc == ACL_SUCCESS && size == 0) rc = fail(ACL_ERROR_INVALID_PARAM, "aclrtMallocHost: size is 0");
    if (rc == ACL_SUCCESS) {
        void *memory = NULL;
        if (posix_memalign(&memory, 64, size) != 0) {
            rc = fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMallocHost: %zu bytes not available", size);
        } else if (!record_allocation((allocation){.base = (uintptr_t)memory, .size = size, .device = -1})) {
            free(memory);
            rc = fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMallocHost: out of bookkeeping memory");
        } else {
            *hostPtr = memory;
        }
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

EXPORT aclError aclrtFreeHost(void *hostPtr) {
    COUNT(aclrtFreeHost);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = enter(&cfg, 1, "aclrtFreeHost");
    if (rc == ACL_SUCCESS) {
        allocation *entry = hostPtr == NULL ? NULL : find_allocation((uintptr_t)hostPtr, 0);
        if (hostPtr == NULL) rc = fail(ACL_ERROR_INVALID_PARAM, "aclrtFreeHost: hostPtr is NULL");
        else if (entry == NULL) rc = fail(ACL_ERROR_RT_MEMORY_FREE, "aclrtFreeHost: %p is not ours", hostPtr);
        else remove_allocation(entry);
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

static const char *const kind_names[] = {
    "HOST_TO_HOST", "HOST_TO_DEVICE", "DEVICE_TO_HOST", "DEVICE_TO_DEVICE", "DEFAULT",
};

static aclError check_copy(void *dst, size_t destMax, const void *src, size_t count, int kind) {
    if (dst == NULL || src == NULL) {
        return fail(ACL_ERROR_INVALID_PARAM, "aclrtMemcpy: %s is NULL", dst == NULL ? "dst" : "src");
    }
    if (count > destMax) {
        return fail(ACL_ERROR_INVALID_PARAM, "aclrtMemcpy: count %zu exceeds destMax %zu", count, destMax);
    }
    if (kind < ACL_MEMCPY_HOST_TO_HOST || kind > ACL_MEMCPY_DEFAULT) {
        return fail(ACL_ERROR_INVALID_PARAM, "aclrtMemcpy: kind %d is not a memcpy kind", kind);
    }
    enum location to = locate((uintptr_t)dst, count);
    enum location from = locate((uintptr_t)src, count);
    if (to == LOCATION_STRADDLES || from == LOCATION_STRADDLES) {
        return fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtMemcpy: %s range of %zu bytes crosses a device allocation's end",
                    to == LOCATION_STRADDLES ? "dst" : "src", count);
    }
    if (kind == ACL_MEMCPY_DEFAULT) return ACL_SUCCESS;
    int from_device = kind == ACL_MEMCPY_DEVICE_TO_HOST || kind == ACL_MEMCPY_DEVICE_TO_DEVICE;
    int to_device = kind == ACL_MEMCPY_HOST_TO_DEVICE || kind == ACL_MEMCPY_DEVICE_TO_DEVICE;
    enum location want_from = from_device ? LOCATION_DEVICE : LOCATION_HOST;
    enum location want_to = to_device ? LOCATION_DEVICE : LOCATION_HOST;
    if (from != want_from || to != want_to) {
        return fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtMemcpy: kind %s but src is %s memory and dst is %s memory",
                    kind_names[kind], location_name(from), location_name(to));
    }
    return ACL_SUCCESS;
}

EXPORT aclError aclrtMemcpy(void *dst, size_t destMax, const void *src, size_t count, int kind) {
    COUNT(aclrtMemcpy);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = enter(&cfg, 1, "aclrtMemcpy");
    if (rc == ACL_SUCCESS) rc = check_copy(dst, destMax, src, count, kind);
    if (rc == ACL_SUCCESS && count > 0) memmove(dst, src, count);
    pthread_mutex_unlock(&lock);
    return rc;
}

#ifndef FAKE_ACL_OMIT_MEMSET
EXPORT aclError aclrtMemset(void *devPtr, size_t maxCount, int32_t value, size_t count) {
    COUNT(aclrtMemset);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = enter(&cfg, 1, "aclrtMemset");
    if (rc == ACL_SUCCESS && devPtr == NULL) rc = fail(ACL_ERROR_INVALID_PARAM, "aclrtMemset: devPtr is NULL");
    if (rc == ACL_SUCCESS && count > maxCount) {
        rc = fail(ACL_ERROR_INVALID_PARAM, "aclrtMemset: count %zu exceeds maxCount %zu", count, maxCount);
    }
    if (rc == ACL_SUCCESS && locate((uintptr_t)devPtr, count) == LOCATION_STRADDLES) {
        rc = fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtMemset: %zu bytes at %p cross a device allocation's end", count,
                  devPtr);
    }
    if (rc == ACL_SUCCESS && count > 0) memset(devPtr, value, count);
    pthread_mutex_unlock(&lock);
    return rc;
}
#endif

EXPORT aclError aclrtGetMemInfo(int attr, size_t *freeBytes, size_t *totalBytes) {
    COUNT(aclrtGetMemInfo);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = enter(&cfg, 1, "aclrtGetMemInfo");
    if (rc == ACL_SUCCESS && (freeBytes == NULL || totalBytes == NULL)) {
        rc = fail(ACL_ERROR_INVALID_PARAM, "aclrtGetMemInfo: %s is NULL", freeBytes == NULL ? "free" : "total");
    }
    // aclrtMemAttr 0..17; the DDR kinds (0, 2, 3, 6, 7) report nothing: an A2 device has HBM only.
    if (rc == ACL_SUCCESS && (attr < 0 || attr > 17)) {
        rc = fail(ACL_ERROR_INVALID_PARAM, "aclrtGetMemInfo: attr %d is not an aclrtMemAttr", attr);
    }
    if (rc == ACL_SUCCESS) {
        int ddr = attr == ACL_DDR_MEM || attr == 2 || attr == 3 || attr == 6 || attr == 7;
        uint64_t total = ddr ? 0 : cfg.device_memory;
        uint64_t used = device_used[current_device];
        *totalBytes = (size_t)total;
        *freeBytes = (size_t)(total > used ? total - used : 0);
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

// Compile-time check that every entry point has the prototype the loader's table expects.
__attribute__((unused)) static const ascend_acl_table prototype_check = {
    .aclInit = aclInit,
    .aclFinalize = aclFinalize,
    .aclrtSetDevice = aclrtSetDevice,
    .aclrtResetDevice = aclrtResetDevice,
    .aclrtGetDeviceCount = aclrtGetDeviceCount,
    .aclrtGetSocName = aclrtGetSocName,
    .aclrtMalloc = aclrtMalloc,
    .aclrtFree = aclrtFree,
    .aclrtMallocHost = aclrtMallocHost,
    .aclrtFreeHost = aclrtFreeHost,
    .aclrtMemcpy = aclrtMemcpy,
#ifndef FAKE_ACL_OMIT_MEMSET
    .aclrtMemset = aclrtMemset,
#endif
    .aclrtGetMemInfo = aclrtGetMemInfo,
    .aclrtSynchronizeDevice = aclrtSynchronizeDevice,
    .aclrtGetDeviceInfo = aclrtGetDeviceInfo,
    .aclGetRecentErrMsg = aclGetRecentErrMsg,
    .dsmi_get_board_info = dsmi_get_board_info,
};
