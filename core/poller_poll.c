/* poller_poll.c: the portable readiness backend on poll(2), for systems without epoll or kqueue. */
#include "core/poller.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>

/*
 * poll() is level triggered, so edges are emulated: a pollfd's events hold only the armed
 * directions, a reported direction is disarmed, and ag__poller_want() arms it again. poll() reports
 * POLLERR and POLLHUP even for an empty event mask, so an entry with nothing armed is switched off
 * by storing its fd complemented (negative fds are skipped by poll()).
 */
struct ag__poller {
    struct pollfd *fds; /* dense: fds[0..nfds) are the watched fds */
    size_t nfds;
    size_t cap;
    int *index; /* index[fd] is the position of fd in fds, or -1 */
    size_t index_cap;
    size_t start; /* where the next scan of poll()'s results begins */
};

bool ag__poller_reports_every_edge(void)
{
    return true;
}

const char *ag__poller_name(void)
{
    return "poll";
}

int ag__poller_new(ag__poller **out)
{
    ag__poller *p;

    *out = NULL;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    *out = p;
    return 0;
}

void ag__poller_free(ag__poller *p)
{
    if (p == NULL)
        return;
    free(p->fds);
    free(p->index);
    free(p);
}

int ag__poller_fd(const ag__poller *p)
{
    (void)p;
    return -ENOTSUP;
}

static int real_fd(const struct pollfd *pfd)
{
    return pfd->fd >= 0 ? pfd->fd : ~pfd->fd;
}

/* Writes the armed directions of an entry, switching it off when none is left. */
static void set_armed(struct pollfd *pfd, short events)
{
    int fd = real_fd(pfd);

    pfd->events = events;
    pfd->fd = events != 0 ? fd : ~fd;
}

/* Position of fd in fds, or -1 when fd is not watched. */
static int lookup(const ag__poller *p, int fd)
{
    if (fd < 0 || (size_t)fd >= p->index_cap)
        return -1;
    return p->index[fd];
}

/* Makes room for one more entry and for index[fd]. */
static int reserve(ag__poller *p, int fd)
{
    size_t cap;
    size_t i;

    if ((size_t)fd >= p->index_cap) {
        int *index;

        cap = p->index_cap != 0 ? p->index_cap : 64;
        while (cap <= (size_t)fd)
            cap *= 2;
        if (cap > SIZE_MAX / sizeof(*index))
            return -ENOMEM;
        index = realloc(p->index, cap * sizeof(*index));
        if (index == NULL)
            return -ENOMEM;
        for (i = p->index_cap; i < cap; i++)
            index[i] = -1;
        p->index = index;
        p->index_cap = cap;
    }
    if (p->nfds == p->cap) {
        struct pollfd *fds;

        cap = p->cap != 0 ? p->cap * 2 : 16;
        if (cap > SIZE_MAX / sizeof(*fds) || cap > (size_t)INT_MAX)
            return -ENOMEM;
        fds = realloc(p->fds, cap * sizeof(*fds));
        if (fds == NULL)
            return -ENOMEM;
        p->fds = fds;
        p->cap = cap;
    }
    return 0;
}

int ag__poller_add(ag__poller *p, int fd, unsigned events)
{
    struct pollfd *pfd;
    int r;

    if (fd < 0)
        return -EBADF;
    if (lookup(p, fd) >= 0)
        return -EEXIST;
    r = reserve(p, fd);
    if (r < 0)
        return r;
    pfd = &p->fds[p->nfds];
    pfd->fd = fd;
    pfd->revents = 0;
    set_armed(pfd,
              (short)((events & AG__POLL_IN ? POLLIN : 0) | (events & AG__POLL_OUT ? POLLOUT : 0)));
    p->index[fd] = (int)p->nfds;
    p->nfds++;
    return 0;
}

int ag__poller_del(ag__poller *p, int fd)
{
    int i = lookup(p, fd);

    if (i < 0)
        return -ENOENT;
    /* Fill the hole with the last entry so that the array stays dense. */
    p->nfds--;
    if ((size_t)i != p->nfds) {
        p->fds[i] = p->fds[p->nfds];
        p->index[real_fd(&p->fds[i])] = i;
    }
    p->index[fd] = -1;
    return 0;
}

int ag__poller_want(ag__poller *p, int fd, unsigned events)
{
    struct pollfd *pfd;
    short armed;
    int i = lookup(p, fd);

    if (i < 0)
        return -ENOENT;
    pfd = &p->fds[i];
    armed = pfd->fd >= 0 ? pfd->events : 0;
    if (events & AG__POLL_IN)
        armed |= POLLIN;
    if (events & AG__POLL_OUT)
        armed |= POLLOUT;
    set_armed(pfd, armed);
    return 0;
}

/*
 * poll() counts milliseconds in an int: round up so that a timer is never found unexpired, and
 * split waits longer than INT_MAX ms into several polls.
 */
static int poll_ns(ag__poller *p, int64_t timeout_ns)
{
    int64_t left_ms;
    int n;

    if (timeout_ns < 0)
        return poll(p->fds, (nfds_t)p->nfds, -1);
    left_ms = timeout_ns / 1000000 + (timeout_ns % 1000000 != 0);
    for (;;) {
        int ms = left_ms > INT_MAX ? INT_MAX : (int)left_ms;

        n = poll(p->fds, (nfds_t)p->nfds, ms);
        if (n != 0 || left_ms <= INT_MAX)
            return n;
        left_ms -= INT_MAX;
    }
}

int ag__poller_wait(ag__poller *p, ag__poll_event *events, int max, int64_t timeout_ns)
{
    size_t i;
    size_t k;
    int n;
    int out = 0;

    if (max <= 0)
        return -EINVAL;
    n = poll_ns(p, timeout_ns);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    /*
     * The scan starts where the last one stopped: with more ready fds than max, starting at 0 each
     * time would report the same first max fds for as long as their waiters re-arm them, and
     * never the others.
     */
    if (p->start >= p->nfds)
        p->start = 0;
    for (k = 0; k < p->nfds && n > 0 && out < max; k++) {
        struct pollfd *pfd;

        i = (p->start + k) % p->nfds;
        pfd = &p->fds[i];
        short armed = pfd->events;
        short ready = pfd->revents;
        unsigned bits = 0;

        if (pfd->fd < 0 || ready == 0)
            continue;
        n--;
        if (ready & (POLLERR | POLLHUP | POLLNVAL)) {
            /*
             * A failed or hung-up fd stays so: report it to every armed direction and disarm it
             * entirely, or each later poll() would return at once with the same news.
             */
            bits = AG__POLL_ERR | AG__POLL_HUP;
            if (armed & POLLIN)
                bits |= AG__POLL_IN;
            if (armed & POLLOUT)
                bits |= AG__POLL_OUT;
            armed = 0;
        } else {
            if (ready & POLLIN)
                bits |= AG__POLL_IN;
            if (ready & POLLOUT)
                bits |= AG__POLL_OUT;
            armed &= (short)~ready;
        }
        set_armed(pfd, armed);
        events[out].fd = real_fd(pfd);
        events[out].events = bits;
        out++;
    }
    if (p->nfds > 0)
        p->start = (p->start + k) % p->nfds;
    return out;
}
