#include "CLinuxSupport.h"

#include <fcntl.h>
#include <sys/mman.h>

int datadist_memfd_create(const char *name) { return memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING); }

int datadist_memfd_seal_size(int fd) {
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) return -1;
    return fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL);
}
