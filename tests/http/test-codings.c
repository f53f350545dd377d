/* test-codings.c: content and transfer codings through the public API against hostile.py's
 * /cod/ cases (decoded bodies and their two sizes, the Accept-Encoding sent, a body cut short
 * under a matching Content-Length, an unknown coding, a bomb, a dropped redirect body) and
 * nginx's (with-servers --codings: gzip and brotli as nginx sends them, files coded ahead). */
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

/* A body refused in the same read as its head (the bomb's first bytes, a cut stream's end)
 * leaves the head counted and traced: -v and size_header still show what came. */
static int heads_traced;

static void count_heads(void *arg, const ag_trace_event *ev)
{
    (void)arg;
    if (ev->kind == AG_TRACE_HEAD_IN)
        heads_traced++;
}

static void error_keeps_head(void)
{
    static const char *paths[] = {"/cod/bomb", "/cod/gzip-cut"};
    for (size_t i = 0; i < 2; i++) {
        ag_client_opts o;
        ag_client_opts_init(&o);
        o.compressed = 1;
        o.trace = count_heads;
        ag_client *c;
        ag_client_new(&c, &o);
        heads_traced = 0;
        int rc;
        ag_response *r = fetch(c, paths[i], 0, AG_SINK_DISCARD, &rc);
        tap_ok((rc == AG_EDECODE_RATIO || rc == AG_EDECODE) && heads_traced == 1 &&
                   ag_response_header_bytes(r) > 0 && ag_response_status(r) == 200,
               "codings_error_keeps_head %s (rc %s, %d heads traced, %llu header bytes)", paths[i],
               ag_err_name(rc), heads_traced, (unsigned long long)ag_response_header_bytes(r));
        ag_response_free(r);
        ag_client_free(c);
    }
}

/* ---- nginx --codings ---- */

static char *ntext; /* AG_NGINX_ROOT/text.txt */
static size_t ntext_len;

static ag_response *nget(ag_client *c, int nport, const char *path, int sink, int *rc)
{
    ag_request r;
    ag_request_init(&r);
    r.url = url_of(nport, path);
    r.sink = sink;
    ag_response *resp;
    *rc = ag_fetch(c, &r, &resp);
    return resp;
}

static void nginx(void)
{
    const char *ps = getenv("AG_NGINX_PORT"), *root = getenv("AG_NGINX_ROOT");
    if (!ps || !root || !getenv("AG_NGINX_CODED")) {
        tap_skip("codings_nginx_*: run with with-servers --codings");
        return;
    }
    int nport = atoi(ps);
    char path[1024];
    snprintf(path, sizeof path, "%s/text.txt", root);
    ntext = read_file(path, &ntext_len);
    int br = getenv("AG_NGINX_BROTLI") && strcmp(getenv("AG_NGINX_BROTLI"), "1") == 0;
    int zstd = getenv("AG_NGINX_ZSTD") && strcmp(getenv("AG_NGINX_ZSTD"), "1") == 0;
    int have_br = strstr(ag_codings(), "br") != NULL;
    int have_zstd = strstr(ag_codings(), "zstd") != NULL;
    ag_client *c = client(1, 0);
    int rc;
    static const struct {
        const char *path;
        int needs; /* 1: brotli, 2: zstd */
        const char *coding;
    } good[] = {
        {"/gz/text.txt", 0, "gzip"},
        {"/br/text.txt", 1, "br"},
        {"/coded/gzip/text.txt", 0, "gzip"},
        {"/coded/gzip/multi.txt", 0, "gzip"},
        {"/coded/gzip-gzip/text.txt", 0, "gzip, gzip"},
        {"/coded/deflate/text.txt", 0, "deflate"},
        {"/coded/deflate/raw.txt", 0, "deflate"},
        {"/coded/zstd/text.txt", 2, "zstd"},
        {"/coded/zstd/multi.txt", 2, "zstd"},
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        if ((good[i].needs == 1 && (!br || !have_br)) ||
            (good[i].needs == 2 && (!zstd || !have_zstd))) {
            tap_skip("codings_nginx_decoded %s: %s", good[i].path,
                     good[i].needs == 1 ? "no brotli (module or library)"
                                        : "no zstd (CLI or library)");
            continue;
        }
        ag_response *r = nget(c, nport, good[i].path, 0, &rc);
        size_t n;
        const char *b = ag_response_body(r, &n);
        const char *ce = ag_response_header(r, "Content-Encoding");
        tap_ok(rc == 0 && ntext && n == ntext_len && memcmp(b, ntext, n) == 0 &&
                   ag_response_decoded_bytes(r) == ntext_len &&
                   ag_response_body_bytes(r) < ntext_len / 2 && ce &&
                   strcmp(ce, good[i].coding) == 0,
               "codings_nginx_decoded %s (rc %s, %llu wire bytes, %llu decoded, %s)", good[i].path,
               ag_err_name(rc), (unsigned long long)ag_response_body_bytes(r),
               (unsigned long long)ag_response_decoded_bytes(r), ce ? ce : "no coding");
        ag_response_free(r);
    }
    static const struct {
        const char *path;
        int needs;
        int want;
    } bad[] = {
        {"/coded/gzip/truncated.txt", 0, AG_EDECODE},
        {"/coded/gzip/truncated-trailer.txt", 0, AG_EDECODE},
        {"/coded/gzip/corrupt.txt", 0, AG_EDECODE},
        {"/coded/gzip/badcrc.txt", 0, AG_EDECODE},
        {"/coded/gzip/trailing.txt", 0, AG_EDECODE},
        {"/coded/deflate/truncated.txt", 0, AG_EDECODE},
        {"/coded/zstd/truncated.txt", 2, AG_EDECODE},
        {"/coded/zstd/corrupt.txt", 2, AG_EDECODE},
        {"/coded/unknown/text.txt", 0, AG_EDECODE},
        {"/coded/gzip/bomb", 0, AG_EDECODE_RATIO},
        {"/coded/gzip-gzip/bomb", 0, AG_EDECODE_RATIO},
        {"/coded/zstd/bomb", 2, AG_EDECODE_RATIO},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (bad[i].needs == 2 && (!zstd || !have_zstd)) {
            tap_skip("codings_nginx_refused %s: no zstd (CLI or library)", bad[i].path);
            continue;
        }
        ag_response *r = nget(c, nport, bad[i].path, AG_SINK_DISCARD, &rc);
        const char *d = ag_response_error_detail(r);
        tap_ok(rc == bad[i].want && ag_response_decoded_bytes(r) < (3u << 20),
               "codings_nginx_refused %s (rc %s, %llu decoded: %s)", bad[i].path, ag_err_name(rc),
               (unsigned long long)ag_response_decoded_bytes(r), d ? d : "");
        ag_response_free(r);
    }
    /* 64 MiB of zeros is a valid body: it passes with the ratio limit off and a cap that
     * holds it, into the discard sink. */
    ag_client_free(c);
    c = client(1, AG_NO_RATIO_LIMIT);
    ag_response *r = nget(c, nport, "/coded/gzip/zeros64m", AG_SINK_DISCARD, &rc);
    tap_ok(rc == 0 && ag_response_decoded_bytes(r) == 64u << 20,
           "codings_nginx_zeros64m_without_ratio_limit (rc %s, %llu decoded)", ag_err_name(rc),
           (unsigned long long)ag_response_decoded_bytes(r));
    ag_response_free(r);
    ag_client_free(c);
    free(ntext);
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
    error_keeps_head();
    nginx();
    free(text);
    return tap_done();
}
