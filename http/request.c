/* request.c: checking a request and writing it: the head and a small body leave in one write. */
#include "http/form.h"
#include "http/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <unistd.h>

/* Whether a Connection header value lists the "close" option. */
static bool lists_close(const char *v)
{
    for (const char *p = v; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        if (p - start == 5 && strncasecmp(start, "close", 5) == 0)
            return true;
    }
    return false;
}

bool ag__request_closes(const ag_request *req)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, "Connection") == 0 &&
            lists_close(req->headers[i].value))
            return true;
    return false;
}

int ag__request_check(const ag_request *req, const char **why)
{
#define BAD(code, text)                                                                            \
    do {                                                                                           \
        *why = text;                                                                               \
        return code;                                                                               \
    } while (0)
    const char *m = req->method ? req->method : "GET";
    if (!ag__http_is_token(m, strlen(m)))
        BAD(AG_EREQUEST, "method is not an HTTP token");
    /* CONNECT asks for a tunnel, which needs the proxy support that is not built: sent as an
     * ordinary request, its 2xx would leave a tunnel in the keep-alive pool. */
    if (strcmp(m, "CONNECT") == 0)
        BAD(AG_EREQUEST, "CONNECT is not supported (no proxy support yet)");
    if (!req->url)
        BAD(AG_EURL, "url is NULL");
    if (req->nheaders && !req->headers)
        BAD(AG_EREQUEST, "headers is NULL but nheaders is not 0");
    for (size_t i = 0; i < req->nheaders; i++) {
        const ag_header *h = &req->headers[i];
        if (!h->name || !h->value)
            BAD(AG_EHEADER, "a header name or value is NULL");
        if (!ag__http_is_token(h->name, strlen(h->name)))
            BAD(AG_EHEADER, "a header name is not an HTTP token");
        if (!ag__http_is_field_value(h->value, strlen(h->value)))
            BAD(AG_EHEADER, "a header value holds CR, LF, NUL or another control byte");
        /* asyncget frames the body itself; a caller's framing header would contradict it. */
        if (strcasecmp(h->name, "Transfer-Encoding") == 0)
            BAD(AG_EHEADER, "Transfer-Encoding is asyncget's to set");
        if (strcasecmp(h->name, "Expect") == 0)
            BAD(AG_EHEADER, "Expect is asyncget's to set (see expect_continue_size)");
    }
    switch (req->body_kind) {
    case AG_BODY_NONE:
        if (req->body || req->body_len)
            BAD(AG_EREQUEST, "body or body_len set but body_kind is AG_BODY_NONE");
        break;
    case AG_BODY_MEMORY:
        if (!req->body && req->body_len)
            BAD(AG_EREQUEST, "body is NULL but body_len is not 0");
        if (req->body_len > SIZE_MAX / 2)
            BAD(AG_EREQUEST, "body_len is larger than memory");
        break;
    case AG_BODY_FILE:
        if (req->body_fd < 0)
            BAD(AG_EREQUEST, "body_fd is negative");
        if (req->body_offset > INT64_MAX || req->body_len > INT64_MAX - req->body_offset)
            BAD(AG_EREQUEST, "body_offset + body_len is out of range");
        break;
    case AG_BODY_READER:
        if (!req->body_read)
            BAD(AG_EREQUEST, "body_read is NULL");
        break;
    case AG_BODY_FORM:
        if (!req->form)
            BAD(AG_EREQUEST, "form is NULL but body_kind is AG_BODY_FORM");
        break;
    default:
        BAD(AG_EREQUEST, "unknown body_kind");
    }
    switch (req->sink) {
    case AG_SINK_MEMORY:
    case AG_SINK_DISCARD:
        break;
    case AG_SINK_FD:
        if (req->sink_fd < 0)
            BAD(AG_EREQUEST, "sink_fd is negative");
        break;
    case AG_SINK_CALLBACK:
        if (!req->on_body)
            BAD(AG_EREQUEST, "on_body is NULL");
        break;
    default:
        BAD(AG_EREQUEST, "unknown sink");
    }
    if (req->timeout_ms < 0)
        BAD(AG_EREQUEST, "timeout_ms is negative");
    /* Reserved words become fields in later versions, where zero will mean their default: a
     * program that leaves garbage there now would change meaning under a newer library. */
    for (size_t i = 0; i < sizeof req->reserved / sizeof *req->reserved; i++)
        if (req->reserved[i])
            BAD(AG_EREQUEST, "reserved words are not zero (start from ag_request_init or {0})");
    const char *tls_why;
    if (ag__tls_opts_check(req->tls, &tls_why) < 0)
        BAD(AG_EREQUEST, tls_why);
#undef BAD
    return 0;
}

static bool user_has(const ag_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return true;
    return false;
}

static bool dropped(const ag_header *h, const ag__req_state *st)
{
    if (strcasecmp(h->name, "Content-Length") == 0)
        return true; /* always asyncget's own */
    /* A redirect to another origin gets the Host of the new origin, and no credentials unless
     * the caller trusts every location. */
    if (st->other_origin && strcasecmp(h->name, "Host") == 0)
        return true;
    if (st->drop_auth &&
        (strcasecmp(h->name, "Authorization") == 0 || strcasecmp(h->name, "Cookie") == 0 ||
         strcasecmp(h->name, "Proxy-Authorization") == 0))
        return true;
    if (st->drop_body && strncasecmp(h->name, "Content-", 8) == 0)
        return true;
    return false;
}

/* The head is laid out twice: once to count its bytes (p NULL), once into a buffer of exactly
 * that size. Nothing here may use deep library calls such as printf: it runs on coroutine
 * stacks, where every page touched stays resident while the request waits. */
typedef struct head {
    char *p;
    size_t len;
} head;

static void put(head *h, const char *s, size_t n)
{
    if (h->p)
        memcpy(h->p + h->len, s, n);
    h->len += n;
}

static void puts_(head *h, const char *s)
{
    put(h, s, strlen(s));
}

static void put_u64(head *h, uint64_t v)
{
    char num[24];
    put(h, num, ag__fmt_u64(num, v));
}

static void put_field(head *h, const char *name, const char *value)
{
    puts_(h, name);
    put(h, ": ", 2);
    puts_(h, value);
    put(h, "\r\n", 2);
}

static void put_host(head *h, const ag__url *url)
{
    /* Hosts are at most 255 bytes (the URL parser says so), plus brackets and a port. */
    char authority[272];
    int n = ag__url_host_header(url, authority, sizeof authority);
    puts_(h, "Host: ");
    put(h, authority, n > 0 ? (size_t)n : 0);
    put(h, "\r\n", 2);
}

/* One Cookie field (RFC 6265 section 5.4 wants no more): the caller's own Cookie values that
 * still go, in their order, then the jar's, joined with "; ". */
static void put_cookie(head *h, const ag_request *req, const ag__req_state *st)
{
    puts_(h, "Cookie: ");
    for (size_t i = 0; i < req->nheaders; i++) {
        const ag_header *f = &req->headers[i];
        if (strcasecmp(f->name, "Cookie") != 0 || dropped(f, st))
            continue;
        /* "a=1;" or "a=1; " would give an empty pair once joined. */
        size_t n = strlen(f->value);
        while (n && (f->value[n - 1] == ';' || f->value[n - 1] == ' ' || f->value[n - 1] == '\t'))
            n--;
        if (!n)
            continue;
        put(h, f->value, n);
        put(h, "; ", 2);
    }
    puts_(h, st->jar_cookie);
    put(h, "\r\n", 2);
}

static void build_head(head *h, ag_client *client, const ag__url *url, const ag_request *req,
                       const ag__req_state *st, const ag__body_plan *bp)
{
    puts_(h, st->method);
    put(h, " ", 1);
    puts_(h, url->target);
    put(h, " HTTP/1.1\r\n", 11);
    if (!user_has(req, "Host") || st->other_origin)
        put_host(h, url);
    if (!user_has(req, "User-Agent"))
        put_field(h, "User-Agent", client->ua);
    if (!user_has(req, "Accept"))
        put_field(h, "Accept", "*/*");
    /* What the client decodes (parse.c), unless the caller asked for something else. */
    if (client->o.compressed && !req->no_decode && ag_codings()[0] &&
        !user_has(req, "Accept-Encoding"))
        put_field(h, "Accept-Encoding", ag_codings());
    if (bp->chunked) {
        put_field(h, "Transfer-Encoding", "chunked");
    } else if (bp->content_length) {
        puts_(h, "Content-Length: ");
        put_u64(h, bp->len);
        put(h, "\r\n", 2);
    }
    if (bp->expect)
        put_field(h, "Expect", "100-continue");
    /* The request's own credentials, unless its headers name their own Authorization. */
    if (st->auth && !st->drop_auth && !user_has(req, "Authorization"))
        put_field(h, "Authorization", st->auth);
    if (bp->kind == AG_BODY_FORM && !user_has(req, "Content-Type"))
        put_field(h, "Content-Type", ag_form_content_type(req->form));
    for (size_t i = 0; i < req->nheaders; i++) {
        const ag_header *f = &req->headers[i];
        if (!dropped(f, st) && !(st->jar_cookie && strcasecmp(f->name, "Cookie") == 0))
            put_field(h, f->name, f->value);
    }
    if (st->jar_cookie)
        put_cookie(h, req, st);
    put(h, "\r\n", 2);
}

void ag__body_plan_make(ag__body_plan *bp, const ag_client *client, const ag_request *req,
                        const ag__req_state *st)
{
    memset(bp, 0, sizeof *bp);
    bp->kind = st->drop_body ? AG_BODY_NONE : req->body_kind;
    switch (bp->kind) {
    case AG_BODY_MEMORY:
    case AG_BODY_FILE:
        bp->len = req->body_len;
        bp->content_length = true;
        break;
    case AG_BODY_FORM:
        bp->len = ag_form_size(req->form);
        bp->content_length = true;
        break;
    case AG_BODY_READER:
        bp->chunked = true;
        break;
    default:
        /* Methods that carry a body get Content-Length: 0 when empty, as curl and browsers do. */
        bp->content_length =
            !st->drop_body && (strcmp(st->method, "POST") == 0 || strcmp(st->method, "PUT") == 0 ||
                               strcmp(st->method, "PATCH") == 0);
        break;
    }
    uint64_t limit = client->o.expect_continue_size;
    bp->expect = !st->no_expect && limit != AG_NO_EXPECT &&
                 ((bp->content_length && bp->len > limit) || bp->chunked);
}

int ag__request_head(ag_client *client, const ag__url *url, const ag_request *req,
                     const ag__req_state *st, const ag__body_plan *bp, char *buf, size_t size,
                     char **out, size_t *len)
{
    head h = {NULL, 0};
    build_head(&h, client, url, req, st, bp);
    char *heap = NULL;
    if (h.len > size && !(heap = malloc(h.len)))
        return -ENOMEM;
    h = (head){heap ? heap : buf, 0};
    build_head(&h, client, url, req, st, bp);
    *out = h.p;
    *len = h.len;
    return 0;
}

int ag__body_read(const ag_request *req, const ag__body_plan *bp, uint64_t off, char *buf,
                  size_t cap)
{
    if (bp->kind == AG_BODY_FILE) {
        uint64_t left = bp->len - off;
        size_t want = left < cap ? (size_t)left : cap;
        if (want == 0)
            return 0;
        ssize_t r;
        do
            r = pread(req->body_fd, buf, want, (off_t)(req->body_offset + off));
        while (r < 0 && errno == EINTR);
        /* A file shorter than body_len, or unreadable: the promised length cannot be sent. */
        return r <= 0 ? AG_EBODY : (int)r;
    }
    if (bp->kind == AG_BODY_FORM)
        return ag__form_read(req->form, off, buf, cap);
    ptrdiff_t r = req->body_read(req->body_read_arg, buf, cap);
    if (r < 0 || (size_t)r > cap)
        return AG_EBODY;
    return (int)r;
}
