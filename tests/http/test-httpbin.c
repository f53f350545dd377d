/* test-httpbin.c: HTTP semantics against httpbin under gunicorn: redirects of every kind and
 * their method and header rules, status codes, streamed bodies, request headers and bodies,
 * and each timeout with its own error. */
#include "tests/http/util.h"

#include <errno.h>

static int port;
static ag_loop *loop;
static ag_client *client;

static ag_response *fetch(const char *method, const char *url, const ag_header *h, size_t nh,
                          const char *body, int *rc)
{
    ag_request req;
    ag_request_init(&req);
    req.method = method;
    req.url = url;
    req.headers = h;
    req.nheaders = nh;
    if (body) {
        req.body_kind = AG_BODY_MEMORY;
        req.body = body;
        req.body_len = strlen(body);
    }
    ag_response *r;
    *rc = ag_fetch(client, &req, &r);
    return r;
}

static int body_has(const ag_response *r, const char *needle)
{
    return strstr(ag_response_body(r, NULL), needle) != NULL;
}

static void redirects(void)
{
    static const struct {
        const char *path;
        unsigned hops;
    } cases[] = {
        {"/redirect/3", 3},          /* 302 to relative /redirect/2 ... /get */
        {"/relative-redirect/2", 2}, /* Location: relative paths */
        {"/absolute-redirect/2", 2}, /* Location: absolute URLs back to this server */
        {"/redirect/10", 10},        /* exactly the default limit */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc;
        ag_response *r = fetch(NULL, url_of(port, cases[i].path), NULL, 0, NULL, &rc);
        const char *final = ag_response_url(r);
        tap_ok(rc == 0 && ag_response_status(r) == 200 &&
                   ag_response_redirects(r) == cases[i].hops && strstr(final, "/get") != NULL,
               "httpbin_redirect %s: %u hops to %s (%s)", cases[i].path, ag_response_redirects(r),
               final, ag_err_name(rc));
        ag_response_free(r);
    }
    int rc;
    ag_response *r = fetch(NULL, url_of(port, "/redirect/11"), NULL, 0, NULL, &rc);
    tap_ok(rc == AG_EREDIRECTS, "httpbin_redirect_limit: 11 hops exceed 10 (%s)", ag_err_name(rc));
    ag_response_free(r);

    ag_request req;
    ag_request_init(&req);
    req.url = url_of(port, "/redirect/2");
    req.no_redirects = 1;
    rc = ag_fetch(client, &req, &r);
    tap_ok(rc == 0 && ag_response_status(r) == 302 && ag_response_header(r, "Location"),
           "httpbin_redirect_off: the 302 itself is returned");
    ag_response_free(r);
}

/* Method and body across 301/302/303/307/308, checked by where the chain lands: httpbin's
 * /anything echoes the method and the body it received (compact JSON). */
/* With redirects switched off in the client, a redirect is the final response, body kept. */
static void redirects_off_in_client(void)
{
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.max_redirects = AG_NO_REDIRECTS;
    ag_client *c;
    ag_client_new(&c, &o);
    ag_request req;
    ag_request_init(&req);
    req.url = url_of(port, "/redirect/1");
    ag_response *r;
    int rc = ag_fetch(c, &req, &r);
    size_t len;
    ag_response_body(r, &len);
    tap_ok(rc == 0 && ag_response_status(r) == 302 && len > 0 && len == ag_response_body_bytes(r),
           "httpbin_no_redirects_client: 302 returned with its %zu-byte body", len);
    ag_response_free(r);
    ag_client_free(c);
}

static void redirect_methods(void)
{
    static const struct {
        const char *method;
        int code;
        const char *want_method;
        int body_kept;
    } cases[] = {
        {"POST", 301, "GET", 0},   /* 301/302 turn POST into GET */
        {"POST", 302, "GET", 0},   /*  */
        {"PUT", 302, "PUT", 1},    /* ... and only POST */
        {"PUT", 303, "GET", 0},    /* 303 turns every method but HEAD into GET */
        {"DELETE", 303, "GET", 0}, /*  */
        {"POST", 307, "POST", 1},  /* 307/308 keep method and body */
        {"PUT", 308, "PUT", 1},    /*  */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "/redirect-to?url=/anything&status_code=%d", cases[i].code);
        ag_header h[] = {{"Content-Type", "text/plain"}};
        int rc;
        ag_response *r = fetch(cases[i].method, url_of(port, path), h, 1, "payload-123", &rc);
        char want[64];
        snprintf(want, sizeof want, "\"method\":\"%s\"", cases[i].want_method);
        int kept = body_has(r, "payload-123");
        int ctype = body_has(r, "\"Content-Type\":\"text/plain\"");
        tap_ok(rc == 0 && ag_response_status(r) == 200 && body_has(r, want) &&
                   kept == cases[i].body_kept && ctype == cases[i].body_kept,
               "httpbin_redirect_%d_%s: becomes %s, body %s", cases[i].code, cases[i].method,
               cases[i].want_method, kept ? "kept" : "dropped");
        ag_response_free(r);
    }
}

/* Credentials go only where they were meant to: a redirect to another host (localhost is not
 * 127.0.0.1 by name) drops them; one to the same host keeps them. */
static void redirect_credentials(void)
{
    ag_header h[] = {
        {"Authorization", "Bearer secret-token"}, {"Cookie", "a=b"}, {"X-Keep", "kept"}};
    char path[256];
    snprintf(path, sizeof path, "/redirect-to?url=http://localhost:%d/headers", port);
    int rc;
    ag_response *r = fetch(NULL, url_of(port, path), h, 3, NULL, &rc);
    tap_ok(rc == 0 && !body_has(r, "secret-token") && !body_has(r, "a=b") && body_has(r, "kept"),
           "httpbin_redirect_other_host: Authorization and Cookie dropped, others kept");
    ag_response_free(r);
    r = fetch(NULL, url_of(port, "/redirect-to?url=/headers"), h, 3, NULL, &rc);
    tap_ok(rc == 0 && body_has(r, "secret-token") && body_has(r, "a=b"),
           "httpbin_redirect_same_host: credentials kept");
    ag_response_free(r);
    /* A caller's Host header belongs to the first origin: another origin gets its own. */
    ag_header host[] = {{"Host", "orig.example"}};
    r = fetch(NULL, url_of(port, path), host, 1, NULL, &rc);
    tap_ok(rc == 0 && !body_has(r, "orig.example") && body_has(r, "\"Host\":\"localhost:"),
           "httpbin_redirect_host: a custom Host is not sent to another origin");
    ag_response_free(r);
    r = fetch(NULL, url_of(port, "/redirect-to?url=ftp://127.0.0.1/x"), NULL, 0, NULL, &rc);
    tap_ok(rc == AG_EREDIRECT || rc == AG_ESCHEME, "httpbin_redirect_ftp: refused (%s)",
           ag_err_name(rc));
    ag_response_free(r);
}

/* The request's own credentials (username and password, Basic) follow the same rule, come back
 * with a redirect back to their origin, follow everywhere when the client trusts every
 * location, and a Location's userinfo never makes any. */
static void redirect_own_credentials(void)
{
    char path[400], inner[128];
    ag_request req;
    ag_response *r;
    ag_request_init(&req);
    req.username = "Aladdin";
    req.password = "open sesame";
    const char *basic = "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==";
    snprintf(path, sizeof path, "/redirect-to?url=http://localhost:%d/headers", port);
    req.url = url_of(port, path);
    int rc = ag_fetch(client, &req, &r);
    tap_ok(rc == 0 && ag_response_status(r) == 200 && !body_has(r, basic),
           "httpbin_redirect_own_credentials_dropped_at_other_origin");
    ag_response_free(r);
    /* 127.0.0.1 -> localhost -> 127.0.0.1/headers: back at the first origin. */
    snprintf(inner, sizeof inner, "http://127.0.0.1:%d/headers", port);
    snprintf(path, sizeof path, "/redirect-to?url=http://localhost:%d/redirect-to%%3Furl%%3D%s",
             port, inner);
    req.url = url_of(port, path);
    rc = ag_fetch(client, &req, &r);
    tap_ok(rc == 0 && ag_response_redirects(r) == 2 && body_has(r, basic),
           "httpbin_redirect_own_credentials_back_at_first_origin: %u hops",
           ag_response_redirects(r));
    ag_response_free(r);

    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.location_trusted = 1;
    ag_client *trusting;
    if (ag_client_new(&trusting, &o) < 0) {
        tap_ok(0, "httpbin_redirect_location_trusted: no client");
        return;
    }
    ag_header h[] = {{"Cookie", "a=b"}};
    req.headers = h;
    req.nheaders = 1;
    snprintf(path, sizeof path, "/redirect-to?url=http://localhost:%d/headers", port);
    req.url = url_of(port, path);
    rc = ag_fetch(trusting, &req, &r);
    tap_ok(rc == 0 && body_has(r, basic) && body_has(r, "a=b"),
           "httpbin_redirect_location_trusted_keeps_credentials");
    ag_response_free(r);
    ag_client_free(trusting);

    ag_request_init(&req);
    snprintf(path, sizeof path, "/redirect-to?url=http://evil:pw@127.0.0.1:%d/headers", port);
    req.url = url_of(port, path);
    rc = ag_fetch(client, &req, &r);
    tap_ok(rc == 0 && ag_response_status(r) == 200 && !body_has(r, "Authorization"),
           "httpbin_redirect_location_userinfo_gives_no_credentials");
    ag_response_free(r);
}

static void statuses_and_bodies(void)
{
    int rc;
    ag_response *r = fetch(NULL, url_of(port, "/status/418"), NULL, 0, NULL, &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 418, "httpbin_status_418");
    ag_response_free(r);
    r = fetch(NULL, url_of(port, "/status/500"), NULL, 0, NULL, &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 500, "httpbin_status_500: not an error code");
    ag_response_free(r);
    r = fetch(NULL, url_of(port, "/stream/5"), NULL, 0, NULL, &rc);
    const char *body = ag_response_body(r, NULL);
    int lines = 0;
    for (const char *p = body; *p; p++)
        lines += *p == '\n';
    tap_ok(rc == 0 && lines == 5, "httpbin_stream_5: 5 JSON lines streamed (%d)", lines);
    ag_response_free(r);
    r = fetch(NULL, url_of(port, "/bytes/1000"), NULL, 0, NULL, &rc);
    size_t len;
    ag_response_body(r, &len);
    tap_ok(rc == 0 && len == 1000, "httpbin_bytes_1000: %zu bytes", len);
    ag_response_free(r);
    ag_header h[] = {{"X-Test-Header", "value 1"}};
    r = fetch(NULL, url_of(port, "/headers"), h, 1, NULL, &rc);
    tap_ok(rc == 0 && body_has(r, "\"User-Agent\":\"asyncget/" AG_VERSION "\"") &&
               body_has(r, "\"X-Test-Header\":\"value 1\"") && body_has(r, "\"Accept\":\"*/*\""),
           "httpbin_headers: default and custom request headers arrive");
    ag_response_free(r);
    r = fetch("POST", url_of(port, "/post"), NULL, 0, "hello body", &rc);
    tap_ok(rc == 0 && body_has(r, "\"data\":\"hello body\""), "httpbin_post_memory");
    ag_response_free(r);

    char tmpl[] = "/tmp/ag-test-body-XXXXXX";
    int fd = mkstemp(tmpl);
    unlink(tmpl);
    if (write(fd, "file body 42", 12) != 12)
        abort();
    ag_request req;
    ag_request_init(&req);
    req.method = "POST";
    req.url = url_of(port, "/post");
    req.body_kind = AG_BODY_FILE;
    req.body_fd = fd;
    req.body_len = 12;
    rc = ag_fetch(client, &req, &r);
    tap_ok(rc == 0 && body_has(r, "\"data\":\"file body 42\""), "httpbin_post_file");
    ag_response_free(r);
    req.body_len = 100; /* longer than the file */
    rc = ag_fetch(client, &req, &r);
    tap_ok(rc == AG_EBODY, "httpbin_post_short_file: AG_EBODY (%s)", ag_err_name(rc));
    ag_response_free(r);
    close(fd);
}

static void header_injection(void)
{
    ag_header bad[] = {{"X-Evil", "a\r\nInjected: yes"}};
    int rc;
    ag_response *r = fetch(NULL, url_of(port, "/headers"), bad, 1, NULL, &rc);
    tap_ok(rc == AG_EHEADER && ag_response_status(r) == 0,
           "request_header_injection: CRLF in a value refused before sending");
    ag_response_free(r);
    ag_header badname[] = {{"X Evil", "v"}};
    r = fetch(NULL, url_of(port, "/headers"), badname, 1, NULL, &rc);
    tap_ok(rc == AG_EHEADER, "request_header_bad_name: a space in a name is refused");
    ag_response_free(r);
    r = fetch("GET /x", url_of(port, "/headers"), NULL, 0, NULL, &rc);
    tap_ok(rc == AG_EREQUEST, "request_bad_method: a method that is no token is refused");
    ag_response_free(r);
    r = fetch(NULL, "http://127.0.0.1/a\r\nb", NULL, 0, NULL, &rc);
    tap_ok(rc == AG_EURL, "request_url_injection: CRLF in the URL is refused");
    ag_response_free(r);
}

/* Each timeout has its own error; a deadline test asserts only lower bounds. */
static void timeouts(void)
{
    ag_request req;
    ag_request_init(&req);
    req.url = url_of(port, "/delay/3");
    req.timeout_ms = 400;
    ag_response *r;
    int64_t t0 = ag_now_ns();
    int rc = ag_fetch(client, &req, &r);
    int64_t el = ag_now_ns() - t0;
    tap_ok(rc == AG_ETOTAL_TIMEOUT && el >= 400 * 1000000LL,
           "httpbin_total_timeout: /delay/3 with 400 ms total gives %s after %lld ms",
           ag_err_name(rc), (long long)(el / 1000000));
    ag_response_free(r);

    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.idle_timeout_ms = 300;
    ag_client *c;
    ag_client_new(&c, &o);
    req.timeout_ms = 0;
    t0 = ag_now_ns();
    rc = ag_fetch(c, &req, &r);
    el = ag_now_ns() - t0;
    tap_ok(rc == AG_EIDLE_TIMEOUT && el >= 300 * 1000000LL,
           "httpbin_idle_timeout: no byte for 300 ms gives %s", ag_err_name(rc));
    ag_response_free(r);
    ag_client_free(c);
}

/* A request queued behind the per-host limit is not charged connect time for the wait. One
 * connection per host and a 300 ms connect timeout; the first request holds the only slot for
 * 1 s and then closes its connection ("Connection: close"), so the queued request has to connect
 * after its wait. It succeeds on a new connection, and its timings put the whole wait (at least
 * 900 ms) before its connect phase begins. */
static int queued_rc[2];
static ag_response *queued_resp[2];

static void queued_user(void *arg)
{
    void **a = arg;
    static const ag_header closes = {"Connection", "close"};
    int second = a[2] != NULL;
    ag_request req;
    ag_request_init(&req);
    req.url = a[1];
    if (!second) {
        req.headers = &closes;
        req.nheaders = 1;
    }
    queued_rc[second] = ag_fetch(a[0], &req, &queued_resp[second]);
}

static void queue_not_charged(void)
{
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.max_conns_per_host = 1;
    o.connect_timeout_ms = 300;
    ag_client *c;
    ag_client_new(&c, &o);
    void *a[3] = {c, (void *)url_of(port, "/delay/1"), NULL};
    void *b[3] = {c, (void *)url_of(port, "/get"), c};
    ag_coro_spawn(loop, queued_user, a, NULL);
    ag_coro_spawn(loop, queued_user, b, NULL);
    ag_loop_run(loop);
    ag_timings t;
    ag_response_timings(queued_resp[1], &t);
    int64_t wait_ms = (t.queued - t.start) / 1000000;
    int new_conn = !ag_response_reused(queued_resp[1]) &&
                   ag_response_conn_id(queued_resp[1]) != ag_response_conn_id(queued_resp[0]);
    tap_ok(queued_rc[0] == 0 && queued_rc[1] == 0 && new_conn && wait_ms >= 900 &&
               t.dns >= t.queued && t.connected >= t.dns,
           "httpbin_queue_not_charged_connect_time: %s, %s, the queued one %s after a wait of "
           "%lld ms that ends before its connect begins",
           ag_err_name(queued_rc[0]), ag_err_name(queued_rc[1]),
           new_conn ? "on a new connection" : "reusing a connection", (long long)wait_ms);
    ag_response_free(queued_resp[0]);
    ag_response_free(queued_resp[1]);
    ag_client_free(c);
}

static int pool_rc[2];

static void pool_user(void *arg)
{
    int i = (int)(intptr_t)arg;
    ag_request req;
    ag_request_init(&req);
    req.url = url_of(port, i == 0 ? "/delay/1" : "/get");
    ag_response *r;
    pool_rc[i] = ag_fetch(client, &req, &r);
    ag_response_free(r);
}

/* One connection per host: the second request waits for it and times out in the queue. */
static void pool_timeout(void)
{
    ag_client *saved = client;
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.max_conns_per_host = 1;
    o.pool_timeout_ms = 200;
    ag_client_new(&client, &o);
    ag_coro_spawn(loop, pool_user, (void *)0, NULL);
    ag_coro_spawn(loop, pool_user, (void *)1, NULL);
    ag_loop_run(loop);
    tap_ok(pool_rc[0] == 0 && pool_rc[1] == AG_EPOOL_TIMEOUT,
           "httpbin_pool_timeout: the queued request gives %s, the first completes",
           ag_err_name(pool_rc[1]));
    ag_client_free(client);
    client = saved;
}

static void run(void *arg)
{
    (void)arg;
    redirects();
    redirects_off_in_client();
    redirect_methods();
    redirect_credentials();
    redirect_own_credentials();
    statuses_and_bodies();
    header_injection();
    timeouts();
}

int main(void)
{
    port = env_port("AG_HTTPBIN_PORT");
    ag_loop_new(&loop, NULL);
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    ag_client_new(&client, &o);
    ag_coro_spawn(loop, run, NULL, NULL);
    ag_loop_run(loop);
    pool_timeout();
    queue_not_charged();
    ag_client_free(client);
    ag_loop_free(loop);
    return tap_done();
}
