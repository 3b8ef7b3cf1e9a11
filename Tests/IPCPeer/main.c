// datadist-ipc-peer: the other process of the device-sharing tests. It reads one command per line on stdin and
// answers one line on stdout, so a test can hold an import open while it acts in its own process.
//
//   datadist-ipc-peer fake <library>   imports through the fake ACL library (dlopen, aclInit, device 0)
//   datadist-ipc-peer memfd            imports through CLinuxSupport's protocol, as the emulator does
//
// Commands (answers start with the ACL code, or the datadist_ipc_status in memfd mode):
//   device <n>                          aclrtSetDevice                      -> rc
//   pid                                 aclrtDeviceGetBareTgid / getpid     -> rc pid
//   import <key> <flags>                aclrtIpcMemImportByKey              -> rc
//   check <key> <offset> <count> <seed> bytes match the tests' pattern      -> 0 1|0
//   fill <key> <offset> <count> <seed>  writes the pattern                  -> 0
//   close <key>                         aclrtIpcMemClose                    -> rc
//   open <what>                         fake_acl_open_count(what)           -> 0 count
//   quit
#include "CLinuxSupport.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int (*set_device_fn)(int32_t);
typedef int (*init_fn)(const char *);
typedef int (*pid_fn)(int32_t *);
typedef int (*import_fn)(void **, const char *, uint64_t);
typedef int (*close_fn)(const char *);
typedef uint64_t (*open_count_fn)(const char *);

static struct {
    set_device_fn set_device;
    pid_fn bare_tgid;
    import_fn import_by_key;
    close_fn close_key;
    open_count_fn open_count;
} acl;

typedef struct imported {
    char key[DATADIST_IPC_KEY_LEN];
    unsigned char *address;
    uint64_t size;
    datadist_ipc_import *record;   // memfd mode
} imported;

static imported imports[64];
static int import_total;

static imported *find(const char *key) {
    for (int i = 0; i < import_total; i++) {
        if (strcmp(imports[i].key, key) == 0) return &imports[i];
    }
    return NULL;
}

static unsigned char pattern(uint64_t index, int seed) { return (unsigned char)(index * 31 + (uint64_t)seed); }

int main(int argc, char **argv) {
    int fake = argc == 3 && strcmp(argv[1], "fake") == 0;
    if (!fake && !(argc == 2 && strcmp(argv[1], "memfd") == 0)) {
        fprintf(stderr, "usage: datadist-ipc-peer fake <library> | memfd\n");
        return 2;
    }
    if (fake) {
        void *library = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
        if (library == NULL) {
            fprintf(stderr, "dlopen: %s\n", dlerror());
            return 2;
        }
        init_fn init = (init_fn)dlsym(library, "aclInit");
        acl.set_device = (set_device_fn)dlsym(library, "aclrtSetDevice");
        acl.bare_tgid = (pid_fn)dlsym(library, "aclrtDeviceGetBareTgid");
        acl.import_by_key = (import_fn)dlsym(library, "aclrtIpcMemImportByKey");
        acl.close_key = (close_fn)dlsym(library, "aclrtIpcMemClose");
        acl.open_count = (open_count_fn)dlsym(library, "fake_acl_open_count");
        if (!init || !acl.set_device || !acl.bare_tgid || !acl.import_by_key || !acl.close_key || !acl.open_count ||
            init(NULL) != 0 || acl.set_device(0) != 0) {
            fprintf(stderr, "the fake library lacks an entry point or does not start\n");
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    char line[512];
    while (fgets(line, sizeof line, stdin) != NULL) {
        char command[32] = "";
        char key[DATADIST_IPC_KEY_LEN + 1] = "";
        unsigned long long a = 0, b = 0, c = 0;
        int fields = sscanf(line, "%31s %65s %llu %llu %llu", command, key, &a, &b, &c);
        if (fields < 1) continue;
        if (strcmp(command, "quit") == 0) break;
        if (strcmp(command, "device") == 0 && fake) {
            printf("%d\n", acl.set_device((int32_t)atoi(key)));
        } else if (strcmp(command, "pid") == 0) {
            int32_t pid = (int32_t)getpid();
            int rc = fake ? acl.bare_tgid(&pid) : 0;
            printf("%d %d\n", rc, (int)pid);
        } else if (strcmp(command, "import") == 0 && fields >= 3) {
            imported *slot = import_total < 64 ? &imports[import_total] : NULL;
            int rc = -1;
            if (slot != NULL && fake) {
                void *address = NULL;
                rc = acl.import_by_key(&address, key, a);
                slot->address = address;
                slot->size = 0;
            } else if (slot != NULL) {
                void *address = NULL;
                int32_t device = -1;
                rc = (int)datadist_ipc_import_open(key, &slot->record, &address, &slot->size, &device);
                slot->address = address;
            }
            if (rc == 0) {
                snprintf(slot->key, sizeof slot->key, "%s", key);
                import_total++;
            }
            printf("%d\n", rc);
        } else if ((strcmp(command, "check") == 0 || strcmp(command, "fill") == 0) && fields == 5) {
            imported *entry = find(key);
            if (entry == NULL || (entry->size != 0 && (a > entry->size || b > entry->size - a))) {
                printf("-1 0\n");
                continue;
            }
            int matches = 1;
            for (uint64_t i = 0; i < b; i++) {
                if (command[0] == 'f') entry->address[a + i] = pattern(i, (int)c);
                else matches &= entry->address[a + i] == pattern(i, (int)c);
            }
            printf("0 %d\n", matches);
        } else if (strcmp(command, "close") == 0 && fields >= 2) {
            imported *entry = find(key);
            int rc;
            if (fake) {
                rc = acl.close_key(key);
            } else {
                rc = entry == NULL ? -1 : (int)datadist_ipc_import_close(entry->record);
            }
            if (entry != NULL && (rc == 0 || !fake || rc == 507899)) *entry = imports[--import_total];
            printf("%d\n", rc);
        } else if (strcmp(command, "open") == 0 && fake) {
            printf("0 %llu\n", (unsigned long long)acl.open_count(key));
        } else {
            printf("-2 unknown command\n");
        }
    }
    return 0;
}
