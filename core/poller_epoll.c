/* poller_epoll.c: the Linux epoll backend, edge-triggered, one registration per fd's life. */
#include "core/poller.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

struct ag__poller {
    int epfd;
    struct epoll_event buf[256];
};

bool ag__poller_reports_every_edge(void)
{
    return true;
}

const char *ag__poller_name(void)
{
    return "epoll";
}

int ag__poller_new(ag__poller **out)
{
    ag__poller *p = malloc(sizeof *p);
    if (!p)
        return -ENOMEM;
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0) {
        int err = -errno;
        free(p);
        return err;
    }
    *out = p;
    return 0;
}

void ag__poller_free(ag__poller *p)
{
    if (!p)
        return;
    close(p->epfd);
    free(p);
}

int ag__poller_fd(const ag__poller *p)
{
    return p->epfd;
}

int ag__poller_add(ag__poller *p, int fd, unsigned events)
{
    struct epoll_event ev = {.events = EPOLLET, .data.fd = fd};
    if (events & AG__POLL_IN)
        ev.events |= EPOLLIN | EPOLLRDHUP;
    if (events & AG__POLL_OUT)
        ev.events |= EPOLLOUT;
    return epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int ag__poller_del(ag__poller *p, int fd)
{
    /* Closing the fd would drop it from the set too, but only once every duplicate is closed. */
    return epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 ? -errno : 0;
}

int ag__poller_want(ag__poller *p, int fd, unsigned events)
{
    (void)p;
    (void)fd;
    (void)events;
    return 0; /* edge-triggered: nothing to re-arm */
}

int ag__poller_wait(ag__poller *p, ag__poll_event *events, int max, int64_t timeout_ns)
{
    int ms = ag__timeout_ms(timeout_ns);
    if (max > (int)(sizeof p->buf / sizeof p->buf[0]))
        max = (int)(sizeof p->buf / sizeof p->buf[0]);
    int n = epoll_wait(p->epfd, p->buf, max, ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        uint32_t e = p->buf[i].events;
        unsigned out = 0;
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))
            out |= AG__POLL_IN;
        if (e & EPOLLOUT)
            out |= AG__POLL_OUT;
        if (e & (EPOLLERR | EPOLLHUP))
            out |= AG__POLL_ERR;
        if (e & (EPOLLRDHUP | EPOLLHUP))
            out |= AG__POLL_HUP;
        events[i].fd = p->buf[i].data.fd;
        events[i].events = out;
    }
    return n;
}
