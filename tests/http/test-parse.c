/* test-parse.c: the response parser on fixed byte strings, each fed whole and one byte at a
 * time: what http-parser's non-strict build accepts and asyncget refuses, bodies, trailers and
 * interim responses. */
#include "http/internal.h"
#include "tests/tap.h"

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
    /* Outside 100-599. */
    {"status_999", "HTTP/1.1 999 Weird" CRLF "Content-Length: 2" CRLF CRLF "ok", 0, 0, AG_EPROTO, 0,
     NULL, 0},
    {"status_099", "HTTP/1.1 099 Low" CRLF CRLF, 0, 0, AG_EPROTO, 0, NULL, 0},
    /* Major version 2 on an HTTP/1.1 connection. */
    {"http2_status", "HTTP/2.0 200 OK" CRLF "Content-Length: 2" CRLF CRLF "ok", 0, 0, AG_EPROTO, 0,
     NULL, 0},
    /* A bare CR inside the status line. */
    {"bare_cr_status", "HTTP/1.1 200 O\rK" CRLF "Content-Length: 2" CRLF CRLF "ok", 0, 0, AG_EPROTO,
     0, NULL, 0},
    /* Bare LF line ends are refused from the status line on. */
    {"bare_lf", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 0, 0, AG_EPROTO, 0, NULL, 0},
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
    /* a bare LF between fields, */
    {"bare_lf_in_head", "HTTP/1.1 200 OK" CRLF "A: b\nContent-Length: 2" CRLF CRLF "ok", 0, 0,
     AG_EPROTO, 0, NULL, 0},
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

static int run(ag_client *c, const fixture *f, size_t step, ag_response *r, int *extra)
{
    ag_request req;
    ag_request_init(&req);
    ag__parse ps;
    ag__parse_init(&ps, c, &req, r, f->head, true);
    size_t len = strlen(f->bytes);
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
    *extra = ps.extra;
    return rc;
}

int main(void)
{
    ag_client *c;
    ag_client_new(&c, NULL);
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
        const fixture *f = &fixtures[i];
        for (int bytewise = 0; bytewise < 2; bytewise++) {
            ag_response *r = calloc(1, sizeof *r);
            int extra = 0;
            int rc = run(c, f, bytewise ? 1 : 1 << 20, r, &extra);
            int ok = rc == f->want_rc;
            if (ok && rc == 1) {
                const char *body = ag_response_body(r, NULL);
                ok = r->status == f->want_status && strcmp(body, f->want_body) == 0 &&
                     (bytewise || extra == f->want_extra);
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
        int extra;
        int rc = run(c, &f, 1000, r, &extra);
        tap_ok(rc == AG_EPROTO, "parse_chunk_ext_long: %s", ag_err_name(rc));
        ag_response_free(r);
    }
    /* Trailers and repeated headers are kept in order. */
    ag_response *r = calloc(1, sizeof *r);
    int extra;
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
    int rc = run(c, &f, 3, r, &extra);
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
