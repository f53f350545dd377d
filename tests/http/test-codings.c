/* test-codings.c: content and transfer codings through the public API against hostile.py's
 * /cod/ cases: decoded bodies and their two sizes, the Accept-Encoding sent, a body cut short
 * under a matching Content-Length, an unknown coding, a bomb, and a dropped redirect body. */
#include "tests/http/util.h"

static int port;
static char *text; /* COD_TEXT of hostile.py */
static size_t text_len;

static void make_text(void)
{
    size_t cap = 20000 * 40;
    text = malloc(cap);
    for (int i = 0; i < 20000; i++)
        text_len +=
            (size_t)snprintf(text + text_len, cap - text_len, "line %d of the coded body\n", i);
}

static ag_client *client(int compressed, unsigned ratio)
{
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.compressed = compressed;
    o.max_decode_ratio = ratio;
    ag_client *c;
    ag_client_new(&c, &o);
    return c;
}

static ag_response *fetch(ag_client *c, const char *path, int no_decode, int sink, int *rc)
{
    ag_request r;
    ag_request_init(&r);
    r.url = url_of(port, path);
    r.no_decode = no_decode;
    r.sink = sink;
    ag_response *resp;
    *rc = ag_fetch(c, &r, &resp);
    return resp;
}

static int is_text(const ag_response *r)
{
    size_t n;
    const char *b = ag_response_body(r, &n);
    return n == text_len && memcmp(b, text, n) == 0 && ag_response_decoded_bytes(r) == text_len;
}

/* The connection a failed coded body came on is not reused, and the client goes on. */
static int next_ok(ag_client *c)
{
    int rc;
    ag_response *r = fetch(c, "/ok", 0, 0, &rc);
    int ok = rc == 0 && ag_response_status(r) == 200;
    ag_response_free(r);
    return ok;
}

static void decoded(void)
{
    ag_client *c = client(1, 0);
    int rc;
    const char *paths[] = {"/cod/gzip", "/cod/deflate-raw", "/cod/te-gzip-chunked"};
    for (size_t i = 0; i < 3; i++) {
        ag_response *r = fetch(c, paths[i], 0, 0, &rc);
        uint64_t wire = ag_response_body_bytes(r);
        tap_ok(rc == 0 && is_text(r) && wire > 0 && wire < text_len / 4,
               "codings_decoded %s (rc %d, %llu wire bytes, %llu decoded)", paths[i], rc,
               (unsigned long long)wire, (unsigned long long)ag_response_decoded_bytes(r));
        ag_response_free(r);
    }
    /* The redirect's own body claims gzip and is not: it is dropped, never decoded, and the
     * decoded count is the final response's alone. */
    ag_response *r = fetch(c, "/cod/redirect", 0, 0, &rc);
    tap_ok(rc == 0 && is_text(r) && ag_response_redirects(r) == 1,
           "codings_redirect_body_not_decoded (rc %d, decoded %llu)", rc,
           (unsigned long long)ag_response_decoded_bytes(r));
    ag_response_free(r);
    ag_client_free(c);
}

static void accept_encoding(void)
{
    ag_client *c = client(1, 0), *plain = client(0, 0);
    int rc;
    ag_response *r = fetch(c, "/cod/echo-ae", 0, 0, &rc);
    const char *want = ag_codings()[0] ? ag_codings() : "-";
    tap_ok(rc == 0 && strcmp(ag_response_body(r, NULL), want) == 0,
           "codings_accept_encoding_sent (\"%s\")", rc == 0 ? ag_response_body(r, NULL) : "");
    ag_response_free(r);
    r = fetch(c, "/cod/echo-ae", 1, 0, &rc);
    tap_ok(rc == 0 && strcmp(ag_response_body(r, NULL), "-") == 0,
           "codings_no_decode_sends_none (\"%s\")", rc == 0 ? ag_response_body(r, NULL) : "");
    ag_response_free(r);
    r = fetch(plain, "/cod/echo-ae", 0, 0, &rc);
    tap_ok(rc == 0 && strcmp(ag_response_body(r, NULL), "-") == 0,
           "codings_not_compressed_sends_none (\"%s\")", rc == 0 ? ag_response_body(r, NULL) : "");
    ag_response_free(r);
    /* The caller's own Accept-Encoding goes as it is, alone. */
    ag_request req;
    ag_request_init(&req);
    req.url = url_of(port, "/cod/echo-ae");
    ag_header h[] = {{"Accept-Encoding", "gzip;q=0.5"}};
    req.headers = h;
    req.nheaders = 1;
    rc = ag_fetch(c, &req, &r);
    tap_ok(rc == 0 && strcmp(ag_response_body(r, NULL), "gzip;q=0.5") == 0,
           "codings_callers_accept_encoding_kept (\"%s\")",
           rc == 0 ? ag_response_body(r, NULL) : "");
    ag_response_free(r);
    /* Not decoding, the body comes as it was sent, both sizes the wire's. */
    r = fetch(plain, "/cod/gzip", 0, 0, &rc);
    size_t n;
    const unsigned char *b = (const unsigned char *)ag_response_body(r, &n);
    tap_ok(rc == 0 && n > 2 && b[0] == 0x1f && b[1] == 0x8b &&
               ag_response_decoded_bytes(r) == ag_response_body_bytes(r),
           "codings_not_compressed_body_as_sent (rc %d, %zu bytes)", rc, n);
    ag_response_free(r);
    ag_client_free(c);
    ag_client_free(plain);
}

static void broken(void)
{
    ag_client *c = client(1, 0);
    int rc;
    ag_response *r = fetch(c, "/cod/gzip-cut", 0, 0, &rc);
    const char *d = ag_response_error_detail(r);
    tap_ok(rc == AG_EDECODE && d && strstr(d, "truncated"),
           "codings_gzip_cut_under_content_length (rc %s: %s)", ag_err_name(rc), d ? d : "");
    ag_response_free(r);
    tap_ok(next_ok(c), "codings_client_goes_on_after_cut_body");
    r = fetch(c, "/cod/unknown", 0, 0, &rc);
    d = ag_response_error_detail(r);
    tap_ok(rc == AG_EDECODE && d && strstr(d, "\"compress\""), "codings_unknown_coding (rc %s: %s)",
           ag_err_name(rc), d ? d : "");
    ag_response_free(r);
    tap_ok(next_ok(c), "codings_client_goes_on_after_unknown");
    /* The bomb: 100 MiB of zeros in 337 bytes, stopped soon after the first MiB. */
    r = fetch(c, "/cod/bomb", 0, AG_SINK_DISCARD, &rc);
    uint64_t got = ag_response_decoded_bytes(r);
    tap_ok(rc == AG_EDECODE_RATIO && got < (3u << 20),
           "codings_bomb_stops_early (rc %s, %llu decoded of 104857600, %llu on the wire)",
           ag_err_name(rc), (unsigned long long)got, (unsigned long long)ag_response_body_bytes(r));
    ag_response_free(r);
    ag_client_free(c);
    /* Without a ratio limit the body cap stops it instead (64 MiB by default). */
    c = client(1, AG_NO_RATIO_LIMIT);
    r = fetch(c, "/cod/bomb", 0, 0, &rc);
    tap_ok(rc == AG_ETOO_LARGE && ag_response_decoded_bytes(r) <= 64u << 20,
           "codings_bomb_without_ratio_meets_body_cap (rc %s, %llu decoded)", ag_err_name(rc),
           (unsigned long long)ag_response_decoded_bytes(r));
    ag_response_free(r);
    ag_client_free(c);
    /* Asked not to decode: the bomb is 337 bytes, delivered as they came. */
    c = client(1, 0);
    r = fetch(c, "/cod/bomb", 1, 0, &rc);
    tap_ok(rc == 0 && ag_response_decoded_bytes(r) == ag_response_body_bytes(r) &&
               ag_response_body_bytes(r) < 4096,
           "codings_no_decode_delivers_coded (rc %s, %llu bytes)", ag_err_name(rc),
           (unsigned long long)ag_response_body_bytes(r));
    ag_response_free(r);
    ag_client_free(c);
}

int main(void)
{
    port = env_port("AG_HOSTILE_PORT");
    if (!strstr(ag_codings(), "gzip")) {
        printf("1..0 # SKIP built without zlib\n");
        return 0;
    }
    make_text();
    decoded();
    accept_encoding();
    broken();
    free(text);
    return tap_done();
}
