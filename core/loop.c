/* loop.c: the reactor: registered fds, one iteration (ready coroutines, backend wait, timers),
 * run and stop, embedding in a foreign loop, and the thread-safe wake-up. */
#include "core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if AG__HAVE_EVENTFD
#include <sys/eventfd.h>
#endif

#define MAX_EVENTS 256

void ag_loop_opts_init(ag_loop_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->stack_size = 64 * 1024;
    opts->stack_cache = 1024;
}

static int set_fd_table(ag_loop *loop, int fd, ag__io *io)
{
    if ((size_t)fd >= loop->nfds) {
        size_t n = loop->nfds ? loop->nfds : 64;
        while (n <= (size_t)fd)
            n *= 2;
        ag__io **fds = realloc(loop->fds, n * sizeof *fds);
        if (!fds)
            return -ENOMEM;
        memset(fds + loop->nfds, 0, (n - loop->nfds) * sizeof *fds);
        loop->fds = fds;
        loop->nfds = n;
    }
    loop->fds[fd] = io;
    return 0;
}

/* Register io for fd with loop's backend for events (AG__POLL_*). */
static int io_register(ag__io *io, ag_loop *loop, int fd, unsigned events)
{
    memset(io, 0, sizeof *io);
    io->fd = fd;
    io->loop = loop;
    /* Assume readiness: the first I/O call tells the truth, and only EAGAIN leads to a wait. */
    io->ready = AG__POLL_IN | AG__POLL_OUT;
    if (!loop)
        return 0;
    if (fd < 0)
        return -EBADF;
    if ((size_t)fd < loop->nfds && loop->fds[fd])
        return -EEXIST;
    int rc = set_fd_table(loop, fd, io);
    if (rc < 0)
        return rc;
    rc = ag__poller_add(loop->poller, fd, events);
    if (rc < 0)
        loop->fds[fd] = NULL;
    return rc;
}

int ag__io_init(ag__io *io, ag_loop *loop, int fd)
{
    return io_register(io, loop, fd, AG__POLL_IN | AG__POLL_OUT);
}

static void io_forget(ag__io *io)
{
    ag_loop *loop = io->loop;
    if (!loop || io->fd < 0)
        return;
    ag__poller_del(loop->poller, io->fd);
    if ((size_t)io->fd < loop->nfds && loop->fds[io->fd] == io)
        loop->fds[io->fd] = NULL;
    io->loop = NULL;
}

void ag__io_detach(ag__io *io)
{
    io_forget(io);
    io->fd = -1;
}

void ag__io_close(ag__io *io)
{
    if (io->fd < 0)
        return;
    io_forget(io);
    close(io->fd);
    io->fd = -1;
}

void ag__io_move(ag__io *dst, ag__io *src)
{
    *dst = *src;
    ag_loop *loop = src->loop;
    if (loop && src->fd >= 0 && (size_t)src->fd < loop->nfds && loop->fds[src->fd] == src)
        loop->fds[src->fd] = dst;
    src->fd = -1;
    src->loop = NULL;
}

void ag__io_rearm(ag__io *io, unsigned events)
{
    if (io->loop && io->fd >= 0)
        ag__poller_want(io->loop->poller, io->fd, ag__poll_bits(events));
}

int ag_wait_fd(int fd, int events, int64_t deadline_ns)
{
    ag_coro *co = ag__current;
    ag_loop *loop = co ? co->loop : NULL;
    if (fd < 0 || !(events & (AG_READ | AG_WRITE)))
        return -EINVAL;
    /* Whether the wait begins after its deadline is decided now, before the registration
     * below: its system calls can give the CPU away past the deadline (a loaded machine, a slow
     * kqueue emulation), and an fd ready all along must not then time out without a look. */
    bool late = deadline_ns >= 0 && ag_now_ns() >= deadline_ns;
    if (loop && (size_t)fd < loop->nfds && loop->fds[fd]) {
        ag__io *io = loop->fds[fd];
        if (io->temp)
            return -EBUSY; /* another coroutine's one-off wait: it lives on that stack */
        ag__io_clear(io, (unsigned)events); /* the caller asks because it saw EAGAIN */
        return ag__io_wait_begun(io, (unsigned)events, deadline_ns, late);
    }
    /* An fd the loop does not know: register it for this wait only. The backend reports the
     * readiness the fd already has when it is added. */
    ag__io tmp;
    int rc = ag__io_init(&tmp, loop, fd);
    if (rc < 0)
        return rc;
    tmp.ready = 0; /* a one-off wait trusts no assumed readiness */
    tmp.temp = true;
    rc = ag__io_wait_begun(&tmp, (unsigned)events, deadline_ns, late);
    io_forget(&tmp);
    return rc;
}

int ag_fd_register(ag_loop *loop, int fd)
{
    ag__io *io = malloc(sizeof *io);
    if (!io)
        return -ENOMEM;
    int rc = ag__io_init(io, loop, fd);
    if (rc < 0) {
        free(io);
        return rc;
    }
    io->heap = true;
    return 0;
}

void ag_fd_unregister(ag_loop *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->nfds || !loop->fds[fd] || !loop->fds[fd]->heap)
        return;
    ag__io *io = loop->fds[fd];
    /* Coroutines parked on it learn that it is gone, and never touch it again. */
    for (int i = 0; i < 2; i++) {
        ag_coro *w = io->waiter[i];
        if (w && w->wait_io == io) {
            w->wait_io = NULL;
            ag__coro_wake(w, -EBADF);
        }
    }
    io_forget(io);
    free(io);
}

static int wake_setup(ag_loop *loop)
{
    int rfd, wfd;
#if AG__HAVE_EVENTFD
    rfd = wfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (rfd < 0)
        return -errno;
#else
    int p[2];
    if (pipe(p) < 0)
        return -errno;
    for (int i = 0; i < 2; i++) {
        fcntl(p[i], F_SETFL, fcntl(p[i], F_GETFL) | O_NONBLOCK);
        fcntl(p[i], F_SETFD, FD_CLOEXEC);
    }
    rfd = p[0];
    wfd = p[1];
#endif
    loop->wake_wfd = wfd;
    /* Readable only: an eventfd is always writable, and on an edge backend draining it would
     * raise a writability edge that wakes the loop (and a host watching its fd) once more. */
    int rc = io_register(&loop->wake_io, loop, rfd, AG__POLL_IN);
    if (rc < 0) {
        close(rfd);
        if (wfd != rfd)
            close(wfd);
        loop->wake_wfd = -1;
        loop->wake_io.fd = -1;
    }
    return rc;
}

int ag_loop_new(ag_loop **out, const ag_loop_opts *opts)
{
    ag_loop_opts defaults;
    if (!opts) {
        ag_loop_opts_init(&defaults);
        opts = &defaults;
    }
    ag_loop *loop = calloc(1, sizeof *loop);
    if (!loop)
        return -ENOMEM;
    ag__queue_init(&loop->ready);
    ag__queue_init(&loop->later);
    loop->wake_io.fd = -1;
    loop->wake_wfd = -1;
    loop->max_events = MAX_EVENTS;
    int rc = -ENOMEM;
    loop->events = calloc(MAX_EVENTS, sizeof *loop->events);
    if (!loop->events)
        goto fail;
    rc = ag__stack_pool_new(&loop->stacks, opts->stack_size ? opts->stack_size : 64 * 1024,
                            opts->stack_cache ? opts->stack_cache : 1024);
    if (rc < 0)
        goto fail;
    rc = ag__poller_new(&loop->poller);
    if (rc < 0)
        goto fail;
    rc = wake_setup(loop);
    if (rc < 0)
        goto fail;
    *out = loop;
    return 0;
fail:
    ag_loop_free(loop);
    return rc;
}

int ag_loop_free(ag_loop *loop)
{
    if (!loop)
        return 0;
    /* A live coroutine holds a stack, maybe a one-off fd record and a client's request: freeing
     * under it would leak them or run its callbacks on freed memory. */
    if (loop->live > 0 || loop->in_run || loop->in_iteration)
        return -EBUSY;
    /* A record that ag_fd_register did not make belongs to an object that outlives this call,
     * such as a client's idle connection: it would unregister from a freed loop later. Free
     * the client first. */
    for (size_t fd = 0; fd < loop->nfds; fd++) {
        ag__io *io = loop->fds[fd];
        if (io && !io->heap && io != &loop->wake_io)
            return -EBUSY;
    }
    /* Registered fds are the caller's to close; only our records of them go. */
    for (size_t fd = 0; fd < loop->nfds; fd++) {
        ag__io *io = loop->fds[fd];
        if (io && io->heap) {
            io_forget(io);
            free(io);
        }
    }
    if (loop->wake_wfd >= 0 && loop->wake_wfd != loop->wake_io.fd)
        close(loop->wake_wfd);
    ag__io_close(&loop->wake_io);
    ag__poller_free(loop->poller);
    ag__stack_pool_free(loop->stacks);
    ag__timer_heap_free(&loop->timers);
    free(loop->fds);
    free(loop->events);
    free(loop);
    return 0;
}

const char *ag_loop_backend(void)
{
    return ag__poller_name();
}

ag_loop *ag_loop_current(void)
{
    return ag__current_loop;
}

static void wake_drain(ag_loop *loop)
{
    uint64_t buf[8];
    while (read(loop->wake_io.fd, buf, sizeof buf) > 0) {
    }
    loop->kick_pending = false;
    /* Cleared after draining: a wake that found the flag still set was folded into this one,
     * and its work is visible to the callback below. A read-modify-write with acquire and
     * release order synchronizes with that waker even on weakly ordered CPUs. */
    int woken = atomic_exchange_explicit(&loop->wake_pending, 0, memory_order_acq_rel);
    ag__poller_want(loop->poller, loop->wake_io.fd, AG__POLL_IN);
    /* Only ag_loop_wake calls back: the kicks of ag__loop_kick are the loop's own business. */
    if (woken && loop->wake_cb)
        loop->wake_cb(loop, loop->wake_arg);
}

void ag__loop_kick_host(ag_loop *loop)
{
    /* Inside an iteration the loop itself computes its next timeout afterwards; a host re-reads
     * ag_loop_timeout_ms after each ag_loop_run_once. Outside one, nothing else would tell the
     * host, which may be sleeping on an older, later timeout or on none at all. One write per
     * batch of starts: the flag holds until the iteration that drains it. */
    if (loop->wake_wfd < 0)
        return; /* a loop still being made */
    loop->kick_pending = true;
    uint64_t one = 1;
    ssize_t w = write(loop->wake_wfd, &one, sizeof one);
    (void)w; /* a full pipe or counter already makes the fd readable */
}

static void dispatch(ag_loop *loop, int n)
{
    for (int i = 0; i < n; i++) {
        int fd = loop->events[i].fd;
        unsigned ev = loop->events[i].events;
        if (fd < 0 || (size_t)fd >= loop->nfds || !loop->fds[fd])
            continue; /* closed since the backend collected the event */
        ag__io *io = loop->fds[fd];
        if (io == &loop->wake_io) {
            if (ev & (AG__POLL_IN | AG__POLL_ERR))
                wake_drain(loop); /* only readability is a wake-up */
            continue;
        }
        if (ev & AG__POLL_ERR)
            ev |= AG__POLL_IN | AG__POLL_OUT;
        io->ready |= ev & (AG__POLL_IN | AG__POLL_OUT | AG__POLL_HUP);
        if (io->on_ready) {
            unsigned got = (ev & AG__POLL_IN ? (unsigned)AG_READ : 0u) |
                           (ev & AG__POLL_OUT ? (unsigned)AG_WRITE : 0u);
            if (got)
                io->on_ready(io, got); /* may close and free io: nothing of it after this */
            continue;
        }
        if ((ev & AG__POLL_IN) && io->waiter[0])
            ag__coro_wake(io->waiter[0], AG_READ);
        if ((ev & AG__POLL_OUT) && io->waiter[1])
            ag__coro_wake(io->waiter[1], AG_WRITE);
    }
}

static void expire_timers(ag_loop *loop)
{
    int64_t now = ag_now_ns();
    ag_timer *t;
    /* At most as many fires as there were timers: a callback that re-arms its timer at a
     * deadline already past is served again in the next iteration, not in an endless loop. */
    size_t budget = loop->timers.len;
    while (budget-- > 0 && (t = ag__timer_heap_top(&loop->timers)) && t->deadline_ns <= now) {
        ag__timer_heap_remove(&loop->timers, t);
        t->cb(t, t->arg);
    }
}

static int64_t next_timeout_ns(const ag_loop *loop)
{
    if (!ag__queue_empty(&loop->ready) || !ag__queue_empty(&loop->later) || loop->stop)
        return 0;
    const ag_timer *t = ag__timer_heap_top(&loop->timers);
    if (!t)
        return -1;
    int64_t left = t->deadline_ns - ag_now_ns();
    return left > 0 ? left : 0;
}

int ag_loop_timeout_ms(const ag_loop *loop)
{
    return ag__timeout_ms(next_timeout_ns(loop));
}

int ag_loop_fd(const ag_loop *loop)
{
    return ag__poller_fd(loop->poller);
}

static int run_once(ag_loop *loop, int64_t timeout_ns)
{
    ag_loop *outer = ag__current_loop;
    ag__current_loop = loop;
    loop->in_iteration = true;
    ag__loop_run_ready(loop);
    int64_t t = next_timeout_ns(loop);
    if (timeout_ns >= 0 && (t < 0 || t > timeout_ns))
        t = timeout_ns;
    if (t < 0 && loop->live == 0)
        t = 0; /* nothing could ever end an endless wait: just collect what is pending */
    int n = ag__poller_wait(loop->poller, loop->events, loop->max_events, t);
    /* Timers before I/O. A wait whose timer fires takes one last look at its fds (ag__io_wait):
     * readiness that came while the loop was late still counts, and a wait begun after its
     * deadline returns at once, so a stream that never runs dry cannot outlast its deadline. */
    expire_timers(loop);
    if (n > 0)
        dispatch(loop, n);
    ag__loop_resume_later(loop); /* after the poll and the timers, as they were promised */
    ag__loop_run_ready(loop);
    loop->in_iteration = false;
    ag__current_loop = outer;
    return n < 0 ? n : 0;
}

int ag_loop_run_once(ag_loop *loop, int timeout_ms)
{
    if (ag__current || loop->in_iteration)
        return -EDEADLK; /* a coroutine or a callback of this loop cannot drive it */
    int rc = run_once(loop, timeout_ms < 0 ? -1 : (int64_t)timeout_ms * 1000000);
    loop->stop = false; /* a stop asked for during one iteration ends only that iteration */
    if (rc < 0)
        return rc;
    return (int)(loop->live + loop->timers.len);
}

int ag_loop_run(ag_loop *loop)
{
    if (ag__current || loop->in_run || loop->in_iteration)
        return -EDEADLK;
    loop->in_run = true;
    int rc = 0;
    while (!loop->stop && (loop->live > 0 || loop->timers.len > 0)) {
        rc = run_once(loop, -1);
        if (rc < 0)
            break;
    }
    loop->stop = false;
    loop->in_run = false;
    return rc;
}

void ag_loop_stop(ag_loop *loop)
{
    loop->stop = true;
}

void ag_loop_wake(ag_loop *loop)
{
    if (atomic_exchange(&loop->wake_pending, 1))
        return;
    uint64_t one = 1;
    ssize_t w = write(loop->wake_wfd, &one, sizeof one);
    (void)w; /* a full pipe or counter already means "wake up" */
}

void ag_loop_on_wake(ag_loop *loop, void (*cb)(ag_loop *loop, void *arg), void *arg)
{
    loop->wake_cb = cb;
    loop->wake_arg = arg;
}
