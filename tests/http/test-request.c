/* test-request.c: the request as the public API promises it: zero means default, every field is
 * checked before anything is sent, errors say what and where, uploads are answered early,
 * "Expect: 100-continue" and reader bodies, the trace hook, handles and a busy client. */
#include "tests/http/util.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>

static int hport, bport;
static ag_loop *loop;

/* ---- helpers ---- */

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int body_has(const ag_response *r, const char *needle)
{
    size_t len;
    const char *b = ag_response_body(r, &len);
    return b && strstr(b, needle) != NULL;
}

/* Everything the trace hook saw, per kind. */
typedef struct trace_log {
    char sent[8192];
    size_t sent_len;
    size_t recv_len;
    int infos;
    uint64_t req_id, conn_id;
    int mixed_ids; /* events of one fetch with different request ids */
} trace_log;

static void on_trace(void *arg, const ag_trace_event *ev)
{
    trace_log *t = arg;
    if (t->req_id && ev->request_id != t->req_id)
        t->mixed_ids = 1;
    t->req_id = ev->request_id;
    t->conn_id = ev->conn_id;
    if (ev->kind == AG_TRACE_SEND) {
        size_t n = ev->len;
        if (n > sizeof t->sent - 1 - t->sent_len)
            n = sizeof t->sent - 1 - t->sent_len;
        memcpy(t->sent + t->sent_len, ev->data, n);
        t->sent_len += n;
        t->sent[t->sent_len] = 0;
    } else if (ev->kind == AG_TRACE_RECV) {
        t->recv_len += ev->len;
    } else if (ev->kind == AG_TRACE_INFO) {
        t->infos++;
    }
}

static ag_client *client_with(const ag_client_opts *o)
{
    ag_client *c;
    if (ag_client_new(&c, o) < 0)
        abort();
    return c;
}

/* A blocking client whose trace hook records into t (emptied first). */
static ag_client *traced_client(trace_log *t)
{
    memset(t, 0, sizeof *t);
    ag_client_opts o = {0};
    o.trace = on_trace;
    o.trace_arg = t;
    return client_with(&o);
}

/* ---- zero means default ---- */

static void zero_filled(void)
{
    static trace_log t;
    ag_client *c = traced_client(&t);

    ag_request req = {0};
    req.url = url_of(hport, "/echo");
    ag_response *r;
    int rc = ag_fetch(c, &req, &r);
    tap_ok(rc == 0 && body_has(r, "\"method\": \"GET\"") && !strstr(t.sent, "Content-Length") &&
               body_has(r, "\"body_len\": 0"),
           "request_zero_filled_is_get: a GET without body or Content-Length (%s)",
           ag_err_name(rc));
    tap_ok(t.req_id == ag_response_request_id(r) && t.conn_id == ag_response_conn_id(r) &&
               !t.mixed_ids && t.infos >= 1 && strncmp(t.sent, "GET /echo HTTP/1.1\r\n", 20) == 0,
           "trace_ids: the hook sees the request line under the response's request and "
           "connection ids");
    size_t blen;
    ag_response_body(r, &blen);
    tap_ok(t.recv_len > blen, "trace_recv: the hook saw the %zu response bytes (body %zu)",
           t.recv_len, blen);
    ag_response_free(r);

    if (bport) {
        ag_request red = {0};
        red.url = url_of(bport, "/redirect/2");
        rc = ag_fetch(c, &red, &r);
        tap_ok(rc == 0 && ag_response_status(r) == 200 && ag_response_redirects(r) == 2,
               "request_zero_filled_follows_redirects: 2 hops followed (%s, %u)", ag_err_name(rc),
               ag_response_redirects(r));
        ag_response_free(r);
    } else {
        tap_skip("request_zero_filled_follows_redirects: httpbin not running");
    }
    ag_client_free(c);

    ag_timer tm = {0};
    tap_ok(!ag_timer_armed(&tm), "timer_zero_filled_not_armed");
}

/* ---- every field checked before anything is sent ---- */

static void validation(void)
{
    static trace_log t;
    ag_client *c = traced_client(&t);
    struct {
        const char *name;
        ag_request req;
        int want;
        const char *detail;
    } cases[] = {
        {"request_callback_sink_without_callback",
         {.sink = AG_SINK_CALLBACK},
         AG_EREQUEST,
         "on_body"},
        {"request_fd_sink_negative", {.sink = AG_SINK_FD, .sink_fd = -1}, AG_EREQUEST, "sink_fd"},
        {"request_unknown_sink", {.sink = 42}, AG_EREQUEST, "sink"},
        {"request_body_null_with_length",
         {.body_kind = AG_BODY_MEMORY, .body_len = 10},
         AG_EREQUEST,
         "body is NULL"},
        {"request_body_without_kind", {.body = "x", .body_len = 1}, AG_EREQUEST, "body_kind"},
        {"request_file_body_negative_fd",
         {.body_kind = AG_BODY_FILE, .body_fd = -1, .body_len = 1},
         AG_EREQUEST,
         "body_fd"},
        {"request_reader_without_callback",
         {.body_kind = AG_BODY_READER},
         AG_EREQUEST,
         "body_read"},
        {"request_unknown_body_kind", {.body_kind = 9}, AG_EREQUEST, "body_kind"},
        {"request_negative_timeout", {.timeout_ms = -5}, AG_EREQUEST, "timeout_ms"},
        {"request_bad_method", {.method = "GET /x"}, AG_EREQUEST, "method"},
        {"request_headers_null", {.nheaders = 2}, AG_EREQUEST, "headers"},
        {"request_connect_refused", {.method = "CONNECT"}, AG_EREQUEST, "CONNECT"},
        {"request_reserved_not_zero", {.reserved = {0, 7}}, AG_EREQUEST, "reserved"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ag_request req = cases[i].req;
        req.url = url_of(hport, "/echo");
        t.sent_len = 0;
        t.sent[0] = 0;
        ag_response *r;
        int rc = ag_fetch(c, &req, &r);
        tap_ok(rc == cases[i].want && strstr(ag_response_error_detail(r), cases[i].detail) &&
                   t.sent_len == 0,
               "%s: %s before anything is sent (%s: \"%s\")", cases[i].name,
               ag_err_name(cases[i].want), ag_err_name(rc), ag_response_error_detail(r));
        ag_response_free(r);
    }
    /* The same checks guard the callback style: nothing starts. */
    ag_request bad = {.sink = AG_SINK_CALLBACK};
    bad.url = url_of(hport, "/echo");
    ag_coro *h = (ag_coro *)&bad;
    int rc = loop ? ag_fetch_start(c, &bad, NULL, NULL, &h) : -EINVAL;
    tap_ok(rc == -EINVAL && h == NULL, "fetch_start_null_callback: -EINVAL, no handle");
    ag_client_free(c);
}

/* ---- errors say what and where ---- */

static void details(void)
{
    ag_client *c = client_with(NULL);
    const char *urls[] = {"127.0.0.1/x",  "ftp://h/",     "http:///x",  "http://h:99999/",
                          "http://h:8x/", "http://[::1/", "http://a b/"};
    char seen[7][160];
    int distinct = 1;
    for (int i = 0; i < 7; i++) {
        ag_request req = {0};
        req.url = urls[i];
        ag_response *r;
        ag_fetch(c, &req, &r);
        snprintf(seen[i], sizeof seen[i], "%s", ag_response_error_detail(r));
        for (int k = 0; k < i; k++)
            if (strcmp(seen[k], seen[i]) == 0 || !seen[i][0])
                distinct = 0;
        tap_diag("%-18s %s: %s", urls[i], ag_err_name(ag_response_error(r)), seen[i]);
        ag_response_free(r);
    }
    tap_ok(distinct, "error_detail_urls: seven malformed URLs, seven different details");

    int rc;
    ag_response *r = get(c, "http://127.0.0.1:1/", &rc);
    tap_ok(rc == -ECONNREFUSED && strcmp(ag_response_peer(r), "127.0.0.1:1") == 0 &&
               strstr(ag_response_error_detail(r), "connect to 127.0.0.1:1"),
           "error_detail_refused: names the address that refused (\"%s\", peer \"%s\")",
           ag_response_error_detail(r), ag_response_peer(r));
    ag_response_free(r);
    r = get(c, "https://127.0.0.1:1/", &rc);
    tap_ok(rc == -ECONNREFUSED && strcmp(ag_response_peer(r), "127.0.0.1:1") == 0,
           "error_detail_https_refused: an https connect fails like an http one (%s: \"%s\")",
           ag_err_name(rc), ag_response_error_detail(r));
    ag_response_free(r);
    r = get(c, "http://no-such-host.invalid/", &rc);
    tap_ok(rc == AG_EDNS && strstr(ag_response_error_detail(r), "no-such-host.invalid"),
           "error_detail_dns: names the host (\"%s\")", ag_response_error_detail(r));
    ag_response_free(r);
    r = get(c, url_of(hport, "/te-gzip"), &rc);
    tap_ok(rc == AG_EPROTO && strstr(ag_response_error_detail(r), "response from 127.0.0.1:") &&
               strlen(ag_response_error_detail(r)) > 40,
           "error_detail_protocol: names the peer and the framing fault (\"%s\")",
           ag_response_error_detail(r));
    ag_response_free(r);
    tap_ok(strlen(ag_version()) >= 5 && strstr(ag_version_details(), "http-parser/") &&
               strstr(ag_version_details(), " c-ares/1.") &&
               strstr(ag_version_details(), ag_loop_backend()),
           "version: %s / %s", ag_version(), ag_version_details());
    ag_client_free(c);
}

/* ---- uploads: early answers, Expect, reader bodies ---- */

#define BIG (8u << 20)

static void early_answers(void)
{
    char *big = malloc(BIG);
    memset(big, 'u', BIG);
    for (int expect = 0; expect < 2; expect++) {
        ag_client_opts o = {0};
        o.idle_timeout_ms = 20000;
        if (!expect)
            o.expect_continue_size = AG_NO_EXPECT;
        ag_client *c = client_with(&o);
        ag_request req = {.method = "POST", .body_kind = AG_BODY_MEMORY};
        req.body = big;
        req.body_len = BIG;
        req.url = url_of(hport, "/early-413?s=30");
        ag_response *r;
        int rc = ag_fetch(c, &req, &r);
        tap_ok(rc == 0 && ag_response_status(r) == 413 && body_has(r, "refused before the body"),
               "upload_early_413_%s: the server's early answer is the response (%s, %d)",
               expect ? "expect" : "no_expect", ag_err_name(rc), ag_response_status(r));
        ag_response_free(r);
        /* A server that answers, then closes with the body unread (a reset). */
        req.url = url_of(hport, "/early-413-close");
        rc = ag_fetch(c, &req, &r);
        tap_ok(rc == 0 && ag_response_status(r) == 413,
               "upload_early_413_then_close_%s: the answer survives the reset (%s, %d)",
               expect ? "expect" : "no_expect", ag_err_name(rc), ag_response_status(r));
        ag_response_free(r);
        /* The connection is not reused: the server waits for a body that will never come. */
        req = (ag_request){0};
        req.url = url_of(hport, "/ok");
        rc = ag_fetch(c, &req, &r);
        tap_ok(rc == 0 && !ag_response_reused(r), "upload_early_not_reused_%s",
               expect ? "expect" : "no_expect");
        ag_response_free(r);
        ag_client_free(c);
    }
    free(big);
}

static void expect_continue(void)
{
    size_t n = 2u << 20;
    char *body = malloc(n);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)('a' + i % 26);
    char want[65], needle[100];
    sha256_hex(body, n, want);
    snprintf(needle, sizeof needle, "\"body_sha256\": \"%s\"", want);

    trace_log t;
    memset(&t, 0, sizeof t);
    ag_client_opts o = {0};
    o.trace = on_trace;
    o.trace_arg = &t;
    o.expect_timeout_ms = 300;
    ag_client *c = client_with(&o);
    ag_request req = {.method = "POST", .body_kind = AG_BODY_MEMORY};
    req.body = body;
    req.body_len = n;
    req.url = url_of(hport, "/echo");
    ag_response *r;
    int rc = ag_fetch(c, &req, &r);
    tap_ok(rc == 0 && body_has(r, needle) && strstr(t.sent, "Expect: 100-continue\r\n"),
           "expect_continue_large_body: Expect sent, 100 awaited, body intact (%s)",
           ag_err_name(rc));
    ag_response_free(r);

    /* A server that never says 100: the body goes after expect_timeout_ms. */
    req.url = url_of(hport, "/no-continue");
    rc = ag_fetch(c, &req, &r);
    tap_ok(rc == 0 && body_has(r, needle), "expect_timeout_sends_body: body intact (%s)",
           ag_err_name(rc));
    ag_response_free(r);

    /* A small body: no Expect. */
    t.sent_len = 0;
    req.body_len = 100;
    req.url = url_of(hport, "/echo");
    rc = ag_fetch(c, &req, &r);
    tap_ok(rc == 0 && !strstr(t.sent, "Expect:") && body_has(r, "\"body_len\": 100"),
           "expect_not_for_small_body");
    ag_response_free(r);
    ag_client_free(c);
    free(body);
}

typedef struct reader {
    size_t left, step;
    unsigned char next;
    int fail_at; /* call number that fails, 0: never */
    int calls;
} reader;

static ptrdiff_t read_body(void *arg, void *buf, size_t cap)
{
    reader *rd = arg;
    if (++rd->calls == rd->fail_at)
        return -1;
    size_t n = rd->left < rd->step ? rd->left : rd->step;
    if (n > cap)
        n = cap;
    for (size_t i = 0; i < n; i++)
        ((unsigned char *)buf)[i] = rd->next++;
    rd->left -= n;
    return (ptrdiff_t)n;
}

/* A reader that takes its time: the server's answer and reset land between two chunks. */
static ptrdiff_t slow_reader(void *arg, void *buf, size_t cap)
{
    int *calls = arg;
    if (++*calls > 20)
        return 0;
    ag_sleep_ms(20);
    size_t n = cap < 1000 ? cap : 1000;
    memset(buf, 'r', n);
    return (ptrdiff_t)n;
}

static void reset_between_chunks(void *arg)
{
    (void)arg;
    ag_client_opts o = {0};
    o.loop = loop;
    o.expect_continue_size = AG_NO_EXPECT;
    ag_client *c = client_with(&o);
    int calls = 0;
    ag_request req = {.method = "POST", .body_kind = AG_BODY_READER};
    req.body_read = slow_reader;
    req.body_read_arg = &calls;
    req.url = url_of(hport, "/early-413-close");
    ag_response *r;
    int rc = ag_fetch(c, &req, &r);
    tap_ok(rc == 0 && ag_response_status(r) == 413,
           "upload_answer_then_reset_between_writes: the answer read after EPIPE is the "
           "response (%s, %d, %d chunks)",
           ag_err_name(rc), ag_response_status(r), calls);
    ag_response_free(r);
    ag_client_free(c);
}

static void reader_body(void)
{
    size_t total = 300000;
    unsigned char *copy = malloc(total);
    for (size_t i = 0; i < total; i++)
        copy[i] = (unsigned char)i;
    char want[65], needle[100];
    sha256_hex(copy, total, want);
    snprintf(needle, sizeof needle, "\"body_sha256\": \"%s\"", want);
    free(copy);

    ag_client *c = client_with(NULL);
    reader rd = {total, 7777, 0, 0, 0};
    ag_request req = {.method = "PUT", .body_kind = AG_BODY_READER};
    req.body_read = read_body;
    req.body_read_arg = &rd;
    req.url = url_of(hport, "/echo");
    ag_response *r;
    int rc = ag_fetch(c, &req, &r);
    tap_ok(rc == 0 && body_has(r, needle) && body_has(r, "\"Transfer-Encoding\", \"chunked\""),
           "reader_body_chunked: %zu bytes of unknown length arrive intact (%s)", total,
           ag_err_name(rc));
    ag_response_free(r);

    rd = (reader){total, 1000, 0, 3, 0};
    rc = ag_fetch(c, &req, &r);
    tap_ok(rc == AG_EBODY && strstr(ag_response_error_detail(r), "body_read"),
           "reader_body_error: a failing reader ends the request with AG_EBODY (%s)",
           ag_err_name(rc));
    ag_response_free(r);
    /* A 307 keeps method and body: a memory body goes again, a reader's cannot. */
    ag_request mem = {.method = "PUT", .body_kind = AG_BODY_MEMORY, .body = "again", .body_len = 5};
    mem.url = url_of(hport, "/redirect-307-echo");
    rc = ag_fetch(c, &mem, &r);
    tap_ok(rc == 0 && ag_response_redirects(r) == 1 && body_has(r, "\"body\": \"again\""),
           "redirect_307_memory_body_sent_again (%s)", ag_err_name(rc));
    ag_response_free(r);
    rd = (reader){1000, 1000, 0, 0, 0};
    req.url = url_of(hport, "/redirect-307-echo");
    rc = ag_fetch(c, &req, &r);
    tap_ok(rc == AG_EBODY && strstr(ag_response_error_detail(r), "cannot be sent again"),
           "redirect_307_reader_body_not_replayed: AG_EBODY, not an empty body (%s: \"%s\")",
           ag_err_name(rc), ag_response_error_detail(r));
    ag_response_free(r);
    req.url = url_of(hport, "/echo");
    /* The connection that carried half a body is gone; the next request works. */
    r = get(c, url_of(hport, "/ok"), &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 200, "reader_body_error_next_ok");
    ag_response_free(r);
    ag_client_free(c);
}

/* ---- handles and a client with requests in flight ---- */

static int done_rc[4], done_n;
static void on_done(ag_client *c, ag_response *r, int status, void *arg)
{
    (void)c;
    done_rc[(intptr_t)arg] = status;
    done_n++;
    ag_response_free(r);
}

/* ag_fetch in a coroutine of the loop, run until it is done. */
typedef struct fetch_job {
    ag_client *c;
    ag_request *req;
    ag_response **out;
    int rc;
} fetch_job;

static void fetch_job_main(void *arg)
{
    fetch_job *j = arg;
    j->rc = ag_fetch(j->c, j->req, j->out);
}

static int fetch_in_loop(ag_client *c, ag_request *req, ag_response **out)
{
    fetch_job j = {c, req, out, 1};
    ag_coro *co;
    ag_coro_spawn(loop, fetch_job_main, &j, &co);
    while (!ag_coro_done(co))
        ag_loop_run_once(loop, 100);
    ag_coro_unref(co);
    return j.rc;
}

static int free_in_cb_rc = 1;
static void free_in_callback(ag_client *c, ag_response *r, int status, void *arg)
{
    (void)status, (void)arg;
    ag_response_free(r);
    free_in_cb_rc = ag_client_free(c);
}

static void handles(void)
{
    if (!loop) {
        tap_skip("fetch_start_cancel: no loop");
        return;
    }
    ag_client_opts o = {0};
    o.loop = loop;
    ag_client *c = client_with(&o);
    ag_request req = {0};
    req.url = url_of(hport, "/stall");
    ag_coro *h1 = NULL, *h2 = NULL;
    int rc1 = ag_fetch_start(c, &req, on_done, (void *)0, &h1);
    req.url = url_of(hport, "/ok");
    int rc2 = ag_fetch_start(c, &req, on_done, (void *)1, &h2);
    int busy = ag_client_free(c); /* not yet started: still in flight */
    ag_loop_run_once(loop, 0);
    ag_loop_run_once(loop, 50);
    int busy2 = ag_client_free(c); /* the stalled one waits */
    ag_coro_cancel(h1);
    while (done_n < 2)
        ag_loop_run_once(loop, 100);
    tap_ok(rc1 == 0 && rc2 == 0 && busy == -EBUSY && busy2 == -EBUSY,
           "client_free_in_flight: -EBUSY while requests run, nothing freed");
    tap_ok(done_rc[0] == -ECANCELED && done_rc[1] == 0,
           "fetch_start_cancel: the cancelled request's callback runs once with -ECANCELED (%s), "
           "the other completes",
           ag_err_name(done_rc[0]));
    ag_coro_unref(h1);
    ag_coro_unref(h2);
    tap_ok(ag_client_free(c) == 0, "client_free_after: 0 once nothing is in flight");

    /* Waiting for a slot past pool_timeout_ms says so, with the host. */
    ag_client_opts one = o;
    one.max_conns = 1;
    one.pool_timeout_ms = 100;
    c = client_with(&one);
    ag_request slow = {0};
    slow.url = url_of(hport, "/slow-body?n=5&ms=100");
    done_n = 0;
    ag_fetch_start(c, &slow, on_done, (void *)0, NULL);
    ag_loop_run_once(loop, 0); /* the first takes the only slot */
    ag_request queued = {0};
    queued.url = url_of(hport, "/ok");
    ag_response *qr = NULL;
    int qrc = fetch_in_loop(c, &queued, &qr);
    tap_ok(qrc == AG_EPOOL_TIMEOUT && strstr(ag_response_error_detail(qr), "pool_timeout_ms") &&
               strstr(ag_response_error_detail(qr), "127.0.0.1"),
           "error_detail_pool_timeout: (%s: \"%s\")", ag_err_name(qrc),
           ag_response_error_detail(qr));
    ag_response_free(qr);
    while (done_n < 1)
        ag_loop_run_once(loop, 100);
    ag_client_free(c);

    /* A started request's time counts from ag_fetch_start: a loop that runs late does not give
     * it more. */
    c = client_with(&o);
    ag_request late = {0};
    late.url = url_of(hport, "/ok");
    late.timeout_ms = 100;
    done_n = 0;
    ag_fetch_start(c, &late, on_done, (void *)2, NULL);
    usleep(200 * 1000); /* the host is busy elsewhere */
    while (done_n < 1)
        ag_loop_run_once(loop, 100);
    tap_ok(done_rc[2] == AG_ETOTAL_TIMEOUT,
           "fetch_start_timeout_from_start: 100 ms from the call, and 200 ms passed before the "
           "loop ran (%s)",
           ag_err_name(done_rc[2]));
    ag_client_free(c);

    /* The last request's callback may free its client. */
    c = client_with(&o);
    req.url = url_of(hport, "/ok");
    ag_fetch_start(c, &req, free_in_callback, NULL, NULL);
    ag_loop_run(loop);
    tap_ok(free_in_cb_rc == 0, "client_free_in_last_callback: 0 (%d)", free_in_cb_rc);
}

/* ---- a server that sends as fast as the body is consumed ---- */

typedef struct flood {
    ag_client *c;
    int timeout_ms;
    int rc;
    int bodies;       /* on_body calls */
    int ticks_during; /* ticker ticks seen while this request was still reading */
    bool done;
} flood;

static int ticks;
static ag_coro *victim;
static int64_t cancel_at;

static int slow_sink(void *arg, const char *d, size_t n)
{
    (void)d, (void)n;
    flood *f = arg;
    f->bodies++;
    int64_t t = ag_now_ns() + 200000; /* 200 us of work per piece, as a slow consumer */
    while (ag_now_ns() < t) {
    }
    return 0;
}

static void flood_fetch(void *arg)
{
    flood *f = arg;
    ag_request req = {.sink = AG_SINK_CALLBACK, .on_body = slow_sink, .on_body_arg = f};
    req.url = url_of(hport, "/flood");
    req.timeout_ms = f->timeout_ms;
    ag_response *r;
    f->rc = ag_fetch(f->c, &req, &r);
    ag_response_free(r);
    f->done = true;
}

static flood fa, fb;

static void ticker(void *arg)
{
    (void)arg;
    while (!(fa.done && fb.done)) {
        if (ag_sleep_ms(10) < 0)
            break;
        ticks++;
        if (!fa.done && fa.bodies > 0)
            fa.ticks_during++;
        if (!fb.done && fb.bodies > 0)
            fb.ticks_during++;
    }
}

static void canceller(void *arg)
{
    (void)arg;
    ag_sleep_ms(300);
    cancel_at = ag_now_ns();
    ag_coro_cancel(victim);
}

static void starvation(void)
{
    ag_client_opts o = {0};
    o.loop = loop;
    ag_client *c = client_with(&o);
    fa = (flood){.c = c, .timeout_ms = 300};
    fb = (flood){.c = c};
    int64_t t0 = ag_now_ns();
    ag_coro_spawn(loop, flood_fetch, &fa, NULL);
    ag_coro_spawn(loop, flood_fetch, &fb, &victim);
    ag_coro_spawn(loop, canceller, NULL, NULL);
    ag_coro_spawn(loop, ticker, NULL, NULL);
    ag_loop_run(loop);
    int64_t ms = (ag_now_ns() - t0) / 1000000;
    tap_ok(fa.rc == AG_ETOTAL_TIMEOUT && ms >= 300 && fa.bodies > 10,
           "starvation_total_timeout: a flooded request with a slow sink ends at its total "
           "timeout (%s after %lld ms, %d pieces)",
           ag_err_name(fa.rc), (long long)ms, fa.bodies);
    tap_ok(fb.rc == -ECANCELED && cancel_at > 0 && fb.bodies > 10,
           "starvation_cancel: a sibling's cancel ends a flooded request (%s, %d pieces)",
           ag_err_name(fb.rc), fb.bodies);
    tap_ok(fa.ticks_during >= 2 && fb.ticks_during >= 2,
           "starvation_timer_interleaves: a third coroutine's 10 ms timer ticked %d and %d "
           "times while the floods were read",
           fa.ticks_during, fb.ticks_during);
    ag_client_free(c);

    /* Blocking code: the total timeout holds too. */
    c = client_with(NULL);
    flood fc = {.c = c, .timeout_ms = 200};
    flood_fetch(&fc);
    tap_ok(fc.rc == AG_ETOTAL_TIMEOUT, "starvation_total_timeout_blocking: %s without a loop",
           ag_err_name(fc.rc));
    ag_client_free(c);
}

int main(void)
{
    hport = env_port("AG_HOSTILE_PORT");
    const char *b = getenv("AG_HTTPBIN_PORT");
    bport = b ? atoi(b) : 0;
    if (ag_loop_new(&loop, NULL) < 0)
        loop = NULL;
    zero_filled();
    validation();
    details();
    early_answers();
    expect_continue();
    reader_body();
    handles();
    if (loop) {
        ag_coro_spawn(loop, reset_between_chunks, NULL, NULL);
        ag_loop_run(loop);
        starvation();
    }
    ag_loop_free(loop);
    return tap_done();
}
