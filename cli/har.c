/* har.c: --har, every request as an HTTP Archive 1.2 entry, written as it completes (the document
 * is opened by cli_har_open and closed by cli_har_close, so memory does not grow with the run). */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

struct cli_har {
    int fd;
    bool own_fd;
    int err;      /* the first write failure (negative errno): later writes are skipped */
    bool dropped; /* an entry was left out for want of memory */
    uint64_t entries;
    pthread_mutex_t mu;
};

/* Write p whole, or remember why not; called with mu held. */
static void put_all(cli_har *h, const char *p, size_t n)
{
    while (n > 0 && !h->err) {
        ssize_t w = write(h->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            h->err = w < 0 ? -errno : -EIO;
            break;
        }
        p += w;
        n -= (size_t)w;
    }
}

int cli_har_open(cli_har **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    cli_har *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    h->fd = 1;
    if (path && strcmp(path, "-") != 0) {
        h->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (h->fd < 0) {
            int e = errno;
            snprintf(err, errlen, "cannot open %s: %s", path, strerror(e));
            free(h);
            return -e;
        }
        h->own_fd = true;
    }
    pthread_mutex_init(&h->mu, NULL);
    cli_buf b = {0};
    cli_buf_puts(&b,
                 "{\"log\":{\"version\":\"1.2\",\"creator\":{\"name\":\"asyncget\",\"version\":");
    cli_json_cstr(&b, ag_version());
    cli_buf_puts(&b, "},\"entries\":[");
    if (b.oom)
        h->err = -ENOMEM;
    else
        put_all(h, b.p, b.len);
    cli_buf_free(&b);
    if (h->err) {
        snprintf(err, errlen, "cannot write %s: %s", path ? path : "-", strerror(-h->err));
        int e = h->err;
        if (h->own_fd)
            close(h->fd);
        pthread_mutex_destroy(&h->mu);
        free(h);
        return e;
    }
    *out = h;
    return 0;
}

int cli_har_close(cli_har *h)
{
    if (!h)
        return 0;
    static const char end[] = "\n]}}\n";
    put_all(h, end, sizeof end - 1);
    int rc = h->err ? h->err : h->dropped ? -ENOMEM : 0;
    if (h->own_fd && close(h->fd) < 0 && !rc)
        rc = -errno;
    pthread_mutex_destroy(&h->mu);
    free(h);
    return rc;
}

/* ---- heads ---------------------------------------------------------------------------------- */

/* The next line of [*p, end) without its CR LF (or bare LF); false at the end or at the empty
 * line that ends a head. */
static bool next_line(const char **p, const char *end, const char **line, size_t *len)
{
    if (*p >= end)
        return false;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    const char *e = nl ? nl : end;
    *line = *p;
    *len = (size_t)(e - *p);
    if (*len > 0 && (*line)[*len - 1] == '\r')
        (*len)--;
    *p = nl ? nl + 1 : end;
    return *len > 0;
}

/* The length of the head at the start of [p, p+n): up to and including its empty line, or all of
 * it when the empty line is missing. */
static size_t head_len(const char *p, size_t n)
{
    const char *q = p, *end = p + n, *line;
    size_t len;
    while (next_line(&q, end, &line, &len))
        ;
    return (size_t)(q - p);
}

/* The last head of several back to back (interim responses before the final one). */
static void last_head(const char *p, size_t n, const char **hp, size_t *hn)
{
    *hp = p;
    *hn = n;
    size_t off = 0;
    while (off < n) {
        size_t len = head_len(p + off, n - off);
        if (len == 0)
            break;
        *hp = p + off;
        *hn = len;
        off += len;
    }
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

/* A field line split at its colon; a line without one is all name. */
static void split_field(const char *line, size_t len, const char **name, size_t *nlen,
                        const char **value, size_t *vlen)
{
    const char *colon = memchr(line, ':', len);
    *name = line;
    *nlen = colon ? (size_t)(colon - line) : len;
    *value = colon ? colon + 1 : line + len;
    *vlen = colon ? len - *nlen - 1 : 0;
    trim(name, nlen);
    trim(value, vlen);
}

/* The number a run of up to max decimal digits spells (the whole of [s, s+n)), or -1. The head
 * is not NUL-terminated: nothing here reads past n. */
static int64_t digits(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static bool name_is(const char *name, size_t nlen, const char *want)
{
    return nlen == strlen(want) && strncasecmp(name, want, nlen) == 0;
}

/* The head's fields as HAR's [{"name","value"}], in order, repeats kept. What the head says of
 * a few fields is returned for the entry's other members. */
struct fields {
    const char *location; /* NULL when absent */
    size_t location_len;
    const char *content_type;
    size_t content_type_len;
    int64_t content_length; /* -1 when absent */
    bool chunked;
};

static void put_headers(cli_buf *b, const char *head, size_t n, struct fields *f)
{
    const char *p = head, *end = head + n, *line;
    size_t len;
    memset(f, 0, sizeof *f);
    f->content_length = -1;
    cli_buf_putc(b, '[');
    bool first = true, start = true;
    while (next_line(&p, end, &line, &len)) {
        if (start) { /* the request or status line */
            start = false;
            continue;
        }
        const char *name, *value;
        size_t nlen, vlen;
        split_field(line, len, &name, &nlen, &value, &vlen);
        if (!first)
            cli_buf_putc(b, ',');
        first = false;
        cli_buf_puts(b, "{\"name\":");
        cli_json_str(b, name, nlen);
        cli_buf_puts(b, ",\"value\":");
        cli_json_str(b, value, vlen);
        cli_buf_putc(b, '}');
        if (name_is(name, nlen, "location") && !f->location) {
            f->location = value;
            f->location_len = vlen;
        } else if (name_is(name, nlen, "content-type") && !f->content_type) {
            f->content_type = value;
            f->content_type_len = vlen;
        } else if (name_is(name, nlen, "content-length")) {
            f->content_length = digits(value, vlen, 18);
        } else if (name_is(name, nlen, "transfer-encoding")) {
            f->chunked = true;
        }
    }
    cli_buf_putc(b, ']');
}

/* The first line of a head and its words: "GET /x HTTP/1.1" or "HTTP/1.1 200 OK". */
struct first_line {
    const char *w[3]; /* the third of a status line is the rest: the reason may have spaces */
    size_t n[3];
};

static void split_first(const char *head, size_t n, bool status_line, struct first_line *fl)
{
    const char *p = head, *line = head;
    size_t len = 0;
    memset(fl, 0, sizeof *fl);
    for (int i = 0; i < 3; i++)
        fl->w[i] = "";
    if (!next_line(&p, head + n, &line, &len))
        return;
    const char *s = line, *end = line + len;
    for (int i = 0; i < 3 && s < end; i++) {
        const char *sp = i == 2 && status_line ? NULL : memchr(s, ' ', (size_t)(end - s));
        const char *e = sp ? sp : end;
        fl->w[i] = s;
        fl->n[i] = (size_t)(e - s);
        s = sp ? sp + 1 : end;
    }
}

/* ---- URL ------------------------------------------------------------------------------------ */

static bool has_scheme(const char *u)
{
    size_t i = 0;
    if (!((u[0] >= 'a' && u[0] <= 'z') || (u[0] >= 'A' && u[0] <= 'Z')))
        return false;
    while (u[i] && (u[i] == '+' || u[i] == '-' || u[i] == '.' || (u[i] >= '0' && u[i] <= '9') ||
                    (u[i] >= 'a' && u[i] <= 'z') || (u[i] >= 'A' && u[i] <= 'Z')))
        i++;
    return u[i] == ':';
}

/* HAR's url is a URI: bytes that cannot appear in one (spaces, controls, non-ASCII, a few
 * delimiters) are percent-encoded, and a URL given without a scheme gets curl's guess, http. */
static void put_url(cli_buf *b, const char *url)
{
    static const char hex[] = "0123456789ABCDEF";
    cli_buf u = {0};
    if (!has_scheme(url))
        cli_buf_puts(&u, "http://");
    for (const unsigned char *s = (const unsigned char *)url; *s; s++) {
        if (*s <= 0x20 || *s >= 0x7f || strchr("\"<>\\^`{|}", *s)) {
            char esc[3] = {'%', hex[*s >> 4], hex[*s & 15]};
            cli_buf_put(&u, esc, 3);
        } else {
            cli_buf_putc(&u, (char)*s);
        }
    }
    cli_json_str(b, u.p ? u.p : "", u.len);
    cli_buf_free(&u);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A query parameter's name or value, percent-decoded (a malformed escape stays as it is). */
static void put_decoded(cli_buf *b, const char *s, size_t n)
{
    cli_buf d = {0};
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 &&
            (lo = hexval(s[i + 2])) >= 0) {
            cli_buf_putc(&d, (char)(hi << 4 | lo));
            i += 2;
        } else {
            cli_buf_putc(&d, s[i]);
        }
    }
    cli_json_str(b, d.p ? d.p : "", d.len);
    cli_buf_free(&d);
}

/* The URL's query (between '?' and '#') as [{"name","value"}]. */
static void put_query(cli_buf *b, const char *url)
{
    cli_buf_putc(b, '[');
    const char *q = strchr(url, '?');
    bool first = true;
    if (q) {
        const char *end = q + 1 + strcspn(q + 1, "#");
        for (const char *s = q + 1; s < end;) {
            const char *amp = memchr(s, '&', (size_t)(end - s));
            const char *e = amp ? amp : end;
            if (e > s) {
                const char *eq = memchr(s, '=', (size_t)(e - s));
                const char *ne = eq ? eq : e;
                if (!first)
                    cli_buf_putc(b, ',');
                first = false;
                cli_buf_puts(b, "{\"name\":");
                put_decoded(b, s, (size_t)(ne - s));
                cli_buf_puts(b, ",\"value\":");
                if (eq)
                    put_decoded(b, eq + 1, (size_t)(e - eq - 1));
                else
                    cli_buf_puts(b, "\"\"");
                cli_buf_putc(b, '}');
            }
            s = amp ? amp + 1 : end;
        }
    }
    cli_buf_putc(b, ']');
}

/* ---- timings -------------------------------------------------------------------------------- */

enum { P_BLOCKED, P_DNS, P_CONNECT, P_SSL, P_SEND, P_WAIT, P_RECEIVE, P_N };

/* HAR's phases (ns, -1 for one that did not happen) from the result's cumulative times. The
 * phases that happened add up to time_total exactly. A request that failed with no response gives
 * the time after its last completed phase to the phase it was in: the one its exit code names
 * (6 DNS, 7 connect, 35 and 60 TLS), else the first phase that never ended; the phases after it
 * did not happen. send is the time from pretransfer to the request's last byte written, wait
 * from there to the first byte of the answer. */
static void phases(const cli_result *r, int64_t d[P_N])
{
    const char *u = r->url_effective ? r->url_effective : r->url ? r->url : "";
    bool fresh = !r->reused;
    bool tls = fresh && (r->time_appconnect > 0 || strncasecmp(u, "https:", 6) == 0);
    bool used[P_N] = {true, fresh, fresh, tls, true, true, true};
    int64_t e[P_N] = {r->time_queue,
                      r->time_namelookup,
                      r->time_connect,
                      r->time_appconnect > 0 ? r->time_appconnect : r->time_connect,
                      r->time_sent > 0 ? r->time_sent : r->time_pretransfer,
                      r->time_starttransfer,
                      r->time_total};
    /* Cumulative times never go back; a result that says otherwise is clamped, not trusted. */
    if (e[0] < 0)
        e[0] = 0;
    for (int i = 1; i < P_N; i++)
        if (e[i] < e[i - 1])
            e[i] = e[i - 1];

    int stuck = P_N; /* the phase a failed request was in */
    if (r->http_code == 0 && (r->error || r->exitcode)) {
        switch (r->exitcode) {
        case 6:
            stuck = P_DNS;
            break;
        case 7:
            stuck = P_CONNECT;
            break;
        case 35:
        case 60:
            stuck = P_SSL;
            break;
        default:
            break;
        }
        if (stuck == P_N || !used[stuck]) {
            stuck = P_RECEIVE; /* a byte arrived but made no response */
            for (int i = P_DNS; i <= P_WAIT; i++) {
                if (used[i] && i != P_SEND && e[i - 1] == e[P_WAIT]) {
                    stuck = i;
                    break;
                }
            }
        }
    }

    int64_t prev = 0;
    for (int i = 0; i < P_N; i++) {
        bool optional = i == P_DNS || i == P_CONNECT || i == P_SSL;
        if (!used[i] || i > stuck) {
            d[i] = optional ? -1 : 0;
            continue;
        }
        int64_t end = i == stuck ? e[P_RECEIVE] : e[i];
        if (end < prev)
            end = prev;
        d[i] = end - prev;
        prev = end;
    }
}

static void put_ms(cli_buf *b, int64_t ns)
{
    if (ns < 0)
        cli_buf_puts(b, "-1");
    else
        cli_buf_printf(b, "%" PRId64 ".%06" PRId64, ns / 1000000, ns % 1000000);
}

static void put_timings(cli_buf *b, const cli_result *r)
{
    int64_t d[P_N];
    phases(r, d);
    /* HAR counts ssl inside connect. */
    int64_t connect = d[P_CONNECT];
    if (connect >= 0 && d[P_SSL] > 0)
        connect += d[P_SSL];
    cli_buf_puts(b, "\"timings\":{\"blocked\":");
    put_ms(b, d[P_BLOCKED]);
    cli_buf_puts(b, ",\"dns\":");
    put_ms(b, d[P_DNS]);
    cli_buf_puts(b, ",\"connect\":");
    put_ms(b, connect);
    cli_buf_puts(b, ",\"ssl\":");
    put_ms(b, d[P_SSL]);
    cli_buf_puts(b, ",\"send\":");
    put_ms(b, d[P_SEND]);
    cli_buf_puts(b, ",\"wait\":");
    put_ms(b, d[P_WAIT]);
    cli_buf_puts(b, ",\"receive\":");
    put_ms(b, d[P_RECEIVE]);
    cli_buf_putc(b, '}');
}

/* ---- the entry ------------------------------------------------------------------------------ */

/* serverIPAddress must be a bare IPv4 or IPv6 address: brackets and a port are dropped. */
static void put_ip(cli_buf *b, const char *ip)
{
    size_t n = strlen(ip);
    if (n >= 2 && ip[0] == '[') {
        const char *close = memchr(ip, ']', n);
        if (close) {
            cli_json_str(b, ip + 1, (size_t)(close - ip - 1));
            return;
        }
    }
    cli_json_str(b, ip, n);
}

static void put_request(cli_buf *b, const cli_result *r, const char *url, const char *head,
                        size_t len)
{
    struct first_line fl;
    struct fields f;
    split_first(head ? head : "", head ? len : 0, false, &fl);
    cli_buf_puts(b, "\"request\":{\"method\":");
    if (r->method)
        cli_json_cstr(b, r->method);
    else
        cli_json_str(b, fl.w[0], fl.n[0]);
    cli_buf_puts(b, ",\"url\":");
    put_url(b, url);
    cli_buf_puts(b, ",\"httpVersion\":");
    cli_json_str(b, fl.w[2], fl.n[2]);
    cli_buf_puts(b, ",\"cookies\":[],\"headers\":");
    put_headers(b, head ? head : "", head ? len : 0, &f);
    cli_buf_puts(b, ",\"queryString\":");
    put_query(b, url);
    if (head) {
        /* The body's size from its Content-Length; a chunked one is not known here. */
        int64_t body = f.chunked ? -1 : f.content_length > 0 ? f.content_length : 0;
        cli_buf_printf(b, ",\"headersSize\":%zu,\"bodySize\":%" PRId64 "}", len, body);
    } else {
        cli_buf_puts(b, ",\"headersSize\":-1,\"bodySize\":-1}");
    }
}

static void put_response(cli_buf *b, const cli_result *r, const char *all, size_t all_len)
{
    const char *head = NULL;
    size_t len = 0;
    if (all && all_len)
        last_head(all, all_len, &head, &len);
    struct first_line fl;
    struct fields f;
    split_first(head ? head : "", len, true, &fl);
    int status = r->http_code;
    if (!status && fl.n[1] == 3)
        status = (int)(digits(fl.w[1], 3, 3) < 0 ? 0 : digits(fl.w[1], 3, 3));
    cli_buf_printf(b, "\"response\":{\"status\":%d,\"statusText\":", status);
    cli_json_str(b, fl.w[2], fl.n[2]);
    cli_buf_puts(b, ",\"httpVersion\":");
    cli_json_str(b, fl.w[0], fl.n[0]);
    cli_buf_puts(b, ",\"cookies\":[],\"headers\":");
    put_headers(b, head ? head : "", len, &f);
    /* HAR 1.2: content.size is the body as delivered (decoded), bodySize what came on the wire,
     * compression the bytes the coding saved. */
    cli_buf_puts(b, ",\"content\":{\"size\":");
    cli_buf_printf(b, "%" PRIu64, head ? r->size_decoded : 0);
    if (head && r->size_decoded > r->size_download)
        cli_buf_printf(b, ",\"compression\":%" PRIu64, r->size_decoded - r->size_download);
    cli_buf_puts(b, ",\"mimeType\":");
    if (r->content_type)
        cli_json_cstr(b, r->content_type);
    else
        cli_json_str(b, f.content_type ? f.content_type : "", f.content_type_len);
    cli_buf_puts(b, "},\"redirectURL\":");
    cli_json_str(b, f.location ? f.location : "", f.location_len);
    if (head)
        cli_buf_printf(b, ",\"headersSize\":%zu,\"bodySize\":%" PRIu64 "}", len, r->size_download);
    else
        cli_buf_puts(b, ",\"headersSize\":-1,\"bodySize\":-1}");
}

void cli_har_add(cli_har *h, const cli_result *r, const char *req_head, size_t req_len,
                 const char *resp_head, size_t resp_len)
{
    if (!h || !r)
        return;
    const char *url = r->url_effective ? r->url_effective : r->url ? r->url : "";
    cli_buf b = {0};
    /* Every entry but the first follows a comma: the first is written from b.p + 1. */
    cli_buf_puts(&b, ",\n{\"startedDateTime\":");
    /* The field is required and must be a date: the epoch stands for a clock gone wrong. */
    cli_json_date(&b, r->start_wall_ns, true);
    cli_buf_puts(&b, ",\"time\":");
    put_ms(&b, r->time_total > 0 ? r->time_total : 0);
    cli_buf_putc(&b, ',');
    put_request(&b, r, url, req_len ? req_head : NULL, req_len);
    cli_buf_putc(&b, ',');
    put_response(&b, r, resp_head, resp_head ? resp_len : 0);
    cli_buf_puts(&b, ",\"cache\":{},");
    put_timings(&b, r);
    if (r->remote_ip && r->remote_ip[0]) {
        cli_buf_puts(&b, ",\"serverIPAddress\":");
        put_ip(&b, r->remote_ip);
    }
    if (r->conn_id)
        cli_buf_printf(&b, ",\"connection\":\"%" PRIu64 "\"", r->conn_id);
    if (r->errormsg) {
        cli_buf_puts(&b, ",\"comment\":");
        cli_json_cstr(&b, r->errormsg);
    }
    cli_buf_putc(&b, '}');

    pthread_mutex_lock(&h->mu);
    if (b.oom) {
        /* The entry is dropped whole, so the document stays valid; the run learns it at close. */
        h->dropped = true;
    } else {
        size_t skip = h->entries == 0 ? 1 : 0;
        put_all(h, b.p + skip, b.len - skip);
        h->entries++;
    }
    pthread_mutex_unlock(&h->mu);
    cli_buf_free(&b);
}
