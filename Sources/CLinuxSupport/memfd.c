#include "CLinuxSupport.h"

#include <fcntl.h>
#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>

int datadist_memfd_create(const char *name) { return memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING); }

int datadist_memfd_seal_size(int fd) { return fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW); }

int datadist_memfd_seal_final(int fd, int future_write) {
    // F_SEAL_FUTURE_WRITE (Linux 5.1) refuses new writable shared mappings and write(2), whoever holds a
    // descriptor; shared writable mappings that exist already (the owner's) go on working.
    if (future_write && fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) != 0) return -1;
    return fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL);
}

int datadist_fd_size_sealed(int fd) {
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0) return errno == EINVAL ? 0 : -1;
    int size_seals = F_SEAL_SHRINK | F_SEAL_GROW;
    return (seals & size_seals) == size_seals;
}

int datadist_reopen_read_only(int fd) {
    // Without write permission on the file itself, a receiver that is not privileged cannot re-open its copy
    // read-write through its own /proc/self/fd either. The owner's descriptors keep their access.
    if (fchmod(fd, S_IRUSR) != 0) return -1;
    char path[32];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    return open(path, O_RDONLY | O_CLOEXEC);
}
