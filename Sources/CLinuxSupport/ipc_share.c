// The key-based sharing protocol of datadist_ipc.h. Self-contained (no other CLinuxSupport function), because
// the fake ACL library compiles this file into itself with DATADIST_IPC_API defined as `static`.
#include "include/datadist_ipc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONTROL_MAGIC 0x6464697063746c31ull   // "ddipctl1"

typedef struct ipc_control {
    uint64_t magic;
    uint64_t nonce;
    int32_t exporter_pid;
    int32_t data_fd;   // the exporter's descriptor number
    uint64_t data_inode;
    uint64_t data_dev;
    uint64_t offset;
    uint64_t size;
    int32_t device;
    uint32_t flags;
    uint32_t closed;
    uint32_t allowed_count;
    int32_t allowed[DATADIST_IPC_MAX_PIDS];
    uint32_t importer_count;
    struct {
        int32_t pid;
        uint32_t open;   // imports of this key not yet closed by that process
    } importers[DATADIST_IPC_MAX_PIDS];
} ipc_control;

struct datadist_ipc_export {
    int data_fd;
    int control_fd;
    ipc_control *control;
};

struct datadist_ipc_import {
    int control_fd;
    ipc_control *control;
    void *mapping;
    size_t mapping_length;
};

static size_t ipc_page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

static int ipc_process_alive(int32_t pid) { return kill(pid, 0) == 0 || errno != ESRCH; }

static void ipc_lock(int fd) {
    while (flock(fd, LOCK_EX) != 0 && errno == EINTR) {
    }
}

static void ipc_unlock(int fd) { (void)flock(fd, LOCK_UN); }

DATADIST_IPC_API datadist_ipc_status datadist_ipc_export_create(int data_fd, uint64_t offset, uint64_t size,
                                                                int32_t device, uint32_t flags, const char *prefix,
                                                                char key[DATADIST_IPC_KEY_LEN],
                                                                datadist_ipc_export **out) {
    *out = NULL;
    if (prefix == NULL || strlen(prefix) > 16 || strchr(prefix, ':') != NULL || size == 0 ||
        offset % ipc_page_size() != 0) {
        errno = EINVAL;
        return DATADIST_IPC_SYSTEM;
    }
    struct stat data_stat;
    if (fstat(data_fd, &data_stat) != 0) return DATADIST_IPC_SYSTEM;
    if (offset > (uint64_t)data_stat.st_size || size > (uint64_t)data_stat.st_size - offset) {
        errno = ERANGE;
        return DATADIST_IPC_SYSTEM;
    }
    datadist_ipc_export *record = calloc(1, sizeof *record);
    if (record == NULL) return DATADIST_IPC_SYSTEM;
    record->data_fd = fcntl(data_fd, F_DUPFD_CLOEXEC, 0);
    record->control_fd = memfd_create("datadist-ipc-control", MFD_CLOEXEC);
    int saved = 0;
    if (record->data_fd < 0 || record->control_fd < 0 || ftruncate(record->control_fd, (off_t)ipc_page_size()) != 0) {
        saved = errno;
        goto fail;
    }
    void *page = mmap(NULL, ipc_page_size(), PROT_READ | PROT_WRITE, MAP_SHARED, record->control_fd, 0);
    if (page == MAP_FAILED) {
        saved = errno;
        goto fail;
    }
    record->control = page;
    uint64_t nonce = 0;
    if (getrandom(&nonce, sizeof nonce, 0) != (ssize_t)sizeof nonce) {
        saved = errno;
        munmap(page, ipc_page_size());
        goto fail;
    }
    *record->control = (ipc_control){
        .magic = CONTROL_MAGIC, .nonce = nonce, .exporter_pid = getpid(), .data_fd = record->data_fd,
        .data_inode = data_stat.st_ino, .data_dev = data_stat.st_dev, .offset = offset, .size = size,
        .device = device, .flags = flags,
    };
    snprintf(key, DATADIST_IPC_KEY_LEN, "%s:%d:%d:%016llx", prefix, (int)getpid(), record->control_fd,
             (unsigned long long)nonce);
    *out = record;
    return DATADIST_IPC_OK;
fail:
    if (record->data_fd >= 0) close(record->data_fd);
    if (record->control_fd >= 0) close(record->control_fd);
    free(record);
    errno = saved;
    return DATADIST_IPC_SYSTEM;
}

DATADIST_IPC_API datadist_ipc_status datadist_ipc_export_allow(datadist_ipc_export *record, const int32_t *pids,
                                                               size_t count) {
    ipc_control *control = record->control;
    ipc_lock(record->control_fd);
    datadist_ipc_status status = DATADIST_IPC_OK;
    for (size_t i = 0; i < count && status == DATADIST_IPC_OK; i++) {
        int known = 0;
        for (uint32_t j = 0; j < control->allowed_count; j++) known |= control->allowed[j] == pids[i];
        if (known) continue;
        if (control->allowed_count == DATADIST_IPC_MAX_PIDS) status = DATADIST_IPC_FULL;
        else control->allowed[control->allowed_count++] = pids[i];
    }
    ipc_unlock(record->control_fd);
    return status;
}

DATADIST_IPC_API int datadist_ipc_export_close(datadist_ipc_export *record) {
    ipc_control *control = record->control;
    ipc_lock(record->control_fd);
    control->closed = 1;
    int still_open = 0;
    for (uint32_t i = 0; i < control->importer_count; i++) {
        if (control->importers[i].open > 0 && ipc_process_alive(control->importers[i].pid)) still_open++;
    }
    ipc_unlock(record->control_fd);
    munmap(control, ipc_page_size());
    close(record->control_fd);
    close(record->data_fd);
    free(record);
    return still_open;
}

static int ipc_open_peer_fd(int32_t pid, int32_t fd, int flags) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)pid, (int)fd);
    return open(path, flags | O_CLOEXEC);
}

// Parses "<prefix>:<pid>:<fd>:<16 hex digits>".
static int ipc_parse_key(const char *key, int32_t *pid, int32_t *fd, uint64_t *nonce) {
    if (key == NULL || strnlen(key, DATADIST_IPC_KEY_LEN) == DATADIST_IPC_KEY_LEN) return 0;
    const char *rest = strchr(key, ':');
    if (rest == NULL || rest == key) return 0;
    int parsed_pid = 0;
    int parsed_fd = 0;
    unsigned long long parsed_nonce = 0;
    int consumed = 0;
    if (sscanf(rest, ":%d:%d:%16llx%n", &parsed_pid, &parsed_fd, &parsed_nonce, &consumed) != 3) return 0;
    if (rest[consumed] != '\0' || parsed_pid <= 0 || parsed_fd < 0) return 0;
    *pid = parsed_pid;
    *fd = parsed_fd;
    *nonce = parsed_nonce;
    return 1;
}

DATADIST_IPC_API datadist_ipc_status datadist_ipc_import_open(const char *key, datadist_ipc_import **out,
                                                              void **address, uint64_t *size, int32_t *device) {
    *out = NULL;
    int32_t pid = 0;
    int32_t control_number = 0;
    uint64_t nonce = 0;
    if (!ipc_parse_key(key, &pid, &control_number, &nonce)) return DATADIST_IPC_BAD_KEY;
    int control_fd = ipc_open_peer_fd(pid, control_number, O_RDWR);
    if (control_fd < 0) return errno == ENOENT || errno == ESRCH ? DATADIST_IPC_EXPORTER_GONE : DATADIST_IPC_SYSTEM;
    struct stat control_stat;
    if (fstat(control_fd, &control_stat) != 0 || (size_t)control_stat.st_size != ipc_page_size()) {
        close(control_fd);
        return DATADIST_IPC_BAD_KEY;
    }
    ipc_control *control = mmap(NULL, ipc_page_size(), PROT_READ | PROT_WRITE, MAP_SHARED, control_fd, 0);
    if (control == MAP_FAILED) {
        int saved = errno;
        close(control_fd);
        errno = saved;
        return DATADIST_IPC_SYSTEM;
    }
    datadist_ipc_status status = DATADIST_IPC_OK;
    void *mapping = MAP_FAILED;
    size_t mapping_length = 0;
    int32_t self = getpid();
    ipc_lock(control_fd);
    if (control->magic != CONTROL_MAGIC || control->nonce != nonce || control->exporter_pid != pid) {
        status = DATADIST_IPC_BAD_KEY;
    } else if (control->closed) {
        status = DATADIST_IPC_CLOSED;
    } else if (!(control->flags & DATADIST_IPC_NO_PID_VALIDATION)) {
        int allowed = 0;
        for (uint32_t i = 0; i < control->allowed_count; i++) allowed |= control->allowed[i] == self;
        if (!allowed) status = DATADIST_IPC_NOT_WHITELISTED;
    }
    uint32_t slot = control->importer_count;
    if (status == DATADIST_IPC_OK) {
        for (uint32_t i = 0; i < control->importer_count; i++) {
            if (control->importers[i].pid == self || !ipc_process_alive(control->importers[i].pid)) slot = i;
            if (control->importers[i].pid == self) break;
        }
        if (slot == DATADIST_IPC_MAX_PIDS) status = DATADIST_IPC_FULL;
    }
    if (status == DATADIST_IPC_OK) {
        int data_fd = ipc_open_peer_fd(pid, control->data_fd, O_RDWR);
        struct stat data_stat;
        if (data_fd < 0) {
            status = errno == ENOENT || errno == ESRCH ? DATADIST_IPC_EXPORTER_GONE : DATADIST_IPC_SYSTEM;
        } else if (fstat(data_fd, &data_stat) != 0 || data_stat.st_ino != control->data_inode ||
                   data_stat.st_dev != control->data_dev) {
            status = DATADIST_IPC_BAD_KEY;
        } else {
            size_t page = ipc_page_size();
            mapping_length = (size_t)((control->size + page - 1) / page * page);
            mapping = mmap(NULL, mapping_length, PROT_READ | PROT_WRITE, MAP_SHARED, data_fd, (off_t)control->offset);
            if (mapping == MAP_FAILED) status = DATADIST_IPC_SYSTEM;
        }
        int saved = errno;
        if (data_fd >= 0) close(data_fd);
        errno = saved;
    }
    if (status == DATADIST_IPC_OK) {
        if (slot == control->importer_count) control->importer_count++;
        if (control->importers[slot].pid != self) control->importers[slot].open = 0;
        control->importers[slot].pid = self;
        control->importers[slot].open++;
        *address = mapping;
        *size = control->size;
        *device = control->device;
    }
    ipc_unlock(control_fd);
    datadist_ipc_import *record = status == DATADIST_IPC_OK ? calloc(1, sizeof *record) : NULL;
    if (status == DATADIST_IPC_OK && record == NULL) {
        // Undo the registration: out of memory for the record.
        ipc_lock(control_fd);
        control->importers[slot].open--;
        ipc_unlock(control_fd);
        munmap(mapping, mapping_length);
        errno = ENOMEM;
        status = DATADIST_IPC_SYSTEM;
    }
    if (status != DATADIST_IPC_OK) {
        int saved = errno;
        munmap(control, ipc_page_size());
        close(control_fd);
        errno = saved;
        return status;
    }
    *record = (datadist_ipc_import){
        .control_fd = control_fd, .control = control, .mapping = mapping, .mapping_length = mapping_length};
    *out = record;
    return DATADIST_IPC_OK;
}

DATADIST_IPC_API datadist_ipc_status datadist_ipc_import_close(datadist_ipc_import *record) {
    ipc_control *control = record->control;
    int32_t self = getpid();
    ipc_lock(record->control_fd);
    datadist_ipc_status status = control->closed ? DATADIST_IPC_CLOSED : DATADIST_IPC_OK;
    for (uint32_t i = 0; i < control->importer_count; i++) {
        if (control->importers[i].pid == self && control->importers[i].open > 0) control->importers[i].open--;
    }
    ipc_unlock(record->control_fd);
    munmap(record->mapping, record->mapping_length);
    munmap(control, ipc_page_size());
    close(record->control_fd);
    free(record);
    return status;
}

DATADIST_IPC_API const char *datadist_ipc_status_text(datadist_ipc_status status) {
    switch (status) {
    case DATADIST_IPC_OK: return "ok";
    case DATADIST_IPC_BAD_KEY: return "not a key of a live export";
    case DATADIST_IPC_EXPORTER_GONE: return "the exporting process or its export is gone";
    case DATADIST_IPC_CLOSED: return "the exporter closed the key first";
    case DATADIST_IPC_NOT_WHITELISTED: return "this process's PID was not whitelisted by the exporter";
    case DATADIST_IPC_FULL: return "too many PIDs for one export";
    case DATADIST_IPC_SYSTEM: return "a system call failed";
    }
    return "unknown status";
}
