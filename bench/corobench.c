/* corobench.c: cost of a coroutine switch and of spawn+finish, side by side with swapcontext.
 * Medians of several alternating runs, so both sides see the same machine noise. */
#include "asyncget.h"

#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>

#define ROUNDS 9

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

/* ---- asyncget: two coroutines yield to each other through the loop ---- */

static long yields_left;

static void yielder(void *arg)
{
    (void)arg;
    while (yields_left-- > 0)
        ag_yield();
}

/* Nanoseconds per switch. One ag_yield is two switches (coroutine to scheduler, scheduler to
 * the next coroutine) plus the ready-queue work; the figure counts both switches. */
static double ag_switch_ns(long n)
{
    ag_loop *loop;
    if (ag_loop_new(&loop, NULL) < 0)
        exit(1);
    yields_left = n;
    ag_coro_spawn(loop, yielder, NULL, NULL);
    ag_coro_spawn(loop, yielder, NULL, NULL);
    int64_t t0 = ag_now_ns();
    ag_loop_run(loop);
    int64_t t1 = ag_now_ns();
    ag_loop_free(loop);
    return (double)(t1 - t0) / (2.0 * (double)n);
}

static void nothing(void *arg)
{
    (void)arg;
}

/* Spawn and finish n coroutines in batches of 64, so every spawn after the first batch takes a
 * recycled stack. */
static double ag_spawn_ns(long n)
{
    ag_loop *loop;
    if (ag_loop_new(&loop, NULL) < 0)
        exit(1);
    for (int i = 0; i < 64; i++)
        ag_coro_spawn(loop, nothing, NULL, NULL);
    ag_loop_run(loop); /* warm the stacks */
    int64_t t0 = ag_now_ns();
    for (long done = 0; done < n; done += 64) {
        for (int i = 0; i < 64; i++)
            ag_coro_spawn(loop, nothing, NULL, NULL);
        ag_loop_run(loop);
    }
    int64_t t1 = ag_now_ns();
    ag_loop_free(loop);
    return (double)(t1 - t0) / (double)n;
}

/* ---- ucontext: the same ping-pong with swapcontext ---- */

static ucontext_t uc_main, uc_a;
static long uc_left;

static void uc_body(void)
{
    while (uc_left-- > 0)
        swapcontext(&uc_a, &uc_main);
}

static double uc_switch_ns(long n)
{
    static char stack[64 * 1024];
    getcontext(&uc_a);
    uc_a.uc_stack.ss_sp = stack;
    uc_a.uc_stack.ss_size = sizeof stack;
    uc_a.uc_link = &uc_main;
    makecontext(&uc_a, uc_body, 0);
    uc_left = n;
    int64_t t0 = ag_now_ns();
    /* Each round trip is two swapcontext calls. */
    while (uc_left > 0)
        swapcontext(&uc_main, &uc_a);
    int64_t t1 = ag_now_ns();
    return (double)(t1 - t0) / (2.0 * (double)n);
}

static double uc_spawn_ns(long n)
{
    static char stack[64 * 1024];
    int64_t t0 = ag_now_ns();
    for (long i = 0; i < n; i++) {
        getcontext(&uc_a);
        uc_a.uc_stack.ss_sp = stack;
        uc_a.uc_stack.ss_size = sizeof stack;
        uc_a.uc_link = &uc_main;
        uc_left = 0;
        makecontext(&uc_a, uc_body, 0);
        swapcontext(&uc_main, &uc_a);
    }
    int64_t t1 = ag_now_ns();
    return (double)(t1 - t0) / (double)n;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    if (n < 1000)
        n = 1000;
    double as[ROUNDS], us[ROUNDS], ap[ROUNDS], up[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        as[r] = ag_switch_ns(n);
        us[r] = uc_switch_ns(n);
        ap[r] = ag_spawn_ns(n / 4);
        up[r] = uc_spawn_ns(n / 4);
    }
    double a_sw = median(as, ROUNDS), u_sw = median(us, ROUNDS);
    double a_sp = median(ap, ROUNDS), u_sp = median(up, ROUNDS);
    printf("coroutine micro-bench, backend %s, medians of %d alternating runs, %ld switches each\n",
           ag_loop_backend(), ROUNDS, n);
    printf("%-34s %10s %12s %8s\n", "", "asyncget", "swapcontext", "ratio");
    printf("%-34s %8.1f ns %9.1f ns %8.3f  (target <= 0.100)\n", "one switch", a_sw, u_sw,
           a_sw / u_sw);
    printf("%-34s %8.1f ns %9.1f ns %8.3f  (target < 200 ns)\n", "spawn + run + finish", a_sp, u_sp,
           a_sp / u_sp);
    printf("asyncget's switch is measured through ag_yield: coroutine -> scheduler -> coroutine,\n"
           "counted as two switches, ready-queue work included. swapcontext's spawn is\n"
           "getcontext + makecontext + swapcontext on one static stack, with no allocation.\n");
    return 0;
}
