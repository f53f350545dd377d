/* test-framing.c: the framing and semantics rules a response is read by, from RFC 9112 and RFC
 * 9110, on fixed byte strings fed whole and one byte at a time: chunk sizes with leading zeros,
 * HTTP/1.2 to 1.9 read as 1.1, status codes the client does not know, bare LF line ends in the
 * head (never in the chunked framing), and the Location of a redirect (spaces and non-ASCII
 * bytes percent-encoded, control bytes refused, an empty one not followed). */
#include "http/internal.h"
#include "http/url.h"
#include "tests/tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CRLF         "\r\n"
#define OK_HEAD      "HTTP/1.1 200 OK" CRLF
#define CHUNKED_HEAD OK_HEAD "Transfer-Encoding: chunked" CRLF CRLF
#define ZEROS10      "0000000000"

typedef struct fcase {
    const char *name;
    const char *bytes;
    int want_rc;     /* 1: complete, or a negative code */
    int want_status; /* for a complete response */
    int want_minor;
    const char *want_body;
    int want_keep;    /* the connection may serve the next request */
    int head_is_rest; /* every byte before the body is a head byte (header_bytes checked) */
} fcase;

static const fcase cases[] = {
    /* ---- chunk sizes: leading zeros do not count against the 16 hex digits a size may have,
     * only the value does (RFC 9112 section 7.1 puts no bound on the digits). */
    {"chunk_size_zeros_20",
     CHUNKED_HEAD ZEROS10 "000000000"
                          "5" CRLF "hello" CRLF "0" CRLF CRLF,
     1, 200, 1, "hello", 1, 0},
    {"chunk_size_zeros_100",
     CHUNKED_HEAD ZEROS10 ZEROS10 ZEROS10 ZEROS10 ZEROS10 ZEROS10 ZEROS10 ZEROS10 ZEROS10 ZEROS10
     "5;ext" CRLF "hello" CRLF "0" CRLF CRLF,
     1, 200, 1, "hello", 1, 0},
    /* The last chunk written with many zeros is still the last chunk. */
    {"chunk_last_zeros_30", CHUNKED_HEAD "2" CRLF "ok" CRLF ZEROS10 ZEROS10 ZEROS10 CRLF CRLF, 1,
     200, 1, "ok", 1, 0},
    /* The value decides: 17 significant digits after the zeros overflow, as without them. */
    {"chunk_size_zeros_then_overflow",
     CHUNKED_HEAD ZEROS10 "10000000000000005" CRLF "hello" CRLF "0" CRLF CRLF, AG_EPROTO, 0, 0,
     NULL, 0, 0},
    {"chunk_size_max_refused", CHUNKED_HEAD "ffffffffffffffff" CRLF "hello", AG_EPROTO, 0, 0, NULL,
     0, 0},

    /* ---- versions: HTTP/1.2 to 1.9 are HTTP/1.1 (RFC 9110 section 2.5: a recipient of a higher
     * minor version than its own reads the message as its own). */
    {"http12", "HTTP/1.2 200 OK" CRLF "Content-Length: 2" CRLF CRLF "ok", 1, 200, 1, "ok", 1, 1},
    {"http19_chunked_kept",
     "HTTP/1.9 200 OK" CRLF "Transfer-Encoding: chunked" CRLF CRLF "2" CRLF "ok" CRLF "0" CRLF CRLF,
     1, 200, 1, "ok", 1, 0},
    {"http12_close",
     "HTTP/1.2 200 OK" CRLF "Connection: close" CRLF "Content-Length: 2" CRLF CRLF "ok", 1, 200, 1,
     "ok", 0, 1},
    {"http12_interim",
     "HTTP/1.2 100 Continue" CRLF CRLF "HTTP/1.3 200 OK" CRLF "Content-Length: 2" CRLF CRLF "ok", 1,
     200, 1, "ok", 1, 1},
    /* Another major version is another protocol. */
    {"http20_refused", "HTTP/2.0 200 OK" CRLF "Content-Length: 2" CRLF CRLF "ok", AG_EPROTO, 0, 0,
     NULL, 0, 0},
    {"http09_refused", "HTTP/0.9 200 OK" CRLF "Content-Length: 2" CRLF CRLF "ok", AG_EPROTO, 0, 0,
     NULL, 0, 0},
    {"http110_refused", "HTTP/1.10 200 OK" CRLF "Content-Length: 2" CRLF CRLF "ok", AG_EPROTO, 0, 0,
     NULL, 0, 0},

    /* ---- status codes (RFC 9110 section 15): one inside 100-599 that is not known counts as
     * the x00 of its class; one outside is delivered, final, and its connection not reused. */
    {"status_199_interim",
     "HTTP/1.1 199 Odd" CRLF "X: y" CRLF CRLF OK_HEAD "Content-Length: 2" CRLF CRLF "ok", 1, 200, 1,
     "ok", 1, 1},
    {"status_299", "HTTP/1.1 299 Odd" CRLF "Content-Length: 2" CRLF CRLF "ok", 1, 299, 1, "ok", 1,
     1},
    /* A 3xx that is not a known redirect is the answer, its body kept, as a 300 is. */
    {"status_399_location",
     "HTTP/1.1 399 Odd" CRLF "Location: /x" CRLF "Content-Length: 2" CRLF CRLF "ok", 1, 399, 1,
     "ok", 1, 1},
    {"status_300_location",
     "HTTP/1.1 300 Multiple Choices" CRLF "Location: /x" CRLF "Content-Length: 2" CRLF CRLF "ok", 1,
     300, 1, "ok", 1, 1},
    {"status_499", "HTTP/1.1 499 Odd" CRLF "Content-Length: 2" CRLF CRLF "ok", 1, 499, 1, "ok", 1,
     1},
    {"status_599", "HTTP/1.1 599 Odd" CRLF "Content-Length: 2" CRLF CRLF "ok", 1, 599, 1, "ok", 1,
     1},
    {"status_600_not_kept", "HTTP/1.1 600 Odd" CRLF "Content-Length: 2" CRLF CRLF "ok", 1, 600, 1,
     "ok", 0, 1},
    {"status_999_not_kept", "HTTP/1.1 999 Weird" CRLF "Content-Length: 2" CRLF CRLF "ok", 1, 999, 1,
     "ok", 0, 1},
    {"status_099_final", "HTTP/1.1 099 Low" CRLF "Content-Length: 2" CRLF CRLF "ok", 1, 99, 1, "ok",
     0, 1},
    /* Below 100 is not interim: the response after it is bytes nobody asked for. */
    {"status_001_final", "HTTP/1.1 001 Low" CRLF "Content-Length: 0" CRLF CRLF OK_HEAD, 1, 1, 1, "",
     0, 0},
    /* A 6xx in HTTP/1.0 with keep-alive: not kept either. */
    {"status_700_http10_keepalive",
     "HTTP/1.0 700 Odd" CRLF "Connection: keep-alive" CRLF "Content-Length: 2" CRLF CRLF "ok", 1,
     700, 0, "ok", 0, 1},
    /* "000" would read as "no response" through the API: refused. */
    {"status_000_refused", "HTTP/1.1 000 Zero" CRLF "Content-Length: 2" CRLF CRLF "ok", AG_EPROTO,
     0, 0, NULL, 0, 0},
    {"status_two_digits_refused", "HTTP/1.1 20 OK" CRLF "Content-Length: 2" CRLF CRLF "ok",
     AG_EPROTO, 0, 0, NULL, 0, 0},

    /* ---- line ends: LF alone ends the status line and each field line, the empty line
     * included (RFC 9112 section 2.2); a CR before the LF is ignored. */
    {"bare_lf_head", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 1, 200, 1, "ok", 1, 1},
    {"bare_lf_status_line_only", "HTTP/1.1 200 OK\nContent-Length: 2" CRLF CRLF "ok", 1, 200, 1,
     "ok", 1, 1},
    {"bare_lf_no_reason", "HTTP/1.1 200\nContent-Length: 2\n\nok", 1, 200, 1, "ok", 1, 1},
    {"bare_lf_field_line", OK_HEAD "A: b\nContent-Length: 2" CRLF CRLF "ok", 1, 200, 1, "ok", 1, 1},
    {"bare_lf_empty_line_only", OK_HEAD "Content-Length: 2" CRLF "\nok", 1, 200, 1, "ok", 1, 1},
    {"bare_lf_empty_value", "HTTP/1.1 200 OK\nX:\nY: \nContent-Length: 2\n\nok", 1, 200, 1, "ok", 1,
     1},
    /* An obs-fold ended by LF alone is read as one ended by CRLF. */
    {"bare_lf_obs_fold", "HTTP/1.1 200 OK\nX: a\n b\nContent-Length: 2\n\nok", 1, 200, 1, "ok", 1,
     1},
    {"bare_lf_interim", "HTTP/1.1 100 Continue\n\nHTTP/1.1 200 OK\nContent-Length: 2\n\nok", 1, 200,
     1, "ok", 1, 1},
    /* The chunked framing after a head of bare LFs stays CRLF. */
    {"bare_lf_head_chunked_body",
     "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2" CRLF "ok" CRLF "0" CRLF CRLF, 1, 200, 1,
     "ok", 1, 0},
    {"bare_lf_until_close_http10", "HTTP/1.0 200 OK\nX: y\n\nold", 1, 200, 0, "old", 0, 1},
    /* Still refused: an obs-fold right after the status line, */
    {"bare_lf_fold_after_status", "HTTP/1.1 200 OK\n X: a\nContent-Length: 2\n\nok", AG_EPROTO, 0,
     0, NULL, 0, 0},
    /* an empty line before the status line, */
    {"bare_lf_before_status", "\nHTTP/1.1 200 OK\nContent-Length: 2\n\nok", AG_EPROTO, 0, 0, NULL,
     0, 0},
    /* a bare CR anywhere in the head, */
    {"bare_cr_status", "HTTP/1.1 200 O\rK\nContent-Length: 2\n\nok", AG_EPROTO, 0, 0, NULL, 0, 0},
    {"bare_cr_field", "HTTP/1.1 200 OK\nX: a\rb\nContent-Length: 2\n\nok", AG_EPROTO, 0, 0, NULL, 0,
     0},
    {"bare_cr_empty_value", "HTTP/1.1 200 OK\nX: \rY: z\nContent-Length: 2\n\nok", AG_EPROTO, 0, 0,
     NULL, 0, 0},
    {"bare_cr_end", "HTTP/1.1 200 OK\nContent-Length: 1\n\rXY", AG_EPROTO, 0, 0, NULL, 0, 0},
    {"cr_cr_lf", "HTTP/1.1 200 OK\r\r\nContent-Length: 2\n\nok", AG_EPROTO, 0, 0, NULL, 0, 0},
    /* an LF inside a field name, */
    {"bare_lf_in_name", "HTTP/1.1 200 OK\nX\n: v\nContent-Length: 2\n\nok", AG_EPROTO, 0, 0, NULL,
     0, 0},
    /* and a bare LF in the chunked framing: the size line, after the data, the last chunk, a
     * trailer line and the empty line that ends the trailers. */
    {"chunk_size_bare_lf", CHUNKED_HEAD "5\nhello" CRLF "0" CRLF CRLF, AG_EPROTO, 0, 0, NULL, 0, 0},
    {"chunk_data_bare_lf", CHUNKED_HEAD "5" CRLF "hello\n0" CRLF CRLF, AG_EPROTO, 0, 0, NULL, 0, 0},
    {"chunk_last_bare_lf", CHUNKED_HEAD "2" CRLF "ok" CRLF "0\n" CRLF, AG_EPROTO, 0, 0, NULL, 0, 0},
    {"trailer_bare_lf", CHUNKED_HEAD "2" CRLF "ok" CRLF "0" CRLF "T: v\n" CRLF, AG_EPROTO, 0, 0,
     NULL, 0, 0},
    {"trailer_end_bare_lf", CHUNKED_HEAD "2" CRLF "ok" CRLF "0" CRLF "\n", AG_EPROTO, 0, 0, NULL, 0,
     0},
    {"trailer_end_bare_lf_after_field", CHUNKED_HEAD "2" CRLF "ok" CRLF "0" CRLF "T: v" CRLF "\n",
     AG_EPROTO, 0, 0, NULL, 0, 0},
};

typedef struct outcome {
    int keep;
    int extra;
    const char *why;
} outcome;

static int run(ag_client *c, const char *bytes, size_t step, ag_response *r, outcome *out)
{
    ag_request req;
    ag_request_init(&req);
    ag__parse ps;
    ag__parse_init(&ps, c, &req, r, false, true);
    size_t len = strlen(bytes);
    int rc = 0;
    /* Each piece in a buffer of its own, exactly its size, as a read would deliver it. */
    for (size_t off = 0; off < len && rc == 0; off += step) {
        size_t n = len - off < step ? len - off : step;
        char *piece = malloc(n);
        memcpy(piece, bytes + off, n);
        rc = ag__parse_feed(&ps, piece, n);
        free(piece);
    }
    /* The sender closes after its bytes: a body read until the close ends there. */
    if (rc == 0)
        rc = ag__parse_feed(&ps, NULL, 0);
    out->extra = ps.extra;
    /* The client's own rule for reusing the connection (client.c). */
    out->keep = http_should_keep_alive(&ps.p) && !ps.extra && !ps.must_close;
    out->why = ps.why;
    ag__parse_end(&ps);
    return rc;
}

static const char *rc_name(int rc)
{
    return rc == 1 ? "complete" : rc == 0 ? "incomplete" : ag_err_name(rc);
}

static void parse_cases(ag_client *c)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const fcase *k = &cases[i];
        for (int bytewise = 0; bytewise < 2; bytewise++) {
            ag_response *r = calloc(1, sizeof *r);
            outcome o;
            int rc = run(c, k->bytes, bytewise ? 1 : 1 << 20, r, &o);
            int ok = rc == k->want_rc;
            uint64_t want_head = strlen(k->bytes) - (k->want_body ? strlen(k->want_body) : 0);
            if (ok && rc == 1)
                ok = r->status == k->want_status && r->http_minor == k->want_minor &&
                     strcmp(ag_response_body(r, NULL), k->want_body) == 0 &&
                     o.keep == k->want_keep && (!k->head_is_rest || r->header_bytes == want_head);
            tap_ok(ok,
                   "framing_%s%s: %s, status %d, HTTP/1.%d, %s, head %llu bytes (want %s, %d, "
                   "HTTP/1.%d, %s)",
                   k->name, bytewise ? "_bytewise" : "", rc_name(rc), r->status, r->http_minor,
                   o.keep ? "kept" : "closed", (unsigned long long)r->header_bytes,
                   rc_name(k->want_rc), k->want_status, k->want_minor,
                   k->want_keep ? "kept" : "closed");
            ag_response_free(r);
        }
    }
}

/* ---- Location: resolved against a base as a redirect does ---- */

typedef struct lcase {
    const char *name;
    const char *location;
    int want_rc;
    const char *want_host;   /* on success */
    const char *want_target; /* on success */
} lcase;

static const lcase locations[] = {
    /* Spaces and bytes 0x80-0xFF become %XX (upper-case hex, RFC 3986 section 2.1); escapes
     * already there are left alone. */
    {"space_in_path", "/a b/c d", 0, "example.com", "/a%20b/c%20d"},
    {"space_in_query", "/p?q=a b", 0, "example.com", "/p?q=a%20b"},
    {"non_ascii_path", "/caf\xc3\xa9", 0, "example.com", "/caf%C3%A9"},
    {"non_ascii_query", "?x=\xff\x80", 0, "example.com", "/dir/page?x=%FF%80"},
    {"escapes_kept", "/a%20b c%2F", 0, "example.com", "/a%20b%20c%2F"},
    {"absolute_with_space", "http://other.test/x y", 0, "other.test", "/x%20y"},
    {"relative_with_space", "x y", 0, "example.com", "/dir/x%20y"},
    /* A space in a fragment is encoded too, and the fragment dropped. */
    {"fragment_with_space", "/f#a b", 0, "example.com", "/f"},
    /* Percent-encoded CR and LF stay encoded: no header can be injected through them. */
    {"encoded_crlf_path", "/x%0d%0aInjected:%20yes", 0, "example.com", "/x%0d%0aInjected:%20yes"},
    {"encoded_crlf_host", "http://a%0d%0ainjected%3a%20yes/", 0, "a%0d%0ainjected%3a%20yes", "/"},
    /* Refused still: a control byte (an HTAB is the only one a field value may hold), DEL, a
     * backslash, a bad escape, and a space or a non-ASCII byte in the host. */
    {"tab_refused", "/a\tb", AG_EURL, NULL, NULL},
    {"del_refused", "/a\x7f", AG_EURL, NULL, NULL},
    {"backslash_refused", "/a\\b", AG_EURL, NULL, NULL},
    {"bad_escape_refused", "/a%zz b", AG_EURL, NULL, NULL},
    {"space_in_host_refused", "http://exa mple.test/", AG_EURL, NULL, NULL},
    {"non_ascii_host_refused",
     "http://b\xc3\xbc"
     "cher.test/",
     AG_EURL, NULL, NULL},
    {"space_in_port_refused", "http://h.test: 80/", AG_EURL, NULL, NULL},
};

static void location_cases(void)
{
    ag__url base;
    if (ag__url_parse(&base, "http://example.com/dir/page?q") != 0)
        abort();
    for (size_t i = 0; i < sizeof locations / sizeof locations[0]; i++) {
        const lcase *k = &locations[i];
        ag__url u;
        int rc = ag__url_resolve_location(&u, &base, k->location);
        int ok = rc == k->want_rc;
        if (ok && rc == 0)
            ok = strcmp(u.host, k->want_host) == 0 && strcmp(u.target, k->want_target) == 0;
        /* A refusal says why, for the redirect's error detail. */
        if (ok && rc < 0)
            ok = u.why != NULL;
        tap_ok(ok, "location_%s: %s %s%s (%s)", k->name, ag_err_name(rc), rc == 0 ? u.host : "",
               rc == 0 ? u.target : "", rc < 0 && u.why ? u.why : "");
        if (rc == 0)
            ag__url_free(&u);
    }
    ag__url_free(&base);
    /* Empty and white-space-only Locations are not followed; anything else is. */
    tap_ok(!ag__url_location_given(NULL) && !ag__url_location_given("") &&
               !ag__url_location_given(" \t ") && ag__url_location_given("/") &&
               ag__url_location_given(" x"),
           "location_empty_not_given");
}

/* Zeros are unbounded in the grammar, not in the client: a chunk line (zeros, digits and
 * extension) longer than 4096 bytes is refused, so an endless line of zeros ends at once rather
 * than at a total timeout. 4,000 zeros still pass. */
static void zeros_bound(ag_client *c)
{
    static const int counts[] = {4000, 5000, 1 << 20};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        size_t n = (size_t)counts[i];
        const char *head = CHUNKED_HEAD, *tail = "5" CRLF "hello" CRLF "0" CRLF CRLF;
        char *b = malloc(strlen(head) + n + strlen(tail) + 1);
        strcpy(b, head);
        memset(b + strlen(head), '0', n);
        strcpy(b + strlen(head) + n, tail);
        ag_response *r = calloc(1, sizeof *r);
        outcome o;
        int rc = run(c, b, 1 << 20, r, &o);
        int want = n <= 4096 ? 1 : AG_EPROTO;
        tap_ok(rc == want, "framing_chunk_line_zeros_%zu: %s (want %s)", n, rc_name(rc),
               rc_name(want));
        ag_response_free(r);
        free(b);
    }
}

int main(void)
{
    ag_client *c;
    ag_client_new(&c, NULL);
    parse_cases(c);
    zeros_bound(c);
    location_cases();
    ag_client_free(c);
    return tap_done();
}
