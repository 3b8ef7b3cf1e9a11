// Linux system calls and CPU routines the Swift layers need but Swift's Glibc module does not expose (glibc
// declares several only under _GNU_SOURCE, which that module does not set): memfd with seals, descriptor passing
// over Unix sockets, the CPU affinity count, and a copy with non-temporal stores.
#ifndef DATADIST_CLINUXSUPPORT_H
#define DATADIST_CLINUXSUPPORT_H

#include <stddef.h>

#include "datadist_ipc.h"

#ifdef __cplusplus
extern "C" {
#endif

/// memfd_create(2) with MFD_CLOEXEC | MFD_ALLOW_SEALING; -1 and errno on failure.
int datadist_memfd_create(const char *name);

/// Fixes the size of a memfd for good (F_SEAL_SHRINK | F_SEAL_GROW): whoever else maps it, a process holding a
/// copy of the descriptor cannot truncate the pages away under the owner. `datadist_memfd_seal_final` ends the
/// sealing once the owner knows whether peers may write. 0, or -1 and errno.
int datadist_memfd_seal_size(int fd);

/// Ends the sealing of a memfd: with `future_write`, adds F_SEAL_FUTURE_WRITE (no new writable mapping or write(2)
/// through any descriptor, the existing mappings keep their access), then F_SEAL_SEAL (no seal can be added or
/// removed any more). 0, or -1 and errno.
int datadist_memfd_seal_final(int fd, int future_write);

/// 1 when `fd` is sealed against shrinking and growing (F_SEAL_SHRINK and F_SEAL_GROW), 0 when it is not (or
/// cannot be sealed at all: not a memfd), -1 and errno when `fd` is no open descriptor.
int datadist_fd_size_sealed(int fd);

/// A new read-only descriptor (O_RDONLY, close-on-exec) of the file `fd` refers to, opened through
/// /proc/self/fd, after taking every permission but the owner's read off the file (fchmod 0400): whoever
/// receives it can map the file for reading only, and cannot re-open it for writing unless it is privileged
/// (root, CAP_DAC_OVERRIDE). -1 and errno on failure.
int datadist_reopen_read_only(int fd);

/// Sends `len` bytes and, when `fd_to_send` >= 0, that descriptor over a Unix socket (SCM_RIGHTS), without SIGPIPE.
/// Returns the bytes sent, or -1 and errno.
long datadist_send_fd(int socket_fd, int fd_to_send, const void *bytes, size_t len);

/// Receives up to `len` bytes and at most one descriptor, stored in *received_fd (-1 if none came). A message
/// that carried more than one descriptor, or whose control data was truncated, is refused: every descriptor it
/// brought is closed and the call returns -1 with errno EPROTO. Otherwise returns the bytes received, or -1 and
/// errno.
long datadist_recv_fd(int socket_fd, int *received_fd, void *bytes, size_t len);

/// Cores this process may run on (its CPU affinity mask), at least 1.
int datadist_available_cores(void);

/// Copies `count` bytes between non-overlapping buffers with non-temporal stores (x86-64; elsewhere memcpy).
void datadist_copy_streaming(void *destination, const void *source, size_t count);

/// 1 when datadist_copy_streaming really streams on this architecture.
int datadist_copy_streaming_available(void);

#ifdef __cplusplus
}
#endif
#endif
