/* modes.c: the four ways of making the same N requests through ag_fetch (one blocking
 * connection, fork workers, thread workers, coroutines on one reactor), each run in a forked
 * child so that its CPU time and peak RSS are its own. */
#include "asyncget.h"
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

const char *const mode_names[4] = {"seq", "fork", "thread", "async"};

bool mode_known(const char *name)
{
    for (size_t i = 0; i < 4; i++)
        if (strcmp(name, mode_names[i]) == 0)
            return true;
    return false;
}

static long min_long(long a, long b)
{
    return a < b ? a : b;
}

int mode_concurrency(const char *name, const run_cfg *cfg)
{
    long n = cfg->requests > 0 ? cfg->requests : 1;
    if (strcmp(name, "fork") == 0)
        return (int)min_long(cfg->workers, n);
    if (strcmp(name, "thread") == 0)
        return (int)min_long(cfg->threads, n);
    if (strcmp(name, "async") == 0)
        return (int)min_long(cfg->concurrency, n);
    return 1;
}

double mode_estimate_s(const char *name, const run_cfg *cfg)
{
    /* Each request costs the server's delay plus, on loopback, some tens of microseconds. */
    double per = cfg->delay_ms / 1000.0 + 0.0001;
    double rounds = (double)(cfg->requests + mode_concurrency(name, cfg) - 1) /
                    (double)mode_concurrency(name, cfg);
    return rounds * per;
}

/* ---- one request, and what a batch of them came to ---- */

typedef struct tally {
    long ok;
    int first_error;
    long tls_handshakes, tls_resumed;
    char tls_version[16];
    char tls_cipher[48];
} tally;

static void tally_add(tally *t, int rc)
{
    if (rc == 0)
        t->ok++;
    else if (!t->first_error)
        t->first_error = rc;
}

/* A response over a new TLS connection counts a handshake, and whether it resumed. Reused
 * connections are skipped: they repeat their first response's answer and cost nothing. */
static void tally_tls(tally *t, const ag_response *resp)
{
    ag_tls_info ti;
    if (ag_response_reused(resp) || ag_response_tls(resp, &ti) < 0)
        return;
    t->tls_handshakes++;
    if (ti.resumed)
        t->tls_resumed++;
    if (!t->tls_version[0]) {
        snprintf(t->tls_version, sizeof t->tls_version, "%s", ti.version);
        snprintf(t->tls_cipher, sizeof t->tls_cipher, "%s", ti.cipher);
    }
}

/* Fetch the URL once and count it; *ms gets the latency. A failure is an asyncget error, or the
 * HTTP status when it was not 200. */
static void fetch_one(ag_client *cl, const run_cfg *cfg, double *ms, tally *t)
{
    static const ag_header close_hdr[] = {{"Connection", "close"}};
    ag_request rq;
    ag_request_init(&rq);
    rq.url = cfg->url;
    if (cfg->close) {
        rq.headers = close_hdr;
        rq.nheaders = 1;
    }
    ag_response *resp = NULL;
    int64_t t0 = ag_now_ns();
    int rc = ag_fetch(cl, &rq, &resp);
    *ms = (double)(ag_now_ns() - t0) / 1e6;
    if (rc == 0 && ag_response_status(resp) != 200)
        rc = ag_response_status(resp);
    if (rc == 0 && cfg->tls)
        tally_tls(t, resp);
    ag_response_free(resp);
    tally_add(t, rc);
}

static void tally_merge(tally *into, const tally *from)
{
    into->ok += from->ok;
    if (!into->first_error)
        into->first_error = from->first_error;
    into->tls_handshakes += from->tls_handshakes;
    into->tls_resumed += from->tls_resumed;
    if (!into->tls_version[0]) {
        memcpy(into->tls_version, from->tls_version, sizeof into->tls_version);
        memcpy(into->tls_cipher, from->tls_cipher, sizeof into->tls_cipher);
    }
}

/* A client with no loop: every wait blocks in poll(). */
static int blocking_client(const run_cfg *cfg, ag_client **out)
{
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.dns_servers = cfg->dns_server;
    o.tls = cfg->tls;
    return ag_client_new(out, &o);
}

/* ---- seq: one blocking client, one keep-alive connection ---- */

static void run_seq(const run_cfg *cfg, double *lat, tally *t)
{
    ag_client *cl;
    int rc = blocking_client(cfg, &cl);
    if (rc < 0) {
        t->first_error = rc;
        return;
    }
    for (long i = 0; i < cfg->requests; i++)
        fetch_one(cl, cfg, &lat[i], t);
    ag_client_free(cl);
}

/* ---- fork: P processes, each with its own client, each a contiguous share of the N ---- */

typedef struct worker_report {
    long count; /* latencies that follow */
    tally t;
    double cpu_s;
    long maxrss_kb;
} worker_report;

static void fork_worker(const run_cfg *cfg, long lo, long hi, int fd)
{
    worker_report wr = {0};
    double *lat = calloc((size_t)(hi - lo) + 1, sizeof *lat);
    ag_client *cl = NULL;
    int rc = lat ? blocking_client(cfg, &cl) : -ENOMEM;
    if (rc < 0)
        wr.t.first_error = rc;
    else {
        for (long i = lo; i < hi; i++)
            fetch_one(cl, cfg, &lat[i - lo], &wr.t);
        wr.count = hi - lo;
        ag_client_free(cl);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    wr.cpu_s = sys_cpu_s(&ru);
    wr.maxrss_kb = ru.ru_maxrss;
    sys_write_full(fd, &wr, sizeof wr);
    if (wr.count)
        sys_write_full(fd, lat, (size_t)wr.count * sizeof *lat);
    _exit(0);
}

static long run_fork(const run_cfg *cfg, double *lat, tally *t, mode_result *r)
{
    int p = mode_concurrency("fork", cfg);
    pid_t *pids = calloc((size_t)p, sizeof *pids);
    int *fds = calloc((size_t)p, sizeof *fds);
    long got = 0;
    if (!pids || !fds)
        goto out;
    for (int w = 0; w < p; w++) {
        int pp[2];
        fds[w] = -1;
        if (pipe(pp) < 0)
            continue;
        long lo = cfg->requests * w / p, hi = cfg->requests * (w + 1) / p;
        pids[w] = fork();
        if (pids[w] == 0) {
            close(pp[0]);
            fork_worker(cfg, lo, hi, pp[1]);
        }
        close(pp[1]);
        if (pids[w] < 0)
            close(pp[0]);
        else
            fds[w] = pp[0];
    }
    r->cpu_s = 0;
    r->peak_rss_kb = 0;
    for (int w = 0; w < p; w++) {
        worker_report wr;
        if (fds[w] < 0)
            continue;
        if (sys_read_full(fds[w], &wr, sizeof wr) == (ssize_t)sizeof wr) {
            long lo = cfg->requests * w / p;
            size_t bytes = (size_t)wr.count * sizeof *lat;
            /* Latencies land at the worker's own indices; a short report leaves zeros. */
            if (wr.count > 0 && sys_read_full(fds[w], lat + lo, bytes) == (ssize_t)bytes)
                got += wr.count;
            tally_merge(t, &wr.t);
            r->cpu_s += wr.cpu_s;
            r->peak_rss_kb += wr.maxrss_kb;
        } else if (!t->first_error) {
            t->first_error = -EPIPE;
        }
        close(fds[w]);
        waitpid(pids[w], NULL, 0);
    }
out:
    free(pids);
    free(fds);
    return got;
}

/* ---- thread: T threads, each with its own blocking client, sharing a request counter ---- */

typedef struct thread_ctx {
    const run_cfg *cfg;
    double *lat;
    atomic_long *next;
    tally t;
} thread_ctx;

static void *thread_main(void *arg)
{
    thread_ctx *tc = arg;
    ag_client *cl;
    int rc = blocking_client(tc->cfg, &cl);
    if (rc < 0) {
        tc->t.first_error = rc;
        return NULL;
    }
    for (;;) {
        long i = atomic_fetch_add(tc->next, 1);
        if (i >= tc->cfg->requests)
            break;
        fetch_one(cl, tc->cfg, &tc->lat[i], &tc->t);
    }
    ag_client_free(cl);
    return NULL;
}

static void run_thread(const run_cfg *cfg, double *lat, tally *t)
{
    int n = mode_concurrency("thread", cfg);
    atomic_long next = 0;
    thread_ctx *tcs = calloc((size_t)n, sizeof *tcs);
    pthread_t *ths = calloc((size_t)n, sizeof *ths);
    bool *started = calloc((size_t)n, sizeof *started);
    if (!tcs || !ths || !started) {
        t->first_error = -ENOMEM;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        tcs[i] = (thread_ctx){.cfg = cfg, .lat = lat, .next = &next};
        started[i] = pthread_create(&ths[i], NULL, thread_main, &tcs[i]) == 0;
    }
    for (int i = 0; i < n; i++) {
        if (!started[i])
            continue;
        pthread_join(ths[i], NULL);
        tally_merge(t, &tcs[i].t);
    }
out:
    free(tcs);
    free(ths);
    free(started);
}

/* ---- async: one loop, one client, C coroutines taking the next request index ---- */

typedef struct async_ctx {
    ag_client *cl;
    const run_cfg *cfg;
    double *lat;
    long next; /* one thread: no atomics needed */
    tally t;
} async_ctx;

static void async_worker(void *arg)
{
    async_ctx *ac = arg;
    while (ac->next < ac->cfg->requests) {
        long i = ac->next++;
        fetch_one(ac->cl, ac->cfg, &ac->lat[i], &ac->t);
    }
}

static void run_async(const run_cfg *cfg, double *lat, tally *t)
{
    int c = mode_concurrency("async", cfg);
    ag_loop *loop = NULL;
    async_ctx ac = {.cfg = cfg, .lat = lat};
    int rc = ag_loop_new(&loop, NULL);
    if (rc == 0) {
        ag_client_opts o;
        ag_client_opts_init(&o);
        o.loop = loop;
        o.dns_servers = cfg->dns_server;
        o.max_conns = (unsigned)c;
        o.max_conns_per_host = (unsigned)c;
        o.tls = cfg->tls;
        rc = ag_client_new(&ac.cl, &o);
    }
    for (int i = 0; rc == 0 && i < c; i++)
        rc = ag_coro_spawn(loop, async_worker, &ac, NULL);
    /* Coroutines already spawned still run the whole batch; a failed spawn is only reported. */
    if (loop && ac.cl)
        ag_loop_run(loop);
    *t = ac.t;
    if (rc < 0 && !t->first_error)
        t->first_error = rc;
    ag_client_free(ac.cl);
    ag_loop_free(loop);
}

/* ---- one mode in a child process ---- */

static void mode_child(const char *name, const run_cfg *cfg, int fd)
{
    mode_result r;
    memset(&r, 0, sizeof r);
    snprintf(r.mode, sizeof r.mode, "%s", name);
    r.requests = cfg->requests;
    r.concurrency = mode_concurrency(name, cfg);
    r.delay_ms = cfg->delay_ms;
    double *lat = calloc((size_t)cfg->requests + 1, sizeof *lat);
    tally t = {0};
    long nlat = cfg->requests;
    if (!lat) {
        r.failed = true;
        goto send;
    }
    int64_t t0 = ag_now_ns();
    if (strcmp(name, "seq") == 0)
        run_seq(cfg, lat, &t);
    else if (strcmp(name, "fork") == 0)
        nlat = run_fork(cfg, lat, &t, &r);
    else if (strcmp(name, "thread") == 0)
        run_thread(cfg, lat, &t);
    else
        run_async(cfg, lat, &t);
    r.wall_s = (double)(ag_now_ns() - t0) / 1e9;
    if (strcmp(name, "fork") != 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        r.cpu_s = sys_cpu_s(&ru);
        r.peak_rss_kb = ru.ru_maxrss;
    }
    r.ok = t.ok;
    r.first_error = t.first_error;
    r.tls_handshakes = t.tls_handshakes;
    r.tls_resumed = t.tls_resumed;
    memcpy(r.tls_version, t.tls_version, sizeof r.tls_version);
    memcpy(r.tls_cipher, t.tls_cipher, sizeof r.tls_cipher);
    report_finish(&r, lat, (size_t)nlat);
send:
    sys_write_full(fd, &r, sizeof r);
    _exit(0);
}

int mode_run(const char *name, const run_cfg *cfg, mode_result *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->mode, sizeof out->mode, "%s", name);
    out->requests = cfg->requests;
    out->concurrency = mode_concurrency(name, cfg);
    out->delay_ms = cfg->delay_ms;
    out->failed = true;
    int p[2];
    if (pipe(p) < 0)
        return -errno;
    fflush(NULL); /* nothing buffered may be written twice */
    pid_t pid = fork();
    if (pid < 0) {
        int err = -errno;
        close(p[0]);
        close(p[1]);
        return err;
    }
    if (pid == 0) {
        close(p[0]);
        mode_child(name, cfg, p[1]);
    }
    close(p[1]);
    mode_result r;
    ssize_t n = sys_read_full(p[0], &r, sizeof r);
    close(p[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (n != (ssize_t)sizeof r) {
        /* The child died before reporting: keep its signal, if any, as the error. */
        out->first_error = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        return -ECHILD;
    }
    *out = r;
    return out->failed ? -ENOMEM : 0;
}

long mode_baseline_rss_kb(const run_cfg *cfg)
{
    /* One request in flight, through the same code: what the async mode costs before its
     * concurrency is counted (libraries faulted in, the loop, one connection). */
    run_cfg one = *cfg;
    one.requests = 1;
    one.concurrency = 1;
    mode_result r;
    if (mode_run("async", &one, &r) < 0)
        return 0;
    return r.peak_rss_kb;
}
