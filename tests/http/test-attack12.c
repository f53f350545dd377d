/* test-attack12.c: the framing rules, the pool's counts and the wait for a file descriptor
 * attacked through the public API only: hostile bytes, floods under a low RLIMIT_NOFILE, cancels
 * and frees in flight. Each case names the fault it would catch; a known fault that is not fixed
 * yet is a skip whose reason says so. */
#include "tests/http/util.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/wait.h>

static int port;
/* Non-zero: /atk12/raw writes its bytes one at a time, 1 ms apart (every boundary a read). */
static int split_writes;

/* GET /atk12/raw: the hostile server writes exactly these bytes as the whole answer. */
static ag_response *raw_get(ag_client *c, const char *bytes, size_t n, int close, int *rc)
{
    size_t cap = 64 + 2 * n;
    char *path = malloc(cap);
    size_t k = (size_t)snprintf(path, cap, "/atk12/raw?close=%d%s&b=", close,
                                split_writes ? "&step=1&ms=1" : "");
    for (size_t i = 0; i < n; i++)
        k += (size_t)snprintf(path + k, cap - k, "%02x", (unsigned char)bytes[i]);
    char *url = malloc(cap + 64);
    snprintf(url, cap + 64, "http://127.0.0.1:%d%s", port, path);
    ag_response *r = get(c, url, rc);
    free(path);
    free(url);
    return r;
}

/* Bytes shown on one TAP line: control and non-ASCII bytes as \xNN (a raw LF in a body would
 * start a line the TAP reader takes for a result). In a static rotating buffer. */
static const char *shown(const char *p, size_t n)
{
    static char bufs[4][256];
    static int next;
    char *b = bufs[next++ % 4];
    size_t k = 0;
    for (size_t i = 0; p && i < n && k + 5 < sizeof bufs[0]; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch < 0x20 || ch >= 0x7f || ch == '\\')
            k += (size_t)snprintf(b + k, sizeof bufs[0] - k, "\\x%02x", ch);
        else
            b[k++] = (char)ch;
    }
    b[k] = 0;
    return b;
}

static ag_client *client_on(ag_loop *loop)
{
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.idle_timeout_ms = 5000;
    /* A name a Location might carry is never sent to a real DNS server: nothing listens on
     * this UDP port of loopback, so every lookup fails at once. */
    o.dns_servers = "127.0.0.1:9";
    o.dns_tries = 1;
    o.dns_timeout_ms = 200;
    ag_client *c = NULL;
    if (ag_client_new(&c, &o) < 0) {
        printf("Bail out! ag_client_new\n");
        exit(1);
    }
    return c;
}

enum { ANY_ERROR = 1 };

struct frame_case {
    const char *name;
    const char *bytes;
    int want_rc;     /* 0, a code, or ANY_ERROR */
    int want_status; /* when want_rc is 0 (-1: any) */
    const char *want_body;
};

/* One response each, on a fresh client so that no case's leftovers can reach the next. */
static void frame_table(void)
{
    static const struct frame_case cases[] = {
        {"head_lf_only_accepted", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 0, 200, "ok"},
        {"head_lf_mixed_accepted", "HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 2\r\n\nok", 0, 200,
         "ok"},
        {"head_lf_then_crlf_end_accepted", "HTTP/1.1 200 OK\nContent-Length: 2\n\r\nok", 0, 200,
         "ok"},
        {"head_lf_chunked_body_crlf_accepted",
         "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\r\nok\r\n0\r\n\r\n", 0, 200, "ok"},
        {"head_lf_body_starts_with_crlf", "HTTP/1.1 200 OK\nContent-Length: 4\n\n\r\nok", 0, 200,
         "\r\nok"},
        {"head_crlf_body_starts_with_lf", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n\nok", 0,
         200, "\nok"},
        {"head_lf_interim_then_final",
         "HTTP/1.1 100 Continue\n\nHTTP/1.1 200 OK\nContent-Length: 2\n\nok", 0, 200, "ok"},
        {"head_lf_interim_cr_alone_refused",
         "HTTP/1.1 100 Continue\r\rHTTP/1.1 200 OK\nContent-Length: 2\n\nok", AG_EPROTO, 0, NULL},
        {"chunk_trailer_lf_refused",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nT: v\n\r\n",
         AG_EPROTO, 0, NULL},
        {"chunk_trailer_end_lf_refused",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nT: v\r\n\n",
         AG_EPROTO, 0, NULL},
        {"head_lf_te_and_length_refused",
         "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nContent-Length: 2\n\n2\r\nok\r\n0\r\n\r\n",
         AG_EPROTO, 0, NULL},

        {"head_lf_space_before_colon_refused", "HTTP/1.1 200 OK\nContent-Length : 2\n\nok",
         AG_EPROTO, 0, NULL},
        {"head_cr_alone_line_end_refused", "HTTP/1.1 200 OK\rContent-Length: 2\r\n\r\nok",
         AG_EPROTO, 0, NULL},
        {"head_cr_alone_in_value_refused",
         "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nok", AG_EPROTO, 0, NULL},
        {"head_cr_cr_lf_refused", "HTTP/1.1 200 OK\r\r\nContent-Length: 2\r\n\r\nok", AG_EPROTO, 0,
         NULL},
        {"head_cr_alone_blank_line_refused", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\rok",
         AG_EPROTO, 0, NULL},
        {"head_cr_alone_status_line_refused", "HTTP/1.1 200 OK\r\rContent-Length: 2\n\nok",
         AG_EPROTO, 0, NULL},
        {"chunk_size_lf_refused",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\r\n0\r\n\r\n", AG_EPROTO, 0,
         NULL},
        {"chunk_data_lf_refused",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\n0\r\n\r\n", AG_EPROTO, 0,
         NULL},
        {"chunk_last_lf_refused",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\n\r\n", AG_EPROTO, 0,
         NULL},
        {"chunk_lf_head_still_strict_body",
         "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nok\n0\n\n", AG_EPROTO, 0, NULL},
        {"chunk_ext_cr_alone_refused",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;a=b\rc\r\nok\r\n0\r\n\r\n",
         AG_EPROTO, 0, NULL},
        {"chunk_size_zeros_28_digits_accepted",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
         "0000000000000000000000000002\r\nok\r\n0\r\n\r\n",
         0, 200, "ok"},
        {"chunk_size_zeros_then_2_64_refused",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
         "0000000000000000000010000000000000000\r\nok\r\n0\r\n\r\n",
         ANY_ERROR, 0, NULL},
        {"chunk_size_zeros_then_17_digits_refused",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
         "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
         "100000000000000002\r\nok\r\n0\r\n\r\n",
         ANY_ERROR, 0, NULL},
        {"chunk_size_zeros_then_max_not_ok",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
         "0000ffffffffffffffff\r\nok\r\n0\r\n\r\n",
         ANY_ERROR, 0, NULL},
        {"chunk_last_many_zeros_accepted",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n"
         "0000000000000000000000000000000000000000\r\n\r\n",
         0, 200, "ok"},
        {"chunk_size_0x_refused",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\nok\r\n0\r\n\r\n", AG_EPROTO,
         0, NULL},
        {"chunk_size_plus_refused",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+2\r\nok\r\n0\r\n\r\n", AG_EPROTO, 0,
         NULL},
        {"status_099_not_interim", "HTTP/1.1 099 Low\r\nContent-Length: 2\r\n\r\nok", 0, -1, "ok"},
        {"status_600_body_read", "HTTP/1.1 600 High\r\nContent-Length: 2\r\n\r\nok", 0, -1, "ok"},
        {"status_999_body_read", "HTTP/1.1 999 High\r\nContent-Length: 2\r\n\r\nok", 0, -1, "ok"},
        {"status_000_refused", "HTTP/1.1 000 Zero\r\nContent-Length: 2\r\n\r\nok", AG_EPROTO, 0,
         NULL},
        {"status_099_chunked_body_read",
         "HTTP/1.1 099 Low\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 0, -1, "ok"},
        {"status_4_digits_refused", "HTTP/1.1 1000 X\r\nContent-Length: 2\r\n\r\nok", AG_EPROTO, 0,
         NULL},
        {"status_2_digits_refused", "HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok", AG_EPROTO, 0,
         NULL},
        {"status_sign_refused", "HTTP/1.1 +20 OK\r\nContent-Length: 2\r\n\r\nok", AG_EPROTO, 0,
         NULL},
        {"status_299_as_200", "HTTP/1.1 299 X\r\nContent-Length: 2\r\n\r\nok", 0, 299, "ok"},
        {"status_199_interim_skipped",
         "HTTP/1.1 199 X\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0, 200, "ok"},
        {"version_1_9_chunked_as_1_1",
         "HTTP/1.9 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 0, 200, "ok"},
        {"version_1_2_as_1_1", "HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\nok", 0, 200, "ok"},
        {"version_1_10_refused", "HTTP/1.10 200 OK\r\nContent-Length: 2\r\n\r\nok", AG_EPROTO, 0,
         NULL},
        {"version_1_01_refused", "HTTP/1.01 200 OK\r\nContent-Length: 2\r\n\r\nok", AG_EPROTO, 0,
         NULL},
        {"version_lower_case_refused", "http/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", AG_EPROTO,
         0, NULL},
        {"version_1_x_refused", "HTTP/1.x 200 OK\r\nContent-Length: 2\r\n\r\nok", AG_EPROTO, 0,
         NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct frame_case *fc = &cases[i];
        ag_client *c = client_on(NULL);
        int rc;
        ag_response *r = raw_get(c, fc->bytes, strlen(fc->bytes), 1, &rc);
        size_t blen = 0;
        const char *b = ag_response_body(r, &blen);
        int st = ag_response_status(r);
        bool ok;
        if (fc->want_rc == ANY_ERROR)
            ok = rc < 0;
        else if (fc->want_rc < 0)
            ok = rc == fc->want_rc;
        else
            ok = rc == 0 && (fc->want_status < 0 || st == fc->want_status) &&
                 (!fc->want_body ||
                  (b && blen == strlen(fc->want_body) && memcmp(b, fc->want_body, blen) == 0));
        tap_ok(ok, "parse_%s%s: %s, status %d, body \"%s\", HTTP/1.%d",
               split_writes ? "split_" : "", fc->name, ag_err_name(rc), st,
               shown(b, blen > 40 ? 40 : blen), ag_response_http_minor(r));
        ag_response_free(r);
        ag_client_free(c);
    }
}

/* A NUL in a field value of a head ended by LF alone: refused as with CR LF. */
static void nul_in_lf_head(void)
{
    static const char head[] = "HTTP/1.1 200 OK\nX-A: a\0b\nContent-Length: 2\n\nok";
    ag_client *c = client_on(NULL);
    int rc;
    ag_response *r = raw_get(c, head, sizeof head - 1, 1, &rc);
    tap_ok(rc == AG_EPROTO, "parse_head_lf_nul_in_value_refused: %s", ag_err_name(rc));
    ag_response_free(r);
    ag_client_free(c);
}

/* A status line with the same bytes once with CR LF and once with LF alone: the two heads are one
 * head, so the outcomes must be the same (a folded field kept or refused alike). */
static void fold_lf_same_as_crlf(void)
{
    static const char crlf[] = "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok";
    static const char lf[] = "HTTP/1.1 200 OK\nX-A: a\n b\nContent-Length: 2\n\nok";
    ag_client *c = client_on(NULL);
    int rc1, rc2;
    ag_response *r1 = raw_get(c, crlf, sizeof crlf - 1, 1, &rc1);
    ag_response *r2 = raw_get(c, lf, sizeof lf - 1, 1, &rc2);
    const char *v1 = ag_response_header(r1, "X-A"), *v2 = ag_response_header(r2, "X-A");
    tap_ok(rc1 == rc2 && ((!v1 && !v2) || (v1 && v2 && strcmp(v1, v2) == 0)),
           "parse_fold_lf_same_as_crlf: CRLF %s \"%s\", LF %s \"%s\"", ag_err_name(rc1),
           v1 ? v1 : "(none)", ag_err_name(rc2), v2 ? v2 : "(none)");
    ag_response_free(r1);
    ag_response_free(r2);
    ag_client_free(c);
}

/* The same status line and field once ended by CR LF and once by LF alone: the reason phrase and
 * the value carry no CR in either, and white space before the line end is not part of them. */
static void reason_and_value_without_cr(void)
{
    static const char *heads[] = {
        "HTTP/1.1 200 OK\r\nX-A: v\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\nX-A: v\nContent-Length: 0\n\n",
        "HTTP/1.1 200 OK\r\nX-A: v \t\nContent-Length: 0\n\r\n",
        "HTTP/1.1 200 OK\nX-A:v\r\nContent-Length: 0\r\n\n",
    };
    for (int i = 0; i < 4; i++) {
        ag_client *c = client_on(NULL);
        int rc;
        ag_response *r = raw_get(c, heads[i], strlen(heads[i]), 1, &rc);
        const char *reason = ag_response_reason(r), *v = ag_response_header(r, "X-A");
        tap_ok(rc == 0 && strcmp(reason, "OK") == 0 && v && strcmp(v, "v") == 0,
               "parse_reason_and_value_without_cr_%d: %s, reason \"%s\", X-A \"%s\"", i,
               ag_err_name(rc), shown(reason, strlen(reason)), v ? shown(v, strlen(v)) : "(none)");
        ag_response_free(r);
        ag_client_free(c);
    }
    static const char none[] = "HTTP/1.1 204\nX-A: v\n\n";
    ag_client *c = client_on(NULL);
    int rc;
    ag_response *r = raw_get(c, none, sizeof none - 1, 1, &rc);
    const char *reason = ag_response_reason(r);
    tap_ok(rc == 0 && ag_response_status(r) == 204 && reason[0] == 0,
           "parse_no_reason_lf: %s, status %d, reason \"%s\"", ag_err_name(rc),
           ag_response_status(r), shown(reason, strlen(reason)));
    ag_response_free(r);
    ag_client_free(c);
}

/* The source port the hostile server saw for /atk12/port on this client's next connection. */
static int next_port(ag_client *c, int *reused)
{
    int rc;
    ag_response *r = get(c, url_of(port, "/atk12/port"), &rc);
    const char *b = ag_response_body(r, NULL);
    int p = rc == 0 && b ? atoi(b) : -1;
    *reused = ag_response_reused(r);
    ag_response_free(r);
    return p;
}

/* After a response whose status is invalid (outside 100-599), the connection is not trusted for
 * another request: the next one goes on a new connection. A 1.2 and a 1.9 response keep theirs
 * as 1.1 does. */
static void keepalive_after_status(const char *name, const char *bytes, bool want_reuse)
{
    ag_client *c = client_on(NULL);
    int p0r, p1r, rc;
    int p0 = next_port(c, &p0r);
    ag_response *r = raw_get(c, bytes, strlen(bytes), 0, &rc);
    bool first_reused = ag_response_reused(r);
    ag_response_free(r);
    int p1 = next_port(c, &p1r);
    bool same = p0 > 0 && p0 == p1;
    tap_ok(rc == 0 && first_reused && p0 > 0 && p1 > 0 && same == want_reuse,
           "keepalive_%s: %s on the connection of port %d, the next request on port %d (%s "
           "wanted)",
           name, ag_err_name(rc), p0, p1, want_reuse ? "the same" : "a new one");
    ag_client_free(c);
}

struct loc_case {
    const char *name;
    const char *location;  /* the field value's bytes */
    int want_rc;           /* 0, a code or ANY_ERROR */
    const char *want_path; /* followed: the path the server saw; NULL: not followed */
};

/* A 302 whose Location is hostile. A followed one lands on the hostile server's 404, whose body
 * names the path it was asked for. */
static void location_table(void)
{
    static const struct loc_case cases[] = {
        {"empty_not_followed", "", 0, NULL},
        {"whitespace_only_not_followed", "  \t  ", 0, NULL},
        {"space_escaped", "/atk12/a b", 0, "/atk12/a%20b"},
        {"space_trailing_trimmed", "/atk12/t  ", 0, "/atk12/t"},
        {"non_ascii_escaped", "/atk12/caf\xc3\xa9", 0, "/atk12/caf%C3%A9"},
        {"byte_ff_escaped", "/atk12/\xff", 0, "/atk12/%FF"},
        {"percent_kept", "/atk12/a%20b", 0, "/atk12/a%20b"},
        {"control_refused", "/atk12/a\x01z", ANY_ERROR, NULL},
        {"del_refused", "/atk12/a\x7fz", ANY_ERROR, NULL},
        {"tab_refused", "/atk12/a\tz", ANY_ERROR, NULL},
        {"nul_refused", "/atk12/a\x00z", ANY_ERROR, NULL},
        {"space_in_host_refused", "http://127.0.0.1 x/", ANY_ERROR, NULL},
        {"non_ascii_host_refused", "http://caf\xc3\xa9.invalid/", ANY_ERROR, NULL},
        {"space_in_query_escaped", "/atk12/q?a=1 2", 0, "/atk12/q"},
        {"space_in_fragment_not_sent", "/atk12/f#a b", 0, "/atk12/f"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct loc_case *lc = &cases[i];
        ag_client *c = client_on(NULL);
        char head[512];
        size_t loclen = strcmp(lc->name, "nul_refused") == 0 ? 10 : strlen(lc->location);
        size_t n = (size_t)snprintf(head, sizeof head, "HTTP/1.1 302 Found\r\nLocation: ");
        memcpy(head + n, lc->location, loclen);
        n += loclen;
        n += (size_t)snprintf(head + n, sizeof head - n, "\r\nContent-Length: 0\r\n\r\n");
        int rc;
        ag_response *r = raw_get(c, head, n, 1, &rc);
        const char *b = ag_response_body(r, NULL);
        unsigned redirs = ag_response_redirects(r);
        char want_body[256] = "";
        if (lc->want_path)
            snprintf(want_body, sizeof want_body, "no such case: %s\n", lc->want_path);
        bool ok;
        if (lc->want_rc == ANY_ERROR)
            ok = rc < 0 && redirs == 0;
        else if (lc->want_path)
            ok = rc == 0 && redirs == 1 && ag_response_status(r) == 404 && b &&
                 strcmp(b, want_body) == 0;
        else
            ok = rc == 0 && redirs == 0 && ag_response_status(r) == 302;
        tap_ok(ok, "redirect_location_%s: %s, status %d after %u redirects, url %s, body \"%s\"",
               lc->name, ag_err_name(rc), ag_response_status(r), redirs,
               redirs ? ag_response_url(r) : "(not followed)", shown(b, b ? strlen(b) : 0));
        ag_response_free(r);
        ag_client_free(c);
    }
}

/* A Location of 20,000 raw non-ASCII bytes escapes to 60,000: the client follows it or refuses it
 * cleanly (the request head would exceed what a server takes), and never overruns a buffer. */
static void location_long_non_ascii(void)
{
    size_t n = 20000;
    char *head = malloc(n + 128);
    size_t k = (size_t)sprintf(head, "HTTP/1.1 302 Found\r\nLocation: /atk12/");
    memset(head + k, 0xe9, n);
    k += n;
    k += (size_t)sprintf(head + k, "\r\nContent-Length: 0\r\n\r\n");
    ag_client *c = client_on(NULL);
    int rc;
    ag_response *r = raw_get(c, head, k, 1, &rc);
    tap_ok(rc <= 0, "redirect_location_long_non_ascii: %s, status %d, %u redirects",
           ag_err_name(rc), ag_response_status(r), ag_response_redirects(r));
    ag_response_free(r);
    ag_client_free(c);
    free(head);
}

/* An invalid-status response carrying a Location is a 5xx, not a redirect; an unknown 3xx is a
 * 300 (followed exactly as a 300 is). */
static void status_class_redirects(void)
{
    static const char *fmt = "HTTP/1.1 %s X\r\nLocation: /atk12/port\r\nContent-Length: 0\r\n\r\n";
    const char *codes[] = {"300", "399", "601", "099"};
    unsigned redirs[4];
    int rcs[4];
    for (int i = 0; i < 4; i++) {
        char head[256];
        snprintf(head, sizeof head, fmt, codes[i]);
        ag_client *c = client_on(NULL);
        ag_response *r = raw_get(c, head, strlen(head), 1, &rcs[i]);
        redirs[i] = ag_response_redirects(r);
        ag_response_free(r);
        ag_client_free(c);
    }
    tap_ok(rcs[0] == 0 && rcs[1] == 0 && redirs[1] == redirs[0],
           "status_399_redirects_as_300: 300 followed %u times, 399 %u times (%s, %s)", redirs[0],
           redirs[1], ag_err_name(rcs[0]), ag_err_name(rcs[1]));
    tap_ok(rcs[2] == 0 && rcs[3] == 0 && redirs[2] == 0 && redirs[3] == 0,
           "status_invalid_location_not_followed: 601 followed %u times, 099 %u times (%s, %s)",
           redirs[2], redirs[3], ag_err_name(rcs[2]), ag_err_name(rcs[3]));
}

/* ---------------------------------------------------------------------- pool and fds */

static bool pool_at_rest(ag_client *c, ag_pool_stats *st)
{
    memset(st, 0xff, sizeof *st);
    if (ag_client_pool_stats(c, st) < 0)
        return false;
    return st->requests == 0 && st->waiting_slot == 0 && st->waiting_connect == 0 &&
           st->waiting_fd == 0 && st->connecting == 0 && st->conns == st->idle;
}

static void stats_null_args(void)
{
    ag_pool_stats st;
    ag_client *c = client_on(NULL);
    int a = ag_client_pool_stats(NULL, &st);
    int b = ag_client_pool_stats(c, NULL);
    bool rest = pool_at_rest(c, &st);
    tap_ok(a == -EINVAL && b == -EINVAL && rest && st.conns == 0 && st.fd_waits == 0,
           "pool_stats_null_args: NULL client %d, NULL out %d, a new client at rest (%d)", a, b,
           rest);
    ag_client_free(c);
    /* ag_fetch leaves *out NULL when memory ran out; the accessors of that era
     * (ag_response_reason, _connects, _error_detail) take NULL, and so must the new one. In a
     * child: a crash fails this case only. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        const char *l = ag_response_local(NULL);
        _exit(l && l[0] == 0 ? 0 : 1);
    }
    int ws = 0;
    waitpid(pid, &ws, 0);
    tap_ok(WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
           "response_local_null_empty: ag_response_local(NULL) %s",
           WIFSIGNALED(ws)   ? strsignal(WTERMSIG(ws))
           : WEXITSTATUS(ws) ? "not \"\""
                             : "\"\"");
}

/* ag_response_local names the same port the server saw, for a new and a reused connection. */
static void response_local_matches_server(void)
{
    ag_client *c = client_on(NULL);
    int rc1, rc2;
    ag_response *r1 = get(c, url_of(port, "/atk12/port"), &rc1);
    ag_response *r2 = get(c, url_of(port, "/atk12/port"), &rc2);
    char want[64];
    const char *b = ag_response_body(r1, NULL);
    snprintf(want, sizeof want, "127.0.0.1:%s", b ? b : "?");
    const char *l1 = ag_response_local(r1), *l2 = ag_response_local(r2);
    tap_ok(rc1 == 0 && rc2 == 0 && l1 && l2 && strcmp(l1, want) == 0 && strcmp(l2, want) == 0 &&
               ag_response_reused(r2),
           "response_local_matches_server: %s and %s (reused %d), the server saw %s",
           l1 ? l1 : "NULL", l2 ? l2 : "NULL", ag_response_reused(r2), want);
    ag_response_free(r1);
    ag_response_free(r2);
    int rc3;
    ag_response *r3 = get(c, "http://127.0.0.1:1/", &rc3);
    const char *l3 = ag_response_local(r3);
    tap_ok(rc3 < 0 && l3 != NULL,
           "response_local_refused_connect_not_null: %s, local \"%s\" (empty or an address)",
           ag_err_name(rc3), l3 ? l3 : "NULL");
    ag_response_free(r3);
    ag_client_free(c);
}

/* Take every free descriptor below the soft limit; returns how many were taken. */
static int fill_fds(int *fds, int cap)
{
    int n = 0;
    while (n < cap) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            break;
        fds[n++] = fd;
    }
    return n;
}

struct flood {
    ag_client *c;
    int done, ok, errs[8], nerr, other;
    int codes[8];
    int max_seen_waiting;
    int stats_calls_bad;
};

static void note_err(struct flood *f, int status)
{
    for (int i = 0; i < f->nerr; i++)
        if (f->codes[i] == status) {
            f->errs[i]++;
            return;
        }
    if (f->nerr < 8) {
        f->codes[f->nerr] = status;
        f->errs[f->nerr++] = 1;
    } else
        f->other++;
}

static void flood_cb(ag_client *c, ag_response *resp, int status, void *arg)
{
    struct flood *f = arg;
    /* Stats read from inside a callback must be consistent: a request that is ending may still
     * count, but nothing may be negative (a wrapped unsigned). */
    ag_pool_stats st;
    if (ag_client_pool_stats(c, &st) < 0 || st.requests > 100000 || st.waiting_fd > 100000 ||
        st.conns > 100000 || st.idle > st.conns)
        f->stats_calls_bad++;
    if (st.waiting_fd > (uint64_t)f->max_seen_waiting)
        f->max_seen_waiting = (int)st.waiting_fd;
    f->done++;
    if (status == 0)
        f->ok++;
    else
        note_err(f, status);
    ag_response_free(resp);
    ag_response_free(NULL);
}

static void flood_diag(const struct flood *f)
{
    for (int i = 0; i < f->nerr; i++)
        tap_diag("  %d x %s", f->errs[i], ag_err_name(f->codes[i]));
}

/* Every descriptor of the process is taken by the test itself and never given back while the
 * requests run: every request must still end, by its total timeout (or the connect timeout),
 * with an error, and the pool must come back to rest. */
static void emfile_never_freed_total_timeout(void)
{
    ag_loop *loop = NULL;
    ag_loop_new(&loop, NULL);
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.total_timeout_ms = 300;
    ag_client *c = NULL;
    ag_client_new(&c, &o);
    struct flood f = {.c = c};
    static int fds[70000];
    int n = fill_fds(fds, 70000);
    enum { N = 200 };
    int started = 0;
    for (int i = 0; i < N; i++) {
        ag_request rq;
        ag_request_init(&rq);
        rq.url = url_of(port, "/ok");
        if (ag_fetch_start(c, &rq, flood_cb, &f, NULL) == 0)
            started++;
    }
    ag_loop_run(loop);
    ag_pool_stats st;
    bool rest = pool_at_rest(c, &st);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    tap_ok(started == N && f.done == N && f.ok == 0 && rest && f.stats_calls_bad == 0,
           "emfile_never_freed_total_timeout: %d of %d ended (%d ok) with all %d free fds taken, "
           "at rest %d (requests %llu waiting_fd %llu), %d waited at most, fd_waits %llu",
           f.done, N, f.ok, n, rest, (unsigned long long)st.requests,
           (unsigned long long)st.waiting_fd, f.max_seen_waiting, (unsigned long long)st.fd_waits);
    flood_diag(&f);
    ag_client_free(c);
    ag_loop_free(loop);
}

/* The same with no total timeout: only the connect timeout bounds a request that never gets a
 * descriptor (the wait for one is part of making a connection). */
static void emfile_never_freed_connect_timeout(void)
{
    ag_loop *loop = NULL;
    ag_loop_new(&loop, NULL);
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.connect_timeout_ms = 300;
    ag_client *c = NULL;
    ag_client_new(&c, &o);
    struct flood f = {.c = c};
    static int fds[70000];
    int n = fill_fds(fds, 70000);
    enum { N = 50 };
    for (int i = 0; i < N; i++) {
        ag_request rq;
        ag_request_init(&rq);
        rq.url = url_of(port, "/ok");
        ag_fetch_start(c, &rq, flood_cb, &f, NULL);
    }
    /* A guard: a wait the library never ends would hang the test; the guard frees the fds after
     * 20 s so the loop can finish and the case fail instead. */
    int64_t guard = ag_now_ns() + 20000000000LL;
    while (f.done < N && ag_now_ns() < guard)
        ag_loop_run_once(loop, 100);
    int done_before_guard = f.done;
    for (int i = 0; i < n; i++)
        close(fds[i]);
    ag_loop_run(loop);
    ag_pool_stats st;
    bool rest = pool_at_rest(c, &st);
    tap_ok(done_before_guard == N && f.ok == 0 && rest,
           "emfile_never_freed_connect_timeout: %d of %d ended within 20 s with the fds taken and "
           "only connect_timeout_ms 300 set; at rest %d",
           done_before_guard, N, rest);
    flood_diag(&f);
    ag_client_free(c);
    ag_loop_free(loop);
}

struct cancel_ctx {
    ag_coro *h[64];
    int n;
};

/* Requests wait for an fd (all taken), then each is cancelled: each ends with -ECANCELED,
 * ag_client_free says -EBUSY while they wait, the stats come back to rest. */
static void emfile_cancel_waiting(void)
{
    ag_loop *loop = NULL;
    ag_loop_new(&loop, NULL);
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    ag_client *c = NULL;
    ag_client_new(&c, &o);
    struct flood f = {.c = c};
    static int fds[70000];
    int n = fill_fds(fds, 70000);
    struct cancel_ctx cc = {.n = 40};
    for (int i = 0; i < cc.n; i++) {
        ag_request rq;
        ag_request_init(&rq);
        rq.url = url_of(port, "/ok");
        ag_fetch_start(c, &rq, flood_cb, &f, &cc.h[i]);
    }
    for (int i = 0; i < 5; i++)
        ag_loop_run_once(loop, 10);
    ag_pool_stats mid;
    ag_client_pool_stats(c, &mid);
    int busy = ag_client_free(c);
    if (busy == 0)
        c = NULL; /* freed: nothing waited (the wrong answer), and nothing may touch it again */
    for (int i = 0; i < cc.n; i++)
        ag_coro_cancel(cc.h[i]);
    int64_t guard = ag_now_ns() + 20000000000LL;
    while (f.done < cc.n && ag_now_ns() < guard)
        ag_loop_run_once(loop, 100);
    int done = f.done;
    for (int i = 0; i < n; i++)
        close(fds[i]);
    ag_loop_run(loop);
    for (int i = 0; i < cc.n; i++)
        ag_coro_unref(cc.h[i]);
    ag_pool_stats st;
    bool rest = pool_at_rest(c, &st);
    int cancelled = 0;
    for (int i = 0; i < f.nerr; i++)
        if (f.codes[i] == -ECANCELED)
            cancelled = f.errs[i];
    tap_ok(busy == -EBUSY && mid.waiting_fd > 0 && done == cc.n && cancelled == cc.n && rest,
           "emfile_cancel_waiting: free while waiting %d, %llu waited for an fd, %d of %d ended, "
           "%d cancelled, at rest %d (waiting_fd %llu requests %llu)",
           busy, (unsigned long long)mid.waiting_fd, done, cc.n, cancelled, rest,
           (unsigned long long)st.waiting_fd, (unsigned long long)st.requests);
    flood_diag(&f);
    ag_client_free(c);
    ag_loop_free(loop);
}

/* A flood under a soft limit of 40 descriptors with a mix of stalling (never answered until the
 * client's idle timeout) and good requests: all end, the good ones succeed once a stalled one
 * gives its descriptor back, the stats come back to rest. */
static void emfile_flood_low_limit(void)
{
    struct rlimit old, lim;
    getrlimit(RLIMIT_NOFILE, &old);
    lim = old;
    lim.rlim_cur = 40;
    /* Close nothing: the descriptors already open (stdio, the loop's) count against the 40. */
    if (setrlimit(RLIMIT_NOFILE, &lim) < 0) {
        tap_skip("emfile_flood_low_limit: setrlimit failed");
        return;
    }
    ag_loop *loop = NULL;
    ag_loop_new(&loop, NULL);
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.idle_timeout_ms = 400;
    ag_client *c = NULL;
    ag_client_new(&c, &o);
    struct flood f = {.c = c};
    enum { N = 2000 };
    for (int i = 0; i < N; i++) {
        ag_request rq;
        ag_request_init(&rq);
        rq.url = url_of(port, i % 20 == 0 ? "/stall-headers?s=5" : "/ok");
        ag_fetch_start(c, &rq, flood_cb, &f, NULL);
    }
    ag_loop_run(loop);
    ag_pool_stats st;
    bool rest = pool_at_rest(c, &st);
    int stalled = 0;
    for (int i = 0; i < f.nerr; i++)
        if (f.codes[i] == AG_EIDLE_TIMEOUT)
            stalled = f.errs[i];
    tap_ok(f.done == N && f.ok == N - N / 20 && stalled == N / 20 && rest && f.stats_calls_bad == 0,
           "emfile_flood_low_limit: %d of %d ended, %d ok, %d idle timeouts (%d wanted), at rest "
           "%d, fd_waits %llu, at most %d waiting for an fd",
           f.done, N, f.ok, stalled, N / 20, rest, (unsigned long long)st.fd_waits,
           f.max_seen_waiting);
    flood_diag(&f);
    ag_client_free(c);
    ag_loop_free(loop);
    setrlimit(RLIMIT_NOFILE, &old);
}

/* TLS handshakes that stall (the hostile server reads the ClientHello and never answers) hold
 * every descriptor: the requests behind them wait for one and end by the connect timeout. */
static void emfile_stalled_tls_handshakes(void)
{
    struct rlimit old, lim;
    getrlimit(RLIMIT_NOFILE, &old);
    lim = old;
    lim.rlim_cur = 32;
    if (setrlimit(RLIMIT_NOFILE, &lim) < 0) {
        tap_skip("emfile_stalled_tls_handshakes: setrlimit failed");
        return;
    }
    ag_loop *loop = NULL;
    ag_loop_new(&loop, NULL);
    ag_tls_opts t;
    ag_tls_opts_init(&t);
    t.insecure = 1;
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.tls = &t;
    o.connect_timeout_ms = 300;
    ag_client *c = NULL;
    ag_client_new(&c, &o);
    struct flood f = {.c = c};
    enum { N = 300 };
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/stall-headers?s=3", port);
    for (int i = 0; i < N; i++) {
        ag_request rq;
        ag_request_init(&rq);
        rq.url = url;
        ag_fetch_start(c, &rq, flood_cb, &f, NULL);
    }
    int64_t guard = ag_now_ns() + 25000000000LL;
    while (f.done < N && ag_now_ns() < guard)
        ag_loop_run_once(loop, 100);
    int done = f.done;
    setrlimit(RLIMIT_NOFILE, &old);
    ag_loop_run(loop);
    ag_pool_stats st;
    bool rest = pool_at_rest(c, &st);
    tap_ok(done == N && f.ok == 0 && rest,
           "emfile_stalled_tls_handshakes: %d of %d ended within 25 s, all failed (%d ok), at "
           "rest %d, fd_waits %llu",
           done, N, f.ok, rest, (unsigned long long)st.fd_waits);
    flood_diag(&f);
    ag_client_free(c);
    ag_loop_free(loop);
}

/* Lookups of a name sent to a DNS server that never answers, while every descriptor is taken:
 * each request ends by the connect timeout with an error, the pool comes back to rest. */
static void emfile_dns_lookups(void)
{
    const char *bh = getenv("AG_DNS_BLACKHOLE");
    if (!bh) {
        tap_skip("emfile_dns_lookups: no AG_DNS_BLACKHOLE (with-servers --dnsmasq)");
        return;
    }
    ag_loop *loop = NULL;
    ag_loop_new(&loop, NULL);
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.dns_servers = bh;
    o.connect_timeout_ms = 400;
    o.dns_timeout_ms = 100;
    ag_client *c = NULL;
    ag_client_new(&c, &o);
    struct flood f = {.c = c};
    enum { N = 60 };
    /* Half start before the fds are taken (their queries are in flight), half after. */
    for (int i = 0; i < N / 2; i++) {
        ag_request rq;
        ag_request_init(&rq);
        char url[128];
        snprintf(url, sizeof url, "http://h%d.atk12.test:%d/ok", i, port);
        rq.url = url;
        ag_fetch_start(c, &rq, flood_cb, &f, NULL);
    }
    ag_loop_run_once(loop, 10);
    static int fds[70000];
    int n = fill_fds(fds, 70000);
    for (int i = N / 2; i < N; i++) {
        ag_request rq;
        ag_request_init(&rq);
        char url[128];
        snprintf(url, sizeof url, "http://h%d.atk12.test:%d/ok", i, port);
        rq.url = url;
        ag_fetch_start(c, &rq, flood_cb, &f, NULL);
    }
    int64_t guard = ag_now_ns() + 20000000000LL;
    while (f.done < N && ag_now_ns() < guard)
        ag_loop_run_once(loop, 100);
    int done = f.done;
    for (int i = 0; i < n; i++)
        close(fds[i]);
    ag_loop_run(loop);
    ag_pool_stats st;
    bool rest = pool_at_rest(c, &st);
    tap_ok(done == N && f.ok == 0 && rest,
           "emfile_dns_lookups: %d of %d ended within 20 s with the fds taken, at rest %d", done, N,
           rest);
    flood_diag(&f);
    ag_client_free(c);
    ag_loop_free(loop);
}

/* Requests queued behind max_conns (one slot, held by a stalled request) and behind
 * max_connecting (one connect, a TLS handshake the server never answers) are cancelled while they
 * wait: each ends with -ECANCELED, the counts said they waited, and the pool comes back to rest. */
static void cancel_waiting(const char *name, bool tls)
{
    ag_loop *loop = NULL;
    ag_loop_new(&loop, NULL);
    ag_tls_opts t;
    ag_tls_opts_init(&t);
    t.insecure = 1;
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.tls = &t;
    if (tls)
        o.max_connecting = 1;
    else
        o.max_conns = 1;
    ag_client *c = NULL;
    ag_client_new(&c, &o);
    struct flood f = {.c = c};
    enum { N = 12 };
    ag_coro *h[N];
    char url[128];
    snprintf(url, sizeof url, "%s://127.0.0.1:%d/stall-headers?s=3", tls ? "https" : "http", port);
    for (int i = 0; i < N; i++) {
        ag_request rq;
        ag_request_init(&rq);
        rq.url = url;
        ag_fetch_start(c, &rq, flood_cb, &f, &h[i]);
    }
    for (int i = 0; i < 20; i++)
        ag_loop_run_once(loop, 10);
    ag_pool_stats mid;
    ag_client_pool_stats(c, &mid);
    uint64_t waited = tls ? mid.waiting_connect : mid.waiting_slot;
    /* The waiters first, newest first, then the one holding the slot. */
    for (int i = N - 1; i >= 0; i--)
        ag_coro_cancel(h[i]);
    ag_loop_run(loop);
    for (int i = 0; i < N; i++)
        ag_coro_unref(h[i]);
    ag_pool_stats st;
    bool rest = pool_at_rest(c, &st);
    int cancelled = 0;
    for (int i = 0; i < f.nerr; i++)
        if (f.codes[i] == -ECANCELED)
            cancelled = f.errs[i];
    tap_ok(waited == N - 1 && f.done == N && cancelled == N && rest && st.conns == 0 &&
               f.stats_calls_bad == 0,
           "cancel_waiting_%s: %llu of %d waited, %d ended, %d cancelled, at rest %d (conns %llu)",
           name, (unsigned long long)waited, N, f.done, cancelled, rest,
           (unsigned long long)st.conns);
    flood_diag(&f);
    int fr = ag_client_free(c);
    int lf = ag_loop_free(loop);
    tap_ok(fr == 0 && lf == 0, "cancel_waiting_%s_then_free: client %d, loop %d", name, fr, lf);
}

struct last_free {
    int n, done, free_rc;
    ag_pool_stats in_cb;
};

static void last_free_cb(ag_client *c, ag_response *resp, int status, void *arg)
{
    struct last_free *lf = arg;
    (void)status;
    ag_response_free(resp);
    if (++lf->done == lf->n) {
        ag_client_pool_stats(c, &lf->in_cb);
        lf->free_rc = ag_client_free(c);
    }
}

/* Requests that all wait for a descriptor that never comes: the callback of the last one frees
 * the client (the header allows it), with nothing left waiting in it. */
static void emfile_free_from_last_callback(void)
{
    ag_loop *loop = NULL;
    ag_loop_new(&loop, NULL);
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.connect_timeout_ms = 200;
    ag_client *c = NULL;
    ag_client_new(&c, &o);
    static int fds[70000];
    int n = fill_fds(fds, 70000);
    struct last_free lf = {.n = 30, .free_rc = 1};
    for (int i = 0; i < lf.n; i++) {
        ag_request rq;
        ag_request_init(&rq);
        rq.url = url_of(port, "/ok");
        ag_fetch_start(c, &rq, last_free_cb, &lf, NULL);
    }
    ag_loop_run(loop);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    int lfr = ag_loop_free(loop);
    tap_ok(
        lf.done == lf.n && lf.free_rc == 0 && lf.in_cb.waiting_fd == 0 && lfr == 0,
        "emfile_free_from_last_callback: %d of %d ended, the last callback's free %d (waiting_fd "
        "%llu then), loop free %d",
        lf.done, lf.n, lf.free_rc, (unsigned long long)lf.in_cb.waiting_fd, lfr);
}

/* A blocking client (no loop) with no descriptor free: the fetch ends by its connect timeout
 * with -EMFILE; it cannot wait for its own connections, it has none. In a child, so a hang ends
 * by an alarm and fails this case only. */
static void emfile_blocking_client(void)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(20);
        ag_client_opts o;
        ag_client_opts_init(&o);
        o.connect_timeout_ms = 300;
        ag_client *c = NULL;
        if (ag_client_new(&c, &o) < 0)
            _exit(3);
        static int fds[70000];
        fill_fds(fds, 70000);
        int rc;
        ag_response *r = get(c, url_of(port, "/ok"), &rc);
        ag_response_free(r);
        ag_pool_stats st;
        bool rest = pool_at_rest(c, &st);
        ag_client_free(c);
        _exit(rc == -EMFILE && rest ? 0 : rc == 0 ? 4 : rest ? 5 : 6);
    }
    int ws = 0;
    waitpid(pid, &ws, 0);
    tap_ok(WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
           "emfile_blocking_client: %s %d (0: -EMFILE and at rest; 4: ok, 5: another error, "
           "6: not at rest)",
           WIFSIGNALED(ws) ? strsignal(WTERMSIG(ws)) : "exit", WEXITSTATUS(ws));
}

/* Loops, clients and requests made while no descriptor is free: each call fails cleanly or
 * works, a request started ends, nothing crashes and nothing leaks (ASan). The loop is made once
 * with every descriptor taken and once before (so that the client's own setup meets EMFILE). */
static void emfile_create_everything(void)
{
    static int fds[70000];
    int n = fill_fds(fds, 70000);
    ag_loop *loop = NULL;
    int lr0 = ag_loop_new(&loop, NULL);
    ag_loop_free(loop);
    loop = NULL;
    for (int i = 0; i < n; i++)
        close(fds[i]);
    int lr = ag_loop_new(&loop, NULL);
    n = fill_fds(fds, 70000);
    int cr = 1, fr = 1, done = 0;
    ag_client *c = NULL;
    struct flood f = {0};
    if (lr == 0) {
        ag_client_opts o;
        ag_client_opts_init(&o);
        o.loop = loop;
        o.connect_timeout_ms = 200;
        cr = ag_client_new(&c, &o);
        if (cr == 0) {
            f.c = c;
            ag_request rq;
            ag_request_init(&rq);
            rq.url = url_of(port, "/ok");
            fr = ag_fetch_start(c, &rq, flood_cb, &f, NULL);
            ag_loop_run(loop);
            done = f.done;
            ag_client_free(c);
        }
        ag_loop_free(loop);
    }
    for (int i = 0; i < n; i++)
        close(fds[i]);
    tap_ok(lr == 0 && (cr < 0 || fr < 0 || (done == 1 && f.ok == 0)),
           "emfile_create_everything: loop with no fd %s; with one: client %d, fetch_start %d, "
           "%d ended (%d ok)",
           ag_err_name(lr0), cr, fr, done, f.ok);
    flood_diag(&f);
}

struct release_ctx {
    int *fds;
    int n;
};

static void release_fds(ag_timer *t, void *arg)
{
    (void)t;
    struct release_ctx *rc = arg;
    for (int i = 0; i < rc->n; i++)
        close(rc->fds[i]);
    rc->n = 0;
}

struct resolve_ctx {
    ag_client *c;
    const char *host;
    int rc;
    bool ended;
    ag_pool_stats during;
};

static void resolve_co(void *arg)
{
    struct resolve_ctx *rx = arg;
    ag_addr a[4];
    size_t n = 0;
    rx->rc = ag_client_resolve(rx->c, rx->host, a, 4, &n);
    rx->ended = true;
}

/* ag_client_resolve against a DNS server that never answers, with every descriptor taken: one
 * lookup is cancelled while it waits, another ends by the connect timeout; both end, the counts
 * saw them as requests and come back to rest. */
static void emfile_resolve_cancel(void)
{
    const char *bh = getenv("AG_DNS_BLACKHOLE");
    if (!bh) {
        tap_skip("emfile_resolve_cancel: no AG_DNS_BLACKHOLE (with-servers --dnsmasq)");
        return;
    }
    ag_loop *loop = NULL;
    ag_loop_new(&loop, NULL);
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.dns_servers = bh;
    o.connect_timeout_ms = 400;
    ag_client *c = NULL;
    ag_client_new(&c, &o);
    static int fds[70000];
    int n = fill_fds(fds, 70000);
    struct resolve_ctx a = {.c = c, .host = "a.atk12.test", .rc = 1};
    struct resolve_ctx b = {.c = c, .host = "b.atk12.test", .rc = 1};
    ag_coro *ha = NULL, *hb = NULL;
    ag_coro_spawn(loop, resolve_co, &a, &ha);
    ag_coro_spawn(loop, resolve_co, &b, &hb);
    for (int i = 0; i < 5; i++)
        ag_loop_run_once(loop, 10);
    ag_pool_stats mid;
    ag_client_pool_stats(c, &mid);
    ag_coro_cancel(ha);
    int64_t guard = ag_now_ns() + 20000000000LL;
    while (!(a.ended && b.ended) && ag_now_ns() < guard)
        ag_loop_run_once(loop, 100);
    bool ended = a.ended && b.ended;
    for (int i = 0; i < n; i++)
        close(fds[i]);
    ag_loop_run(loop);
    ag_coro_unref(ha);
    ag_coro_unref(hb);
    ag_pool_stats st;
    bool rest = pool_at_rest(c, &st);
    bool ok = ended && mid.requests == 2 && a.rc == -ECANCELED && b.rc < 0 && rest;
    /* The known fault: the lookup fails at once with -EMFILE (not a code ag_client_resolve
     * names) instead of waiting for a descriptor as ag_fetch does. */
    if (!ok && a.rc == -EMFILE && b.rc == -EMFILE && mid.requests == 0)
        tap_skip("KNOWN: emfile_resolve_cancel: ag_client_resolve fails at once with -EMFILE when "
                 "no descriptor is free, where ag_fetch waits until the connect timeout");
    else
        tap_ok(ok,
               "emfile_resolve_cancel: %llu lookups counted, the cancelled one %s, the other %s, "
               "both ended within 20 s %d, at rest %d",
               (unsigned long long)mid.requests, ag_err_name(a.rc), ag_err_name(b.rc), ended, rest);
    ag_client_free(c);
    ag_loop_free(loop);
}

/* Descriptors held by someone else (the program, not the client) are given back while requests
 * wait for one: the waiters try again by themselves and all succeed. */
static void emfile_freed_by_others_retried(void)
{
    ag_loop *loop = NULL;
    ag_loop_new(&loop, NULL);
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.connect_timeout_ms = 10000;
    ag_client *c = NULL;
    ag_client_new(&c, &o);
    struct flood f = {.c = c};
    static int fds[70000];
    int n = fill_fds(fds, 70000);
    enum { N = 40 };
    for (int i = 0; i < N; i++) {
        ag_request rq;
        ag_request_init(&rq);
        rq.url = url_of(port, "/ok");
        ag_fetch_start(c, &rq, flood_cb, &f, NULL);
    }
    /* Give back only the last 4 (the lowest numbers stay taken) after 300 ms. */
    struct release_ctx rc = {.fds = fds + n - 4, .n = 4};
    ag_timer t;
    ag_timer_init(&t, release_fds, &rc);
    ag_timer_start(loop, &t, ag_now_ns() + 300000000);
    ag_loop_run(loop);
    for (int i = 0; i < n - 4; i++)
        close(fds[i]);
    ag_pool_stats st;
    bool rest = pool_at_rest(c, &st);
    tap_ok(f.done == N && f.ok == N && rest && st.fd_waits > 0,
           "emfile_freed_by_others_retried: %d of %d ended, %d ok, fd_waits %llu, at rest %d",
           f.done, N, f.ok, (unsigned long long)st.fd_waits, rest);
    flood_diag(&f);
    ag_client_free(c);
    ag_loop_free(loop);
}

struct hand_ctx {
    int rc[2];
    bool reused[2];
    char local[2][64];
    int done;
};

static void hand_cb(ag_client *c, ag_response *resp, int status, void *arg)
{
    (void)c;
    struct hand_ctx *h = arg;
    int i = ag_response_request_id(resp) == 1 ? 0 : 1;
    h->rc[i] = status;
    h->reused[i] = ag_response_reused(resp);
    snprintf(h->local[i], sizeof h->local[i], "%s", ag_response_local(resp));
    h->done++;
    ag_response_free(resp);
}

/* One descriptor for the client: the first request holds it, the second waits for it. A
 * connection released in good order is handed to the waiter (same host); one whose response had
 * an invalid status (a 6xx: not trusted with another request) must be closed instead, and the
 * waiter open a new connection. */
static void emfile_handover(const char *name, const char *first, bool want_handed)
{
    ag_loop *loop = NULL;
    ag_loop_new(&loop, NULL);
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.connect_timeout_ms = 5000;
    ag_client *c = NULL;
    ag_client_new(&c, &o);
    static int fds[70000];
    int n = fill_fds(fds, 70000);
    close(fds[--n]);
    struct hand_ctx h = {.rc = {1, 1}};
    char *url = malloc(64 + 2 * strlen(first));
    size_t k = (size_t)sprintf(url, "http://127.0.0.1:%d/atk12/raw?step=4&ms=5&b=", port);
    for (const char *p = first; *p; p++)
        k += (size_t)sprintf(url + k, "%02x", (unsigned char)*p);
    ag_request rq;
    ag_request_init(&rq);
    rq.url = url;
    ag_fetch_start(c, &rq, hand_cb, &h, NULL);
    ag_loop_run_once(loop, 10);
    rq.url = url_of(port, "/atk12/port");
    ag_fetch_start(c, &rq, hand_cb, &h, NULL);
    int64_t guard = ag_now_ns() + 20000000000LL;
    while (h.done < 2 && ag_now_ns() < guard)
        ag_loop_run_once(loop, 100);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    ag_loop_run(loop);
    bool same = strcmp(h.local[0], h.local[1]) == 0;
    tap_ok(h.done == 2 && h.rc[0] == 0 && h.rc[1] == 0 && same == want_handed &&
               (bool)h.reused[1] == want_handed,
           "emfile_handover_%s: %s then %s; local %s then %s, the second %s (%s wanted)", name,
           ag_err_name(h.rc[0]), ag_err_name(h.rc[1]), h.local[0], h.local[1],
           h.reused[1] ? "reused" : "new", want_handed ? "handed over" : "a new connection");
    free(url);
    ag_client_free(c);
    ag_loop_free(loop);
}

/* An idle connection of the client to one origin, and no descriptor free: a request to another
 * origin closes the idle one and takes its descriptor. */
static void emfile_idle_evicted_for_other_host(void)
{
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.ip_family = AG_IP_V4;
    o.connect_timeout_ms = 2000;
    ag_client *c = NULL;
    ag_client_new(&c, &o);
    int rc1, rc2;
    ag_response *r1 = get(c, url_of(port, "/ok"), &rc1);
    ag_response_free(r1);
    static int fds[70000];
    int n = fill_fds(fds, 70000);
    char url[128];
    snprintf(url, sizeof url, "http://localhost:%d/ok", port);
    ag_response *r2 = get(c, url, &rc2);
    ag_pool_stats st;
    bool rest = pool_at_rest(c, &st);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    tap_ok(rc1 == 0 && rc2 == 0 && !ag_response_reused(r2) && rest && st.conns == 1,
           "emfile_idle_evicted_for_other_host: %s then %s, %llu connections kept (1 wanted), at "
           "rest %d",
           ag_err_name(rc1), ag_err_name(rc2), (unsigned long long)st.conns, rest);
    ag_response_free(r2);
    ag_client_free(c);
}

/* Every timeout at INT64_MAX milliseconds: a deadline computed as now + ms * 10^6 would wrap
 * negative (signed overflow, UBSan) and end the request at once. The request must succeed. */
static void timeouts_int64_max(void)
{
    ag_loop *loop = NULL;
    ag_loop_new(&loop, NULL);
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.connect_timeout_ms = INT64_MAX;
    o.idle_timeout_ms = INT64_MAX;
    o.total_timeout_ms = INT64_MAX;
    o.pool_timeout_ms = INT64_MAX;
    o.keepalive_idle_ms = INT64_MAX;
    o.expect_timeout_ms = INT64_MAX;
    o.dns_timeout_ms = INT64_MAX;
    o.happy_eyeballs_delay_ms = INT64_MAX;
    o.dns_negative_ttl_ms = INT64_MAX;
    ag_client *c = NULL;
    int cr = ag_client_new(&c, &o);
    struct flood f = {.c = c};
    if (cr == 0) {
        ag_request rq;
        ag_request_init(&rq);
        rq.url = url_of(port, "/ok");
        rq.timeout_ms = INT64_MAX;
        ag_fetch_start(c, &rq, flood_cb, &f, NULL);
        ag_loop_run(loop);
    }
    tap_ok(cr < 0 || (f.done == 1 && f.ok == 1),
           "timeouts_int64_max_not_wrapped: client %s, %d ended, %d ok", ag_err_name(cr), f.done,
           f.ok);
    flood_diag(&f);
    ag_client_free(c);
    ag_loop_free(loop);
}

int main(void)
{
    port = env_port("AG_HOSTILE_PORT");
    /* Taking every free descriptor costs one open() each: a soft limit of 1,024 keeps that
     * quick whatever the hard limit is. */
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur > 1024) {
        lim.rlim_cur = 1024;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
    frame_table();
    split_writes = 1;
    frame_table();
    split_writes = 0;
    fold_lf_same_as_crlf();
    nul_in_lf_head();
    reason_and_value_without_cr();
    keepalive_after_status("after_600_new_connection",
                           "HTTP/1.1 600 X\r\nContent-Length: 2\r\n\r\nok", false);
    keepalive_after_status("after_099_new_connection",
                           "HTTP/1.1 099 X\r\nContent-Length: 2\r\n\r\nok", false);
    keepalive_after_status("after_1_9_kept", "HTTP/1.9 200 OK\r\nContent-Length: 2\r\n\r\nok",
                           true);
    keepalive_after_status("after_lf_head_kept", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", true);
    location_table();
    location_long_non_ascii();
    status_class_redirects();
    stats_null_args();
    response_local_matches_server();
    emfile_never_freed_total_timeout();
    emfile_never_freed_connect_timeout();
    emfile_stalled_tls_handshakes();
    emfile_dns_lookups();
    cancel_waiting("slot", false);
    cancel_waiting("connect", true);
    emfile_free_from_last_callback();
    emfile_blocking_client();
    emfile_create_everything();
    timeouts_int64_max();
    emfile_cancel_waiting();
    emfile_flood_low_limit();
    emfile_freed_by_others_retried();
    emfile_idle_evicted_for_other_host();
    emfile_handover("after_200", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true);
    emfile_handover("not_after_600", "HTTP/1.1 600 X\r\nContent-Length: 2\r\n\r\nok", false);
    emfile_handover("not_after_close",
                    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", false);
    emfile_resolve_cancel();
    return tap_done();
}
