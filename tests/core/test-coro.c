/* test-coro.c: coroutine ping-pong, 100k live coroutines, deep calls, cancel, join, recycling. */
#include "asyncget.h"
#include "core/internal.h"
#include "tests/tap.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- ping-pong: two coroutines alternate strictly through ag_yield ---- */

static char trace[64];
static int trace_len;

static void pinger(void *arg)
{
    for (int i = 0; i < 5; i++) {
        trace[trace_len++] = *(const char *)arg;
        ag_yield();
    }
}

static void coro_ping_pong(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    static const char a = 'a', b = 'b';
    ag_coro_spawn(loop, pinger, (void *)&a, NULL);
    ag_coro_spawn(loop, pinger, (void *)&b, NULL);
    ag_loop_run(loop);
    trace[trace_len] = 0;
    tap_ok(strcmp(trace, "ababababab") == 0, "coro_ping_pong: strict alternation (%s)", trace);
    ag_loop_free(loop);
}

/* ---- 100k live coroutines, all parked at once ---- */

static long count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    long n = 0;
    int c;
    if (!f)
        return -1;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static int parked_total, woke_total;
static int64_t wake_at;

static void parked(void *arg)
{
    (void)arg;
    parked_total++;
    if (ag_sleep_until(wake_at) == 0)
        woke_total++;
}

static void coro_many(int n)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    long maps0 = count_maps(), rss0 = rss_kb();
    parked_total = woke_total = 0;
    wake_at = ag_now_ns() + 1000 * 1000000LL; /* far enough for all of them to park */
    int spawned = 0, rc = 0;
    for (int i = 0; i < n; i++) {
        rc = ag_coro_spawn(loop, parked, NULL, NULL);
        if (rc < 0)
            break;
        spawned++;
    }
    /* One iteration runs each once: all park on their timer. */
    ag_loop_run_once(loop, 0);
    long maps1 = count_maps(), rss1 = rss_kb();
    tap_diag("coro_many: %d parked, guard mode %s, stack %zu KiB: +%ld mappings, +%ld KiB RSS "
             "(%.2f KiB per parked coroutine, including its timer and descriptor)",
             parked_total, ag__stack_guard_mode() == AG__GUARD_MADVISE ? "madvise" : "mprotect",
             ag__stack_size(loop->stacks) / 1024, maps1 - maps0, rss1 - rss0,
             (double)(rss1 - rss0) / (parked_total ? parked_total : 1));
    wake_at = 0;
    ag_loop_run(loop);
    tap_ok(rc == 0 && spawned == n && parked_total == n && woke_total == n,
           "coro_%d_live: all spawned, parked at once and finished (rc %d, %d woke)", n, rc,
           woke_total);
    ag_loop_free(loop);
}

/* ---- deep call chain using most of the stack ---- */

static int depth_reached;

static __attribute__((noinline)) int recurse(int depth, int max)
{
    volatile char frame[512];
    frame[0] = (char)depth;
    frame[511] = (char)depth;
    if (depth == max)
        return depth;
    int r = recurse(depth + 1, max);
    return r + (frame[0] != (char)depth) + (frame[511] != (char)depth);
}

static void deep(void *arg)
{
    int max = *(int *)arg;
    depth_reached = recurse(1, max);
}

static void coro_deep_calls(void)
{
    ag_loop *loop;
    ag_loop_opts o;
    ag_loop_opts_init(&o);
    o.stack_size = 64 * 1024;
    ag_loop_new(&loop, &o);
    /* Frames of ~600 bytes: 80 of them use about 48 KiB of the 64 KiB. Sanitizers grow frames,
     * so they get a shallower chain of the same shape. */
    int max = getenv("AG_SANITIZED") ? 20 : 80;
    ag_coro_spawn(loop, deep, &max, NULL);
    ag_loop_run(loop);
    tap_ok(depth_reached == max, "coro_deep_calls: %d nested frames, every frame intact", max);
    ag_loop_free(loop);
}

/* ---- cancel and join ---- */

static int sleeper_rc = 1;

static void sleeper(void *arg)
{
    (void)arg;
    sleeper_rc = ag_sleep_ms(60 * 1000);
    /* After cancellation every wait fails at once. */
    if (sleeper_rc == -ECANCELED && ag_yield() != -ECANCELED)
        sleeper_rc = 2;
}

static int join_rc = 1;
static ag_coro *victim;

static void canceller(void *arg)
{
    (void)arg;
    ag_yield();
    ag_coro_cancel(victim);
    join_rc = ag_coro_join(victim);
}

static void coro_cancel_join(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    ag_coro_spawn(loop, sleeper, NULL, &victim);
    ag_coro_spawn(loop, canceller, NULL, NULL);
    ag_loop_run(loop);
    tap_ok(sleeper_rc == -ECANCELED && join_rc == 0 && ag_coro_done(victim),
           "coro_cancel_join: a sleeping coroutine is cancelled (%s) and joined",
           ag_err_name(sleeper_rc));
    ag_coro_unref(victim);
    ag_loop_free(loop);
}

/* ---- stacks are recycled: spawn+finish many times reuses the same few ---- */

static void *seen_stack;
static int distinct_stacks;

static void note_stack(void *arg)
{
    (void)arg;
    ag_coro *self = ag_coro_self();
    if (self->stack_lo != seen_stack) {
        seen_stack = self->stack_lo;
        distinct_stacks++;
    }
}

static void coro_stack_recycled(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    for (int i = 0; i < 1000; i++) {
        ag_coro_spawn(loop, note_stack, NULL, NULL);
        ag_loop_run(loop);
    }
    tap_ok(distinct_stacks == 1, "coro_stack_recycled: 1000 sequential coroutines used %d stack(s)",
           distinct_stacks);
    ag_loop_free(loop);
}

/* ---- cancelling a coroutine that was woken but has not run yet ---- */

static int ready_rc[2] = {1, 1};
static ag_coro *ready_co[2];

static void ready_sleeper(void *arg)
{
    int i = (int)(intptr_t)arg;
    ready_rc[i] = ag_sleep_until(wake_at);
    if (i == 0)
        ag_coro_cancel(ready_co[1]); /* both timers fired in one pass: 1 is ready, not parked */
}

static void coro_cancel_ready(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    wake_at = ag_now_ns() + 10 * 1000000;
    ag_coro_spawn(loop, ready_sleeper, (void *)0, &ready_co[0]);
    ag_coro_spawn(loop, ready_sleeper, (void *)1, &ready_co[1]);
    ag_loop_run(loop);
    tap_ok(ready_rc[0] == 0 && ready_rc[1] == -ECANCELED,
           "coro_cancel_ready: the woken coroutine's sleep returns %s", ag_err_name(ready_rc[1]));
    ag_coro_unref(ready_co[0]);
    ag_coro_unref(ready_co[1]);
    ag_loop_free(loop);
}

int main(void)
{
    coro_cancel_ready();
    coro_ping_pong();
    coro_deep_calls();
    coro_cancel_join();
    coro_stack_recycled();
    /* With guard markers in one mapping 100k stacks fit; with a PROT_NONE page per stack
     * (qemu-user, valgrind, old kernels) vm.max_map_count allows about 30k, so test 20k there. */
    int n = ag__stack_guard_mode() == AG__GUARD_MADVISE ? 100000 : 20000;
    if (n != 100000)
        tap_diag("guard pages are PROT_NONE mappings here: 20,000 live coroutines, not 100,000");
    coro_many(n);
    return tap_done();
}
