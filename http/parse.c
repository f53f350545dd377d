/* parse.c: reading one response with http-parser, plus the checks its non-strict build leaves
 * out: the status line's shape, header names as tokens, clean field values, the framing named by
 * Transfer-Encoding, CRLF after chunk data, no body where none may be, a cap on 1xx responses,
 * and nothing after the response. */
#include "http/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static ag__parse *state(http_parser *p)
{
    return p->data;
}

static int fail(ag__parse *ps, int err)
{
    if (!ps->err)
        ps->err = err;
    return -1;
}

/* Fail with a reason the caller can show beside the code. */
static int refuse(ag__parse *ps, int err, const char *why)
{
    if (!ps->err)
        ps->why = why;
    return fail(ps, err);
}

/* ---- status line: "HTTP/1." DIGIT SP 3DIGIT [SP reason] [CR] LF, no bare CR ---- */

/* Any minor version is taken here: HTTP/1.2 to 1.9 are read as 1.1 (on_headers_complete). Any
 * three digits are taken too: what a code outside 100-599 means is decided there. */
static int status_line_check(const ag__parse *ps)
{
    const char *s = ps->sl;
    if (ps->sl_len < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' || s[8] != ' ')
        return AG_EPROTO;
    for (int i = 9; i < 12; i++)
        if (s[i] < '0' || s[i] > '9')
            return AG_EPROTO;
    if (ps->sl_len > 12 && s[12] != ' ' && s[12] != '\r')
        return AG_EPROTO;
    return 0;
}

/* Scan the raw bytes of a status line (and the first byte after it) as they arrive. */
static int status_line_scan(ag__parse *ps, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)data[i];
        if (ps->sl_after) {
            /* An obs-fold right after the status line continues no field. */
            if (c == ' ' || c == '\t')
                return AG_EPROTO;
            ps->sl_after = 0;
            ps->sl_active = false;
            return 0;
        }
        if (ps->sl_prev == '\r' && c != '\n')
            return AG_EPROTO; /* a bare CR */
        if (c == '\n') {
            /* LF alone ends the line too, a CR before it being ignored (RFC 9112 section 2.2),
             * as curl, browsers, Python and Go read it; http-parser's non-strict build reads
             * it so as well (s_res_status). The CR, if any, is in sl and checked there. */
            int rc = status_line_check(ps);
            if (rc < 0)
                return rc;
            ps->sl_after = 1;
            ps->sl_prev = 0;
            continue;
        }
        if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f)
            return AG_EPROTO;
        if (ps->sl_len < sizeof ps->sl)
            ps->sl[ps->sl_len] = (char)c;
        ps->sl_prev = (char)c;
        if (++ps->sl_len > 8192)
            return AG_ETOO_LARGE;
    }
    return 0;
}

/* ---- header fields ---- */

static ag__fields *fields(ag__parse *ps)
{
    return ps->trailers ? &ps->resp->trailers : &ps->resp->headers;
}

static int finish_field(ag__parse *ps)
{
    if (!ps->field_open)
        return 0;
    ag__fields *f = fields(ps);
    ps->field_open = false;
    if (!ps->in_value) {
        /* A name with no value callback: an empty value. */
        const char *name = f->buf + f->idx[f->n - 1];
        if (!ag__http_is_token(name, f->len - f->idx[f->n - 1]))
            return AG_EPROTO;
        if (ag__fields_end_name(f) < 0)
            return -ENOMEM;
    }
    if (ag__fields_end_value(f) < 0)
        return -ENOMEM;
    const char *name = f->buf + f->idx[f->n - 1];
    const char *value = name + strlen(name) + 1;
    if (!ag__http_is_field_value(value, strlen(value)))
        return AG_EPROTO;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    ag__parse *ps = state(p);
    ag__fields *f = fields(ps);
    int rc;
    if (!ps->field_open || ps->in_value) {
        if ((rc = finish_field(ps)) < 0)
            return fail(ps, rc);
        if (f->n >= ps->client->o.max_headers)
            return fail(ps, AG_ETOO_LARGE);
        if (ag__fields_begin(f) < 0)
            return fail(ps, -ENOMEM);
        ps->field_open = true;
        ps->in_value = false;
    }
    if (f->len + len > ps->client->o.max_header_bytes)
        return fail(ps, AG_ETOO_LARGE);
    if (ag__fields_append(f, at, len) < 0)
        return fail(ps, -ENOMEM);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    ag__parse *ps = state(p);
    ag__fields *f = fields(ps);
    if (!ps->field_open)
        return fail(ps, AG_EPROTO);
    /* http-parser does not check the first byte of a value: a NUL there would end the stored
     * value early and hide the rest from every later check. */
    if (memchr(at, 0, len))
        return refuse(ps, AG_EPROTO, "a NUL byte in a header field value");
    if (!ps->in_value) {
        const char *name = f->buf + f->idx[f->n - 1];
        if (!ag__http_is_token(name, f->len - f->idx[f->n - 1]))
            return fail(ps, AG_EPROTO); /* e.g. "Content-Length : 2" */
        if (ag__fields_end_name(f) < 0)
            return fail(ps, -ENOMEM);
        ps->in_value = true;
    }
    if (f->len + len > ps->client->o.max_header_bytes)
        return fail(ps, AG_ETOO_LARGE);
    if (ag__fields_append(f, at, len) < 0)
        return fail(ps, -ENOMEM);
    return 0;
}

/* ---- Transfer-Encoding (RFC 9112 section 6) ---- */

enum { TE_NONE, TE_CHUNKED, TE_CODED_CHUNKED, TE_CODED };

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Judge the Transfer-Encoding list of a head, all its field lines combined: TE_NONE without the
 * field, TE_CHUNKED for exactly one coding that is "chunked" (any case, no parameters), else
 * AG_EPROTO with *why set. http-parser's own reading of the field misses spellings the RFC
 * allows (white space, empty elements) and takes some it should refuse (chunked twice, or under
 * another coding), and it reads any other coding until the close: that would hand the framing or
 * the coded bytes over as the body. With codings (the client decodes), codings it can decode
 * may come before a final chunked (TE_CODED_CHUNKED), or make the whole list, the body then
 * ending at the close (TE_CODED, RFC 9112 section 6.3); any other coding is refused still.
 * Empty list elements are ignored (RFC 9110 section 5.6.1). */
static int te_judge(const ag__fields *h, bool codings, const char **why)
{
    bool present = false;
    unsigned chunked = 0, other = 0, known = 0;
    bool chunked_last = false;
    for (size_t i = 0; i < h->n; i++) {
        const char *name = h->buf + h->idx[i];
        if (strcasecmp(name, "Transfer-Encoding") != 0)
            continue;
        present = true;
        const char *v = name + strlen(name) + 1;
        for (;;) {
            while (is_ows(*v))
                v++;
            const char *start = v;
            while (*v && *v != ',')
                v++;
            const char *end = v;
            while (end > start && is_ows(end[-1]))
                end--;
            if (end > start) {
                size_t len = (size_t)(end - start);
                chunked_last = len == 7 && strncasecmp(start, "chunked", 7) == 0;
                if (chunked_last) {
                    chunked++;
                } else {
                    other++;
                    known += codings && ag__decode_known(start, len);
                }
            }
            if (!*v)
                break;
            v++; /* the comma */
        }
    }
    if (!present)
        return TE_NONE;
    if (chunked == 1 && other == 0)
        return TE_CHUNKED;
    if (other && known == other && chunked == (chunked_last ? 1u : 0u))
        return chunked ? TE_CODED_CHUNKED : TE_CODED;
    if (chunked + other == 0)
        *why = "Transfer-Encoding names no coding";
    else if (chunked > 1)
        *why = "Transfer-Encoding names chunked more than once";
    else if (chunked && !chunked_last)
        *why = "Transfer-Encoding names a coding after chunked";
    else
        *why = "Transfer-Encoding names a coding other than chunked";
    return AG_EPROTO;
}

/* Where body bytes go, decoded or not: the request's sink. */
static int deliver(void *arg, const char *p, size_t n);

/* The decoder for a body: the Content-Encoding codings as listed (every field line, in order),
 * then the transfer codings before chunked, which were applied last. 0 with ps->dec NULL when
 * nothing is to be decoded (no coding, or only identity). */
static int decoder_make(ag__parse *ps, bool te_codings)
{
    const ag__fields *h = &ps->resp->headers;
    ag__decode_opts o = {
        .max_ratio = ps->client->o.max_decode_ratio, .out = deliver, .out_arg = ps};
    int rc = 0;
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        const char *want = pass == 0 ? "Content-Encoding" : "Transfer-Encoding";
        if (pass == 1 && !te_codings)
            break;
        for (size_t i = 0; i < h->n && rc == 0; i++) {
            const char *name = h->buf + h->idx[i];
            if (strcasecmp(name, want) != 0)
                continue;
            const char *v = name + strlen(name) + 1;
            if (!ps->dec && (rc = ag__decoder_new(&ps->dec, &o)) < 0)
                return rc;
            if (pass == 0) {
                rc = ag__decoder_add_list(ps->dec, v);
                continue;
            }
            /* te_judge let through only codings known here and chunked, which the parser
             * undoes itself. */
            for (const char *e = v; *e;) {
                while (*e == ',' || is_ows(*e))
                    e++;
                const char *start = e;
                while (*e && *e != ',')
                    e++;
                const char *end = e;
                while (end > start && is_ows(end[-1]))
                    end--;
                size_t len = (size_t)(end - start);
                if (len && !(len == 7 && strncasecmp(start, "chunked", 7) == 0) &&
                    (rc = ag__decoder_add(ps->dec, start, len)) < 0)
                    break;
            }
        }
    }
    if (rc == AG_EDECODE)
        ag__response_detail(ps->resp, "response from ", ps->resp->peer, ": ",
                            ag__decoder_why(ps->dec));
    if (rc == 0 && ps->dec && !ag__decoder_active(ps->dec)) {
        ag__decoder_free(ps->dec);
        ps->dec = NULL;
    }
    return rc;
}

static bool is_redirect(int status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* The reason phrase, which may come in pieces; what does not fit is cut. */
static int on_status(http_parser *p, const char *at, size_t len)
{
    ag_response *r = state(p)->resp;
    size_t have = strlen(r->reason), room = sizeof r->reason - 1 - have;
    if (len > room)
        len = room;
    memcpy(r->reason + have, at, len);
    r->reason[have + len] = 0;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    ag__parse *ps = state(p);
    int rc = finish_field(ps);
    if (rc < 0)
        return fail(ps, rc);
    ag_response *r = ps->resp;
    if (p->http_major != 1)
        return fail(ps, AG_EPROTO);
    /* A higher minor version than ours is read as ours (RFC 9110 section 2.5): HTTP/1.2 to 1.9
     * are HTTP/1.1 for every rule that follows, keep-alive and framing included, and the
     * response reports 1. http-parser reads the version from here on (http_should_keep_alive). */
    if (p->http_minor > 1)
        p->http_minor = 1;
    /* "000" would read as "no response" through ag_response_status: refused. */
    if (p->status_code == 0)
        return refuse(ps, AG_EPROTO, "status code 000");
    r->status = p->status_code;
    r->http_minor = p->http_minor;
    /* A code outside 100-599 is invalid, and a client should treat it as a 5xx (RFC 9110
     * section 15): it is delivered as sent, final (never interim, never followed), and a server
     * that breaks the status grammar is not trusted with the connection's next request. A code
     * inside the range that is not known is the x00 of its class: a 1xx is interim as 100 is,
     * a 3xx is not followed as 300 is not (only 301, 302, 303, 307 and 308 are). */
    if (r->status < 100 || r->status > 599)
        ps->must_close = true;
    /* No request asks for an upgrade: a 101 says the bytes that follow are another protocol, so
     * no further response can be read from them. */
    if (r->status == 101)
        return refuse(ps, AG_EPROTO, "101 Switching Protocols that no request asked for");
    const char *why = NULL;
    bool decode = ps->client->o.compressed && !ps->req->no_decode;
    int te = te_judge(&r->headers, decode, &why);
    if (te != TE_NONE) {
        /* HTTP/1.0 has no Transfer-Encoding: the sender may frame this message otherwise, and
         * what follows may be its rest (RFC 9112 section 6.1). */
        if (p->http_minor == 0)
            ps->must_close = true;
        /* http-parser refuses this pair when it sees both; this holds whatever it saw. */
        if (p->flags & F_CONTENTLENGTH)
            return refuse(ps, AG_EPROTO, "Transfer-Encoding together with Content-Length");
    }
    ps->trailers = true;
    if (ag__status_interim(r->status))
        return 1; /* interim: no body, the final response follows */
    /* The body of a redirect that will be followed is dropped; one whose Location names
     * nothing is the answer, and keeps it (client.c decides the same way). */
    ps->discard = ps->follow && is_redirect(r->status) &&
                  ag__url_location_given(ag__fields_get(&r->headers, "Location"));
    if (ps->head || r->status == 204 || r->status == 304)
        return 1; /* no body, whatever the framing headers say (a HEAD response may name codings) */
    if (te < 0)
        return refuse(ps, te, why);
    /* Our reading decides the framing; http-parser looks at this flag right after this call. */
    if (te == TE_CHUNKED || te == TE_CODED_CHUNKED)
        p->flags |= F_CHUNKED;
    else
        p->flags &= (uint8_t)~F_CHUNKED;
    if (te == TE_CODED)
        ps->must_close = true; /* the close ends the body */
    if (decode && !ps->discard &&
        (rc = decoder_make(ps, te == TE_CODED_CHUNKED || te == TE_CODED)) < 0)
        return fail(ps, rc);
    /* A coded body's length says nothing of its decoded size: that is checked as it decodes. */
    if (!ps->discard && !ps->dec && ps->req->sink == AG_SINK_MEMORY &&
        (p->flags & F_CONTENTLENGTH) && !(p->flags & F_CHUNKED) &&
        p->content_length > ps->client->o.max_body_bytes)
        return fail(ps, AG_ETOO_LARGE); /* known too large before it arrives */
    return 0;
}

/* Another coroutine already waits on the sink fd (two bodies into one pipe): the loop keeps one
 * waiter per fd and direction, so this one tries again a millisecond later. 0, -ETIMEDOUT or
 * -ECANCELED. */
static int wait_behind(int64_t deadline)
{
    int64_t until = ag_now_ns() + 1000000;
    if (deadline >= 0 && deadline < until)
        until = deadline;
    int rc = ag_sleep_until(until);
    if (rc == 0 && deadline >= 0 && ag_now_ns() >= deadline)
        return -ETIMEDOUT;
    return rc;
}

static int write_all_fd(int fd, const char *p, size_t n, int64_t deadline)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            int rc = ag_wait_fd(fd, AG_WRITE, deadline);
            if (rc == -EBUSY)
                rc = wait_behind(deadline);
            if (rc == -ETIMEDOUT)
                return AG_ETOTAL_TIMEOUT;
            if (rc < 0)
                return rc == -ECANCELED ? rc : AG_ESINK;
            continue;
        }
        if (w < 0)
            return AG_ESINK;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int deliver(void *arg, const char *at, size_t len)
{
    ag__parse *ps = arg;
    ag_response *r = ps->resp;
    uint64_t cap = ps->client->o.max_decoded_bytes;
    if (cap && r->decoded_bytes + len > cap) {
        ps->why = "body larger than max_decoded_bytes";
        return AG_ETOO_LARGE;
    }
    int rc = 0;
    switch (ps->req->sink) {
    case AG_SINK_MEMORY:
        rc = ag__body_append(r, at, len, ps->client->o.max_body_bytes);
        break;
    case AG_SINK_FD:
        rc = write_all_fd(ps->req->sink_fd, at, len, ps->deadline);
        break;
    case AG_SINK_CALLBACK:
        rc = ps->req->on_body(ps->req->on_body_arg, at, len) < 0 ? AG_ESINK : 0;
        break;
    case AG_SINK_DISCARD:
        break;
    }
    /* Counted once the sink took them: a piece refused by a cap is not part of the body. */
    if (rc == 0)
        r->decoded_bytes += len;
    return rc;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    ag__parse *ps = state(p);
    ag_response *r = ps->resp;
    ps->body_seen = true;
    r->body_bytes += len;
    if (ps->discard) {
        r->decoded_bytes += len; /* nothing is decoded: the same count */
        return 0;
    }
    if (!ps->dec) {
        int rc = deliver(ps, at, len);
        return rc < 0 ? fail(ps, rc) : 0;
    }
    int rc = ag__decoder_feed(ps->dec, at, len);
    if (rc == AG_EDECODE || rc == AG_EDECODE_RATIO)
        ag__response_detail(r, "response from ", r->peer, ": ", ag__decoder_why(ps->dec));
    return rc < 0 ? fail(ps, rc) : 0;
}

static int on_message_complete(http_parser *p)
{
    ag__parse *ps = state(p);
    int rc = finish_field(ps);
    if (rc < 0)
        return fail(ps, rc);
    if (ag__status_interim(ps->resp->status)) {
        /* An interim response is not the answer: forgotten at once, so that a request failing
         * before its final response (too many 1xx, a body that cannot be read after "100
         * Continue") reports no status and no fields rather than the 1xx's. */
        ps->resp->status = 0;
        ps->resp->http_minor = 0;
        ps->resp->reason[0] = 0;
        ag__fields_clear(&ps->resp->headers);
        ag__fields_clear(&ps->resp->trailers);
        ps->trailers = false;
        ps->in_value = false;
        if (++ps->interim > ps->client->o.max_interim)
            return fail(ps, AG_EPROTO);
    } else {
        /* A coded body that stopped before its stream's end is cut short, whatever the
         * framing said. */
        if (ps->dec && (rc = ag__decoder_finish(ps->dec)) < 0) {
            if (rc == AG_EDECODE)
                ag__response_detail(ps->resp, "response from ", ps->resp->peer, ": ",
                                    ag__decoder_why(ps->dec));
            return fail(ps, rc);
        }
        ps->done = true;
    }
    /* Stop here: what follows is either the final response (after a 1xx) or bytes nobody asked
     * for, and the caller decides which. */
    http_parser_pause(p, 1);
    return 0;
}

/* ---- framing: what the non-strict parser reads loosely, checked on the raw bytes ---- */

enum {
    FR_HEAD,       /* status line and fields: every CR followed by LF */
    FR_BODY,       /* a body framed by length or by the close: nothing to check */
    FR_SIZE,       /* chunk size digits */
    FR_EXT,        /* chunk extension up to CR */
    FR_SIZE_LF,    /* LF after the size line's CR */
    FR_DATA,       /* chunk data */
    FR_DATA_CR,    /* CR after chunk data */
    FR_DATA_LF,    /* LF after chunk data */
    FR_TRAILER0,   /* start of a trailer line (or of the final empty line) */
    FR_TRAILER,    /* inside a trailer line */
    FR_TRAILER_LF, /* LF after a trailer line's CR */
    FR_END_LF,     /* LF of the final empty line */
    FR_DONE,
};

#define MAX_CHUNK_EXT 4096

static void framing_reset(ag__parse *ps)
{
    ps->fr_state = FR_HEAD;
    ps->hsize = 0;
    ps->fr_prev = 0;
    ps->fr_ext = 0;
}

/* Check bytes the parser has just consumed. The parser decided the framing; this only refuses
 * what a strict reading would refuse: a bare CR in the head (including the empty line that ends
 * it; a bare LF ends a head line), a chunk size line not ending in CRLF or with a control byte or
 * an endless extension, chunk data not followed by CRLF, and trailer lines not ending in CRLF:
 * CRLF is the chunked grammar (RFC 9112 section 7.1), with no lone-LF allowance. */
/* A piece of a response head: counted, held to max_header_bytes, and collected for the trace
 * hook when it wants heads. last: the piece ends the head. The limit is on every byte of the
 * head: the fields alone stay small under a head of white space before a value, which the
 * parser skips, and the trace would hold all of it. */
static int head_piece(ag__parse *ps, const char *p, size_t n, bool last)
{
    ps->resp->header_bytes += n;
    ps->hsize += n;
    if (ps->hsize > ps->client->o.max_header_bytes)
        return AG_ETOO_LARGE;
    if (!ps->on_head)
        return 0;
    if (ps->hlost) {
        /* The rest of a head already lost: the next head is collected again. */
        ps->hlost = !last;
        return 0;
    }
    if (ps->hlen + n > ps->hcap) {
        /* The limit above bounds a head; a trace that cannot grow loses the head, never the
         * request. Lost whole: its tail alone would pass for a head. */
        size_t cap = ps->hcap ? ps->hcap : 1024;
        while (cap < ps->hlen + n)
            cap *= 2;
        char *nb = realloc(ps->hbuf, cap);
        if (!nb) {
            ps->hlen = 0;
            ps->hlost = !last;
            return 0;
        }
        ps->hbuf = nb;
        ps->hcap = cap;
    }
    memcpy(ps->hbuf + ps->hlen, p, n);
    ps->hlen += n;
    if (last) {
        ps->on_head(ps->on_head_arg, ps->hbuf, ps->hlen);
        ps->hlen = 0;
    }
    return 0;
}

static int framing_check(ag__parse *ps, const char *p, size_t n)
{
    /* Where the head's bytes in p begin, when p holds some. */
    size_t head_from = ps->fr_state == FR_HEAD ? 0 : SIZE_MAX;
    int rc;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        switch (ps->fr_state) {
        case FR_HEAD:
            /* A CR is always followed by LF; an LF alone ends a line as CRLF does (RFC 9112
             * section 2.2), the empty line that ends the head included. http-parser reads a
             * lone LF so in every head state (s_res_status, s_header_value,
             * s_header_value_discard_ws, s_header_field_start), and the head ends at the same
             * byte for both. It also reads a CR followed by any byte as CRLF in some states:
             * that bare CR is refused here. */
            if (ps->fr_prev == '\r' && c != '\n')
                return AG_EPROTO;
            ps->fr_prev = c;
            if (c == '\r')
                break;
            if (c != '\n') {
                ps->fr_ext = 1; /* the current line is not empty */
                break;
            }
            if (ps->fr_ext) {
                ps->fr_ext = 0; /* a line ended; the next starts empty */
                break;
            }
            /* The empty line: the head ends here, and the parser has seen the framing. */
            rc = head_piece(ps, p + head_from, i + 1 - head_from, true);
            if (rc < 0)
                return rc;
            head_from = SIZE_MAX;
            ps->fr_state =
                (ps->p.flags & F_CHUNKED) && !(ps->p.flags & F_SKIPBODY) ? FR_SIZE : FR_BODY;
            ps->fr_digits = 0;
            ps->fr_size_seen = false;
            ps->fr_left = 0;
            break;
        case FR_BODY:
        case FR_DONE:
            return 0;
        case FR_SIZE: {
            int v = ag__hex_value(c);
            if (v >= 0) {
                /* Leading zeros add nothing to the value: any number of them is taken (RFC 9112
                 * section 7.1 bounds the value, not the digits), and only the digits from the
                 * first non-zero one count against the 16 a 64-bit size holds. http-parser
                 * keeps its own, slightly lower, overflow bound on the value. */
                if ((ps->fr_left || v) && ++ps->fr_digits > 16)
                    return AG_EPROTO;
                /* The zeros count against the line's bound with its extension: an endless line
                 * of zeros ends here, not at a total timeout the caller may not have set. */
                if (++ps->fr_ext > MAX_CHUNK_EXT)
                    return AG_EPROTO;
                ps->fr_left = ps->fr_left * 16 + (uint64_t)v;
                ps->fr_size_seen = true;
            } else if (ps->fr_size_seen && c == '\r') {
                ps->fr_state = FR_SIZE_LF;
            } else if (ps->fr_size_seen && (c == ';' || c == ' ' || c == '\t')) {
                ps->fr_state = FR_EXT;
            } else {
                return AG_EPROTO;
            }
            break;
        }
        case FR_EXT:
            if (c == '\r') {
                ps->fr_state = FR_SIZE_LF;
            } else if (((unsigned char)c < 0x20 && c != '\t') || c == 0x7f ||
                       ++ps->fr_ext > MAX_CHUNK_EXT) {
                return AG_EPROTO;
            }
            break;
        case FR_SIZE_LF:
            if (c != '\n')
                return AG_EPROTO;
            ps->fr_state = ps->fr_left ? FR_DATA : FR_TRAILER0;
            break;
        case FR_DATA: {
            size_t skip = n - i < ps->fr_left ? n - i : (size_t)ps->fr_left;
            ps->fr_left -= skip;
            i += skip - 1;
            if (ps->fr_left == 0)
                ps->fr_state = FR_DATA_CR;
            break;
        }
        case FR_DATA_CR:
            if (c != '\r')
                return AG_EPROTO;
            ps->fr_state = FR_DATA_LF;
            break;
        case FR_DATA_LF:
            if (c != '\n')
                return AG_EPROTO;
            ps->fr_state = FR_SIZE;
            ps->fr_digits = 0;
            ps->fr_size_seen = false;
            ps->fr_ext = 0;
            break;
        case FR_TRAILER0:
            ps->fr_state = c == '\r' ? FR_END_LF : FR_TRAILER;
            if (c == '\n')
                return AG_EPROTO;
            break;
        case FR_TRAILER:
            if (c == '\n')
                return AG_EPROTO;
            if (c == '\r')
                ps->fr_state = FR_TRAILER_LF;
            break;
        case FR_TRAILER_LF:
            if (c != '\n')
                return AG_EPROTO;
            ps->fr_state = FR_TRAILER0;
            break;
        case FR_END_LF:
            if (c != '\n')
                return AG_EPROTO;
            ps->fr_state = FR_DONE;
            break;
        }
    }
    if (head_from != SIZE_MAX && head_from < n)
        return head_piece(ps, p + head_from, n - head_from, false);
    return 0;
}

static const http_parser_settings settings = {
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void ag__parse_init(ag__parse *ps, const ag_client *client, const ag_request *req,
                    ag_response *resp, bool head, bool follow)
{
    memset(ps, 0, sizeof *ps);
    http_parser_init(&ps->p, HTTP_RESPONSE);
    ps->p.data = ps;
    ps->client = client;
    ps->req = req;
    ps->resp = resp;
    ps->head = head;
    ps->follow = follow;
    ps->sl_active = true;
    ps->deadline = -1;
    framing_reset(ps);
}

void ag__parse_end(ag__parse *ps)
{
    ag__decoder_free(ps->dec);
    ps->dec = NULL;
    free(ps->hbuf);
    ps->hbuf = NULL;
    ps->hlen = ps->hcap = 0;
}

void ag__parse_abandon(ag__parse *ps)
{
    /* A reason read from a status line whose head was refused or cut short belongs to no
     * status: the caller sees status 0 and no reason. */
    if (!ps->resp->status)
        ps->resp->reason[0] = 0;
    if (!ps->field_open)
        return;
    ag__fields *f = fields(ps);
    f->n--;
    f->len = f->idx[f->n];
    ps->field_open = false;
}

static int parser_error(ag__parse *ps)
{
    if (ps->err)
        return ps->err;
    enum http_errno e = HTTP_PARSER_ERRNO(&ps->p);
    if (e == HPE_INVALID_EOF_STATE)
        return AG_ETRUNCATED; /* the response began but did not end */
    /* http-parser checks this pair before the head is handed over. */
    if (e == HPE_UNEXPECTED_CONTENT_LENGTH && ps->p.uses_transfer_encoding)
        ps->why = "Transfer-Encoding together with Content-Length";
    else if (e == HPE_UNEXPECTED_CONTENT_LENGTH)
        ps->why = "Content-Length given twice";
    return AG_EPROTO;
}

int ag__parse_feed(ag__parse *ps, const char *data, size_t len)
{
    if (len == 0) {
        /* End of stream: completes a body delimited by the close, or it is an error. */
        if (!ps->got_bytes)
            return AG_ECLOSED;
        if (ps->sl_active)
            return AG_ETRUNCATED;
        http_parser_execute(&ps->p, &settings, NULL, 0);
        if (ps->done)
            return 1;
        return HTTP_PARSER_ERRNO(&ps->p) == HPE_OK ? AG_ETRUNCATED : parser_error(ps);
    }
    ps->got_bytes = true;
    size_t off = 0;
    while (off < len) {
        if (ps->sl_active) {
            int rc = status_line_scan(ps, data + off, len - off);
            if (rc < 0)
                return rc;
        }
        size_t n = http_parser_execute(&ps->p, &settings, data + off, len - off);
        enum http_errno e = HTTP_PARSER_ERRNO(&ps->p);
        if (e == HPE_OK || e == HPE_PAUSED) {
            int rc = framing_check(ps, data + off, n);
            if (rc < 0)
                return rc;
        } else if (ps->err && ps->body_seen) {
            /* Our body callback stopped the parser (a body the decoder or the sink refused):
             * the head before it was accepted, and is still counted and traced, whatever the
             * framing of the rest says. A head refused itself is not. */
            framing_check(ps, data + off, n);
        }
        off += n;
        if (e == HPE_PAUSED) {
            if (ps->done) {
                ps->extra = off < len;
                return 1;
            }
            /* After a 1xx: the next message starts with a status line of its own. */
            http_parser_pause(&ps->p, 0);
            ps->sl_active = true;
            ps->sl_len = 0;
            ps->sl_after = 0;
            ps->sl_prev = 0;
            framing_reset(ps);
            continue;
        }
        if (e != HPE_OK)
            return parser_error(ps);
        if (ps->p.upgrade)
            return AG_EPROTO; /* no upgrade was asked for */
        break;
    }
    return 0;
}
