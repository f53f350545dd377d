/* test-unix-live.c: HTTP over Unix domain sockets against nginx (with-servers --unix --tls):
 * nginx's own socket (AG_NGINX_UNIX), socat's abstract one forwarding to it (AG_NGINX_ABSTRACT),
 * and the TLS server's socket (AG_TLS_UNIX): bodies byte for byte, keep-alive reuse and pooling
 * like TCP, redirects through the socket, the URL's host in the Host field, and the errors of a
 * socket that is not there or a name that is too long. */
#include "tests/http/echo.h"

#include <sys/socket.h>
#include <sys/un.h>

static const char *unix_path, *abstract_name, *tls_unix, *tls_abstract, *ca, *root;

static ag_client *unix_client(ag_loop *loop, const char *path, int abstract, unsigned per_host,
                              int *rc)
{
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.unix_socket = path;
    o.unix_socket_abstract = abstract;
    o.max_conns_per_host = per_host;
    ag_tls_opts t;
    ag_tls_opts_init(&t);
    t.ca_file = ca;
    o.tls = ca ? &t : NULL;
    ag_client *c = NULL;
    *rc = ag_client_new(&c, &o);
    return c;
}

static ag_response *get1(ag_client *c, const char *url, int *rc)
{
    ag_request req;
    ag_request_init(&req);
    req.url = url;
    ag_response *r = NULL;
    *rc = ag_fetch(c, &req, &r);
    return r;
}

static int body_is_file(const ag_response *r, const char *name)
{
    size_t flen = 0, blen = 0;
    char *want = read_file(path_in(root, name), &flen);
    const char *b = r ? ag_response_body(r, &blen) : NULL;
    int same = want && b && same_bytes(b, blen, want, flen);
    free(want);
    return same;
}

/* Requests over one client: the body, then reuse of the same connection. */
static void basics(const char *what, const char *path, int abstract)
{
    int rc;
    ag_client *c = unix_client(NULL, path, abstract, 0, &rc);
    if (!c) {
        tap_ok(0, "unix_%s_client: ag_client_new %s", what, ag_err_name(rc));
        return;
    }
    ag_response *r = get1(c, "http://localhost/hello", &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 200 && body_is_file(r, "hello") &&
               ag_response_connects(r) == 1,
           "unix_%s_get: %s, %d, connects %u, peer '%s'", what, ag_err_name(rc),
           ag_response_status(r), ag_response_connects(r), r ? ag_response_peer(r) : "");
    uint64_t conn = r ? ag_response_conn_id(r) : 0;
    ag_response_free(r);

    r = get1(c, "http://localhost/1m", &rc);
    tap_ok(rc == 0 && body_is_file(r, "1m") && ag_response_reused(r) &&
               ag_response_conn_id(r) == conn && ag_response_connects(r) == 0,
           "unix_%s_keepalive_reuse: 1 MiB on connection %llu (first %llu), reused %d", what,
           (unsigned long long)(r ? ag_response_conn_id(r) : 0), (unsigned long long)conn,
           r ? ag_response_reused(r) : -1);
    ag_response_free(r);

    /* The port in the URL changes nothing but the Host field; the connection is the socket's. */
    r = get1(c, "http://localhost:1/1k", &rc);
    tap_ok(rc == 0 && body_is_file(r, "1k"), "unix_%s_url_port_ignored: %s", what, ag_err_name(rc));
    ag_response_free(r);

    /* nginx's /redirect answers 302 to /hello: followed through the socket. */
    r = get1(c, "http://localhost/redirect", &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 200 && ag_response_redirects(r) == 1 &&
               body_is_file(r, "hello"),
           "unix_%s_redirect_followed: %s, %u hops", what, ag_err_name(rc),
           r ? ag_response_redirects(r) : 0);
    ag_response_free(r);

    /* nginx's /close answers "Connection: close": the next request opens a new connection. */
    r = get1(c, "http://localhost/close", &rc);
    ag_response_free(r);
    r = get1(c, "http://localhost/hello", &rc);
    tap_ok(rc == 0 && body_is_file(r, "hello") && ag_response_connects(r) == 1 &&
               !ag_response_reused(r),
           "unix_%s_new_connection_after_close: %s, connects %u", what, ag_err_name(rc),
           r ? ag_response_connects(r) : 0);
    ag_response_free(r);

    /* A chunked body, and a POST with a body. */
    r = get1(c, "http://localhost/chunked-1m", &rc);
    tap_ok(rc == 0 && body_is_file(r, "chunked-1m"), "unix_%s_chunked: %s", what, ag_err_name(rc));
    ag_response_free(r);
    ag_request req;
    ag_request_init(&req);
    req.url = "http://localhost/discard";
    req.method = "POST";
    req.body_kind = AG_BODY_MEMORY;
    static char big[300000];
    req.body = big;
    req.body_len = sizeof big;
    rc = ag_fetch(c, &req, &r);
    const char *b = r ? ag_response_body(r, NULL) : NULL;
    tap_ok(rc == 0 && b && strcmp(b, "ok\n") == 0, "unix_%s_post_body: %s", what, ag_err_name(rc));
    ag_response_free(r);
    ag_client_free(c);
}

struct job {
    int done, rc, same;
    uint64_t conn;
};

static void on_done(ag_client *c, ag_response *resp, int status, void *arg)
{
    (void)c;
    struct job *j = arg;
    j->done = 1;
    j->rc = status;
    j->same = body_is_file(resp, "1m");
    j->conn = ag_response_conn_id(resp);
    ag_response_free(resp);
}

/* Pooled like TCP: 16 requests at once through at most 3 connections. */
static void pooled(const char *what, const char *path, int abstract)
{
    ag_loop *loop;
    if (ag_loop_new(&loop, NULL) < 0) {
        tap_ok(0, "unix_%s_pooled: no loop", what);
        return;
    }
    int rc;
    ag_client *c = unix_client(loop, path, abstract, 3, &rc);
    enum { N = 16 };
    struct job jobs[N] = {{0}};
    for (int i = 0; i < N; i++) {
        ag_request req;
        ag_request_init(&req);
        req.url = "http://localhost/1m";
        if (!c || ag_fetch_start(c, &req, on_done, &jobs[i], NULL) < 0)
            jobs[i].done = -1;
    }
    ag_loop_run(loop);
    int ok = 0;
    uint64_t maxconn = 0;
    for (int i = 0; i < N; i++) {
        ok += jobs[i].done == 1 && jobs[i].rc == 0 && jobs[i].same;
        if (jobs[i].conn > maxconn)
            maxconn = jobs[i].conn;
    }
    tap_ok(ok == N && maxconn >= 1 && maxconn <= 3,
           "unix_%s_pooled: %d of %d bodies right over %llu connections (at most 3)", what, ok, N,
           (unsigned long long)maxconn);
    ag_client_free(c);
    ag_loop_free(loop);
}

static void tls(const char *what, const char *path, int abstract)
{
    int rc;
    ag_client *c = unix_client(NULL, path, abstract, 0, &rc);
    ag_response *r = c ? get1(c, "https://localhost/1m", &rc) : NULL;
    ag_tls_info info = {0};
    int have = r && ag_response_tls(r, &info) == 0;
    tap_ok(rc == 0 && body_is_file(r, "1m") && have && info.verified,
           "unix_%s_https_verified: %s, TLS %s, verified %d", what, ag_err_name(rc),
           have ? info.version : "-", have ? info.verified : 0);
    ag_response_free(r);
    /* The certificate is checked against the URL's host: it names localhost, not other.test. */
    r = c ? get1(c, "https://other.test/hello", &rc) : NULL;
    tap_ok(rc == AG_ETLS_HOSTNAME, "unix_%s_https_checks_url_host: %s", what, ag_err_name(rc));
    ag_response_free(r);
    ag_client_free(c);
}

/* Coded bodies come through the socket and are decoded like any other (with --codings). */
static void coded(void)
{
    int rc;
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.unix_socket = unix_path;
    o.compressed = 1;
    ag_client *c = NULL;
    rc = ag_client_new(&c, &o);
    ag_response *r = c ? get1(c, "http://localhost/gz/text.txt", &rc) : NULL;
    const char *ce = r ? ag_response_header(r, "Content-Encoding") : NULL;
    tap_ok(rc == 0 && ce && strcmp(ce, "gzip") == 0 && body_is_file(r, "text.txt") &&
               ag_response_body_bytes(r) < ag_response_decoded_bytes(r),
           "unix_path_gzip_decoded: %s, Content-Encoding %s", ag_err_name(rc), ce ? ce : "none");
    ag_response_free(r);
    ag_client_free(c);
}

static void errors(void)
{
    int rc;
    char missing[200];
    snprintf(missing, sizeof missing, "%s.missing", unix_path);
    ag_client *c = unix_client(NULL, missing, 0, 0, &rc);
    ag_response *r = c ? get1(c, "http://localhost/hello", &rc) : NULL;
    tap_ok(c && (rc == -ENOENT || rc == -ECONNREFUSED), "unix_missing_socket: %s (%s)",
           ag_err_name(rc), r ? ag_response_error_detail(r) : "");
    ag_response_free(r);
    ag_client_free(c);

    /* A socket file nobody listens on: refused. */
    char dead[200];
    snprintf(dead, sizeof dead, "%s.dead", unix_path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t dl = strlen(dead);
    if (dl < sizeof sa.sun_path)
        memcpy(sa.sun_path, dead, dl + 1);
    unlink(dead);
    int bound = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0)
        close(fd);
    c = unix_client(NULL, dead, 0, 0, &rc);
    r = c ? get1(c, "http://localhost/hello", &rc) : NULL;
    tap_ok(bound && rc == -ECONNREFUSED, "unix_nobody_listening: %s", ag_err_name(rc));
    ag_response_free(r);
    ag_client_free(c);
    unlink(dead);

    /* 107 bytes fit sun_path with its NUL; 108 do not. */
    char name[200];
    memset(name, 'a', sizeof name);
    name[0] = '/';
    name[107] = 0;
    c = unix_client(NULL, name, 0, 0, &rc);
    tap_ok(rc == 0 && c, "unix_name_107_bytes_accepted: %s", ag_err_name(rc));
    ag_client_free(c);
    name[107] = 'a';
    name[108] = 0;
    c = unix_client(NULL, name, 0, 0, &rc);
    tap_ok(rc == -EINVAL && !c, "unix_name_108_bytes_einval: %s", ag_err_name(rc));
    ag_client_free(c);

    /* An abstract name nobody listens on. */
    c = unix_client(NULL, "ag-nobody-listens-here", 1, 0, &rc);
    r = c ? get1(c, "http://localhost/hello", &rc) : NULL;
    tap_ok(c && rc == -ECONNREFUSED, "unix_abstract_nobody_listening: %s", ag_err_name(rc));
    ag_response_free(r);
    ag_client_free(c);
}

int main(void)
{
    unix_path = getenv("AG_NGINX_UNIX");
    abstract_name = getenv("AG_NGINX_ABSTRACT");
    tls_unix = getenv("AG_TLS_UNIX");
    tls_abstract = getenv("AG_TLS_ABSTRACT");
    ca = getenv("AG_TLS_CA");
    root = getenv("AG_NGINX_ROOT");
    if (!unix_path || !abstract_name || !root) {
        printf("1..0 # SKIP AG_NGINX_UNIX or AG_NGINX_ABSTRACT not set: run through with-servers "
               "--unix\n");
        return 0;
    }
    basics("path", unix_path, 0);
    basics("abstract", abstract_name, 1);
    pooled("path", unix_path, 0);
    pooled("abstract", abstract_name, 1);
    if (tls_unix && tls_abstract && ca) {
        tls("path", tls_unix, 0);
        tls("abstract", tls_abstract, 1);
    } else {
        tap_skip("unix https: run with --tls for AG_TLS_UNIX");
    }
    if (getenv("AG_NGINX_CODED"))
        coded();
    else
        tap_skip("unix_path_gzip_decoded: run with --codings");
    errors();
    return tap_done();
}
