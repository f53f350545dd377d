/* test-codings-live.c: content codings against nginx (with-servers --codings) and httpbin, as a
 * user sees them: gzip and brotli bodies compressed by nginx as it sends them, and gzip, deflate,
 * zstd and stacked gzip bodies coded ahead, each decoded byte for byte equal to the plain file on
 * disk whatever the sink (memory, fd, callback, discard), with the wire and decoded sizes apart;
 * Accept-Encoding sent only when asked; no_decode and a client that does not decode get the coded
 * bytes; bombs stopped by the ratio limit, by max_decoded_bytes and by max_body_bytes (which
 * counts decoded bytes), each at its exact edge; truncated and corrupt bodies fail with AG_EDECODE,
 * never a short body, while other requests on the same client go on. */
#include "tests/http/echo.h"

#include <stdint.h>

static int port, hport;
static const char *root, *coded;
static int brotli_served, zstd_served;
static const char *brotli_why, *zstd_why;

#define MiB (1024ull * 1024)

/* Whether this build decodes coding (a token of ag_codings()). */
static int built(const char *coding)
{
    const char *all = ag_codings();
    size_t n = strlen(coding);
    for (const char *p = all; (p = strstr(p, coding)); p += n)
        if ((p == all || p[-1] == ' ') && (p[n] == 0 || p[n] == ','))
            return 1;
    return 0;
}

typedef struct client_cfg {
    int compressed;
    unsigned ratio;
    uint64_t max_decoded;
    size_t max_body;
    ag_loop *loop;
    unsigned per_host;
} client_cfg;

static ag_client *client_with(client_cfg cfg)
{
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = cfg.loop;
    o.compressed = cfg.compressed;
    o.max_decode_ratio = cfg.ratio;
    o.max_decoded_bytes = cfg.max_decoded;
    o.max_body_bytes = cfg.max_body;
    o.max_conns_per_host = cfg.per_host;
    ag_client *c = NULL;
    int rc = ag_client_new(&c, &o);
    if (rc < 0) {
        printf("not ok - ag_client_new: %s\n", ag_err_name(rc));
        exit(1);
    }
    return c;
}

enum { S_MEMORY, S_FD, S_CALLBACK, S_DISCARD, NSINKS };
static const char *const sink_names[] = {"memory", "fd", "callback", "discard"};

/* What one fetch gave. */
typedef struct got {
    int rc, status, reused;
    char *data; /* the body the sink got (NULL for discard), malloc'd */
    size_t len;
    uint64_t wire, decoded, counted; /* counted: bytes a discard-like callback saw */
    char cenc[64];                   /* Content-Encoding, "" for none */
} got;

static void got_free(got *g)
{
    free(g->data);
    memset(g, 0, sizeof *g);
}

static int fd_slurp(int fd, char **data, size_t *len)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -1;
    *data = malloc((size_t)st.st_size + 1);
    *len = 0;
    while (*data && *len < (size_t)st.st_size) {
        ssize_t r = pread(fd, *data + *len, (size_t)st.st_size - *len, (off_t)*len);
        if (r <= 0)
            return -1;
        *len += (size_t)r;
    }
    if (*data)
        (*data)[*len] = 0;
    return *data ? 0 : -1;
}

/* GET (or method) url with the client into the given sink; headers optional. */
static void fetch_full(ag_client *c, const char *url, const char *method, int sink, int no_decode,
                       const ag_header *h, size_t nh, size_t cb_limit, got *g)
{
    memset(g, 0, sizeof *g);
    ag_request req;
    ag_request_init(&req);
    req.url = url;
    req.method = method;
    req.no_decode = no_decode;
    req.headers = h;
    req.nheaders = nh;
    sinkbuf sb = {.limit = cb_limit};
    char tmpl[] = "/tmp/ag-codings.XXXXXX";
    int fd = -1;
    switch (sink) {
    case S_FD:
        fd = mkstemp(tmpl);
        if (fd < 0) {
            g->rc = -errno;
            return;
        }
        unlink(tmpl);
        req.sink = AG_SINK_FD;
        req.sink_fd = fd;
        break;
    case S_CALLBACK:
        req.sink = AG_SINK_CALLBACK;
        req.on_body = sinkbuf_cb;
        req.on_body_arg = &sb;
        break;
    case S_DISCARD:
        req.sink = AG_SINK_DISCARD;
        break;
    default:
        req.sink = AG_SINK_MEMORY;
        break;
    }
    ag_response *r = NULL;
    g->rc = ag_fetch(c, &req, &r);
    if (r) {
        g->status = ag_response_status(r);
        g->reused = ag_response_reused(r);
        g->wire = ag_response_body_bytes(r);
        g->decoded = ag_response_decoded_bytes(r);
        const char *ce = ag_response_header(r, "Content-Encoding");
        snprintf(g->cenc, sizeof g->cenc, "%s", ce ? ce : "");
        if (sink == S_MEMORY) {
            size_t len;
            const char *b = ag_response_body(r, &len);
            g->data = malloc(len + 1);
            if (g->data) {
                if (b)
                    memcpy(g->data, b, len);
                g->data[len] = 0;
            }
            g->len = len;
        }
    }
    ag_response_free(r);
    if (sink == S_FD) {
        if (fd_slurp(fd, &g->data, &g->len) < 0)
            g->rc = g->rc ? g->rc : -EIO;
        close(fd);
    } else if (sink == S_CALLBACK) {
        g->data = sb.data;
        g->len = sb.len;
    }
}

static void fetch_sink(ag_client *c, const char *url, int sink, int no_decode, got *g)
{
    fetch_full(c, url, NULL, sink, no_decode, NULL, 0, 0, g);
}

static const char *nurl(const char *path)
{
    return url_of(port, path);
}

/* ---- Accept-Encoding, as httpbin's /headers shows it */

static void accept_encoding(void)
{
    ag_client *plain = client_with((client_cfg){0});
    ag_client *comp = client_with((client_cfg){.compressed = 1});
    got g;
    fetch_sink(plain, url_of(hport, "/headers"), S_MEMORY, 0, &g);
    tap_ok(g.rc == 0 && g.data && !strstr(g.data, "Accept-Encoding"),
           "codings_accept_encoding_not_sent_by_default");
    got_free(&g);

    fetch_sink(comp, url_of(hport, "/headers"), S_MEMORY, 0, &g);
    char *ae = g.data ? json_str(g.data, "Accept-Encoding", NULL) : NULL;
    tap_ok(g.rc == 0 && ae && strcmp(ae, ag_codings()) == 0 && *ag_codings(),
           "codings_accept_encoding_sent_when_asked: '%s' (ag_codings: '%s')", ae ? ae : "(none)",
           ag_codings());
    free(ae);
    got_free(&g);

    fetch_sink(comp, url_of(hport, "/headers"), S_MEMORY, 1, &g);
    tap_ok(g.rc == 0 && g.data && !strstr(g.data, "Accept-Encoding"),
           "codings_accept_encoding_not_sent_with_no_decode");
    got_free(&g);

    ag_header own[] = {{"Accept-Encoding", "identity"}};
    fetch_full(comp, url_of(hport, "/headers"), NULL, S_MEMORY, 0, own, 1, 0, &g);
    ae = g.data ? json_str(g.data, "Accept-Encoding", NULL) : NULL;
    tap_ok(g.rc == 0 && ae && strcmp(ae, "identity") == 0,
           "codings_accept_encoding_own_header_wins: '%s'", ae ? ae : "(none)");
    free(ae);
    got_free(&g);

    /* httpbin codes these itself (Python's zlib): gzip, and deflate in the zlib format. */
    fetch_sink(comp, url_of(hport, "/gzip"), S_MEMORY, 0, &g);
    tap_ok(g.rc == 0 && g.data && strstr(g.data, "\"gzipped\":true") && g.decoded == g.len &&
               g.wire < g.decoded && strcmp(g.cenc, "gzip") == 0,
           "codings_httpbin_gzip: decoded JSON (%s, wire %llu, decoded %llu)", ag_err_name(g.rc),
           (unsigned long long)g.wire, (unsigned long long)g.decoded);
    got_free(&g);
    fetch_sink(comp, url_of(hport, "/deflate"), S_MEMORY, 0, &g);
    tap_ok(g.rc == 0 && g.data && strstr(g.data, "\"deflated\":true"),
           "codings_httpbin_deflate: decoded JSON (%s)", ag_err_name(g.rc));
    got_free(&g);
    ag_client_free(comp);
    ag_client_free(plain);
}

/* ---- decoding, byte for byte, whatever the sink */

/* The coded bytes nginx sends for path when asked for coding, fetched by a client that does not
 * decode (nginx codes the same file the same way every time). */
static uint64_t wire_size_of(ag_client *raw, const char *path, const char *coding)
{
    ag_header h[] = {{"Accept-Encoding", coding}};
    got g;
    fetch_full(raw, nurl(path), NULL, S_DISCARD, 0, h, 1, 0, &g);
    uint64_t n = g.rc == 0 && strcmp(g.cenc, coding) == 0 ? g.wire : 0;
    got_free(&g);
    return n;
}

/* path decoded must equal the plain file, for every sink; coding is what Content-Encoding must
 * say; wire is the size the coded body has on the wire. */
static void decode_case(ag_client *c, const char *path, const char *plain, const char *coding,
                        uint64_t wire)
{
    size_t plen;
    char *want = must_read(path_in(root, plain), &plen);
    for (int s = 0; s < NSINKS; s++) {
        got g;
        fetch_sink(c, nurl(path), s, 0, &g);
        int body_ok = s == S_DISCARD || same_bytes(g.data, g.len, want, plen);
        int ok = g.rc == 0 && g.status == 200 && body_ok && g.decoded == plen && g.wire == wire &&
                 strcmp(g.cenc, coding) == 0;
        tap_ok(ok, "codings_decode %s %s: %s", path, sink_names[s], ag_err_name(g.rc));
        if (!ok)
            tap_diag("status %d, Content-Encoding '%s' (want '%s'), body %zu bytes (want %zu, "
                     "first difference at %zu), decoded %llu, wire %llu (want %llu)",
                     g.status, g.cenc, coding, g.len, plen,
                     g.data ? first_diff(g.data, g.len, want, plen) : 0,
                     (unsigned long long)g.decoded, (unsigned long long)g.wire,
                     (unsigned long long)wire);
        got_free(&g);
    }
    free(want);
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void decoding(void)
{
    ag_client *c = client_with((client_cfg){.compressed = 1});
    ag_client *raw = client_with((client_cfg){0});
    static const char *const plain[] = {"text.txt", "data.json", "page.html", "small.txt"};

    if (built("gzip")) {
        for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
            char path[64];
            snprintf(path, sizeof path, "/gz/%s", plain[i]);
            decode_case(c, path, plain[i], "gzip", wire_size_of(raw, path, "gzip"));
        }
        static const struct {
            const char *path, *plain, *coding;
        } ahead[] = {
            {"/coded/gzip/text.txt", "text.txt", "gzip"},
            {"/coded/gzip/small.txt", "small.txt", "gzip"},
            {"/coded/gzip/multi.txt", "text.txt", "gzip"}, /* two members */
            {"/coded/gzip-gzip/text.txt", "text.txt", "gzip, gzip"},
            {"/coded/deflate/text.txt", "text.txt", "deflate"},
        };
        for (size_t i = 0; i < sizeof ahead / sizeof ahead[0]; i++)
            decode_case(c, ahead[i].path, ahead[i].plain, ahead[i].coding,
                        file_size(path_in(coded, ahead[i].path + strlen("/coded/"))));
    } else {
        tap_skip("codings_decode gzip and deflate: this build has no zlib (ag_codings: '%s')",
                 ag_codings());
    }

    if (!brotli_served) {
        tap_skip("codings_decode /br/: %s", brotli_why);
    } else if (!built("br")) {
        tap_skip("codings_decode /br/: this build has no libbrotli (ag_codings: '%s')",
                 ag_codings());
    } else {
        for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
            char path[64];
            snprintf(path, sizeof path, "/br/%s", plain[i]);
            decode_case(c, path, plain[i], "br", wire_size_of(raw, path, "br"));
        }
    }

    if (!zstd_served) {
        tap_skip("codings_decode /coded/zstd/: %s", zstd_why);
    } else if (!built("zstd")) {
        /* Sent whatever was asked: a coding that is not built is an error, not a coded body
         * handed over as if it were plain. */
        got g;
        fetch_sink(c, nurl("/coded/zstd/text.txt"), S_MEMORY, 0, &g);
        tap_ok(g.rc == AG_EDECODE, "codings_zstd_not_built_is_edecode: %s", ag_err_name(g.rc));
        got_free(&g);
    } else {
        static const char *const z[][2] = {{"/coded/zstd/text.txt", "text.txt"},
                                           {"/coded/zstd/small.txt", "small.txt"},
                                           {"/coded/zstd/multi.txt", "text.txt"}};
        for (size_t i = 0; i < 3; i++)
            decode_case(c, z[i][0], z[i][1], "zstd",
                        file_size(path_in(coded, z[i][0] + strlen("/coded/"))));
    }

    /* Empty bodies: nginx's gzip of nothing (chunked), and a 20-byte gzip file. */
    for (int i = 0; i < 2 && built("gzip"); i++) {
        const char *p = i ? "/coded/gzip/empty.txt" : "/gz/empty.txt";
        got g;
        fetch_sink(c, nurl(p), S_MEMORY, 0, &g);
        tap_ok(g.rc == 0 && g.status == 200 && g.len == 0 && g.decoded == 0,
               "codings_decode_empty %s: %s, %zu bytes (wire %llu)", p, ag_err_name(g.rc), g.len,
               (unsigned long long)g.wire);
        got_free(&g);
    }

    /* A type nginx does not compress: no Content-Encoding, the two sizes equal. */
    got g;
    fetch_sink(c, nurl("/gz/1m"), S_MEMORY, 0, &g);
    size_t mlen;
    char *m = must_read(path_in(root, "1m"), &mlen);
    tap_ok(g.rc == 0 && !*g.cenc && same_bytes(g.data, g.len, m, mlen) && g.wire == mlen &&
               g.decoded == mlen,
           "codings_identity_sizes_equal: /gz/1m wire %llu decoded %llu",
           (unsigned long long)g.wire, (unsigned long long)g.decoded);
    free(m);
    got_free(&g);

    /* HEAD of a coded resource: no body to decode. */
    fetch_full(c, nurl("/gz/text.txt"), "HEAD", S_MEMORY, 0, NULL, 0, 0, &g);
    tap_ok(g.rc == 0 && g.status == 200 && g.len == 0 && g.decoded == 0, "codings_head_no_body: %s",
           ag_err_name(g.rc));
    got_free(&g);

    /* The decoder ends exactly with the chunked body: the next request on the connection reads
     * its own response. */
    if (built("gzip")) {
        got a, b;
        fetch_sink(c, nurl("/gz/text.txt"), S_DISCARD, 0, &a);
        fetch_sink(c, nurl("/gz/small.txt"), S_MEMORY, 0, &b);
        size_t slen;
        char *s = must_read(path_in(root, "small.txt"), &slen);
        tap_ok(a.rc == 0 && b.rc == 0 && b.reused && same_bytes(b.data, b.len, s, slen),
               "codings_keepalive_after_decode: reused %d, %s", b.reused, ag_err_name(b.rc));
        free(s);
        got_free(&a);
        got_free(&b);
    }
    ag_client_free(raw);
    ag_client_free(c);
}

/* ---- the coded bytes when nothing is decoded */

static void not_decoded(void)
{
    ag_client *comp = client_with((client_cfg){.compressed = 1});
    ag_client *plain = client_with((client_cfg){0});
    size_t clen, tlen;
    char *cz = must_read(path_in(coded, "gzip/text.txt"), &clen);
    char *text = must_read(path_in(root, "text.txt"), &tlen);
    got g;

    fetch_sink(comp, nurl("/coded/gzip/text.txt"), S_MEMORY, 1, &g);
    tap_ok(g.rc == 0 && same_bytes(g.data, g.len, cz, clen) && g.wire == clen &&
               g.decoded == clen && strcmp(g.cenc, "gzip") == 0,
           "codings_no_decode_gives_coded_bytes: %zu bytes, decoded %llu", g.len,
           (unsigned long long)g.decoded);
    got_free(&g);

    fetch_sink(comp, nurl("/coded/gzip/text.txt"), S_CALLBACK, 1, &g);
    tap_ok(g.rc == 0 && same_bytes(g.data, g.len, cz, clen),
           "codings_no_decode_gives_coded_bytes_callback");
    got_free(&g);

    /* no_decode sends no Accept-Encoding, so nginx does not compress. */
    fetch_sink(comp, nurl("/gz/text.txt"), S_MEMORY, 1, &g);
    tap_ok(g.rc == 0 && !*g.cenc && same_bytes(g.data, g.len, text, tlen),
           "codings_no_decode_dynamic_plain: Content-Encoding '%s'", g.cenc);
    got_free(&g);

    fetch_sink(plain, nurl("/coded/gzip/text.txt"), S_MEMORY, 0, &g);
    tap_ok(g.rc == 0 && same_bytes(g.data, g.len, cz, clen) && g.decoded == g.wire,
           "codings_client_not_compressed_gives_coded_bytes: %s", ag_err_name(g.rc));
    got_free(&g);

    fetch_sink(plain, nurl("/gz/text.txt"), S_MEMORY, 0, &g);
    tap_ok(g.rc == 0 && !*g.cenc && same_bytes(g.data, g.len, text, tlen),
           "codings_client_not_compressed_gets_plain: Content-Encoding '%s'", g.cenc);
    got_free(&g);

    /* A coding nobody knows: "not supported" (AG_EDECODE, as curl's error 61), never handed
     * over as if it were the body; with no_decode, the bytes as they came. */
    fetch_sink(comp, nurl("/coded/unknown/text.txt"), S_MEMORY, 0, &g);
    tap_ok(g.rc == AG_EDECODE, "codings_unknown_coding_is_edecode: %s, %zu bytes",
           ag_err_name(g.rc), g.len);
    got_free(&g);
    fetch_sink(comp, nurl("/coded/unknown/text.txt"), S_MEMORY, 1, &g);
    tap_ok(g.rc == 0 && same_bytes(g.data, g.len, cz, clen) && g.decoded == g.wire,
           "codings_unknown_coding_no_decode_as_is: %s, %zu bytes", ag_err_name(g.rc), g.len);
    got_free(&g);

    free(cz);
    free(text);
    ag_client_free(plain);
    ag_client_free(comp);
}

/* ---- corrupt and truncated bodies */

static void broken(void)
{
    ag_client *c = client_with((client_cfg){.compressed = 1});
    static const struct {
        const char *path, *coding;
    } bad[] = {
        {"/coded/gzip/truncated.txt", "gzip"},       {"/coded/gzip/truncated-trailer.txt", "gzip"},
        {"/coded/gzip/corrupt.txt", "gzip"},         {"/coded/gzip/badcrc.txt", "gzip"},
        {"/coded/deflate/truncated.txt", "deflate"}, {"/coded/zstd/truncated.txt", "zstd"},
        {"/coded/zstd/corrupt.txt", "zstd"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (!strcmp(bad[i].coding, "zstd") && !zstd_served) {
            tap_skip("codings_broken %s: %s", bad[i].path, zstd_why);
            continue;
        }
        if (!built(bad[i].coding)) {
            tap_skip("codings_broken %s: %s not built (ag_codings: '%s')", bad[i].path,
                     bad[i].coding, ag_codings());
            continue;
        }
        for (int s = 0; s < NSINKS; s++) {
            if (s == S_FD && i > 0)
                continue; /* the fd sink once is enough */
            got g;
            fetch_sink(c, nurl(bad[i].path), s, 0, &g);
            tap_ok(g.rc == AG_EDECODE, "codings_broken_is_edecode %s %s: %s (%zu bytes delivered)",
                   bad[i].path, sink_names[s], ag_err_name(g.rc), g.len);
            got_free(&g);
        }
    }

    /* Bytes after the gzip member: an error, or the whole text and nothing more; never a
     * different body. */
    size_t tlen;
    char *text = must_read(path_in(root, "text.txt"), &tlen);
    got g;
    fetch_sink(c, nurl("/coded/gzip/trailing.txt"), S_MEMORY, 0, &g);
    tap_ok(g.rc == AG_EDECODE || (g.rc == 0 && same_bytes(g.data, g.len, text, tlen)),
           "codings_gzip_trailing_garbage_not_in_body: %s, %zu bytes", ag_err_name(g.rc), g.len);
    got_free(&g);
    /* Raw deflate (no zlib header), as some servers send "deflate": the text or an error. */
    fetch_sink(c, nurl("/coded/deflate/raw.txt"), S_MEMORY, 0, &g);
    tap_ok(g.rc == AG_EDECODE || (g.rc == 0 && same_bytes(g.data, g.len, text, tlen)),
           "codings_raw_deflate_text_or_edecode: %s, %zu bytes", ag_err_name(g.rc), g.len);
    got_free(&g);

    /* A callback that refuses mid-body. */
    fetch_full(c, nurl("/coded/gzip/text.txt"), NULL, S_CALLBACK, 0, NULL, 0, 100000, &g);
    tap_ok(g.rc == AG_ESINK && g.len <= 100000,
           "codings_callback_abort_is_esink: %s after %zu bytes", ag_err_name(g.rc), g.len);
    got_free(&g);

    /* The client works on after all that. */
    fetch_sink(c, nurl("/coded/gzip/text.txt"), S_MEMORY, 0, &g);
    tap_ok(g.rc == 0 && same_bytes(g.data, g.len, text, tlen), "codings_client_fine_after_errors");
    got_free(&g);
    free(text);
    ag_client_free(c);
}

/* Broken bodies and bombs in flight with good ones on the same client, two connections shared
 * by eight requests: the good ones decode right. */
struct job {
    const char *path;
    const char *plain; /* NULL: must fail */
    int rc;
    size_t len;
    int same;
    int done;
};

static void on_job(ag_client *c, ag_response *resp, int status, void *arg)
{
    (void)c;
    struct job *j = arg;
    j->done = 1;
    j->rc = status;
    size_t len = 0;
    const char *b = ag_response_body(resp, &len);
    j->len = len;
    if (j->plain) {
        size_t plen;
        char *want = read_file(path_in(root, j->plain), &plen);
        j->same = want && same_bytes(b, len, want, plen);
        free(want);
    }
    ag_response_free(resp);
}

static void concurrent(void)
{
    ag_loop *loop;
    if (ag_loop_new(&loop, NULL) < 0) {
        tap_ok(0, "codings_concurrent: no loop");
        return;
    }
    ag_client *c = client_with((client_cfg){.compressed = 1, .loop = loop, .per_host = 2});
    struct job jobs[] = {
        {"/gz/text.txt", "text.txt", 0, 0, 0, 0},
        {"/coded/gzip/truncated.txt", NULL, 0, 0, 0, 0},
        {"/coded/gzip/text.txt", "text.txt", 0, 0, 0, 0},
        {"/coded/gzip/corrupt.txt", NULL, 0, 0, 0, 0},
        {"/coded/gzip-gzip/bomb", NULL, 0, 0, 0, 0},
        {zstd_served && built("zstd") ? "/coded/zstd/text.txt" : "/gz/data.json",
         zstd_served && built("zstd") ? "text.txt" : "data.json", 0, 0, 0, 0},
        {"/coded/gzip/badcrc.txt", NULL, 0, 0, 0, 0},
        {brotli_served && built("br") ? "/br/text.txt" : "/gz/page.html",
         brotli_served && built("br") ? "text.txt" : "page.html", 0, 0, 0, 0},
    };
    size_t n = sizeof jobs / sizeof jobs[0];
    for (size_t i = 0; i < n; i++) {
        ag_request req;
        ag_request_init(&req);
        req.url = nurl(jobs[i].path);
        if (ag_fetch_start(c, &req, on_job, &jobs[i], NULL) < 0)
            jobs[i].done = -1;
    }
    ag_loop_run(loop);
    for (size_t i = 0; i < n; i++) {
        if (jobs[i].plain)
            tap_ok(jobs[i].done == 1 && jobs[i].rc == 0 && jobs[i].same,
                   "codings_concurrent_good_decoded %s: %s, %zu bytes", jobs[i].path,
                   ag_err_name(jobs[i].rc), jobs[i].len);
        else
            tap_ok(jobs[i].done == 1 &&
                       (jobs[i].rc == AG_EDECODE || jobs[i].rc == AG_EDECODE_RATIO),
                   "codings_concurrent_bad_fails %s: %s", jobs[i].path, ag_err_name(jobs[i].rc));
    }
    ag_client_free(c);
    ag_loop_free(loop);
}

/* ---- bombs and limits */

static void bombs(void)
{
    if (!built("gzip")) {
        tap_skip("codings bombs: no zlib in this build");
        return;
    }
    got g;
    ag_client *c;
    uint64_t counted;

    /* The default ratio (1,000) against the largest ratio deflate reaches (about 1,011 here):
     * stopped, early. */
    c = client_with((client_cfg){.compressed = 1});
    fetch_sink(c, nurl("/coded/gzip/bomb"), S_DISCARD, 0, &g);
    tap_ok(g.rc == AG_EDECODE_RATIO && g.decoded < 128 * MiB,
           "codings_gzip_bomb_default_ratio: %s after %llu decoded bytes from %llu",
           ag_err_name(g.rc), (unsigned long long)g.decoded, (unsigned long long)g.wire);
    got_free(&g);
    fetch_sink(c, nurl("/coded/gzip-gzip/bomb"), S_MEMORY, 0, &g);
    tap_ok(g.rc == AG_EDECODE_RATIO && g.decoded < 128 * MiB,
           "codings_gzip_gzip_bomb_default_ratio: %s after %llu decoded bytes from %llu",
           ag_err_name(g.rc), (unsigned long long)g.decoded, (unsigned long long)g.wire);
    got_free(&g);
    if (zstd_served && built("zstd")) {
        fetch_sink(c, nurl("/coded/zstd/bomb"), S_CALLBACK, 0, &g);
        tap_ok(g.rc == AG_EDECODE_RATIO && g.decoded < 128 * MiB && g.len <= g.decoded,
               "codings_zstd_bomb_default_ratio: %s after %llu decoded bytes from %llu",
               ag_err_name(g.rc), (unsigned long long)g.decoded, (unsigned long long)g.wire);
        got_free(&g);
    } else {
        tap_skip("codings_zstd_bomb_default_ratio: %s", zstd_served ? "zstd not built" : zstd_why);
    }
    /* The same client serves a good body afterwards. */
    fetch_sink(c, nurl("/coded/gzip/small.txt"), S_MEMORY, 0, &g);
    tap_ok(g.rc == 0 && g.len > 0, "codings_client_fine_after_bomb: %s", ag_err_name(g.rc));
    got_free(&g);
    ag_client_free(c);

    /* An explicit ratio: the text (about 4.2 decoded bytes per byte) passes 5 and fails 3. */
    c = client_with((client_cfg){.compressed = 1, .ratio = 5});
    fetch_sink(c, nurl("/coded/gzip/text.txt"), S_DISCARD, 0, &g);
    tap_ok(g.rc == 0, "codings_ratio_5_passes_text: %s (%llu / %llu)", ag_err_name(g.rc),
           (unsigned long long)g.decoded, (unsigned long long)g.wire);
    got_free(&g);
    ag_client_free(c);
    c = client_with((client_cfg){.compressed = 1, .ratio = 3});
    fetch_sink(c, nurl("/coded/gzip/text.txt"), S_DISCARD, 0, &g);
    tap_ok(g.rc == AG_EDECODE_RATIO, "codings_ratio_3_stops_text: %s", ag_err_name(g.rc));
    got_free(&g);
    ag_client_free(c);
    c = client_with((client_cfg){.compressed = 1, .ratio = 100});
    fetch_sink(c, nurl("/coded/gzip/bomb"), S_DISCARD, 0, &g);
    tap_ok(g.rc == AG_EDECODE_RATIO && g.decoded < 128 * MiB,
           "codings_gzip_bomb_ratio_100: %s after %llu", ag_err_name(g.rc),
           (unsigned long long)g.decoded);
    got_free(&g);
    ag_client_free(c);

    /* No ratio limit, max_decoded_bytes 8 MiB: AG_ETOO_LARGE, and no sink ever got more. */
    c = client_with(
        (client_cfg){.compressed = 1, .ratio = AG_NO_RATIO_LIMIT, .max_decoded = 8 * MiB});
    for (int s = 0; s < NSINKS; s++) {
        if (s == S_MEMORY)
            continue; /* below, with max_body_bytes */
        if (s == S_CALLBACK) {
            counted = 0;
            ag_request req;
            ag_request_init(&req);
            req.url = nurl("/coded/gzip/bomb");
            req.sink = AG_SINK_CALLBACK;
            req.on_body = count_cb;
            req.on_body_arg = &counted;
            ag_response *r = NULL;
            int rc = ag_fetch(c, &req, &r);
            tap_ok(rc == AG_ETOO_LARGE && counted <= 8 * MiB,
                   "codings_max_decoded_bytes_callback: %s, the sink got %llu bytes (cap %llu)",
                   ag_err_name(rc), (unsigned long long)counted, 8 * MiB);
            ag_response_free(r);
            continue;
        }
        fetch_sink(c, nurl("/coded/gzip/bomb"), s, 0, &g);
        tap_ok(g.rc == AG_ETOO_LARGE && g.len <= 8 * MiB,
               "codings_max_decoded_bytes %s: %s, %zu bytes in the sink, decoded %llu",
               sink_names[s], ag_err_name(g.rc), g.len, (unsigned long long)g.decoded);
        got_free(&g);
    }
    if (zstd_served && built("zstd")) {
        fetch_sink(c, nurl("/coded/zstd/bomb"), S_DISCARD, 0, &g);
        tap_ok(g.rc == AG_ETOO_LARGE, "codings_max_decoded_bytes_zstd: %s", ag_err_name(g.rc));
        got_free(&g);
    }
    ag_client_free(c);

    /* The exact edge: 64 MiB of zeros pass a cap of 64 MiB and fail one byte less. */
    for (int less = 0; less < 2; less++) {
        c = client_with((client_cfg){
            .compressed = 1, .ratio = AG_NO_RATIO_LIMIT, .max_decoded = 64 * MiB - (uint64_t)less});
        fetch_sink(c, nurl("/coded/gzip/zeros64m"), S_DISCARD, 0, &g);
        if (less)
            tap_ok(g.rc == AG_ETOO_LARGE, "codings_max_decoded_bytes_edge_minus_one: %s",
                   ag_err_name(g.rc));
        else
            tap_ok(g.rc == 0 && g.decoded == 64 * MiB && g.wire == 66388,
                   "codings_max_decoded_bytes_edge_exact: %s, decoded %llu, wire %llu",
                   ag_err_name(g.rc), (unsigned long long)g.decoded, (unsigned long long)g.wire);
        got_free(&g);
        ag_client_free(c);
    }

    /* The memory sink's max_body_bytes counts decoded bytes: the text is 0.5 MiB on the wire,
     * 2 MiB decoded. */
    size_t tlen;
    char *text = must_read(path_in(root, "text.txt"), &tlen);
    c = client_with((client_cfg){.compressed = 1, .max_body = 1 * MiB});
    fetch_sink(c, nurl("/coded/gzip/text.txt"), S_MEMORY, 0, &g);
    tap_ok(g.rc == AG_ETOO_LARGE, "codings_max_body_bytes_counts_decoded: %s (wire %llu)",
           ag_err_name(g.rc), (unsigned long long)g.wire);
    got_free(&g);
    /* ... and only the memory sink's. */
    fetch_sink(c, nurl("/coded/gzip/text.txt"), S_DISCARD, 0, &g);
    tap_ok(g.rc == 0 && g.decoded == tlen, "codings_max_body_bytes_not_for_discard: %s",
           ag_err_name(g.rc));
    got_free(&g);
    ag_client_free(c);
    for (int less = 0; less < 2; less++) {
        c = client_with((client_cfg){.compressed = 1, .max_body = tlen - (size_t)less});
        fetch_sink(c, nurl("/gz/text.txt"), S_MEMORY, 0, &g);
        if (less)
            tap_ok(g.rc == AG_ETOO_LARGE, "codings_max_body_bytes_edge_minus_one: %s",
                   ag_err_name(g.rc));
        else
            tap_ok(g.rc == 0 && same_bytes(g.data, g.len, text, tlen),
                   "codings_max_body_bytes_edge_exact: %s", ag_err_name(g.rc));
        got_free(&g);
        ag_client_free(c);
    }
    free(text);
    c = client_with((client_cfg){.compressed = 1, .ratio = AG_NO_RATIO_LIMIT, .max_body = 8 * MiB});
    fetch_sink(c, nurl("/coded/gzip/bomb"), S_MEMORY, 0, &g);
    tap_ok(g.rc == AG_ETOO_LARGE && g.decoded <= 16 * MiB,
           "codings_gzip_bomb_max_body_bytes_memory: %s after %llu decoded", ag_err_name(g.rc),
           (unsigned long long)g.decoded);
    got_free(&g);
    ag_client_free(c);
}

int main(void)
{
    port = env_port("AG_NGINX_PORT");
    hport = env_port("AG_HTTPBIN_PORT");
    root = getenv("AG_NGINX_ROOT");
    coded = getenv("AG_NGINX_CODED");
    if (!root || !coded) {
        printf("1..0 # SKIP AG_NGINX_CODED not set: run through with-servers --codings\n");
        return 0;
    }
    brotli_served = getenv("AG_NGINX_BROTLI") && !strcmp(getenv("AG_NGINX_BROTLI"), "1");
    zstd_served = getenv("AG_NGINX_ZSTD") && !strcmp(getenv("AG_NGINX_ZSTD"), "1");
    brotli_why = getenv("AG_NGINX_BROTLI_WHY") ? getenv("AG_NGINX_BROTLI_WHY") : "no brotli";
    zstd_why = getenv("AG_NGINX_ZSTD_WHY") ? getenv("AG_NGINX_ZSTD_WHY") : "no zstd";
    tap_diag("ag_codings: '%s'", ag_codings());

    accept_encoding();
    decoding();
    not_decoded();
    broken();
    concurrent();
    bombs();
    return tap_done();
}
