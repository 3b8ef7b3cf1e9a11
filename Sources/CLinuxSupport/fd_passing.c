#include "CLinuxSupport.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

// Room for a few descriptors, so that a peer sending more than one is detected (and its descriptors closed)
// rather than having the surplus silently truncated away by the kernel.
enum { MAX_RECEIVED_FDS = 4 };

long datadist_send_fd(int socket_fd, int fd_to_send, const void *bytes, size_t len) {
    struct iovec iov = {.iov_base = (void *)bytes, .iov_len = len};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd_to_send >= 0) {
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof control.buf;
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cmsg), &fd_to_send, sizeof(int));
    }
    return (long)sendmsg(socket_fd, &msg, MSG_NOSIGNAL);
}

long datadist_recv_fd(int socket_fd, int *received_fd, void *bytes, size_t len) {
    struct iovec iov = {.iov_base = bytes, .iov_len = len};
    union {
        char buf[CMSG_SPACE(MAX_RECEIVED_FDS * sizeof(int))];
        struct cmsghdr align;
    } control;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                         .msg_controllen = sizeof control.buf};
    *received_fd = -1;
    long n = (long)recvmsg(socket_fd, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) return n;
    int count = 0;
    for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
        if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
        size_t fds = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < fds; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof fd);
            if (count++ == 0) {
                *received_fd = fd;
            } else {
                close(fd);
            }
        }
    }
    if (count > 1 || (msg.msg_flags & MSG_CTRUNC)) {
        if (*received_fd >= 0) close(*received_fd);
        *received_fd = -1;
        errno = EPROTO;
        return -1;
    }
    return n;
}
