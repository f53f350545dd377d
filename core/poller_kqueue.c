/* poller_kqueue.c: the readiness backend on kqueue (BSDs, macOS, and Linux through libkqueue). */
#include "core/poller.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <sys/types.h>
#include <sys/event.h>
#include <sys/time.h>

/* Kernel events read per wait when the caller offers more room; two filters of one fd may merge. */
#define KQ_BATCH 128

struct ag__poller {
    int kq;
};

bool ag__poller_reports_every_edge(void)
{
    return true; /* EV_CLEAR natively; level-triggered with re-enabling on libkqueue */
}

const char *ag__poller_name(void)
{
    return "kqueue";
}

int ag__poller_new(ag__poller **out)
{
    ag__poller *p;
    int err;

    *out = NULL;
    p = malloc(sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    p->kq = kqueue();
    if (p->kq < 0) {
        err = -errno;
        goto fail;
    }
    /* kqueue() has no close-on-exec flag everywhere, so set it afterwards. */
    if (fcntl(p->kq, F_SETFD, FD_CLOEXEC) < 0) {
        err = -errno;
        goto fail;
    }
    *out = p;
    return 0;
fail:
    if (p->kq >= 0)
        close(p->kq);
    free(p);
    return err;
}

void ag__poller_free(ag__poller *p)
{
    if (p == NULL)
        return;
    close(p->kq);
    free(p);
}

int ag__poller_fd(const ag__poller *p)
{
#ifdef LIBKQUEUE
    /* libkqueue's descriptor only tracks the queue's lifetime: it never polls readable. */
    (void)p;
    return -ENOTSUP;
#else
    return p->kq;
#endif
}

/*
 * Applies the same flags to the filters of fd that events name (AG__POLL_IN: read, AG__POLL_OUT:
 * write) in one kevent() call and stores each filter's errno (0 on success or when not named) in
 * errs. EV_RECEIPT makes every change answer with an entry; since the answers fill the event list
 * exactly, kevent() returns without collecting pending events, which would be lost.
 */
static int change(ag__poller *p, int fd, unsigned events, unsigned flags, int errs[2])
{
    struct kevent ch[2];
    struct kevent res[2];
    const struct timespec zero = {0, 0};
    int i;
    int n = 0;

    if (events & AG__POLL_IN)
        EV_SET(&ch[n++], (uintptr_t)fd, EVFILT_READ, flags | EV_RECEIPT, 0, 0, 0);
    if (events & AG__POLL_OUT)
        EV_SET(&ch[n++], (uintptr_t)fd, EVFILT_WRITE, flags | EV_RECEIPT, 0, 0, 0);
    n = kevent(p->kq, ch, n, res, n, &zero);
    if (n < 0)
        return -errno;
    /* A missing answer for a named filter counts as a failure. */
    errs[0] = events & AG__POLL_IN ? EIO : 0;
    errs[1] = events & AG__POLL_OUT ? EIO : 0;
    for (i = 0; i < n; i++) {
        if (!(res[i].flags & EV_ERROR))
            continue;
        if (res[i].filter == EVFILT_READ)
            errs[0] = (int)res[i].data;
        else if (res[i].filter == EVFILT_WRITE)
            errs[1] = (int)res[i].data;
    }
    return 0;
}

/* Native kqueue: EV_CLEAR, an edge per new readiness, no call per wait. libkqueue's emulation of
 * EV_CLEAR lost read reports under load in our tests (requests waited for data that had
 * arrived), so there the filters are level-triggered and disabled after each report
 * (EV_DISPATCH), and ag__poller_want enables them again: one kevent() per wait, like poll(). */
#ifdef LIBKQUEUE
#define ADD_MODE EV_DISPATCH
#else
#define ADD_MODE EV_CLEAR
#endif

int ag__poller_add(ag__poller *p, int fd, unsigned events)
{
    int errs[2];
    int undo[2];
    int r;

    r = change(p, fd, events, EV_ADD | ADD_MODE, errs);
    if (r < 0)
        return r;
    if (errs[0] == 0 && errs[1] == 0)
        return 0;
    /* Half registered: take back the filter that succeeded so that a failed add leaves nothing. */
    if (errs[0] == 0 || errs[1] == 0)
        change(p, fd, events, EV_DELETE, undo);
    return -(errs[0] != 0 ? errs[0] : errs[1]);
}

int ag__poller_del(ag__poller *p, int fd)
{
    int errs[2];
    int i;
    int r;

    r = change(p, fd, AG__POLL_IN | AG__POLL_OUT, EV_DELETE, errs);
    if (r < 0)
        return r;
    /* A filter that is already gone is what the caller wants. */
    for (i = 0; i < 2; i++) {
        if (errs[i] != 0 && errs[i] != ENOENT)
            return -errs[i];
    }
    return 0;
}

int ag__poller_want(ag__poller *p, int fd, unsigned events)
{
#ifdef LIBKQUEUE
    /* EV_DISPATCH disabled the filter when it reported: enable what the waiter needs. */
    struct kevent ch[2];
    int n = 0;
    if (events & AG__POLL_IN)
        EV_SET(&ch[n++], (uintptr_t)fd, EVFILT_READ, EV_ENABLE, 0, 0, 0);
    if (events & AG__POLL_OUT)
        EV_SET(&ch[n++], (uintptr_t)fd, EVFILT_WRITE, EV_ENABLE, 0, 0, 0);
    return n && kevent(p->kq, ch, n, NULL, 0, NULL) < 0 ? -errno : 0;
#else
    /* EV_CLEAR reports every new readiness by itself; there is nothing to re-arm. */
    (void)p;
    (void)fd;
    (void)events;
    return 0;
#endif
}

/* Translates one kernel event to AG__POLL_* bits. */
static unsigned kev_bits(const struct kevent *kev)
{
    unsigned bits = 0;

    if (kev->flags & EV_ERROR)
        return AG__POLL_ERR | AG__POLL_IN | AG__POLL_OUT;
    if (kev->filter == EVFILT_READ)
        bits = AG__POLL_IN;
    else if (kev->filter == EVFILT_WRITE)
        bits = AG__POLL_OUT;
    /*
     * EV_EOF alone is an orderly end (the reader sees 0 bytes, the writer EPIPE), so the direction
     * bit suffices; fflags then carries a pending socket error, which concerns both directions.
     */
    if ((kev->flags & EV_EOF) && kev->fflags != 0)
        bits |= AG__POLL_ERR;
    if ((kev->flags & EV_EOF) && kev->filter == EVFILT_READ)
        bits |= AG__POLL_HUP;
    return bits;
}

int ag__poller_wait(ag__poller *p, ag__poll_event *events, int max, int64_t timeout_ns)
{
    struct kevent kev[KQ_BATCH];
    struct timespec ts;
    struct timespec *tsp = NULL;
    int n;
    int i;
    int out = 0;

    if (max <= 0)
        return -EINVAL;
    /* kevent() takes nanoseconds, so the deadline needs no rounding. */
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tsp = &ts;
    }
    n = kevent(p->kq, NULL, 0, kev, max < KQ_BATCH ? max : KQ_BATCH, tsp);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (i = 0; i < n; i++) {
        int fd = (int)kev[i].ident;
        unsigned bits = kev_bits(&kev[i]);

        /* The two filters of one fd usually come back next to each other: report them once. */
        if (out > 0 && events[out - 1].fd == fd) {
            events[out - 1].events |= bits;
            continue;
        }
        events[out].fd = fd;
        events[out].events = bits;
        out++;
    }
    return out;
}
