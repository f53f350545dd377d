/* bench.c: asyncget-bench's entry: options, the server it starts, the modes it runs and the
 * summary lines around the table; --serve runs only the server, --sweep runs several sizes. */
#include "asyncget.h"
#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SKIP_ABOVE_S 60.0 /* modes estimated to take longer are skipped unless named */

typedef struct opts {
    bool serve;
    int port;
    int port_fd;
    bool pin;
    long requests;
    int concurrency; /* 0: all requests */
    int workers;     /* 0: CPUs */
    int threads;
    int delay_ms;
    const char *url;
    const char *modes;
    bool modes_given;
    bool csv, json, sweep;
    const char *out;
    const char *dns_server;
    bool close;
    bool tls;            /* the bench server speaks https */
    int tls_version;     /* 12 or 13: both sides pinned; 0: TLS 1.2 or later */
    bool no_resume;      /* the client neither resumes nor remembers TLS sessions */
    const char *ca_file; /* certificates the client trusts (the bench server's own with --tls) */
    long hold;           /* > 0: the idle-pool memory measurement with this many connections */
    long soak;           /* > 0: this many requests through one client, memory sampled */
} opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: asyncget-bench [options]\n"
            "  Makes the same N requests through asyncget in four ways and compares them:\n"
            "  seq (one blocking connection), fork (worker processes), thread (worker threads),\n"
            "  async (coroutines on one reactor), against a loopback server it starts itself.\n"
            "\n"
            "  --requests N      requests per mode (100)\n"
            "  --modes LIST      comma-separated among seq,fork,thread,async (all)\n"
            "  --delay MS        the server answers /uuid after MS milliseconds (50)\n"
            "  --concurrency C   async: requests in flight (all of them)\n"
            "  --workers P       fork: processes (CPUs)\n"
            "  --threads T       thread: threads (10)\n"
            "  --url URL         fetch URL from another server instead of starting one\n"
            "  --dns-server A:P  resolve the URL's host name with this DNS server\n"
            "  --close           send \"Connection: close\": a new connection per request\n"
            "  --tls             https: the server makes a certificate at start and the client\n"
            "                    verifies against it (TLS 1.3, session tickets on)\n"
            "  --tls-version V   1.2 or 1.3: pin both sides to that version\n"
            "  --no-resume       the client does not resume TLS sessions (with --close: a full\n"
            "                    handshake per request)\n"
            "  --ca-file FILE    trust FILE's certificates (for an https --url)\n"
            "  --hold N          open N connections to --url at once, leave them idle in the\n"
            "                    pool, reuse them all once, and report the process's memory\n"
            "  --soak N          make N keep-alive requests through one client (--concurrency\n"
            "                    in flight, 8 by default) and print RSS, live heap and open fds\n"
            "                    at every 10%%; exits 1 if any grew after the first 10%%\n"
            "  --csv, --json     machine-readable rows on stdout (notes go to stderr)\n"
            "  --sweep           N = 10, 100, 1000, 10000 (concurrency alike), JSON lines to\n"
            "                    --out FILE (sweep.jsonl); bench/plot draws them\n"
            "  --serve PORT      only run the server on 127.0.0.1:PORT (0: any port)\n"
            "  --no-pin          do not pin the server and the client to CPUs\n");
}

static long parse_long(const char *s, const char *what, long min)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < min) {
        fprintf(stderr, "asyncget-bench: bad %s: %s\n", what, s);
        exit(2);
    }
    return v;
}

static void parse_opts(int argc, char **argv, opts *o)
{
    enum {
        O_REQ = 256,
        O_MODES,
        O_DELAY,
        O_CONC,
        O_WORK,
        O_THR,
        O_URL,
        O_CSV,
        O_JSON,
        O_SWEEP,
        O_OUT,
        O_SERVE,
        O_DNS,
        O_CLOSE,
        O_PORTFD,
        O_NOPIN,
        O_TLS,
        O_TLSVER,
        O_NORESUME,
        O_CAFILE,
        O_HOLD,
        O_SOAK,
        O_HELP
    };
    static const struct option lo[] = {
        {"requests", required_argument, 0, O_REQ},
        {"modes", required_argument, 0, O_MODES},
        {"delay", required_argument, 0, O_DELAY},
        {"concurrency", required_argument, 0, O_CONC},
        {"workers", required_argument, 0, O_WORK},
        {"threads", required_argument, 0, O_THR},
        {"url", required_argument, 0, O_URL},
        {"csv", no_argument, 0, O_CSV},
        {"json", no_argument, 0, O_JSON},
        {"sweep", no_argument, 0, O_SWEEP},
        {"out", required_argument, 0, O_OUT},
        {"serve", required_argument, 0, O_SERVE},
        {"dns-server", required_argument, 0, O_DNS},
        {"close", no_argument, 0, O_CLOSE},
        {"port-fd", required_argument, 0, O_PORTFD},
        {"no-pin", no_argument, 0, O_NOPIN},
        {"tls", no_argument, 0, O_TLS},
        {"tls-version", required_argument, 0, O_TLSVER},
        {"no-resume", no_argument, 0, O_NORESUME},
        {"ca-file", required_argument, 0, O_CAFILE},
        {"hold", required_argument, 0, O_HOLD},
        {"soak", required_argument, 0, O_SOAK},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    *o = (opts){.port_fd = -1,
                .pin = true,
                .requests = 100,
                .threads = 10,
                .delay_ms = 50,
                .modes = "seq,fork,thread,async",
                .out = "sweep.jsonl"};
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case O_REQ:
            o->requests = parse_long(optarg, "--requests", 1);
            break;
        case O_MODES:
            o->modes = optarg;
            o->modes_given = true;
            break;
        case O_DELAY:
            o->delay_ms = (int)parse_long(optarg, "--delay", 0);
            break;
        case O_CONC:
            o->concurrency = (int)parse_long(optarg, "--concurrency", 1);
            break;
        case O_WORK:
            o->workers = (int)parse_long(optarg, "--workers", 1);
            break;
        case O_THR:
            o->threads = (int)parse_long(optarg, "--threads", 1);
            break;
        case O_URL:
            o->url = optarg;
            break;
        case O_CSV:
            o->csv = true;
            break;
        case O_JSON:
            o->json = true;
            break;
        case O_SWEEP:
            o->sweep = true;
            break;
        case O_OUT:
            o->out = optarg;
            break;
        case O_SERVE:
            o->serve = true;
            o->port = (int)parse_long(optarg, "--serve", 0);
            break;
        case O_PORTFD:
            o->port_fd = (int)parse_long(optarg, "--port-fd", 0);
            break;
        case O_NOPIN:
            o->pin = false;
            break;
        case O_DNS:
            o->dns_server = optarg;
            break;
        case O_CLOSE:
            o->close = true;
            break;
        case O_TLS:
            o->tls = true;
            break;
        case O_TLSVER:
            if (strcmp(optarg, "1.2") == 0)
                o->tls_version = 12;
            else if (strcmp(optarg, "1.3") == 0)
                o->tls_version = 13;
            else {
                fprintf(stderr, "asyncget-bench: --tls-version: 1.2 or 1.3, not %s\n", optarg);
                exit(2);
            }
            break;
        case O_NORESUME:
            o->no_resume = true;
            break;
        case O_CAFILE:
            o->ca_file = optarg;
            break;
        case O_HOLD:
            o->hold = parse_long(optarg, "--hold", 1);
            break;
        case O_SOAK:
            o->soak = parse_long(optarg, "--soak", 1);
            break;
        case O_HELP:
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind < argc) {
        usage(stderr);
        exit(2);
    }
}

/* The modes named in list, in the order given; unknown names end the program. */
static size_t split_modes(const char *list, const char *out[4])
{
    size_t n = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (!mode_known(tok)) {
            fprintf(stderr, "asyncget-bench: unknown mode '%s' (seq, fork, thread, async)\n", tok);
            exit(2);
        }
        for (size_t i = 0; i < 4; i++)
            if (strcmp(tok, mode_names[i]) == 0 && n < 4)
                out[n++] = mode_names[i];
    }
    return n;
}

/* The server's CPU seconds from its /stats, fetched from the URL's origin; -1 if unavailable. */
static double server_cpu_s(const char *url, const ag_tls_opts *tls)
{
    char stats[512];
    const char *host = strstr(url, "://");
    const char *slash = host ? strchr(host + 3, '/') : NULL;
    size_t origin = slash ? (size_t)(slash - url) : strlen(url);
    if (origin + 7 >= sizeof stats)
        return -1;
    snprintf(stats, sizeof stats, "%.*s/stats", (int)origin, url);
    ag_client *cl;
    ag_client_opts co;
    ag_client_opts_init(&co);
    co.tls = tls;
    if (ag_client_new(&cl, &co) < 0)
        return -1;
    ag_request rq;
    ag_request_init(&rq);
    rq.url = stats;
    rq.headers = (const ag_header[]){{"Connection", "close"}};
    rq.nheaders = 1;
    ag_response *resp = NULL;
    double cpu = -1;
    if (ag_fetch(cl, &rq, &resp) == 0 && ag_response_status(resp) == 200) {
        const char *b = ag_response_body(resp, NULL);
        const char *k = b ? strstr(b, "\"cpu_s\":") : NULL;
        if (k)
            cpu = strtod(k + 8, NULL);
    }
    ag_response_free(resp);
    ag_client_free(cl);
    return cpu;
}

/* Say why a mode had failures: the count and the first error in words. */
static void note_failures(const mode_result *r)
{
    if (r->failed) {
        fprintf(stderr, "%s: did not complete%s%s\n", r->mode,
                r->first_error ? ", killed by signal " : "",
                r->first_error ? strsignal(r->first_error) : "");
        return;
    }
    if (r->ok == r->requests)
        return;
    if (r->first_error > 0)
        fprintf(stderr, "%s: %ld of %ld requests failed (first: HTTP status %d)\n", r->mode,
                r->requests - r->ok, r->requests, r->first_error);
    else
        fprintf(stderr, "%s: %ld of %ld requests failed (first: %s, %s)\n", r->mode,
                r->requests - r->ok, r->requests, ag_err_name(r->first_error),
                ag_strerror(r->first_error));
}

/* Run the chosen modes for one N; print the table (or rows) and the notes; append JSON lines to
 * jsonl when given. */
static void run_batch(const opts *o, const run_cfg *cfg, bool skip_long, FILE *jsonl)
{
    const char *modes[4];
    size_t nm = split_modes(o->modes, modes);
    mode_result rs[4];
    size_t nr = 0;
    FILE *notes = (o->csv || o->json) ? stderr : stdout;
    double srv_cpu = -1;
    long baseline = 0;
    for (size_t i = 0; i < nm; i++) {
        double est = mode_estimate_s(modes[i], cfg);
        if (skip_long && est > SKIP_ABOVE_S) {
            fprintf(notes,
                    "skipping %s: about %.0f s at %d ms per request (> %.0f s); name it in "
                    "--modes to run it anyway\n",
                    modes[i], est, cfg->delay_ms, SKIP_ABOVE_S);
            continue;
        }
        bool async = strcmp(modes[i], "async") == 0;
        double before = -1;
        if (async) {
            if (mode_concurrency("async", cfg) >= 100)
                baseline = mode_baseline_rss_kb(cfg);
            before = server_cpu_s(cfg->url, cfg->tls);
        }
        mode_result *r = &rs[nr++];
        mode_run(modes[i], cfg, r);
        if (async && before >= 0) {
            double after = server_cpu_s(cfg->url, cfg->tls);
            if (after >= 0)
                srv_cpu = after - before;
        }
        note_failures(r);
    }
    bool tls = cfg->tls != NULL;
    if (o->json)
        for (size_t i = 0; i < nr; i++)
            report_json(stdout, &rs[i], tls);
    else if (o->csv) {
        report_csv_header(stdout, tls);
        for (size_t i = 0; i < nr; i++)
            report_csv(stdout, &rs[i], tls);
    } else {
        report_table(stdout, rs, nr);
        report_bars(stdout, rs, nr);
        if (tls)
            report_tls(stdout, rs, nr);
    }
    for (size_t i = 0; jsonl && i < nr; i++)
        report_json(jsonl, &rs[i], tls);
    for (size_t i = 0; i < nr; i++) {
        const mode_result *r = &rs[i];
        if (strcmp(r->mode, "async") != 0 || r->failed)
            continue;
        if (srv_cpu < 0)
            fprintf(notes, "server CPU during async: not available (no /stats at the URL's "
                           "origin)\n");
        else
            fprintf(notes,
                    "server CPU during async: %.3f s in %.3f s of wall time (%.0f%% of its "
                    "core)\n",
                    srv_cpu, r->wall_s, r->wall_s > 0 ? 100.0 * srv_cpu / r->wall_s : 0.0);
        if (r->concurrency < 100)
            fprintf(notes, "memory per in-flight request: not measured below 100 in flight "
                           "(page-granular RSS is noise there)\n");
        else if (baseline > 0)
            fprintf(notes,
                    "memory per in-flight request: %.1f kB ((async peak RSS %ld kB - %ld kB "
                    "with one in flight) / %d more in flight)\n",
                    (double)(r->peak_rss_kb - baseline) / (r->concurrency - 1), r->peak_rss_kb,
                    baseline, r->concurrency - 1);
    }
    fflush(NULL);
}

int main(int argc, char **argv)
{
    opts o;
    parse_opts(argc, argv, &o);
    if (o.serve) {
        server_opts so = {.port = o.port,
                          .port_fd = o.port_fd,
                          .delay_ms = o.delay_ms,
                          .pin = o.pin,
                          .tls = o.tls,
                          .tls_version = o.tls_version};
        return server_main(&so);
    }
    const char *modes[4];
    split_modes(o.modes, modes); /* reject bad names before starting anything */
    signal(SIGPIPE, SIG_IGN);
    long nofile = sys_raise_nofile();
    int ncpu = sys_ncpus();

    pid_t server = -1;
    char url[256];
    char ca[512] = "";
    if (o.url) {
        snprintf(url, sizeof url, "%s", o.url);
    } else {
        int port = 0;
        int tls = o.tls ? (o.tls_version ? o.tls_version : 1) : 0;
        /* Started before the client pins itself, so that the server may pick the last CPU. */
        server = sys_spawn_server(o.delay_ms, o.pin, tls, &port, ca, sizeof ca);
        if (server < 0) {
            fprintf(stderr, "asyncget-bench: the server did not start\n");
            return 1;
        }
        /* A soak measures the client, not the server's delay. */
        snprintf(url, sizeof url, "%s://127.0.0.1:%d/uuid%s", o.tls ? "https" : "http", port,
                 o.soak ? "?delay=0" : "");
    }
    /* TLS settings only when asked for, so that a plain run is the same as before TLS existed.
     * Verification stays on: the client trusts the server's certificate through the CA file. */
    ag_tls_opts tls;
    ag_tls_opts_init(&tls);
    bool use_tls = o.tls || o.tls_version || o.no_resume || o.ca_file;
    tls.ca_file = o.ca_file ? o.ca_file : (ca[0] ? ca : NULL);
    tls.min_version = tls.max_version = o.tls_version;
    tls.no_session_reuse = o.no_resume;
    char tls_note[700];
    snprintf(tls_note, sizeof tls_note, "TLS %s, verified against %s, sessions %s",
             o.tls_version == 12   ? "1.2 pinned"
             : o.tls_version == 13 ? "1.3 pinned"
                                   : "1.2 or later",
             tls.ca_file ? tls.ca_file : "the system's CAs",
             o.no_resume ? "not resumed" : "resumed");
    char pin[64] = "not pinned";
    if (o.pin)
        sys_pin(false, pin, sizeof pin);
    FILE *notes = (o.csv || o.json) ? stderr : stdout;
    fprintf(notes,
            "asyncget-bench %s: GET %s, server delay %d ms; client on %s, server %s; "
            "%d CPUs; fd limit %ld; %s backend%s%s\n",
            AG_VERSION, url, o.delay_ms, pin,
            o.url ? "external" : (o.pin && ncpu > 1 ? "on the last CPU" : "not pinned"), ncpu,
            nofile, ag_loop_backend(), use_tls ? "; " : "", use_tls ? tls_note : "");

    run_cfg cfg = {.url = url,
                   .requests = o.requests,
                   .workers = o.workers ? o.workers : ncpu,
                   .threads = o.threads,
                   .delay_ms = o.delay_ms,
                   .dns_server = o.dns_server,
                   .close = o.close,
                   .tls = use_tls ? &tls : NULL};
    if (o.soak) {
        cfg.requests = o.soak;
        cfg.concurrency = o.concurrency ? o.concurrency : 8;
        int rc = soak_run(&cfg, o.json);
        sys_stop_server(server);
        return rc;
    }
    if (o.hold) {
        int rc = hold_run(&cfg, o.hold, o.json);
        sys_stop_server(server);
        return rc;
    }
    int rc = 0;
    if (o.sweep) {
        FILE *jsonl = fopen(o.out, "w");
        if (!jsonl) {
            fprintf(stderr, "asyncget-bench: cannot write %s: %s\n", o.out, strerror(errno));
            rc = 1;
        } else {
            static const long sizes[] = {10, 100, 1000, 10000};
            for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
                cfg.requests = sizes[i];
                cfg.concurrency = (int)sizes[i];
                fprintf(notes, "\n== N = %ld, async concurrency %ld ==\n", sizes[i], sizes[i]);
                run_batch(&o, &cfg, true, jsonl);
            }
            fclose(jsonl);
            fprintf(notes, "\nwrote %s; draw it with: bench/plot %s sweep.png\n", o.out, o.out);
        }
    } else {
        cfg.concurrency =
            o.concurrency ? o.concurrency : (int)(o.requests < 1000000 ? o.requests : 1000000);
        run_batch(&o, &cfg, !o.modes_given, NULL);
    }
    sys_stop_server(server);
    return rc;
}
