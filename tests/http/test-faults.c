/* test-faults.c: thousands of requests, concurrently, through tests/servers/faultproxy.py in front
 * of nginx (plain and TLS), which gives every connection a fault drawn from a seed: clean, split
 * into 1-byte writes, delayed, reset, half-closed, stalled. Every request must end exactly once,
 * either with the exact bytes nginx serves (checked by SHA-256 against the file on disk) or with a
 * clear error on a connection where the proxy fired a fault that can fail a request; no POST may
 * reach nginx twice; and the pool, the client and the process's file descriptors come back to
 * rest. The proxy's log (AG_FAULT_LOG) and nginx's log of /post/ (AG_NGINX_POST_LOG) are the
 * other side's account. AG_FAULT_REQUESTS sets the number of requests per case (10,000; 2,000 in
 * the sanitizer build), AG_FAULT_SEED the seed of the proxy and of the requests' mix. */
#include "tests/http/util.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define CONCURRENCY     200
#define MAX_CONNS       120
#define DEFAULT_N       10000
#define SANITIZED_N     2000
#define RAMP_START      20
#define IDLE_TIMEOUT_MS 6000 /* the proxy's stall holds 8,000 ms */
#define WRAPPED_N       400
#define POST_MAX        20000

/* The files served: sizes around the read sizes and the proxy's fault points, drawn with these
 * weights (per 1,000). */
typedef struct tfile {
    const char *name;
    size_t size;
    int weight;
    unsigned char sha[32];
} tfile;

static tfile files[] = {
    {"fault-0", 0, 30, {0}},         {"fault-1", 1, 50, {0}},
    {"fault-137", 137, 150, {0}},    {"fault-1k", 1024, 200, {0}},
    {"fault-4k", 4097, 170, {0}},    {"fault-16k", 16387, 150, {0}},
    {"fault-64k", 65535, 100, {0}},  {"fault-100k", 100003, 30, {0}},
    {"fault-300k", 300007, 10, {0}},
};
#define NFILES   ((int)(sizeof files / sizeof *files))
#define POST_PER 110 /* weight of a POST, per 1,000 with the files' */

typedef struct job {
    int file; /* index in files, or -1 for a POST */
    int calls;
    int rc;
    int status;
    bool right;
    unsigned connects;
    char local[48];
    char detail[120];
} job;

typedef struct run {
    const char *name; /* "plain" or "tls": the proxy's listener name too */
    ag_loop *loop;
    ag_client *client;
    job *jobs;
    int n, started, finished;
    char base[96];
    uint32_t rng;
} run;

static const char *root;
static const char *fault_log;
static const char *post_log;
static unsigned char post_body[POST_MAX];
static uint32_t seed = 1;
static bool verbose;      /* AG_FAULT_VERBOSE=1: every failure with its connection's log line */
static bool custom_rates; /* AG_FAULT_RATES: the proxy's weights are not the defaults */
static int idle_timeout_ms = IDLE_TIMEOUT_MS;
/* Requests in flight: CONCURRENCY, fewer for a short run. Most faults fire in a connection's first
 * answer, so a run of few requests per connection would fail a larger share of them. */
static int concurrency = CONCURRENCY;

static uint32_t next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void sha256(const void *data, size_t len, unsigned char out[32])
{
    unsigned int n = 32;
    EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

static int make_files(void)
{
    uint32_t s = 0x9e3779b9u;
    for (int i = 0; i < NFILES; i++) {
        tfile *f = &files[i];
        unsigned char *buf = malloc(f->size + 1);
        if (!buf)
            return -1;
        for (size_t k = 0; k < f->size; k++)
            buf[k] = (unsigned char)next_rand(&s);
        sha256(buf, f->size, f->sha);
        char path[512];
        snprintf(path, sizeof path, "%s/%s", root, f->name);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, buf, f->size) != (ssize_t)f->size) {
            free(buf);
            return -1;
        }
        close(fd);
        free(buf);
    }
    for (size_t k = 0; k < sizeof post_body; k++)
        post_body[k] = (unsigned char)('a' + k % 26);
    return 0;
}

/* What a reset, a half-close or a stall may end a request with: the connection reset or closed
 * (before, during or after the TLS handshake, before the answer or in its body, or under a
 * write), or the idle timeout. Anything else (a protocol error, a TLS fault) would mean the
 * client misread bytes that nginx sent and the proxy forwarded. */
static bool fault_error(int rc)
{
    return rc == -ECONNRESET || rc == -EPIPE || rc == AG_ECLOSED || rc == AG_ETRUNCATED ||
           rc == AG_EIDLE_TIMEOUT;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static void start_one(run *r);

typedef struct slot {
    run *r;
    int idx;
} slot;

static void on_done(ag_client *client, ag_response *resp, int status, void *arg)
{
    (void)client;
    slot *sl = arg;
    run *r = sl->r;
    job *j = &r->jobs[sl->idx];
    free(sl);
    j->calls++;
    j->rc = status;
    if (resp) {
        j->status = ag_response_status(resp);
        j->connects = ag_response_connects(resp);
        snprintf(j->local, sizeof j->local, "%s", ag_response_local(resp));
        snprintf(j->detail, sizeof j->detail, "%s", ag_response_error_detail(resp));
        if (status == 0) {
            size_t len;
            const char *body = ag_response_body(resp, &len);
            if (j->file < 0) {
                j->right = j->status == 200 && len == 3 && memcmp(body, "ok\n", 3) == 0;
            } else {
                unsigned char h[32];
                sha256(body, len, h);
                j->right = j->status == 200 && len == files[j->file].size &&
                           memcmp(h, files[j->file].sha, 32) == 0;
            }
        }
        ag_response_free(resp);
    }
    r->finished++;
    /* Slow start: each completion starts up to two until `concurrency` are in flight, so that the
     * proxy (one Python process, on a machine that may be loaded) does not meet every connection
     * at once: that burst once held benign connections past the idle timeout. */
    for (int k = 0; k < 2 && r->started < r->n && r->started - r->finished < concurrency; k++)
        start_one(r);
    if (r->finished == r->n)
        ag_loop_stop(r->loop);
}

static void start_one(run *r)
{
    int idx = r->started++;
    job *j = &r->jobs[idx];
    uint32_t pick = next_rand(&r->rng) % 1000;
    j->file = -1;
    if (pick >= POST_PER) {
        int acc = POST_PER;
        for (int i = 0; i < NFILES; i++) {
            acc += files[i].weight * (1000 - POST_PER) / 1000;
            if ((int)pick < acc || i == NFILES - 1) {
                j->file = i;
                break;
            }
        }
    }
    char url[192];
    ag_request req;
    ag_request_init(&req);
    req.url = url;
    if (j->file >= 0) {
        snprintf(url, sizeof url, "%s/%s", r->base, files[j->file].name);
    } else {
        snprintf(url, sizeof url, "%s/post/%s-%u-%d", r->base, r->name, seed, idx);
        req.method = "POST";
        req.body_kind = AG_BODY_MEMORY;
        req.body = post_body;
        req.body_len = next_rand(&r->rng) % POST_MAX;
    }
    slot *sl = malloc(sizeof *sl);
    sl->r = r;
    sl->idx = idx;
    int rc = ag_fetch_start(r->client, &req, on_done, sl, NULL);
    if (rc < 0) {
        /* Never started: counted as a failure with no callback (calls stays 0). */
        free(sl);
        j->rc = rc;
        r->finished++;
    }
}

/* ---- the proxy's log ---- */

typedef struct pconn {
    int port;
    char fault[24];
    bool fired;
    char *line; /* the whole log line, for the diagnostics */
} pconn;

static bool failing_fault(const pconn *p)
{
    return p->fired && (strncmp(p->fault, "reset", 5) == 0 ||
                        strncmp(p->fault, "halfclose", 9) == 0 || strcmp(p->fault, "stall") == 0);
}

static const char *json_str(const char *line, const char *key, char *out, size_t cap)
{
    char pat[40];
    snprintf(pat, sizeof pat, "\"%s\": \"", key);
    const char *p = strstr(line, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    size_t n = 0;
    while (p[n] && p[n] != '"' && n + 1 < cap)
        n++;
    memcpy(out, p, n);
    out[n] = 0;
    return out;
}

/* The proxy's connections of listener name logged after byte offset from. */
static pconn *read_proxy_log(const char *name, long from, int *count)
{
    size_t len;
    char *text = read_file(fault_log, &len);
    *count = 0;
    if (!text)
        return NULL;
    text[len] = 0;
    int cap = 1024, n = 0;
    pconn *v = malloc(sizeof *v * (size_t)cap);
    for (char *line = text + (from < (long)len ? from : (long)len); *line;) {
        char *end = strchr(line, '\n');
        if (!end)
            break; /* a line still being written */
        *end = 0;
        char listen[16], client[48];
        if (json_str(line, "listen", listen, sizeof listen) && strcmp(listen, name) == 0 &&
            json_str(line, "client", client, sizeof client)) {
            if (n == cap) {
                cap *= 2;
                v = realloc(v, sizeof *v * (size_t)cap);
            }
            pconn *p = &v[n++];
            const char *colon = strrchr(client, ':');
            p->port = colon ? atoi(colon + 1) : -1;
            if (!json_str(line, "fault", p->fault, sizeof p->fault))
                p->fault[0] = 0;
            p->fired = strstr(line, "\"fired\": true") != NULL;
            p->line = strdup(line);
        }
        line = end + 1;
    }
    free(text);
    *count = n;
    return v;
}

static void free_proxy_log(pconn *v, int n)
{
    for (int i = 0; v && i < n; i++)
        free(v[i].line);
    free(v);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int port_of(const char *addr)
{
    const char *colon = strrchr(addr, ':');
    return colon ? atoi(colon + 1) : -1;
}

/* ---- one case ---- */

static void one_case(const char *name, int port, const char *ca, int n)
{
    run r = {0};
    r.name = name;
    r.n = n;
    r.rng = seed * 2654435761u + (ca ? 7u : 3u);
    if (!r.rng)
        r.rng = 1;
    r.jobs = calloc((size_t)n, sizeof *r.jobs);
    snprintf(r.base, sizeof r.base, "%s://%s:%d", ca ? "https" : "http",
             ca ? "localhost" : "127.0.0.1", port);
    long proxy_from = file_size(fault_log), post_from = file_size(post_log);

    ag_loop_new(&r.loop, NULL);
    int fds_before = count_fds();
    ag_tls_opts tls;
    ag_tls_opts_init(&tls);
    tls.ca_file = ca;
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = r.loop;
    o.idle_timeout_ms = idle_timeout_ms;
    /* Fewer connections than requests in flight: the others wait for a slot, and a connection a
     * fault ends hands its slot on. */
    o.max_conns_per_host = MAX_CONNS;
    o.tls = ca ? &tls : NULL;
    ag_client_new(&r.client, &o);

    int64_t t0 = ag_now_ns();
    for (int i = 0; i < concurrency && i < RAMP_START && r.started < n; i++)
        start_one(&r);
    ag_loop_run(r.loop);
    double secs = (double)(ag_now_ns() - t0) / 1e9;

    /* The client's account. */
    int ok = 0, failed = 0, wrong = 0, twice = 0, never = 0, unclear = 0;
    int posts = 0, posts_ok = 0, gets_ok = 0;
    unsigned connects = 0;
    char first_wrong[200] = "", first_unclear[320] = "";
    struct {
        int rc, count;
    } errs[16] = {{0}};
    int nerrs = 0;
    for (int i = 0; i < n; i++) {
        job *j = &r.jobs[i];
        connects += j->connects;
        posts += j->file < 0;
        if (j->calls == 0)
            never++;
        if (j->calls > 1)
            twice++;
        if (j->rc == 0 && j->right) {
            ok++;
            posts_ok += j->file < 0;
            gets_ok += j->file >= 0;
        } else if (j->rc == 0) {
            if (!wrong++)
                snprintf(first_wrong, sizeof first_wrong, "; first: #%d %s got status %d", i,
                         j->file < 0 ? "POST" : files[j->file].name, j->status);
        } else {
            failed++;
            int k;
            for (k = 0; k < nerrs && errs[k].rc != j->rc; k++)
                ;
            if (k == nerrs && nerrs < 16)
                errs[nerrs++].rc = j->rc;
            if (k < 16)
                errs[k].count++;
            if (strcmp(ag_err_name(j->rc), "EUNKNOWN") == 0 || !j->detail[0] ||
                !fault_error(j->rc)) {
                if (!unclear++)
                    snprintf(first_unclear, sizeof first_unclear, "; first: #%d rc %d (%s) \"%s\"",
                             i, j->rc, ag_err_name(j->rc), j->detail);
            }
        }
    }
    tap_diag("%s: %d requests (%d GET, %d POST), %d in flight, in %.2f s: %d ok, %d failed, %d "
             "wrong answers; %u connections opened",
             name, n, n - posts, posts, concurrency, secs, ok, failed, wrong, connects);
    for (int k = 0; k < nerrs; k++)
        tap_diag("%s: failed with %s: %d", name, ag_err_name(errs[k].rc), errs[k].count);
    tap_ok(never == 0 && twice == 0 && ok + failed + wrong == n,
           "faults_%s_each_once: sent %d = %d ok + %d failed + %d wrong; callbacks never run %d, "
           "run twice or more %d",
           name, n, ok, failed, wrong, never, twice);
    tap_ok(wrong == 0,
           "faults_%s_exact_bodies: every request that succeeded has the file's exact bytes "
           "(SHA-256) or the POST's answer: %d GETs and %d POSTs ok, %d wrong%s",
           name, gets_ok, posts_ok, wrong, first_wrong);
    tap_ok(unclear == 0,
           "faults_%s_clear_errors: every failure is a reset, a close, a truncation or the idle "
           "timeout, with a detail (%d not%s)",
           name, unclear, first_unclear);

    /* The pool at rest, the client freed, the descriptors back. */
    ag_pool_stats ps;
    memset(&ps, 0, sizeof ps);
    int src = ag_client_pool_stats(r.client, &ps);
    tap_ok(src == 0 && ps.conns == ps.idle && ps.connecting == 0 && ps.requests == 0 &&
               ps.waiting_slot == 0 && ps.waiting_connect == 0 && ps.waiting_fd == 0,
           "faults_%s_pool_at_rest: %llu connections (%llu idle), %llu connecting, %llu requests, "
           "%llu + %llu + %llu waiting",
           name, (unsigned long long)ps.conns, (unsigned long long)ps.idle,
           (unsigned long long)ps.connecting, (unsigned long long)ps.requests,
           (unsigned long long)ps.waiting_slot, (unsigned long long)ps.waiting_connect,
           (unsigned long long)ps.waiting_fd);
    int frc = ag_client_free(r.client);
    tap_ok(frc == 0, "faults_%s_client_free: ag_client_free returns %d (%s)", name, frc,
           ag_err_name(frc));
    int fds_after = count_fds();
    tap_ok(fds_after == fds_before,
           "faults_%s_fds_back: %d descriptors before the client, %d after ag_client_free", name,
           fds_before, fds_after);
    ag_loop_free(r.loop);

    /* The proxy's account: every connection the client opened has ended there (the client's
     * are closed; a stalled one ends when its stall does). */
    int np = 0;
    pconn *pc = NULL;
    for (int waited = 0;; waited += 50) {
        free_proxy_log(pc, np);
        pc = read_proxy_log(name, proxy_from, &np);
        if ((unsigned)np >= connects || waited >= 30000)
            break;
        sleep_ms(50);
    }
    static const char *kinds[] = {
        "clean", "split", "delay", "reset", "reset-request", "halfclose-client", "halfclose-server",
        "stall"};
    int nk = (int)(sizeof kinds / sizeof *kinds);
    int kind_n[12] = {0}, kind_fired[12] = {0};
    for (int i = 0; i < np; i++)
        for (int k = 0; k < nk; k++)
            if (strcmp(pc[i].fault, kinds[k]) == 0) {
                kind_n[k]++;
                kind_fired[k] += pc[i].fired;
            }
    tap_diag("%s: the proxy logged %d connections (seed %u):", name, np, seed);
    for (int k = 0; k < nk; k++)
        tap_diag("%s:   %-16s %5d, fired %5d", name, kinds[k], kind_n[k], kind_fired[k]);
    tap_ok((unsigned)np == connects,
           "faults_%s_proxy_saw_all: the proxy logged %d connections, the client opened %u", name,
           np, connects);
    /* Rates of one's own (AG_FAULT_RATES) may leave a fault out. */
    bool each_fired = true;
    for (int k = 3; k < nk; k++)
        each_fired = each_fired && (kind_fired[k] > 0 || (custom_rates && kind_n[k] == 0));
    tap_ok(each_fired, "faults_%s_faults_fired: every failing fault fired at least once", name);

    /* Every failure on a connection where a failing fault fired. A source port may come back
     * within a run (a reset leaves no TIME_WAIT): any connection of that port that saw one
     * explains it. */
    int unexplained = 0, ambiguous = 0;
    char first_unexplained[512] = "";
    /* Requests and failures by the fault of their connection, when its port names one. */
    int by_kind[12] = {0}, failed_by_kind[12] = {0};
    for (int i = 0; i < n; i++) {
        job *j = &r.jobs[i];
        int p = port_of(j->local), seen = 0, kind = -1;
        bool explained = false;
        for (int k = 0; k < np; k++)
            if (pc[k].port == p) {
                seen++;
                explained = explained || failing_fault(&pc[k]);
                for (int q = 0; q < nk; q++)
                    if (strcmp(pc[k].fault, kinds[q]) == 0)
                        kind = q;
            }
        bool good = j->rc == 0 && j->right;
        if (seen == 1 && kind >= 0) {
            by_kind[kind]++;
            failed_by_kind[kind] += !good;
        }
        if (good)
            continue;
        if (verbose) {
            tap_diag("%s: #%d %s %s (%s) on \"%s\", %u connects", name, i,
                     j->file < 0 ? "POST" : files[j->file].name, ag_err_name(j->rc), j->detail,
                     j->local, j->connects);
            for (int k = 0; k < np; k++)
                if (pc[k].port == p)
                    tap_diag("%s:   proxy: %s", name, pc[k].line);
        }
        ambiguous += seen > 1;
        if (explained)
            continue;
        if (!unexplained++)
            snprintf(first_unexplained, sizeof first_unexplained,
                     "; first: #%d %s %s (%s) on \"%s\", %d proxy connections of that port", i,
                     j->file < 0 ? "POST" : files[j->file].name, ag_err_name(j->rc), j->detail,
                     j->local, seen);
        if (unexplained <= 5) {
            tap_diag("%s: unexplained #%d %s: %s (%s) on \"%s\"", name, i,
                     j->file < 0 ? "POST" : files[j->file].name, ag_err_name(j->rc), j->detail,
                     j->local);
            for (int k = 0; k < np; k++)
                if (pc[k].port == p)
                    tap_diag("%s:   proxy: %s", name, pc[k].line);
        }
    }
    for (int k = 0; k < nk; k++)
        tap_diag("%s: requests over %-16s connections: %5d, failed %4d", name, kinds[k], by_kind[k],
                 failed_by_kind[k]);
    tap_ok(unexplained == 0,
           "faults_%s_failures_explained: every failed request's connection saw a reset, "
           "half-close or stall fire (%d of %d not; %d ports seen on several connections)%s",
           name, unexplained, failed + wrong, ambiguous, first_unexplained);
    /* With the default rates about 1% of 10,000 fail, 3-6% of a short run (a fault ends one
     * connection, and with it the one request in flight there, mostly its first); a client that
     * failed everything, or every request that met a reused connection's close, could not reach
     * this. */
    int want_ok = custom_rates ? n / 2 : n >= 2000 ? n * 9 / 10 : n * 8 / 10;
    tap_ok(ok >= want_ok, "faults_%s_most_succeed: %d of %d succeeded (want at least %d)", name, ok,
           n, want_ok);
    free_proxy_log(pc, np);

    /* nginx's account of the POSTs: each id at most once; every POST that succeeded once. The
     * log is written as nginx finishes each request: wait until it stops growing. */
    long last = -1;
    for (int waited = 0; waited < 5000; waited += 200) {
        long now = file_size(post_log);
        if (now == last)
            break;
        last = now;
        sleep_ms(200);
    }
    size_t len;
    char *text = read_file(post_log, &len);
    unsigned char *seen = calloc((size_t)n, 1);
    int lines = 0, dup = 0, ok_missing = 0, failed_reached = 0, reached = 0;
    char first_dup[320] = "";
    if (text) {
        text[len] = 0;
        char prefix[64];
        int pl = snprintf(prefix, sizeof prefix, "POST /post/%s-%u-", name, seed);
        for (char *line = text + (post_from < (long)len ? post_from : (long)len); *line;) {
            char *end = strchr(line, '\n');
            if (!end)
                break;
            *end = 0;
            if (strncmp(line, prefix, (size_t)pl) == 0) {
                int idx = atoi(line + pl);
                lines++;
                if (idx >= 0 && idx < n && seen[idx]++ && !dup++)
                    snprintf(first_dup, sizeof first_dup, "; first: \"%s\"", line);
            }
            line = end + 1;
        }
    }
    for (int i = 0; i < n; i++) {
        job *j = &r.jobs[i];
        if (j->file >= 0)
            continue;
        reached += seen[i] > 0;
        if (j->rc == 0 && j->right && !seen[i])
            ok_missing++;
        if (!(j->rc == 0 && j->right) && seen[i])
            failed_reached++;
    }
    tap_diag("%s: POSTs: %d sent, %d ok, %d failed; %d reached nginx (%d of them failed at the "
             "client), %d log lines",
             name, posts, posts_ok, posts - posts_ok, reached, failed_reached, lines);
    tap_ok(text && dup == 0 && ok_missing == 0,
           "faults_%s_post_once: no POST reached nginx twice (%d did), every POST that succeeded "
           "reached it (%d did not); %d that failed after reaching it were not sent again%s",
           name, dup, ok_missing, failed_reached, first_dup);
    free(text);
    free(seen);
    free(r.jobs);
}

int main(void)
{
    int port = env_port("AG_FAULT_PORT");
    root = getenv("AG_NGINX_ROOT");
    fault_log = getenv("AG_FAULT_LOG");
    post_log = getenv("AG_NGINX_POST_LOG");
    if (!root || !fault_log || !post_log) {
        printf("1..0 # SKIP AG_NGINX_ROOT, AG_FAULT_LOG or AG_NGINX_POST_LOG not set\n");
        return 0;
    }
    if (getenv("AG_FAULT_SEED"))
        seed = (uint32_t)strtoul(getenv("AG_FAULT_SEED"), NULL, 10);
    custom_rates = getenv("AG_FAULT_RATES") != NULL;
    verbose = getenv("AG_FAULT_VERBOSE") && strcmp(getenv("AG_FAULT_VERBOSE"), "1") == 0;
    /* The sanitizer build (AG_SANITIZED, set by tests/meson.build) runs a fifth: the proxy and
     * the client's CPU made the full count take 190 s there on the loaded development machine,
     * and the 10,000 of the other builds already give the counts their weight. */
    const char *why_n = "";
    int n = DEFAULT_N;
    if (getenv("AG_FAULT_REQUESTS")) {
        n = atoi(getenv("AG_FAULT_REQUESTS"));
        why_n = " (AG_FAULT_REQUESTS)";
    } else if (getenv("AG_TEST_WRAPPER") && getenv("AG_TEST_WRAPPER")[0]) {
        /* meson's valgrind setup: memcheck slows the client some 20-50 times. The idle timeout
         * grows by meson's timeout multiplier there (20), so that a benign connection's bytes
         * waiting for the slowed client never look like silence; a stall then ends by the
         * proxy's close (still a failing fault). */
        n = WRAPPED_N;
        idle_timeout_ms = IDLE_TIMEOUT_MS * 20;
        why_n = " (under AG_TEST_WRAPPER, e.g. valgrind)";
    } else if (getenv("AG_SANITIZED") && strcmp(getenv("AG_SANITIZED"), "1") == 0) {
        n = SANITIZED_N;
        why_n = " (sanitizer build: AG_FAULT_REQUESTS=10000 for the full count)";
    }
    if (n / 8 < concurrency)
        concurrency = n / 8 > 0 ? n / 8 : 1;
    if (make_files() < 0) {
        tap_ok(0, "faults_setup: cannot write the files into %s", root);
        return tap_done();
    }
    tap_diag("backend %s, seed %u, %d requests per case%s, %d in flight over at most %d "
             "connections, idle timeout %d ms%s",
             ag_loop_backend(), seed, n, why_n, concurrency, MAX_CONNS, idle_timeout_ms,
             custom_rates ? ", the proxy's rates from AG_FAULT_RATES" : "");
    one_case("plain", port, NULL, n);
    const char *tls_port = getenv("AG_FAULT_TLS_PORT");
    const char *ca = getenv("AG_TLS_CA");
    if (tls_port && ca)
        one_case("tls", atoi(tls_port), ca, n);
    else
        tap_skip("faults_tls: no AG_FAULT_TLS_PORT (with-servers --faults --tls)");
    return tap_done();
}
