/* test-tls-nginx.c: https against the TLS servers of a real nginx (with-servers --tls):
 * verification with a CA file and a CA directory, by name and by address, each kind of bad
 * certificate with its own error and passing when insecure, the version floor, version limits,
 * client certificates, session resumption, the pool keeping TLS settings apart, what
 * ag_response_tls reports, 10,000 requests over 100 connections and the blocking client. */
#include "tests/http/util.h"

#include <errno.h>
#include <signal.h>
#include <time.h>

static int tls_port, tls12_port, expired_port, wrongname_port, selfsigned_port, unknownca_port,
    old_port, clientcert_port, plain_port;
static const char *ca_file, *ca_dir, *client_cert, *client_key, *root;
static ag_loop *loop;

/* A hang (a read that never ends) must fail the test with the case's name, not wait for
 * meson's timeout: an alarm bounds the whole run, 120 s, or 20 times that under the valgrind
 * setup (AG_TEST_WRAPPER set), which multiplies meson's timeout by 20 as well. */
#define RUN_LIMIT_S 120
static const char *current = "start";

static void on_alarm(int sig)
{
    (void)sig;
    static const char head[] = "not ok - timed out in ";
    if (write(1, head, sizeof head - 1) < 0 || write(1, current, strlen(current)) < 0 ||
        write(1, "\n", 1) < 0)
        _exit(1);
    _exit(1);
}

/* https://localhost:port + path, in a static rotating buffer (enough for one test statement). */
static const char *https(int port, const char *path)
{
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "https://localhost:%d%s", port, path);
    return b;
}

/* The settings that trust the test CA (and nothing else). */
static ag_tls_opts trust_ca(void)
{
    ag_tls_opts t;
    ag_tls_opts_init(&t);
    t.ca_file = ca_file;
    return t;
}

static ag_client *tls_client(ag_loop *l, const ag_tls_opts *tls, unsigned per_host)
{
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = l;
    o.tls = tls;
    o.max_conns_per_host = per_host;
    ag_client *c;
    if (ag_client_new(&c, &o) < 0)
        abort();
    return c;
}

/* GET url with optional per-request TLS settings and extra headers. */
static ag_response *fetch(ag_client *c, const char *url, const ag_tls_opts *tls, const ag_header *h,
                          size_t nh, int *rc)
{
    ag_request r;
    ag_request_init(&r);
    r.url = url;
    r.tls = tls;
    r.headers = h;
    r.nheaders = nh;
    ag_response *resp;
    *rc = ag_fetch(c, &r, &resp);
    return resp;
}

/* The response's TLS info, zero-filled with "" strings when there is none. */
static ag_tls_info info_of(const ag_response *r)
{
    ag_tls_info t;
    memset(&t, 0, sizeof t);
    if (ag_response_tls(r, &t) < 0) {
        memset(&t, 0, sizeof t);
        t.version = t.cipher = t.alpn = t.subject = t.issuer = "";
    }
    return t;
}

static int is_hello(const ag_response *r)
{
    size_t len;
    const char *body = ag_response_body(r, &len);
    return ag_response_status(r) == 200 && len == 13 && memcmp(body, "hello, world\n", 13) == 0;
}

/* ---- verification: the test CA by file and by directory, by name and by address ---- */

static void tls_valid(void)
{
    ag_tls_opts t = trust_ca();
    ag_client *c = tls_client(loop, &t, 0);
    int rc;
    ag_response *r = fetch(c, https(tls_port, "/hello"), NULL, NULL, 0, &rc);
    ag_tls_info i = info_of(r);
    tap_ok(rc == 0 && is_hello(r) && i.verified == 1,
           "tls_valid_ca_file: the test CA as ca_file verifies localhost (%s %s, verified %d)",
           ag_err_name(rc), ag_response_error_detail(r), i.verified);
    ag_response_free(r);

    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/hello", tls_port);
    r = fetch(c, url, NULL, NULL, 0, &rc);
    i = info_of(r);
    tap_ok(rc == 0 && is_hello(r) && i.verified == 1,
           "tls_valid_by_ipv4: 127.0.0.1 matches the certificate's IP address (%s %s)",
           ag_err_name(rc), ag_response_error_detail(r));
    ag_response_free(r);

    const char *v6 = getenv("AG_TLS_IPV6");
    if (v6 && strcmp(v6, "1") == 0) {
        snprintf(url, sizeof url, "https://[::1]:%d/hello", tls_port);
        r = fetch(c, url, NULL, NULL, 0, &rc);
        i = info_of(r);
        tap_ok(rc == 0 && is_hello(r) && i.verified == 1,
               "tls_valid_by_ipv6: [::1] matches the certificate's IP address (%s %s)",
               ag_err_name(rc), ag_response_error_detail(r));
        ag_response_free(r);
    } else {
        tap_skip("tls_valid_by_ipv6: this machine has no IPv6 loopback");
    }
    ag_client_free(c);

    ag_tls_opts d;
    ag_tls_opts_init(&d);
    d.ca_path = ca_dir;
    c = tls_client(loop, &d, 0);
    r = fetch(c, https(tls_port, "/hello"), NULL, NULL, 0, &rc);
    i = info_of(r);
    tap_ok(rc == 0 && is_hello(r) && i.verified == 1,
           "tls_valid_ca_path: the hashed CA directory verifies localhost (%s %s)", ag_err_name(rc),
           ag_response_error_detail(r));
    ag_response_free(r);
    ag_client_free(c);

    /* The system's store does not know the test CA. */
    c = tls_client(loop, NULL, 0);
    r = fetch(c, https(tls_port, "/hello"), NULL, NULL, 0, &rc);
    tap_ok(rc == AG_ETLS_UNTRUSTED && ag_response_status(r) == 0,
           "tls_valid_untrusted_without_ca: the system store fails the test CA (%s %s)",
           ag_err_name(rc), ag_response_error_detail(r));
    ag_response_free(r);
    ag_client_free(c);
}

/* The host checked is the URL's: wrong.example (resolved to 127.0.0.1 by the client's resolve
 * option) matches the wrong-name certificate, and localhost no longer matches the valid one
 * when it is reached as another name. */
static void tls_name_is_the_urls(void)
{
    char entry1[64], entry2[64];
    snprintf(entry1, sizeof entry1, "wrong.example:%d:127.0.0.1", wrongname_port);
    snprintf(entry2, sizeof entry2, "other.example:%d:127.0.0.1", tls_port);
    const char *resolve[] = {entry1, entry2, NULL};
    ag_tls_opts t = trust_ca();
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.tls = &t;
    o.resolve = resolve;
    ag_client *c;
    if (ag_client_new(&c, &o) < 0)
        abort();
    char url[128];
    snprintf(url, sizeof url, "https://wrong.example:%d/hello", wrongname_port);
    int rc;
    ag_response *r = fetch(c, url, NULL, NULL, 0, &rc);
    ag_tls_info i = info_of(r);
    tap_ok(rc == 0 && is_hello(r) && i.verified == 1 && strstr(i.subject, "wrong.example"),
           "tls_name_resolve_match: wrong.example through resolve matches its certificate (%s %s)",
           ag_err_name(rc), ag_response_error_detail(r));
    ag_response_free(r);
    snprintf(url, sizeof url, "https://other.example:%d/hello", tls_port);
    r = fetch(c, url, NULL, NULL, 0, &rc);
    tap_ok(rc == AG_ETLS_HOSTNAME,
           "tls_name_resolve_mismatch: other.example at the valid server is the wrong name (%s "
           "%s)",
           ag_err_name(rc), ag_response_error_detail(r));
    ag_response_free(r);
    ag_client_free(c);

    /* A fully qualified name with its trailing dot is the certificate's name (as curl takes
     * it): the dot goes neither into SNI nor into the check. */
    c = tls_client(loop, &t, 0);
    snprintf(url, sizeof url, "https://localhost.:%d/hello", tls_port);
    r = fetch(c, url, NULL, NULL, 0, &rc);
    i = info_of(r);
    tap_ok(rc == 0 && is_hello(r) && i.verified == 1,
           "tls_name_trailing_dot: localhost. matches the certificate of localhost (%s %s)",
           ag_err_name(rc), ag_response_error_detail(r));
    ag_response_free(r);
    ag_client_free(c);
}

/* ---- bad certificates: each with its own error, each passing when insecure ---- */

static void tls_bad_certificates(void)
{
    static const struct {
        const char *name; /* test name */
        int *port;
        int err;
    } cases[] = {
        {"expired", &expired_port, AG_ETLS_EXPIRED},
        {"wrong_name", &wrongname_port, AG_ETLS_HOSTNAME},
        {"self_signed", &selfsigned_port, AG_ETLS_UNTRUSTED},
        {"unknown_ca", &unknownca_port, AG_ETLS_UNTRUSTED},
    };
    ag_tls_opts t = trust_ca();
    ag_client *c = tls_client(loop, &t, 0);
    ag_tls_opts k = trust_ca();
    k.insecure = 1;
    ag_client *ck = tls_client(loop, &k, 0);
    for (size_t n = 0; n < sizeof cases / sizeof cases[0]; n++) {
        int rc;
        ag_response *r = fetch(c, https(*cases[n].port, "/hello"), NULL, NULL, 0, &rc);
        tap_ok(rc == cases[n].err && ag_response_status(r) == 0, "tls_%s: %s (%s %s)",
               cases[n].name, ag_err_name(cases[n].err), ag_err_name(rc),
               ag_response_error_detail(r));
        ag_response_free(r);
        r = fetch(ck, https(*cases[n].port, "/hello"), NULL, NULL, 0, &rc);
        ag_tls_info i = info_of(r);
        tap_ok(rc == 0 && is_hello(r) && i.verified == 0 && i.version[0] != '\0',
               "tls_%s_insecure: passes unverified (%s %s, verified %d)", cases[n].name,
               ag_err_name(rc), ag_response_error_detail(r), i.verified);
        ag_response_free(r);
    }
    ag_client_free(c);
    ag_client_free(ck);
}

/* ---- versions ---- */

static void tls_versions(void)
{
    ag_tls_opts t = trust_ca();
    ag_client *c = tls_client(loop, &t, 0);
    int rc;
    ag_response *r = fetch(c, https(old_port, "/hello"), NULL, NULL, 0, &rc);
    tap_ok(rc == AG_ETLS && ag_response_status(r) == 0,
           "tls_old_only_refused: a TLS 1.0/1.1 server fails the handshake (%s %s)",
           ag_err_name(rc), ag_response_error_detail(r));
    ag_response_free(r);
    ag_tls_opts k = trust_ca();
    k.insecure = 1;
    r = fetch(c, https(old_port, "/hello"), &k, NULL, 0, &rc);
    tap_ok(rc == AG_ETLS && ag_response_status(r) == 0,
           "tls_old_only_refused_insecure: insecure does not lower the version floor (%s %s)",
           ag_err_name(rc), ag_response_error_detail(r));
    ag_response_free(r);

    r = fetch(c, https(tls_port, "/hello"), NULL, NULL, 0, &rc);
    ag_tls_info i = info_of(r);
    tap_ok(rc == 0 && is_hello(r) && strcmp(i.version, "TLSv1.3") == 0,
           "tls_default_version: TLSv1.3 with a server that has it (%s, %s)", ag_err_name(rc),
           i.version);
    ag_response_free(r);

    ag_tls_opts m = trust_ca();
    m.max_version = AG_TLS_1_2;
    r = fetch(c, https(tls_port, "/hello"), &m, NULL, 0, &rc);
    i = info_of(r);
    tap_ok(rc == 0 && is_hello(r) && strcmp(i.version, "TLSv1.2") == 0 && i.verified == 1,
           "tls_max_version_1_2: TLSv1.2 with the same server (%s %s, %s)", ag_err_name(rc),
           ag_response_error_detail(r), i.version);
    ag_response_free(r);

    r = fetch(c, https(tls12_port, "/hello"), NULL, NULL, 0, &rc);
    i = info_of(r);
    tap_ok(rc == 0 && is_hello(r) && strcmp(i.version, "TLSv1.2") == 0,
           "tls_server_1_2: a TLS 1.2-only server negotiates TLSv1.2 (%s %s, %s)", ag_err_name(rc),
           ag_response_error_detail(r), i.version);
    ag_response_free(r);

    ag_tls_opts n = trust_ca();
    n.min_version = AG_TLS_1_3;
    r = fetch(c, https(tls12_port, "/hello"), &n, NULL, 0, &rc);
    tap_ok(rc == AG_ETLS && ag_response_status(r) == 0,
           "tls_min_version_1_3: a TLS 1.2-only server fails the handshake (%s %s)",
           ag_err_name(rc), ag_response_error_detail(r));
    ag_response_free(r);
    ag_client_free(c);
}

/* ---- client certificates ---- */

static void tls_client_certificate(void)
{
    ag_tls_opts t = trust_ca();
    ag_client *c = tls_client(loop, &t, 0);
    int rc;
    ag_response *r = fetch(c, https(clientcert_port, "/hello"), NULL, NULL, 0, &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 400,
           "tls_client_cert_missing: nginx answers 400 without one (%s %s, %d)", ag_err_name(rc),
           ag_response_error_detail(r), ag_response_status(r));
    ag_response_free(r);
    ag_tls_opts m = trust_ca();
    m.cert_file = client_cert;
    m.key_file = client_key;
    r = fetch(c, https(clientcert_port, "/hello"), &m, NULL, 0, &rc);
    tap_ok(rc == 0 && is_hello(r),
           "tls_client_cert: with cert_file and key_file the server answers 200 (%s %s, %d)",
           ag_err_name(rc), ag_response_error_detail(r), ag_response_status(r));
    ag_response_free(r);
    ag_client_free(c);
}

/* ---- resumption: a second connection of the same client resumes the first one's session ---- */

static void resume_case(const char *name, int port, int no_reuse)
{
    ag_tls_opts t = trust_ca();
    t.no_session_reuse = no_reuse;
    ag_client *c = tls_client(loop, &t, 0);
    ag_header close_hdr = {"Connection", "close"};
    int rc1, rc2;
    ag_response *a = fetch(c, https(port, "/hello"), NULL, &close_hdr, 1, &rc1);
    ag_response *b = fetch(c, https(port, "/hello"), NULL, NULL, 0, &rc2);
    ag_tls_info ia = info_of(a), ib = info_of(b);
    int two_conns = ag_response_conn_id(a) != ag_response_conn_id(b) && !ag_response_reused(b);
    if (no_reuse)
        tap_ok(rc1 == 0 && rc2 == 0 && is_hello(b) && two_conns && ia.resumed == 0 &&
                   ib.resumed == 0,
               "%s: the second connection makes a full handshake (%s, %s, resumed %d %d)", name,
               ag_err_name(rc1), ag_err_name(rc2), ia.resumed, ib.resumed);
    else
        tap_ok(rc1 == 0 && rc2 == 0 && is_hello(b) && two_conns && ia.resumed == 0 &&
                   ib.resumed == 1,
               "%s: the second connection resumes the first one's session (%s %s, %s, resumed "
               "%d %d)",
               name, ag_err_name(rc1), ag_err_name(rc2), ib.version, ia.resumed, ib.resumed);
    ag_response_free(a);
    ag_response_free(b);
    ag_client_free(c);
}

static void tls_resumption(void)
{
    resume_case("tls_resume_1_3", tls_port, 0);
    resume_case("tls_resume_1_2", tls12_port, 0);
    resume_case("tls_no_session_reuse", tls_port, 1);
}

/* ---- the pool keeps connections of different TLS settings apart ---- */

static void tls_pool_key(void)
{
    ag_tls_opts t = trust_ca();
    ag_client *c = tls_client(loop, &t, 0);
    ag_tls_opts k;
    ag_tls_opts_init(&k);
    k.insecure = 1;
    int rc1, rc2, rc3, rc4;
    ag_response *a = fetch(c, https(tls_port, "/hello"), NULL, NULL, 0, &rc1);
    ag_response *b = fetch(c, https(tls_port, "/hello"), &k, NULL, 0, &rc2);
    ag_response *d = fetch(c, https(tls_port, "/hello"), NULL, NULL, 0, &rc3);
    ag_response *e = fetch(c, https(tls_port, "/hello"), &k, NULL, 0, &rc4);
    ag_tls_info ib = info_of(b), id = info_of(d);
    tap_ok(rc1 == 0 && rc2 == 0 && !ag_response_reused(b) &&
               ag_response_conn_id(b) != ag_response_conn_id(a) && ib.verified == 0,
           "tls_pool_insecure_after_verified: an insecure request does not take the verified "
           "connection (%s, conns %llu %llu, reused %d)",
           ag_err_name(rc2), (unsigned long long)ag_response_conn_id(a),
           (unsigned long long)ag_response_conn_id(b), ag_response_reused(b));
    tap_ok(rc3 == 0 && ag_response_reused(d) && ag_response_conn_id(d) == ag_response_conn_id(a) &&
               id.verified == 1,
           "tls_pool_verified_after_insecure: a verifying request takes the verified connection, "
           "not the insecure one (conns %llu %llu)",
           (unsigned long long)ag_response_conn_id(a), (unsigned long long)ag_response_conn_id(d));
    tap_ok(rc4 == 0 && ag_response_reused(e) && ag_response_conn_id(e) == ag_response_conn_id(b),
           "tls_pool_insecure_reused: insecure requests share their own connection (conns %llu "
           "%llu)",
           (unsigned long long)ag_response_conn_id(b), (unsigned long long)ag_response_conn_id(e));
    ag_response_free(a);
    ag_response_free(b);
    ag_response_free(d);
    ag_response_free(e);
    ag_client_free(c);
}

/* ---- what ag_response_tls reports ---- */

static void tls_info_fields(void)
{
    ag_tls_opts t = trust_ca();
    ag_client *c = tls_client(loop, &t, 0);
    int rc;
    ag_response *r = fetch(c, https(tls_port, "/hello"), NULL, NULL, 0, &rc);
    ag_tls_info i;
    memset(&i, 0, sizeof i);
    int got = ag_response_tls(r, &i);
    int64_t now = (int64_t)time(NULL);
    tap_ok(rc == 0 && got == 0 && i.subject && strstr(i.subject, "localhost") && i.issuer &&
               strstr(i.issuer, "asyncget test CA") && i.not_before <= now && i.not_after > now &&
               i.cipher && i.cipher[0] != '\0',
           "tls_info_certificate: subject \"%s\", issuer \"%s\", cipher \"%s\", valid %lld..%lld",
           i.subject ? i.subject : "(null)", i.issuer ? i.issuer : "(null)",
           i.cipher ? i.cipher : "(null)", (long long)i.not_before, (long long)i.not_after);
    tap_ok(got == 0 && i.alpn && strcmp(i.alpn, "http/1.1") == 0,
           "tls_info_alpn: nginx chose http/1.1 (\"%s\")", i.alpn ? i.alpn : "(null)");
    ag_response_free(r);

    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hello", plain_port);
    r = fetch(c, url, NULL, NULL, 0, &rc);
    got = ag_response_tls(r, &i);
    tap_ok(rc == 0 && is_hello(r) && got == -ENOENT,
           "tls_info_plain: a plain http response has no TLS info (%s)", ag_err_name(got));
    ag_response_free(r);
    tap_ok(ag_response_tls(NULL, &i) == -EINVAL, "tls_info_null: NULL gives -EINVAL");
    ag_client_free(c);
}

/* The trace hook's certificate line, as -v shows it. */
static char cert_line[512];

static void cert_hook(void *arg, const ag_trace_event *ev)
{
    (void)arg;
    if (ev->kind == AG_TRACE_INFO && ev->len > 19 &&
        memcmp(ev->data, "server certificate:", 19) == 0) {
        size_t n = ev->len < sizeof cert_line - 1 ? ev->len : sizeof cert_line - 1;
        memcpy(cert_line, ev->data, n);
        cert_line[n] = 0;
    }
}

static void tls_trace_certificate_line(void)
{
    ag_tls_opts t = trust_ca();
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.tls = &t;
    o.trace = cert_hook;
    ag_client *c;
    if (ag_client_new(&c, &o) < 0)
        abort();
    int rc;
    ag_response *r = fetch(c, https(tls_port, "/hello"), NULL, NULL, 0, &rc);
    ag_tls_info i;
    memset(&i, 0, sizeof i);
    ag_response_tls(r, &i);
    char want[64];
    struct tm tm;
    time_t na = (time_t)i.not_after;
    gmtime_r(&na, &tm);
    strftime(want, sizeof want, "; expires: %Y-%m-%d %H:%M:%S GMT; verified", &tm);
    int rc2;
    ag_response *bad = fetch(c, https(expired_port, "/hello"), NULL, NULL, 0, &rc2);
    tap_ok(rc2 == AG_ETLS_EXPIRED && ag_response_connects(bad) == 1,
           "tls_failed_handshake_counts_its_connection: %s, %u connects", ag_err_name(rc2),
           ag_response_connects(bad));
    ag_response_free(bad);
    tap_ok(rc == 0 && strstr(cert_line, "subject: CN=localhost") &&
               strstr(cert_line, "issuer: CN=asyncget test CA") && strstr(cert_line, want),
           "tls_trace_certificate_line: \"%s\"", cert_line);
    ag_response_free(r);
    ag_client_free(c);
}

/* ---- 10,000 requests over 100 connections, every body checked ---- */

typedef struct many {
    ag_client *c;
    int left, ok, bad, reused;
    char *want_1k, *want_1m;
    size_t len_1k, len_1m;
    uint64_t max_id;
    unsigned char seen[128]; /* connection ids met */
} many;

static void many_worker(void *arg)
{
    many *m = arg;
    while (m->left > 0) {
        /* Every hundredth request takes 1 MiB: many TLS records per response. */
        int big = m->left % 100 == 0;
        m->left--;
        int rc;
        ag_response *r = fetch(m->c, https(tls_port, big ? "/1m" : "/1k"), NULL, NULL, 0, &rc);
        size_t len;
        const char *body = ag_response_body(r, &len);
        const char *want = big ? m->want_1m : m->want_1k;
        size_t want_len = big ? m->len_1m : m->len_1k;
        if (rc == 0 && ag_response_status(r) == 200 && len == want_len &&
            memcmp(body, want, len) == 0)
            m->ok++;
        else
            m->bad++;
        uint64_t id = ag_response_conn_id(r);
        if (id > m->max_id)
            m->max_id = id;
        if (id < sizeof m->seen)
            m->seen[id] = 1;
        m->reused += ag_response_reused(r);
        ag_response_free(r);
    }
}

static void tls_10k_over_100(void)
{
    ag_tls_opts t = trust_ca();
    static many m; /* not on a coroutine stack */
    memset(&m, 0, sizeof m);
    m.c = tls_client(loop, &t, 100);
    m.left = 10000;
    char path[512];
    snprintf(path, sizeof path, "%s/1k", root);
    m.want_1k = read_file(path, &m.len_1k);
    snprintf(path, sizeof path, "%s/1m", root);
    m.want_1m = read_file(path, &m.len_1m);
    for (int i = 0; i < 300; i++) /* more coroutines than connections: some queue */
        ag_coro_spawn(loop, many_worker, &m, NULL);
    ag_loop_run(loop);
    int conns = 0;
    for (size_t i = 0; i < sizeof m.seen; i++)
        conns += m.seen[i];
    tap_ok(m.want_1k && m.want_1m && m.ok == 10000 && m.bad == 0 && m.max_id <= 100 &&
               m.reused == 10000 - conns,
           "tls_10k_over_100: %d ok, %d bad, %d connections (highest id %llu), %d reused", m.ok,
           m.bad, conns, (unsigned long long)m.max_id, m.reused);
    free(m.want_1k);
    free(m.want_1m);
    ag_client_free(m.c);
}

/* ---- the blocking client ---- */

static void tls_blocking(void)
{
    ag_tls_opts t = trust_ca();
    ag_client *c = tls_client(NULL, &t, 0);
    char path[512];
    snprintf(path, sizeof path, "%s/1m", root);
    size_t want_len;
    char *want = read_file(path, &want_len);
    int rc1, rc2;
    ag_response *a = fetch(c, https(tls_port, "/1m"), NULL, NULL, 0, &rc1);
    ag_response *b = fetch(c, https(tls_port, "/1m"), NULL, NULL, 0, &rc2);
    size_t len;
    const char *body = ag_response_body(b, &len);
    ag_tls_info i = info_of(b);
    tap_ok(rc1 == 0 && rc2 == 0 && want && len == want_len && memcmp(body, want, len) == 0 &&
               ag_response_body_bytes(a) == want_len && ag_response_reused(b) && i.verified == 1,
           "tls_blocking: no loop: 1 MiB twice over one verified connection (%s %s, %s)",
           ag_err_name(rc1), ag_response_error_detail(a), ag_err_name(rc2));
    free(want);
    ag_response_free(a);
    ag_response_free(b);
    ag_client_free(c);
}

static void run_in_coroutine(void *arg)
{
    (void)arg;
    current = "tls_valid";
    tls_valid();
    current = "tls_name_is_the_urls";
    tls_name_is_the_urls();
    current = "tls_bad_certificates";
    tls_bad_certificates();
    current = "tls_versions";
    tls_versions();
    current = "tls_client_certificate";
    tls_client_certificate();
    current = "tls_resumption";
    tls_resumption();
    current = "tls_pool_key";
    tls_pool_key();
    current = "tls_info_fields";
    tls_info_fields();
    current = "tls_trace_certificate_line";
    tls_trace_certificate_line();
}

/* Until the client speaks TLS, https fails with AG_ESCHEME: the whole file is skipped. */
static void skip_unless_built(void)
{
    ag_tls_opts t = trust_ca();
    ag_client *c = tls_client(NULL, &t, 0);
    int rc;
    ag_response *r = fetch(c, https(tls_port, "/hello"), NULL, NULL, 0, &rc);
    ag_response_free(r);
    ag_client_free(c);
    if (rc == AG_ESCHEME) {
        printf("1..0 # SKIP https not built yet (ag_fetch of the valid server: %s)\n",
               ag_err_name(rc));
        exit(0);
    }
}

static const char *env_path(const char *name)
{
    const char *v = getenv(name);
    if (!v) {
        printf("1..0 # SKIP %s not set: run through tests/servers/with-servers --tls\n", name);
        exit(0);
    }
    return v;
}

int main(void)
{
    tls_port = env_port("AG_TLS_PORT");
    tls12_port = env_port("AG_TLS12_PORT");
    expired_port = env_port("AG_TLS_EXPIRED_PORT");
    wrongname_port = env_port("AG_TLS_WRONGNAME_PORT");
    selfsigned_port = env_port("AG_TLS_SELFSIGNED_PORT");
    unknownca_port = env_port("AG_TLS_UNKNOWNCA_PORT");
    old_port = env_port("AG_TLS_OLD_PORT");
    clientcert_port = env_port("AG_TLS_CLIENTCERT_PORT");
    plain_port = env_port("AG_NGINX_PORT");
    ca_file = env_path("AG_TLS_CA");
    ca_dir = env_path("AG_TLS_CA_DIR");
    client_cert = env_path("AG_TLS_CLIENT_CERT");
    client_key = env_path("AG_TLS_CLIENT_KEY");
    root = env_path("AG_NGINX_ROOT");
    signal(SIGALRM, on_alarm);
    const char *wrapper = getenv("AG_TEST_WRAPPER");
    alarm(wrapper && wrapper[0] ? 20 * RUN_LIMIT_S : RUN_LIMIT_S);
    skip_unless_built();

    ag_loop_new(&loop, NULL);
    ag_coro_spawn(loop, run_in_coroutine, NULL, NULL);
    ag_loop_run(loop);
    current = "tls_10k_over_100";
    tls_10k_over_100();
    current = "tls_blocking";
    tls_blocking();
    ag_loop_free(loop);
    return tap_done();
}
