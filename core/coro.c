/* coro.c: stackful coroutines on the loop: spawn, park and wake, yield, sleep, cancel, join. */
#include "core/internal.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>

#ifdef AG_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

_Thread_local ag_coro *ag__current;
_Thread_local ag_loop *ag__current_loop;

/* Every switch goes through here so that AddressSanitizer knows which stack is live: it must be
 * told before the switch where the next stack lies, and after it that the switch happened. */
static void switch_to_coro(ag_loop *loop, ag_coro *co)
{
#ifdef AG_ASAN
    __sanitizer_start_switch_fiber(&loop->sched_asan_fake_stack, co->stack_lo,
                                   ag__stack_size(loop->stacks));
#endif
    ag__ctx_switch(&loop->sched_ctx, &co->ctx);
#ifdef AG_ASAN
    __sanitizer_finish_switch_fiber(loop->sched_asan_fake_stack, NULL, NULL);
#endif
}

static void switch_to_sched(ag_loop *loop, ag_coro *co)
{
#ifdef AG_ASAN
    /* A finished coroutine passes no save slot: its fake stack is released. */
    __sanitizer_start_switch_fiber(co->state == AG__CO_DONE ? NULL : &co->asan_fake_stack,
                                   loop->sched_stack_bottom, loop->sched_stack_size);
#endif
    ag__ctx_switch(&co->ctx, &loop->sched_ctx);
#ifdef AG_ASAN
    __sanitizer_finish_switch_fiber(co->asan_fake_stack, &loop->sched_stack_bottom,
                                    &loop->sched_stack_size);
#endif
}

static void coro_main(void *arg)
{
    ag_coro *co = arg;
#ifdef AG_ASAN
    __sanitizer_finish_switch_fiber(NULL, &co->loop->sched_stack_bottom,
                                    &co->loop->sched_stack_size);
#endif
    co->fn(co->arg);
    co->state = AG__CO_DONE;
    if (co->joiner)
        ag__coro_wake(co->joiner, 0);
    switch_to_sched(co->loop, co);
    __builtin_unreachable();
}

static void enqueue(ag_loop *loop, ag_coro *co)
{
    ag__queue_push(&loop->ready, &co->ready);
}

static void coro_release(ag_coro *co)
{
    if (--co->refs == 0)
        free(co);
}

static void run_round(ag_loop *loop);

int ag_coro_spawn(ag_loop *loop, ag_coro_fn fn, void *arg, ag_coro **out)
{
    ag_coro *co = calloc(1, sizeof *co);
    if (!co)
        return -ENOMEM;
    int rc = ag__stack_get(loop->stacks, &co->stack_lo);
    if (rc < 0) {
        free(co);
        return rc;
    }
    co->loop = loop;
    co->fn = fn;
    co->arg = arg;
    co->refs = out ? 2 : 1;
    co->state = AG__CO_READY;
    ag_timer_init(&co->timer, NULL, co);
    ag__ctx_make(&co->ctx, co->stack_lo, ag__stack_size(loop->stacks), coro_main, co);
    loop->live++;
    ag__loop_kick(loop);
    enqueue(loop, co);
    if (out)
        *out = co;
    return 0;
}

void ag__loop_run_ready(ag_loop *loop)
{
    /* Run what is ready, round by round: coroutines made ready during a round run in the next.
     * After a bounded number of rounds the loop goes back to the backend and the timers, so a
     * coroutine that keeps yielding cannot starve I/O, yet yields do not cost a system call. */
    for (int round = 0; round < 64 && !ag__queue_empty(&loop->ready) && !loop->stop; round++)
        run_round(loop);
}

static void run_round(ag_loop *loop)
{
    ag__queue round;
    ag__queue_init(&round);
    ag__queue_move(&loop->ready, &round);
    for (ag__queue *node; (node = ag__queue_pop(&round));) {
        ag_coro *co = ag__queue_data(node, ag_coro, ready);
        co->state = AG__CO_RUNNING;
        loop->running = co;
        ag__current = co;
        switch_to_coro(loop, co);
        ag__current = NULL;
        loop->running = NULL;
        if (co->state == AG__CO_DONE) {
            ag__stack_put(loop->stacks, co->stack_lo);
            co->stack_lo = NULL;
            loop->live--;
            coro_release(co);
        }
    }
}

int ag__coro_park(void)
{
    ag_coro *co = ag__current;
    co->state = AG__CO_PARKED;
    co->streak = 0;
    switch_to_sched(co->loop, co);
    return co->result;
}

void ag__coro_wake(ag_coro *co, int result)
{
    if (co->state != AG__CO_PARKED)
        return;
    co->state = AG__CO_READY;
    co->result = result;
    enqueue(co->loop, co);
    ag__loop_kick(co->loop); /* a cancel from a host's callback, say */
}

void ag_coro_unref(ag_coro *co)
{
    if (co)
        coro_release(co);
}

void ag_coro_cancel(ag_coro *co)
{
    if (!co || co->state == AG__CO_DONE)
        return;
    co->cancelled = true;
    if (co->state == AG__CO_READY && co->loop->running != co)
        co->result = -ECANCELED; /* woken but not yet run: its wait returns the cancel too */
    ag__coro_wake(co, -ECANCELED);
}

int ag_coro_done(const ag_coro *co)
{
    return co->state == AG__CO_DONE;
}

ag_coro *ag_coro_self(void)
{
    return ag__current;
}

int ag_coro_join(ag_coro *co)
{
    ag_coro *self = ag__current;
    if (!self || co == self || co->loop != self->loop)
        return -EINVAL;
    if (co->state == AG__CO_DONE)
        return 0;
    if (co->joiner)
        return -EBUSY;
    if (self->cancelled)
        return -ECANCELED;
    co->joiner = self;
    int rc = ag__coro_park();
    if (co->joiner == self)
        co->joiner = NULL;
    return rc < 0 ? rc : 0;
}

int ag_yield(void)
{
    ag_coro *co = ag__current;
    if (!co)
        return 0;
    if (co->cancelled)
        return -ECANCELED;
    co->state = AG__CO_READY;
    enqueue(co->loop, co);
    switch_to_sched(co->loop, co);
    return co->cancelled ? -ECANCELED : 0;
}

void ag__loop_resume_later(ag_loop *loop)
{
    ag__queue_move(&loop->later, &loop->ready);
}

/* Yield until the loop has polled its backend and run its timers: a plain ag_yield() would run
 * this coroutine again in the next round of ready coroutines, before any I/O or timer. */
static void yield_to_loop(ag_coro *co)
{
    ag_loop *loop = co->loop;
    co->state = AG__CO_READY;
    ag__queue_push(&loop->later, &co->ready);
    co->streak = 0;
    switch_to_sched(loop, co);
}

int ag__coro_checkpoint(int64_t deadline_ns)
{
    ag_coro *co = ag__current;
    if (co) {
        if (++co->streak >= AG__CHECKPOINT_BUDGET)
            yield_to_loop(co);
        if (co->cancelled)
            return -ECANCELED;
    }
    if (deadline_ns >= 0 && ag_now_ns() >= deadline_ns)
        return -ETIMEDOUT;
    return 0;
}

static void timer_wake(ag_timer *timer, void *arg)
{
    (void)timer;
    ag__coro_wake(arg, -ETIMEDOUT);
}

int ag__coro_park_until(int64_t deadline_ns)
{
    ag_coro *co = ag__current;
    if (co->cancelled)
        return -ECANCELED;
    if (deadline_ns >= 0) {
        co->timer.cb = timer_wake;
        int rc = ag_timer_start(co->loop, &co->timer, deadline_ns);
        if (rc < 0)
            return rc;
    }
    int rc = ag__coro_park();
    if (deadline_ns >= 0)
        ag_timer_stop(co->loop, &co->timer);
    return rc;
}

int ag_sleep_until(int64_t deadline_ns)
{
    ag_coro *co = ag__current;
    if (!co) {
        for (;;) {
            int64_t left = deadline_ns - ag_now_ns();
            if (left <= 0)
                return 0;
            struct timespec ts = {(time_t)(left / 1000000000), (long)(left % 1000000000)};
            nanosleep(&ts, NULL);
        }
    }
    int rc = ag__coro_park_until(deadline_ns);
    return rc == -ETIMEDOUT ? 0 : rc;
}

int ag_sleep_ms(int64_t ms)
{
    return ag_sleep_until(ag_now_ns() + ms * 1000000);
}

/* The readiness of each item, from the cached bits; the count of items with some. */
static int items_ready(ag__wait_item *items, int n)
{
    int got = 0;
    for (int i = 0; i < n; i++) {
        items[i].revents = ag__io_ready(items[i].io, items[i].events);
        got += items[i].revents != 0;
    }
    return got;
}

/* Plain blocking code: the wait in poll(). A deadline already past still gets one look. */
static int wait_any_poll(ag__wait_item *items, int n, int64_t deadline_ns)
{
    struct pollfd pfds[AG__WAIT_ANY_MAX];
    for (int i = 0; i < n; i++) {
        pfds[i] = (struct pollfd){items[i].io->fd, 0, 0};
        if (items[i].events & AG_READ)
            pfds[i].events |= POLLIN | AG__POLLRDHUP;
        if (items[i].events & AG_WRITE)
            pfds[i].events |= POLLOUT;
    }
    for (;;) {
        int ms = -1;
        int64_t left = 0;
        if (deadline_ns >= 0) {
            left = deadline_ns - ag_now_ns();
            ms = left <= 0 ? 0 : ag__timeout_ms(left);
        }
        int r = poll(pfds, (nfds_t)n, ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0 && left <= 0 && deadline_ns >= 0)
            return -ETIMEDOUT;
        if (r == 0)
            continue;
        for (int i = 0; i < n; i++) {
            short re = pfds[i].revents;
            unsigned got = 0;
            if (re & POLLNVAL)
                return -EBADF;
            if (re & (POLLIN | POLLHUP | POLLERR))
                got |= AG_READ;
            if (re & (POLLOUT | POLLHUP | POLLERR))
                got |= AG_WRITE;
            items[i].io->ready |= ag__poll_bits(got);
            if (re & (POLLHUP | AG__POLLRDHUP))
                items[i].io->ready |= AG__POLL_HUP;
        }
        int ready = items_ready(items, n);
        if (ready)
            return ready;
    }
}

static bool past(int64_t deadline_ns)
{
    return deadline_ns >= 0 && ag_now_ns() >= deadline_ns;
}

/* A parked wait whose deadline fired: did its fds become ready all the same? Timers run before
 * I/O in an iteration, and a loop that comes late to its poll (a long iteration, a starved
 * process) finds deadlines passed for readiness that came in time: a connect made in 1 ms
 * would fail as "timed out" because this process did not look for 40 s. One poll() with no wait
 * tells, also for fds whose events did not fit in this iteration's batch. The wait began before
 * its deadline (a later one returns at once, above), so a peer that never stops sending still
 * cannot hold a wait past its deadline by more than this one look. */
static int last_look(ag__wait_item *items, int n)
{
    for (int i = 0; i < n; i++)
        items[i].revents = 0;
    return wait_any_poll(items, n, 0);
}

/* late: 1 or 0 when the caller found whether the wait began after its deadline, -1 to find it
 * here. */
static int io_wait(ag__io *io, unsigned events, int64_t deadline_ns, int late)
{
    ag_coro *co = ag__current;
    if (ag__io_ready(io, events)) {
        /* No wait: a caller that never sees EAGAIN would otherwise never let anything else run
         * and never notice its cancel or deadline. */
        int rc = ag__coro_checkpoint(deadline_ns);
        if (rc < 0)
            return rc;
        if (ag__io_ready(io, events))
            return (int)ag__io_ready(io, events);
    }
    if (!co || co->loop != io->loop) {
        ag__wait_item it = {io, events, 0};
        int rc = wait_any_poll(&it, 1, deadline_ns);
        return rc < 0 ? rc : (int)it.revents;
    }
    if (co->cancelled)
        return -ECANCELED;
    if (late < 0 ? past(deadline_ns) : late)
        return -ETIMEDOUT;
    unsigned want = 0;
    if (events & AG_READ) {
        if (io->waiter[0])
            return -EBUSY;
        io->waiter[0] = co;
        want |= AG__POLL_IN;
    }
    if (events & AG_WRITE) {
        if (io->waiter[1]) {
            if (io->waiter[0] == co)
                io->waiter[0] = NULL;
            return -EBUSY;
        }
        io->waiter[1] = co;
        want |= AG__POLL_OUT;
    }
    ag__poller_want(io->loop->poller, io->fd, want);
    if (deadline_ns >= 0) {
        co->timer.cb = timer_wake;
        int rc = ag_timer_start(co->loop, &co->timer, deadline_ns);
        if (rc < 0) {
            io->waiter[0] = io->waiter[0] == co ? NULL : io->waiter[0];
            io->waiter[1] = io->waiter[1] == co ? NULL : io->waiter[1];
            return rc;
        }
    }
    co->wait_io = io;
    int rc = ag__coro_park();
    if (deadline_ns >= 0)
        ag_timer_stop(co->loop, &co->timer);
    if (co->wait_io != io)
        return -EBADF; /* unregistered while we waited: io is gone, touch nothing of it */
    co->wait_io = NULL;
    if (io->waiter[0] == co)
        io->waiter[0] = NULL;
    if (io->waiter[1] == co)
        io->waiter[1] = NULL;
    if (rc == -ETIMEDOUT) {
        ag__wait_item it = {io, events, 0};
        rc = last_look(&it, 1);
        return rc < 0 ? rc : (int)it.revents;
    }
    if (rc < 0)
        return rc;
    unsigned got = ag__io_ready(io, events);
    return got ? (int)got : (int)events; /* an error report: let the I/O call tell */
}

int ag__io_wait(ag__io *io, unsigned events, int64_t deadline_ns)
{
    return io_wait(io, events, deadline_ns, -1);
}

int ag__io_wait_begun(ag__io *io, unsigned events, int64_t deadline_ns, bool late)
{
    return io_wait(io, events, deadline_ns, late);
}

int ag__wait_any(ag__wait_item *items, int n, int64_t deadline_ns)
{
    if (n < 0 || n > AG__WAIT_ANY_MAX)
        return -EINVAL;
    int ready = items_ready(items, n);
    if (ready) {
        int rc = ag__coro_checkpoint(deadline_ns);
        return rc < 0 ? rc : items_ready(items, n);
    }
    ag_coro *co = ag__current;
    /* Plain code, or fds of no loop or of another loop (a blocking client used from inside a
     * coroutine): the same wait in poll(), blocking the thread. */
    bool foreign = !co;
    for (int i = 0; i < n && !foreign; i++)
        foreign = items[i].io->loop != co->loop;
    if (foreign)
        return n ? wait_any_poll(items, n, deadline_ns) : -EINVAL;
    if (co->cancelled)
        return -ECANCELED;
    if (past(deadline_ns))
        return -ETIMEDOUT;
    int i = 0, rc = 0;
    for (; i < n; i++) {
        ag__io *io = items[i].io;
        if (((items[i].events & AG_READ) && io->waiter[0]) ||
            ((items[i].events & AG_WRITE) && io->waiter[1])) {
            rc = -EBUSY;
            break;
        }
        if (items[i].events & AG_READ)
            io->waiter[0] = co;
        if (items[i].events & AG_WRITE)
            io->waiter[1] = co;
        ag__poller_want(co->loop->poller, io->fd, ag__poll_bits(items[i].events));
    }
    if (rc == 0)
        rc = ag__coro_park_until(deadline_ns);
    /* Every item this wait claimed is given back, whatever woke it. */
    for (int j = 0; j < i; j++) {
        ag__io *io = items[j].io;
        if (io->waiter[0] == co)
            io->waiter[0] = NULL;
        if (io->waiter[1] == co)
            io->waiter[1] = NULL;
    }
    if (rc == -ETIMEDOUT && i == n)
        return last_look(items, n);
    if (rc < 0)
        return rc;
    return items_ready(items, n);
}
