/* test-attack.c: faults found by probing the public API from outside, each kept as a test: abuse
 * of arguments, callbacks that free or wait, cancels before the start, servers that answer an
 * upload early and reset, interim responses that are not the answer. */
#include "tests/http/util.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>

static int hport;

static ag_client *client_with(const ag_client_opts *o)
{
    ag_client *c;
    if (ag_client_new(&c, o) < 0)
        abort();
    return c;
}

/* A new loop in *loop and a client on it with every default. */
static ag_client *loop_client(ag_loop **loop)
{
    if (ag_loop_new(loop, NULL) < 0)
        abort();
    ag_client_opts o = {0};
    o.loop = *loop;
    return client_with(&o);
}

/* Run fn in a child process, so that a crash fails one case and not the whole file. Returns
 * fn's exit status, or 128 + the signal that killed the child. */
static int in_child(int (*fn)(void))
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(fn());
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The body of /attack/seen?tag=TAG: how many requests with that tag reached the server. */
static long server_seen(ag_client *c, const char *tag)
{
    char path[128];
    snprintf(path, sizeof path, "/attack/seen?tag=%s", tag);
    int rc;
    ag_response *r = get(c, url_of(hport, path), &rc);
    long n = rc == 0 && ag_response_status(r) == 200 ? atol(ag_response_body(r, NULL)) : -1;
    ag_response_free(r);
    return n;
}

/* One ag_fetch in a coroutine of loop, run to the end; the response stays for the caller. */
typedef struct fetch_ctx {
    ag_client *c;
    const ag_request *req;
    ag_response *resp;
    int rc;
} fetch_ctx;

static void fetch_fn(void *arg)
{
    fetch_ctx *fx = arg;
    fx->rc = ag_fetch(fx->c, fx->req, &fx->resp);
}

static int fetch_in_loop(ag_loop *loop, ag_client *c, const ag_request *req, ag_response **resp)
{
    fetch_ctx fx = {c, req, NULL, 1};
    if (ag_coro_spawn(loop, fetch_fn, &fx, NULL) < 0)
        abort();
    ag_loop_run(loop);
    *resp = fx.resp;
    return fx.rc;
}

/* ---- a zero-filled timer is not armed, and starting it without a callback is refused ---- */

static int timer_zero_child(void)
{
    ag_loop *loop;
    if (ag_loop_new(&loop, NULL) < 0)
        return 2;
    ag_timer t = {0};
    int rc = ag_timer_start(loop, &t, ag_now_ns());
    ag_loop_run(loop); /* fires it if it was armed */
    int armed = ag_timer_armed(&t);
    ag_loop_free(loop);
    return rc == -EINVAL && !armed ? 0 : 1;
}

static void timer_zero_filled(void)
{
    int st = in_child(timer_zero_child);
    tap_ok(st == 0,
           "timer_start_without_callback: a zero-filled timer is refused with -EINVAL, not "
           "called through NULL when due (child status %d)",
           st);
}

/* ---- NULL arguments to ag_fetch ---- */

static int fetch_null_child(void)
{
    ag_client *c = client_with(NULL);
    ag_request req = {0};
    req.url = url_of(hport, "/ok");
    ag_response *r = (ag_response *)&req, *r2 = (ag_response *)&req;
    int a = ag_fetch(NULL, &req, &r);
    int b = ag_fetch(c, NULL, &r2);
    int d = ag_fetch(c, &req, NULL);
    ag_client_free(c);
    return a == -EINVAL && r == NULL && b == -EINVAL && r2 == NULL && d == -EINVAL ? 0 : 1;
}

static void fetch_null_arguments(void)
{
    int st = in_child(fetch_null_child);
    tap_ok(st == 0,
           "fetch_null_arguments: a NULL client, request or out is -EINVAL, as in "
           "ag_fetch_start, not a crash (child status %d)",
           st);
}

/* ---- the last completion callback frees the client ---- */

typedef struct free_ctx {
    int pending;
    int free_rc;
    int statuses;
} free_ctx;

static void free_when_last(ag_client *c, ag_response *r, int status, void *arg)
{
    free_ctx *fc = arg;
    fc->statuses += status == 0 && ag_response_status(r) == 200;
    ag_response_free(r);
    if (--fc->pending == 0)
        fc->free_rc = ag_client_free(c);
}

static void client_free_in_last_callback(void)
{
    ag_loop *loop;
    ag_client *c = loop_client(&loop);
    free_ctx fc = {0, 1, 0};
    ag_request req = {0};
    req.url = url_of(hport, "/ok");
    for (int i = 0; i < 3; i++)
        fc.pending += ag_fetch_start(c, &req, free_when_last, &fc, NULL) == 0;
    ag_loop_run(loop);
    tap_ok(fc.free_rc == 0 && fc.statuses == 3,
           "client_free_in_last_callback: the callback of the last request may free the client "
           "(%s; %d of 3 answered)",
           ag_err_name(fc.free_rc), fc.statuses);
    if (fc.free_rc != 0)
        ag_client_free(c); /* the old behaviour: -EBUSY, and the client would leak */
    ag_loop_free(loop);
}

/* ---- a request cancelled before it starts sends nothing ---- */

typedef struct done_ctx {
    int calls;
    int status;
} done_ctx;

static void record_done(ag_client *c, ag_response *r, int status, void *arg)
{
    (void)c;
    done_ctx *d = arg;
    d->calls++;
    d->status = status;
    ag_response_free(r);
}

static void cancel_before_start(void)
{
    ag_loop *loop;
    ag_client *c = loop_client(&loop);

    /* A keep-alive connection waits in the pool: the cancelled request could take it and write
     * at once, with no wait that would notice the cancel. */
    ag_request req = {0};
    req.url = url_of(hport, "/attack/mark?tag=warm");
    done_ctx warm = {0, 1};
    ag_fetch_start(c, &req, record_done, &warm, NULL);
    ag_loop_run(loop);

    req.method = "POST";
    req.url = url_of(hport, "/attack/mark?tag=cancelled");
    req.body_kind = AG_BODY_MEMORY;
    req.body = "charge the card";
    req.body_len = 15;
    done_ctx d = {0, 0};
    ag_coro *h = NULL;
    ag_fetch_start(c, &req, record_done, &d, &h);
    ag_coro_cancel(h);
    ag_loop_run(loop);
    ag_coro_unref(h);

    long seen = server_seen(c, "cancelled");
    tap_ok(warm.status == 0 && d.calls == 1 && d.status == -ECANCELED && seen == 0,
           "fetch_cancel_before_start_sends_nothing: %s, and the server saw the POST %ld times",
           ag_err_name(d.status), seen);
    ag_client_free(c);
    ag_loop_free(loop);
}

/* ---- an early answer followed by a reset is the answer, not ECONNRESET ---- */

static ptrdiff_t slow_reader(void *arg, void *buf, size_t cap)
{
    int *calls = arg;
    if (++*calls > 3)
        return 0;
    /* Meanwhile the server answers 413 and resets the connection. */
    ag_sleep_ms(300);
    size_t n = cap < 1000 ? cap : 1000;
    memset(buf, 'u', n);
    return (ptrdiff_t)n;
}

static void early_answer_then_reset(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    ag_client_opts o = {0};
    o.loop = loop;
    o.expect_continue_size = AG_NO_EXPECT; /* the body follows the head at once */
    ag_client *c = client_with(&o);
    int calls = 0;
    ag_request req = {0};
    req.method = "PUT";
    req.url = url_of(hport, "/attack/early-reset");
    req.body_kind = AG_BODY_READER;
    req.body_read = slow_reader;
    req.body_read_arg = &calls;
    ag_response *r;
    int rc = fetch_in_loop(loop, c, &req, &r);
    tap_ok(rc == 0 && ag_response_status(r) == 413,
           "upload_early_answer_then_reset: the 413 waiting in the receive queue is the answer, "
           "not the failed write's error (%s, status %d, \"%s\")",
           ag_err_name(rc), ag_response_status(r), ag_response_error_detail(r));
    ag_response_free(r);
    ag_client_free(c);
    ag_loop_free(loop);
}

/* ---- an interim response is not the answer ---- */

static ptrdiff_t failing_reader(void *arg, void *buf, size_t cap)
{
    (void)arg, (void)buf, (void)cap;
    return -1;
}

static void interim_is_not_the_status(void)
{
    ag_client *c = client_with(NULL);
    int rc;
    ag_response *r = get(c, url_of(hport, "/many-1xx?n=50"), &rc);
    tap_ok(rc == AG_EPROTO && ag_response_status(r) == 0,
           "interim_only_status_zero: too many 1xx fail with AG_EPROTO and no status, since no "
           "final response arrived (%s, status %d)",
           ag_err_name(rc), ag_response_status(r));
    ag_response_free(r);

    /* "100 Continue" arrives, then the body cannot be read. */
    ag_request req = {0};
    req.method = "POST";
    req.url = url_of(hport, "/echo");
    req.body_kind = AG_BODY_READER;
    req.body_read = failing_reader;
    rc = ag_fetch(c, &req, &r);
    tap_ok(rc == AG_EBODY && ag_response_status(r) == 0,
           "interim_then_body_error_status_zero: %s with status %d after \"100 Continue\"",
           ag_err_name(rc), ag_response_status(r));
    ag_response_free(r);
    ag_client_free(c);
}

/* ---- a trace hook that waits loses no readiness ---- */

static void sleepy_trace(void *arg, const ag_trace_event *ev)
{
    (void)arg;
    /* Writing the trace to a pipe or a socket may wait like this. */
    if (ev->kind == AG_TRACE_RECV)
        ag_sleep_ms(300);
}

static void trace_that_waits(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    ag_client_opts o = {0};
    o.loop = loop;
    o.trace = sleepy_trace;
    o.idle_timeout_ms = 2000;
    ag_client *c = client_with(&o);
    /* The head and "a" arrive, the hook waits, "b" arrives during the wait: the readiness it
     * brings must still be there when the read loop asks. */
    ag_request req = {0};
    req.url = url_of(hport, "/attack/split-body?ms=100");
    ag_response *r;
    int rc = fetch_in_loop(loop, c, &req, &r);
    size_t len;
    const char *body = ag_response_body(r, &len);
    tap_ok(rc == 0 && len == 2 && memcmp(body, "ab", 2) == 0,
           "trace_hook_that_waits_loses_no_readiness: %s with %zu body bytes (idle timeout 2 s)",
           ag_err_name(rc), len);
    ag_response_free(r);
    ag_client_free(c);
    ag_loop_free(loop);
}

/* ---- a reader that keeps producing is stopped at the total deadline ---- */

typedef struct stream_ctx {
    int calls;
    int64_t starts[64];
} stream_ctx;

static ptrdiff_t endless_reader(void *arg, void *buf, size_t cap)
{
    stream_ctx *s = arg;
    if (s->calls == 40)
        return 0; /* 2 s: where the old code stopped, long past the deadline */
    s->starts[s->calls++] = ag_now_ns();
    /* A live source: the socket takes each piece at once and never makes the request wait. */
    ag_sleep_ms(50);
    size_t n = cap < 1000 ? cap : 1000;
    memset(buf, 's', n);
    return (ptrdiff_t)n;
}

static void reader_deadline(void)
{
    ag_loop *loop;
    ag_client *c = loop_client(&loop);
    stream_ctx s = {0};
    ag_request req = {0};
    req.method = "POST";
    req.url = url_of(hport, "/echo");
    req.body_kind = AG_BODY_READER;
    req.body_read = endless_reader;
    req.body_read_arg = &s;
    req.timeout_ms = 300;
    ag_response *r;
    int rc = fetch_in_loop(loop, c, &req, &r);
    ag_timings t;
    ag_response_timings(r, &t);
    /* The check before a call and the call's own clock read may straddle the deadline: a call
     * counts as late only well after it. */
    int64_t late_after = t.start + 300 * 1000000LL + 20 * 1000000LL;
    int late = 0;
    for (int i = 0; i < s.calls; i++)
        late += s.starts[i] > late_after;
    tap_ok(rc == AG_ETOTAL_TIMEOUT && late == 0,
           "upload_reader_stopped_at_total_deadline: %s after %d reader calls, %d of them begun "
           "after the 300 ms deadline",
           ag_err_name(rc), s.calls, late);
    ag_response_free(r);
    ag_client_free(c);
    ag_loop_free(loop);
}

/* ---- freeing the loop before its client is refused, not a use after free ---- */

static int loop_before_client_child(void)
{
    ag_loop *loop;
    ag_client *c = loop_client(&loop);
    ag_request req = {0};
    req.url = url_of(hport, "/ok");
    ag_response *r;
    int rc = fetch_in_loop(loop, c, &req, &r); /* leaves an idle connection on the loop */
    ag_response_free(r);
    int early = ag_loop_free(loop); /* the wrong order */
    int cfree = early == 0 ? 1 : ag_client_free(c);
    int late = early == 0 ? 1 : ag_loop_free(loop);
    return rc == 0 && early == -EBUSY && cfree == 0 && late == 0 ? 0 : 1;
}

static void loop_free_before_client(void)
{
    int st = in_child(loop_before_client_child);
    tap_ok(st == 0,
           "loop_free_with_client_connections_busy: freeing a loop whose client still keeps an "
           "idle connection on it is -EBUSY, and the client then frees cleanly (child status "
           "%d)",
           st);
}

/* ---- two bodies into one pipe that fills ---- */

typedef struct drain_ctx {
    int fd;
    int *pending;
    size_t drained;
} drain_ctx;

static void drain_slowly(void *arg)
{
    drain_ctx *d = arg;
    static char buf[64 * 1024]; /* not on the coroutine's stack */
    for (;;) {
        ssize_t n = read(d->fd, buf, sizeof buf);
        if (n > 0) {
            d->drained += (size_t)n;
            ag_sleep_ms(5); /* slower than the server: the pipe fills and writers wait */
            continue;
        }
        if (n == 0 || *d->pending == 0)
            return;
        ag_wait_fd(d->fd, AG_READ, ag_now_ns() + 100 * 1000000LL);
    }
}

typedef struct sink_result {
    int *pending;
    int status;
    uint64_t bytes;
    char detail[160];
} sink_result;

static void sink_done(ag_client *c, ag_response *r, int status, void *arg)
{
    (void)c;
    sink_result *res = arg;
    res->status = status;
    res->bytes = ag_response_body_bytes(r);
    snprintf(res->detail, sizeof res->detail, "%s", ag_response_error_detail(r));
    --*res->pending;
    ag_response_free(r);
}

static void shared_sink_fd(void)
{
    int p[2];
    if (pipe(p) < 0)
        abort();
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    ag_loop *loop;
    ag_client *c = loop_client(&loop);
    int pending = 2;
    sink_result res[2] = {{&pending, 1, 0, ""}, {&pending, 1, 0, ""}};
    ag_request req = {0};
    req.url = url_of(hport, "/close-no-length?size=1000000");
    req.sink = AG_SINK_FD;
    req.sink_fd = p[1];
    for (int i = 0; i < 2; i++)
        ag_fetch_start(c, &req, sink_done, &res[i], NULL);
    drain_ctx d = {p[0], &pending, 0};
    ag_coro_spawn(loop, drain_slowly, &d, NULL);
    ag_loop_run(loop);
    tap_ok(res[0].status == 0 && res[1].status == 0 && res[0].bytes == 1000000 &&
               res[1].bytes == 1000000 && d.drained == 2000000,
           "sink_fd_shared_by_two_requests: both bodies go into one pipe that fills (%s \"%s\", "
           "%s \"%s\"; %zu bytes drained)",
           ag_err_name(res[0].status), res[0].detail, ag_err_name(res[1].status), res[1].detail,
           d.drained);
    ag_client_free(c);
    ag_loop_free(loop);
    close(p[0]);
    close(p[1]);
}

/* ---- 417 to "Expect: 100-continue": the request is repeated without it ---- */

static ptrdiff_t five_bytes(void *arg, void *buf, size_t cap)
{
    int *calls = arg;
    if ((*calls)++ || cap < 5)
        return 0;
    memcpy(buf, "hello", 5);
    return 5;
}

static void expectation_failed(void)
{
    ag_client_opts o = {0};
    o.expect_continue_size = 1; /* every body of 2 bytes or more asks first */
    ag_client *c = client_with(&o);
    const char *kinds[] = {"memory", "reader"};
    for (int k = 0; k < 2; k++) {
        int calls = 0;
        ag_request req = {0};
        req.method = "POST";
        req.url = url_of(hport, "/attack/expect-417");
        if (k == 0) {
            req.body_kind = AG_BODY_MEMORY;
            req.body = "hello";
            req.body_len = 5;
        } else {
            req.body_kind = AG_BODY_READER;
            req.body_read = five_bytes;
            req.body_read_arg = &calls;
        }
        ag_response *r;
        int rc = ag_fetch(c, &req, &r);
        size_t len;
        const char *body = ag_response_body(r, &len);
        tap_ok(rc == 0 && ag_response_status(r) == 200 && strstr(body, "\"body\": \"hello\"") &&
                   !strstr(body, "100-continue"),
               "expect_417_repeated_without_expect_%s: a 417 to the expectation is answered by "
               "the same request without it, as RFC 9110 10.1.1 asks (%s, status %d)",
               kinds[k], ag_err_name(rc), ag_response_status(r));
        ag_response_free(r);
    }
    ag_client_free(c);
}

/* ---- a frame larger than one page faults instead of writing on a sibling's stack ---- */

static uintptr_t canary_at[6];
static int canary_hit;

static void victim(void *arg)
{
    long i = (long)arg;
    volatile unsigned char canary[512];
    memset((void *)canary, 0xAA, sizeof canary);
    canary_at[i] = (uintptr_t)canary;
    ag_sleep_ms(50);
    for (size_t k = 0; k < sizeof canary; k++)
        canary_hit |= canary[k] != 0xAA;
}

/* The project builds with -fstack-clash-protection; a caller's code may not. Clang has no way to
 * turn it off for one function: there the probes find the guard whatever its size. */
#if defined(__GNUC__) && !defined(__clang__)
#define NO_STACK_PROBES __attribute__((noinline, optimize("no-stack-clash-protection")))
#else
#define NO_STACK_PROBES __attribute__((noinline))
#endif

/* A callback with a big local array, compiled without stack probes: the first byte it writes
 * lies 100 KiB below where the frame starts. It writes a sibling's canary if the frame covers
 * one, else its lowest byte. */
NO_STACK_PROBES static void big_frame(void)
{
    volatile char big[100 * 1024];
    uintptr_t lo = (uintptr_t)big;
    size_t at = 0;
    for (int i = 0; i < 6; i++)
        if (canary_at[i] >= lo && canary_at[i] + 512 <= lo + sizeof big)
            at = canary_at[i] - lo;
    big[at] = 0;
}

static void big_framer(void *arg)
{
    (void)arg;
    ag_sleep_ms(10);
    big_frame();
}

static int big_frame_child(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    for (long i = 0; i < 3; i++)
        ag_coro_spawn(loop, victim, (void *)i, NULL);
    ag_coro_spawn(loop, big_framer, NULL, NULL);
    for (long i = 3; i < 6; i++)
        ag_coro_spawn(loop, victim, (void *)i, NULL);
    ag_loop_run(loop);
    return canary_hit ? 1 : 2; /* 1: a sibling's stack was written, 2: no fault at all */
}

static void big_frame_guard(void)
{
    if (getenv("AG_SANITIZED")) {
        /* AddressSanitizer may move the array to its fake stack, away from any guard. */
        tap_skip("coro_big_frame_faults_on_guard: not under AddressSanitizer");
        return;
    }
    int st = in_child(big_frame_child);
    tap_ok(st == 128 + SIGSEGV,
           "coro_big_frame_faults_on_guard: a 100 KiB frame on a 64 KiB coroutine stack dies on "
           "the guard instead of writing a sibling's live stack (child status %d: 1 a sibling "
           "written, 2 no fault)",
           st);
}

/* ---- an answer that starts while the body is written: the body goes out once ---- */

static void answer_while_writing(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    ag_client_opts o = {0};
    o.loop = loop;
    o.expect_continue_size = AG_NO_EXPECT; /* head and body in one write that fills the socket */
    ag_client *c = client_with(&o);
    size_t n = 8 * 1024 * 1024;
    char *body = malloc(n);
    memset(body, 'b', n);
    ag_request req = {0};
    req.method = "PUT";
    req.url = url_of(hport, "/attack/answer-while-reading");
    req.body_kind = AG_BODY_MEMORY;
    req.body = body;
    req.body_len = n;
    ag_response *r;
    int rc = fetch_in_loop(loop, c, &req, &r);
    const char *answer = ag_response_body(r, NULL);
    tap_ok(rc == 0 && strcmp(answer, "received 8388608, not b: 0") == 0,
           "upload_answer_while_writing_sends_body_once: the server got the body as sent (%s, "
           "\"%s\")",
           ag_err_name(rc), answer);
    ag_response_free(r);
    free(body);
    ag_client_free(c);
    ag_loop_free(loop);
}

int main(void)
{
    hport = env_port("AG_HOSTILE_PORT");
    timer_zero_filled();
    fetch_null_arguments();
    client_free_in_last_callback();
    cancel_before_start();
    early_answer_then_reset();
    interim_is_not_the_status();
    trace_that_waits();
    reader_deadline();
    loop_free_before_client();
    shared_sink_fd();
    expectation_failed();
    big_frame_guard();
    answer_while_writing();
    return tap_done();
}
