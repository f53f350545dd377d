/* test-timer.c: timer ordering, cancellation, 100k timers and the loop sleeping until the next. */
#include "asyncget.h"
#include "core/internal.h"
#include "tests/tap.h"

#include <stdlib.h>

typedef struct rec {
    int64_t *fired;
    size_t n;
} rec;

static void record(ag_timer *t, void *arg)
{
    rec *r = arg;
    r->fired[r->n++] = t->deadline_ns;
}

/* Deadlines already in the past all fire in one iteration, so the order is the heap's. */
static void timer_ordering(size_t count, const char *name)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    ag_timer *timers = calloc(count, sizeof *timers);
    rec r = {calloc(count, sizeof(int64_t)), 0};
    int64_t base = ag_now_ns() - 1000000000;
    srand(7);
    for (size_t i = 0; i < count; i++) {
        ag_timer_init(&timers[i], record, &r);
        ag_timer_start(loop, &timers[i], base - (rand() % 1000000));
    }
    int rc = ag_loop_run(loop);
    int sorted = r.n == count;
    for (size_t i = 1; sorted && i < r.n; i++)
        sorted = r.fired[i - 1] <= r.fired[i];
    tap_ok(rc == 0 && sorted, "%s: %zu timers fire in deadline order (fired %zu)", name, count,
           r.n);
    free(r.fired);
    free(timers);
    ag_loop_free(loop);
}

static void timer_cancel(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    enum { N = 1000 };
    ag_timer timers[N];
    int64_t fired[N];
    rec r = {fired, 0};
    int64_t base = ag_now_ns() - 1000;
    for (int i = 0; i < N; i++) {
        ag_timer_init(&timers[i], record, &r);
        ag_timer_start(loop, &timers[i], base - i);
    }
    /* Cancel every third, from the middle of the heap as well as its top. */
    int cancelled = 0;
    for (int i = 0; i < N; i += 3) {
        ag_timer_stop(loop, &timers[i]);
        cancelled++;
    }
    ag_timer_stop(loop, &timers[0]); /* stopping twice is harmless */
    int armed_ok = !ag_timer_armed(&timers[0]) && ag_timer_armed(&timers[1]);
    ag_loop_run(loop);
    int none_cancelled = 1;
    for (size_t k = 0; k < r.n; k++)
        for (int i = 0; i < N; i += 3)
            if (fired[k] == base - i)
                none_cancelled = 0;
    tap_ok(armed_ok && r.n == (size_t)(N - cancelled) && none_cancelled,
           "timer_cancel: %d of %d cancelled, %zu fired, none of the cancelled", cancelled, N, r.n);
    ag_loop_free(loop);
}

static void rearm_cb(ag_timer *t, void *arg)
{
    (void)t;
    ++*(int *)arg;
}

static void timer_rearm(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    int count = 0;
    ag_timer t;
    ag_timer_init(&t, rearm_cb, &count);
    ag_timer_start(loop, &t, ag_now_ns() + 1000000000);
    ag_timer_start(loop, &t, ag_now_ns()); /* re-arm moves it, it does not duplicate it */
    ag_loop_run(loop);
    tap_ok(count == 1, "timer_rearm: a re-armed timer fires once (%d)", count);
    ag_loop_free(loop);
}

/* The loop sleeps until the nearest deadline: no earlier (lower bound only, never an upper). */
static void timer_sleeps_until_deadline(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    int64_t fired[2];
    rec r = {fired, 0};
    ag_timer a, b;
    int64_t start = ag_now_ns();
    ag_timer_init(&a, record, &r);
    ag_timer_init(&b, record, &r);
    ag_timer_start(loop, &a, start + 40 * 1000000);
    ag_timer_start(loop, &b, start + 20 * 1000000);
    int64_t seen[2];
    int n = 0;
    while (r.n < 2 && ag_loop_run_once(loop, -1) >= 0) {
        while (n < (int)r.n)
            seen[n++] = ag_now_ns();
    }
    tap_ok(r.n == 2 && fired[0] == b.deadline_ns && fired[1] == a.deadline_ns &&
               seen[0] >= b.deadline_ns && seen[1] >= a.deadline_ns,
           "timer_sleeps_until_deadline: 20 ms then 40 ms, neither early");
    ag_loop_free(loop);
}

/* A callback that re-arms its timer in the past is served once per iteration, not forever. */
static int past_fires;

static void rearm_past(ag_timer *t, void *arg)
{
    ag_loop *loop = arg;
    if (++past_fires < 1000)
        ag_timer_start(loop, t, t->deadline_ns);
}

static void timer_rearm_in_the_past(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    ag_timer t;
    ag_timer_init(&t, rearm_past, loop);
    ag_timer_start(loop, &t, ag_now_ns() - 1000);
    ag_loop_run_once(loop, 0);
    int after_one = past_fires;
    ag_loop_run(loop);
    tap_ok(after_one == 1 && past_fires == 1000,
           "timer_rearm_in_the_past: one fire per iteration (%d), all of them in the end (%d)",
           after_one, past_fires);
    ag_loop_free(loop);
}

int main(void)
{
    timer_rearm_in_the_past();
    timer_ordering(1000, "timer_ordering");
    timer_ordering(100000, "timer_100k");
    timer_cancel();
    timer_rearm();
    timer_sleeps_until_deadline();
    return tap_done();
}
