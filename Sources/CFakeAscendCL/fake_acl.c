// A fake ACL runtime: every ascend_acl_table entry point over host memory, with the vendor's argument checks,
// per-thread current device, per-device capacity accounting and error codes. See CFakeAscendCL.h.
//
// Everything not exported is static, so a process that also links these objects statically (the test
// bundle does) cannot interpose on this instance's internals.
//
// Build switches: FAKE_ACL_OMIT_MEMSET leaves aclrtMemset out, giving a library that lacks one required symbol;
// FAKE_ACL_OMIT_IPC leaves the five aclrtIpcMem* / aclrtDeviceGetBareTgid entry points out (a CANN before 8.3).
//
// Device memory is one memfd per aclrtMalloc, mapped shared, so that another process importing an exported key
// (the protocol of CLinuxSupport's ipc_share.c, compiled in here privately) maps the same bytes.
//
// Large device-to-device copies stand in for the device's DMA engine as the emulator's do: streaming stores
// (CLinuxSupport's streaming_copy.c, compiled in here privately, the routine of DeviceRuntime's HostCopy).
#include "include/CFakeAscendCL.h"
#include "../CAscendCL/include/CAscendCL.h"

#define DATADIST_IPC_API __attribute__((unused)) static
#include "../CLinuxSupport/ipc_share.c"
#define DATADIST_COPY_API __attribute__((unused)) static
#include "../CLinuxSupport/streaming_copy.c"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

// MARK: - Call counters

#define COUNTED_SYMBOLS(_) \
    _(aclInit) _(aclFinalize) _(aclrtSetDevice) _(aclrtResetDevice) _(aclrtGetDeviceCount) \
    _(aclrtGetSocName) _(aclrtMalloc) _(aclrtFree) _(aclrtMallocHost) _(aclrtFreeHost) _(aclrtMemcpy) \
    _(aclrtMemset) _(aclrtGetMemInfo) _(aclrtSynchronizeDevice) _(aclrtGetDeviceInfo) \
    _(aclGetRecentErrMsg) _(dsmi_get_board_info) _(aclrtIpcMemGetExportKey) _(aclrtIpcMemSetImportPid) \
    _(aclrtIpcMemImportByKey) _(aclrtIpcMemClose) _(aclrtDeviceGetBareTgid) _(aclrtDeviceCanAccessPeer) \
    _(aclrtDeviceEnablePeerAccess) _(aclrtCreateStream) _(aclrtDestroyStream) _(aclrtSynchronizeStream) \
    _(aclrtMemcpyAsync) _(aclrtHostRegister) _(aclrtHostUnregister)

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

// Bytes copied by aclrtMemcpy and by the queued aclrtMemcpyAsync copies a stream ran, per aclrtMemcpyKind.
static uint64_t copied_bytes[5];

static void count_copied(int kind, size_t count) {
    if (kind >= 0 && kind < 5) __atomic_fetch_add(&copied_bytes[kind], (uint64_t)count, __ATOMIC_RELAXED);
}

EXPORT uint64_t fake_acl_copied_bytes(int kind) {
    return kind >= 0 && kind < 5 ? __atomic_load_n(&copied_bytes[kind], __ATOMIC_RELAXED) : 0;
}

EXPORT void fake_acl_reset_counts(void) {
    for (int i = 0; i < SYMBOL_COUNT; i++) __atomic_store_n(&call_counts[i], 0, __ATOMIC_RELAXED);
    for (int i = 0; i < 5; i++) __atomic_store_n(&copied_bytes[i], 0, __ATOMIC_RELAXED);
}

// MARK: - Configuration

enum config_key {
    KEY_DEVICE_COUNT, KEY_DEVICE_MEMORY, KEY_SOC_NAME, KEY_BOARD_ID, KEY_STUB_MODE, KEY_IPC, KEY_PEER_ACCESS,
    KEY_COUNT
};

static const char *const key_names[KEY_COUNT] = {
    "FAKE_ACL_DEVICE_COUNT", "FAKE_ACL_DEVICE_MEMORY", "FAKE_ACL_SOC_NAME", "FAKE_ACL_BOARD_ID",
    "FAKE_ACL_STUB_MODE", "FAKE_ACL_IPC", "FAKE_ACL_PEER_ACCESS",
};

typedef struct config {
    uint32_t device_count;
    uint64_t device_memory;
    const char *soc_name;   // interned: valid for the life of the process
    uint32_t board_id;
    int stub_mode;
    int ipc;           // 0: a chip without IPC (the aclrtIpcMem* calls return 207000)
    int peer_access;   // 0: no device pair can access each other
} config;

static const config defaults = {
    .device_count = 8, .device_memory = 1ull << 30, .soc_name = "Ascend910B4", .board_id = 0x40, .stub_mode = 0,
    .ipc = 1, .peer_access = 1,
};

// "0" or "1"; returns 0 (and leaves *out alone) for anything else.
static int parse_flag(const char *text, int *out) {
    if (text == NULL) return 0;
    if (strcmp(text, "0") == 0) *out = 0;
    else if (strcmp(text, "1") == 0) *out = 1;
    else return 0;
    return 1;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
// Held shared by each synchronous copy while its bytes move outside `lock`, so that copies on several threads run
// at once as on a device; taken exclusively (under `lock`) before any memory is unmapped, so nothing is unmapped
// under a copy.
static pthread_rwlock_t copying = PTHREAD_RWLOCK_INITIALIZER;
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
    case KEY_IPC:
        return parse_flag(text, &into->ipc);
    case KEY_PEER_ACCESS:
        return parse_flag(text, &into->peer_access);
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

enum allocation_kind {
    KIND_DEVICE,       // aclrtMalloc: a memfd mapped shared
    KIND_HOST,         // aclrtMallocHost: pinned host memory
    KIND_IMPORTED,     // aclrtIpcMemImportByKey: another process's device memory mapped here
    KIND_REGISTERED,   // aclrtHostRegister: the caller's host memory, usable by the device at the same address
};

typedef struct allocation {
    uintptr_t base;
    size_t size;      // bytes asked for
    size_t charged;   // bytes counted against the device's capacity (0 unless KIND_DEVICE)
    int32_t device;   // the device it belongs to (the importing device for KIND_IMPORTED); -1 for host kinds
    enum allocation_kind kind;
    int fd;              // KIND_DEVICE: the memfd
    size_t mapped;       // KIND_DEVICE: bytes mapped (whole pages)
    unsigned exports;    // KIND_DEVICE: keys exported from it and not yet closed
    int cross_device;    // KIND_IMPORTED: exported from another device than the importing one
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

static allocation *find_allocation(uintptr_t base, enum allocation_kind kind) {
    for (size_t i = 0; i < allocation_count; i++) {
        allocation *entry = &allocations[i];
        if (entry->base == base && entry->kind == kind) return entry;
    }
    return NULL;
}

static int is_device_kind(enum allocation_kind kind) { return kind == KIND_DEVICE || kind == KIND_IMPORTED; }

// The device-memory allocation (own or imported) holding all of [address, address + count), or NULL.
static allocation *device_allocation_containing(uintptr_t address, size_t count) {
    size_t length = count == 0 ? 1 : count;
    for (size_t i = 0; i < allocation_count; i++) {
        allocation *entry = &allocations[i];
        if (!is_device_kind(entry->kind)) continue;
        if (address >= entry->base && address - entry->base < entry->size && length <= entry->size - (address - entry->base)) {
            return entry;
        }
    }
    return NULL;
}

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

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

// Drops the record and releases what the fake itself allocated (device memfds, pinned host memory); imported
// and registered memory is released by their own calls.
static void remove_allocation(allocation *entry) {
    // Copies start only under `lock`, which the caller holds: once this barrier passes, none is in flight.
    pthread_rwlock_wrlock(&copying);
    pthread_rwlock_unlock(&copying);
    if (entry->kind == KIND_DEVICE) {
        munmap((void *)entry->base, entry->mapped);
        close(entry->fd);
    } else if (entry->kind == KIND_HOST) {
        free((void *)entry->base);
    }
    *entry = allocations[--allocation_count];
}

enum location { LOCATION_HOST, LOCATION_DEVICE, LOCATION_REGISTERED, LOCATION_STRADDLES };

// Where [address, address + count) lies: inside one live device allocation (own or imported), inside one host
// registration, clear of all of them, or across a device allocation's edge. An empty range is located by its
// first byte.
static enum location locate(uintptr_t address, size_t count) {
    size_t length = count == 0 ? 1 : count;
    if (length > UINTPTR_MAX - address) return LOCATION_STRADDLES;
    for (size_t i = 0; i < allocation_count; i++) {
        const allocation *entry = &allocations[i];
        if (!is_device_kind(entry->kind)) continue;
        uintptr_t end = entry->base + entry->size;
        int starts_inside = address >= entry->base && address < end;
        int overlaps = address < end && address + length > entry->base;
        if (starts_inside && length <= end - address) return LOCATION_DEVICE;
        if (overlaps) return LOCATION_STRADDLES;
    }
    for (size_t i = 0; i < allocation_count; i++) {
        const allocation *entry = &allocations[i];
        if (entry->kind != KIND_REGISTERED) continue;
        if (address >= entry->base && address - entry->base < entry->size && length <= entry->size - (address - entry->base)) {
            return LOCATION_REGISTERED;
        }
    }
    return LOCATION_HOST;
}

// Registered host memory is reachable both as host memory and, at the same address, by the device.
static int location_matches(enum location where, enum location wanted) {
    return where == wanted || (where == LOCATION_REGISTERED && wanted != LOCATION_STRADDLES);
}

static const char *location_name(enum location where) {
    return where == LOCATION_DEVICE ? "device" : where == LOCATION_REGISTERED ? "registered host" : "host";
}

// Pinned host memory: inside one aclrtMallocHost allocation or one registration (what async copies need).
static int is_pinned(uintptr_t address, size_t count) {
    size_t length = count == 0 ? 1 : count;
    for (size_t i = 0; i < allocation_count; i++) {
        const allocation *entry = &allocations[i];
        if (entry->kind != KIND_HOST && entry->kind != KIND_REGISTERED) continue;
        if (address >= entry->base && address - entry->base < entry->size && length <= entry->size - (address - entry->base)) {
            return 1;
        }
    }
    return 0;
}

static aclError drain_device(int32_t device);

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
    if (rc == ACL_SUCCESS) rc = drain_device(current_device);
    pthread_mutex_unlock(&lock);
    return rc;
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
    // Shareable memory: a memfd of whole pages mapped shared (page-aligned, so 64-byte aligned as ACL's).
    size_t mapped = (charged + page_size() - 1) / page_size() * page_size();
    int fd = memfd_create("fake-acl-device", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)mapped) != 0) {
        if (fd >= 0) close(fd);
        return fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMalloc: a memfd of %zu bytes failed", mapped);
    }
    void *memory = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (memory == MAP_FAILED) {
        close(fd);
        return fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMalloc: mapping %zu bytes failed", mapped);
    }
    allocation entry = {
        .base = (uintptr_t)memory, .size = size, .charged = charged, .device = current_device, .kind = KIND_DEVICE,
        .fd = fd, .mapped = mapped,
    };
    if (!record_allocation(entry)) {
        munmap(memory, mapped);
        close(fd);
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
        allocation *entry = devPtr == NULL ? NULL : find_allocation((uintptr_t)devPtr, KIND_DEVICE);
        if (devPtr == NULL) {
            rc = fail(ACL_ERROR_INVALID_PARAM, "aclrtFree: devPtr is NULL");
        } else if (entry == NULL) {
            rc = fail(ACL_ERROR_RT_MEMORY_FREE, "aclrtFree: %p is not a live aclrtMalloc allocation", devPtr);
        } else if (entry->exports > 0) {
            rc = fail(ACL_ERROR_RT_MEMORY_FREE, "aclrtFree: %p is still exported by %u key(s); aclrtIpcMemClose them first",
                      devPtr, entry->exports);
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
        } else if (!record_allocation(
                       (allocation){.base = (uintptr_t)memory, .size = size, .device = -1, .kind = KIND_HOST, .fd = -1})) {
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
        allocation *entry = hostPtr == NULL ? NULL : find_allocation((uintptr_t)hostPtr, KIND_HOST);
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
    if (!location_matches(from, want_from) || !location_matches(to, want_to)) {
        return fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtMemcpy: kind %s but src is %s memory and dst is %s memory",
                    kind_names[kind], location_name(from), location_name(to));
    }
    return ACL_SUCCESS;
}

// The vendor's rule for memory imported from another device: no synchronous copies, and no host side at all.
static aclError check_cross_device(const void *dst, const void *src, size_t count, int kind, int async) {
    const allocation *to = device_allocation_containing((uintptr_t)dst, count);
    const allocation *from = device_allocation_containing((uintptr_t)src, count);
    int cross = (to != NULL && to->cross_device) || (from != NULL && from->cross_device);
    if (!cross) return ACL_SUCCESS;
    if (!async) {
        return fail(ACL_ERROR_RT_PARAM_INVALID,
                    "aclrtMemcpy: memory imported from another device takes only asynchronous copies (aclrtMemcpyAsync)");
    }
    if (kind != ACL_MEMCPY_DEVICE_TO_DEVICE) {
        return fail(ACL_ERROR_RT_PARAM_INVALID,
                    "aclrtMemcpyAsync: memory imported from another device takes only device-to-device copies");
    }
    return ACL_SUCCESS;
}

// Moves the bytes of a checked copy. Device-to-device copies of at least 128 KiB between separate buffers use
// streaming stores, as a DMA engine writes and as the emulator's copies do (DeviceRuntime's HostCopy, the same
// threshold); everything else is a memmove.
static void move_bytes(void *dst, const void *src, size_t count, int kind) {
    uintptr_t to = (uintptr_t)dst, from = (uintptr_t)src;
    int overlaps = to < from + count && from < to + count;
    if (kind == ACL_MEMCPY_DEVICE_TO_DEVICE && count >= ((size_t)128 << 10) && !overlaps) {
        datadist_copy_streaming(dst, src, count);
    } else {
        memmove(dst, src, count);
    }
}

EXPORT aclError aclrtMemcpy(void *dst, size_t destMax, const void *src, size_t count, int kind) {
    COUNT(aclrtMemcpy);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = enter(&cfg, 1, "aclrtMemcpy");
    if (rc == ACL_SUCCESS) rc = check_copy(dst, destMax, src, count, kind);
    if (rc == ACL_SUCCESS) rc = check_cross_device(dst, src, count, kind, 0);
    int moving = rc == ACL_SUCCESS && count > 0;
    if (moving) pthread_rwlock_rdlock(&copying);
    pthread_mutex_unlock(&lock);
    if (moving) {
        move_bytes(dst, src, count, kind);
        pthread_rwlock_unlock(&copying);
        count_copied(kind, count);
    }
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

// MARK: - Inter-process memory (aclrtIpcMem*)

typedef struct ipc_export_entry {
    char key[DATADIST_IPC_KEY_LEN];
    datadist_ipc_export *record;
    uintptr_t allocation_base;   // the KIND_DEVICE allocation the range lies in
} ipc_export_entry;

typedef struct ipc_import_entry {
    char key[DATADIST_IPC_KEY_LEN];
    datadist_ipc_import *record;
    uintptr_t base;   // the KIND_IMPORTED allocation
} ipc_import_entry;

static ipc_export_entry exports_table[256];
static size_t export_count;
static ipc_import_entry imports_table[256];
static size_t import_count;

static ipc_export_entry *find_export(const char *key) {
    for (size_t i = 0; i < export_count; i++) {
        if (strncmp(exports_table[i].key, key, DATADIST_IPC_KEY_LEN) == 0) return &exports_table[i];
    }
    return NULL;
}

static ipc_import_entry *find_import(const char *key) {
    for (size_t i = 0; i < import_count; i++) {
        if (strncmp(imports_table[i].key, key, DATADIST_IPC_KEY_LEN) == 0) return &imports_table[i];
    }
    return NULL;
}

static uint8_t peer_enabled[FAKE_ACL_MAX_DEVICES][FAKE_ACL_MAX_DEVICES];   // [current][peer]

#ifndef FAKE_ACL_OMIT_IPC
EXPORT aclError aclrtIpcMemGetExportKey(void *devPtr, size_t size, char *key, size_t len, uint64_t flags) {
    COUNT(aclrtIpcMemGetExportKey);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = enter(&cfg, 1, "aclrtIpcMemGetExportKey");
    allocation *entry = NULL;
    if (rc != ACL_SUCCESS) {
    } else if (devPtr == NULL || key == NULL) {
        rc = fail(ACL_ERROR_INVALID_PARAM, "aclrtIpcMemGetExportKey: %s is NULL", devPtr == NULL ? "devPtr" : "key");
    } else if (size == 0 || len < ACL_IPC_KEY_LEN || flags > ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION) {
        rc = fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtIpcMemGetExportKey: size %zu, len %zu (must be %d), flags %llu",
                  size, len, ACL_IPC_KEY_LEN, (unsigned long long)flags);
    } else if (!cfg.ipc) {
        rc = fail(ACL_ERROR_RT_FEATURE_NOT_SUPPORT, "aclrtIpcMemGetExportKey: this chip (%s) has no IPC", cfg.soc_name);
    } else if ((entry = device_allocation_containing((uintptr_t)devPtr, size)) == NULL || entry->kind != KIND_DEVICE) {
        rc = fail(ACL_ERROR_RT_PARAM_INVALID,
                  "aclrtIpcMemGetExportKey: %zu bytes at %p are not inside one aclrtMalloc allocation", size, devPtr);
    } else if (((uintptr_t)devPtr - entry->base) % page_size() != 0) {
        rc = fail(ACL_ERROR_RT_ADDR_UNALIGNED, "aclrtIpcMemGetExportKey: %p is not aligned to the %zu-byte page",
                  devPtr, page_size());
    } else if (export_count == sizeof exports_table / sizeof exports_table[0]) {
        rc = fail(ACL_ERROR_RT_DRV_INTERNAL_ERROR, "aclrtIpcMemGetExportKey: too many open exports");
    } else {
        ipc_export_entry *slot = &exports_table[export_count];
        datadist_ipc_status status = datadist_ipc_export_create(
            entry->fd, (uint64_t)((uintptr_t)devPtr - entry->base), size, entry->device, (uint32_t)flags, "fakeacl",
            slot->key, &slot->record);
        if (status != DATADIST_IPC_OK) {
            rc = fail(ACL_ERROR_RT_DRV_INTERNAL_ERROR, "aclrtIpcMemGetExportKey: %s (errno %d)",
                      datadist_ipc_status_text(status), errno);
        } else {
            slot->allocation_base = entry->base;
            entry->exports++;
            export_count++;
            memcpy(key, slot->key, DATADIST_IPC_KEY_LEN);
        }
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

EXPORT aclError aclrtIpcMemSetImportPid(const char *key, int32_t *pid, size_t num) {
    COUNT(aclrtIpcMemSetImportPid);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = enter(&cfg, 1, "aclrtIpcMemSetImportPid");
    ipc_export_entry *entry = NULL;
    if (rc != ACL_SUCCESS) {
    } else if (key == NULL || pid == NULL) {
        rc = fail(ACL_ERROR_INVALID_PARAM, "aclrtIpcMemSetImportPid: %s is NULL", key == NULL ? "key" : "pid");
    } else if (num == 0) {
        rc = fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtIpcMemSetImportPid: num is 0");
    } else if (!cfg.ipc) {
        rc = fail(ACL_ERROR_RT_FEATURE_NOT_SUPPORT, "aclrtIpcMemSetImportPid: this chip (%s) has no IPC", cfg.soc_name);
    } else if ((entry = find_export(key)) == NULL) {
        rc = fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtIpcMemSetImportPid: %.64s is not a key this process exported", key);
    } else {
        for (size_t i = 0; i < num && rc == ACL_SUCCESS; i++) {
            if (pid[i] <= 0) rc = fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtIpcMemSetImportPid: pid[%zu] is %d", i, pid[i]);
        }
        if (rc == ACL_SUCCESS && datadist_ipc_export_allow(entry->record, pid, num) != DATADIST_IPC_OK) {
            rc = fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtIpcMemSetImportPid: more than %d PIDs for one key",
                      DATADIST_IPC_MAX_PIDS);
        }
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

EXPORT aclError aclrtIpcMemImportByKey(void **devPtr, const char *key, uint64_t flags) {
    COUNT(aclrtIpcMemImportByKey);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = enter(&cfg, 1, "aclrtIpcMemImportByKey");
    if (rc != ACL_SUCCESS) {
    } else if (devPtr == NULL || key == NULL) {
        rc = fail(ACL_ERROR_INVALID_PARAM, "aclrtIpcMemImportByKey: %s is NULL", devPtr == NULL ? "devPtr" : "key");
    } else if (flags > ACL_RT_IPC_MEM_IMPORT_FLAG_ENABLE_PEER_ACCESS) {
        rc = fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtIpcMemImportByKey: flags %llu", (unsigned long long)flags);
    } else if (!cfg.ipc) {
        rc = fail(ACL_ERROR_RT_FEATURE_NOT_SUPPORT, "aclrtIpcMemImportByKey: this chip (%s) has no IPC", cfg.soc_name);
    } else if (find_import(key) != NULL) {
        rc = fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtIpcMemImportByKey: %.64s is already imported here", key);
    } else if (import_count == sizeof imports_table / sizeof imports_table[0]) {
        rc = fail(ACL_ERROR_RT_DRV_INTERNAL_ERROR, "aclrtIpcMemImportByKey: too many open imports");
    } else {
        ipc_import_entry *slot = &imports_table[import_count];
        void *address = NULL;
        uint64_t size = 0;
        int32_t device = -1;
        datadist_ipc_status status = datadist_ipc_import_open(key, &slot->record, &address, &size, &device);
        int peer = flags & ACL_RT_IPC_MEM_IMPORT_FLAG_ENABLE_PEER_ACCESS;
        if (status == DATADIST_IPC_BAD_KEY) {
            rc = fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtIpcMemImportByKey: %.64s is not a key of a live export", key);
        } else if (status != DATADIST_IPC_OK) {
            rc = fail(ACL_ERROR_RT_DRV_INTERNAL_ERROR, "aclrtIpcMemImportByKey: %.64s: %s (pid %d)", key,
                      datadist_ipc_status_text(status), (int)getpid());
        } else if (device != current_device && (!cfg.peer_access || (!peer && !peer_enabled[current_device][device]))) {
            (void)datadist_ipc_import_close(slot->record);
            rc = cfg.peer_access
                     ? fail(ACL_ERROR_RT_PARAM_INVALID,
                            "aclrtIpcMemImportByKey: exported on device %d, imported on device %d: needs "
                            "ACL_RT_IPC_MEM_IMPORT_FLAG_ENABLE_PEER_ACCESS or aclrtDeviceEnablePeerAccess",
                            device, current_device)
                     : fail(ACL_ERROR_RT_FEATURE_NOT_SUPPORT,
                            "aclrtIpcMemImportByKey: device %d cannot access device %d", current_device, device);
        } else if (!record_allocation((allocation){
                       .base = (uintptr_t)address, .size = (size_t)size, .device = current_device,
                       .kind = KIND_IMPORTED, .fd = -1, .cross_device = device != current_device})) {
            (void)datadist_ipc_import_close(slot->record);
            rc = fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtIpcMemImportByKey: out of bookkeeping memory");
        } else {
            snprintf(slot->key, sizeof slot->key, "%s", key);
            slot->base = (uintptr_t)address;
            import_count++;
            *devPtr = address;
        }
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

EXPORT aclError aclrtIpcMemClose(const char *key) {
    COUNT(aclrtIpcMemClose);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = enter(&cfg, 1, "aclrtIpcMemClose");
    ipc_import_entry *imported = NULL;
    ipc_export_entry *exported = NULL;
    if (rc != ACL_SUCCESS) {
    } else if (key == NULL) {
        rc = fail(ACL_ERROR_INVALID_PARAM, "aclrtIpcMemClose: key is NULL");
    } else if ((imported = find_import(key)) != NULL) {
        allocation *entry = find_allocation(imported->base, KIND_IMPORTED);
        if (entry != NULL) remove_allocation(entry);
        // The mapping goes either way; the wrong order is reported to this importer.
        if (datadist_ipc_import_close(imported->record) == DATADIST_IPC_CLOSED) {
            rc = fail(ACL_ERROR_RT_DRV_INTERNAL_ERROR,
                      "aclrtIpcMemClose: the exporter closed %.64s before this importer did", key);
        }
        *imported = imports_table[--import_count];
    } else if ((exported = find_export(key)) != NULL) {
        allocation *entry = find_allocation(exported->allocation_base, KIND_DEVICE);
        if (entry != NULL) entry->exports--;
        (void)datadist_ipc_export_close(exported->record);
        *exported = exports_table[--export_count];
    } else {
        rc = fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtIpcMemClose: %.64s is not open in this process", key);
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

EXPORT aclError aclrtDeviceGetBareTgid(int32_t *pid) {
    COUNT(aclrtDeviceGetBareTgid);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = enter(&cfg, 0, "aclrtDeviceGetBareTgid");
    if (rc == ACL_SUCCESS && pid == NULL) rc = fail(ACL_ERROR_INVALID_PARAM, "aclrtDeviceGetBareTgid: pid is NULL");
    if (rc == ACL_SUCCESS) *pid = (int32_t)getpid();   // no container here: the host PID is ours
    pthread_mutex_unlock(&lock);
    return rc;
}
#endif

// MARK: - Peer access

EXPORT aclError aclrtDeviceCanAccessPeer(int32_t *canAccessPeer, int32_t deviceId, int32_t peerDeviceId) {
    COUNT(aclrtDeviceCanAccessPeer);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = enter(&cfg, 0, "aclrtDeviceCanAccessPeer");
    if (rc == ACL_SUCCESS && canAccessPeer == NULL) {
        rc = fail(ACL_ERROR_INVALID_PARAM, "aclrtDeviceCanAccessPeer: canAccessPeer is NULL");
    }
    if (rc == ACL_SUCCESS) rc = check_device(&cfg, deviceId, "aclrtDeviceCanAccessPeer");
    if (rc == ACL_SUCCESS) rc = check_device(&cfg, peerDeviceId, "aclrtDeviceCanAccessPeer");
    if (rc == ACL_SUCCESS && deviceId == peerDeviceId) {
        rc = fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtDeviceCanAccessPeer: device and peer are both %d", deviceId);
    }
    if (rc == ACL_SUCCESS) *canAccessPeer = cfg.peer_access;
    pthread_mutex_unlock(&lock);
    return rc;
}

EXPORT aclError aclrtDeviceEnablePeerAccess(int32_t peerDeviceId, uint32_t flags) {
    COUNT(aclrtDeviceEnablePeerAccess);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = enter(&cfg, 1, "aclrtDeviceEnablePeerAccess");
    if (rc == ACL_SUCCESS) rc = check_device(&cfg, peerDeviceId, "aclrtDeviceEnablePeerAccess");
    if (rc == ACL_SUCCESS && (flags != 0 || peerDeviceId == current_device)) {
        rc = fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtDeviceEnablePeerAccess: peer %d from device %d, flags %u",
                  peerDeviceId, current_device, flags);
    }
    if (rc == ACL_SUCCESS && !cfg.peer_access) {
        rc = fail(ACL_ERROR_RT_FEATURE_NOT_SUPPORT, "aclrtDeviceEnablePeerAccess: device %d cannot access device %d",
                  current_device, peerDeviceId);
    }
    if (rc == ACL_SUCCESS) peer_enabled[current_device][peerDeviceId] = 1;
    pthread_mutex_unlock(&lock);
    return rc;
}

// MARK: - Streams and asynchronous copies

typedef struct pending_copy {
    void *dst;
    const void *src;
    size_t count;
    int kind;
} pending_copy;

// A stream runs its queued copies in order on a worker thread of its own, as a device's DMA engine works beside
// the host: aclrtMemcpyAsync returns at once, aclrtSynchronizeStream waits until the queue is empty. Every field
// is guarded by `lock`; the worker, started by the first queued copy, waits on `work` and signals `idle`.
typedef struct fake_stream {
    struct fake_stream *next;
    int32_t device;
    pending_copy *copies;
    size_t head;       // the next copy the worker runs
    size_t count;
    size_t capacity;
    int running;       // the worker is moving copies[head - 1]'s bytes outside `lock`
    int started;
    int stopping;
    pthread_t worker;
    pthread_cond_t work;
    pthread_cond_t idle;
    aclError error;    // the first failed copy since the last synchronize, and its message
    char error_message[256];
} fake_stream;

static fake_stream *streams;                                 // created with aclrtCreateStream
static fake_stream default_streams[FAKE_ACL_MAX_DEVICES];    // the NULL stream of each device

static fake_stream *resolve_stream(aclrtStream stream) {
    if (stream == NULL) return &default_streams[current_device];
    for (fake_stream *entry = streams; entry != NULL; entry = entry->next) {
        if (entry == stream) return entry;
    }
    return NULL;
}

static void init_stream(fake_stream *stream, int32_t device) {
    stream->device = device;
    pthread_cond_init(&stream->work, NULL);
    pthread_cond_init(&stream->idle, NULL);
}

// The worker: runs the stream's queued copies in order, checking each again when it starts (memory freed since
// it was queued fails the copy as a device would fault). After a failure the rest of the queue is dropped.
static void *stream_worker(void *argument) {
    fake_stream *stream = argument;
    pthread_mutex_lock(&lock);
    while (1) {
        while (stream->head == stream->count && !stream->stopping) pthread_cond_wait(&stream->work, &lock);
        if (stream->head == stream->count) break;
        pending_copy copy = stream->copies[stream->head++];
        aclError rc = stream->error != ACL_SUCCESS
                          ? stream->error
                          : check_copy(copy.dst, copy.count, copy.src, copy.count, copy.kind);
        if (rc != ACL_SUCCESS && stream->error == ACL_SUCCESS) {
            stream->error = rc;
            memcpy(stream->error_message, recent_error, sizeof stream->error_message);
        }
        if (rc == ACL_SUCCESS && copy.count > 0) {
            // As aclrtMemcpy: the bytes move outside `lock`, under `copying` so that nothing is unmapped meanwhile.
            pthread_rwlock_rdlock(&copying);
            stream->running = 1;
            pthread_mutex_unlock(&lock);
            move_bytes(copy.dst, copy.src, copy.count, copy.kind);
            count_copied(copy.kind, copy.count);
            pthread_rwlock_unlock(&copying);
            pthread_mutex_lock(&lock);
            stream->running = 0;
        }
        if (stream->head == stream->count) {
            stream->head = stream->count = 0;
            pthread_cond_broadcast(&stream->idle);
        }
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

// Waits (with `lock` held) until the stream ran every copy queued so far; returns the first failure since the
// last wait, recorded as this thread's recent error, and clears it.
static aclError drain(fake_stream *stream) {
    while (stream->head < stream->count || stream->running) pthread_cond_wait(&stream->idle, &lock);
    aclError rc = stream->error;
    if (rc != ACL_SUCCESS) (void)fail(rc, "%s", stream->error_message);
    stream->error = ACL_SUCCESS;
    return rc;
}

// Waits for every queued copy of `device`'s streams (what aclrtSynchronizeDevice waits for).
static aclError drain_device(int32_t device) {
    aclError rc = drain(&default_streams[device]);
    for (fake_stream *entry = streams; entry != NULL; entry = entry->next) {
        aclError stream_rc = entry->device == device ? drain(entry) : ACL_SUCCESS;
        if (rc == ACL_SUCCESS) rc = stream_rc;
    }
    return rc;
}

EXPORT aclError aclrtCreateStream(aclrtStream *stream) {
    COUNT(aclrtCreateStream);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = enter(&cfg, 1, "aclrtCreateStream");
    if (rc == ACL_SUCCESS && stream == NULL) rc = fail(ACL_ERROR_INVALID_PARAM, "aclrtCreateStream: stream is NULL");
    if (rc == ACL_SUCCESS) {
        fake_stream *created = calloc(1, sizeof *created);
        if (created == NULL) {
            rc = fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtCreateStream: out of memory");
        } else {
            init_stream(created, current_device);
            created->next = streams;
            streams = created;
            *stream = created;
        }
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

EXPORT aclError aclrtDestroyStream(aclrtStream stream) {
    COUNT(aclrtDestroyStream);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = enter(&cfg, 1, "aclrtDestroyStream");
    if (rc == ACL_SUCCESS && stream == NULL) rc = fail(ACL_ERROR_INVALID_PARAM, "aclrtDestroyStream: stream is NULL");
    if (rc == ACL_SUCCESS) {
        fake_stream **link = &streams;
        while (*link != NULL && *link != stream) link = &(*link)->next;
        if (*link == NULL) {
            rc = fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtDestroyStream: %p is not a live stream", stream);
        } else {
            fake_stream *victim = *link;
            rc = drain(victim);   // the runtime finishes a stream's work before destroying it
            *link = victim->next;
            if (victim->started) {
                victim->stopping = 1;
                pthread_cond_signal(&victim->work);
                // Unlinked, so no other call reaches it; its worker needs `lock` to see `stopping`.
                pthread_mutex_unlock(&lock);
                pthread_join(victim->worker, NULL);
                pthread_mutex_lock(&lock);
            }
            pthread_cond_destroy(&victim->work);
            pthread_cond_destroy(&victim->idle);
            free(victim->copies);
            free(victim);
        }
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

EXPORT aclError aclrtSynchronizeStream(aclrtStream stream) {
    COUNT(aclrtSynchronizeStream);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = enter(&cfg, 1, "aclrtSynchronizeStream");
    fake_stream *target = rc == ACL_SUCCESS ? resolve_stream(stream) : NULL;
    if (rc == ACL_SUCCESS && target == NULL) {
        rc = fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtSynchronizeStream: %p is not a live stream", stream);
    }
    if (rc == ACL_SUCCESS) rc = drain(target);
    pthread_mutex_unlock(&lock);
    return rc;
}

EXPORT aclError aclrtMemcpyAsync(void *dst, size_t destMax, const void *src, size_t count, int kind,
                                 aclrtStream stream) {
    COUNT(aclrtMemcpyAsync);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = enter(&cfg, 1, "aclrtMemcpyAsync");
    fake_stream *target = rc == ACL_SUCCESS ? resolve_stream(stream) : NULL;
    if (rc == ACL_SUCCESS && target == NULL) {
        rc = fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtMemcpyAsync: %p is not a live stream", stream);
    }
    if (rc == ACL_SUCCESS) rc = check_copy(dst, destMax, src, count, kind);
    if (rc == ACL_SUCCESS) rc = check_cross_device(dst, src, count, kind, 1);
    if (rc == ACL_SUCCESS) {
        // An asynchronous copy's host side must be pinned (aclrtMallocHost or aclrtHostRegister).
        int host_src = kind == ACL_MEMCPY_HOST_TO_DEVICE || kind == ACL_MEMCPY_HOST_TO_HOST;
        int host_dst = kind == ACL_MEMCPY_DEVICE_TO_HOST || kind == ACL_MEMCPY_HOST_TO_HOST;
        if ((host_src && !is_pinned((uintptr_t)src, count)) || (host_dst && !is_pinned((uintptr_t)dst, count))) {
            rc = fail(ACL_ERROR_RT_PARAM_INVALID,
                      "aclrtMemcpyAsync: the host %s is not pinned (aclrtMallocHost or aclrtHostRegister)",
                      host_src && !is_pinned((uintptr_t)src, count) ? "src" : "dst");
        }
    }
    if (rc == ACL_SUCCESS && target->count == target->capacity) {
        size_t capacity = target->capacity == 0 ? 16 : target->capacity * 2;
        pending_copy *grown = realloc(target->copies, capacity * sizeof *grown);
        if (grown == NULL) {
            rc = fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMemcpyAsync: out of queue memory");
        } else {
            target->copies = grown;
            target->capacity = capacity;
        }
    }
    if (rc == ACL_SUCCESS && !target->started) {
        if (target >= default_streams && target < default_streams + FAKE_ACL_MAX_DEVICES) {
            init_stream(target, (int32_t)(target - default_streams));
        }
        if (pthread_create(&target->worker, NULL, stream_worker, target) != 0) {
            rc = fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMemcpyAsync: the stream's worker could not start");
        } else {
            target->started = 1;
        }
    }
    if (rc == ACL_SUCCESS) {
        target->copies[target->count++] = (pending_copy){dst, src, count, kind};
        pthread_cond_signal(&target->work);
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

// MARK: - Host registration

EXPORT aclError aclrtHostRegister(void *ptr, uint64_t size, int type, void **devPtr) {
    COUNT(aclrtHostRegister);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = enter(&cfg, 1, "aclrtHostRegister");
    if (rc != ACL_SUCCESS) {
    } else if (ptr == NULL || devPtr == NULL) {
        rc = fail(ACL_ERROR_INVALID_PARAM, "aclrtHostRegister: %s is NULL", ptr == NULL ? "ptr" : "devPtr");
    } else if (size == 0 || size > UINTPTR_MAX - (uintptr_t)ptr || type != ACL_HOST_REGISTER_MAPPED) {
        rc = fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtHostRegister: size %llu, type %d", (unsigned long long)size, type);
    } else {
        uintptr_t start = (uintptr_t)ptr;
        uintptr_t end = start + (uintptr_t)size;
        for (size_t i = 0; i < allocation_count && rc == ACL_SUCCESS; i++) {
            const allocation *entry = &allocations[i];
            if (entry->kind == KIND_HOST) continue;
            if (start < entry->base + entry->size && end > entry->base) {
                rc = fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtHostRegister: %llu bytes at %p overlap %s memory at %p",
                          (unsigned long long)size, ptr, entry->kind == KIND_REGISTERED ? "registered" : "device",
                          (void *)entry->base);
            }
        }
        if (rc == ACL_SUCCESS &&
            !record_allocation((allocation){
                .base = start, .size = (size_t)size, .device = -1, .kind = KIND_REGISTERED, .fd = -1})) {
            rc = fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtHostRegister: out of bookkeeping memory");
        }
        if (rc == ACL_SUCCESS) *devPtr = ptr;   // the device reaches the pages at the same address here
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

EXPORT aclError aclrtHostUnregister(void *ptr) {
    COUNT(aclrtHostUnregister);
    pthread_mutex_lock(&lock);
    config cfg = current_config();
    aclError rc = enter(&cfg, 1, "aclrtHostUnregister");
    allocation *entry = NULL;
    if (rc == ACL_SUCCESS && ptr == NULL) rc = fail(ACL_ERROR_INVALID_PARAM, "aclrtHostUnregister: ptr is NULL");
    if (rc == ACL_SUCCESS && (entry = find_allocation((uintptr_t)ptr, KIND_REGISTERED)) == NULL) {
        rc = fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtHostUnregister: %p is not registered", ptr);
    }
    if (rc == ACL_SUCCESS) remove_allocation(entry);
    pthread_mutex_unlock(&lock);
    return rc;
}

// MARK: - Test hooks over the state

EXPORT uint64_t fake_acl_open_count(const char *what) {
    if (what == NULL) return 0;
    pthread_mutex_lock(&lock);
    uint64_t count = 0;
    if (strcmp(what, "exports") == 0) count = export_count;
    else if (strcmp(what, "imports") == 0) count = import_count;
    else if (strcmp(what, "streams") == 0) {
        for (fake_stream *entry = streams; entry != NULL; entry = entry->next) count++;
    } else {
        for (size_t i = 0; i < allocation_count; i++) {
            enum allocation_kind kind = allocations[i].kind;
            if (strcmp(what, "device") == 0) count += kind == KIND_DEVICE;
            else if (strcmp(what, "host") == 0) count += kind == KIND_HOST;
            else if (strcmp(what, "registrations") == 0) count += kind == KIND_REGISTERED;
        }
    }
    pthread_mutex_unlock(&lock);
    return count;
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
#ifndef FAKE_ACL_OMIT_IPC
    .aclrtIpcMemGetExportKey = aclrtIpcMemGetExportKey,
    .aclrtIpcMemSetImportPid = aclrtIpcMemSetImportPid,
    .aclrtIpcMemImportByKey = aclrtIpcMemImportByKey,
    .aclrtIpcMemClose = aclrtIpcMemClose,
    .aclrtDeviceGetBareTgid = aclrtDeviceGetBareTgid,
#endif
    .aclrtDeviceCanAccessPeer = aclrtDeviceCanAccessPeer,
    .aclrtDeviceEnablePeerAccess = aclrtDeviceEnablePeerAccess,
    .aclrtCreateStream = aclrtCreateStream,
    .aclrtDestroyStream = aclrtDestroyStream,
    .aclrtSynchronizeStream = aclrtSynchronizeStream,
    .aclrtMemcpyAsync = aclrtMemcpyAsync,
    .aclrtHostRegister = aclrtHostRegister,
    .aclrtHostUnregister = aclrtHostUnregister,
};
