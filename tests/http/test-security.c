/* test-security.c: the security promises attacked through the public API, with the bytes a
 * listener of the test's own receives as the evidence: no field is injected through a URL, a
 * header, a method, credentials, a cookie or a Location (CR, LF and other control bytes are
 * refused before anything is sent, and %-escapes stay escapes on the wire), and the credentials
 * the caller gave go to the origin of the request's URL only (scheme, host and port), unless
 * location_trusted.
 *
 * The listener (a thread) answers one request per connection and closes it, on two IPv4 ports
 * (two origins on one host); a path "/r<N>" answers with the status and the raw Location bytes
 * of redirect N the case set, anything else "200 ok". Every request's head and body are kept
 * with the port they came to. Names other than 127.0.0.1 are mapped by the client's resolve and
 * connect_to options, so nothing leaves the loopback. */
#include "asyncget.h"
#include "tests/tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the listener ---- */

#define NREC     16
#define HEAD_MAX 16384

typedef struct record {
    int port;                /* the listener's port the request came to */
    char head[HEAD_MAX + 1]; /* request line and fields, up to the empty line, NUL-terminated */
    size_t head_len;
    char body[256];
    size_t body_len;
} record;

typedef struct redirect {
    int status;
    const char *loc; /* raw bytes, loc_len of them */
    size_t loc_len;
} redirect;

static struct {
    pthread_mutex_t mu;
    int fds[2];
    int ports[2];
    atomic_int stop;
    unsigned conns; /* connections accepted */
    record rec[NREC];
    unsigned nrec;
    redirect redir[8];
} L = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* Content-Length of a head, 0 without one. */
static size_t content_length(const char *head)
{
    const char *p = head;
    while ((p = strstr(p, "\r\n"))) {
        p += 2;
        if (strncasecmp(p, "Content-Length:", 15) == 0)
            return (size_t)strtoul(p + 15, NULL, 10);
    }
    return 0;
}

static void serve(int fd, int port)
{
    char buf[HEAD_MAX + 512];
    size_t len = 0;
    char *end = NULL;
    while (!end && len < HEAD_MAX) {
        ssize_t r = read(fd, buf + len, HEAD_MAX - len);
        if (r <= 0)
            return;
        len += (size_t)r;
        buf[len] = 0;
        end = strstr(buf, "\r\n\r\n");
    }
    if (!end)
        return;
    size_t head_len = (size_t)(end - buf) + 4;
    char head[HEAD_MAX + 1];
    memcpy(head, buf, head_len);
    head[head_len] = 0;
    size_t want = content_length(head);
    size_t have = len - head_len;
    char body[256];
    size_t keep = have < sizeof body ? have : sizeof body;
    memcpy(body, buf + head_len, keep);
    while (have < want) {
        char tmp[4096];
        ssize_t r = read(fd, tmp, sizeof tmp);
        if (r <= 0)
            break;
        size_t room = sizeof body - keep, n = (size_t)r < room ? (size_t)r : room;
        memcpy(body + keep, tmp, n);
        keep += n;
        have += (size_t)r;
    }
    pthread_mutex_lock(&L.mu);
    if (L.nrec < NREC) {
        record *rc = &L.rec[L.nrec++];
        rc->port = port;
        memcpy(rc->head, head, head_len + 1);
        rc->head_len = head_len;
        memcpy(rc->body, body, keep);
        rc->body_len = keep;
    }
    /* "GET /rN ...": redirect N */
    const char *target = strchr(head, ' ');
    redirect rd = {0, NULL, 0};
    if (target && target[1] == '/' && target[2] == 'r' && target[3] >= '0' && target[3] <= '7')
        rd = L.redir[target[3] - '0'];
    pthread_mutex_unlock(&L.mu);
    char out[HEAD_MAX];
    size_t n;
    if (rd.status) {
        n = (size_t)snprintf(out, sizeof out, "HTTP/1.1 %d Moved\r\nLocation: ", rd.status);
        memcpy(out + n, rd.loc, rd.loc_len);
        n += rd.loc_len;
        n += (size_t)snprintf(out + n, sizeof out - n,
                              "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    } else {
        n = (size_t)snprintf(out, sizeof out,
                             "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    }
    send_all(fd, out, n);
}

static void *listener_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&L.stop)) {
        struct pollfd p[2] = {{L.fds[0], POLLIN, 0}, {L.fds[1], POLLIN, 0}};
        if (poll(p, 2, 50) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (!(p[i].revents & POLLIN))
                continue;
            int fd = accept(L.fds[i], NULL, NULL);
            if (fd < 0)
                continue;
            pthread_mutex_lock(&L.mu);
            L.conns++;
            pthread_mutex_unlock(&L.mu);
            serve(fd, L.ports[i]);
            close(fd);
        }
    }
    return NULL;
}

static int listen_on(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 64) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) < 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

/* Forget what was received and set the redirects of the next case. */
static void reset(void)
{
    pthread_mutex_lock(&L.mu);
    L.nrec = 0;
    L.conns = 0;
    memset(L.redir, 0, sizeof L.redir);
    pthread_mutex_unlock(&L.mu);
}

static void set_redirect(int n, int status, const char *loc, size_t len)
{
    pthread_mutex_lock(&L.mu);
    L.redir[n] = (redirect){status, loc, len};
    pthread_mutex_unlock(&L.mu);
}

static unsigned nrec(void)
{
    pthread_mutex_lock(&L.mu);
    unsigned n = L.nrec;
    pthread_mutex_unlock(&L.mu);
    return n;
}

/* Whether any byte of what arrived is a control byte other than the CR LF ending each line, or
 * a byte of 0x80 and up. */
static bool head_clean(const record *r)
{
    for (size_t i = 0; i < r->head_len; i++) {
        unsigned char c = (unsigned char)r->head[i];
        if (c == '\r' && i + 1 < r->head_len && r->head[i + 1] == '\n') {
            i++;
            continue;
        }
        if (c < 0x20 || c >= 0x7f)
            return false;
    }
    return true;
}

/* A line of the head that starts with name (case-insensitive), anywhere but the request line. */
static bool has_field(const record *r, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = r->head; (p = strstr(p, "\r\n")); p += 2)
        if (strncasecmp(p + 2, name, n) == 0)
            return true;
    return false;
}

static void show(const char *what)
{
    pthread_mutex_lock(&L.mu);
    tap_diag("%s: %u connections, %u requests", what, L.conns, L.nrec);
    for (unsigned i = 0; i < L.nrec; i++) {
        char line[160];
        size_t k = 0;
        for (size_t j = 0; j < L.rec[i].head_len && k < sizeof line - 5; j++) {
            unsigned char c = (unsigned char)L.rec[i].head[j];
            if (c >= 0x20 && c < 0x7f)
                line[k++] = (char)c;
            else
                k += (size_t)snprintf(line + k, sizeof line - k, "\\x%02x", c);
        }
        line[k] = 0;
        tap_diag("  [%u] port %d: %s", i, L.rec[i].port, line);
    }
    pthread_mutex_unlock(&L.mu);
}

/* ---- fetching ---- */

static int pa, pb; /* the two ports: two origins on 127.0.0.1 */

static ag_client *client_with(int trusted, ag_cookie_jar *jar)
{
    /* localhost and sec.test name the same address on the first port; 127.0.0.1:80 and
     * 127.0.0.1:8080 (default port written out, or not) go to the first and second port. */
    static char res[2][64], cto[3][64];
    snprintf(res[0], sizeof res[0], "sec.test:%d:127.0.0.1", pa);
    snprintf(res[1], sizeof res[1], "sec.test:80:127.0.0.1");
    snprintf(cto[0], sizeof cto[0], "127.0.0.1:80:127.0.0.1:%d", pa);
    snprintf(cto[1], sizeof cto[1], "127.0.0.1:8080:127.0.0.1:%d", pb);
    snprintf(cto[2], sizeof cto[2], "sec.test:80:127.0.0.1:%d", pa);
    const char *resolve[] = {res[0], res[1], NULL};
    const char *connect_to[] = {cto[0], cto[1], cto[2], NULL};
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.resolve = resolve;
    o.connect_to = connect_to;
    o.dns_servers = "127.0.0.1:9"; /* no name ever reaches a real resolver */
    o.location_trusted = trusted;
    o.cookie_jar = jar;
    o.total_timeout_ms = 20000;
    ag_client *c = NULL;
    int rc = ag_client_new(&c, &o);
    if (rc < 0) {
        tap_diag("ag_client_new: %s", ag_strerror(rc));
        exit(1);
    }
    return c;
}

static int fetch(ag_client *c, const ag_request *req, ag_response **out)
{
    ag_response *r = NULL;
    int rc = ag_fetch(c, req, &r);
    if (out)
        *out = r;
    else
        ag_response_free(r);
    return rc;
}

static const char *url_a(const char *path)
{
    static char b[4][256];
    static int k;
    char *s = b[k++ % 4];
    snprintf(s, sizeof b[0], "http://127.0.0.1:%d%s", pa, path);
    return s;
}

/* ---- header injection: refused before a byte is sent ---- */

static void injection_refused(void)
{
    ag_client *c = client_with(0, NULL);
    char u[256];
    struct {
        const char *what;
        const char *method, *url;
        ag_header h;
        const char *user, *pass, *bearer;
        int expect;
    } cases[] = {
        {"url_crlf", NULL, "http://127.0.0.1:%d/a\r\nX-Injected: 1", {0}, 0, 0, 0, AG_EURL},
        {"url_lf", NULL, "http://127.0.0.1:%d/a\nX-Injected: 1", {0}, 0, 0, 0, AG_EURL},
        {"url_cr", NULL, "http://127.0.0.1:%d/a\rX", {0}, 0, 0, 0, AG_EURL},
        {"url_space",
         NULL,
         "http://127.0.0.1:%d/a HTTP/1.0\r\nX-Injected: 1",
         {0},
         0,
         0,
         0,
         AG_EURL},
        {"url_ctl", NULL, "http://127.0.0.1:%d/a\x01\x7f", {0}, 0, 0, 0, AG_EURL},
        {"url_tab", NULL, "http://127.0.0.1:%d/a\tb", {0}, 0, 0, 0, AG_EURL},
        {"url_8bit", NULL, "http://127.0.0.1:%d/caf\xc3\xa9", {0}, 0, 0, 0, AG_EURL},
        {"url_query_crlf",
         NULL,
         "http://127.0.0.1:%d/a?q=\r\nX-Injected: 1",
         {0},
         0,
         0,
         0,
         AG_EURL},
        {"url_fragment_crlf",
         NULL,
         "http://127.0.0.1:%d/a#\r\nX-Injected: 1",
         {0},
         0,
         0,
         0,
         AG_EURL},
        {"url_host_crlf", NULL, "http://127.0.0.1\r\nX-Injected: 1:%d/", {0}, 0, 0, 0, AG_EURL},
        {"url_userinfo_crlf",
         NULL,
         "http://u\r\nX-Injected: 1@127.0.0.1:%d/",
         {0},
         0,
         0,
         0,
         AG_EURL},
        {"url_userinfo_escaped_crlf",
         NULL,
         "http://u%%0d%%0aX-Injected:%%201@127.0.0.1:%d/",
         {0},
         0,
         0,
         0,
         AG_EURL},
        {"url_password_escaped_crlf",
         NULL,
         "http://u:p%%0d%%0aX-Injected:%%201@127.0.0.1:%d/",
         {0},
         0,
         0,
         0,
         AG_EURL},
        {"url_password_escaped_nul", NULL, "http://u:p%%00@127.0.0.1:%d/", {0}, 0, 0, 0, AG_EURL},
        {"header_value_crlf", NULL, NULL, {"X-A", "1\r\nX-Injected: 1"}, 0, 0, 0, AG_EHEADER},
        {"header_value_lf", NULL, NULL, {"X-A", "1\nX-Injected: 1"}, 0, 0, 0, AG_EHEADER},
        {"header_value_cr", NULL, NULL, {"X-A", "1\rX-Injected: 1"}, 0, 0, 0, AG_EHEADER},
        {"header_value_ctl", NULL, NULL, {"X-A", "1\x01"}, 0, 0, 0, AG_EHEADER},
        {"header_value_del", NULL, NULL, {"X-A", "1\x7f"}, 0, 0, 0, AG_EHEADER},
        {"header_name_crlf", NULL, NULL, {"X-Injected: 1\r\nX-A", "1"}, 0, 0, 0, AG_EHEADER},
        {"header_name_colon", NULL, NULL, {"X-A: 1\r\nX", "1"}, 0, 0, 0, AG_EHEADER},
        {"header_name_space", NULL, NULL, {"X A", "1"}, 0, 0, 0, AG_EHEADER},
        {"header_name_empty", NULL, NULL, {"", "1"}, 0, 0, 0, AG_EHEADER},
        {"host_crlf", NULL, NULL, {"Host", "h\r\nX-Injected: 1"}, 0, 0, 0, AG_EHEADER},
        {"cookie_crlf", NULL, NULL, {"Cookie", "a=1\r\nX-Injected: 1"}, 0, 0, 0, AG_EHEADER},
        {"authorization_crlf",
         NULL,
         NULL,
         {"Authorization", "Basic x\r\nX-Injected: 1"},
         0,
         0,
         0,
         AG_EHEADER},
        {"proxy_authorization_crlf",
         NULL,
         NULL,
         {"Proxy-Authorization", "x\r\nX-Injected: 1"},
         0,
         0,
         0,
         AG_EHEADER},
        {"user_agent_header_crlf",
         NULL,
         NULL,
         {"User-Agent", "a\r\nX-Injected: 1"},
         0,
         0,
         0,
         AG_EHEADER},
        {"method_crlf", "GET / HTTP/1.1\r\nX-Injected: 1\r\nX", NULL, {0}, 0, 0, 0, AG_EREQUEST},
        {"method_space", "GET /x", NULL, {0}, 0, 0, 0, AG_EREQUEST},
        {"method_lf", "GET\n", NULL, {0}, 0, 0, 0, AG_EREQUEST},
        {"method_empty", "", NULL, {0}, 0, 0, 0, AG_EREQUEST},
        {"username_crlf", NULL, NULL, {0}, "u\r\nX-Injected: 1", "p", 0, AG_EREQUEST},
        {"password_crlf", NULL, NULL, {0}, "u", "p\r\nX-Injected: 1", 0, AG_EREQUEST},
        {"bearer_crlf", NULL, NULL, {0}, 0, 0, "t\r\nX-Injected: 1", AG_EREQUEST},
        {"bearer_lf", NULL, NULL, {0}, 0, 0, "t\nX-Injected: 1", AG_EREQUEST},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        reset();
        ag_request req;
        ag_request_init(&req);
        snprintf(u, sizeof u, cases[i].url ? cases[i].url : "http://127.0.0.1:%d/", pa);
        req.url = u;
        req.method = cases[i].method;
        if (cases[i].h.name) {
            req.headers = &cases[i].h;
            req.nheaders = 1;
        }
        req.username = cases[i].user;
        req.password = cases[i].pass;
        req.bearer = cases[i].bearer;
        int rc = fetch(c, &req, NULL);
        unsigned conns;
        pthread_mutex_lock(&L.mu);
        conns = L.conns;
        pthread_mutex_unlock(&L.mu);
        if (!tap_ok(rc == cases[i].expect && conns == 0 && nrec() == 0,
                    "inject_%s_refused: %s before any connection (%s, %u connections)",
                    cases[i].what, ag_err_name(cases[i].expect), ag_err_name(rc), conns))
            show(cases[i].what);
    }
    ag_client_free(c);

    /* A user agent is checked when the client is made. */
    const char *agents[] = {"a\r\nX-Injected: 1", "a\n", "a\x01", "a\x7f"};
    for (size_t i = 0; i < sizeof agents / sizeof *agents; i++) {
        ag_client_opts o;
        ag_client_opts_init(&o);
        o.user_agent = agents[i];
        ag_client *bad = NULL;
        int rc = ag_client_new(&bad, &o);
        tap_ok(rc < 0 && bad == NULL, "inject_user_agent_refused_%zu: ag_client_new says %s", i,
               ag_err_name(rc));
        ag_client_free(bad);
    }
}

/* ---- %-escapes stay escapes ---- */

static void escapes_stay_escaped(void)
{
    ag_client *c = client_with(0, NULL);
    char u[256];
    struct {
        const char *what, *url, *line, *host;
    } cases[] = {
        {"path", "http://127.0.0.1:%d/a%%0d%%0aX-Injected:%%201",
         "GET /a%0d%0aX-Injected:%201 HTTP/1.1\r\n", NULL},
        {"query", "http://127.0.0.1:%d/a?q=%%0D%%0AX-Injected:%%201%%00",
         "GET /a?q=%0D%0AX-Injected:%201%00 HTTP/1.1\r\n", NULL},
        {"dots", "http://127.0.0.1:%d/%%2e%%2e/%%2F%%5c", "GET /%2e%2e/%2F%5c HTTP/1.1\r\n", NULL},
        {"fragment_not_sent", "http://127.0.0.1:%d/a#%%0d%%0aX-Injected:%%201",
         "GET /a HTTP/1.1\r\n", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        reset();
        ag_request req;
        ag_request_init(&req);
        snprintf(u, sizeof u, cases[i].url, pa);
        req.url = u;
        int rc = fetch(c, &req, NULL);
        bool ok = rc == 0 && nrec() == 1 &&
                  strncmp(L.rec[0].head, cases[i].line, strlen(cases[i].line)) == 0 &&
                  head_clean(&L.rec[0]) && !has_field(&L.rec[0], "X-Injected");
        if (!tap_ok(ok, "inject_escaped_%s_stays_escaped: %s", cases[i].what, ag_err_name(rc)))
            show(cases[i].what);
    }
    ag_client_free(c);

    /* Escapes in a host name are not decoded either: the Host field carries them as written
     * (every host goes to the listener here, so no name is looked up). */
    char any[64];
    snprintf(any, sizeof any, "::127.0.0.1:%d", pa);
    const char *cto[] = {any, NULL};
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.connect_to = cto;
    o.dns_servers = "127.0.0.1:9";
    if (ag_client_new(&c, &o) < 0)
        exit(1);
    reset();
    ag_request req;
    ag_request_init(&req);
    req.url = "http://sec%0d%0aX-Injected%3a%201.test/";
    int rc = fetch(c, &req, NULL);
    bool ok = rc == 0 && nrec() == 1 && head_clean(&L.rec[0]) &&
              strstr(L.rec[0].head, "\r\nHost: sec%0d%0ax-injected%3a%201.test\r\n") &&
              !has_field(&L.rec[0], "X-Injected");
    if (!tap_ok(ok, "inject_escaped_host_stays_escaped: %s", ag_err_name(rc)))
        show("host");
    ag_client_free(c);
}

/* ---- Location: raw bytes refused, escapes kept ---- */

static void location_injection(void)
{
    ag_client *c = client_with(0, NULL);
    static const struct {
        const char *what;
        const char *loc;
        size_t len;
        int escaped; /* 1: followed, and the second request line is "GET <line>" */
        const char *line;
    } cases[] = {
#define LOC(s) s, sizeof s - 1
        {"escaped_crlf", LOC("/ok%0d%0aX-Injected:%201"), 1, "GET /ok%0d%0aX-Injected:%201 "},
        {"escaped_query", LOC("/ok?%0D%0AX-Injected:%201"), 1, "GET /ok?%0D%0AX-Injected:%201 "},
        {"escaped_nul", LOC("/ok%00x"), 1, "GET /ok%00x "},
        {"raw_ctl", LOC("/ok\x01x"), 0, NULL},
        {"raw_del", LOC("/ok\x7fx"), 0, NULL},
        /* A space is followed %-encoded, as browsers and curl do: one request line still. */
        {"raw_space", LOC("/ok X-Injected: 1"), 1, "GET /ok%20X-Injected:%201 "},
        {"raw_cr", LOC("/ok\rX-Injected: 1"), 0, NULL},
        {"raw_nul", LOC("/ok\0\r\nX-Injected: 1"), 0, NULL},
        {"raw_tab", LOC("/ok\tx"), 0, NULL},
        {"raw_backslash", LOC("/ok\\..\\x"), 0, NULL},
        /* Either refused or sent %-encoded: never the raw bytes (how is the framing part's). */
        {"raw_8bit", LOC("/caf\xc3\xa9"), 2, NULL},
        {"host_escaped_crlf", LOC("http://sec%0d%0aX-Injected:%201.test/ok"), 0, NULL},
#undef LOC
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        reset();
        set_redirect(0, 302, cases[i].loc, cases[i].len);
        ag_request req;
        ag_request_init(&req);
        req.url = url_a("/r0");
        ag_response *r;
        int rc = fetch(c, &req, &r);
        unsigned n = nrec();
        bool clean = true;
        for (unsigned k = 0; k < n; k++)
            clean = clean && head_clean(&L.rec[k]) && !has_field(&L.rec[k], "X-Injected");
        bool ok;
        if (cases[i].escaped == 1)
            ok = rc == 0 && n == 2 &&
                 strncmp(L.rec[1].head, cases[i].line, strlen(cases[i].line)) == 0;
        else if (cases[i].escaped == 2)
            ok = (rc < 0 && n == 1) || (rc == 0 && n == 2);
        else
            ok = rc < 0 && n == 1;
        if (!tap_ok(ok && clean, "inject_location_%s: %s, %u requests, every head clean %d",
                    cases[i].what, ag_err_name(rc), n, clean))
            show(cases[i].what);
        ag_response_free(r);
    }
    ag_client_free(c);
}

/* ---- credentials and origins ---- */

/* How the caller gives its credentials, and what the listener sees of them. */
typedef struct cred {
    const char *what;
    ag_header h; /* a header of the caller's own (name NULL: none) */
    const char *user, *pass, *bearer;
    int userinfo;     /* the credentials are in the URL: http://cu:cp@... */
    const char *seen; /* a piece of the head that only these credentials put there */
} cred;

static const cred creds[] = {
    {"basic", {0}, "su", "sp", NULL, 0, "Authorization: Basic c3U6c3A="},
    {"userinfo", {0}, NULL, NULL, NULL, 1, "Authorization: Basic Y3U6Y3A="},
    {"bearer", {0}, NULL, NULL, "s3cret-token", 0, "Authorization: Bearer s3cret-token"},
    {"authorization",
     {"Authorization", "Secret own-auth"},
     NULL,
     NULL,
     NULL,
     0,
     "Authorization: Secret own-auth"},
    {"cookie", {"Cookie", "session=s3cret"}, NULL, NULL, NULL, 0, "Cookie: session=s3cret"},
    {"proxy_authorization",
     {"Proxy-Authorization", "Basic cHg6cHg="},
     NULL,
     NULL,
     NULL,
     0,
     "Proxy-Authorization: Basic cHg6cHg="},
};

/* Starts at start (a format with the first port, or with none), follows the redirects the
 * listener gives, and says for each request received whether it carried the credentials:
 * '1' or '0' per request, in order, into got. */
static int hops(ag_client *c, const cred *cr, const char *start, const char *method,
                const char *body, char *got, size_t size)
{
    char u[256], s[256];
    snprintf(s, sizeof s, start, pa);
    if (cr->userinfo) {
        /* "http://" then "cu:cp@" before the host */
        const char *rest = strstr(s, "://") + 3;
        snprintf(u, sizeof u, "%.*scu:cp@%s", (int)(rest - s), s, rest);
    } else {
        snprintf(u, sizeof u, "%s", s);
    }
    ag_request req;
    ag_request_init(&req);
    req.url = u;
    req.method = method;
    if (cr->h.name) {
        req.headers = &cr->h;
        req.nheaders = 1;
    }
    req.username = cr->user;
    req.password = cr->pass;
    req.bearer = cr->bearer;
    if (body) {
        req.body_kind = AG_BODY_MEMORY;
        req.body = body;
        req.body_len = strlen(body);
    }
    int rc = fetch(c, &req, NULL);
    unsigned n = nrec();
    size_t k = 0;
    for (unsigned i = 0; i < n && k + 1 < size; i++)
        got[k++] = strstr(L.rec[i].head, cr->seen) ? '1' : '0';
    got[k] = 0;
    return rc;
}

static char locbuf[8][256];

static void redirect_to(int n, int status, const char *fmt, int port)
{
    int len = snprintf(locbuf[n], sizeof locbuf[n], fmt, port);
    set_redirect(n, status, locbuf[n], (size_t)len);
}

static void credentials_by_origin(void)
{
    ag_client *c = client_with(0, NULL), *trusted = client_with(1, NULL);
    /* Each: where the first request goes, the Location of /r0 (with the first or second
     * port), and which requests carry the credentials ("10": the first, not the second). */
    struct {
        const char *what, *start, *loc;
        int loc_port_b; /* the Location's port is the second one */
        const char *want;
    } cases[] = {
        {"same_origin_relative", "http://127.0.0.1:%d/r0", "/ok", 0, "11"},
        {"same_origin_absolute", "http://127.0.0.1:%d/r0", "http://127.0.0.1:%d/ok", 0, "11"},
        {"other_port", "http://127.0.0.1:%d/r0", "http://127.0.0.1:%d/ok", 1, "10"},
        {"other_host_same_address", "http://127.0.0.1:%d/r0", "http://localhost:%d/ok", 0, "10"},
        {"other_name_same_address", "http://localhost:%d/r0", "http://sec.test:%d/ok", 0, "10"},
        {"scheme_relative_other_port", "http://127.0.0.1:%d/r0", "//127.0.0.1:%d/ok", 1, "10"},
        {"uppercase_host_same_origin", "http://localhost:%d/r0", "http://LOCALHOST:%d/ok", 0, "11"},
        {"uppercase_scheme_same_origin", "http://127.0.0.1:%d/r0", "HTTP://127.0.0.1:%d/ok", 0,
         "11"},
        {"trailing_dot_other_host", "http://localhost:%d/r0", "http://localhost.:%d/ok", 0, "10"},
        {"location_userinfo_other_port", "http://127.0.0.1:%d/r0", "http://evil:pw@127.0.0.1:%d/ok",
         1, "10"},
        /* 127.0.0.1:80 is the first port through connect_to, :8080 the second. */
        {"default_port_written_out", "http://127.0.0.1/r0", "http://127.0.0.1:80/ok", 0, "11"},
        {"default_port_empty", "http://127.0.0.1/r0", "http://127.0.0.1:/ok", 0, "11"},
        {"default_port_left_out", "http://127.0.0.1:80/r0", "http://127.0.0.1/ok", 0, "11"},
        {"default_port_to_other", "http://127.0.0.1/r0", "http://127.0.0.1:8080/ok", 0, "10"},
        {"other_host_on_default_port", "http://127.0.0.1/r0", "http://sec.test/ok", 0, "10"},
    };
    for (size_t k = 0; k < sizeof creds / sizeof *creds; k++) {
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            for (int t = 0; t < 2; t++) {
                reset();
                redirect_to(0, 302, cases[i].loc, cases[i].loc_port_b ? pb : pa);
                char got[8];
                int rc =
                    hops(t ? trusted : c, &creds[k], cases[i].start, NULL, NULL, got, sizeof got);
                const char *want = t ? "11" : cases[i].want;
                /* A Location's own userinfo ("evil:pw") never makes credentials. */
                bool none_made = true;
                for (unsigned r = 0; r < nrec(); r++)
                    none_made = none_made && !strstr(L.rec[r].head, "ZXZpbDpwdw==");
                if (!tap_ok(rc == 0 && strcmp(got, want) == 0 && none_made,
                            "credentials_%s_%s%s: carried by the requests \"%s\" (want \"%s\"), "
                            "%s%s",
                            creds[k].what, cases[i].what, t ? "_trusted" : "", got, want,
                            ag_err_name(rc), none_made ? "" : ", the Location's userinfo sent"))
                    show(cases[i].what);
            }
        }
    }
    ag_client_free(c);
    ag_client_free(trusted);
}

/* Chains out and back, 307/308 with their body, 303 turned into a GET. */
static void credentials_chains(void)
{
    ag_client *c = client_with(0, NULL);
    for (size_t k = 0; k < sizeof creds / sizeof *creds; k++) {
        /* A -> B -> A: back at the origin, they are sent again (as curl does). */
        reset();
        redirect_to(0, 302, "http://127.0.0.1:%d/r1", pb);
        redirect_to(1, 302, "http://127.0.0.1:%d/ok", pa);
        char got[8];
        int rc = hops(c, &creds[k], "http://127.0.0.1:%d/r0", NULL, NULL, got, sizeof got);
        if (!tap_ok(rc == 0 && strcmp(got, "101") == 0,
                    "credentials_%s_out_and_back: \"%s\" (want \"101\") %s", creds[k].what, got,
                    ag_err_name(rc)))
            show("out and back");
        /* A -> localhost:A -> B -> A under another name: only the first. */
        reset();
        redirect_to(0, 301, "http://localhost:%d/r1", pa);
        redirect_to(1, 308, "http://127.0.0.1:%d/r2", pb);
        redirect_to(2, 307, "http://sec.test:%d/ok", pa);
        rc = hops(c, &creds[k], "http://127.0.0.1:%d/r0", NULL, NULL, got, sizeof got);
        if (!tap_ok(rc == 0 && strcmp(got, "1000") == 0,
                    "credentials_%s_chain_of_other_origins: \"%s\" (want \"1000\") %s",
                    creds[k].what, got, ag_err_name(rc)))
            show("chain");
        for (int st = 307; st <= 308; st++) {
            reset();
            redirect_to(0, st, "http://127.0.0.1:%d/ok", pb);
            rc =
                hops(c, &creds[k], "http://127.0.0.1:%d/r0", "POST", "body-bytes", got, sizeof got);
            bool body_kept = nrec() == 2 && L.rec[1].body_len == 10 &&
                             memcmp(L.rec[1].body, "body-bytes", 10) == 0 &&
                             strncmp(L.rec[1].head, "POST ", 5) == 0;
            if (!tap_ok(rc == 0 && strcmp(got, "10") == 0 && body_kept,
                        "credentials_%s_%d_post_other_origin: \"%s\" (want \"10\"), body kept "
                        "%d, %s",
                        creds[k].what, st, got, body_kept, ag_err_name(rc)))
                show("307/308");
        }
    }
    ag_client_free(c);
}

/* The cookies of a jar follow their own rules across redirects, whatever the caller's. */
static void jar_cookies_by_rules(void)
{
    ag_cookie_jar *jar;
    if (ag_cookie_jar_new(&jar) < 0)
        exit(1);
    /* host-only for 127.0.0.1, a path-scoped one, a Secure one for a name that is not loopback,
     * a Secure one for localhost (a loopback name: sent over http, as curl and browsers do) */
    char u[128];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/", pa);
    int a = ag_cookie_jar_set(jar, u, "host127=1");
    int b = ag_cookie_jar_set(jar, u, "pathed=1; Path=/only");
    snprintf(u, sizeof u, "https://sec.test:%d/", pa);
    int s1 = ag_cookie_jar_set(jar, u, "securetest=1; Secure");
    snprintf(u, sizeof u, "http://localhost:%d/", pa);
    int s2 = ag_cookie_jar_set(jar, u, "securelocal=1; Secure");
    tap_ok(a == 1 && b == 1 && s1 == 1 && s2 == 1, "jar_cookies_set: %d %d %d %d", a, b, s1, s2);
    ag_client *c = client_with(0, jar);
    ag_request req;
    ag_request_init(&req);
    reset();
    redirect_to(0, 302, "http://localhost:%d/r1", pa);
    redirect_to(1, 302, "http://sec.test:%d/only/x", pa);
    req.url = url_a("/r0");
    int rc = fetch(c, &req, NULL);
    unsigned n = nrec();
    bool ok = rc == 0 && n == 3;
    /* 127.0.0.1: its own, not the path-scoped one; localhost: its Secure one only; sec.test
     * over http: nothing (its Secure cookie needs https). */
    ok = ok && strstr(L.rec[0].head, "host127=1") && !strstr(L.rec[0].head, "pathed") &&
         !strstr(L.rec[0].head, "secure");
    ok = ok && strstr(L.rec[1].head, "securelocal=1") && !strstr(L.rec[1].head, "host127") &&
         !strstr(L.rec[1].head, "securetest");
    ok = ok && !has_field(&L.rec[2], "Cookie");
    if (!tap_ok(ok, "jar_cookies_follow_their_rules_across_redirects: %s, %u requests",
                ag_err_name(rc), n))
        show("jar");
    /* location_trusted does not change them. */
    ag_client_free(c);
    c = client_with(1, jar);
    reset();
    redirect_to(0, 302, "http://sec.test:%d/only/x", pa);
    rc = fetch(c, &req, NULL);
    ok = rc == 0 && nrec() == 2 && strstr(L.rec[0].head, "host127=1") &&
         !has_field(&L.rec[1], "Cookie");
    if (!tap_ok(ok, "jar_cookies_location_trusted_keeps_their_rules: %s", ag_err_name(rc)))
        show("jar trusted");
    ag_client_free(c);

    /* Cookies with control bytes never enter the jar, from a response or a file. */
    snprintf(u, sizeof u, "http://127.0.0.1:%d/", pa);
    int r1 = ag_cookie_jar_set(jar, u, "inj=1\r\nX-Injected: 1");
    int r2 = ag_cookie_jar_set(jar, u, "inj=1\x01");
    int r3 = ag_cookie_jar_set(jar, u, "in\nj=1");
    char path[] = "/tmp/ag-sec-jar-XXXXXX";
    int fd = mkstemp(path);
    const char file[] = "127.0.0.1\tFALSE\t/\tFALSE\t0\tinj\t1\rX-Injected: 1\n"
                        "127.0.0.1\tFALSE\t/\tFALSE\t0\tinj2\t1\x0b\n"
                        "127.0.0.1\tFALSE\t/\tFALSE\t0\tgood\t1\n";
    bool wrote = fd >= 0 && write(fd, file, sizeof file - 1) == (ssize_t)(sizeof file - 1);
    if (fd >= 0)
        close(fd);
    int loaded = wrote ? ag_cookie_jar_load(jar, path) : -1;
    unlink(path);
    c = client_with(0, jar);
    reset();
    req.url = url_a("/ok");
    rc = fetch(c, &req, NULL);
    ok = rc == 0 && nrec() == 1 && head_clean(&L.rec[0]) && !strstr(L.rec[0].head, "inj") &&
         strstr(L.rec[0].head, "good=1") && !has_field(&L.rec[0], "X-Injected");
    if (!tap_ok(r1 == 0 && r2 == 0 && r3 == 0 && loaded == 1 && ok,
                "inject_jar_cookie_refused: set %d %d %d, loaded %d, %s", r1, r2, r3, loaded,
                ag_err_name(rc)))
        show("jar inject");
    ag_client_free(c);
    ag_cookie_jar_free(jar);
}

int main(void)
{
    for (int i = 0; i < 2; i++) {
        L.fds[i] = listen_on(&L.ports[i]);
        if (L.fds[i] < 0) {
            printf("1..0 # SKIP no loopback listener: %s\n", strerror(errno));
            return 0;
        }
    }
    pa = L.ports[0];
    pb = L.ports[1];
    pthread_t th;
    if (pthread_create(&th, NULL, listener_main, NULL) != 0)
        return 1;
    injection_refused();
    escapes_stay_escaped();
    location_injection();
    credentials_by_origin();
    credentials_chains();
    jar_cookies_by_rules();
    atomic_store(&L.stop, 1);
    pthread_join(th, NULL);
    close(L.fds[0]);
    close(L.fds[1]);
    return tap_done();
}
