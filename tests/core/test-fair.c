/* test-fair.c: a coroutine whose fd never runs dry still lets timers, siblings, cancels and
 * deadlines act: the reactor side of fairness. */
#include "asyncget.h"
#include "core/internal.h"
#include "tests/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A bound on the reads of a test that would otherwise spin forever on the old code: it ends the
 * test with failed assertions instead of a hang. Reaching it is a failure, never a time limit. */
#define MAX_READS 500000L

#define TICKS 5

static void nonblocking_pipe(int p[2])
{
    if (pipe(p) != 0)
        abort();
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
}

/* A reader whose pipe is always full: it puts back every byte it takes, so no read ever says
 * EAGAIN and the cached readiness never clears. Only the checkpoint in ag__io_wait lets others
 * run. */
typedef struct flood {
    int p[2];
    int64_t deadline;
    long reads;
    long eagains;
    int rc;
    int64_t returned_at;
    long ticks_at[TICKS]; /* reads done when each tick ran */
    int ticks;
    long reads_at_cancel;
    ag_coro *reader;
} flood;

static void flood_reader(void *arg)
{
    flood *f = arg;
    ag__io io;
    ag__io_init(&io, ag_loop_current(), f->p[0]);
    f->rc = 99;
    while (f->reads < MAX_READS) {
        int rc = ag__io_wait(&io, AG_READ, f->deadline);
        if (rc < 0) {
            f->rc = rc;
            break;
        }
        char b;
        if (read(f->p[0], &b, 1) != 1) {
            f->eagains++;
            ag__io_clear(&io, AG_READ);
            continue;
        }
        f->reads++;
        if (write(f->p[1], &b, 1) != 1)
            abort();
    }
    f->returned_at = ag_now_ns();
    ag__io_close(&io); /* closes p[0] */
}

static void flood_fill(flood *f)
{
    nonblocking_pipe(f->p);
    char buf[512];
    memset(buf, 'f', sizeof buf);
    if (write(f->p[1], buf, sizeof buf) != (ssize_t)sizeof buf)
        abort();
}

/* A periodic timer in a sibling coroutine: it records how far the reader got at each tick. */
static void flood_ticker(void *arg)
{
    flood *f = arg;
    while (f->ticks < TICKS) {
        if (ag_sleep_ms(1) < 0)
            return;
        f->ticks_at[f->ticks++] = f->reads;
    }
}

/* A third coroutine cancels the reader once the ticker is done. */
static void flood_canceller(void *arg)
{
    flood *f = arg;
    while (f->ticks < TICKS)
        if (ag_sleep_ms(1) < 0)
            return;
    f->reads_at_cancel = f->reads;
    ag_coro_cancel(f->reader);
}

static void fair_flood_ticks_and_cancel(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    flood f = {.deadline = -1};
    flood_fill(&f);
    ag_coro_spawn(loop, flood_reader, &f, &f.reader);
    ag_coro_spawn(loop, flood_ticker, &f, NULL);
    ag_coro_spawn(loop, flood_canceller, &f, NULL);
    ag_loop_run(loop);
    /* Interleaved: the reader was under way at the first tick, made progress between every two
     * ticks, and was still reading when it was cancelled. */
    int interleaved = f.ticks == TICKS && f.ticks_at[0] > 0;
    for (int i = 1; interleaved && i < TICKS; i++)
        interleaved = f.ticks_at[i] > f.ticks_at[i - 1];
    tap_ok(interleaved && f.eagains == 0,
           "fair_flood_ticks_interleave: %d ticks at reads %ld..%ld, the reader never saw EAGAIN "
           "(%ld)",
           f.ticks, f.ticks_at[0], f.ticks_at[TICKS - 1], f.eagains);
    tap_ok(f.rc == -ECANCELED && f.reads_at_cancel >= f.ticks_at[TICKS - 1] && f.reads < MAX_READS,
           "fair_flood_cancel: a sibling's cancel ends the flooded wait with %s after %ld reads",
           f.rc == 99 ? "nothing" : ag_err_name(f.rc), f.reads);
    ag_coro_unref(f.reader);
    close(f.p[1]);
    ag_loop_free(loop);
}

/* The deadline of a wait whose readiness is always cached still takes effect. */
static void fair_flood_deadline(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    flood f = {.deadline = ag_now_ns() + 20 * 1000000};
    flood_fill(&f);
    ag_coro_spawn(loop, flood_reader, &f, &f.reader);
    ag_loop_run(loop);
    tap_ok(f.rc == -ETIMEDOUT && f.returned_at >= f.deadline && f.reads > 0 && f.eagains == 0,
           "fair_flood_deadline: the flooded wait returns %s after %ld reads, not before its "
           "deadline",
           f.rc == 99 ? "nothing" : ag_err_name(f.rc), f.reads);
    ag_coro_unref(f.reader);
    close(f.p[1]);
    ag_loop_free(loop);
}

/* The same without a loop: blocking code only checks the deadline. */
static void fair_blocking_deadline(void)
{
    flood f = {.deadline = ag_now_ns() + 20 * 1000000};
    flood_fill(&f);
    flood_reader(&f);
    tap_ok(f.rc == -ETIMEDOUT && f.returned_at >= f.deadline && f.reads > 0,
           "fair_blocking_deadline: outside a coroutine the flooded wait returns %s after %ld "
           "reads",
           f.rc == 99 ? "nothing" : ag_err_name(f.rc), f.reads);
    close(f.p[1]);
}

/* ---- a late loop: deadlines and readiness seen in one iteration ----
 *
 * A loop that comes late to its poll (a long iteration, a process starved of CPU) finds the
 * timers of parked waits due together with readiness that may have come long before. The
 * readiness wins for a wait begun before its deadline; a wait begun after it returns
 * -ETIMEDOUT at once, so a peer that keeps sending cannot hold a reader past its deadline. */

#define LATE_WAITERS 300 /* more than the loop collects in one iteration (256) */

typedef struct late {
    int p[2];
    int rc;
} late;

static void late_waiter(void *arg)
{
    late *l = arg;
    l->rc = ag_wait_fd(l->p[0], AG_READ, ag_now_ns() + 10 * 1000000);
}

/* The data is there before the wait begins (a wait on an fd the loop does not know trusts no
 * readiness, so it parks), whatever the machine's load. */
static void late_fed_waiter(void *arg)
{
    late *l = arg;
    if (write(l->p[1], "x", 1) != 1)
        abort();
    late_waiter(l);
}

/* Spawned after the waiters: it holds the thread, so the loop polls only after every deadline. */
static void late_blocker(void *arg)
{
    (void)arg;
    usleep(30 * 1000);
}

static void fair_late_loop_readiness_wins(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    static late l[LATE_WAITERS];
    for (int i = 0; i < LATE_WAITERS; i++) {
        nonblocking_pipe(l[i].p);
        l[i].rc = 99;
        ag_coro_spawn(loop, late_fed_waiter, &l[i], NULL);
    }
    ag_coro_spawn(loop, late_blocker, NULL, NULL);
    ag_loop_run(loop);
    int ready = 0, timed_out = 0;
    for (int i = 0; i < LATE_WAITERS; i++) {
        ready += l[i].rc == AG_READ;
        timed_out += l[i].rc == -ETIMEDOUT;
        close(l[i].p[0]);
        close(l[i].p[1]);
    }
    tap_ok(ready == LATE_WAITERS,
           "fair_late_loop_readiness_wins: of %d waits whose data came before their deadline "
           "but were looked at after it, %d return AG_READ, %d -ETIMEDOUT",
           LATE_WAITERS, ready, timed_out);
    ag_loop_free(loop);
}

/* Nothing ready: a late loop's timer still ends the wait. */
static void fair_late_loop_nothing_times_out(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    late l = {.rc = 99};
    nonblocking_pipe(l.p);
    ag_coro_spawn(loop, late_waiter, &l, NULL);
    ag_coro_spawn(loop, late_blocker, NULL, NULL);
    ag_loop_run(loop);
    tap_ok(l.rc == -ETIMEDOUT, "fair_late_loop_nothing_times_out: the wait returns %s",
           l.rc == 99 ? "nothing" : ag_err_name(l.rc));
    close(l.p[0]);
    close(l.p[1]);
    ag_loop_free(loop);
}

/* A reader that takes one byte per wait and forgets the cached readiness, so every wait parks
 * while its fd is readable (the peer always has more): however the deadline falls among the
 * waits, none begun after it returns data. */
typedef struct sipper {
    int p[2];
    int64_t deadline;
    long waits_after;
    long reads;
    int rc;
} sipper;

static void sipper_reader(void *arg)
{
    sipper *t = arg;
    ag__io io;
    ag__io_init(&io, ag_loop_current(), t->p[0]);
    t->rc = 99;
    while (t->reads < MAX_READS) {
        bool after = ag_now_ns() >= t->deadline;
        ag__io_clear(&io, AG_READ);
        int rc = ag__io_wait(&io, AG_READ, t->deadline);
        if (rc < 0) {
            t->rc = rc;
            break;
        }
        t->waits_after += after;
        char b;
        if (read(t->p[0], &b, 1) == 1) {
            t->reads++;
            if (write(t->p[1], &b, 1) != 1)
                abort();
        }
    }
    ag__io_close(&io);
}

static void fair_sipper_deadline(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    sipper t = {.deadline = ag_now_ns() + 20 * 1000000};
    nonblocking_pipe(t.p);
    if (write(t.p[1], "sip", 3) != 3)
        abort();
    ag_coro_spawn(loop, sipper_reader, &t, NULL);
    ag_coro_spawn(loop, late_blocker, NULL, NULL); /* the first waits park past the deadline */
    ag_loop_run(loop);
    tap_ok(t.rc == -ETIMEDOUT && t.waits_after == 0 && t.reads > 0 && t.reads < MAX_READS,
           "fair_sipper_deadline: a reader whose fd is always readable returns %s after %ld "
           "reads; waits begun after the deadline that returned data: %ld",
           t.rc == 99 ? "nothing" : ag_err_name(t.rc), t.reads, t.waits_after);
    close(t.p[1]);
    ag_loop_free(loop);
}

/* ---- a late loop: what else comes due in the same iteration ----
 * The loop is held past a wait's deadline while its fd became ready; something else happens in
 * the iteration that fires the wait's timer. Each ends the wait its own way, not the last look. */

static void late_loop_run(ag_loop *loop, ag_coro_fn waiter, ag_coro_fn held, void *arg,
                          ag_coro **co)
{
    ag_coro_spawn(loop, waiter, arg, co);
    ag_coro_spawn(loop, held, arg, NULL); /* runs after the waiter parked */
    ag_loop_run(loop);
}

typedef struct due {
    int p[2];
    int rc, rc_after;
    bool cancel_first; /* the cancel's timer before the wait's deadline, or after it */
    ag_coro *co;
    ag_timer timer;
} due;

static void due_waiter(void *arg)
{
    due *d = arg;
    d->rc = ag_wait_fd(d->p[0], AG_READ, ag_now_ns() + 10 * 1000000);
    d->rc_after = ag_wait_fd(d->p[0], AG_READ, -1);
}

static void due_cancel(ag_timer *t, void *arg)
{
    (void)t;
    due *d = arg;
    ag_coro_cancel(d->co);
}

/* The data comes at once, a cancel comes due with the wait's deadline, and the loop looks only
 * after both. */
static void due_cancel_held(void *arg)
{
    due *d = arg;
    if (write(d->p[1], "x", 1) != 1)
        abort();
    ag_timer_init(&d->timer, due_cancel, d);
    ag_timer_start(ag_loop_current(), &d->timer,
                   ag_now_ns() + (d->cancel_first ? 5 : 15) * 1000000);
    usleep(30 * 1000);
}

static void fair_late_loop_cancel_wins(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    int ok = 0;
    char seen[2][64];
    for (int first = 0; first < 2; first++) {
        due d = {.rc = 99, .rc_after = 99, .cancel_first = first};
        nonblocking_pipe(d.p);
        late_loop_run(loop, due_waiter, due_cancel_held, &d, &d.co);
        ok += d.rc == -ECANCELED && d.rc_after == -ECANCELED;
        snprintf(seen[first], sizeof seen[first], "%s then %s",
                 d.rc == 99 ? "nothing"
                 : d.rc > 0 ? "readiness"
                            : ag_err_name(d.rc),
                 d.rc_after == 99 ? "nothing"
                 : d.rc_after > 0 ? "readiness"
                                  : ag_err_name(d.rc_after));
        ag_coro_unref(d.co);
        close(d.p[0]);
        close(d.p[1]);
    }
    tap_ok(ok == 2,
           "fair_late_loop_cancel_wins: a cancel due in the iteration of the wait's deadline and "
           "readiness ends the wait: cancel after the deadline %s, before it %s",
           seen[0], seen[1]);
    ag_loop_free(loop);
}

static void due_unregister(ag_timer *t, void *arg)
{
    (void)t;
    due *d = arg;
    ag_fd_unregister(ag_loop_current(), d->p[0]);
}

static void due_unregister_held(void *arg)
{
    due *d = arg;
    if (write(d->p[1], "x", 1) != 1)
        abort();
    ag_timer_init(&d->timer, due_unregister, d);
    ag_timer_start(ag_loop_current(), &d->timer, ag_now_ns() + 15 * 1000000);
    usleep(30 * 1000);
}

static void due_waiter_once(void *arg)
{
    due *d = arg;
    d->rc = ag_wait_fd(d->p[0], AG_READ, ag_now_ns() + 10 * 1000000);
}

/* The fd's record is freed by the unregister after the wait's timer fired: the wait must not
 * look at it (under ASan a look is a use after free). */
static void fair_late_loop_unregister(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    due d = {.rc = 99};
    nonblocking_pipe(d.p);
    ag_fd_register(loop, d.p[0]);
    late_loop_run(loop, due_waiter_once, due_unregister_held, &d, NULL);
    tap_ok(d.rc == -EBADF,
           "fair_late_loop_unregister: unregistered in the iteration of its due deadline, the "
           "readable fd's wait returns %s",
           d.rc == 99 ? "nothing"
           : d.rc > 0 ? "readiness"
                      : ag_err_name(d.rc));
    close(d.p[0]);
    close(d.p[1]);
    ag_loop_free(loop);
}

/* A reader and a writer on one socket, both due; only writing is possible. */
typedef struct duplex {
    int s[2];
    int rc_read, rc_write;
} duplex;

static void duplex_reader(void *arg)
{
    duplex *x = arg;
    x->rc_read = ag_wait_fd(x->s[0], AG_READ, ag_now_ns() + 10 * 1000000);
}

static void duplex_writer(void *arg)
{
    duplex *x = arg;
    x->rc_write = ag_wait_fd(x->s[0], AG_WRITE, ag_now_ns() + 10 * 1000000);
}

static void duplex_held(void *arg)
{
    (void)arg;
    usleep(30 * 1000);
}

static void fair_late_loop_directions(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    duplex x = {.rc_read = 99, .rc_write = 99};
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, x.s) < 0)
        abort();
    ag_fd_register(loop, x.s[0]);
    ag_coro_spawn(loop, duplex_reader, &x, NULL);
    late_loop_run(loop, duplex_writer, duplex_held, &x, NULL);
    tap_ok(x.rc_read == -ETIMEDOUT && x.rc_write == AG_WRITE,
           "fair_late_loop_directions: a reader and a writer of one socket, both late, only "
           "writing possible: the reader gets %s, the writer %s",
           x.rc_read == 99 ? "nothing" : ag_err_name(x.rc_read),
           x.rc_write == 99 ? "nothing"
           : x.rc_write > 0 ? "readiness"
                            : ag_err_name(x.rc_write));
    ag_fd_unregister(loop, x.s[0]);
    close(x.s[0]);
    close(x.s[1]);
    ag_loop_free(loop);
}

/* A host drives the loop with ag_loop_run_once and comes back after the wait's deadline. */
static void fair_late_loop_host(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    due d = {.rc = 99};
    nonblocking_pipe(d.p);
    ag_fd_register(loop, d.p[0]);
    ag_coro_spawn(loop, due_waiter_once, &d, NULL);
    ag_loop_run_once(loop, 0); /* the wait parks */
    if (write(d.p[1], "x", 1) != 1)
        abort();
    usleep(30 * 1000); /* the host is busy elsewhere past the deadline */
    int runs = 0;
    while (d.rc == 99 && runs++ < 10)
        ag_loop_run_once(loop, 100);
    tap_ok(d.rc == AG_READ,
           "fair_late_loop_host: a host that runs the loop after the deadline of a wait whose "
           "data came in time: %s after %d run_once",
           d.rc == 99 ? "nothing"
           : d.rc > 0 ? "AG_READ"
                      : ag_err_name(d.rc),
           runs);
    ag_fd_unregister(loop, d.p[0]);
    close(d.p[0]);
    close(d.p[1]);
    ag_loop_free(loop);
}

/* A deadline already past: a coroutine's wait does not look, plain code's poll() does. */
static int past_rc[2] = {99, 99};

static void past_waiter(void *arg)
{
    past_rc[0] = ag_wait_fd(*(int *)arg, AG_READ, ag_now_ns() - 1);
}

static void fair_past_deadline(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    int p[2];
    nonblocking_pipe(p);
    if (write(p[1], "x", 1) != 1)
        abort();
    ag_coro_spawn(loop, past_waiter, &p[0], NULL);
    ag_loop_run(loop);
    past_rc[1] = ag_wait_fd(p[0], AG_READ, ag_now_ns() - 1);
    tap_ok(past_rc[0] == -ETIMEDOUT && past_rc[1] == AG_READ,
           "fair_past_deadline: a readable fd with a deadline already past: in a coroutine %s, in "
           "plain code %s",
           past_rc[0] == 99 ? "nothing"
           : past_rc[0] > 0 ? "AG_READ"
                            : ag_err_name(past_rc[0]),
           past_rc[1] > 0 ? "AG_READ" : ag_err_name(past_rc[1]));
    close(p[0]);
    close(p[1]);
    ag_loop_free(loop);
}

/* The fd is closed under a parked wait (a caller's error): the wait ends at its deadline with
 * -EBADF, which the last look finds, not with another error or never. */
static void closing_held(void *arg)
{
    due *d = arg;
    close(d->p[0]);
    usleep(30 * 1000);
}

static void fair_late_loop_closed_fd(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    due d = {.rc = 99};
    nonblocking_pipe(d.p);
    late_loop_run(loop, due_waiter_once, closing_held, &d, NULL);
    tap_ok(d.rc == -EBADF,
           "fair_late_loop_closed_fd: a wait whose fd was closed under it returns %s at its "
           "deadline",
           d.rc == 99 ? "nothing"
           : d.rc > 0 ? "readiness"
                      : ag_err_name(d.rc));
    close(d.p[1]);
    ag_loop_free(loop);
}

/* A deadline that passes while a wait is being prepared (ag_wait_fd registering an fd, whose
 * system calls can give the CPU away) does not make it a wait begun after its deadline: readable
 * all along, the fd is looked at. Here the deadline is already past when the wait starts, as if
 * the preparation had taken that long. */
static int begun_rc[2] = {99, 99};

static void begun_waiter(void *arg)
{
    int fd = *(int *)arg;
    ag__io io;
    ag__io_init(&io, ag_loop_current(), fd);
    ag__io_clear(&io, AG_READ);
    int64_t deadline = ag_now_ns() - 1;
    begun_rc[0] = ag__io_wait_begun(&io, AG_READ, deadline, false);
    ag__io_clear(&io, AG_READ);
    begun_rc[1] = ag__io_wait(&io, AG_READ, deadline);
    ag__io_detach(&io);
}

static void fair_deadline_passed_while_preparing(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    int p[2];
    nonblocking_pipe(p);
    if (write(p[1], "x", 1) != 1)
        abort();
    ag_coro_spawn(loop, begun_waiter, &p[0], NULL);
    ag_loop_run(loop);
    tap_ok(begun_rc[0] == AG_READ && begun_rc[1] == -ETIMEDOUT,
           "fair_deadline_passed_while_preparing: a readable fd whose deadline passed while its "
           "wait was prepared gives %s; a wait begun after the deadline %s",
           begun_rc[0] == 99 ? "nothing"
           : begun_rc[0] > 0 ? "AG_READ"
                             : ag_err_name(begun_rc[0]),
           begun_rc[1] == 99 ? "nothing"
           : begun_rc[1] > 0 ? "AG_READ"
                             : ag_err_name(begun_rc[1]));
    close(p[0]);
    close(p[1]);
    ag_loop_free(loop);
}

/* ---- the checkpoint itself ---- */

typedef struct cp_case {
    int rcs[3];
    int sibling_runs_seen;
} cp_case;

static int sibling_runs;

static void cp_sibling(void *arg)
{
    (void)arg;
    sibling_runs++;
}

static void cp_body(void *arg)
{
    cp_case *c = arg;
    /* A checkpoint with a past deadline says so at once. */
    c->rcs[0] = ag__coro_checkpoint(ag_now_ns() - 1);
    /* Enough consecutive checkpoints yield: the sibling spawned after this coroutine runs. */
    for (int i = 0; i < 4 * AG__CHECKPOINT_BUDGET && !sibling_runs; i++)
        c->rcs[1] = ag__coro_checkpoint(-1);
    c->sibling_runs_seen = sibling_runs;
    ag_coro_cancel(ag_coro_self());
    c->rcs[2] = ag__coro_checkpoint(-1);
}

static void fair_checkpoint(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    cp_case c = {{1, 1, 1}, 0};
    ag_coro_spawn(loop, cp_body, &c, NULL);
    ag_coro_spawn(loop, cp_sibling, NULL, NULL);
    ag_loop_run(loop);
    int outside = ag__coro_checkpoint(-1);
    int outside_late = ag__coro_checkpoint(ag_now_ns() - 1);
    tap_ok(c.rcs[0] == -ETIMEDOUT && c.rcs[1] == 0 && c.sibling_runs_seen == 1 &&
               c.rcs[2] == -ECANCELED && outside == 0 && outside_late == -ETIMEDOUT,
           "fair_checkpoint: deadline %d, yields to a sibling %d, cancel %d, outside %d/%d",
           c.rcs[0], c.sibling_runs_seen, c.rcs[2], outside, outside_late);
    ag_loop_free(loop);
}

int main(void)
{
    tap_diag("backend: %s", ag_loop_backend());
    fair_checkpoint();
    fair_late_loop_readiness_wins();
    fair_late_loop_nothing_times_out();
    fair_sipper_deadline();
    fair_late_loop_cancel_wins();
    fair_late_loop_unregister();
    fair_late_loop_directions();
    fair_late_loop_host();
    fair_past_deadline();
    fair_deadline_passed_while_preparing();
    fair_late_loop_closed_fd();
    fair_flood_ticks_and_cancel();
    fair_flood_deadline();
    fair_blocking_deadline();
    return tap_done();
}
