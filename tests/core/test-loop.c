/* test-loop.c: pipe readiness, deadlines, cancelling a waiter, cross-thread wake-up, blocking
 * fallback and the embedding calls. */
#include "asyncget.h"
#include "core/internal.h"
#include "tests/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void nonblocking_pipe(int p[2])
{
    if (pipe(p) != 0)
        abort();
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
}

/* ---- readiness: a reader parks until a writer coroutine writes ---- */

typedef struct pipe_case {
    int p[2];
    char log[16];
    int n;
    int rc;
} pipe_case;

static void reader(void *arg)
{
    pipe_case *c = arg;
    ag__io io;
    ag__io_init(&io, ag_loop_current(), c->p[0]);
    char buf[8];
    ssize_t r;
    while ((r = read(c->p[0], buf, sizeof buf)) < 0 && errno == EAGAIN) {
        c->log[c->n++] = 'w'; /* about to wait */
        ag__io_clear(&io, AG_READ);
        c->rc = ag__io_wait(&io, AG_READ, -1);
        if (c->rc < 0)
            break;
    }
    if (r > 0)
        c->log[c->n++] = buf[0];
    ag__io_close(&io);
}

static void writer(void *arg)
{
    pipe_case *c = arg;
    ag_sleep_ms(10);
    c->log[c->n++] = 'W';
    ssize_t w = write(c->p[1], "x", 1);
    (void)w;
}

static void loop_pipe_readiness(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    pipe_case c = {0};
    nonblocking_pipe(c.p);
    ag_coro_spawn(loop, reader, &c, NULL);
    ag_coro_spawn(loop, writer, &c, NULL);
    ag_loop_run(loop);
    c.log[c.n] = 0;
    tap_ok(strcmp(c.log, "wWx") == 0 && c.rc == AG_READ,
           "loop_pipe_readiness: reader waits, writer writes, reader reads (%s)", c.log);
    close(c.p[1]);
    ag_loop_free(loop);
}

/* ---- deadlines: order and lower bounds only ---- */

typedef struct deadline_case {
    int fd;
    int64_t deadline;
    int rc;
    int64_t returned_at;
    int order;
} deadline_case;

static int order_counter;

static void deadline_waiter(void *arg)
{
    deadline_case *c = arg;
    c->rc = ag_wait_fd(c->fd, AG_READ, c->deadline);
    c->returned_at = ag_now_ns();
    c->order = ++order_counter;
}

static void loop_deadlines(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    int p1[2], p2[2];
    nonblocking_pipe(p1);
    nonblocking_pipe(p2);
    int64_t now = ag_now_ns();
    deadline_case late = {p1[0], now + 60 * 1000000, 0, 0, 0};
    deadline_case early = {p2[0], now + 30 * 1000000, 0, 0, 0};
    ag_coro_spawn(loop, deadline_waiter, &late, NULL);
    ag_coro_spawn(loop, deadline_waiter, &early, NULL);
    ag_loop_run(loop);
    tap_ok(early.rc == -ETIMEDOUT && late.rc == -ETIMEDOUT && early.order == 1 && late.order == 2 &&
               early.returned_at >= early.deadline && late.returned_at >= late.deadline,
           "loop_deadlines: 30 ms wait times out first, 60 ms second, neither early");
    close(p1[0]);
    close(p1[1]);
    close(p2[0]);
    close(p2[1]);
    ag_loop_free(loop);
}

/* ---- cancel a coroutine parked on an fd ---- */

static int cancel_rc;

static void blocked_reader(void *arg)
{
    cancel_rc = ag_wait_fd(*(int *)arg, AG_READ, -1);
}

static void loop_cancel_waiter(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    int p[2];
    nonblocking_pipe(p);
    ag_coro *co;
    ag_coro_spawn(loop, blocked_reader, &p[0], &co);
    ag_loop_run_once(loop, 0); /* it parks */
    int parked = !ag_coro_done(co);
    ag_coro_cancel(co);
    ag_loop_run(loop);
    tap_ok(parked && cancel_rc == -ECANCELED && ag_coro_done(co),
           "loop_cancel_waiter: the wait returns %s", ag_err_name(cancel_rc));
    ag_coro_unref(co);
    /* The fd is free again: a new wait on it can be registered. */
    close(p[0]);
    close(p[1]);
    ag_loop_free(loop);
}

/* ---- wake-up from another thread ---- */

static int wake_calls;

static void on_wake(ag_loop *loop, void *arg)
{
    (void)arg;
    wake_calls++;
    ag_loop_stop(loop);
}

static void *waker(void *arg)
{
    usleep(20000);
    ag_loop_wake(arg);
    ag_loop_wake(arg); /* a second wake before the loop drains is folded into the first */
    return NULL;
}

static void keepalive(void *arg)
{
    (void)arg;
    ag_sleep_ms(60 * 1000);
}

static void loop_thread_wake(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    ag_loop_on_wake(loop, on_wake, NULL);
    ag_coro *co;
    ag_coro_spawn(loop, keepalive, NULL, &co); /* without the wake, the loop sleeps a minute */
    pthread_t t;
    pthread_create(&t, NULL, waker, loop);
    ag_loop_run(loop); /* returns through on_wake's stop */
    pthread_join(t, NULL);
    int first = wake_calls;
    ag_loop_wake(loop);
    ag_loop_run_once(loop, 1000);
    tap_ok(first >= 1 && wake_calls == first + 1,
           "loop_thread_wake: another thread's wake stops the loop, later wakes still work "
           "(%d, %d)",
           first, wake_calls);
    ag_coro_cancel(co);
    ag_loop_run(loop);
    ag_coro_unref(co);
    ag_loop_free(loop);
}

/* ---- every wake runs the callback once, and leaves the loop's fd quiet afterwards ---- */

static int count_calls;

static void count_wake(ag_loop *loop, void *arg)
{
    (void)loop;
    (void)arg;
    count_calls++;
}

static void loop_wake_counts(void)
{
    enum { WAKES = 1000 };
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    ag_loop_on_wake(loop, count_wake, NULL);
    int fd = ag_loop_fd(loop);
    int quiet = 1, first_bad = -1;
    ag_loop_run_once(loop, 0); /* whatever the fresh registration reports */
    int spurious = count_calls;
    for (int i = 0; i < WAKES; i++) {
        ag_loop_wake(loop);
        ag_loop_run_once(loop, 10000);
        if (fd >= 0) {
            /* Nothing happened since: a host watching the fd must not be woken again. */
            struct pollfd pfd = {fd, POLLIN, 0};
            if (poll(&pfd, 1, 0) != 0 && quiet) {
                quiet = 0;
                first_bad = i;
            }
        }
    }
    ag_loop_run_once(loop, 0);
    ag_loop_run_once(loop, 0);
    tap_ok(spurious == 0 && count_calls == WAKES && quiet,
           "loop_wake_counts: %d wakes, %d callbacks (%d before any wake), loop fd %s", WAKES,
           count_calls, spurious,
           fd < 0  ? "absent"
           : quiet ? "quiet after each"
                   : "readable again");
    if (first_bad >= 0)
        tap_diag("the loop fd was readable after wake %d", first_bad);
    ag_loop_free(loop);
}

/* ---- freeing a loop: refused while coroutines live, then complete ---- */

static void sleeper(void *arg)
{
    (void)arg;
    ag_sleep_ms(60 * 1000);
}

static void loop_free_busy(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    ag_coro *co;
    ag_coro_spawn(loop, sleeper, NULL, &co);
    int before_run = ag_loop_free(loop); /* spawned, not yet run: alive all the same */
    ag_loop_run_once(loop, 0);           /* it parks on its timer */
    int parked = ag_loop_free(loop);
    /* Untouched: the coroutine can still be cancelled and run out, and then the loop goes. */
    ag_coro_cancel(co);
    int run = ag_loop_run(loop);
    int done = ag_coro_done(co);
    ag_coro_unref(co);
    int after = ag_loop_free(loop);
    tap_ok(before_run == -EBUSY && parked == -EBUSY && run == 0 && done && after == 0 &&
               ag_loop_free(NULL) == 0,
           "loop_free_busy: %s with a coroutine spawned, %s with it parked, %d once it finished",
           ag_err_name(before_run), ag_err_name(parked), after);
}

static int free_in_cb_rc = 1;

static void free_in_callback(ag_loop *loop, void *arg)
{
    (void)arg;
    free_in_cb_rc = ag_loop_free(loop);
}

static void loop_free_in_callback(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    ag_loop_on_wake(loop, free_in_callback, NULL);
    ag_loop_wake(loop);
    ag_loop_run_once(loop, 10000);
    tap_ok(free_in_cb_rc == -EBUSY,
           "loop_free_in_callback: freeing the loop from its own "
           "callback gives %s",
           ag_err_name(free_in_cb_rc));
    ag_loop_free(loop);
}

static void never(ag_timer *t, void *arg)
{
    (void)t;
    (void)arg;
}

/* The records of registered fds go with the loop (AddressSanitizer's leak check sees them), the
 * fds stay open, and the caller's armed timer is left disarmed. */
static void loop_free_leaves_fds_and_timers(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    int p[2];
    nonblocking_pipe(p);
    ag_fd_register(loop, p[0]);
    ag_fd_register(loop, p[1]);
    ag_timer t;
    ag_timer_init(&t, never, NULL);
    ag_timer_start(loop, &t, ag_now_ns() + 60 * 1000000000LL);
    int rc = ag_loop_free(loop);
    int open0 = fcntl(p[0], F_GETFD) >= 0, open1 = fcntl(p[1], F_GETFD) >= 0;
    tap_ok(rc == 0 && open0 && open1 && !ag_timer_armed(&t),
           "loop_free_leaves_fds_and_timers: fds open %d %d, timer armed %d", open0, open1,
           ag_timer_armed(&t));
    close(p[0]);
    close(p[1]);
}

/* ---- the wait outside a coroutine blocks in poll() ---- */

static void loop_blocking_fallback(void)
{
    int p[2];
    nonblocking_pipe(p);
    int64_t t0 = ag_now_ns();
    int rc1 = ag_wait_fd(p[0], AG_READ, t0 + 20 * 1000000);
    int64_t t1 = ag_now_ns();
    ssize_t w = write(p[1], "y", 1);
    (void)w;
    int rc2 = ag_wait_fd(p[0], AG_READ, -1);
    int rc3 = ag_wait_fd(p[1], AG_WRITE, 0);
    int64_t t2 = ag_now_ns();
    ag_sleep_ms(5);
    int64_t t3 = ag_now_ns();
    tap_ok(rc1 == -ETIMEDOUT && t1 - t0 >= 20 * 1000000 && rc2 == AG_READ && rc3 == AG_WRITE &&
               t3 - t2 >= 5 * 1000000,
           "loop_blocking_fallback: wait_fd and sleep outside a coroutine block and time out");
    close(p[0]);
    close(p[1]);
}

/* ---- embedding: the loop's fd, timeout and run-once ---- */

static int embedded_done;

static void embedded(void *arg)
{
    int fd = *(int *)arg;
    if (ag_wait_fd(fd, AG_READ, -1) == AG_READ)
        embedded_done = 1;
}

static void loop_embedding(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    int p[2];
    nonblocking_pipe(p);
    ag_coro_spawn(loop, embedded, &p[0], NULL);
    int fd = ag_loop_fd(loop);
    if (fd == -ENOTSUP) {
        tap_skip("loop_embedding: the %s backend has no pollable fd", ag_loop_backend());
        ag_loop_run_once(loop, 0);
        ssize_t w = write(p[1], "z", 1);
        (void)w;
        ag_loop_run(loop);
    } else {
        int live0 = ag_loop_run_once(loop, 0); /* the coroutine parks on the pipe */
        int tmo = ag_loop_timeout_ms(loop);    /* nothing timed: no deadline */
        struct pollfd pfd = {fd, POLLIN, 0};
        int before = poll(&pfd, 1, 0); /* nothing pending: not readable */
        ssize_t w = write(p[1], "z", 1);
        (void)w;
        int after = poll(&pfd, 1, 1000); /* the foreign loop sees work */
        int live1 = ag_loop_run_once(loop, 0);
        tap_ok(live0 == 1 && tmo == -1 && before == 0 && after == 1 && live1 == 0 && embedded_done,
               "loop_embedding: fd readable only with work pending, run_once finishes it");
    }
    close(p[0]);
    close(p[1]);
    ag_loop_free(loop);
}

/* ---- a start from outside an iteration makes the loop's fd readable ---- */

static int outside_runs;

static void outside_body(void *arg)
{
    (void)arg;
    outside_runs++;
    /* A spawn from inside the loop needs no wake-up: the loop runs it in this iteration. */
    if (outside_runs == 1)
        ag_coro_spawn(ag_loop_current(), outside_body, NULL, NULL);
}

static void outside_timer_cb(ag_timer *t, void *arg)
{
    (void)t;
    (*(int *)arg)++;
}

static int readable(int fd)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    return poll(&pfd, 1, 0) == 1;
}

static void loop_outside_start_wakes(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    ag_loop_on_wake(loop, count_wake, NULL);
    int calls0 = count_calls;
    int fd = ag_loop_fd(loop);
    if (fd < 0) {
        tap_skip("loop_outside_start_wakes: the %s backend has no loop fd to wake",
                 ag_loop_backend());
        ag_loop_free(loop);
        return;
    }
    ag_loop_run_once(loop, 0);
    int quiet0 = !readable(fd);
    /* A host's callback starts a coroutine: the host learns of it through the fd. */
    ag_coro_spawn(loop, outside_body, NULL, NULL);
    int spawn_wakes = readable(fd);
    ag_loop_run_once(loop, 0);
    int quiet1 = !readable(fd) && outside_runs == 2;
    /* The same for a timer started from outside, even one due later. */
    int fired = 0;
    ag_timer t;
    ag_timer_init(&t, outside_timer_cb, &fired);
    ag_timer_start(loop, &t, ag_now_ns() + 60 * 1000000000LL);
    int timer_wakes = readable(fd);
    ag_loop_run_once(loop, 0);
    int tmo = ag_loop_timeout_ms(loop);
    int quiet2 = !readable(fd) && fired == 0 && tmo > 1000;
    ag_timer_stop(loop, &t);
    /* And for a cancel of a parked coroutine: it has to run to see it. */
    ag_coro *co;
    ag_coro_spawn(loop, sleeper, NULL, &co);
    ag_loop_run_once(loop, 0);
    int quiet3 = !readable(fd);
    ag_coro_cancel(co);
    int cancel_wakes = readable(fd);
    ag_loop_run_once(loop, 0);
    int done = ag_coro_done(co);
    ag_coro_unref(co);
    tap_ok(quiet0 && spawn_wakes && quiet1 && timer_wakes && quiet2 && quiet3 && cancel_wakes &&
               done && count_calls == calls0,
           "loop_outside_start_wakes: quiet %d, spawn wakes %d, quiet %d, timer wakes %d, quiet "
           "%d, cancel wakes %d, wake callbacks %d",
           quiet0, spawn_wakes, quiet1, timer_wakes, quiet2 && quiet3, cancel_wakes,
           count_calls - calls0);
    ag_loop_free(loop);
}

/* ---- an fd unregistered while a coroutine waits on it: the wait ends with EBADF ---- */

static int unreg_rc = 1;
static int unreg_fd;

static void unreg_waiter(void *arg)
{
    (void)arg;
    unreg_rc = ag_wait_fd(unreg_fd, AG_READ, -1);
}

static void unreg_closer(void *arg)
{
    ag_loop *loop = arg;
    ag_yield();
    ag_fd_unregister(loop, unreg_fd);
}

static void loop_unregister_waited_fd(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    int p[2];
    nonblocking_pipe(p);
    unreg_fd = p[0];
    ag_fd_register(loop, p[0]);
    ag_coro_spawn(loop, unreg_waiter, NULL, NULL);
    ag_coro_spawn(loop, unreg_closer, loop, NULL);
    ag_loop_run(loop); /* returns: nothing is left waiting */
    tap_ok(unreg_rc == -EBADF, "loop_unregister_waited_fd: the wait returns %s",
           ag_err_name(unreg_rc));
    close(p[0]);
    close(p[1]);
    ag_loop_free(loop);
}

/* ---- two one-off waits on one unregistered fd: the second is refused, not aliased ---- */

static int temp_rc[2];
static int temp_fd;

static void temp_waiter(void *arg)
{
    int i = (int)(intptr_t)arg;
    temp_rc[i] = ag_wait_fd(temp_fd, AG_READ, ag_now_ns() + 20 * 1000000);
}

static void loop_one_off_waits_share_no_fd(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    int p[2];
    nonblocking_pipe(p);
    temp_fd = p[0];
    ag_coro_spawn(loop, temp_waiter, (void *)0, NULL);
    ag_coro_spawn(loop, temp_waiter, (void *)1, NULL);
    ag_loop_run(loop);
    tap_ok(temp_rc[0] == -ETIMEDOUT && temp_rc[1] == -EBUSY,
           "loop_one_off_waits_share_no_fd: first %s, second %s", ag_err_name(temp_rc[0]),
           ag_err_name(temp_rc[1]));
    close(p[0]);
    close(p[1]);
    ag_loop_free(loop);
}

/* ---- a callback cannot drive its own loop ---- */

static int nested_rc = 1;

static void nested_wake(ag_loop *loop, void *arg)
{
    (void)arg;
    nested_rc = ag_loop_run_once(loop, 0);
}

static void loop_no_reentry(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    ag_loop_on_wake(loop, nested_wake, NULL);
    ag_loop_wake(loop);
    ag_loop_run_once(loop, 1000);
    tap_ok(nested_rc == -EDEADLK, "loop_no_reentry: run_once from a callback gives %s",
           ag_err_name(nested_rc));
    ag_loop_free(loop);
}

int main(void)
{
    tap_diag("backend: %s", ag_loop_backend());
    loop_unregister_waited_fd();
    loop_one_off_waits_share_no_fd();
    loop_no_reentry();
    loop_pipe_readiness();
    loop_deadlines();
    loop_cancel_waiter();
    loop_thread_wake();
    loop_wake_counts();
    loop_free_busy();
    loop_free_in_callback();
    loop_free_leaves_fds_and_timers();
    loop_blocking_fallback();
    loop_embedding();
    loop_outside_start_wakes();
    return tap_done();
}
