/* test-wait-any.c: ag__wait_any (one wait for several fds or a wake from elsewhere), in a
 * coroutine and in plain code, and registered fds whose readiness goes to a callback
 * (ag__io.on_ready), which is how the resolver's sockets are driven. Pipes only. */
#include "core/internal.h"
#include "tests/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

static ag_loop *loop;

static void nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

typedef struct pipes {
    int a[2], b[2];
    ag__io ra, rb;
} pipes;

static void pipes_open(pipes *p, ag_loop *l)
{
    pipe(p->a);
    pipe(p->b);
    nonblock(p->a[0]);
    nonblock(p->b[0]);
    ag__io_init(&p->ra, l, p->a[0]);
    ag__io_init(&p->rb, l, p->b[0]);
    /* Nothing has been read yet: forget the assumed readiness so that only a report counts. */
    ag__io_clear(&p->ra, AG_READ);
    ag__io_clear(&p->rb, AG_READ);
}

static void pipes_close(pipes *p)
{
    ag__io_close(&p->ra);
    ag__io_close(&p->rb);
    close(p->a[1]);
    close(p->b[1]);
}

static int writer_fd;
static void write_later(void *arg)
{
    (void)arg;
    ag_sleep_ms(20);
    write(writer_fd, "x", 1);
}

static ag_coro *waiter;
static void wake_later(void *arg)
{
    (void)arg;
    ag_sleep_ms(20);
    ag__coro_wake(waiter, 0);
}

static void cancel_later(void *arg)
{
    (void)arg;
    ag_sleep_ms(20);
    ag_coro_cancel(waiter);
}

static void in_coro(void *arg)
{
    (void)arg;
    pipes p;
    pipes_open(&p, loop);
    ag__wait_item it[2] = {{&p.ra, AG_READ, 0}, {&p.rb, AG_READ, 0}};

    writer_fd = p.b[1];
    ag_coro_spawn(loop, write_later, NULL, NULL);
    int rc = ag__wait_any(it, 2, ag_now_ns() + 5000000000LL);
    tap_ok(rc == 1 && it[0].revents == 0 && it[1].revents == AG_READ,
           "wait_any_second_fd: the write to the second pipe wakes it (rc %d, revents %u %u)", rc,
           it[0].revents, it[1].revents);
    tap_ok(p.ra.waiter[0] == NULL && p.rb.waiter[0] == NULL,
           "wait_any_gives_back_waiters: no fd keeps the coroutine as its waiter");

    rc = ag__wait_any(it, 2, -1);
    tap_ok(rc == 1 && it[1].revents == AG_READ,
           "wait_any_cached_readiness: still readable (nothing read): returns at once (%d)", rc);
    char b;
    read(p.b[0], &b, 1);
    ag__io_clear(&p.rb, AG_READ);

    int64_t t0 = ag_now_ns();
    rc = ag__wait_any(it, 2, t0 + 30000000);
    tap_ok(rc == -ETIMEDOUT && ag_now_ns() - t0 >= 30000000,
           "wait_any_deadline: -ETIMEDOUT no earlier than the deadline (%d)", rc);

    waiter = ag_coro_self();
    ag_coro_spawn(loop, wake_later, NULL, NULL);
    rc = ag__wait_any(it, 2, ag_now_ns() + 5000000000LL);
    tap_ok(rc == 0, "wait_any_woken: a wake from another party returns 0 (%d)", rc);

    rc = ag__wait_any(it, 0, ag_now_ns() + 10000000);
    tap_ok(rc == -ETIMEDOUT, "wait_any_no_items_is_a_sleep: %d", rc);

    /* A second coroutine may not wait on the same fd and direction. */
    p.ra.waiter[0] = waiter; /* as if another coroutine waited there */
    rc = ag__wait_any(it, 2, ag_now_ns() + 10000000);
    tap_ok(rc == -EBUSY && p.rb.waiter[0] == NULL,
           "wait_any_busy: -EBUSY, and the items claimed before are given back (%d)", rc);
    p.ra.waiter[0] = NULL;

    ag_coro_spawn(loop, cancel_later, NULL, NULL);
    rc = ag__wait_any(it, 2, -1);
    tap_ok(rc == -ECANCELED && p.ra.waiter[0] == NULL,
           "wait_any_cancel: -ECANCELED, waiters given back (%d)", rc);
    pipes_close(&p);
}

/* ---- callbacks ---- */

static int calls;
static unsigned last_events;
static void count_ready(ag__io *io, unsigned events)
{
    char buf[8];
    calls++;
    last_events = events;
    while (read(io->fd, buf, sizeof buf) > 0) {
    }
    ag__io_rearm(io, AG_READ);
}

static void close_in_callback(ag__io *io, unsigned events)
{
    (void)events;
    calls++;
    ag__io_close(io);
}

static void poke(void *arg)
{
    int fd = *(int *)arg;
    for (int i = 0; i < 3; i++) {
        write(fd, "y", 1);
        ag_sleep_ms(5);
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* poke writes on after a callback closed the read end */
    ag_loop_new(&loop, NULL);
    ag_coro_spawn(loop, in_coro, NULL, NULL);
    ag_loop_run(loop);

    /* Plain code: poll(). */
    pipes p;
    pipes_open(&p, NULL);
    ag__wait_item it[2] = {{&p.ra, AG_READ, 0}, {&p.rb, AG_READ, 0}};
    write(p.a[1], "z", 1);
    int rc = ag__wait_any(it, 2, ag_now_ns() + 5000000000LL);
    tap_ok(rc == 1 && it[0].revents == AG_READ && it[1].revents == 0,
           "wait_any_blocking: poll() reports the first pipe (%d)", rc);
    char b;
    read(p.a[0], &b, 1);
    ag__io_clear(&p.ra, AG_READ);
    int64_t t0 = ag_now_ns();
    rc = ag__wait_any(it, 2, t0 + 20000000);
    tap_ok(rc == -ETIMEDOUT && ag_now_ns() - t0 >= 20000000,
           "wait_any_blocking_deadline: -ETIMEDOUT no earlier than the deadline (%d)", rc);
    pipes_close(&p);

    /* A registered fd with a callback: each readiness report calls it, from the loop. */
    int q[2];
    pipe(q);
    nonblock(q[0]);
    ag__io cio;
    ag__io_init(&cio, loop, q[0]);
    cio.on_ready = count_ready;
    ag__io_rearm(&cio, AG_READ);
    ag_coro_spawn(loop, poke, &q[1], NULL);
    ag_loop_run(loop);
    tap_ok(calls == 3 && last_events == AG_READ,
           "io_on_ready_called_per_report: 3 writes, %d calls (events %u)", calls, last_events);
    ag__io_close(&cio);
    close(q[1]);

    /* The callback may close the fd it was called for. */
    pipe(q);
    nonblock(q[0]);
    ag__io_init(&cio, loop, q[0]);
    cio.on_ready = close_in_callback;
    calls = 0;
    ag_coro_spawn(loop, poke, &q[1], NULL);
    ag_loop_run(loop);
    tap_ok(calls == 1 && cio.fd == -1, "io_on_ready_may_close: one call, then no more (%d)", calls);
    close(q[1]);

    /* ag__io_move: the loop's table follows the record. */
    pipe(q);
    nonblock(q[0]);
    ag__io a, b2;
    ag__io_init(&a, loop, q[0]);
    ag__io_move(&b2, &a);
    tap_ok(loop->fds[q[0]] == &b2 && a.fd == -1 && b2.fd == q[0], "io_move_updates_loop_table");
    ag__io_close(&b2);
    close(q[1]);
    tap_ok(ag_loop_free(loop) == 0, "wait_any_loop_free: nothing left registered");
    return tap_done();
}
