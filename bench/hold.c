/* hold.c: what idle keep-alive connections cost: n connections opened at once to a URL and left
 * idle in the client's pool, then each reused once, with the process's memory at every step. */
#include "asyncget.h"
#include "bench.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct hold_ctx {
    ag_client *cl;
    const run_cfg *cfg;
    long ok, fresh, reused, resumed;
    int first_error;
    char version[16];
} hold_ctx;

/* One request; counts whether it took an idle connection or made one (and resumed it). */
static void hold_one(void *arg)
{
    hold_ctx *h = arg;
    ag_request rq;
    ag_request_init(&rq);
    rq.url = h->cfg->url;
    ag_response *resp = NULL;
    int rc = ag_fetch(h->cl, &rq, &resp);
    if (rc == 0 && ag_response_status(resp) != 200)
        rc = ag_response_status(resp);
    if (rc == 0) {
        h->ok++;
        ag_tls_info ti;
        if (ag_response_reused(resp)) {
            h->reused++;
        } else {
            h->fresh++;
            if (ag_response_tls(resp, &ti) == 0) {
                h->resumed += ti.resumed != 0;
                if (!h->version[0])
                    snprintf(h->version, sizeof h->version, "%s", ti.version);
            }
        }
    } else if (!h->first_error) {
        h->first_error = rc;
    }
    ag_response_free(resp);
}

/* n requests started together: none of them finds a connection another one has finished with,
 * because every one of them starts (and waits on its own connection) before any answer is read. */
static int hold_wave(ag_loop *loop, hold_ctx *h, long n)
{
    h->ok = h->fresh = h->reused = h->resumed = 0;
    for (long i = 0; i < n; i++) {
        int rc = ag_coro_spawn(loop, hold_one, h, NULL);
        if (rc < 0)
            return rc;
    }
    return ag_loop_run(loop);
}

static int hold_child(const run_cfg *cfg, long n, bool json)
{
    ag_loop *loop = NULL;
    hold_ctx h = {.cfg = cfg};
    /* Finished coroutines' stacks are not kept with their pages: what stays is the pool's. */
    ag_loop_opts lo;
    ag_loop_opts_init(&lo);
    lo.stack_cache = 1;
    int rc = ag_loop_new(&loop, &lo);
    if (rc == 0) {
        ag_client_opts o;
        ag_client_opts_init(&o);
        o.loop = loop;
        o.dns_servers = cfg->dns_server;
        o.max_conns = (unsigned)n;
        o.max_conns_per_host = (unsigned)n;
        o.max_connecting = (unsigned)n;
        o.keepalive_idle_ms = 600000; /* nothing may expire while we look */
        o.tls = cfg->tls;
        rc = ag_client_new(&h.cl, &o);
    }
    if (rc < 0) {
        fprintf(stderr, "asyncget-bench: --hold: %s\n", ag_strerror(rc));
        ag_loop_free(loop);
        return 1;
    }
    long base = sys_status_kb("VmRSS"), heap_base = sys_heap_kb();
    /* One connection first: libraries, the TLS context and its CA store, the first buffers. */
    hold_wave(loop, &h, 1);
    long one = sys_status_kb("VmRSS"), heap_one = sys_heap_kb();
    long ok1 = h.ok, fresh1 = h.fresh;
    hold_wave(loop, &h, n);
    long idle = sys_status_kb("VmRSS"), heap_idle = sys_heap_kb();
    /* Freed memory given back to the kernel: the RSS the idle connections really need. */
    malloc_trim(0);
    long trimmed = sys_status_kb("VmRSS");
    long ok2 = h.ok, fresh = fresh1 + h.fresh, resumed = h.resumed;
    hold_wave(loop, &h, n);
    long after = sys_status_kb("VmRSS");
    long peak = sys_status_kb("VmHWM");
    long ok3 = h.ok, reused = h.reused;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    ag_client_free(h.cl);
    ag_loop_free(loop);

    bool good = ok1 == 1 && ok2 == n && ok3 == n && fresh == n && reused == n;
    double per = n > 1 ? (double)(idle - one) / (double)(n - 1) : 0;
    double heap_per = n > 1 ? (double)(heap_idle - heap_one) / (double)(n - 1) : 0;
    if (json) {
        printf("{\"hold\": %ld, \"url\": \"%s\", \"tls_version\": \"%s\", \"ok\": %ld, "
               "\"new\": %ld, \"resumed\": %ld, \"reused\": %ld, \"base_kb\": %ld, "
               "\"one_kb\": %ld, \"idle_kb\": %ld, \"after_reuse_kb\": %ld, \"peak_kb\": %ld, "
               "\"maxrss_kb\": %ld, \"per_conn_kb\": %.2f, \"trimmed_kb\": %ld, "
               "\"heap_base_kb\": %ld, \"heap_one_kb\": %ld, \"heap_idle_kb\": %ld, "
               "\"heap_per_conn_kb\": %.2f, \"good\": %s}\n",
               n, cfg->url, h.version, ok1 + ok2 + ok3, fresh, resumed, reused, base, one, idle,
               after, peak, ru.ru_maxrss, per, trimmed, heap_base, heap_one, heap_idle, heap_per,
               good ? "true" : "false");
    } else {
        printf("held %ld connections to %s%s%s: %ld of %ld made at once (%ld resumed), then "
               "%ld of %ld reused\n",
               n, cfg->url, h.version[0] ? ", " : "", h.version, fresh, n, resumed, reused, n);
        printf("RSS: client made %ld kB; one idle connection %ld kB; %ld idle %ld kB; after "
               "reusing them %ld kB; peak (VmHWM) %ld kB, ru_maxrss %ld kB\n",
               base, one, n, idle, after, peak, ru.ru_maxrss);
        printf("per idle connection: %.2f kB of RSS ((%ld - %ld) / %ld); %.2f kB of live heap "
               "(malloc's bytes in use: %ld kB with one, %ld kB with %ld); RSS with %ld idle after "
               "malloc_trim: %ld kB\n",
               per, idle, one, n - 1, heap_per, heap_one, heap_idle, n, n, trimmed);
    }
    if (!good)
        fprintf(stderr,
                "asyncget-bench: --hold: not every connection was made and reused as planned "
                "(ok %ld+%ld+%ld, new %ld, reused %ld; first error %s)\n",
                ok1, ok2, ok3, fresh, reused,
                h.first_error ? (h.first_error > 0 ? "an HTTP status" : ag_err_name(h.first_error))
                              : "none");
    return good ? 0 : 1;
}

int hold_run(const run_cfg *cfg, long n, bool json)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "asyncget-bench: fork: %s\n", strerror(errno));
        return 1;
    }
    if (pid == 0) {
        int rc = hold_child(cfg, n, json);
        fflush(NULL);
        _exit(rc);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
        return 1;
    return WEXITSTATUS(status);
}
