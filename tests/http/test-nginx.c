/* test-nginx.c: the client against a real nginx on loopback: static bodies of every size, body
 * sinks, keep-alive reuse, chunked bodies, bodiless responses, limits, and 10,000 requests over
 * 100 connections with every response checked. */
#include "tests/http/util.h"

#include <errno.h>
#include <sys/resource.h>

static int port;
static const char *root;
static ag_loop *loop;

static char *root_file(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, name);
    return read_file(path, len);
}

static ag_client *new_client(ag_loop *l, unsigned per_host)
{
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = l;
    o.max_conns_per_host = per_host;
    ag_client *c;
    if (ag_client_new(&c, &o) < 0)
        abort();
    return c;
}

/* ---- bodies of every size, compared with the files nginx serves ---- */

static void nginx_static_bodies(ag_client *c)
{
    static const char *names[] = {"0", "1k", "1m", "hello"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[64];
        snprintf(path, sizeof path, "/%s", names[i]);
        size_t want_len;
        char *want = root_file(names[i], &want_len);
        int rc;
        ag_response *r = get(c, url_of(port, path), &rc);
        size_t len;
        const char *body = ag_response_body(r, &len);
        tap_ok(rc == 0 && ag_response_status(r) == 200 && want && len == want_len &&
                   memcmp(body, want, len) == 0 && ag_response_body_bytes(r) == want_len,
               "nginx_static_%s: %zu bytes, identical to the file (%s)", names[i], len,
               ag_err_name(rc));
        free(want);
        ag_response_free(r);
    }
}

static void nginx_100m_to_fd(ag_client *c)
{
    char tmpl[] = "/tmp/ag-test-100m-XXXXXX";
    int fd = mkstemp(tmpl);
    unlink(tmpl);
    ag_request req;
    ag_request_init(&req);
    req.url = url_of(port, "/100m");
    req.sink = AG_SINK_FD;
    req.sink_fd = fd;
    ag_response *r;
    int rc = ag_fetch(c, &req, &r);
    struct stat st;
    fstat(fd, &st);
    /* The served file is all zeros: check every byte written. */
    int zeros = 1;
    static char buf[65536]; /* not on the coroutine's 64 KiB stack */
    ssize_t n;
    lseek(fd, 0, SEEK_SET);
    while (zeros && (n = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++)
            zeros &= buf[i] == 0;
    size_t kept;
    ag_response_body(r, &kept);
    tap_ok(rc == 0 && st.st_size == 100 << 20 && ag_response_body_bytes(r) == 100u << 20 && zeros &&
               kept == 0,
           "nginx_100m_to_fd: 100 MiB written to the fd, none kept in memory (%s)",
           ag_err_name(rc));
    ag_response_free(r);
    close(fd);
}

static int count_cb(void *arg, const char *data, size_t len)
{
    (void)data;
    *(size_t *)arg += len;
    return 0;
}

static int refuse_cb(void *arg, const char *data, size_t len)
{
    (void)arg;
    (void)data;
    (void)len;
    return -1;
}

static void nginx_body_callback(ag_client *c)
{
    size_t seen = 0;
    ag_request req;
    ag_request_init(&req);
    req.url = url_of(port, "/1m");
    req.sink = AG_SINK_CALLBACK;
    req.on_body = count_cb;
    req.on_body_arg = &seen;
    ag_response *r;
    int rc = ag_fetch(c, &req, &r);
    tap_ok(rc == 0 && seen == 1 << 20, "nginx_body_callback: 1 MiB streamed to the callback");
    ag_response_free(r);
    req.on_body = refuse_cb;
    rc = ag_fetch(c, &req, &r);
    tap_ok(rc == AG_ESINK, "nginx_body_callback_abort: a failing callback ends the request (%s)",
           ag_err_name(rc));
    ag_response_free(r);
}

static void nginx_keepalive_reuse(ag_client *c)
{
    int rc1, rc2;
    ag_response *a = get(c, url_of(port, "/hello"), &rc1);
    ag_response *b = get(c, url_of(port, "/hello"), &rc2);
    tap_ok(rc1 == 0 && rc2 == 0 && ag_response_reused(b) &&
               ag_response_conn_id(a) == ag_response_conn_id(b) &&
               strncmp(ag_response_peer(b), "127.0.0.1:", 10) == 0,
           "nginx_keepalive_reuse: the second request reuses connection %llu (%s)",
           (unsigned long long)ag_response_conn_id(a), ag_response_peer(b));
    ag_timings t;
    ag_response_timings(b, &t);
    tap_ok(t.start <= t.queued && t.queued <= t.connected && t.connected <= t.sent &&
               t.sent <= t.first_byte && t.first_byte <= t.done && t.start > 0,
           "nginx_timings: phases in order on a reused connection");
    ag_response_free(a);
    ag_response_free(b);
}

static void nginx_chunked(ag_client *c)
{
    int rc;
    ag_response *r = get(c, url_of(port, "/chunked"), &rc);
    const char *te = ag_response_header(r, "transfer-encoding");
    size_t len;
    const char *body = ag_response_body(r, &len);
    tap_ok(rc == 0 && te && strcmp(te, "chunked") == 0 && strcmp(body, "chunked body\n") == 0,
           "nginx_chunked: chunked body reassembled (%s, %zu bytes)", ag_err_name(rc), len);
    ag_response_free(r);
    size_t want_len;
    char *want = root_file("chunked-1m", &want_len);
    r = get(c, url_of(port, "/chunked-1m"), &rc);
    body = ag_response_body(r, &len);
    te = ag_response_header(r, "Transfer-Encoding");
    tap_ok(rc == 0 && te && want && len == want_len && memcmp(body, want, len) == 0,
           "nginx_chunked_1m: 1 MiB in chunks, identical to the file (%s)", ag_err_name(rc));
    free(want);
    ag_response_free(r);
}

static void nginx_no_body(ag_client *c)
{
    ag_request req;
    ag_request_init(&req);
    req.url = url_of(port, "/1k");
    req.method = "HEAD";
    ag_response *r;
    int rc = ag_fetch(c, &req, &r);
    const char *cl = ag_response_header(r, "Content-Length");
    uint64_t id = ag_response_conn_id(r);
    tap_ok(rc == 0 && ag_response_status(r) == 200 && cl && strcmp(cl, "1024") == 0 &&
               ag_response_body_bytes(r) == 0,
           "nginx_head: Content-Length 1024 and no body read (%s)", ag_err_name(rc));
    ag_response_free(r);
    /* The connection stays usable: nothing of a body was left in it. */
    r = get(c, url_of(port, "/hello"), &rc);
    tap_ok(rc == 0 && ag_response_conn_id(r) == id && ag_response_status(r) == 200,
           "nginx_head_then_get: same connection serves the next request");
    ag_response_free(r);
    r = get(c, url_of(port, "/204"), &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 204 && ag_response_body_bytes(r) == 0,
           "nginx_204: no body");
    ag_response_free(r);
    ag_header ims = {"If-Modified-Since", "Tue, 01 Jan 2030 00:00:00 GMT"};
    req.method = NULL;
    req.headers = &ims;
    req.nheaders = 1;
    rc = ag_fetch(c, &req, &r);
    tap_ok(rc == 0 && ag_response_status(r) == 304 && ag_response_body_bytes(r) == 0,
           "nginx_304: If-Modified-Since gives 304 without a body (%d)", ag_response_status(r));
    ag_response_free(r);
}

static void nginx_connection_close(ag_client *c)
{
    int rc1, rc2;
    ag_response *a = get(c, url_of(port, "/close"), &rc1);
    const char *conn = ag_response_header(a, "Connection");
    ag_response *b = get(c, url_of(port, "/close"), &rc2);
    tap_ok(rc1 == 0 && rc2 == 0 && conn && strcmp(conn, "close") == 0 &&
               ag_response_conn_id(a) != ag_response_conn_id(b) && !ag_response_reused(b),
           "nginx_connection_close: a closing response is not reused");
    ag_response_free(a);
    ag_response_free(b);
}

static void nginx_body_cap(void)
{
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.max_body_bytes = 1000;
    ag_client *c;
    ag_client_new(&c, &o);
    int rc1, rc2;
    ag_response *a = get(c, url_of(port, "/1k"), &rc1);
    ag_response *b = get(c, url_of(port, "/chunked-1m"), &rc2);
    ag_response *d;
    int rc3;
    d = get(c, url_of(port, "/hello"), &rc3);
    tap_ok(rc1 == AG_ETOO_LARGE && rc2 == AG_ETOO_LARGE && rc3 == 0,
           "nginx_body_cap: 1 KiB and chunked 1 MiB exceed a 1000-byte cap (%s, %s), the next "
           "request works",
           ag_err_name(rc1), ag_err_name(rc2));
    ag_response_free(a);
    ag_response_free(b);
    ag_response_free(d);
    ag_client_free(c);
}

static void nginx_refused(ag_client *c)
{
    int rc;
    ag_response *r = get(c, "http://127.0.0.1:1/", &rc);
    tap_ok(rc == -ECONNREFUSED && ag_response_status(r) == 0,
           "nginx_refused: a closed port gives ECONNREFUSED (%s)", ag_err_name(rc));
    ag_response_free(r);
    /* nginx's plain port answers a ClientHello with an HTTP 400: the handshake fails, and no
     * request goes out in clear (the 400 would otherwise be the response). */
    char u[64];
    snprintf(u, sizeof u, "https://127.0.0.1:%d/hello", port);
    r = get(c, u, &rc);
    tap_ok(rc == AG_ETLS && ag_response_status(r) == 0,
           "https_to_plain_port: https to a plain HTTP server fails in the handshake (%s: \"%s\")",
           ag_err_name(rc), ag_response_error_detail(r));
    ag_response_free(r);
}

/* ---- many requests over a bounded pool, every response checked ---- */

typedef struct many {
    ag_client *c;
    int left, ok, bad;
    char *want;
    size_t want_len;
    uint64_t max_id;
    int reused;
} many;

static void many_worker(void *arg)
{
    many *m = arg;
    while (m->left > 0) {
        m->left--;
        int rc;
        ag_response *r = get(m->c, url_of(port, "/1k"), &rc);
        size_t len;
        const char *body = ag_response_body(r, &len);
        if (rc == 0 && ag_response_status(r) == 200 && len == m->want_len &&
            memcmp(body, m->want, len) == 0)
            m->ok++;
        else
            m->bad++;
        if (ag_response_conn_id(r) > m->max_id)
            m->max_id = ag_response_conn_id(r);
        m->reused += ag_response_reused(r);
        ag_response_free(r);
    }
}

static void nginx_10k_over_100(void)
{
    many m = {.c = new_client(loop, 100), .left = 10000};
    m.want = root_file("1k", &m.want_len);
    for (int i = 0; i < 300; i++) /* more coroutines than connections: some queue */
        ag_coro_spawn(loop, many_worker, &m, NULL);
    ag_loop_run(loop);
    tap_ok(m.ok == 10000 && m.bad == 0 && m.max_id <= 100 && m.reused >= 10000 - 100,
           "nginx_10k_over_100: %d ok, %d bad, %llu connections, %d reused", m.ok, m.bad,
           (unsigned long long)m.max_id, m.reused);
    free(m.want);
    ag_client_free(m.c);
}

/* ---- a full fd table: the requests that get no socket wait for one, and all complete ---- */

typedef struct fd_run {
    ag_client *c;
    int ok, emfile, other;
} fd_run;

static void fd_worker(void *arg)
{
    fd_run *f = arg;
    int rc;
    ag_response *r = get(f->c, url_of(port, "/1k"), &rc);
    if (rc == 0 && ag_response_body_bytes(r) == 1024)
        f->ok++;
    else if (rc == -EMFILE)
        f->emfile++;
    else
        f->other++;
    ag_response_free(r);
}

static int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 4096; fd++)
        n += fcntl(fd, F_GETFD) >= 0;
    return n;
}

static void nginx_fd_table_full(void)
{
    int fds = count_fds();
    struct rlimit saved, low;
    getrlimit(RLIMIT_NOFILE, &saved);
    int probe = dup(0); /* the lowest free fd: everything below it is in use */
    close(probe);
    low = saved;
    low.rlim_cur = (rlim_t)probe + 10;
    fd_run f = {.c = new_client(loop, 100)};
    setrlimit(RLIMIT_NOFILE, &low);
    for (int i = 0; i < 50; i++)
        ag_coro_spawn(loop, fd_worker, &f, NULL);
    ag_loop_run(loop);
    setrlimit(RLIMIT_NOFILE, &saved);
    int rc;
    ag_response *r = get(f.c, url_of(port, "/hello"), &rc);
    ag_response_free(r);
    ag_client_free(f.c);
    int after = count_fds();
    tap_ok(f.ok == 50 && f.emfile == 0 && f.other == 0 && rc == 0 && after == fds,
           "nginx_fd_table_full: %d of 50 completed (%d EMFILE, %d else) with room for 10 "
           "descriptors; then all is well (%s); %d fds before, %d after",
           f.ok, f.emfile, f.other, ag_err_name(rc), fds, after);
}

/* ---- the same client code in plain blocking code, and through a callback ---- */

static void nginx_blocking(void)
{
    ag_client *c = new_client(NULL, 0);
    int rc1, rc2;
    ag_response *a = get(c, url_of(port, "/1m"), &rc1);
    ag_response *b = get(c, url_of(port, "/1m"), &rc2);
    tap_ok(rc1 == 0 && rc2 == 0 && ag_response_body_bytes(b) == 1 << 20 && ag_response_reused(b),
           "nginx_blocking: no loop, no coroutine: the same calls block, keep-alive works");
    ag_response_free(a);
    ag_response_free(b);
    ag_client_free(c);
}

static int cb_calls, cb_status;

static void on_done(ag_client *c, ag_response *r, int status, void *arg)
{
    (void)c;
    (void)arg;
    cb_calls++;
    cb_status = status == 0 ? ag_response_status(r) : status;
    ag_response_free(r);
}

/* One connection in total, two hosts (127.0.0.1 and localhost are two keys): the request for
 * the second host waits for the first to finish, then its idle connection makes room. */
static int cross_rc[2];

static void cross_host(void *arg)
{
    void **a = arg;
    int rc;
    ag_response *r = get(a[0], a[1], &rc);
    cross_rc[a[2] != NULL] = rc == 0 ? ag_response_status(r) : rc;
    ag_response_free(r);
}

static char order[8];
static int norder;

static void ordered(void *arg)
{
    void **a = arg;
    int rc;
    ag_response *r = get(a[0], a[1], &rc);
    if (rc == 0)
        order[norder++] = *(const char *)a[2];
    ag_response_free(r);
}

/* Waiters are served in arrival order across hosts: B (another host) queued before C (the same
 * host as A), so B gets the only connection slot when A is done, though A's idle connection
 * would have suited C. */
static void nginx_fifo_across_hosts(void)
{
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.max_conns = 1;
    ag_client *c;
    ag_client_new(&c, &o);
    char other[128];
    snprintf(other, sizeof other, "http://localhost:%d/hello", port);
    void *a[3] = {c, (void *)url_of(port, "/1m"), "A"};
    void *b[3] = {c, other, "B"};
    void *d[3] = {c, (void *)url_of(port, "/hello"), "C"};
    ag_coro_spawn(loop, ordered, a, NULL);
    ag_coro_spawn(loop, ordered, b, NULL);
    ag_coro_spawn(loop, ordered, d, NULL);
    ag_loop_run(loop);
    order[norder] = 0;
    tap_ok(strcmp(order, "ABC") == 0, "nginx_fifo_across_hosts: served in arrival order (%s)",
           order);
    ag_client_free(c);
}

static void nginx_total_limit_across_hosts(void)
{
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.max_conns = 1;
    o.pool_timeout_ms = 5000;
    ag_client *c;
    ag_client_new(&c, &o);
    char second[128];
    snprintf(second, sizeof second, "http://localhost:%d/hello", port);
    void *a[3] = {c, (void *)url_of(port, "/1m"), NULL};
    void *b[3] = {c, second, c};
    ag_coro_spawn(loop, cross_host, a, NULL);
    ag_coro_spawn(loop, cross_host, b, NULL);
    ag_loop_run(loop);
    tap_ok(cross_rc[0] == 200 && cross_rc[1] == 200,
           "nginx_total_limit_across_hosts: with one connection in all, both hosts are served (%d, "
           "%d)",
           cross_rc[0], cross_rc[1]);
    ag_client_free(c);
}

static void nginx_callback_style(void)
{
    ag_client *c = new_client(loop, 0);
    ag_request req;
    ag_request_init(&req);
    char url[128];
    snprintf(url, sizeof url, "%s", url_of(port, "/hello"));
    req.url = url;
    int rc = ag_fetch_start(c, &req, on_done, NULL, NULL);
    memset(url, 'x', sizeof url - 1); /* the request was copied */
    ag_loop_run(loop);
    tap_ok(rc == 0 && cb_calls == 1 && cb_status == 200,
           "nginx_callback_style: the callback runs once with the response");
    ag_header bad = {"X-Null", NULL};
    req.headers = &bad;
    req.nheaders = 1;
    rc = ag_fetch_start(c, &req, on_done, NULL, NULL);
    tap_ok(rc == AG_EHEADER && cb_calls == 1,
           "nginx_callback_bad_header: refused at once (%s), the callback never runs",
           ag_err_name(rc));
    ag_client_free(c);
}

/* IPv6: a bracketed literal in the URL, the Host header and peer text in brackets. */
static void nginx_ipv6(ag_client *c)
{
    const char *v6 = getenv("AG_NGINX_IPV6");
    if (!v6 || strcmp(v6, "1") != 0) {
        tap_skip("nginx_ipv6: this machine has no IPv6 loopback");
        return;
    }
    char url[128], peer[64];
    snprintf(url, sizeof url, "http://[::1]:%d/hello", port);
    snprintf(peer, sizeof peer, "[::1]:%d", port);
    int rc;
    ag_response *r = get(c, url, &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 200 && strcmp(ag_response_peer(r), peer) == 0 &&
               strcmp(ag_response_url(r), url) == 0,
           "nginx_ipv6: %s from %s (%s)", url, ag_response_peer(r), ag_err_name(rc));
    ag_response_free(r);
}

static void run_in_coroutine(void *arg)
{
    ag_client *c = arg;
    nginx_static_bodies(c);
    nginx_100m_to_fd(c);
    nginx_body_callback(c);
    nginx_keepalive_reuse(c);
    nginx_chunked(c);
    nginx_no_body(c);
    nginx_connection_close(c);
    nginx_body_cap();
    nginx_refused(c);
    nginx_ipv6(c);
}

int main(void)
{
    port = env_port("AG_NGINX_PORT");
    root = getenv("AG_NGINX_ROOT");
    ag_loop_new(&loop, NULL);
    ag_client *c = new_client(loop, 0);
    ag_coro_spawn(loop, run_in_coroutine, c, NULL);
    ag_loop_run(loop);
    ag_client_free(c);
    nginx_10k_over_100();
    nginx_fd_table_full();
    nginx_blocking();
    nginx_callback_style();
    nginx_total_limit_across_hosts();
    nginx_fifo_across_hosts();
    ag_loop_free(loop);
    return tap_done();
}
