/* test-pool.c: the keep-alive pool without any server: a waiter that asks for a fresh connection
 * never gets an idle one, an idle connection its peer closed is seen on every backend, and ten
 * thousand waiters timing out together each get their timeout and leave the pool at rest.
 * Connections are socketpairs, so nothing leaves the process. */
#include "net/net.h"
#include "tests/tap.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static ag_loop *loop;
static ag__pool *pool;
static const char *const key = "http://a.test:80";
static int peer_fd = -1; /* the other end of the last connection made */

static void new_pool(unsigned max_total, unsigned max_per_host)
{
    ag__pool_opts o = {
        .max_total = max_total,
        .max_per_host = max_per_host,
        .max_connecting = 8,
        .idle_ns = 60 * 1000000000ll,
        .liveness_check = true,
    };
    ag__pool_new(&pool, loop, &o);
}

/* A registered connection on a slot of h, standing in for a connect. */
static ag__conn *make_conn(ag__host *h)
{
    ag__conn *c = ag__pool_conn_new(pool, h);
    int sv[2];
    if (!c || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
        abort();
    if (peer_fd >= 0)
        close(peer_fd);
    peer_fd = sv[1];
    if (ag__io_init(&c->io, loop, sv[0]) < 0)
        abort();
    ag__conn_attach(c);
    return c;
}

static ag__pool_counts counts(void)
{
    ag__pool_counts n;
    ag__pool_counts_get(pool, &n);
    return n;
}

/* ---- a fresh waiter queued behind a busy connection ---- */

static ag__conn *first_conn;
static int fresh_rc = 1;
static ag__conn *fresh_got;
static ag__pool_counts fresh_counts;

static void holder(void *arg)
{
    (void)arg;
    ag__host *h;
    ag__conn *c;
    if (ag__pool_acquire(pool, key, false, -1, &h, &c) != 0 || c)
        abort();
    first_conn = make_conn(h);
    ag_sleep_ms(20); /* the fresh waiter queues meanwhile */
    ag__pool_release(pool, first_conn, true);
}

/* Claim a fresh connection within wait_ms, note what came and the counts at that moment, and
 * give it back. */
static void claim_fresh(int64_t wait_ms)
{
    ag__host *h;
    fresh_rc = ag__pool_acquire(pool, key, true, ag_now_ns() + wait_ms * 1000000, &h, &fresh_got);
    fresh_counts = counts();
    if (fresh_rc == 0 && fresh_got)
        ag__pool_release(pool, fresh_got, false);
    else if (fresh_rc == 0)
        ag__pool_release_slot(pool, h);
}

static void fresh_waiter(void *arg)
{
    (void)arg;
    claim_fresh(2000);
}

static void fresh_queued(void)
{
    new_pool(4, 1);
    ag_coro_spawn(loop, holder, NULL, NULL);
    ag_coro_spawn(loop, fresh_waiter, NULL, NULL);
    ag_loop_run(loop);
    tap_ok(fresh_rc == 0 && fresh_got == NULL && fresh_counts.total == 1 && fresh_counts.idle == 0,
           "pool_fresh_waiter: a queued waiter that asked for a fresh connection gets a slot, not "
           "the idle one (rc %d, %s, %u in use, %u idle)",
           fresh_rc, fresh_got ? "got the idle connection" : "got a slot", fresh_counts.total,
           fresh_counts.idle);
    ag__pool_counts n = counts();
    tap_ok(n.total == 0 && n.idle == 0 && n.waiting == 0, "pool_fresh_waiter: the pool is at rest");
    ag__pool_free(pool);
}

/* ---- a fresh request on a host whose only slot holds an idle connection ---- */

static void fresh_full(void *arg)
{
    (void)arg;
    ag__host *h;
    ag__conn *c;
    if (ag__pool_acquire(pool, key, false, -1, &h, &c) != 0 || c)
        abort();
    ag__pool_release(pool, make_conn(h), true);
    claim_fresh(300);
}

static void fresh_idle_only(void)
{
    new_pool(4, 1);
    ag_coro_spawn(loop, fresh_full, NULL, NULL);
    ag_loop_run(loop);
    tap_ok(fresh_rc == 0 && fresh_got == NULL && fresh_counts.total == 1 && fresh_counts.idle == 0,
           "pool_fresh_closes_idle: a fresh request on a host full of idle connections closes one "
           "and gets its slot (%s, %u in use, %u idle)",
           fresh_rc    ? ag_err_name(fresh_rc)
           : fresh_got ? "got the idle connection"
                       : "got a slot",
           fresh_counts.total, fresh_counts.idle);
    ag__pool_free(pool);
}

/* ---- the peer closes an idle connection ---- */

static int idle_rc = 1;
static ag__conn *idle_before, *idle_after;

static void idle_close(void *arg)
{
    (void)arg;
    ag__host *h;
    ag__conn *c;
    if (ag__pool_acquire(pool, key, false, -1, &h, &c) != 0 || c)
        abort();
    idle_before = make_conn(h);
    /* A response read to its end, as the client reads it: the wait reports the byte (and on
     * backends that report only armed directions, leaves read interest disarmed), the reads
     * drain it and forget the readiness. */
    char b;
    while (recv(idle_before->io.fd, &b, 1, 0) > 0)
        ;
    ag__io_clear(&idle_before->io, AG_READ);
    if (write(peer_fd, "x", 1) != 1 || ag__io_wait(&idle_before->io, AG_READ, -1) < 0)
        abort();
    while (recv(idle_before->io.fd, &b, 1, 0) > 0)
        ;
    ag__io_clear(&idle_before->io, AG_READ);
    ag__pool_release(pool, idle_before, true);
    close(peer_fd);
    peer_fd = -1;
    ag_sleep_ms(50); /* the loop polls its backend meanwhile */
    idle_rc = ag__pool_acquire(pool, key, false, -1, &h, &idle_after);
    if (idle_rc == 0 && idle_after)
        ag__pool_release(pool, idle_after, false);
    else if (idle_rc == 0)
        ag__pool_release_slot(pool, h);
}

static void idle_closed(void)
{
    new_pool(4, 1);
    ag_coro_spawn(loop, idle_close, NULL, NULL);
    ag_loop_run(loop);
    tap_ok(idle_rc == 0 && idle_after == NULL,
           "pool_idle_close_seen: an idle connection its peer closed is not handed out (%s, %s)",
           idle_after ? "handed out" : "a slot for a new one", ag_loop_backend());
    ag__pool_free(pool);
}

/* ---- many waiters timing out together ---- */

enum { NWAITERS = 10000 };

static int64_t base_deadline, last_done;
static int timed_out, other_rc;
static ag__pool_counts mid_counts;

static void busy_holder(void *arg)
{
    (void)arg;
    ag__host *h;
    ag__conn *c;
    if (ag__pool_acquire(pool, key, false, -1, &h, &c) != 0 || c)
        abort();
    ag_sleep_ms(1); /* every waiter queues: they all run before the loop looks at timers */
    mid_counts = counts();
    /* Hold the slot past every deadline. */
    ag_sleep_ms((base_deadline - ag_now_ns()) / 1000000 + 20);
    ag__pool_release_slot(pool, h);
}

static void waiter_fn(void *arg)
{
    intptr_t i = (intptr_t)arg;
    /* The deadline counts from the first waiter that runs, not from the spawns: making 10,000
     * stacks on a loaded machine may take longer than the wait itself. */
    if (!base_deadline)
        base_deadline = ag_now_ns() + 500000000ll;
    ag__host *h;
    ag__conn *c;
    int rc = ag__pool_acquire(pool, key, false, base_deadline + i * 1000, &h, &c);
    if (rc == -ETIMEDOUT)
        timed_out++;
    else
        other_rc = rc;
    last_done = ag_now_ns();
}

/* order 0: one deadline for all; -1: the newest waiter's deadline comes first. */
static void many_timeouts(int order, const char *name)
{
    new_pool(4, 1);
    timed_out = 0;
    other_rc = 0;
    base_deadline = 0;
    ag_coro_spawn(loop, busy_holder, NULL, NULL);
    for (intptr_t i = 0; i < NWAITERS; i++)
        ag_coro_spawn(loop, waiter_fn, (void *)(order < 0 ? (intptr_t)NWAITERS - i : 0), NULL);
    ag_loop_run(loop);
    ag__pool_counts n = counts();
    tap_ok(mid_counts.waiting == NWAITERS && timed_out == NWAITERS && other_rc == 0 &&
               n.total == 0 && n.waiting == 0,
           "pool_waiters_timeout: %d waiters queued (%u) and timing out together (%s) each get "
           "-ETIMEDOUT (%d), and the pool is at rest",
           NWAITERS, mid_counts.waiting, name, timed_out);
    /* Reported, never asserted: the time depends on the machine. */
    printf("# %d waiters, %s: the last timeout returned %.1f ms after the first deadline\n",
           NWAITERS, name, (double)(last_done - base_deadline) / 1e6);
    ag__pool_free(pool);
}

int main(void)
{
    ag_loop_new(&loop, NULL);
    fresh_queued();
    fresh_idle_only();
    idle_closed();
    many_timeouts(0, "one deadline");
    many_timeouts(-1, "newest first");
    ag_loop_free(loop);
    if (peer_fd >= 0)
        close(peer_fd);
    return tap_done();
}
