/* compat.h: the few places where Linux, the BSDs and macOS spell the same thing differently.
 *
 * Feature tests, not OS tests: each name below is used where the system defines it and replaced by
 * a portable equivalent where it does not. A portability check build (AG_PORTABILITY_CHECK, see
 * core/poison.h) takes every fallback on Linux too and poisons the Linux-only names, so code
 * outside the Linux-only files that names them directly stops compiling. */
#ifndef AG_CORE_COMPAT_H
#define AG_CORE_COMPAT_H

#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

/* send() flag that turns a closed peer into EPIPE instead of SIGPIPE (Linux, FreeBSD, OpenBSD).
 * Without it, ag__socket() sets SO_NOSIGPIPE on the socket instead (macOS). */
#if defined(MSG_NOSIGNAL) && !defined(AG_PORTABILITY_CHECK)
#define AG__MSG_NOSIGNAL MSG_NOSIGNAL
#else
#define AG__MSG_NOSIGNAL 0
#endif

/* poll() event for a peer that shut down its write side; only a hint, so 0 where missing. */
#if defined(POLLRDHUP) && !defined(AG_PORTABILITY_CHECK)
#define AG__POLLRDHUP POLLRDHUP
#else
#define AG__POLLRDHUP 0
#endif

/* socket(2) type flags that make the socket non-blocking and close-on-exec atomically; where
 * missing, ag__socket() sets both with fcntl right after creating it. */
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC) && !defined(AG_PORTABILITY_CHECK)
#define AG__SOCK_FLAGS (SOCK_NONBLOCK | SOCK_CLOEXEC)
#else
#define AG__SOCK_FLAGS 0
#endif

/* mmap flags for coroutine stacks: hints only, so 0 where the system lacks them (macOS has no
 * MAP_STACK, FreeBSD no MAP_NORESERVE). */
#if defined(MAP_STACK) && !defined(AG_PORTABILITY_CHECK)
#define AG__MAP_STACK MAP_STACK
#else
#define AG__MAP_STACK 0
#endif
#if defined(MAP_NORESERVE) && !defined(AG_PORTABILITY_CHECK)
#define AG__MAP_NORESERVE MAP_NORESERVE
#else
#define AG__MAP_NORESERVE 0
#endif

/* The loop's wake-up: one eventfd on Linux, a pipe elsewhere. */
#if defined(__linux__) && !defined(AG_PORTABILITY_CHECK)
#define AG__HAVE_EVENTFD 1
#else
#define AG__HAVE_EVENTFD 0
#endif

/* strerrorname_np appeared in glibc 2.32; elsewhere ag__errno_name's own table names errno. */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32)) &&          \
    !defined(AG_PORTABILITY_CHECK)
#define AG__HAVE_STRERRORNAME_NP 1
#else
#define AG__HAVE_STRERRORNAME_NP 0
#endif

/* A stream or datagram socket that is non-blocking, close-on-exec and never raises SIGPIPE on
 * send (with AG__MSG_NOSIGNAL). Returns the fd or a negative errno. */
int ag__socket(int family, int type, int protocol);

/* Makes fd non-blocking and close-on-exec. Returns 0 or a negative errno. */
int ag__fd_nonblock_cloexec(int fd);

/* The symbolic name of a positive errno value ("ECONNREFUSED"), or NULL if unknown. */
const char *ag__errno_name(int errnum);

/* The portable table behind ag__errno_name, compiled everywhere so that tests can compare it with
 * strerrorname_np where that exists. */
const char *ag__errno_name_table(int errnum);

#endif
