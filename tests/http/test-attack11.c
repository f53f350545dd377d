/* test-attack11.c: content codings, credentials, cookies, forms and Unix sockets attacked
 * through the public API only: misuse, hostile bytes, floods. Each case names the fault it
 * would catch; a known fault that is not fixed yet is a skip whose reason says so. */
#include "tests/http/util.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/resource.h>

static int port;

/* The text every /atk11/ coded body decodes to (tests/servers/hostile.py). */
static char *atk11_text(size_t *len)
{
    static const char row[] = ": attack text\n";
    char *t = malloc(150 * 40);
    size_t n = 0;
    for (int i = 0; t && i < 150; i++)
        n += (size_t)sprintf(t + n, "row %d%s", i, row);
    *len = n;
    return t;
}

static ag_client *coding_client(ag_loop *loop)
{
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.compressed = 1;
    ag_client *c = NULL;
    if (ag_client_new(&c, &o) < 0) {
        printf("Bail out! ag_client_new\n");
        exit(1);
    }
    return c;
}

static long maxrss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* A cookie file whose first line is 128 MiB of NUL bytes without a newline (a sparse file: no
 * disk), then a good line. Reading must not hold the long line in memory: the jar keeps no
 * line longer than a few KiB, so nothing longer needs to be read whole. */
static void cookie_load_long_line_bounded(void)
{
    char path[] = "/tmp/ag-attack11-XXXXXX";
    int fd = mkstemp(path);
    const off_t junk = (off_t)128 << 20;
    static const char good[] = "\nexample.com\tFALSE\t/\tFALSE\t0\ta\tb\n";
    int ok = fd >= 0 && ftruncate(fd, junk) == 0 &&
             pwrite(fd, good, sizeof good - 1, junk) == (ssize_t)(sizeof good - 1);
    if (fd >= 0)
        close(fd);
    ag_cookie_jar *jar = NULL;
    ag_cookie_jar_new(&jar);
    long before = maxrss_kib();
    int rc = ok ? ag_cookie_jar_load(jar, path) : -1;
    long grew = maxrss_kib() - before;
    tap_ok(rc == 1 && ag_cookie_jar_count(jar) == 1 && grew < 32 * 1024,
           "cookie_load_long_line_bounded: a 128 MiB line costs %ld KiB of memory (under 32 MiB "
           "wanted), the good line after it is added (rc %d)",
           grew, rc);
    ag_cookie_jar_free(jar);
    unlink(path);
}

/* A coded body cut at every offset, its Content-Length matching the cut: each is an error
 * (AG_EDECODE), never a short body delivered as if whole; the uncut body decodes exactly. */
static void codings_cut_every_offset(const char *kind)
{
    ag_client *c = coding_client(NULL);
    size_t tlen;
    char *text = atk11_text(&tlen);
    char path[64];
    snprintf(path, sizeof path, "/atk11/cut?c=%s", kind);
    int rc;
    ag_response *r = get(c, url_of(port, path), &rc);
    size_t blen = 0;
    const char *b = ag_response_body(r, &blen);
    if (ag_response_status(r) == 404) {
        tap_skip("codings_cut_every_offset_%s: the test server has no %s", kind, kind);
        ag_response_free(r);
        ag_client_free(c);
        free(text);
        return;
    }
    bool whole = rc == 0 && b && blen == tlen && memcmp(b, text, tlen) == 0;
    uint64_t wire = ag_response_body_bytes(r);
    ag_response_free(r);
    unsigned cuts = 0, wrong = 0;
    for (uint64_t n = 1; n < wire; n++) {
        snprintf(path, sizeof path, "/atk11/cut?c=%s&n=%llu", kind, (unsigned long long)n);
        r = get(c, url_of(port, path), &rc);
        cuts++;
        if (rc != AG_EDECODE && wrong++ < 3)
            tap_diag("cut at %llu of %llu: %s, %llu bytes decoded", (unsigned long long)n,
                     (unsigned long long)wire, ag_err_name(rc),
                     (unsigned long long)ag_response_decoded_bytes(r));
        ag_response_free(r);
    }
    tap_ok(whole && wire > 100 && wrong == 0,
           "codings_cut_every_offset_%s: the whole body decodes (%d), %u cuts of %llu coded "
           "bytes, %u not AG_EDECODE",
           kind, whole, cuts, (unsigned long long)wire, wrong);
    ag_client_free(c);
    free(text);
}

/* A corrupt coded body whose rest looks like a response: the connection must be closed on the
 * error, so that the next request reads its own answer, not the leftovers. */
static void codings_corrupt_leftovers_not_next_response(void)
{
    ag_client *c = coding_client(NULL);
    int rc1, rc2;
    ag_response *r1 = get(c, url_of(port, "/atk11/smuggle"), &rc1);
    ag_response *r2 = get(c, url_of(port, "/atk11/good"), &rc2);
    const char *b = ag_response_body(r2, NULL);
    tap_ok(rc1 == AG_EDECODE && rc2 == 0 && b && strcmp(b, "GOOD") == 0 && !ag_response_reused(r2),
           "codings_corrupt_leftovers_not_next_response: %s, then %s \"%s\" on a %s connection",
           ag_err_name(rc1), ag_err_name(rc2), b ? b : "",
           ag_response_reused(r2) ? "reused" : "new");
    ag_response_free(r1);
    ag_response_free(r2);
    ag_client_free(c);
}

static void codings_1xx_coding_ignored(void)
{
    ag_client *c = coding_client(NULL);
    int rc;
    ag_response *r = get(c, url_of(port, "/atk11/early"), &rc);
    const char *b = ag_response_body(r, NULL);
    tap_ok(rc == 0 && ag_response_status(r) == 200 && b && strcmp(b, "GOOD") == 0,
           "codings_1xx_coding_ignored: a 103 naming gzip, then a plain 200: %s %d \"%s\"",
           ag_err_name(rc), ag_response_status(r), b ? b : "");
    ag_response_free(r);
    ag_client_free(c);
}

static void codings_te_gzip_close_delimited(void)
{
    ag_client *c = coding_client(NULL);
    size_t tlen, blen = 0;
    char *text = atk11_text(&tlen);
    int rc;
    ag_response *r = get(c, url_of(port, "/atk11/te-gzip-close"), &rc);
    const char *b = ag_response_body(r, &blen);
    tap_ok(rc == 0 && b && blen == tlen && memcmp(b, text, tlen) == 0,
           "codings_te_gzip_close_delimited: Transfer-Encoding: gzip ending at the close decodes "
           "(%s, %zu of %zu bytes)",
           ag_err_name(rc), blen, tlen);
    ag_response_free(r);
    ag_client_free(c);
    free(text);
}

/* A coded body written to a pipe nobody reads: the request waits on the pipe mid-decode and a
 * cancel ends it with -ECANCELED; the client then serves the next request. */
static int fetch_done, fetch_status;
static void on_done(ag_client *c, ag_response *r, int status, void *arg)
{
    (void)c;
    (void)arg;
    fetch_status = status;
    fetch_done = 1;
    ag_response_free(r);
}

static void codings_fd_sink_blocked_cancel(void)
{
    ag_loop *loop = NULL;
    ag_loop_new(&loop, NULL);
    ag_client *c = coding_client(loop);
    int p[2];
    bool ok = pipe(p) == 0 && fcntl(p[1], F_SETFL, O_NONBLOCK) == 0 &&
              fcntl(p[1], F_SETPIPE_SZ, 4096) >= 0;
    ag_request req;
    ag_request_init(&req);
    req.url = url_of(port, "/cod/gzip");
    req.sink = AG_SINK_FD;
    req.sink_fd = p[1];
    ag_coro *h = NULL;
    fetch_done = 0;
    ok = ok && ag_fetch_start(c, &req, on_done, NULL, &h) == 0;
    /* Until the pipe is full: its 4 KiB cannot hold the 500 KiB the body decodes to. */
    int spins = 0;
    while (ok && !fetch_done && spins++ < 200)
        ag_loop_run_once(loop, 10);
    bool waiting = !fetch_done;
    if (h)
        ag_coro_cancel(h);
    while (ok && !fetch_done)
        ag_loop_run_once(loop, 100);
    ag_coro_unref(h);
    int cancelled = fetch_status;
    close(p[0]);
    close(p[1]);
    ag_request_init(&req);
    req.url = url_of(port, "/atk11/good");
    fetch_done = 0;
    ok = ok && ag_fetch_start(c, &req, on_done, NULL, NULL) == 0;
    while (ok && !fetch_done)
        ag_loop_run_once(loop, 100);
    tap_ok(ok && waiting && cancelled == -ECANCELED && fetch_status == 0,
           "codings_fd_sink_blocked_cancel: waiting on a full pipe (%d), cancelled with %s, the "
           "next request %s",
           waiting, ag_err_name(cancelled), ag_err_name(fetch_status));
    ag_client_free(c);
    ag_loop_free(loop);
}

int main(void)
{
    cookie_load_long_line_bounded();
    port = env_port("AG_HOSTILE_PORT");
    codings_cut_every_offset("gzip");
    codings_cut_every_offset("deflate");
    codings_cut_every_offset("br");
    codings_corrupt_leftovers_not_next_response();
    codings_1xx_coding_ignored();
    codings_te_gzip_close_delimited();
    codings_fd_sink_blocked_cancel();
    return tap_done();
}
