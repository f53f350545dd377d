/* request.c: checking a request and writing it: the head and a small body leave in one write. */
#include "http/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <unistd.h>

#define SMALL_BODY (64 * 1024) /* a file body up to this size goes out with the head */

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

int ag__request_check(const ag_request *req)
{
    const char *m = req->method ? req->method : "GET";
    if (!ag__http_is_token(m, strlen(m)) || (req->nheaders && !req->headers))
        return AG_EHEADER;
    for (size_t i = 0; i < req->nheaders; i++) {
        const ag_header *h = &req->headers[i];
        if (!h->name || !h->value || !ag__http_is_token(h->name, strlen(h->name)) ||
            !ag__http_is_field_value(h->value, strlen(h->value)))
            return AG_EHEADER;
        /* asyncget frames the body itself; a caller's framing header would contradict it. */
        if (strcasecmp(h->name, "Transfer-Encoding") == 0)
            return AG_EHEADER;
    }
    if (req->body_len && !req->body && req->body_fd < 0)
        return AG_EBODY;
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
    /* A redirect to another origin gets no credentials, and the Host of the new origin. */
    if (st->drop_auth &&
        (strcasecmp(h->name, "Authorization") == 0 || strcasecmp(h->name, "Cookie") == 0 ||
         strcasecmp(h->name, "Proxy-Authorization") == 0 || strcasecmp(h->name, "Host") == 0))
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
    puts_(h, "Host: ");
    if (url->ipv6)
        put(h, "[", 1);
    puts_(h, url->host);
    if (url->ipv6)
        put(h, "]", 1);
    uint16_t dflt = strcmp(url->scheme, "https") == 0 ? 443 : 80;
    if (url->port != dflt) {
        put(h, ":", 1);
        put_u64(h, url->port);
    }
    put(h, "\r\n", 2);
}

static void build_head(head *h, ag_client *client, const ag__url *url, const ag_request *req,
                       const ag__req_state *st, size_t body_len, bool has_body)
{
    puts_(h, st->method);
    put(h, " ", 1);
    puts_(h, url->target);
    put(h, " HTTP/1.1\r\n", 11);
    if (!user_has(req, "Host") || st->drop_auth)
        put_host(h, url);
    if (!user_has(req, "User-Agent"))
        put_field(h, "User-Agent", client->ua);
    if (!user_has(req, "Accept"))
        put_field(h, "Accept", "*/*");
    if (has_body) {
        puts_(h, "Content-Length: ");
        put_u64(h, body_len);
        put(h, "\r\n", 2);
    }
    for (size_t i = 0; i < req->nheaders; i++) {
        const ag_header *f = &req->headers[i];
        if (!dropped(f, st))
            put_field(h, f->name, f->value);
    }
    put(h, "\r\n", 2);
}

static int send_file_body(ag__conn *conn, int fd, size_t len, const ag__deadline *d)
{
    size_t cap = len < SMALL_BODY ? len : SMALL_BODY;
    char *buf = malloc(cap ? cap : 1);
    if (!buf)
        return -ENOMEM;
    int rc = 0;
    for (size_t off = 0; off < len && rc == 0;) {
        size_t want = len - off < cap ? len - off : cap;
        ssize_t r = pread(fd, buf, want, (off_t)off);
        if (r <= 0) {
            rc = AG_EBODY; /* the file is shorter than body_len, or unreadable */
            break;
        }
        struct iovec iov = {buf, (size_t)r};
        rc = ag__conn_writev(conn, &iov, 1, d);
        off += (size_t)r;
    }
    free(buf);
    return rc;
}

int ag__request_send(ag_client *client, ag__conn *conn, const ag__url *url, const ag_request *req,
                     const ag__req_state *st, const ag__deadline *d)
{
    bool has_body = !st->drop_body && (req->body_len > 0 || req->body || req->body_fd >= 0);
    size_t body_len = has_body ? req->body_len : 0;
    /* Methods that carry a body get Content-Length: 0 when empty, as curl and browsers do. */
    if (!has_body && !st->drop_body &&
        (strcmp(st->method, "POST") == 0 || strcmp(st->method, "PUT") == 0 ||
         strcmp(st->method, "PATCH") == 0))
        has_body = true;

    head h = {NULL, 0};
    build_head(&h, client, url, req, st, body_len, has_body);
    /* A small head is built on the stack, a large one on the heap: no allocation per request in
     * the usual case, and no extra stack page. */
    char stackbuf[512];
    char *heap = NULL;
    if (h.len > sizeof stackbuf && !(heap = malloc(h.len)))
        return -ENOMEM;
    h = (head){heap ? heap : stackbuf, 0};
    build_head(&h, client, url, req, st, body_len, has_body);

    struct iovec iov[2] = {{h.p, h.len}, {NULL, 0}};
    int rc;
    char *small = NULL;
    if (body_len && req->body) {
        iov[1].iov_base = (void *)req->body;
        iov[1].iov_len = body_len;
        rc = ag__conn_writev(conn, iov, 2, d);
    } else if (body_len && body_len <= SMALL_BODY) {
        small = malloc(body_len);
        ssize_t r = small ? pread(req->body_fd, small, body_len, 0) : -1;
        if (!small) {
            rc = -ENOMEM;
        } else if (r != (ssize_t)body_len) {
            rc = AG_EBODY;
        } else {
            iov[1].iov_base = small;
            iov[1].iov_len = body_len;
            rc = ag__conn_writev(conn, iov, 2, d);
        }
    } else {
        rc = ag__conn_writev(conn, iov, 1, d);
        if (rc == 0 && body_len)
            rc = send_file_body(conn, req->body_fd, body_len, d);
    }
    free(small);
    free(heap);
    return rc;
}
