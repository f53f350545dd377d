/* poison.h: force-included (-include) into every portable source of the library by the
 * portability check build (tests/portability/meson.build). It takes compat.h's portable fallbacks
 * and then poisons the names that exist only on Linux (or only in glibc), so that code outside the
 * Linux-only files (core/poller_epoll.c) that names one directly no longer compiles. glibc defines
 * them all, so without this a Linux build cannot notice them.
 *
 * The system headers the library uses come first: a poisoned name may not appear even inside a
 * header read after the pragma, and these are then skipped by their include guards. */
#pragma GCC system_header
#ifndef AG_TESTS_POISON_H
#define AG_TESTS_POISON_H

#define AG_PORTABILITY_CHECK 1

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/compat.h"

/* Socket and poll flags: use ag__socket(), AG__MSG_NOSIGNAL and AG__POLLRDHUP (core/compat.h). */
#pragma GCC poison SOCK_NONBLOCK SOCK_CLOEXEC MSG_NOSIGNAL POLLRDHUP accept4 MSG_MORE
#pragma GCC poison SOL_TCP TCP_CORK TCP_QUICKACK TCP_USER_TIMEOUT TCP_KEEPIDLE
/* Linux-only descriptors: the loop's wake-up is a pipe outside Linux (AG__HAVE_EVENTFD). */
#pragma GCC poison eventfd EFD_NONBLOCK EFD_CLOEXEC pipe2 timerfd_create signalfd
#pragma GCC poison epoll_create epoll_create1 epoll_ctl epoll_wait epoll_pwait
/* glibc extensions: use ag__errno_name() (core/compat.h) for errno names. */
#pragma GCC poison strerrorname_np strerrordesc_np memrchr rawmemchr strchrnul mempcpy
/* mmap flags missing on macOS or FreeBSD: AG__MAP_STACK and AG__MAP_NORESERVE. */
#pragma GCC poison MAP_STACK MAP_NORESERVE MAP_POPULATE mremap

#endif
