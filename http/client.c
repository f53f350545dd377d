/* client.c: the client and one request from start to finish: pool slot, connect, write, read,
 * a retry after a stale keep-alive connection, redirects, timeouts. Reads top to bottom. */
#include "http/cookie.h"
#include "http/decode.h"
#include "http/internal.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define RBUF_SIZE         (64 * 1024)
#define PRIVATE_RBUF_SIZE (16 * 1024)

void ag_client_opts_init(ag_client_opts *o)
{
    memset(o, 0, sizeof *o);
}

void ag_tls_opts_init(ag_tls_opts *o)
{
    memset(o, 0, sizeof *o);
}

void ag_request_init(ag_request *req)
{
    memset(req, 0, sizeof *req);
}

const char *ag_version(void)
{
    return AG_VERSION;
}

static char version_buf[256];

static void version_text(void)
{
    unsigned long v = http_parser_version();
    char num[3][24];
    ag__fmt_u64(num[0], (v >> 16) & 255);
    ag__fmt_u64(num[1], (v >> 8) & 255);
    ag__fmt_u64(num[2], v & 255);
    char codec_versions[96];
    ag__decode_versions(codec_versions, sizeof codec_versions);
    const char *parts[] = {"asyncget/",
                           AG_VERSION,
                           " (",
                           ag_loop_backend(),
                           ") http-parser/",
                           num[0],
                           ".",
                           num[1],
                           ".",
                           num[2],
                           " c-ares/",
                           ag__resolver_version(),
                           " OpenSSL/",
                           ag__tls_lib_version(),
                           codec_versions};
    size_t n = 0;
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        for (const char *p = parts[i]; *p && n + 1 < sizeof version_buf; p++)
            version_buf[n++] = *p;
    version_buf[n] = 0;
}

const char *ag_version_details(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, version_text);
    return version_buf;
}

static pthread_once_t parser_once = PTHREAD_ONCE_INIT;

static void parser_setup(void)
{
    /* http-parser's header limit is one process-wide number: set it once, high, and let each
     * client's own caps (max_header_bytes, max_headers) decide. */
    http_parser_set_max_header_size(0x7fffffff);
}

/* One field of a connect_to rule at *p, up to the next ':' outside brackets: an empty host
 * (NULL), or a copy without brackets. */
static int cto_host(const char **p, char **out)
{
    const char *s = *p, *end;
    *out = NULL;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || (close[1] != ':' && close[1] != '\0'))
            return -EINVAL;
        s++;
        end = close;
        *p = close + 1;
    } else {
        end = strchr(s, ':');
        if (!end)
            end = s + strlen(s);
        *p = end;
    }
    if (end == s)
        return 0;
    if (!(*out = strndup(s, (size_t)(end - s))))
        return -ENOMEM;
    for (char *q = *out; *q; q++) {
        if (*q >= 'A' && *q <= 'Z')
            *q = (char)(*q - 'A' + 'a');
        if ((unsigned char)*q <= ' ' || *q == '/' || *q == '[' || *q == ']')
            return -EINVAL;
    }
    return 0;
}

static int cto_port(const char **p, uint16_t *out)
{
    unsigned long v = 0;
    const char *s = *p;
    while (*s >= '0' && *s <= '9' && v <= 65535)
        v = v * 10 + (unsigned)(*s++ - '0');
    if (v > 65535 || (*s != ':' && *s != '\0') || (s > *p && v == 0))
        return -EINVAL;
    *out = (uint16_t)v;
    *p = s;
    return 0;
}

static int connect_to_parse(ag_client *c, const char *const *list)
{
    size_t n = 0;
    while (list && list[n])
        n++;
    if (!n)
        return 0;
    if (!(c->cto = calloc(n, sizeof *c->cto)))
        return -ENOMEM;
    for (; c->ncto < n; c->ncto++) {
        ag__connect_to *t = &c->cto[c->ncto];
        const char *p = list[c->ncto];
        int rc;
        if ((rc = cto_host(&p, &t->from_host)) < 0 || *p++ != ':' ||
            (rc = cto_port(&p, &t->from_port)) < 0 || *p++ != ':' ||
            (rc = cto_host(&p, &t->to_host)) < 0 || *p++ != ':' ||
            (rc = cto_port(&p, &t->to_port)) < 0 || *p != '\0') {
            c->ncto++; /* freed with the others */
            return rc == -ENOMEM ? rc : -EINVAL;
        }
    }
    return 0;
}

void ag__connect_to_apply(const ag_client *c, const char **host, uint16_t *port)
{
    for (size_t i = 0; i < c->ncto; i++) {
        const ag__connect_to *t = &c->cto[i];
        if ((t->from_host && strcasecmp(t->from_host, *host) != 0) ||
            (t->from_port && t->from_port != *port))
            continue;
        if (t->to_host)
            *host = t->to_host;
        if (t->to_port)
            *port = t->to_port;
        return;
    }
}

int ag_client_pool_stats(const ag_client *c, ag_pool_stats *out)
{
    if (!c || !out)
        return -EINVAL;
    ag__pool_counts n;
    ag__pool_counts_get(c->pool, &n);
    memset(out, 0, sizeof *out);
    out->conns = n.total;
    out->idle = n.idle;
    out->connecting = n.connecting;
    out->requests = c->inflight;
    out->waiting_slot = n.waiting;
    out->waiting_connect = n.connect_waiting;
    out->waiting_fd = n.fd_waiting;
    out->fd_waits = n.fd_waits;
    return 0;
}

int ag_client_dns_stats(const ag_client *c, ag_dns_stats *out)
{
    if (!c || !out)
        return -EINVAL;
    ag__resolver_stats(c->res, out);
    return 0;
}

#define MS_MAX (100LL * 365 * 24 * 3600 * 1000) /* a century */

static int64_t ms_clamp(int64_t ms)
{
    return ms > MS_MAX ? MS_MAX : ms;
}

int ag_client_new(ag_client **out, const ag_client_opts *opts)
{
    pthread_once(&parser_once, parser_setup);
    /* Reserved words become options later, where zero will mean the default: refuse garbage
     * now rather than change meaning under a newer library. */
    for (size_t i = 0; opts && i < sizeof opts->reserved / sizeof *opts->reserved; i++)
        if (opts->reserved[i])
            return -EINVAL;
    ag_client *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    if (opts)
        c->o = *opts;
    ag_client_opts *o = &c->o;
#define DEFAULT(field, value)                                                                      \
    if (!o->field)                                                                                 \
    o->field = (value)
    DEFAULT(max_conns, 1024);
    DEFAULT(max_conns_per_host, 256);
    DEFAULT(max_connecting, 256);
    DEFAULT(keepalive_idle_ms, 30000);
    DEFAULT(connect_timeout_ms, 30000);
    DEFAULT(idle_timeout_ms, 60000);
    DEFAULT(max_header_bytes, 64 * 1024);
    DEFAULT(max_headers, 128);
    DEFAULT(max_body_bytes, 64 * 1024 * 1024);
    DEFAULT(max_redirects, 10);
    DEFAULT(max_interim, 10);
    DEFAULT(expect_continue_size, 1024 * 1024);
    DEFAULT(expect_timeout_ms, 1000);
    DEFAULT(dns_timeout_ms, 1000);
    DEFAULT(dns_tries, 3);
    DEFAULT(dns_negative_ttl_ms, 5000);
    DEFAULT(happy_eyeballs_delay_ms, 250);
    DEFAULT(dns_cache_size, 4096);
    DEFAULT(dns_max_queries, 64);
    DEFAULT(tls_session_cache, 1024);
#undef DEFAULT
    /* Times are kept in nanoseconds: a century is as good as forever, and a larger value would
     * overflow the conversion. */
    int64_t *times[] = {
        &o->keepalive_idle_ms, &o->pool_timeout_ms,     &o->connect_timeout_ms,
        &o->idle_timeout_ms,   &o->total_timeout_ms,    &o->expect_timeout_ms,
        &o->dns_timeout_ms,    &o->dns_negative_ttl_ms, &o->happy_eyeballs_delay_ms};
    for (size_t i = 0; i < sizeof times / sizeof *times; i++)
        *times[i] = ms_clamp(*times[i]);
    for (size_t i = 0; i < sizeof times / sizeof *times; i++) {
        if (*times[i] < 0) {
            free(c); /* no meaning is given to a negative time */
            return -EINVAL;
        }
    }
    const char *tls_why;
    if (ag__tls_opts_check(o->tls, &tls_why) < 0) {
        free(c);
        return -EINVAL;
    }
    c->loop = o->loop;
    if (o->tls && ag__tls_opts_copy(&c->tls_opts, &c->tls_strs, o->tls) < 0) {
        free(c);
        return -ENOMEM;
    }
    o->tls = o->tls ? &c->tls_opts : NULL;
    /* A sockaddr_un holds 108 bytes: a path and its NUL, or an abstract name after its NUL. */
    size_t ul = o->unix_socket ? strlen(o->unix_socket) : 0;
    bool abstract_ok = false;
#if defined(__linux__)
    abstract_ok = true;
#endif
    if ((o->unix_socket && (ul == 0 || ul > 107)) ||
        (o->unix_socket_abstract && (!o->unix_socket || !abstract_ok))) {
        free(c->tls_strs);
        free(c);
        return -EINVAL;
    }
    if (o->unix_socket && !(c->unix_path = strdup(o->unix_socket))) {
        free(c->tls_strs);
        free(c);
        return -ENOMEM;
    }
    o->unix_socket = c->unix_path;
    c->ua = strdup(o->user_agent ? o->user_agent : "asyncget/" AG_VERSION);
    o->user_agent = NULL; /* the copy above is the client's */
    c->rbuf_cap = RBUF_SIZE;
    c->rbuf = malloc(c->rbuf_cap);
    int rc = -ENOMEM;
    if (!c->ua || !c->rbuf || !ag__http_is_field_value(c->ua, strlen(c->ua))) {
        rc = c->ua && c->rbuf ? AG_EHEADER : -ENOMEM;
        goto fail;
    }
    ag__pool_opts po = {
        .max_total = o->max_conns,
        .max_per_host = o->max_conns_per_host,
        .max_connecting = o->max_connecting,
        .idle_ns = o->keepalive_idle_ms * 1000000,
        .liveness_check = !o->no_liveness_check,
    };
    rc = ag__pool_new(&c->pool, c->loop, &po);
    if (rc < 0)
        goto fail;
    /* The contexts are made on the first https request: a client that never makes one never
     * loads a CA store. */
    rc = ag__tls_set_new(&c->tls,
                         o->tls_session_cache == AG_NO_TLS_SESSIONS ? 0 : o->tls_session_cache);
    if (rc < 0)
        goto fail;
    rc = -EINVAL;
    if (o->ip_family != AG_IP_ANY && o->ip_family != AG_IP_V4 && o->ip_family != AG_IP_V6)
        goto fail;
    ag__resolver_opts ro = {
        .loop = c->loop,
        .servers = o->dns_servers,
        .timeout_ms = o->dns_timeout_ms,
        .tries = o->dns_tries,
        .family = o->ip_family,
        .cache_size = o->dns_cache_size,
        .negative_ttl_ms = o->dns_negative_ttl_ms,
        .max_queries = o->dns_max_queries,
        .resolve = o->resolve,
    };
    rc = ag__resolver_new(&c->res, &ro);
    if (rc < 0)
        goto fail;
    rc = connect_to_parse(c, o->connect_to);
    if (rc < 0)
        goto fail;
    /* The lists and the server text were the caller's: what the client keeps is parsed. */
    o->dns_servers = NULL;
    o->resolve = o->connect_to = NULL;
    *out = c;
    return 0;
fail:
    ag_client_free(c);
    return rc;
}

int ag_client_free(ag_client *c)
{
    if (!c)
        return 0;
    /* A request in flight holds pointers into the client and its pool: freeing now would leave
     * it to write into freed memory when its response arrives. */
    if (c->inflight > 0)
        return -EBUSY;
    ag__pool_free(c->pool); /* its connections use the TLS contexts: first */
    ag__tls_set_free(c->tls);
    free(c->tls_strs);
    ag__resolver_free(c->res);
    for (size_t i = 0; i < c->ncto; i++) {
        free(c->cto[i].from_host);
        free(c->cto[i].to_host);
    }
    free(c->cto);
    free(c->rbuf);
    free(c->ua);
    free(c->unix_path);
    free(c);
    return 0;
}

/* ---- deadlines ---- */

typedef struct fetch {
    ag_client *client;
    const ag_request *req;
    ag_response *resp;
    ag__url url;
    ag__url first; /* the request's own URL once a redirect left it (buf NULL before) */
    char *auth;    /* the Authorization value of the request's credentials, or NULL */
    ag__req_state st;
    int64_t total_deadline; /* -1: none */
    bool body_consumed;     /* a reader body gave bytes: it cannot be sent again */
    uint64_t bytes_read;    /* response bytes read so far, to tell a read that made progress */
    bool asked_expect;      /* the last request sent said "Expect: 100-continue" */
    ag__tls_ctx *tls;       /* https: the context of the request's TLS settings */
} fetch;

static int64_t after_ms(int64_t ms)
{
    return ms > 0 ? ag_now_ns() + ms * 1000000 : -1;
}

static int64_t earlier(int64_t a, int64_t b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

/* A wait that timed out: the total deadline's error when it was the one that passed. */
static int timeout_error(const fetch *f, int rc, int own)
{
    if (rc != -ETIMEDOUT)
        return rc;
    if (f->total_deadline >= 0 && ag_now_ns() >= f->total_deadline)
        return AG_ETOTAL_TIMEOUT;
    return own;
}

/* ---- the read buffer ---- */

/* The client's read buffer is shared: a request holds it only while it parses what one read
 * returned, never while it waits for the network. A request whose body sink waits (a pipe, a
 * callback that yields) while another request wants to read makes the second use a private
 * buffer for that read. */
static char *rbuf_take(ag_client *c, size_t *cap)
{
    if (!c->rbuf_busy) {
        c->rbuf_busy = true;
        *cap = c->rbuf_cap;
        return c->rbuf;
    }
    *cap = PRIVATE_RBUF_SIZE;
    return malloc(PRIVATE_RBUF_SIZE);
}

static void rbuf_give(ag_client *c, char *buf)
{
    if (buf == c->rbuf)
        c->rbuf_busy = false;
    else
        free(buf);
}

/* ---- one exchange on one connection ---- */

static bool idempotent(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "PUT") == 0 ||
           strcmp(m, "DELETE") == 0 || strcmp(m, "OPTIONS") == 0 || strcmp(m, "TRACE") == 0;
}

/* Read and parse what the connection has. With wait, wait for bytes (until the idle or total
 * deadline) when there are none; without, return 0 at once instead. Returns 1 when the response
 * is complete, 0 to go on, or a negative code. */
static int read_once(fetch *f, ag__conn *conn, ag__parse *ps, bool wait)
{
    ag_client *c = f->client;
    /* Every pass checks the deadline and cancellation and, after a bounded run of passes that
     * found bytes waiting, lets the loop run the others: a server that sends as fast as the body
     * is consumed must not starve timers, cancels or sibling requests. */
    int rc = ag__coro_checkpoint(f->total_deadline);
    if (rc < 0)
        return timeout_error(f, rc, AG_ETOTAL_TIMEOUT);
    if (!ag__conn_ready(conn)) {
        if (!wait)
            return 0;
        int64_t deadline = earlier(f->total_deadline, after_ms(c->o.idle_timeout_ms));
        rc = ag__conn_wait(conn, deadline);
        if (rc < 0)
            return timeout_error(f, rc, AG_EIDLE_TIMEOUT);
    }
    size_t cap;
    char *buf = rbuf_take(c, &cap);
    if (!buf)
        return -ENOMEM;
    /* Never wait while holding the buffer: give it back, wait, take it again. */
    ssize_t n = ag__conn_read(conn, buf, cap, AG__NO_WAIT);
    if (n == -EAGAIN) {
        rbuf_give(c, buf);
        return 0;
    }
    if (n > 0)
        f->bytes_read += (uint64_t)n;
    if (n > 0 && !f->resp->t.first_byte)
        f->resp->t.first_byte = ag_now_ns();
    rc = n < 0 ? (int)n : ag__parse_feed(ps, buf, (size_t)n);
    rbuf_give(c, buf);
    if (n == 0 && rc == 1 && conn->eof_unclean) {
        /* The close ended the body, and over TLS only a close_notify proves that the close
         * came from the server: a cut connection looks the same without one. */
        ps->why = "the TLS connection ended without close_notify";
        rc = AG_ETRUNCATED;
    }
    return rc;
}

static int read_response(fetch *f, ag__conn *conn, ag__parse *ps)
{
    for (;;) {
        int rc = read_once(f, conn, ps, true);
        if (rc != 0)
            return rc < 0 ? rc : 0;
    }
}

/* While the request is written the server may answer (a 413 or 401 to an upload it will not
 * read): read what came. Returns 1 when the final response is complete (the rest of the body is
 * not sent), 0 to go on writing, or a negative code. */
static int read_early(fetch *f, ag__conn *conn, ag__parse *ps)
{
    int rc = read_once(f, conn, ps, false);
    return rc < 0 ? rc : (ps->done ? 1 : 0);
}

/* A write failed because the server closed or reset the connection while the request was still
 * going out. What it said before that (a 413 to an upload it refused) waits in the receive queue
 * ahead of the close, and is the request's answer: read the queue out. Returns 1 when it holds a
 * whole final response, else err. */
static int answer_before_close(fetch *f, ag__conn *conn, ag__parse *ps, int err)
{
    for (;;) {
        uint64_t before = f->bytes_read;
        conn->io.ready |=
            ag__poll_bits(AG_READ); /* the queue is read out, whatever the reactor last said */
        int rc = read_once(f, conn, ps, false);
        if (ps->done)
            return 1;
        if (rc != 0 || f->bytes_read == before)
            return err;
    }
}

/* Write iov; answer the server if it speaks first. 0 when written, 1 when the final response
 * came first, or a negative code. */
static int write_watching(fetch *f, ag__conn *conn, ag__parse *ps, struct iovec *iov, int n)
{
    ag__deadline d = {f->total_deadline, f->client->o.idle_timeout_ms * 1000000};
    for (;;) {
        int rc = ag__conn_writev(conn, iov, n, &d, true);
        if (rc == -EPIPE || rc == -ECONNRESET)
            return answer_before_close(f, conn, ps, rc);
        if (rc != AG__READABLE)
            return rc < 0 ? timeout_error(f, rc, AG_EIDLE_TIMEOUT) : 0;
        rc = read_early(f, conn, ps);
        if (rc != 0)
            return rc;
    }
}

/* After "Expect: 100-continue": wait up to expect_timeout_ms for the server's word. 0: send the
 * body (100 Continue came, or the server said nothing in time), 1: the final response came
 * instead, or a negative code. */
static int await_continue(fetch *f, ag__conn *conn, ag__parse *ps)
{
    ag_client *c = f->client;
    int64_t until = earlier(f->total_deadline, after_ms(c->o.expect_timeout_ms));
    unsigned interim = ps->interim;
    while (!ps->done && ps->interim == interim) {
        int rc = ag__coro_checkpoint(f->total_deadline);
        if (rc < 0)
            return timeout_error(f, rc, AG_ETOTAL_TIMEOUT);
        if (!ag__conn_ready(conn)) {
            rc = ag__conn_wait(conn, until);
            if (rc == -ETIMEDOUT && (f->total_deadline < 0 || ag_now_ns() < f->total_deadline))
                return 0; /* no word from the server: send the body anyway, as curl does */
            if (rc < 0)
                return timeout_error(f, rc, AG_EIDLE_TIMEOUT);
        }
        rc = read_once(f, conn, ps, false);
        if (rc < 0)
            return rc;
    }
    return ps->done ? 1 : 0;
}

#define BODY_CHUNK (64 * 1024)

/* Send the request: the head, then the body from memory, a file or a reader (chunked), reading
 * whatever the server says meanwhile. Returns 0 when all was sent, 1 when the final response
 * arrived before the body was complete (the connection cannot be reused), or a negative code. */
static int send_request(fetch *f, ag__conn *conn, ag__parse *ps)
{
    const ag_request *req = f->req;
    ag__body_plan bp;
    ag__body_plan_make(&bp, f->client, req, &f->st);
    f->asked_expect = bp.expect;
    if (bp.kind == AG_BODY_READER && f->body_consumed) {
        ag__response_detail(f->resp, "the reader body was consumed and cannot be sent again", NULL,
                            NULL, NULL);
        return AG_EBODY;
    }

    /* A small head is built on the stack, a large one on the heap: no allocation per request in
     * the usual case, and no extra stack page. */
    char stackbuf[512], *head;
    size_t head_len;
    /* The jar's cookies for this hop, as they are now: each hop and each retry asks again. */
    char *jar_cookie = NULL;
    ag_cookie_jar *jar = f->client->o.cookie_jar;
    int rc = jar && !req->no_cookies ? ag__cookie_value(jar, &f->url, &jar_cookie) : 0;
    if (rc < 0)
        return rc;
    f->st.jar_cookie = jar_cookie;
    rc = ag__request_head(f->client, &f->url, req, &f->st, &bp, stackbuf, sizeof stackbuf, &head,
                          &head_len);
    f->st.jar_cookie = NULL;
    free(jar_cookie);
    if (rc < 0)
        return rc;
    if (conn->trace)
        ag__conn_trace(conn, AG_TRACE_HEAD_OUT, head, head_len);
    struct iovec iov[3] = {{head, head_len}, {NULL, 0}, {NULL, 0}};
    char *buf = NULL;

    /* The usual request: the head alone, or with a body in memory, in one write. */
    if (bp.kind == AG_BODY_NONE || (bp.kind == AG_BODY_MEMORY && !bp.expect)) {
        int n = 1;
        if (bp.kind == AG_BODY_MEMORY && bp.len) {
            iov[1] = (struct iovec){(void *)req->body, (size_t)bp.len};
            n = 2;
        }
        if (n == 1) {
            /* Nothing to read before the head is out: no need to watch for an answer. */
            ag__deadline d = {f->total_deadline, f->client->o.idle_timeout_ms * 1000000};
            rc = ag__conn_writev(conn, iov, 1, &d, false);
            if (rc < 0)
                rc = timeout_error(f, rc, AG_EIDLE_TIMEOUT);
        } else {
            rc = write_watching(f, conn, ps, iov, n);
        }
        goto out;
    }

    rc = write_watching(f, conn, ps, iov, 1);
    if (rc == 0 && bp.expect)
        rc = await_continue(f, conn, ps);
    if (rc != 0)
        goto out;
    if (bp.kind == AG_BODY_MEMORY) {
        iov[0] = (struct iovec){(void *)req->body, (size_t)bp.len};
        rc = write_watching(f, conn, ps, iov, 1);
        goto out;
    }
    if (!(buf = malloc(BODY_CHUNK))) {
        rc = -ENOMEM;
        goto out;
    }
    for (uint64_t off = 0;;) {
        /* Writes that never have to wait (a server that reads as fast as a reader produces,
         * or a file is read) would never notice the deadline or a cancel, and never let the
         * loop run the others: check before each piece. */
        rc = ag__coro_checkpoint(f->total_deadline);
        if (rc < 0) {
            rc = timeout_error(f, rc, AG_ETOTAL_TIMEOUT);
            break;
        }
        int got = ag__body_read(req, &bp, off, buf, BODY_CHUNK);
        if (got < 0) {
            ag__response_detail(
                f->resp,
                bp.kind == AG_BODY_FILE ? "body file shorter than body_len or unreadable"
                : bp.kind == AG_BODY_FORM
                    ? "a file of the form is shorter than when it was added, or unreadable"
                    : "body_read returned an error",
                NULL, NULL, NULL);
            rc = AG_EBODY;
            break;
        }
        if (bp.kind == AG_BODY_READER) {
            if (got > 0)
                f->body_consumed = true;
            /* chunk-size CRLF data CRLF; the last chunk is "0" CRLF CRLF */
            char size_line[24];
            size_t k = ag__put_hex(size_line, (uint64_t)got);
            size_line[k++] = '\r';
            size_line[k++] = '\n';
            iov[0] = (struct iovec){size_line, k};
            iov[1] = (struct iovec){buf, (size_t)got};
            iov[2] = (struct iovec){(void *)"\r\n", 2};
            rc = write_watching(f, conn, ps, iov, 3);
            if (rc != 0 || got == 0)
                break;
        } else {
            if (got == 0)
                break;
            iov[0] = (struct iovec){buf, (size_t)got};
            rc = write_watching(f, conn, ps, iov, 1);
            if (rc != 0)
                break;
        }
        off += (uint64_t)got;
    }
out:
    free(buf);
    if (head != stackbuf)
        free(head);
    return rc;
}

/* Connect conn to the client's Unix socket, then TLS for https as over TCP (checked against
 * the URL's host). There is no name to look up: the lookup phase takes no time (dns is when
 * the slot was granted), as curl reports no name lookup time for a Unix socket. */
static int open_unix(fetch *f, ag__conn *conn, int64_t deadline)
{
    ag_client *c = f->client;
    ag_response *r = f->resp;
    r->t.dns = r->t.queued;
    int rc = ag__pool_connect_begin(c->pool, deadline);
    if (rc < 0) {
        rc = timeout_error(f, rc, AG_ECONNECT_TIMEOUT);
        if (rc == AG_ECONNECT_TIMEOUT)
            ag__response_detail(r, "timed out waiting for a connect slot (max_connecting)", NULL,
                                NULL, NULL);
        return rc;
    }
    bool abstract = c->o.unix_socket_abstract;
    rc = ag__conn_connect_unix(conn, c->loop, c->unix_path, abstract, deadline);
    const char *why = NULL;
    bool connected = rc == 0;
    if (connected) {
        r->t.connected = ag_now_ns();
        r->connects++;
        ag__security sec = {f->tls ? ag__tls_start : NULL, f->tls, f->url.host, f->url.port};
        rc = ag__conn_secure(conn, &sec, deadline, &why);
        if (rc == 0 && f->tls)
            r->t.tls = ag_now_ns();
    }
    ag__pool_connect_end(c->pool);
    memcpy(r->peer, conn->peer, sizeof r->peer);
    memcpy(r->local, conn->local, sizeof r->local);
    if (rc == 0)
        return 0;
    bool full = rc == -ETIMEDOUT && !connected;
    rc = timeout_error(f, rc, AG_ECONNECT_TIMEOUT);
    if (connected) {
        ag__response_detail(r, "TLS handshake with ", conn->peer, ": ",
                            why ? why : ag_strerror(rc));
        ag__conn_close(conn);
    } else {
        /* The whole path, not the peer text cut to fit: it is what the caller has to check. */
        ag__response_detail(r, abstract ? "connect to unix:@" : "connect to unix:", c->unix_path,
                            ": ",
                            full && rc == AG_ECONNECT_TIMEOUT
                                ? "its listen queue stayed full until the connect timeout"
                                : ag_strerror(rc));
    }
    return rc;
}

static bool no_fd(int rc)
{
    return rc == -EMFILE || rc == -ENFILE;
}

/* Connect a new connection for a granted slot: resolve, cap on connects, TCP connect. The
 * connect timeout covers this whole phase, and not the wait for the slot before it.
 *
 * A socket that cannot be made for want of a file descriptor is not the request's failure while
 * the connect timeout (and pool_timeout_ms) leaves time: the pool closes an idle connection, or
 * the request waits in FIFO order for one of the client's connections to end, and tries again
 * (the lookup too, which may have needed a socket). A connection of the same host released
 * meanwhile may be handed over instead (*handed: it is a reused connection). */
static int open_conn(fetch *f, ag__host *slot, ag__conn **out, bool *handed)
{
    ag_client *c = f->client;
    ag_response *r = f->resp;
    *handed = false;
    ag__conn *conn = ag__pool_conn_new(c->pool, slot);
    int rc = -ENOMEM;
    if (!conn)
        goto fail;
    /* The trace hook sees the connection attempts too. */
    conn->trace = c->o.trace;
    conn->trace_arg = c->o.trace_arg;
    conn->req_id = r->req_id;
    conn->user = f->req->user;
    int64_t deadline = earlier(f->total_deadline, after_ms(c->o.connect_timeout_ms));
    int64_t fd_deadline = earlier(deadline, after_ms(c->o.pool_timeout_ms));
    int64_t backoff = 0;
    const char *host = f->url.host;
    ag__conn *given = NULL;
    if (c->unix_path) {
        while (no_fd(rc = open_unix(f, conn, deadline))) {
            int err = rc;
            rc = ag__pool_fd_wait(c->pool, slot, true, fd_deadline, &backoff, &given);
            if (rc == 1)
                goto given;
            if (rc < 0) {
                rc = timeout_error(f, rc, err);
                if (no_fd(rc))
                    ag__response_detail(r, "out of file descriptors until the connect timeout (",
                                        ag_strerror(rc),
                                        "), for a connection to unix:", c->unix_path);
                goto fail;
            }
            r->detail[0] = '\0'; /* the try that failed said why: the next one will */
        }
        if (rc < 0)
            goto fail;
        *out = conn;
        return 0;
    }
    uint16_t port = f->url.port;
    ag__connect_to_apply(c, &host, &port);
    /* Requests already waiting for a descriptor go first. */
    rc = ag__pool_fd_wait(c->pool, slot, false, fd_deadline, &backoff, &given);
    for (;;) {
        if (rc == 1)
            goto given;
        if (rc < 0)
            break;
        ag__lookup lk;
        rc = ag__lookup_start(c->res, &lk, host, port);
        if (rc < 0)
            goto fail;
        /* The connect slots (max_connecting) are for connects: a name still being looked up
         * does not hold one. */
        while (lk.first < 0 && !ag__lookup_done(&lk) && rc == 0)
            rc = ag__lookup_wait(&lk, deadline);
        /* Nor does the wait for IPv6 after an IPv4 answer (RFC 8305's resolution delay): Happy
         * Eyeballs gets what is left of it. */
        int64_t resolution_delay = 50 * 1000000;
        if (rc == 0 && lk.fam[AG__FAM6].state == AG__LK_PENDING &&
            lk.fam[AG__FAM4].state == AG__LK_DONE && lk.fam[AG__FAM4].n > 0) {
            int64_t until = earlier(deadline, ag_now_ns() + resolution_delay);
            while (rc == 0 && lk.fam[AG__FAM6].state == AG__LK_PENDING)
                rc = ag__lookup_wait(&lk, until);
            if (rc == -ETIMEDOUT && (deadline < 0 || ag_now_ns() < deadline))
                rc = 0; /* the delay is over, the connect phase is not */
            resolution_delay = 0;
        }
        bool slot_wait = false;
        if (rc == 0) {
            rc = ag__pool_connect_begin(c->pool, deadline);
            slot_wait = rc < 0;
        }
        const char *why = NULL;
        int64_t dns_at = 0;
        bool tls_failed = false;
        if (rc == 0) {
            ag__connect_opts co = {
                .attempt_delay_ns = c->o.happy_eyeballs_delay_ms * 1000000,
                .resolution_delay_ns = resolution_delay,
            };
            rc = ag__conn_connect(conn, c->loop, &lk, &co, deadline, &dns_at, &why);
            if (rc == 0) {
                f->resp->t.connected = ag_now_ns();
                r->connects++; /* a connection was made, whether or not its handshake succeeds */
                /* The certificate must match the host the URL names, also when connect_to
                 * sent the connection elsewhere. */
                ag__security sec = {f->tls ? ag__tls_start : NULL, f->tls, f->url.host,
                                    f->url.port};
                rc = ag__conn_secure(conn, &sec, deadline, &why);
                tls_failed = rc < 0;
                if (rc == 0 && f->tls)
                    f->resp->t.tls = ag_now_ns();
            }
            ag__pool_connect_end(c->pool);
        }
        if (no_fd(rc) && !tls_failed) {
            /* why: the lookup's, when it was a DNS socket that could not be made */
            const char *what = why ? why : ag_strerror(rc);
            memcpy(r->peer, conn->peer, sizeof r->peer);
            ag__lookup_end(&lk);
            int err = rc;
            rc = ag__pool_fd_wait(c->pool, slot, true, fd_deadline, &backoff, &given);
            if (rc != -ETIMEDOUT)
                continue;
            rc = timeout_error(f, rc, err);
            if (no_fd(rc))
                ag__response_detail(r, "out of file descriptors until the connect timeout (", what,
                                    "), for a connection to ", host);
            goto fail;
        }
        if (dns_at)
            f->resp->t.dns = dns_at;
        memcpy(r->peer, conn->peer, sizeof r->peer);
        memcpy(r->local, conn->local, sizeof r->local);
        bool known = lk.fam[AG__FAM4].n + lk.fam[AG__FAM6].n > 0; /* an address to connect to */
        if (rc == -ETIMEDOUT && !slot_wait && !dns_at && !known) {
            /* Out of time before an address was known: the lookup's fault, unless the total
             * deadline it shared was the one that passed. */
            rc = timeout_error(f, rc, AG_EDNS_TIMEOUT);
            if (rc == AG_EDNS_TIMEOUT)
                why = "no answer within the connect timeout";
        } else if (rc < 0) {
            rc = timeout_error(f, rc, AG_ECONNECT_TIMEOUT);
        }
        ag__lookup_end(&lk);
        if (rc < 0 && tls_failed) {
            ag__response_detail(r, "TLS handshake with ", conn->peer, ": ",
                                why ? why : ag_strerror(rc));
            ag__conn_close(conn);
            goto fail;
        }
        if (rc < 0) {
            if (rc == AG_EDNS || rc == AG_EDNS_FAIL || rc == AG_EDNS_TIMEOUT)
                ag__response_detail(r, "cannot resolve ", host, ": ", why ? why : ag_strerror(rc));
            else if (slot_wait && rc == AG_ECONNECT_TIMEOUT)
                ag__response_detail(r, "timed out waiting for a connect slot (max_connecting)",
                                    NULL, NULL, NULL);
            else if (conn->peer[0])
                ag__response_detail(r, "connect to ", conn->peer, ": ", ag_strerror(rc));
            else if (rc == AG_ECONNECT_TIMEOUT)
                ag__response_detail(
                    r, "connect to ", host,
                    ": out of time before the first attempt (waiting for IPv6 after the "
                    "IPv4 answer)",
                    NULL);
            goto fail;
        }
        *out = conn;
        return 0;
    }
    /* Out of time or cancelled while queued behind others for a descriptor, before a try. */
    rc = timeout_error(f, rc, -EMFILE);
    if (no_fd(rc))
        ag__response_detail(r, "out of file descriptors until the connect timeout (",
                            ag_strerror(rc), "), for a connection to ", host);
    goto fail;
given:
    /* The slot was given back with the handover. */
    free(conn);
    *out = given;
    *handed = true;
    return 0;
fail:
    free(conn);
    ag__pool_release_slot(c->pool, slot);
    return rc;
}

/* "scheme://host:port", the pool's key for a URL, and "#N" after it for https (N: the TLS
 * settings' context, so that a connection made with one set of settings never serves a request
 * with another), in buf when it fits (the usual case: no allocation), else in memory the caller
 * frees (*heap). */
static char *pool_key(const ag__url *u, const ag__tls_ctx *tls, char *buf, size_t size, char **heap)
{
    size_t ls = strlen(u->scheme), lh = strlen(u->host);
    size_t need = ls + 3 + lh + 1 + 21 + 22;
    char *k = buf;
    *heap = NULL;
    if (need > size && !(k = *heap = malloc(need)))
        return NULL;
    memcpy(k, u->scheme, ls);
    memcpy(k + ls, "://", 3);
    memcpy(k + ls + 3, u->host, lh);
    char *p = k + ls + 3 + lh;
    *p++ = ':';
    p += ag__fmt_u64(p, u->port);
    if (tls) {
        *p++ = '#';
        ag__fmt_u64(p, ag__tls_ctx_id(tls));
    }
    return k;
}

static int exchange_on(fetch *f, const char *key);

static int exchange(fetch *f)
{
    f->tls = NULL;
    if (f->url.proto == AG__HTTPS) {
        const ag_tls_opts *o = f->req->tls ? f->req->tls : f->client->o.tls;
        const char *why;
        int rc = ag__tls_ctx_get(f->client->tls, o, &f->tls, &why);
        if (rc < 0) {
            if (why)
                ag__response_detail(f->resp, why, NULL, NULL, NULL);
            return rc;
        }
    }
    char buf[128], *heap;
    char *key = pool_key(&f->url, f->tls, buf, sizeof buf, &heap);
    if (!key)
        return -ENOMEM;
    int rc = exchange_on(f, key);
    free(heap);
    return rc;
}

static void trace_head(void *arg, const char *head, size_t len)
{
    ag__conn_trace(arg, AG_TRACE_HEAD_IN, head, len);
}

/* The Set-Cookie fields of a response head go to the jar, against this hop's URL: a redirect's
 * too, and those of a head whose body then failed. Not a 1xx's (never kept), nor a head the
 * parser refused. -ENOMEM when a cookie found no memory: the request fails rather than go on as
 * if the server had not set it (a session that silently went missing). */
static int store_cookies(fetch *f, int rc)
{
    ag_cookie_jar *jar = f->client->o.cookie_jar;
    const ag_response *r = f->resp;
    if (!jar || f->req->no_cookies || r->status == 0 || ag__status_interim(r->status) ||
        rc == AG_EPROTO)
        return 0;
    const char *name, *value;
    int out = 0;
    for (size_t i = 0; ag_response_header_at(r, i, &name, &value) == 0; i++)
        if (strcasecmp(name, "Set-Cookie") == 0 && ag__cookie_store(jar, &f->url, value) == -ENOMEM)
            out = -ENOMEM;
    return out;
}

static int exchange_on(fetch *f, const char *key)
{
    ag_client *c = f->client;
    ag_response *r = f->resp;
    bool retry_ok = !c->o.no_retry && idempotent(f->st.method);
    for (int attempt = 0;; attempt++) {
        ag__host *host;
        ag__conn *conn;
        int64_t pool_deadline = earlier(f->total_deadline, after_ms(c->o.pool_timeout_ms));
        int rc = ag__pool_acquire(c->pool, key, attempt > 0, pool_deadline, &host, &conn);
        if (rc < 0) {
            rc = timeout_error(f, rc, AG_EPOOL_TIMEOUT);
            if (rc == AG_EPOOL_TIMEOUT)
                ag__response_detail(r, "no connection slot for ", key, " within pool_timeout_ms",
                                    NULL);
            return rc;
        }
        r->t.queued = ag_now_ns();
        bool reused = conn != NULL;
        if (reused) {
            r->t.dns = r->t.connected = r->t.queued;
        } else {
            rc = open_conn(f, host, &conn, &reused);
            if (rc < 0)
                return rc;
            if (reused) /* handed over while it waited for a file descriptor */
                r->t.dns = r->t.connected = ag_now_ns();
        }
        /* Cancelled or out of time before a byte went out (cancelled before its first run,
         * say): send nothing. A reused connection and a send buffer with room would otherwise
         * let the whole request leave without any wait that notices. The connection is
         * untouched and goes back to the pool. */
        rc = ag__coro_checkpoint(f->total_deadline);
        if (rc < 0) {
            ag__pool_release(c->pool, conn, true);
            return timeout_error(f, rc, AG_ETOTAL_TIMEOUT);
        }
        conn->trace = c->o.trace;
        conn->trace_arg = c->o.trace_arg;
        conn->req_id = r->req_id;
        conn->user = f->req->user;
        if (conn->trace)
            ag__conn_trace(conn, AG_TRACE_INFO, reused ? "reusing connection" : "connected",
                           reused ? 18 : 9);
        r->reused = reused;
        r->conn_id = conn->id;
        memcpy(r->peer, conn->peer, sizeof r->peer);
        memcpy(r->local, conn->local, sizeof r->local);
        ag__tls_info_unref(r->tls); /* an earlier connection's, before a redirect or retry */
        r->tls = conn->tls;
        if (r->tls)
            ag__tls_info_ref(r->tls);

        ag__parse ps;
        ag__parse_init(&ps, c, f->req, r, strcmp(f->st.method, "HEAD") == 0,
                       !f->req->no_redirects && c->o.max_redirects != AG_NO_REDIRECTS);
        ps.deadline = f->total_deadline;
        if (conn->trace) {
            ps.on_head = trace_head;
            ps.on_head_arg = conn;
        }
        rc = send_request(f, conn, &ps);
        bool early = rc == 1;
        if (rc == 0) {
            r->t.sent = ag_now_ns();
            rc = read_response(f, conn, &ps);
        } else if (early) {
            rc = 0;
        }
        ag__parse_end(&ps);
        int stored = store_cookies(f, rc);
        if (rc == 0) {
            conn->served++;
            /* A response that came before the whole body was sent leaves the server reading
             * the rest of a body that will never come: the connection ends. */
            bool keep = http_should_keep_alive(&ps.p) && !ps.extra && !ps.must_close &&
                        !f->st.close && !early;
            conn->trace = NULL;
            ag__pool_release(c->pool, conn, keep);
            if (stored < 0) {
                ag__response_detail(r, "no memory to store a cookie the server set", NULL, NULL,
                                    NULL);
                return stored;
            }
            /* A server that refuses the expectation says 417: the same request again without
             * it, once, as RFC 9110 section 10.1.1 asks (a reader body still unread only). */
            if (r->status == 417 && f->asked_expect && !f->st.no_expect && !f->body_consumed) {
                f->st.no_expect = true;
                ag__response_reset(r);
                r->t.first_byte = r->t.sent = 0;
                continue;
            }
            r->t.done = ag_now_ns();
            return 0;
        }
        ag__parse_abandon(&ps);
        conn->trace = NULL;
        const char *tls_why = conn->why;
        ag__pool_release(c->pool, conn, false);
        /* A reused connection that failed before any response byte was most likely closed by
         * the server while idle: once, on a new connection. */
        bool stale =
            reused && !ps.got_bytes && (rc == AG_ECLOSED || rc == -ECONNRESET || rc == -EPIPE);
        if (stale && retry_ok && attempt == 0 && !f->body_consumed) {
            ag__response_reset(r);
            r->t.first_byte = r->t.sent = 0;
            continue;
        }
        if (!r->detail[0]) {
            const char *what = ps.why                     ? ps.why
                               : rc == AG_ETLS && tls_why ? tls_why
                                                          : ag_strerror(rc);
            ag__response_detail(r, ps.got_bytes ? "response from " : "exchange with ", r->peer,
                                ": ", what);
        }
        return rc;
    }
}

/* ---- redirects ---- */

static char *url_text(const ag__url *u)
{
    size_t ls = strlen(u->scheme), lt = strlen(u->target);
    size_t size = ls + 3 + strlen(u->host) + 2 + 1 + 5 + lt + 1;
    char *s = malloc(size);
    if (!s)
        return NULL;
    memcpy(s, u->scheme, ls);
    memcpy(s + ls, "://", 3);
    int n = ag__url_host_header(u, s + ls + 3, size - ls - 3);
    if (n < 0) {
        free(s);
        return NULL;
    }
    memcpy(s + ls + 3 + n, u->target, lt + 1);
    return s;
}

/* Turn the response in f->resp into the next request, as RFC 9110 section 15.4 and curl do. */
static int follow(fetch *f)
{
    ag_response *r = f->resp;
    const char *loc = ag_response_header(r, "Location");
    ag__url next;
    /* Spaces and raw non-ASCII bytes are escaped and followed; a control byte fails the
     * redirect with AG_EREDIRECT and the reason. */
    int rc = ag__url_resolve_location(&next, &f->url, loc);
    if (rc < 0) {
        if (rc != -ENOMEM)
            ag__response_detail(r, "redirect: ", next.why ? next.why : "unusable Location", NULL,
                                NULL);
        return rc == -ENOMEM ? rc : AG_EREDIRECT;
    }
    bool post = strcmp(f->st.method, "POST") == 0;
    if (((r->status == 301 || r->status == 302) && post) ||
        (r->status == 303 && strcmp(f->st.method, "HEAD") != 0)) {
        f->st.method = "GET";
        f->st.drop_body = true;
    }
    /* Credentials go to the request's own origin only (a Location's userinfo never gives
     * any: they were made once, from the request), unless the caller trusts every location. */
    if (!f->first.buf)
        f->first = f->url; /* kept for the comparison */
    else
        ag__url_free(&f->url);
    f->url = next;
    f->st.other_origin = !ag__same_origin(&f->url, &f->first);
    f->st.drop_auth = f->st.other_origin && !f->client->o.location_trusted;
    r->redirects++;
    ag__response_reset(r);
    ag__tls_info_unref(r->tls); /* the next connection says what it is */
    r->tls = NULL;
    memset(&r->t, 0, sizeof r->t);
    return 0;
}

static bool redirect_status(int s)
{
    return s == 301 || s == 302 || s == 303 || s == 307 || s == 308;
}

static int fetch_from(ag_client *c, const ag_request *req, ag_response **out, int64_t start);

int ag_fetch(ag_client *c, const ag_request *req, ag_response **out)
{
    return fetch_from(c, req, out, ag_now_ns());
}

/* One request whose time counts from start: the call of ag_fetch, or of ag_fetch_start. */
static int fetch_from(ag_client *c, const ag_request *req, ag_response **out, int64_t start)
{
    /* Nothing to hold an error in without a client or a request: the code alone tells. */
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!c || !req)
        return -EINVAL;
    ag_response *r = calloc(1, sizeof *r);
    *out = r;
    if (!r)
        return -ENOMEM;
    r->t.start = start;
    /* The wall clock at start: the monotonic clock says how long ago that was. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t wall = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - (ag_now_ns() - start);
    r->t.wall_start = wall;
    r->req_id = ++c->next_req_id;
    c->inflight++;
    fetch f = {.client = c, .req = req, .resp = r};
    const char *why = NULL;
    int rc = ag__request_check(req, &why);
    if (rc < 0) {
        ag__response_detail(r, why, NULL, NULL, NULL);
    } else {
        f.st.method = req->method ? req->method : "GET";
        f.st.close = ag__request_closes(req);
        int64_t total_ms = req->timeout_ms ? ms_clamp(req->timeout_ms) : c->o.total_timeout_ms;
        f.total_deadline = total_ms > 0 ? start + total_ms * 1000000 : -1;
        rc = ag__url_parse(&f.url, req->url);
        if (rc < 0 && f.url.why)
            ag__response_detail(r, f.url.why, NULL, NULL, NULL);
        if (rc == 0) {
            rc = ag__auth_make(req, &f.url, &f.auth, &why);
            if (rc < 0 && rc != -ENOMEM)
                ag__response_detail(r, why, NULL, NULL, NULL);
            f.st.auth = f.auth;
        }
    }
    while (rc == 0) {
        rc = exchange(&f);
        /* A redirect whose Location is missing, empty or only white space names nothing to
         * follow: the 3xx is the answer, as it is for a code that is not a redirect. */
        if (rc < 0 || req->no_redirects || !redirect_status(r->status) ||
            !ag__url_location_given(ag_response_header(r, "Location")))
            break;
        if (c->o.max_redirects == AG_NO_REDIRECTS)
            break;
        if (r->redirects >= c->o.max_redirects) {
            rc = AG_EREDIRECTS;
            break;
        }
        rc = follow(&f);
        if (rc == 0) {
            r->t.start = start;
            r->t.wall_start = wall;
        }
    }
    /* A response that cannot say where it came from is no whole answer. */
    if (f.url.buf && !(r->url = url_text(&f.url)) && rc == 0)
        rc = -ENOMEM;
    ag__url_free(&f.url);
    if (f.first.buf)
        ag__url_free(&f.first);
    if (f.auth) {
        OPENSSL_cleanse(f.auth, strlen(f.auth));
        free(f.auth);
    }
    r->error = rc;
    if (rc < 0 && !r->detail[0])
        ag__response_detail(r, ag_strerror(rc), NULL, NULL, NULL);
    if (!r->t.done)
        r->t.done = ag_now_ns();
    c->inflight--;
    return rc;
}

/* ---- callback style ---- */

typedef struct job {
    ag_client *client;
    ag_request req;
    ag_fetch_cb cb;
    void *arg;
    int64_t start;   /* when ag_fetch_start was called: the request's time counts from there */
    ag_tls_opts tls; /* a copy of the request's TLS settings, strings in tls_strs */
    char *tls_strs;
} job;

static void job_free(job *j)
{
    free(j->tls_strs);
    free(j);
}

static void job_main(void *arg)
{
    job *j = arg;
    ag_response *resp;
    /* fetch_from counts the request from here, before anything can yield: the job's own count,
     * taken when it was started, goes now so that a request counts once. No longer in flight
     * when its callback runs: the callback of the last request may free the client (nothing here
     * touches it afterwards). */
    j->client->inflight--;
    int rc = fetch_from(j->client, &j->req, &resp, j->start);
    j->cb(j->client, resp, rc, j->arg);
    job_free(j);
}

/* One allocation holds the job, the request and copies of everything it points to. */
static job *job_copy(const ag_request *req)
{
    size_t size = sizeof(job) + req->nheaders * sizeof(ag_header);
    const char *method = req->method ? req->method : "GET";
    size += strlen(method) + 1 + strlen(req->url) + 1;
    for (size_t i = 0; i < req->nheaders; i++)
        size += strlen(req->headers[i].name) + strlen(req->headers[i].value) + 2;
    const char *creds[] = {req->username, req->password, req->bearer};
    for (size_t i = 0; i < 3; i++)
        size += creds[i] ? strlen(creds[i]) + 1 : 0;
    if (req->body_kind == AG_BODY_MEMORY)
        size += (size_t)req->body_len;
    job *j = calloc(1, size);
    if (!j)
        return NULL;
    j->req = *req;
    ag_header *hs = (ag_header *)(j + 1);
    char *p = (char *)(hs + req->nheaders);
#define COPY(dst, src)                                                                             \
    do {                                                                                           \
        size_t n_ = strlen(src) + 1;                                                               \
        memcpy(p, src, n_);                                                                        \
        dst = p;                                                                                   \
        p += n_;                                                                                   \
    } while (0)
    COPY(j->req.method, method);
    COPY(j->req.url, req->url);
    for (size_t i = 0; i < req->nheaders; i++) {
        COPY(hs[i].name, req->headers[i].name);
        COPY(hs[i].value, req->headers[i].value);
    }
    if (req->username)
        COPY(j->req.username, req->username);
    if (req->password)
        COPY(j->req.password, req->password);
    if (req->bearer)
        COPY(j->req.bearer, req->bearer);
#undef COPY
    j->req.headers = req->nheaders ? hs : NULL;
    if (req->body_kind == AG_BODY_MEMORY && req->body) {
        memcpy(p, req->body, (size_t)req->body_len);
        j->req.body = p;
    }
    if (req->tls) {
        if (ag__tls_opts_copy(&j->tls, &j->tls_strs, req->tls) < 0) {
            free(j);
            return NULL;
        }
        j->req.tls = &j->tls;
    }
    return j;
}

int ag_fetch_start(ag_client *c, const ag_request *req, ag_fetch_cb cb, void *arg, ag_coro **handle)
{
    if (handle)
        *handle = NULL;
    if (!c || !req || !c->loop || !cb)
        return -EINVAL;
    const char *why;
    int rc = ag__request_check(req, &why); /* before copying: no NULL field may be followed */
    if (rc < 0)
        return rc;
    job *j = job_copy(req);
    if (!j)
        return -ENOMEM;
    j->client = c;
    j->cb = cb;
    j->arg = arg;
    j->start = ag_now_ns();
    /* Counted from now: the coroutine first runs at the loop's next iteration, and the client
     * must not be freed before. */
    c->inflight++;
    rc = ag_coro_spawn(c->loop, job_main, j, handle);
    if (rc < 0) {
        c->inflight--;
        job_free(j);
    }
    return rc;
}

int ag_client_resolve(ag_client *c, const char *host, ag_addr *out, size_t max, size_t *count)
{
    if (count)
        *count = 0;
    if (!c || !host || !*host || !count || (!out && max))
        return -EINVAL;
    c->inflight++; /* the client may not be freed under a lookup */
    int64_t deadline = after_ms(c->o.connect_timeout_ms), backoff = 0;
    ag__lookup lk;
    ag__addrs addrs;
    int rc;
    for (;;) {
        rc = ag__lookup_start(c->res, &lk, host, 0);
        if (rc < 0) {
            c->inflight--;
            return rc;
        }
        while (rc == 0 && !ag__lookup_done(&lk))
            rc = ag__lookup_wait(&lk, deadline);
        if (rc == -ETIMEDOUT)
            rc = AG_EDNS_TIMEOUT;
        if (rc == 0) {
            ag__lookup_addrs(&lk, &addrs);
            if (addrs.count == 0) {
                const char *why;
                rc = ag__lookup_error(&lk, &why);
            }
        }
        if (!no_fd(rc))
            break;
        /* No descriptor for a DNS socket: wait for one as a request does (there is no
         * connection to hand over), up to the connect timeout, then -EMFILE or -ENFILE. */
        ag__lookup_end(&lk);
        ag__conn *given;
        int w = ag__pool_fd_wait(c->pool, NULL, true, deadline, &backoff, &given);
        if (w < 0) {
            c->inflight--;
            return w == -ETIMEDOUT ? rc : w;
        }
    }
    if (rc == 0) {
        for (int i = 0; i < addrs.count && *count < max; i++) {
            ag_addr *a = &out[(*count)++];
            memset(a, 0, sizeof *a);
            if (addrs.addr[i].sa.sa_family == AF_INET) {
                a->family = 4;
                memcpy(a->addr, &addrs.addr[i].in.sin_addr, 4);
            } else {
                a->family = 6;
                memcpy(a->addr, &addrs.addr[i].in6.sin6_addr, 16);
            }
        }
    }
    ag__lookup_end(&lk);
    c->inflight--;
    return rc;
}
