/* soak.c: a long run of keep-alive requests through one client, with the process's memory
 * sampled at every tenth of the run, to show whether anything grows with the request count. */
#include "asyncget.h"
#include "bench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SAMPLES 10 /* one sample per tenth of the run */

/* What the process holds after a share of the run. */
typedef struct soak_sample {
    long done; /* requests finished */
    double wall_s;
    long rss_kb;  /* VmRSS */
    long heap_kb; /* malloc's bytes in use */
    long fds;     /* open descriptors */
    long conns;   /* responses that came over a new connection, so far */
} soak_sample;

typedef struct soak_ctx {
    ag_client *cl;
    const run_cfg *cfg;
    long next, done, ok, conns;
    int first_error;
    int64_t t0;
    soak_sample s[SAMPLES + 1]; /* s[0]: before the first request */
    int taken;
    bool json;
} soak_ctx;

static void take_sample(soak_ctx *sc, soak_sample *s)
{
    s->done = sc->done;
    s->wall_s = (double)(ag_now_ns() - sc->t0) / 1e9;
    s->rss_kb = sys_status_kb("VmRSS");
    s->heap_kb = sys_heap_kb();
    s->fds = sys_count_fds();
    s->conns = sc->conns;
}

static void print_sample(const soak_sample *s, long total, bool json)
{
    if (json)
        printf("{\"soak\": %ld, \"done\": %ld, \"wall_s\": %.3f, \"rss_kb\": %ld, "
               "\"heap_kb\": %ld, \"fds\": %ld, \"new_conns\": %ld}\n",
               total, s->done, s->wall_s, s->rss_kb, s->heap_kb, s->fds, s->conns);
    else
        printf("%3ld%%  %9ld requests  %8.2f s  RSS %6ld kB  heap %6ld kB  fds %3ld  "
               "new connections %ld\n",
               total ? s->done * 100 / total : 0, s->done, s->wall_s, s->rss_kb, s->heap_kb, s->fds,
               s->conns);
    fflush(stdout);
}

/* One coroutine: take the next request until none is left; sample when a tenth is complete. */
static void soak_worker(void *arg)
{
    soak_ctx *sc = arg;
    ag_request rq;
    ag_request_init(&rq);
    rq.url = sc->cfg->url;
    while (sc->next < sc->cfg->requests) {
        sc->next++;
        ag_response *resp = NULL;
        int rc = ag_fetch(sc->cl, &rq, &resp);
        if (rc == 0 && ag_response_status(resp) != 200)
            rc = ag_response_status(resp);
        if (rc == 0) {
            sc->ok++;
            sc->conns += !ag_response_reused(resp);
        } else if (!sc->first_error) {
            sc->first_error = rc;
        }
        ag_response_free(resp);
        sc->done++;
        /* The sample is taken with the response freed, as a user of the client would hold
         * nothing between requests. */
        if (sc->taken < SAMPLES &&
            sc->done * SAMPLES >= (long)(sc->taken + 1) * sc->cfg->requests) {
            sc->taken++;
            take_sample(sc, &sc->s[sc->taken]);
            print_sample(&sc->s[sc->taken], sc->cfg->requests, sc->json);
        }
    }
}

static int soak_child(const run_cfg *cfg, bool json)
{
    int c = cfg->concurrency > 0 ? cfg->concurrency : 1;
    ag_loop *loop = NULL;
    soak_ctx sc = {.cfg = cfg, .json = json};
    int rc = ag_loop_new(&loop, NULL);
    if (rc == 0) {
        ag_client_opts o;
        ag_client_opts_init(&o);
        o.loop = loop;
        o.dns_servers = cfg->dns_server;
        o.max_conns = (unsigned)c;
        o.max_conns_per_host = (unsigned)c;
        o.tls = cfg->tls;
        rc = ag_client_new(&sc.cl, &o);
    }
    if (rc < 0) {
        fprintf(stderr, "asyncget-bench: --soak: %s\n", ag_strerror(rc));
        ag_loop_free(loop);
        return 1;
    }
    if (!json)
        printf("soak: %ld keep-alive requests to %s, %d in flight, one client\n", cfg->requests,
               cfg->url, c);
    sc.t0 = ag_now_ns();
    take_sample(&sc, &sc.s[0]);
    for (int i = 0; rc == 0 && i < c; i++)
        rc = ag_coro_spawn(loop, soak_worker, &sc, NULL);
    if (rc == 0)
        rc = ag_loop_run(loop);
    /* At the end the pool must be at rest: its connections idle, no request left. */
    ag_pool_stats ps;
    memset(&ps, 0, sizeof ps);
    ag_client_pool_stats(sc.cl, &ps);
    bool rest = ps.requests == 0 && ps.conns == ps.idle && ps.connecting == 0;
    ag_client_free(sc.cl);
    ag_loop_free(loop);
    if (rc < 0) {
        fprintf(stderr, "asyncget-bench: --soak: %s\n", ag_strerror(rc));
        return 1;
    }

    /* Warm-up is the first tenth: the pool's connections, the libraries' first allocations and
     * malloc's arenas are made there. After it nothing may grow with the request count. */
    const soak_sample *w = &sc.s[1], *h = &sc.s[SAMPLES / 2], *e = &sc.s[sc.taken];
    long rss_growth = e->rss_kb - w->rss_kb, heap_growth = e->heap_kb - w->heap_kb;
    /* RSS moves by whole pages and malloc keeps freed chunks; a few pages either way is not a
     * trend. The live heap is exact: a request that keeps even 1 byte would add 900 kB here. */
    bool flat =
        sc.taken == SAMPLES && rss_growth <= 256 && heap_growth <= 64 && e->fds <= w->fds && rest;
    double rps = e->wall_s > 0 ? (double)sc.done / e->wall_s : 0;
    if (json)
        printf("{\"soak\": %ld, \"ok\": %ld, \"rps\": %.0f, \"rss_10_kb\": %ld, "
               "\"rss_50_kb\": %ld, \"rss_100_kb\": %ld, \"heap_10_kb\": %ld, "
               "\"heap_100_kb\": %ld, \"new_conns\": %ld, \"pool_conns\": %llu, "
               "\"pool_idle\": %llu, \"pool_requests\": %llu, \"flat\": %s}\n",
               cfg->requests, sc.ok, rps, w->rss_kb, h->rss_kb, e->rss_kb, w->heap_kb, e->heap_kb,
               e->conns, (unsigned long long)ps.conns, (unsigned long long)ps.idle,
               (unsigned long long)ps.requests, flat ? "true" : "false");
    else
        printf("soak: %ld of %ld ok in %.1f s (%.0f requests/s) over %ld connections; RSS at "
               "10%% %ld kB, 50%% %ld kB, 100%% %ld kB (%+ld kB after warm-up); live heap "
               "%+ld kB; pool at the end: %llu connections, %llu idle, %llu requests; %s\n",
               sc.ok, cfg->requests, e->wall_s, rps, e->conns, w->rss_kb, h->rss_kb, e->rss_kb,
               rss_growth, heap_growth, (unsigned long long)ps.conns, (unsigned long long)ps.idle,
               (unsigned long long)ps.requests, flat ? "flat" : "GROWS");
    if (sc.ok != cfg->requests)
        fprintf(stderr, "asyncget-bench: --soak: %ld requests failed (first: %s)\n",
                cfg->requests - sc.ok,
                sc.first_error > 0 ? "an HTTP status" : ag_err_name(sc.first_error));
    return flat && sc.ok == cfg->requests ? 0 : 1;
}

int soak_run(const run_cfg *cfg, bool json)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "asyncget-bench: fork: %s\n", strerror(errno));
        return 1;
    }
    if (pid == 0) {
        int rc = soak_child(cfg, json);
        fflush(NULL);
        _exit(rc);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
        return 1;
    return WEXITSTATUS(status);
}
