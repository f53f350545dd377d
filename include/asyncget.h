/* asyncget.h: the public API of asyncget, an event-driven HTTP/1.1 client with its own reactor. */
#ifndef ASYNCGET_H
#define ASYNCGET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(AG_BUILDING) && defined(__GNUC__)
#define AG_EXPORT __attribute__((visibility("default")))
#else
#define AG_EXPORT
#endif

#define AG_VERSION "0.1.0"

/*
 * Errors. Every fallible function returns 0 (or a count) on success and a negative code on
 * failure: a negative errno from the system, or one of asyncget's own codes below, which live in a
 * range no errno uses. ag_strerror() and ag_err_name() name any of them.
 */
#define AG_ERRORS(X)                                                                               \
    X(URL, -20001, "malformed URL")                                                                \
    X(SCHEME, -20002, "unsupported URL scheme")                                                    \
    X(HEADER, -20003, "invalid header name or value")                                              \
    X(DNS, -20004, "host name could not be resolved")                                              \
    X(TLS, -20005, "TLS failure")                                                                  \
    X(TLS_VERIFY, -20006, "TLS certificate verification failed")                                   \
    X(PROTO, -20007, "HTTP protocol violation by the server")                                      \
    X(TOO_LARGE, -20008, "response exceeds a configured size limit")                               \
    X(REDIRECTS, -20009, "too many redirects")                                                     \
    X(REDIRECT, -20010, "redirect to an unusable location")                                        \
    X(POOL_TIMEOUT, -20011, "timed out waiting for a connection slot")                             \
    X(CONNECT_TIMEOUT, -20012, "timed out connecting")                                             \
    X(IDLE_TIMEOUT, -20013, "timed out waiting for data from the server")                          \
    X(TOTAL_TIMEOUT, -20014, "request exceeded its total time limit")                              \
    X(CLOSED, -20015, "server closed the connection before responding")                            \
    X(TRUNCATED, -20016, "response body truncated")                                                \
    X(BODY, -20017, "request body could not be read or replayed")                                  \
    X(SINK, -20018, "response body consumer failed")

enum ag_error {
#define AG__ERR_ENUM(name, value, text) AG_E##name = value,
    AG_ERRORS(AG__ERR_ENUM)
#undef AG__ERR_ENUM
};

/* Human-readable text for any code (asyncget's own or a negative errno). Never NULL. */
AG_EXPORT const char *ag_strerror(int err);
/* Short symbolic name such as "AG_ETLS" or "ECONNREFUSED". Never NULL. */
AG_EXPORT const char *ag_err_name(int err);

/* Monotonic clock in nanoseconds, the time base of every deadline. */
AG_EXPORT int64_t ag_now_ns(void);

/* ------------------------------------------------------------------------------------------ */
/* The reactor. One loop per thread; every object made from a loop stays on that thread. */

typedef struct ag_loop ag_loop;

typedef struct ag_loop_opts {
    size_t stack_size;  /* usable bytes per coroutine stack (rounded to pages); 0: 64 KiB */
    size_t stack_cache; /* parked stacks kept with their pages; 0: 1024 */
} ag_loop_opts;

AG_EXPORT void ag_loop_opts_init(ag_loop_opts *opts);
/* Make a loop. opts may be NULL for the defaults. */
AG_EXPORT int ag_loop_new(ag_loop **out, const ag_loop_opts *opts);
/* Free a loop with no live coroutine left (cancel and run them out first). NULL is accepted. */
AG_EXPORT void ag_loop_free(ag_loop *loop);
/* Run until no coroutine is alive and no timer is pending, or ag_loop_stop() is called. */
AG_EXPORT int ag_loop_run(ag_loop *loop);
/* Make ag_loop_run() return after the current iteration (from the loop's own thread). */
AG_EXPORT void ag_loop_stop(ag_loop *loop);
/* Name of the readiness backend this build uses: "epoll", "kqueue" or "poll". */
AG_EXPORT const char *ag_loop_backend(void);

/* Embedding in a foreign event loop: watch ag_loop_fd() for readability (it is -ENOTSUP on the
 * poll backend), wake up after ag_loop_timeout_ms() at the latest (-1: no deadline), and call
 * ag_loop_run_once(loop, 0) then. run_once returns the number of live coroutines and timers. */
AG_EXPORT int ag_loop_fd(const ag_loop *loop);
AG_EXPORT int ag_loop_timeout_ms(const ag_loop *loop);
AG_EXPORT int ag_loop_run_once(ag_loop *loop, int timeout_ms);

/* Thread-safe: make the loop's current or next wait return. Safe from any thread and from
 * signal handlers. The callback set with ag_loop_on_wake runs on the loop's thread afterwards. */
AG_EXPORT void ag_loop_wake(ag_loop *loop);
AG_EXPORT void ag_loop_on_wake(ag_loop *loop, void (*cb)(ag_loop *loop, void *arg), void *arg);

/* The loop of the calling thread's running coroutine or loop iteration, or NULL. */
AG_EXPORT ag_loop *ag_loop_current(void);

/* ------------------------------------------------------------------------------------------ */
/* Timers: a callback at a monotonic deadline, cancellable. The timer struct is the caller's. */

typedef struct ag_timer ag_timer;
typedef void (*ag_timer_cb)(ag_timer *timer, void *arg);

struct ag_timer {
    int64_t deadline_ns; /* read-only while armed */
    ag_timer_cb cb;
    void *arg;
    size_t heap_index; /* private: position in the loop's heap, or SIZE_MAX */
};

AG_EXPORT void ag_timer_init(ag_timer *timer, ag_timer_cb cb, void *arg);
/* Arm (or re-arm) the timer for an absolute deadline on ag_now_ns()'s clock. */
AG_EXPORT int ag_timer_start(ag_loop *loop, ag_timer *timer, int64_t deadline_ns);
/* Disarm; harmless on a timer that is not armed. */
AG_EXPORT void ag_timer_stop(ag_loop *loop, ag_timer *timer);
AG_EXPORT int ag_timer_armed(const ag_timer *timer);

/* ------------------------------------------------------------------------------------------ */
/* Coroutines: stackful, each on its own mmap'd stack with a guard page. Every wait below works
 * inside a coroutine (it parks it and runs others) and outside one (it blocks in poll()). */

typedef struct ag_coro ag_coro;
typedef void (*ag_coro_fn)(void *arg);

/* Start fn(arg) as a coroutine on loop; it first runs at the loop's next iteration. If out is
 * not NULL it receives a reference, to be dropped with ag_coro_unref(). */
AG_EXPORT int ag_coro_spawn(ag_loop *loop, ag_coro_fn fn, void *arg, ag_coro **out);
AG_EXPORT void ag_coro_unref(ag_coro *co);
/* Ask a coroutine to stop: its current and every later wait returns -ECANCELED. */
AG_EXPORT void ag_coro_cancel(ag_coro *co);
AG_EXPORT int ag_coro_done(const ag_coro *co);
/* Wait until co has finished (inside a coroutine), or -ECANCELED. */
AG_EXPORT int ag_coro_join(ag_coro *co);
/* The running coroutine, or NULL in plain code. */
AG_EXPORT ag_coro *ag_coro_self(void);

/* Let the other ready coroutines run; no-op outside a coroutine. -ECANCELED if cancelled. */
AG_EXPORT int ag_yield(void);
/* Sleep until the deadline (absolute ns). 0, or -ECANCELED. */
AG_EXPORT int ag_sleep_until(int64_t deadline_ns);
AG_EXPORT int ag_sleep_ms(int64_t ms);

enum { AG_READ = 1, AG_WRITE = 2 };
/* Wait until fd is readable or writable (AG_READ, AG_WRITE or both) or the absolute deadline
 * passes (-1: none). Returns the ready subset, -ETIMEDOUT or -ECANCELED. */
AG_EXPORT int ag_wait_fd(int fd, int events, int64_t deadline_ns);

#ifdef __cplusplus
}
#endif
#endif
