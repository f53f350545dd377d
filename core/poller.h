/* poller.h: the contract between the reactor and a readiness backend (epoll, kqueue, poll). */
#ifndef AG_CORE_POLLER_H
#define AG_CORE_POLLER_H

#include <stdbool.h>
#include <stdint.h>

/*
 * An fd is added once, for its whole life, with interest in both directions (or in reading only,
 * for the loop's own wake-up fd, whose writability means nothing). Backends report
 * readiness edges: after a report for a direction, the same direction is reported again only when
 * the kernel sees new readiness (epoll EPOLLET, kqueue EV_CLEAR) or, for backends that are level
 * triggered underneath (poll), after ag__poller_want() re-arms it. The reactor caches readiness per
 * fd and only waits after an I/O call returned EAGAIN, so edge reports are enough and no system
 * call is needed per wait on epoll and kqueue.
 */

enum {
    AG__POLL_IN = 1,  /* readable, or the peer closed its side */
    AG__POLL_OUT = 2, /* writable */
    AG__POLL_ERR = 4, /* error or hang-up: both directions should retry their I/O */
    AG__POLL_HUP = 8, /* the peer closed its side: after the data, reads return 0, and no further
                       * edge will say so */
};

/* A timeout in nanoseconds as the milliseconds an int-taking wait needs: rounded up, so that the
 * wait never ends before the deadline it stands for; -1 (none) for a negative one. Past INT_MAX
 * ms (24.8 days) it is clamped, not wrapped: the caller wakes early and computes again. */
static inline int ag__timeout_ms(int64_t ns)
{
    if (ns < 0)
        return -1;
    int64_t ms = ns / 1000000 + (ns % 1000000 != 0);
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

typedef struct ag__poller ag__poller;

typedef struct ag__poll_event {
    int fd;
    unsigned events; /* AG__POLL_* bits */
} ag__poll_event;

/* Whether a readiness report always follows new data or the peer's close after a read that
 * drained the socket. When it does, a short read may forget readability and the next read waits
 * without a system call; a backend that cannot promise it makes every wait follow a read that
 * said EAGAIN. All three backends promise it today. */
bool ag__poller_reports_every_edge(void);
/* Name of the backend compiled in: "epoll", "kqueue" or "poll". */
const char *ag__poller_name(void);
int ag__poller_new(ag__poller **out);
void ag__poller_free(ag__poller *p);
/* An fd that is readable when events are pending, or -ENOTSUP. */
int ag__poller_fd(const ag__poller *p);
/* Start watching fd for events: AG__POLL_IN, AG__POLL_OUT or both. */
int ag__poller_add(ag__poller *p, int fd, unsigned events);
/* Stop watching fd; call before closing it. */
int ag__poller_del(ag__poller *p, int fd);
/* A waiter is about to park on fd for events: re-arm them. No-op (no system call) on edge
 * backends. */
int ag__poller_want(ag__poller *p, int fd, unsigned events);
/* Wait up to timeout_ns (-1: forever, 0: do not block); fill at most max events. Returns the count,
 * or a negative errno. EINTR is returned as 0 events. */
int ag__poller_wait(ag__poller *p, ag__poll_event *events, int max, int64_t timeout_ns);

#endif
