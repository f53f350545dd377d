/* response.c: the response object: header and trailer fields, the in-memory body, accessors. */
#include "http/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 256;
    while (n < need)
        n *= 2;
    char *b = realloc(*buf, n);
    if (!b)
        return -ENOMEM;
    *buf = b;
    *cap = n;
    return 0;
}

int ag__fields_begin(ag__fields *f)
{
    if (f->n == f->idx_cap) {
        size_t n = f->idx_cap ? f->idx_cap * 2 : 16;
        uint32_t *idx = realloc(f->idx, n * sizeof *idx);
        if (!idx)
            return -ENOMEM;
        f->idx = idx;
        f->idx_cap = n;
    }
    f->idx[f->n++] = (uint32_t)f->len;
    return 0;
}

int ag__fields_append(ag__fields *f, const char *p, size_t n)
{
    if (reserve(&f->buf, &f->cap, f->len + n + 1) < 0)
        return -ENOMEM;
    memcpy(f->buf + f->len, p, n);
    f->len += n;
    return 0;
}

int ag__fields_end_name(ag__fields *f)
{
    if (reserve(&f->buf, &f->cap, f->len + 1) < 0)
        return -ENOMEM;
    f->buf[f->len++] = 0;
    return 0;
}

int ag__fields_end_value(ag__fields *f)
{
    /* Trailing white space is not part of a field value (RFC 9110 section 5.5). */
    const char *name = f->buf + f->idx[f->n - 1];
    size_t vstart = f->idx[f->n - 1] + strlen(name) + 1;
    while (f->len > vstart && (f->buf[f->len - 1] == ' ' || f->buf[f->len - 1] == '\t'))
        f->len--;
    return ag__fields_end_name(f);
}

void ag__fields_clear(ag__fields *f)
{
    f->len = 0;
    f->n = 0;
}

void ag__fields_free(ag__fields *f)
{
    free(f->buf);
    free(f->idx);
    memset(f, 0, sizeof *f);
}

static int field_at(const ag__fields *f, size_t i, const char **name, const char **value)
{
    if (i >= f->n)
        return -ERANGE;
    const char *n = f->buf + f->idx[i];
    if (name)
        *name = n;
    if (value)
        *value = n + strlen(n) + 1;
    return 0;
}

const char *ag__fields_get(const ag__fields *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++) {
        const char *n = f->buf + f->idx[i];
        if (strcasecmp(n, name) == 0)
            return n + strlen(n) + 1;
    }
    return NULL;
}

void ag__response_reset(ag_response *r)
{
    r->status = 0;
    r->http_minor = 0;
    r->reason[0] = 0;
    ag__fields_clear(&r->headers);
    ag__fields_clear(&r->trailers);
    r->body_len = 0;
    r->body_bytes = 0;
    r->decoded_bytes = 0;
    if (r->body)
        r->body[0] = 0;
}

int ag__body_append(ag_response *r, const char *p, size_t n, size_t cap)
{
    if (r->body_len + n > cap)
        return AG_ETOO_LARGE;
    if (reserve(&r->body, &r->body_cap, r->body_len + n + 1) < 0)
        return -ENOMEM;
    memcpy(r->body + r->body_len, p, n);
    r->body_len += n;
    r->body[r->body_len] = 0;
    return 0;
}

void ag_response_free(ag_response *r)
{
    if (!r)
        return;
    ag__fields_free(&r->headers);
    ag__fields_free(&r->trailers);
    free(r->body);
    free(r->url);
    ag__tls_info_unref(r->tls);
    free(r);
}

int ag_response_error(const ag_response *r)
{
    return r->error;
}

int ag_response_status(const ag_response *r)
{
    return r->status;
}

int ag_response_http_minor(const ag_response *r)
{
    return r->http_minor;
}

const char *ag_response_header(const ag_response *r, const char *name)
{
    return ag__fields_get(&r->headers, name);
}

size_t ag_response_header_count(const ag_response *r)
{
    return r->headers.n;
}

int ag_response_header_at(const ag_response *r, size_t i, const char **name, const char **value)
{
    return field_at(&r->headers, i, name, value);
}

size_t ag_response_trailer_count(const ag_response *r)
{
    return r->trailers.n;
}

int ag_response_trailer_at(const ag_response *r, size_t i, const char **name, const char **value)
{
    return field_at(&r->trailers, i, name, value);
}

const char *ag_response_body(const ag_response *r, size_t *len)
{
    if (len)
        *len = r->body_len;
    return r->body ? r->body : "";
}

uint64_t ag_response_body_bytes(const ag_response *r)
{
    return r->body_bytes;
}

uint64_t ag_response_decoded_bytes(const ag_response *r)
{
    return r->decoded_bytes;
}

uint64_t ag_response_header_bytes(const ag_response *r)
{
    return r ? r->header_bytes : 0;
}

unsigned ag_response_connects(const ag_response *r)
{
    return r ? r->connects : 0;
}

const char *ag_response_reason(const ag_response *r)
{
    return r ? r->reason : "";
}

void ag_response_timings(const ag_response *r, ag_timings *out)
{
    *out = r->t;
}

int ag_response_reused(const ag_response *r)
{
    return r->reused;
}

uint64_t ag_response_conn_id(const ag_response *r)
{
    return r->conn_id;
}

const char *ag_response_peer(const ag_response *r)
{
    return r->peer;
}

const char *ag_response_local(const ag_response *r)
{
    /* ag_fetch leaves no response when memory ran out: the newer accessors take NULL. */
    return r ? r->local : "";
}

const char *ag_response_url(const ag_response *r)
{
    return r->url ? r->url : "";
}

unsigned ag_response_redirects(const ag_response *r)
{
    return r->redirects;
}

void ag__response_detail(ag_response *r, const char *a, const char *b, const char *c, const char *d)
{
    const char *parts[4] = {a, b, c, d};
    size_t n = 0;
    for (int i = 0; i < 4 && parts[i]; i++) {
        for (const char *p = parts[i]; *p && n + 1 < sizeof r->detail; p++)
            r->detail[n++] = *p;
    }
    r->detail[n] = 0;
}

const char *ag_response_error_detail(const ag_response *r)
{
    return r ? r->detail : "";
}

uint64_t ag_response_request_id(const ag_response *r)
{
    return r ? r->req_id : 0;
}

int ag_response_tls(const ag_response *r, ag_tls_info *out)
{
    if (!r || !out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    const ag__tls_info *i = r->tls;
    if (!i)
        return -ENOENT;
    out->version = i->version;
    out->cipher = i->cipher;
    out->alpn = i->alpn;
    out->resumed = i->resumed;
    out->verified = i->verified;
    out->subject = i->subject;
    out->issuer = i->issuer;
    out->not_before = i->not_before;
    out->not_after = i->not_after;
    return 0;
}
