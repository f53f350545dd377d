/* test-ctx-regs.c: ag__ctx_switch keeps each context's callee-saved registers and floating-point
 * control state, survives many round trips, and leaves a new context its whole stack. */
#include "core/ctx.h"
#include "tests/tap.h"
#include "ag_config.h"
#ifdef AG_HAVE_VALGRIND
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND             0
#define VALGRIND_STACK_REGISTER(lo, hi) 0u
#define VALGRIND_STACK_DEREGISTER(id)   ((void)(id))
#endif

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* In tests/core/regs_<arch>.S. */
uint32_t regs_switch_check(ag__ctx *from, const ag__ctx *to, const uint64_t *pat);
uint64_t regs_fpctl_get(void);
void regs_fpctl_set(uint64_t v);

#if defined(__x86_64__)
#define NREGS 6
static const char *const reg_names[NREGS] = {"rbx", "rbp", "r12", "r13", "r14", "r15"};
/* regs_fpctl_get packs MXCSR in bits 0-31 and the x87 control word in bits 32-47. */
#define FPCTL(mxcsr, cw) ((uint64_t)(cw) << 32 | (uint64_t)(mxcsr))
/* The MXCSR exception flags (bits 0-5) are status, not control, so comparisons ignore them. */
#define FPCTL_MASK FPCTL(0xffffffc0u, 0xffffu)
/* What ag__ctx_make promises: exceptions masked, round to nearest, 64-bit x87 precision. */
#define FPCTL_DEFAULT FPCTL(0x1f80, 0x037f)
/* Context A: SSE rounds up with flush-to-zero, x87 rounds down. */
#define FPCTL_A FPCTL(0xdf80, 0x077f)
/* Context B: SSE rounds toward zero, x87 rounds toward zero at 53-bit precision. */
#define FPCTL_B FPCTL(0x7f80, 0x0e7f)
#elif defined(__aarch64__)
#define NREGS         19
static const char *const reg_names[NREGS] = {
    "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28",
    "x29", "d8",  "d9",  "d10", "d11", "d12", "d13", "d14", "d15",
};
/* FPCR holds no status bits. */
#define FPCTL_MASK    UINT64_MAX
/* What ag__ctx_make promises: round to nearest, no flush-to-zero, no default NaN. */
#define FPCTL_DEFAULT UINT64_C(0)
/* Context A: round toward +infinity (RMode 01) with flush-to-zero (FZ, bit 24). */
#define FPCTL_A       UINT64_C(0x01400000)
/* Context B: round toward zero (RMode 11) with default NaN (DN, bit 25). */
#define FPCTL_B       UINT64_C(0x02c00000)
#else
#error "no register test for this architecture"
#endif

#define STACK_SIZE (64 * 1024)

/* A context stack with an inaccessible page below it, so an overflow faults at once. */
typedef struct test_stack {
    void *map;
    size_t map_len;
    void *lo;
    unsigned vg_id; /* valgrind's name for the stack */
} test_stack;

static int stack_new(test_stack *s)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    s->map_len = STACK_SIZE + page;
    s->map = mmap(NULL, s->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s->map == MAP_FAILED)
        return -1;
    if (mprotect(s->map, page, PROT_NONE) != 0) {
        munmap(s->map, s->map_len);
        return -1;
    }
    s->lo = (char *)s->map + page;
    s->vg_id = VALGRIND_STACK_REGISTER(s->lo, (char *)s->lo + STACK_SIZE);
    return 0;
}

static void stack_free(test_stack *s)
{
    VALGRIND_STACK_DEREGISTER(s->vg_id);
    munmap(s->map, s->map_len);
}

static ag__ctx main_ctx;
static ag__ctx peer_ctx;

/* Distinct values for every (seed, register) pair: the odd multiplier makes the map one-to-one. */
static void pat_fill(uint64_t *pat, uint64_t seed)
{
    for (int i = 0; i < NREGS; i++)
        pat[i] = (seed + (uint64_t)i + 1) * UINT64_C(0x9e3779b97f4a7c15);
}

static void diag_regs(const char *who, uint32_t mask)
{
    for (int i = 0; i < NREGS; i++)
        if (mask & (UINT32_C(1) << i))
            tap_diag("%s: %s changed across a switch", who, reg_names[i]);
}

#define REGS_ROUNDS 100

static uint32_t peer_mask;
static int peer_rounds;

/* Holds its own patterns while the main context holds different ones, every round. */
static void regs_peer(void *arg)
{
    static uint64_t pat[NREGS];

    (void)arg;
    for (;;) {
        pat_fill(pat, UINT64_C(1000) * (uint64_t)peer_rounds + 500);
        peer_mask |= regs_switch_check(&peer_ctx, &main_ctx, pat);
        peer_rounds++;
    }
}

static void test_callee_saved(void)
{
    test_stack st;
    uint64_t pat[NREGS];
    uint32_t mask = 0;

    if (stack_new(&st) != 0) {
        tap_ok(0, "ctx_switch_keeps_callee_saved_of_main (no stack)");
        tap_ok(0, "ctx_switch_keeps_callee_saved_of_made_context (no stack)");
        return;
    }
    ag__ctx_make(&peer_ctx, st.lo, STACK_SIZE, regs_peer, NULL);
    for (int round = 0; round < REGS_ROUNDS; round++) {
        pat_fill(pat, UINT64_C(1000) * (uint64_t)round);
        mask |= regs_switch_check(&main_ctx, &peer_ctx, pat);
    }
    /* The peer's first check began on the first switch, so it has finished one check fewer. */
    if (!tap_ok(mask == 0, "ctx_switch_keeps_callee_saved_of_main"))
        diag_regs("main", mask);
    if (!tap_ok(peer_mask == 0 && peer_rounds == REGS_ROUNDS - 1,
                "ctx_switch_keeps_callee_saved_of_made_context")) {
        diag_regs("peer", peer_mask);
        tap_diag("peer finished %d checks, expected %d", peer_rounds, REGS_ROUNDS - 1);
    }
    stack_free(&st);
}

static uint64_t fp_peer_start;
static uint64_t fp_peer_resumed;

static void fp_peer(void *arg)
{
    (void)arg;
    fp_peer_start = regs_fpctl_get();
    regs_fpctl_set(FPCTL_B);
    ag__ctx_switch(&peer_ctx, &main_ctx);
    fp_peer_resumed = regs_fpctl_get();
    ag__ctx_switch(&peer_ctx, &main_ctx);
    abort();
}

static void test_fp_control(void)
{
    if (RUNNING_ON_VALGRIND) {
        /* Valgrind emulates neither MXCSR nor x87 control-word changes. */
        tap_skip("ctx_make_starts_with_default_fp_control: not under valgrind");
        tap_skip("ctx_switch_restores_fp_control_of_main: not under valgrind");
        tap_skip("ctx_switch_restores_fp_control_of_made_context: not under valgrind");
        return;
    }
    test_stack st;
    uint64_t saved = regs_fpctl_get();
    uint64_t first, second;

    if (stack_new(&st) != 0) {
        tap_ok(0, "ctx_make_starts_with_default_fp_control (no stack)");
        tap_ok(0, "ctx_switch_restores_fp_control_of_main (no stack)");
        tap_ok(0, "ctx_switch_restores_fp_control_of_made_context (no stack)");
        return;
    }
    ag__ctx_make(&peer_ctx, st.lo, STACK_SIZE, fp_peer, NULL);
    regs_fpctl_set(FPCTL_A);
    ag__ctx_switch(&main_ctx, &peer_ctx);
    first = regs_fpctl_get();
    ag__ctx_switch(&main_ctx, &peer_ctx);
    second = regs_fpctl_get();
    regs_fpctl_set(saved);

    if (!tap_ok((fp_peer_start & FPCTL_MASK) == FPCTL_DEFAULT,
                "ctx_make_starts_with_default_fp_control"))
        tap_diag("got %#llx, expected %#llx", (unsigned long long)fp_peer_start,
                 (unsigned long long)FPCTL_DEFAULT);
    if (!tap_ok((first & FPCTL_MASK) == FPCTL_A && (second & FPCTL_MASK) == FPCTL_A,
                "ctx_switch_restores_fp_control_of_main"))
        tap_diag("got %#llx then %#llx, expected %#llx", (unsigned long long)first,
                 (unsigned long long)second, (unsigned long long)FPCTL_A);
    if (!tap_ok((fp_peer_resumed & FPCTL_MASK) == FPCTL_B,
                "ctx_switch_restores_fp_control_of_made_context"))
        tap_diag("got %#llx, expected %#llx", (unsigned long long)fp_peer_resumed,
                 (unsigned long long)FPCTL_B);
    stack_free(&st);
}

#define PING_ROUNDS 1000

static ag__ctx ping_ctx;
static ag__ctx pong_ctx;
static int ping_count;
static int pong_count;
static int ping_pong_errors;

/* Each side keeps its own count in a local, which the compiler holds in a callee-saved
 * register or on the context's stack across the switch, and checks it against the shared one. */
static void ping(void *arg)
{
    (void)arg;
    for (int n = 1;; n++) {
        ping_count++;
        if (ping_count != n || pong_count != n - 1)
            ping_pong_errors++;
        ag__ctx_switch(&ping_ctx, &pong_ctx);
    }
}

static void pong(void *arg)
{
    (void)arg;
    for (int n = 1;; n++) {
        pong_count++;
        if (pong_count != n || ping_count != n)
            ping_pong_errors++;
        ag__ctx_switch(&pong_ctx, n == PING_ROUNDS ? &main_ctx : &ping_ctx);
    }
}

static void test_ping_pong(void)
{
    test_stack a, b;

    if (stack_new(&a) != 0) {
        tap_ok(0, "ctx_ping_pong_1000_round_trips (no stack)");
        return;
    }
    if (stack_new(&b) != 0) {
        stack_free(&a);
        tap_ok(0, "ctx_ping_pong_1000_round_trips (no stack)");
        return;
    }
    ag__ctx_make(&ping_ctx, a.lo, STACK_SIZE, ping, NULL);
    ag__ctx_make(&pong_ctx, b.lo, STACK_SIZE, pong, NULL);
    ag__ctx_switch(&main_ctx, &ping_ctx);
    if (!tap_ok(ping_count == PING_ROUNDS && pong_count == PING_ROUNDS && ping_pong_errors == 0,
                "ctx_ping_pong_1000_round_trips"))
        tap_diag("ping %d, pong %d, out of step %d times", ping_count, pong_count,
                 ping_pong_errors);
    stack_free(&a);
    stack_free(&b);
}

#define DEEP_TARGET (48 * 1024)
#define DEEP_MAX    100000u

static ag__ctx deep_ctx;
static uintptr_t deep_top;
static size_t deep_used;
static unsigned deep_levels;
static unsigned deep_bad;

/* Recurses until the frames below deep_top span DEEP_TARGET bytes; each level fills a buffer
 * before going deeper and checks it afterwards, so overlapping frames would show. The frame
 * address, unlike a local's, stays on the real stack under AddressSanitizer's fake stacks. */
__attribute__((noinline)) static unsigned deep_call(unsigned level)
{
    volatile unsigned char buf[256];
    size_t used = deep_top - (uintptr_t)__builtin_frame_address(0);
    unsigned bad = 0;

    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(level + i);
    if (used > deep_used)
        deep_used = used;
    if (used < DEEP_TARGET && level < DEEP_MAX)
        bad = deep_call(level + 1);
    else
        deep_levels = level + 1;
    for (size_t i = 0; i < sizeof buf; i++) {
        if (buf[i] != (unsigned char)(level + i)) {
            bad++;
            break;
        }
    }
    return bad;
}

static void deep_main(void *arg)
{
    (void)arg;
    deep_bad = deep_call(0);
    ag__ctx_switch(&deep_ctx, &main_ctx);
    abort();
}

static void test_deep_call_chain(void)
{
    test_stack st;

    if (stack_new(&st) != 0) {
        tap_ok(0, "ctx_deep_call_chain_on_64k_stack (no stack)");
        return;
    }
    deep_top = (uintptr_t)st.lo + STACK_SIZE;
    ag__ctx_make(&deep_ctx, st.lo, STACK_SIZE, deep_main, NULL);
    ag__ctx_switch(&main_ctx, &deep_ctx);
    tap_ok(deep_bad == 0 && deep_used >= DEEP_TARGET && deep_used < STACK_SIZE,
           "ctx_deep_call_chain_on_64k_stack");
    tap_diag("%zu of %d bytes used in %u levels, %u corrupted frames", deep_used, STACK_SIZE,
             deep_levels, deep_bad);
    stack_free(&st);
}

int main(void)
{
    tap_plan(7);
    test_callee_saved();
    test_fp_control();
    test_ping_pong();
    test_deep_call_chain();
    return tap_done();
}
