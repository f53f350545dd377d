/* test-fd-limit.c: a client under an open-file limit of 64 (soft) runs 1,000 requests at once
 * with its default limits (max_conns 1,024): every one completes, with the right body, queued
 * behind the file descriptors rather than failing with EMFILE; afterwards the process has as
 * many descriptors open as before. Over http to an address, over https, and through the
 * resolver (a name dnsmasq answers, no cache: a query per request, each needing a socket). */
#include "tests/http/util.h"

#include <errno.h>
#include <dirent.h>
#include <sys/resource.h>

enum { N = 1000, LIMIT = 64 };

static ag_loop *loop;
static char *want_body;
static size_t want_len;

typedef struct tally {
    int done, ok, bad, emfile, reused;
    int first_err;
    char first_detail[200];
} tally;

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the directory's own descriptor */
}

static void on_done(ag_client *c, ag_response *r, int status, void *arg)
{
    (void)c;
    tally *t = arg;
    t->done++;
    size_t len;
    const char *body = ag_response_body(r, &len);
    if (status == 0 && ag_response_status(r) == 200 && len == want_len &&
        memcmp(body, want_body, len) == 0) {
        t->ok++;
        t->reused += ag_response_reused(r);
    } else {
        if (status == -EMFILE || status == -ENFILE)
            t->emfile++;
        if (t->bad++ == 0) {
            t->first_err = status;
            snprintf(t->first_detail, sizeof t->first_detail, "%s", ag_response_error_detail(r));
        }
    }
    ag_response_free(r);
}

/* Run N requests for url on a new client made with o (the loop set here), under the limit. */
static void run_case(const char *name, ag_client_opts *o, const char *url)
{
    int fds = count_fds();
    o->loop = loop;
    ag_client *c;
    if (ag_client_new(&c, o) < 0)
        abort();
    struct rlimit saved, low;
    getrlimit(RLIMIT_NOFILE, &saved);
    low = saved;
    low.rlim_cur = LIMIT;
    tally t = {0};
    setrlimit(RLIMIT_NOFILE, &low);
    for (int i = 0; i < N; i++) {
        ag_request req;
        ag_request_init(&req);
        req.url = url;
        if (ag_fetch_start(c, &req, on_done, &t, NULL) < 0)
            abort();
    }
    int64_t start = ag_now_ns();
    ag_loop_run(loop);
    double secs = (double)(ag_now_ns() - start) / 1e9;
    setrlimit(RLIMIT_NOFILE, &saved);
    /* The pool is at rest, and requests did wait for descriptors (1,000 cannot fit in 64). */
    ag_pool_stats ps;
    ag_client_pool_stats(c, &ps);
    int free_rc = ag_client_free(c);
    int after = count_fds();
    tap_ok(t.done == N && t.ok == N && ps.fd_waits > 0 && ps.waiting_fd == 0 && ps.requests == 0 &&
               ps.conns == ps.idle && free_rc == 0 && after == fds,
           "%s: %d of %d completed with the right body (%d on a reused connection), %d failed "
           "(%d EMFILE; first: %s \"%s\"); %llu waited for a descriptor, %llu waiting after; "
           "%d fds before, %d after; %.2f s",
           name, t.ok, N, t.reused, t.bad, t.emfile, ag_err_name(t.first_err), t.first_detail,
           (unsigned long long)ps.fd_waits, (unsigned long long)ps.waiting_fd, fds, after, secs);
}

int main(void)
{
    int port = env_port("AG_NGINX_PORT");
    const char *root = getenv("AG_NGINX_ROOT");
    char path[512];
    snprintf(path, sizeof path, "%s/1k", root ? root : ".");
    want_body = read_file(path, &want_len);
    if (!want_body)
        abort();
    ag_loop_new(&loop, NULL);
    char url[256];

    ag_client_opts o;
    ag_client_opts_init(&o);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/1k", port);
    run_case("fdlimit_http_1000_under_64", &o, url);

    const char *tls_port = getenv("AG_TLS_PORT"), *ca = getenv("AG_TLS_CA");
    if (tls_port && ca) {
        ag_tls_opts tls;
        memset(&tls, 0, sizeof tls);
        tls.ca_file = ca;
        ag_client_opts_init(&o);
        o.tls = &tls;
        snprintf(url, sizeof url, "https://localhost:%s/1k", tls_port);
        run_case("fdlimit_https_1000_under_64", &o, url);
    } else {
        tap_skip("fdlimit_https_1000_under_64: no TLS server");
    }

    const char *dns = getenv("AG_DNS_SERVER");
    if (dns) {
        ag_client_opts_init(&o);
        o.dns_servers = dns;
        o.dns_cache_size = AG_NO_DNS_CACHE;
        snprintf(url, sizeof url, "http://v4.test:%d/1k", port);
        run_case("fdlimit_dns_1000_under_64", &o, url);
    } else {
        tap_skip("fdlimit_dns_1000_under_64: no DNS server");
    }

    ag_loop_free(loop);
    free(want_body);
    return tap_done();
}
