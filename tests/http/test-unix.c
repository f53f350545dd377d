/* test-unix.c: HTTP over Unix domain sockets (ag_client_opts.unix_socket): nginx on a socket
 * path, https to nginx's TLS server on another, socat on a Linux abstract socket forwarding to
 * nginx; keep-alive reuse as over TCP, redirects that stay on the socket, no name lookup, clear
 * errors for a missing or refusing socket, and a listener whose queue is full. */
#include "tests/http/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>

static const char *nginx_unix, *root, *tls_unix, *tls_ca, *nginx_abstract;
static char tmpdir[] = "/tmp/ag-unix-XXXXXX";

static ag_client *unix_client(const char *path, int abstract, const ag_tls_opts *tls,
                              int64_t connect_timeout_ms)
{
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.unix_socket = path;
    o.unix_socket_abstract = abstract;
    o.tls = tls;
    o.connect_timeout_ms = connect_timeout_ms;
    /* A lookup, were one made, goes to a loopback port where nobody answers: never off the
     * machine, and it fails. */
    o.dns_servers = "127.0.0.1:9";
    o.dns_timeout_ms = 100;
    o.dns_tries = 1;
    ag_client *c = NULL;
    int rc = ag_client_new(&c, &o);
    if (rc < 0)
        tap_diag("ag_client_new: %s", ag_err_name(rc));
    return c;
}

static bool body_is_file(const ag_response *r, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, name);
    size_t want_len, len;
    char *want = read_file(path, &want_len);
    const char *body = ag_response_body(r, &len);
    bool ok = want && len == want_len && memcmp(body, want, len) == 0;
    free(want);
    return ok;
}

/* "unix:" PREFIX path, cut to the 63 bytes the peer text holds. */
static bool peer_is(const ag_response *r, const char *prefix, const char *path)
{
    char want[512];
    snprintf(want, sizeof want, "unix:%s%s", prefix, path);
    want[63] = 0;
    return strcmp(ag_response_peer(r), want) == 0;
}

static void unix_get_reuse(void)
{
    ag_client *c = unix_client(nginx_unix, 0, NULL, 0);
    int rc1, rc2;
    /* The host has no address anywhere: only a connection that never looks it up works. */
    ag_response *a = get(c, "http://no-such-host.invalid/hello", &rc1);
    ag_response *b = get(c, "http://no-such-host.invalid/hello", &rc2);
    tap_ok(rc1 == 0 && rc2 == 0 && ag_response_status(a) == 200 && body_is_file(a, "hello") &&
               ag_response_status(b) == 200 && body_is_file(b, "hello"),
           "unix_get: two GETs over nginx's socket, host never looked up (%s, %s)",
           ag_err_name(rc1), ag_err_name(rc2));
    tap_ok(!ag_response_reused(a) && ag_response_reused(b) &&
               ag_response_conn_id(a) == ag_response_conn_id(b) && ag_response_connects(a) == 1 &&
               ag_response_connects(b) == 0,
           "unix_keepalive_reuse: the second reuses the first's connection (ids %llu, %llu)",
           (unsigned long long)ag_response_conn_id(a), (unsigned long long)ag_response_conn_id(b));
    tap_ok(peer_is(a, "", nginx_unix) && peer_is(b, "", nginx_unix),
           "unix_peer: ag_response_peer names the socket (%s)", ag_response_peer(a));
    ag_timings t;
    ag_response_timings(a, &t);
    tap_ok(t.dns == t.queued && t.connected >= t.dns && t.sent >= t.connected,
           "unix_timings: no name lookup time (dns at the slot's grant), then connect, send");
    ag_response_free(a);
    ag_response_free(b);

    /* /redirect answers 302 to /hello: followed on the same socket, on the same connection. */
    a = get(c, "http://no-such-host.invalid/redirect", &rc1);
    tap_ok(rc1 == 0 && ag_response_status(a) == 200 && ag_response_redirects(a) == 1 &&
               body_is_file(a, "hello") && ag_response_reused(a),
           "unix_redirect: a redirect stays on the socket (%s, %d, %u)", ag_err_name(rc1),
           ag_response_status(a), ag_response_redirects(a));
    ag_response_free(a);
    ag_client_free(c);
}

static void unix_https(void)
{
    if (!tls_unix || !tls_ca) {
        tap_skip("unix_https: AG_TLS_UNIX not set");
        tap_skip("unix_https_hostname: AG_TLS_UNIX not set");
        return;
    }
    ag_tls_opts tls;
    ag_tls_opts_init(&tls);
    tls.ca_file = tls_ca;
    ag_client *c = unix_client(tls_unix, 0, &tls, 0);
    int rc1, rc2;
    ag_response *a = get(c, "https://localhost/hello", &rc1);
    ag_response *b = get(c, "https://localhost/hello", &rc2);
    ag_tls_info ti;
    int trc = ag_response_tls(a, &ti);
    tap_ok(rc1 == 0 && rc2 == 0 && body_is_file(a, "hello") && body_is_file(b, "hello") &&
               trc == 0 && ti.verified && ag_response_reused(b) &&
               ag_response_conn_id(a) == ag_response_conn_id(b) && peer_is(a, "", tls_unix),
           "unix_https: TLS over the socket, verified, and the connection reused (%s, %s)",
           ag_err_name(rc1), ag_err_name(rc2));
    ag_response_free(a);
    ag_response_free(b);
    /* The certificate is checked against the URL's host, not the socket. */
    a = get(c, "https://wrong.example/hello", &rc1);
    tap_ok(rc1 == AG_ETLS_HOSTNAME,
           "unix_https_hostname: a URL host the certificate does not "
           "name fails verification (%s: %s)",
           ag_err_name(rc1), ag_response_error_detail(a));
    ag_response_free(a);
    ag_client_free(c);
}

static void unix_abstract(void)
{
    if (!nginx_abstract) {
        tap_skip("unix_abstract: AG_NGINX_ABSTRACT not set (with-servers --unix)");
        tap_skip("unix_abstract_refused: AG_NGINX_ABSTRACT not set");
        return;
    }
    ag_client *c = unix_client(nginx_abstract, 1, NULL, 0);
    int rc1, rc2;
    ag_response *a = get(c, "http://localhost/hello", &rc1);
    ag_response *b = get(c, "http://localhost/hello", &rc2);
    tap_ok(rc1 == 0 && rc2 == 0 && body_is_file(a, "hello") && body_is_file(b, "hello") &&
               ag_response_reused(b) && ag_response_conn_id(a) == ag_response_conn_id(b) &&
               peer_is(a, "@", nginx_abstract),
           "unix_abstract: GETs through socat's abstract socket, reused (%s, %s, %s)",
           ag_err_name(rc1), ag_err_name(rc2), ag_response_peer(a));
    ag_response_free(a);
    ag_response_free(b);
    ag_client_free(c);
    /* The same name as a path is not the abstract socket. */
    char name[160];
    snprintf(name, sizeof name, "%s-none", nginx_abstract);
    c = unix_client(name, 1, NULL, 0);
    a = get(c, "http://localhost/hello", &rc1);
    tap_ok(rc1 == -ECONNREFUSED && strstr(ag_response_error_detail(a), name) &&
               strstr(ag_response_error_detail(a), "unix:@"),
           "unix_abstract_refused: an abstract name nobody listens on is ECONNREFUSED (%s: %s)",
           ag_err_name(rc1), ag_response_error_detail(a));
    ag_response_free(a);
    ag_client_free(c);
}

static void unix_missing(void)
{
    char missing[256];
    snprintf(missing, sizeof missing, "%s/missing.sock", tmpdir);
    ag_client *bad = unix_client(missing, 0, NULL, 0);
    ag_client *good = unix_client(nginx_unix, 0, NULL, 0);
    int rc1, rc2, rc3;
    ag_response *a = get(bad, "http://localhost/hello", &rc1);
    ag_response *b = get(good, "http://localhost/hello", &rc2);
    ag_response *d = get(bad, "http://localhost/hello", &rc3);
    tap_ok(rc1 == -ENOENT && rc3 == -ENOENT && strstr(ag_response_error_detail(a), missing),
           "unix_missing: a socket path that does not exist is ENOENT, the path in the detail "
           "(%s: %s)",
           ag_err_name(rc1), ag_response_error_detail(a));
    tap_ok(rc2 == 0 && body_is_file(b, "hello"), "unix_missing: other requests go on (%s)",
           ag_err_name(rc2));
    ag_response_free(a);
    ag_response_free(b);
    ag_response_free(d);
    ag_client_free(bad);
    ag_client_free(good);

    /* A socket file nobody listens on any more. */
    char dead[256];
    snprintf(dead, sizeof dead, "%s/dead.sock", tmpdir);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, dead, strlen(dead) + 1);
    bind(s, (struct sockaddr *)&sa, sizeof sa);
    close(s);
    bad = unix_client(dead, 0, NULL, 0);
    a = get(bad, "http://localhost/hello", &rc1);
    tap_ok(rc1 == -ECONNREFUSED && strstr(ag_response_error_detail(a), dead),
           "unix_refused: a socket nobody listens on is ECONNREFUSED, the path in the detail "
           "(%s: %s)",
           ag_err_name(rc1), ag_response_error_detail(a));
    ag_response_free(a);
    ag_client_free(bad);
    unlink(dead);
}

static void unix_opts(void)
{
    char longp[200];
    memset(longp, 'x', sizeof longp);
    longp[0] = '/';
    longp[108] = 0;
    ag_client_opts o;
    ag_client *c = NULL;
    int rcs[5];
    ag_client_opts_init(&o);
    o.unix_socket = "";
    rcs[0] = ag_client_new(&c, &o);
    o.unix_socket = longp; /* 108 bytes */
    rcs[1] = ag_client_new(&c, &o);
    ag_client_opts_init(&o);
    o.unix_socket_abstract = 1;
    rcs[2] = ag_client_new(&c, &o);
    longp[107] = 0;
    o.unix_socket = longp; /* 107 bytes: the most a sockaddr_un holds */
    o.unix_socket_abstract = 0;
    rcs[3] = ag_client_new(&c, &o);
    ag_client_free(c);
    c = NULL;
    o.unix_socket_abstract = 1;
    rcs[4] = ag_client_new(&c, &o);
    ag_client_free(c);
    tap_ok(rcs[0] == -EINVAL && rcs[1] == -EINVAL && rcs[2] == -EINVAL,
           "unix_opts_invalid: an empty path, 108 bytes, or abstract without a name is -EINVAL "
           "(%d %d %d)",
           rcs[0], rcs[1], rcs[2]);
    tap_ok(rcs[3] == 0 && rcs[4] == 0,
           "unix_opts_longest: 107 bytes is accepted, as a path and as an abstract name (%d %d)",
           rcs[3], rcs[4]);
}

/* ---- a listener whose queue is full ---- */

typedef struct full {
    int l;
    int fill[64];
    int nfill;
    int drain_after_ms; /* 0: never */
} full;

static int full_listener(full *fu, const char *path)
{
    fu->l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (bind(fu->l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fu->l, 0) < 0)
        return -1;
    /* Connections nobody accepts until one is refused: the queue is full. */
    for (fu->nfill = 0; fu->nfill < 64; fu->nfill++) {
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
            int e = errno;
            close(s);
            return e == EAGAIN ? 0 : -1;
        }
        fu->fill[fu->nfill] = s;
    }
    return -1;
}

/* After a while, take the fillers off the queue, then serve the next connection: one request,
 * one response. */
static void *drainer(void *arg)
{
    full *fu = arg;
    usleep((useconds_t)fu->drain_after_ms * 1000);
    for (int i = 0; i < fu->nfill; i++)
        close(accept(fu->l, NULL, NULL));
    int s = accept(fu->l, NULL, NULL);
    char buf[4096];
    size_t got = 0;
    while (got < sizeof buf - 1) {
        ssize_t n = read(s, buf + got, sizeof buf - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = 0;
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    if (write(s, resp, sizeof resp - 1) < 0)
        tap_diag("drainer: write failed");
    close(s);
    return NULL;
}

static void full_close(full *fu)
{
    for (int i = 0; i < fu->nfill; i++)
        close(fu->fill[i]);
    close(fu->l);
}

static void unix_backlog_full(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/full.sock", tmpdir);
    full fu = {0};
    if (full_listener(&fu, path) < 0) {
        tap_skip("unix_backlog_full: could not fill a listener's queue");
        tap_skip("unix_backlog_room: could not fill a listener's queue");
        return;
    }
    ag_client *c = unix_client(path, 0, NULL, 300);
    int rc;
    int64_t t0 = ag_now_ns();
    ag_response *r = get(c, "http://localhost/", &rc);
    int64_t took = ag_now_ns() - t0;
    tap_ok(rc == AG_ECONNECT_TIMEOUT && took >= 300 * 1000000LL &&
               strstr(ag_response_error_detail(r), "queue") &&
               strstr(ag_response_error_detail(r), path),
           "unix_backlog_full: a queue full until the connect timeout is AG_ECONNECT_TIMEOUT, "
           "not before it (%s: %s)",
           ag_err_name(rc), ag_response_error_detail(r));
    ag_response_free(r);
    ag_client_free(c);

    /* Room appears while the client waits: it connects and gets its answer. */
    fu.drain_after_ms = 200;
    pthread_t th;
    pthread_create(&th, NULL, drainer, &fu);
    c = unix_client(path, 0, NULL, 10000);
    r = get(c, "http://localhost/", &rc);
    size_t len;
    const char *body = ag_response_body(r, &len);
    tap_ok(rc == 0 && ag_response_status(r) == 200 && len == 2 && memcmp(body, "ok", 2) == 0,
           "unix_backlog_room: a connect refused for a full queue is tried again and succeeds "
           "once there is room (%s: %s)",
           ag_err_name(rc), ag_response_error_detail(r));
    ag_response_free(r);
    ag_client_free(c);
    pthread_join(th, NULL);
    full_close(&fu);
    unlink(path);
}

int main(void)
{
    env_port("AG_NGINX_PORT");
    nginx_unix = getenv("AG_NGINX_UNIX");
    root = getenv("AG_NGINX_ROOT");
    tls_unix = getenv("AG_TLS_UNIX");
    tls_ca = getenv("AG_TLS_CA");
    nginx_abstract = getenv("AG_NGINX_ABSTRACT");
    if (!nginx_unix || !root || !mkdtemp(tmpdir)) {
        printf("1..0 # SKIP AG_NGINX_UNIX not set\n");
        return 0;
    }
    unix_opts();
    unix_get_reuse();
    unix_https();
    unix_abstract();
    unix_missing();
    unix_backlog_full();
    rmdir(tmpdir);
    return tap_done();
}
