/* compat.c: portable equivalents of Linux-only calls (see compat.h for which and why). */
#include "core/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int ag__fd_nonblock_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    int fd_fl = fcntl(fd, F_GETFD);
    if (fd_fl < 0 || fcntl(fd, F_SETFD, fd_fl | FD_CLOEXEC) < 0)
        return -errno;
    return 0;
}

int ag__socket(int family, int type, int protocol)
{
    int fd = socket(family, type | AG__SOCK_FLAGS, protocol);
    if (fd < 0)
        return -errno;
    if (AG__SOCK_FLAGS == 0) {
        /* Not atomic: a fork+exec on another thread in between inherits the fd. Systems without
         * SOCK_CLOEXEC offer nothing better. */
        int rc = ag__fd_nonblock_cloexec(fd);
        if (rc < 0) {
            close(fd);
            return rc;
        }
    }
#if defined(SO_NOSIGPIPE)
    if (AG__MSG_NOSIGNAL == 0) {
        int one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) < 0) {
            int rc = -errno;
            close(fd);
            return rc;
        }
    }
#endif
    return fd;
}

const char *ag__errno_name(int errnum)
{
#if AG__HAVE_STRERRORNAME_NP
    const char *name = strerrorname_np(errnum);
    if (name)
        return name;
#endif
    return ag__errno_name_table(errnum);
}

const char *ag__errno_name_table(int errnum)
{
    /* The errno values a network client meets, named as POSIX spells them. Aliases that share a
     * value on some systems (EWOULDBLOCK, ENOTSUP, EDEADLOCK) are left out: a switch cannot hold
     * both, and the first name is the one strerrorname_np gives. */
    switch (errnum) {
#define AG__E(name)                                                                                \
    case name:                                                                                     \
        return #name;
        AG__E(EPERM)
        AG__E(ENOENT)
        AG__E(ESRCH)
        AG__E(EINTR)
        AG__E(EIO)
        AG__E(ENXIO)
        AG__E(E2BIG)
        AG__E(ENOEXEC)
        AG__E(EBADF)
        AG__E(ECHILD)
        AG__E(EAGAIN)
        AG__E(ENOMEM)
        AG__E(EACCES)
        AG__E(EFAULT)
        AG__E(EBUSY)
        AG__E(EEXIST)
        AG__E(EXDEV)
        AG__E(ENODEV)
        AG__E(ENOTDIR)
        AG__E(EISDIR)
        AG__E(EINVAL)
        AG__E(ENFILE)
        AG__E(EMFILE)
        AG__E(ENOTTY)
        AG__E(EFBIG)
        AG__E(ENOSPC)
        AG__E(ESPIPE)
        AG__E(EROFS)
        AG__E(EMLINK)
        AG__E(EPIPE)
        AG__E(EDOM)
        AG__E(ERANGE)
        AG__E(EDEADLK)
        AG__E(ENAMETOOLONG)
        AG__E(ENOLCK)
        AG__E(ENOSYS)
        AG__E(ENOTEMPTY)
        AG__E(ELOOP)
        AG__E(ENOMSG)
        AG__E(EIDRM)
        AG__E(ENOLINK)
        AG__E(EPROTO)
        AG__E(EMULTIHOP)
        AG__E(EBADMSG)
        AG__E(EOVERFLOW)
        AG__E(EILSEQ)
        AG__E(ENOTSOCK)
        AG__E(EDESTADDRREQ)
        AG__E(EMSGSIZE)
        AG__E(EPROTOTYPE)
        AG__E(ENOPROTOOPT)
        AG__E(EPROTONOSUPPORT)
        AG__E(EOPNOTSUPP)
        AG__E(EAFNOSUPPORT)
        AG__E(EADDRINUSE)
        AG__E(EADDRNOTAVAIL)
        AG__E(ENETDOWN)
        AG__E(ENETUNREACH)
        AG__E(ENETRESET)
        AG__E(ECONNABORTED)
        AG__E(ECONNRESET)
        AG__E(ENOBUFS)
        AG__E(EISCONN)
        AG__E(ENOTCONN)
        AG__E(ETIMEDOUT)
        AG__E(ECONNREFUSED)
        AG__E(EHOSTUNREACH)
        AG__E(EALREADY)
        AG__E(EINPROGRESS)
        AG__E(ESTALE)
        AG__E(EDQUOT)
        AG__E(ECANCELED)
        AG__E(EOWNERDEAD)
        AG__E(ENOTRECOVERABLE)
#undef AG__E
    default:
        return NULL;
    }
}
