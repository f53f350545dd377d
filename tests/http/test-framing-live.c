/* test-framing-live.c: the framing and semantics rules through the public API against
 * tests/servers/hostile.py (its /frm/ cases): heads ended by LF alone, HTTP/1.2, status codes
 * outside 100-599 or unknown inside, chunk sizes with leading zeros, and redirects whose Location
 * has spaces, raw non-ASCII bytes, a tab, nothing, or percent-encoded CR LF, which must reach the
 * server still encoded in the request line and the Host field. */
#include "tests/http/util.h"

static int port;

typedef struct fcase {
    const char *path;
    int want_rc;
    int want_status;
    int want_minor;
    const char *want_body; /* exact, or with a leading '~': a part of the body */
    int want_redirects;
    int kept; /* the next request goes on the same connection */
} fcase;

static const fcase cases[] = {
    /* LF alone ends each head line (RFC 9112 section 2.2); the chunked framing stays CRLF, and a
     * bare CR is refused anywhere. */
    {"/frm/lf", 0, 200, 1, "ok", 0, 1},
    {"/frm/lf-interim", 0, 200, 1, "ok", 0, 1},
    {"/frm/lf-chunked", 0, 200, 1, "ok", 0, 1},
    {"/frm/lf-chunk-size", AG_EPROTO, 0, 0, NULL, 0, 0},
    {"/frm/lf-trailer", AG_EPROTO, 0, 0, NULL, 0, 0},
    {"/frm/bare-cr", AG_EPROTO, 0, 0, NULL, 0, 0},
    /* HTTP/1.2 is read as HTTP/1.1; HTTP/2.0 is another protocol. */
    {"/frm/http12", 0, 200, 1, "ok", 0, 1},
    {"/frm/http12-chunked", 0, 200, 1, "ok", 0, 1},
    {"/frm/http20", AG_EPROTO, 0, 0, NULL, 0, 0},
    /* Codes outside 100-599: delivered as sent, the connection not reused. 000 is refused. */
    {"/frm/status?code=600", 0, 600, 1, "ok", 0, 0},
    {"/frm/status?code=999", 0, 999, 1, "ok", 0, 0},
    {"/frm/status?code=099", 0, 99, 1, "ok", 0, 0},
    {"/frm/status?code=042", 0, 42, 1, "ok", 0, 0},
    {"/frm/status?code=000", AG_EPROTO, 0, 0, NULL, 0, 0},
    /* Unknown codes inside the range: the x00 of their class. */
    {"/frm/status?code=599", 0, 599, 1, "ok", 0, 1},
    {"/frm/interim-199", 0, 200, 1, "ok", 0, 1},
    {"/frm/399", 0, 399, 1, "redirect body", 0, 1},
    {"/frm/300", 0, 300, 1, "redirect body", 0, 1},
    /* Leading zeros in chunk sizes, the last chunk's included. */
    {"/frm/zeros", 0, 200, 1, "ok", 0, 1},
    /* A Location with spaces or raw non-ASCII bytes: escaped and followed. */
    {"/frm/loc-space", 0, 200, 1, "~\"target\": \"/frm/echo?q=a%20b%20c\"", 1, 1},
    {"/frm/loc-path", 0, 200, 1, "~\"target\": \"/frm/a%20b%C3%A9\"", 1, 1},
    {"/frm/loc-8bit", 0, 200, 1, "~\"target\": \"/frm/echo?q=caf%C3%A9%FF\"", 1, 1},
    /* A control byte (HTAB) in it: the redirect fails. */
    {"/frm/loc-tab", AG_EREDIRECT, 0, 0, NULL, 0, 1},
    /* An empty one, or white space only: the 302 is the answer. */
    {"/frm/loc-empty", 0, 302, 1, "redirect body", 0, 1},
    {"/frm/loc-blank", 0, 302, 1, "redirect body", 0, 1},
};

static const char *shown(int rc)
{
    return rc ? ag_err_name(rc) : "ok";
}

static void run_cases(void)
{
    ag_client *c;
    ag_client_new(&c, NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const fcase *k = &cases[i];
        int rc;
        ag_response *r = get(c, url_of(port, k->path), &rc);
        const char *body = ag_response_body(r, NULL);
        int ok = rc == k->want_rc;
        if (ok && rc == 0)
            ok = ag_response_status(r) == k->want_status &&
                 ag_response_http_minor(r) == k->want_minor &&
                 ag_response_redirects(r) == (unsigned)k->want_redirects &&
                 (k->want_body[0] == '~' ? strstr(body, k->want_body + 1) != NULL
                                         : strcmp(body, k->want_body) == 0);
        /* A failed redirect says so and why. */
        if (ok && rc == AG_EREDIRECT)
            ok = strncmp(ag_response_error_detail(r), "redirect: ", 10) == 0;
        uint64_t id = ag_response_conn_id(r);
        int rc2;
        ag_response *n = get(c, url_of(port, "/ok"), &rc2);
        int same = ag_response_conn_id(n) == id;
        tap_ok(ok && rc2 == 0 && same == k->kept,
               "framing_live %s: %s, status %d, HTTP/1.%d, %u redirects, \"%.60s\" %s; next "
               "request %s (want %s, %d)",
               k->path, shown(rc), ag_response_status(r), ag_response_http_minor(r),
               ag_response_redirects(r), body, ag_response_error_detail(r),
               same ? "on the same connection" : "on a new connection", shown(k->want_rc),
               k->want_status);
        ag_response_free(n);
        ag_response_free(r);
    }
    ag_client_free(c);
}

/* The head bytes as the trace hook sees them. */
static char traced[1024];
static size_t traced_len;

static void on_trace(void *arg, const ag_trace_event *ev)
{
    (void)arg;
    if (ev->kind != AG_TRACE_HEAD_IN || traced_len + ev->len > sizeof traced)
        return;
    memcpy(traced + traced_len, ev->data, ev->len);
    traced_len += ev->len;
}

/* A head of bare LFs is counted and traced byte for byte: the interim's and the final one's. */
static void lf_counted(void)
{
    static const char want[] = "HTTP/1.1 100 Continue\n\n"
                               "HTTP/1.1 200 OK\nContent-Type: text/plain\nX-Line: ends in LF\n"
                               "Content-Length: 2\n\n";
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.trace = on_trace;
    ag_client *c;
    ag_client_new(&c, &o);
    int rc;
    ag_response *r = get(c, url_of(port, "/frm/lf-interim"), &rc);
    tap_ok(rc == 0 && ag_response_header_bytes(r) == sizeof want - 1 &&
               traced_len == sizeof want - 1 && memcmp(traced, want, traced_len) == 0 &&
               strcmp(ag_response_header(r, "X-Line"), "ends in LF") == 0,
           "framing_live_lf_head_counted_and_traced: %s, %llu head bytes, %zu traced (want %zu)",
           shown(rc), (unsigned long long)ag_response_header_bytes(r), traced_len, sizeof want - 1);
    ag_response_free(r);
    ag_client_free(c);
}

/* Percent-encoded CR LF in a Location stays encoded on the wire: in the request line, and in the
 * Host field when it is in the host (connect_to sends that host's request to hostile.py). The
 * server echoes the request line's target and the fields it parsed: no X-Injected among them. */
static void no_injection(void)
{
    char entry[64];
    snprintf(entry, sizeof entry, "::127.0.0.1:%d", port);
    const char *const connect_to[] = {entry, NULL};
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.connect_to = connect_to;
    ag_client *c;
    ag_client_new(&c, &o);

    int rc;
    ag_response *r = get(c, url_of(port, "/frm/loc-crlf"), &rc);
    const char *body = ag_response_body(r, NULL);
    tap_ok(rc == 0 && ag_response_status(r) == 200 && ag_response_redirects(r) == 1 &&
               strstr(body, "\"target\": \"/frm/echo?x=%0d%0aX-Injected:%20yes\"") &&
               !strstr(body, "X-Injected\", "),
           "framing_live_location_crlf_stays_in_target: %s, %.300s", shown(rc), body);
    ag_response_free(r);

    r = get(c, url_of(port, "/frm/loc-crlf-host"), &rc);
    body = ag_response_body(r, NULL);
    tap_ok(rc == 0 && ag_response_status(r) == 200 && ag_response_redirects(r) == 1 &&
               strstr(body, "\"target\": \"/frm/echo\"") &&
               strstr(body, "[\"Host\", \"evil%0d%0ax-injected%3a%20yes\"]") &&
               !strstr(body, "X-Injected\", ") && !strstr(body, "x-injected\", "),
           "framing_live_location_crlf_stays_in_host: %s %s, %.300s", shown(rc),
           ag_response_error_detail(r), body);
    ag_response_free(r);
    ag_client_free(c);
}

int main(void)
{
    port = env_port("AG_HOSTILE_PORT");
    run_cases();
    lf_counted();
    no_injection();
    return tap_done();
}
