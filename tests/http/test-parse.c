/* test-parse.c: the response parser on fixed byte strings, each fed whole and one byte at a
 * time: what http-parser's non-strict build accepts and asyncget refuses, bodies, trailers and
 * interim responses. */
#include "http/internal.h"
#include "tests/tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CRLF "\r\n"

typedef struct fixture {
    const char *name;
    const char *bytes;
    int eof;     /* the server closes after the bytes */
    int head;    /* the request was HEAD */
    int want_rc; /* 1: response complete, or a negative code */
    int want_status;
    const char *want_body;
    int want_extra; /* bytes followed the complete response */
} fixture;

/* Fixtures with a NUL byte inside, and their lengths. */
#define NUL_FIRST_IN_VALUE "HTTP/1.1 200 OK" CRLF "X-A: \0b" CRLF "Content-Length: 2" CRLF CRLF "ok"
#define NUL_IN_VALUE       "HTTP/1.1 200 OK" CRLF "X-A: a\0b" CRLF "Content-Length: 2" CRLF CRLF "ok"
#define NUL_FIRST_IN_TRAILER                                                                       \
    "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: chunked" CRLF CRLF "2" CRLF "ok" CRLF "0" CRLF      \
    "T:\0x" CRLF CRLF

static const fixture fixtures[] = {
    /* A plain response with a Content-Length body. */
    {"content_length", "HTTP/1.1 200 OK" CRLF "Content-Length: 2" CRLF CRLF "ok", 0, 0, 1, 200,
     "ok", 0},
    /* No reason phrase at all is valid. */
    {"no_reason", "HTTP/1.1 204" CRLF CRLF, 0, 0, 1, 204, "", 0},
    /* Chunked with an extension and trailers. */
    {"chunked_trailers",
     "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: chunked" CRLF CRLF "5" CRLF "hello" CRLF
     "6;ext=1" CRLF " world" CRLF "0" CRLF "X-Trailer: yes" CRLF CRLF,
     0, 0, 1, 200, "hello world", 0},
    /* A body delimited by the end of the connection. */
    {"until_close", "HTTP/1.1 200 OK" CRLF CRLF "to the end", 1, 0, 1, 200, "to the end", 0},
    /* HTTP/1.0 without a length: until close too. */
    {"http10", "HTTP/1.0 200 OK" CRLF CRLF "old", 1, 0, 1, 200, "old", 0},
    /* HEAD: Content-Length describes a body that is not sent. */
    {"head", "HTTP/1.1 200 OK" CRLF "Content-Length: 5" CRLF CRLF, 0, 1, 1, 200, "", 0},
    /* 204 and 304 never have a body: the bytes after the head are not one. */
    {"204_with_body", "HTTP/1.1 204 No Content" CRLF "Content-Length: 5" CRLF CRLF "hello", 0, 0, 1,
     204, "", 1},
    {"304_with_body", "HTTP/1.1 304 Not Modified" CRLF "Content-Length: 5" CRLF CRLF "hello", 0, 0,
     1, 304, "", 1},
    /* Interim responses are skipped, their headers forgotten. */
    {"one_1xx",
     "HTTP/1.1 103 Early Hints" CRLF "Link: </a>" CRLF CRLF "HTTP/1.1 200 OK" CRLF
     "Content-Length: 2" CRLF CRLF "ok",
     0, 0, 1, 200, "ok", 0},
    {"ten_1xx",
     "HTTP/1.1 100 Continue" CRLF CRLF "HTTP/1.1 100 Continue" CRLF CRLF
     "HTTP/1.1 100 Continue" CRLF CRLF "HTTP/1.1 100 Continue" CRLF CRLF
     "HTTP/1.1 100 Continue" CRLF CRLF "HTTP/1.1 100 Continue" CRLF CRLF
     "HTTP/1.1 100 Continue" CRLF CRLF "HTTP/1.1 100 Continue" CRLF CRLF
     "HTTP/1.1 100 Continue" CRLF CRLF "HTTP/1.1 100 Continue" CRLF CRLF "HTTP/1.1 200 OK" CRLF
     "Content-Length: 2" CRLF CRLF "ok",
     0, 0, 1, 200, "ok", 0},
    /* Eleven is one too many (max_interim 10). */
    {"eleven_1xx",
     "HTTP/1.1 100 Continue" CRLF CRLF "HTTP/1.1 100 Continue" CRLF CRLF
     "HTTP/1.1 100 Continue" CRLF CRLF "HTTP/1.1 100 Continue" CRLF CRLF
     "HTTP/1.1 100 Continue" CRLF CRLF "HTTP/1.1 100 Continue" CRLF CRLF
     "HTTP/1.1 100 Continue" CRLF CRLF "HTTP/1.1 100 Continue" CRLF CRLF
     "HTTP/1.1 100 Continue" CRLF CRLF "HTTP/1.1 100 Continue" CRLF CRLF
     "HTTP/1.1 100 Continue" CRLF CRLF "HTTP/1.1 200 OK" CRLF "Content-Length: 2" CRLF CRLF "ok",
     0, 0, AG_EPROTO, 0, NULL, 0},
    /* Bytes after a complete response are no next response. */
    {"extra_bytes", "HTTP/1.1 200 OK" CRLF "Content-Length: 2" CRLF CRLF "okHTTP/1.1 200 OK", 0, 0,
     1, 200, "ok", 1},
    /* Status "5": not three digits. */
    {"status_one_digit", "HTTP/1.1 5 OK" CRLF "Content-Length: 2" CRLF CRLF "ok", 0, 0, AG_EPROTO,
     0, NULL, 0},
    /* Four digits. */
    {"status_four_digits", "HTTP/1.1 2000 OK" CRLF CRLF, 0, 0, AG_EPROTO, 0, NULL, 0},
    /* Outside 100-599: delivered as sent, final (test-framing.c has the rest of the rule). */
    {"status_999", "HTTP/1.1 999 Weird" CRLF "Content-Length: 2" CRLF CRLF "ok", 0, 0, 1, 999, "ok",
     0},
    {"status_099", "HTTP/1.1 099 Low" CRLF CRLF, 1, 0, 1, 99, "", 0},
    /* Major version 2 on an HTTP/1.1 connection. */
    {"http2_status", "HTTP/2.0 200 OK" CRLF "Content-Length: 2" CRLF CRLF "ok", 0, 0, AG_EPROTO, 0,
     NULL, 0},
    /* A bare CR inside the status line. */
    {"bare_cr_status", "HTTP/1.1 200 O\rK" CRLF "Content-Length: 2" CRLF CRLF "ok", 0, 0, AG_EPROTO,
     0, NULL, 0},
    /* LF alone ends the status line and the field lines (RFC 9112 section 2.2). */
    {"bare_lf", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 0, 0, 1, 200, "ok", 0},
    /* White space before the colon (still used for framing by the parser). */
    {"space_before_colon", "HTTP/1.1 200 OK" CRLF "Content-Length : 2" CRLF CRLF "ok", 0, 0,
     AG_EPROTO, 0, NULL, 0},
    /* An obs-fold on the first header line continues nothing. */
    {"obs_fold_first",
     "HTTP/1.1 200 OK" CRLF " X-Folded: a" CRLF "Content-Length: 2" CRLF CRLF "ok", 0, 0, AG_EPROTO,
     0, NULL, 0},
    /* A later obs-fold is replaced by white space (RFC 9112 section 5.2): accepted. */
    {"obs_fold_later",
     "HTTP/1.1 200 OK" CRLF "X-F: a" CRLF " b" CRLF "Content-Length: 2" CRLF CRLF "ok", 0, 0, 1,
     200, "ok", 0},
    /* Header names are tokens. */
    {"space_in_name",
     "HTTP/1.1 200 OK" CRLF "Bad Header: x" CRLF "Content-Length: 2" CRLF CRLF "ok", 0, 0,
     AG_EPROTO, 0, NULL, 0},
    {"ctl_in_name", "HTTP/1.1 200 OK" CRLF "X\x01: y" CRLF "Content-Length: 2" CRLF CRLF "ok", 0, 0,
     AG_EPROTO, 0, NULL, 0},
    {"ctl_in_value", "HTTP/1.1 200 OK" CRLF "X: a\x01b" CRLF "Content-Length: 2" CRLF CRLF "ok", 0,
     0, AG_EPROTO, 0, NULL, 0},
    /* Chunk data must be followed by CRLF. */
    {"chunk_no_crlf",
     "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: chunked" CRLF CRLF "5" CRLF "helloXX0" CRLF CRLF, 0,
     0, AG_EPROTO, 0, NULL, 0},
    {"chunk_bad_size", "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: chunked" CRLF CRLF "zz" CRLF, 0,
     0, AG_EPROTO, 0, NULL, 0},
    {"chunk_size_overflow",
     "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: chunked" CRLF CRLF "10000000000000005" CRLF "hello",
     0, 0, AG_EPROTO, 0, NULL, 0},
    /* Line ends the non-strict parser reads loosely: the empty line ending the head, */
    {"head_end_bare_cr", "HTTP/1.1 200 OK" CRLF "Content-Length: 1" CRLF "\rXY", 0, 0, AG_EPROTO, 0,
     NULL, 0},
    /* (a bare LF between fields ends a field line), */
    {"bare_lf_in_head", "HTTP/1.1 200 OK" CRLF "A: b\nContent-Length: 2" CRLF CRLF "ok", 0, 0, 1,
     200, "ok", 0},
    /* a chunk size line ended by CR and another byte, */
    {"chunk_size_bare_cr",
     "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: chunked" CRLF CRLF "5\rXhello" CRLF "0" CRLF CRLF,
     0, 0, AG_EPROTO, 0, NULL, 0},
    /* a bare LF inside a chunk extension, */
    {"chunk_ext_bare_lf",
     "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: chunked" CRLF CRLF "5;a\nb" CRLF "hello" CRLF
     "0" CRLF CRLF,
     0, 0, AG_EPROTO, 0, NULL, 0},
    /* a trailer line ended by CR and another byte, */
    {"trailer_bare_cr",
     "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: chunked" CRLF CRLF "2" CRLF "ok" CRLF "0" CRLF
     "X: y\rZ" CRLF CRLF,
     0, 0, AG_EPROTO, 0, NULL, 0},
    /* and the final empty line of a chunked body. */
    {"chunked_end_bare_cr",
     "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: chunked" CRLF CRLF "2" CRLF "ok" CRLF "0" CRLF
     "\rX",
     0, 0, AG_EPROTO, 0, NULL, 0},
    /* Conflicting framing. */
    {"double_length",
     "HTTP/1.1 200 OK" CRLF "Content-Length: 2" CRLF "Content-Length: 5" CRLF CRLF "ok", 0, 0,
     AG_EPROTO, 0, NULL, 0},
    {"negative_length", "HTTP/1.1 200 OK" CRLF "Content-Length: -1" CRLF CRLF "ok", 0, 0, AG_EPROTO,
     0, NULL, 0},
    {"length_overflow",
     "HTTP/1.1 200 OK" CRLF "Content-Length: 99999999999999999999999" CRLF CRLF "ok", 0, 0,
     AG_EPROTO, 0, NULL, 0},
    {"length_and_chunked",
     "HTTP/1.1 200 OK" CRLF "Content-Length: 3" CRLF "Transfer-Encoding: chunked" CRLF CRLF "5" CRLF
     "hello" CRLF "0" CRLF CRLF,
     0, 0, AG_EPROTO, 0, NULL, 0},
    /* Truncations: in the body, in a chunk, in the head; and nothing at all. */
    {"truncated_body", "HTTP/1.1 200 OK" CRLF "Content-Length: 100" CRLF CRLF "0123456789", 1, 0,
     AG_ETRUNCATED, 0, NULL, 0},
    {"truncated_chunk",
     "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: chunked" CRLF CRLF "64" CRLF "0123456789", 1, 0,
     AG_ETRUNCATED, 0, NULL, 0},
    {"truncated_head", "HTTP/1.1 200 OK" CRLF "Content-Len", 1, 0, AG_ETRUNCATED, 0, NULL, 0},
    {"truncated_status", "HTTP/1.1 20", 1, 0, AG_ETRUNCATED, 0, NULL, 0},
    {"nothing", "", 1, 0, AG_ECLOSED, 0, NULL, 0},
};

/* Framing by Transfer-Encoding (RFC 9112 section 6): only one final "chunked" is understood.
 * Everything else is refused before any byte of the body is handed over, and a message whose
 * framing cannot be trusted for the next one closes its connection. */
typedef struct te_fixture {
    const char *name;
    const char *bytes;
    int eof;  /* the server closes after the bytes (an old reading until close completes) */
    int head; /* the request was HEAD */
    int want_rc;
    const char *want_body; /* for a complete response */
    int want_keep;         /* for a complete response: the connection may serve the next one */
} te_fixture;

#define CHUNKED_HELLO "5" CRLF "hello" CRLF "0" CRLF CRLF

static const te_fixture te_fixtures[] = {
    /* The one accepted framing, in any case, with white space around it. */
    {"te_chunked", "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: chunked" CRLF CRLF CHUNKED_HELLO, 0,
     0, 1, "hello", 1},
    {"te_chunked_upper",
     "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: CHUNKED" CRLF CRLF CHUNKED_HELLO, 0, 0, 1, "hello",
     1},
    {"te_chunked_ows",
     "HTTP/1.1 200 OK" CRLF "transfer-encoding:  \tChunked \t" CRLF CRLF CHUNKED_HELLO, 0, 0, 1,
     "hello", 1},
    /* Empty list elements are ignored (RFC 9110 section 5.6.1), before and after. */
    {"te_empty_before",
     "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: , ,chunked" CRLF CRLF CHUNKED_HELLO, 0, 0, 1,
     "hello", 1},
    {"te_empty_after",
     "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: chunked ,," CRLF CRLF CHUNKED_HELLO, 0, 0, 1,
     "hello", 1},
    /* An empty field line plus one saying chunked: the combined list is one chunked. */
    {"te_empty_field_then_chunked",
     "HTTP/1.1 200 OK" CRLF "Transfer-Encoding:" CRLF
     "Transfer-Encoding: chunked" CRLF CRLF CHUNKED_HELLO,
     0, 0, 1, "hello", 1},
    /* A coding other than chunked: content codings are not decoded, so nothing is delivered
     * (an old reading until close handed the gzip bytes over as the body). */
    {"te_gzip", "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: gzip" CRLF CRLF "\x1f\x8b gzip bytes", 1,
     0, AG_EPROTO, NULL, 0},
    {"te_identity", "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: identity" CRLF CRLF "raw", 1, 0,
     AG_EPROTO, NULL, 0},
    /* gzip under chunked: the chunks would decode to gzip bytes handed over as the body. */
    {"te_gzip_chunked",
     "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: gzip, chunked" CRLF CRLF CHUNKED_HELLO, 0, 0,
     AG_EPROTO, NULL, 0},
    /* Split over two field lines, the same list. */
    {"te_gzip_then_chunked_fields",
     "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: gzip" CRLF
     "Transfer-Encoding: chunked" CRLF CRLF CHUNKED_HELLO,
     0, 0, AG_EPROTO, NULL, 0},
    /* chunked not last: the chunk framing would be delivered as body bytes until the close. */
    {"te_chunked_not_last",
     "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: chunked, gzip" CRLF CRLF CHUNKED_HELLO, 1, 0,
     AG_EPROTO, NULL, 0},
    /* chunked twice, in one list and in two field lines. */
    {"te_chunked_twice",
     "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: chunked, chunked" CRLF CRLF CHUNKED_HELLO, 1, 0,
     AG_EPROTO, NULL, 0},
    {"te_chunked_twice_comma",
     "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: chunked,chunked" CRLF CRLF CHUNKED_HELLO, 1, 0,
     AG_EPROTO, NULL, 0},
    {"te_chunked_two_fields",
     "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: chunked" CRLF
     "Transfer-Encoding: chunked" CRLF CRLF CHUNKED_HELLO,
     1, 0, AG_EPROTO, NULL, 0},
    /* chunked takes no parameters; a word that only begins or ends like it is another coding. */
    {"te_chunked_param",
     "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: chunked;q=1" CRLF CRLF CHUNKED_HELLO, 1, 0,
     AG_EPROTO, NULL, 0},
    {"te_chunkedx", "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: chunkedx" CRLF CRLF CHUNKED_HELLO, 1,
     0, AG_EPROTO, NULL, 0},
    {"te_xchunked", "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: xchunked" CRLF CRLF CHUNKED_HELLO, 1,
     0, AG_EPROTO, NULL, 0},
    {"te_chunked_space_word",
     "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: chunked x" CRLF CRLF CHUNKED_HELLO, 1, 0, AG_EPROTO,
     NULL, 0},
    /* A field with no coding at all frames nothing. */
    {"te_empty", "HTTP/1.1 200 OK" CRLF "Transfer-Encoding:" CRLF CRLF "raw", 1, 0, AG_EPROTO, NULL,
     0},
    {"te_only_commas", "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: , ," CRLF CRLF "raw", 1, 0,
     AG_EPROTO, NULL, 0},
    /* With a Content-Length as well: a smuggling attempt, refused whatever the coding. */
    {"te_gzip_and_length",
     "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: gzip" CRLF "Content-Length: 3" CRLF CRLF "raw", 0,
     0, AG_EPROTO, NULL, 0},
    {"te_length_then_chunked",
     "HTTP/1.1 200 OK" CRLF "Content-Length: 5" CRLF
     "Transfer-Encoding: chunked" CRLF CRLF CHUNKED_HELLO,
     0, 0, AG_EPROTO, NULL, 0},
    /* HTTP/1.0 has no Transfer-Encoding: the chunks are read, the connection is not kept even
     * when the server asks for it, since whatever follows may be the rest of this message. */
    {"te_http10_keepalive",
     "HTTP/1.0 200 OK" CRLF "Connection: keep-alive" CRLF
     "Transfer-Encoding: chunked" CRLF CRLF CHUNKED_HELLO,
     0, 0, 1, "hello", 0},
    {"te_http10", "HTTP/1.0 200 OK" CRLF "Transfer-Encoding: chunked" CRLF CRLF CHUNKED_HELLO, 0, 0,
     1, "hello", 0},
    /* HTTP/1.0 keep-alive without Transfer-Encoding is kept (the control case). */
    {"te_none_http10_keepalive",
     "HTTP/1.0 200 OK" CRLF "Connection: keep-alive" CRLF "Content-Length: 5" CRLF CRLF "hello", 0,
     0, 1, "hello", 1},
    /* A HEAD response may name the codings a GET would get: no body follows either way. */
    {"te_head_gzip_chunked", "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: gzip, chunked" CRLF CRLF, 0,
     1, 1, "", 1},
    {"te_head_http10",
     "HTTP/1.0 200 OK" CRLF "Connection: keep-alive" CRLF "Transfer-Encoding: chunked" CRLF CRLF, 0,
     1, 1, "", 0},
    /* 304 with Transfer-Encoding: chunked has no body (nginx sends this). */
    {"te_304_chunked", "HTTP/1.1 304 Not Modified" CRLF "Transfer-Encoding: chunked" CRLF CRLF, 0,
     0, 1, "", 1},
    /* A 101 nobody asked for ends the request: it announces that the bytes that follow are
     * another protocol (an old reading took it as an interim response and read on). */
    {"status_101_unrequested",
     "HTTP/1.1 101 Switching Protocols" CRLF CRLF "HTTP/1.1 200 OK" CRLF
     "Content-Length: 2" CRLF CRLF "ok",
     0, 0, AG_EPROTO, NULL, 0},
    {"status_101_upgrade",
     "HTTP/1.1 101 Switching Protocols" CRLF "Upgrade: websocket" CRLF
     "Connection: upgrade" CRLF CRLF "\x81\x05hello",
     0, 0, AG_EPROTO, NULL, 0},
};

typedef struct outcome {
    int extra;       /* bytes followed the complete response */
    int keep;        /* the connection may serve another request (as the client decides) */
    const char *why; /* the parser's reason for a refusal */
} outcome;

/* The length of the next fixture run, when its bytes hold a NUL (0: up to the first NUL). */
static size_t f_len;

static int run(ag_client *c, const fixture *f, size_t step, ag_response *r, outcome *out)
{
    ag_request req;
    ag_request_init(&req);
    ag__parse ps;
    ag__parse_init(&ps, c, &req, r, f->head, true);
    size_t len = f_len ? f_len : strlen(f->bytes);
    int rc = 0;
    /* Each piece in a buffer of its own, as a read would deliver it. */
    for (size_t off = 0; off < len && rc == 0; off += step) {
        size_t n = len - off < step ? len - off : step;
        char *piece = malloc(n);
        memcpy(piece, f->bytes + off, n);
        rc = ag__parse_feed(&ps, piece, n);
        free(piece);
    }
    if (rc == 0 && f->eof)
        rc = ag__parse_feed(&ps, NULL, 0);
    out->extra = ps.extra;
    out->keep = http_should_keep_alive(&ps.p) && !ps.extra && !ps.must_close;
    out->why = ps.why;
    return rc;
}

/* A body shown in a TAP line: one line, printable, short. */
static const char *shown(const char *body)
{
    static char out[64];
    size_t n = 0;
    for (const char *p = body; *p && n + 5 < sizeof out; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
            out[n++] = (char)ch;
        } else {
            snprintf(out + n, sizeof out - n, "\\x%02x", ch);
            n += 4;
        }
    }
    out[n] = 0;
    return out;
}

static void run_te(ag_client *c)
{
    for (size_t i = 0; i < sizeof te_fixtures / sizeof te_fixtures[0]; i++) {
        const te_fixture *t = &te_fixtures[i];
        fixture f = {t->name, t->bytes, t->eof, t->head, t->want_rc, 0, t->want_body, 0};
        for (int bytewise = 0; bytewise < 2; bytewise++) {
            ag_response *r = calloc(1, sizeof *r);
            outcome o;
            int rc = run(c, &f, bytewise ? 1 : 1 << 20, r, &o);
            int ok = rc == t->want_rc;
            if (ok && rc == 1)
                ok = strcmp(ag_response_body(r, NULL), t->want_body) == 0 && o.keep == t->want_keep;
            /* A refusal hands over no body byte and says why. */
            if (ok && rc < 0)
                ok = r->body_len == 0 && o.why != NULL;
            tap_ok(ok, "parse_%s%s: %s%s%s, body \"%s\"%s (want %s%s)", t->name,
                   bytewise ? "_bytewise" : "",
                   rc == 1   ? "complete"
                   : rc == 0 ? "incomplete"
                             : ag_err_name(rc),
                   o.why ? " because " : "", o.why ? o.why : "", shown(ag_response_body(r, NULL)),
                   rc == 1 ? (o.keep ? ", kept" : ", closed") : "",
                   t->want_rc == 1 ? "complete" : ag_err_name(t->want_rc),
                   t->want_rc == 1 ? (t->want_keep ? ", kept" : ", closed") : "");
            ag_response_free(r);
        }
    }
}

int main(void)
{
    ag_client *c;
    ag_client_new(&c, NULL);
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
        const fixture *f = &fixtures[i];
        for (int bytewise = 0; bytewise < 2; bytewise++) {
            ag_response *r = calloc(1, sizeof *r);
            outcome o;
            int rc = run(c, f, bytewise ? 1 : 1 << 20, r, &o);
            int ok = rc == f->want_rc;
            if (ok && rc == 1) {
                const char *body = ag_response_body(r, NULL);
                ok = r->status == f->want_status && strcmp(body, f->want_body) == 0 &&
                     (bytewise || o.extra == f->want_extra);
            }
            tap_ok(ok, "parse_%s%s: %s (want %s)", f->name, bytewise ? "_bytewise" : "",
                   rc == 1 ? "complete" : ag_err_name(rc),
                   f->want_rc == 1 ? "complete" : ag_err_name(f->want_rc));
            ag_response_free(r);
        }
    }
    /* A chunk extension is capped: 5,000 bytes of it are refused. */
    {
        static char longext[6000];
        strcpy(longext, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;");
        size_t at = strlen(longext);
        memset(longext + at, 'a', 5000);
        strcpy(longext + at + 5000, "\r\nok\r\n0\r\n\r\n");
        fixture f = {"chunk_ext_long", longext, 0, 0, AG_EPROTO, 0, NULL, 0};
        ag_response *r = calloc(1, sizeof *r);
        outcome o;
        int rc = run(c, &f, 1000, r, &o);
        tap_ok(rc == AG_EPROTO, "parse_chunk_ext_long: %s", ag_err_name(rc));
        ag_response_free(r);
    }
    /* A NUL byte in a field value, also as its first byte (which http-parser does not check)
     * and in a trailer, is refused: no value is cut short at a hidden NUL. */
    {
        static const struct {
            const char *name, *bytes;
            size_t len;
        } nul[] = {
            {"nul_first_in_value", NUL_FIRST_IN_VALUE, sizeof NUL_FIRST_IN_VALUE - 1},
            {"nul_in_value", NUL_IN_VALUE, sizeof NUL_IN_VALUE - 1},
            {"nul_first_in_trailer", NUL_FIRST_IN_TRAILER, sizeof NUL_FIRST_IN_TRAILER - 1},
        };
        for (size_t i = 0; i < sizeof nul / sizeof nul[0]; i++) {
            for (int bytewise = 0; bytewise < 2; bytewise++) {
                fixture f = {nul[i].name, nul[i].bytes, 0, 0, AG_EPROTO, 0, NULL, 0};
                ag_response *r = calloc(1, sizeof *r);
                outcome o;
                f_len = nul[i].len;
                int rc = run(c, &f, bytewise ? 1 : 1 << 20, r, &o);
                f_len = 0;
                tap_ok(rc == AG_EPROTO, "parse_%s%s: %s (want AG_EPROTO)", nul[i].name,
                       bytewise ? "_bytewise" : "", rc == 1 ? "complete" : ag_err_name(rc));
                ag_response_free(r);
            }
        }
    }
    /* Trailers and repeated headers are kept in order. */
    run_te(c);
    ag_response *r = calloc(1, sizeof *r);
    outcome o;
    fixture f = {"fields",
                 "HTTP/1.1 200 OK" CRLF "Set-Cookie: a=1" CRLF "set-cookie: b=2" CRLF
                 "Transfer-Encoding: chunked" CRLF CRLF "2" CRLF "ok" CRLF "0" CRLF
                 "X-Sum: 42  " CRLF CRLF,
                 0,
                 0,
                 1,
                 200,
                 "ok",
                 0};
    int rc = run(c, &f, 3, r, &o);
    const char *n0, *v0, *n1, *v1, *tn, *tv;
    int ok = rc == 1 && ag_response_header_count(r) == 3 &&
             ag_response_header_at(r, 0, &n0, &v0) == 0 &&
             ag_response_header_at(r, 1, &n1, &v1) == 0 && strcmp(v0, "a=1") == 0 &&
             strcmp(v1, "b=2") == 0 && strcmp(ag_response_header(r, "SET-COOKIE"), "a=1") == 0 &&
             ag_response_trailer_count(r) == 1 && ag_response_trailer_at(r, 0, &tn, &tv) == 0 &&
             strcmp(tn, "X-Sum") == 0 && strcmp(tv, "42") == 0;
    tap_ok(ok, "parse_fields: repeated headers kept in order, case-insensitive lookup, trailer "
               "with trailing white space trimmed");
    ag_response_free(r);
    ag_client_free(c);
    return tap_done();
}
