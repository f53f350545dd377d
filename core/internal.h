/* internal.h: structures and functions shared by the files of core/ and the layers above it. */
#ifndef AG_CORE_INTERNAL_H
#define AG_CORE_INTERNAL_H

#include "asyncget.h"
#include "core/compat.h"
#include "core/ctx.h"
#include "core/poller.h"
#include "core/queue.h"
#include "core/str.h"

/* AG_ASAN: built with AddressSanitizer (gcc or clang), which must be told about our stacks. */
#if defined(__SANITIZE_ADDRESS__)
#define AG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AG_ASAN 1
#endif
#endif

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- stacks (core/stack.c) ---- */

enum ag__guard_mode {
    AG__GUARD_MADVISE = 1,  /* MADV_GUARD_INSTALL: guards inside one mapping per slab */
    AG__GUARD_MPROTECT = 2, /* PROT_NONE page: a second mapping per stack */
};

typedef struct ag__stack_pool ag__stack_pool;

int ag__stack_pool_new(ag__stack_pool **out, size_t stack_size, size_t cache);
void ag__stack_pool_free(ag__stack_pool *pool);
/* Take a stack: *lo is its lowest usable byte, usable size is the pool's stack size. */
int ag__stack_get(ag__stack_pool *pool, void **lo);
void ag__stack_put(ag__stack_pool *pool, void *lo);
size_t ag__stack_size(const ag__stack_pool *pool);
/* How guard pages are made in this process (probed once). */
enum ag__guard_mode ag__stack_guard_mode(void);
size_t ag__page_size(void);

/* ---- timers (core/timer.c) ---- */

typedef struct ag__timer_heap {
    ag_timer **items;
    size_t len, cap;
} ag__timer_heap;

/* Free the heap; the timers still in it are left disarmed. */
void ag__timer_heap_free(ag__timer_heap *h);
int ag__timer_heap_push(ag__timer_heap *h, ag_timer *t);
void ag__timer_heap_remove(ag__timer_heap *h, ag_timer *t);
static inline ag_timer *ag__timer_heap_top(const ag__timer_heap *h)
{
    return h->len ? h->items[0] : NULL;
}

/* ---- registered fds (core/loop.c) ---- */

/* One fd known to a loop for its whole life, registered once with the backend. I/O is tried
 * first; only after EAGAIN does the caller clear the cached readiness and wait. Without a loop
 * (blocking code) the same calls wait in poll(). */
typedef struct ag__io ag__io;
struct ag__io {
    int fd;
    unsigned ready;     /* AG__POLL_IN / AG__POLL_OUT seen since the last EAGAIN */
    ag_loop *loop;      /* NULL: plain blocking fd */
    ag_coro *waiter[2]; /* parked reader and writer */
    bool heap;          /* allocated by ag_fd_register, freed by ag_fd_unregister */
    bool temp;          /* registered for one ag_wait_fd, on the waiting coroutine's stack */
    /* Set: the loop calls this with the new readiness (AG_READ, AG_WRITE) instead of waking
     * waiters, from the loop's own context (no coroutine runs it). It may close io. On the poll
     * backend it must re-arm what it still wants with ag__io_rearm. */
    void (*on_ready)(ag__io *io, unsigned events);
    void *data; /* the owner's, for on_ready */
};

/* Register fd with loop (NULL for blocking use). The fd must be non-blocking. */
int ag__io_init(ag__io *io, ag_loop *loop, int fd);
/* Unregister without closing (the fd is someone else's to close). */
void ag__io_detach(ag__io *io);
/* Unregister and close the fd. */
void ag__io_close(ag__io *io);
/* Wait for AG_READ and/or AG_WRITE on io, or the deadline (-1 none). Returns the ready subset,
 * -ETIMEDOUT or -ECANCELED. When the cached readiness already has it, the wait goes through
 * ag__coro_checkpoint() instead of parking: a cancel or a past deadline is reported, and a
 * coroutine that never parks still lets the loop run now and then. */
int ag__io_wait(ag__io *io, unsigned events, int64_t deadline_ns);
/* The same, for a wait whose caller decided before preparing it whether it began after its
 * deadline (late): the preparation (registering an fd) may take long enough for the deadline to
 * pass, and readiness that was there when the wait began must still count. */
int ag__io_wait_begun(ag__io *io, unsigned events, int64_t deadline_ns, bool late);
/* io->ready holds the backend's AG__POLL_* bits; callers speak AG_READ and AG_WRITE. The two
 * happen to have equal values, which nothing may rely on: convert. */
static inline unsigned ag__poll_bits(unsigned events)
{
    return (events & AG_READ ? AG__POLL_IN : 0u) | (events & AG_WRITE ? AG__POLL_OUT : 0u);
}
/* The subset of events (AG_READ, AG_WRITE) that io's cached readiness has. */
static inline unsigned ag__io_ready(const ag__io *io, unsigned events)
{
    unsigned bits = io->ready & ag__poll_bits(events);
    return (bits & AG__POLL_IN ? (unsigned)AG_READ : 0u) |
           (bits & AG__POLL_OUT ? (unsigned)AG_WRITE : 0u);
}
/* Move a registered record to another address (a connection attempt's socket becoming the
 * connection's): the loop's table follows. Nobody may wait on src. */
void ag__io_move(ag__io *dst, ag__io *src);
/* Ask the backend for the next report of events (AG_READ, AG_WRITE) on io: needed by on_ready
 * owners on the poll backend, free on the others. */
void ag__io_rearm(ag__io *io, unsigned events);

#define AG__WAIT_ANY_MAX 32
/* One entry of ag__wait_any: wait for events (AG_READ, AG_WRITE) on io; revents is the ready
 * subset on return. */
typedef struct ag__wait_item {
    ag__io *io;
    unsigned events;
    unsigned revents;
} ag__wait_item;
/* Wait for the first of several things: one of the items becomes ready, the deadline (-1: none)
 * passes, or (inside a coroutine) another party wakes the coroutine with ag__coro_wake(co, 0),
 * as a DNS answer does. Returns the number of ready items (their revents set; cached readiness
 * counts, so an item ready before the call returns at once), 0 for a wake with no item ready,
 * -ETIMEDOUT, -ECANCELED, or -EBUSY when another coroutine waits on an item's fd and
 * direction. Plain code, and a coroutine given an fd its loop does not watch, waits in poll(). */
int ag__wait_any(ag__wait_item *items, int n, int64_t deadline_ns);

/* Forget cached readiness (AG_READ, AG_WRITE) after an I/O call returned EAGAIN. */
static inline void ag__io_clear(ag__io *io, unsigned events)
{
    io->ready &= ~ag__poll_bits(events);
}
/* ---- coroutines and the loop (core/coro.c, core/loop.c) ---- */

enum ag__coro_state { AG__CO_READY, AG__CO_RUNNING, AG__CO_PARKED, AG__CO_DONE };

struct ag_coro {
    ag__ctx ctx;
    ag_loop *loop;
    void *stack_lo;
    ag_coro_fn fn;
    void *arg;
    ag__queue ready; /* link in the loop's ready queue, or in its queue of coroutines yielding
                      * at a checkpoint */
    ag_coro *joiner; /* a coroutine waiting in ag_coro_join */
    ag__io *wait_io; /* what the parked coroutine waits on, for cancel */
    ag_timer timer;  /* deadline of the current wait */
    int refs;        /* the loop's while alive, plus handles given out */
    int result;      /* value the current park returns */
    int streak;    /* checkpoints passed since this coroutine last parked or yielded to the loop */
    uint8_t state; /* enum ag__coro_state */
    bool cancelled;
    void *asan_fake_stack;
};

struct ag_loop {
    ag__poller *poller;
    ag__stack_pool *stacks;
    ag__timer_heap timers;
    ag__io **fds; /* registered fds, indexed by fd */
    size_t nfds;
    ag__queue ready; /* coroutines to run, in order */
    ag__queue later; /* ready again after the next backend poll and timers */
    ag_coro *running;
    ag__ctx sched_ctx;
    void *sched_asan_fake_stack;
    const void *sched_stack_bottom;
    size_t sched_stack_size;
    size_t live; /* coroutines not yet finished */
    bool stop;
    bool in_run;
    bool in_iteration; /* run_once is running: callbacks may not drive the loop again */
    ag__io wake_io;
    int wake_wfd; /* write end when the wake-up is a pipe, else the eventfd itself */
    atomic_int wake_pending;
    bool kick_pending; /* the wake fd was written for a start from outside an iteration */
    void (*wake_cb)(ag_loop *loop, void *arg);
    void *wake_arg;
    ag__poll_event *events;
    int max_events;
};

/* Park the running coroutine until ag__coro_wake(); returns the value given to it. */
int ag__coro_park(void);
/* Park until woken or the deadline (-1: none) passes: then -ETIMEDOUT. -ECANCELED at once when
 * the coroutine was cancelled. */
int ag__coro_park_until(int64_t deadline_ns);
/* The budget of ag__coro_checkpoint(): consecutive checkpoints a coroutine passes without
 * parking before it yields to the loop. libuv reads a stream at most 32 times per readiness
 * event; the same 32 here bounds what a flood costs the others (32 reads of the caller's buffer
 * plus what it does with each) while a yield, one backend poll without blocking and a few
 * switches, costs well under 1% of 32 socket reads of a 16 KiB or larger buffer. */
#define AG__CHECKPOINT_BUDGET 32
/*
 * A checkpoint in a loop that makes progress without ever parking: a read loop whose fd stays
 * readable, a writer whose socket never fills. Call it once per round of such a loop (ag__io_wait
 * does so itself when it returns cached readiness). Returns, in this order of checks:
 *   -ECANCELED   the running coroutine was cancelled;
 *   -ETIMEDOUT   deadline_ns (absolute, ag_now_ns(); -1: none) has passed;
 *   0            go on.
 * Every AG__CHECKPOINT_BUDGET-th consecutive call inside a coroutine first yields so that the
 * loop runs one whole iteration (a backend poll that does not block, the I/O it reports, due
 * timers, the coroutines they make ready) before this one resumes; the checks above are made
 * after that. The count restarts whenever the coroutine parks. Outside a coroutine (blocking
 * code, no loop) it only checks the deadline.
 */
int ag__coro_checkpoint(int64_t deadline_ns);
/* Move the coroutines that yielded at a checkpoint to the ready queue (the loop, after its backend
 * poll and timers). */
void ag__loop_resume_later(ag_loop *loop);
/* Make a parked coroutine ready with result; ignored unless it is parked. */
void ag__coro_wake(ag_coro *co, int result);
/* Work was added to loop: a coroutine spawned or made ready, a timer started. From outside an
 * iteration (a host loop's callback, plain code between iterations) this makes the loop's fd
 * readable, so that a host watching it runs an iteration and re-reads the timeout; the wake
 * callback does not run for it. Inside an iteration it costs one test. */
void ag__loop_kick_host(ag_loop *loop);
static inline void ag__loop_kick(ag_loop *loop)
{
    if (!loop->in_iteration && !loop->kick_pending)
        ag__loop_kick_host(loop);
}
/* Run the ready coroutines present when called. */
void ag__loop_run_ready(ag_loop *loop);
/* Thread-local running coroutine and loop. */
extern _Thread_local ag_coro *ag__current;
extern _Thread_local ag_loop *ag__current_loop;

/* ---- sanitizer hooks around a switch (core/coro.c) ---- */
void ag__switch(ag_loop *loop, ag__ctx *from, const ag__ctx *to, void **fake_save,
                const void *to_bottom, size_t to_size);

#endif
