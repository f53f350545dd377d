/* summary.c: the summary at the end of a run (counts, failures, status codes, connections, TLS,
 * DNS, and a latency histogram per phase), as a table, as JSON, and rebuilt from --jsonl lines.
 *
 * The JSON (--summary-json, `asyncget summarize --json`) is one object:
 *
 *   {"requests": 1000, "ok": 990, "failed": 10,
 *    "wall_ns": 2000000000, "requests_per_s": 500.0,
 *    "failures": [{"exitcode": 7, "error": "ECONNREFUSED", "count": 10}],
 *    "status": {"200": 980, "503": 10}, "no_response": 10,
 *    "bytes": {"total": 123456, "body": 100000, "header": 23456, "decoded": 400000},
 *    "connections": {"opened": 60, "reused": 930},
 *    "retries": 0,
 *    "dns": {"cache_hits": 49, "queries": 50},
 *    "tls": {"handshakes": 60, "resumed": 59},
 *    "latency": {"queue": PHASE, "dns": PHASE, "connect": PHASE, "tls": PHASE,
 *                "first_byte": PHASE, "total": PHASE}}
 *
 *   PHASE = {"count": 990, "min_ns": .., "mean_ns": .., "p50_ns": .., "p90_ns": .., "p99_ns": ..,
 *            "p999_ns": .., "max_ns": .., "buckets": [[lo_ns, hi_ns, count], ...]}
 *
 * Failures are grouped by curl's exit code and asyncget's error name ("error" is null when the
 * failure has no error of its own, as --fail's 22, or when it was rebuilt from --jsonl lines
 * that do not carry the name); they come ordered by exit code, then name. Status codes count
 * responses by code; "no_response" the requests that got none. A bucket holds the values v with
 * lo_ns <= v < hi_ns; buckets with no value are left out, in increasing order. Times are integer
 * nanoseconds; the p* values of an empty phase are 0 (count 0, empty buckets). Bytes are as
 * received on the wire; "decoded" is the bodies' size after their content codings were decoded
 * (the body count when nothing was). */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <json.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Distinct kinds of failure seen in a run are a handful (an exit code and an error name each):
 * a fixed table, and a last row for whatever does not fit, so memory never grows. */
#define KINDS    64
#define NAME_LEN 32
#define STATUSES 1000

struct kind {
    int exitcode;
    char name[NAME_LEN]; /* "" when there is none */
    uint64_t n;
};

struct cli_summary {
    uint64_t count, ok, failed;
    uint64_t status[STATUSES]; /* [0]: no response (and codes out of 1..999, which no parser
                                  lets through) */
    uint64_t body_bytes, header_bytes;
    uint64_t decoded_bytes; /* the bodies after their content codings */
    uint64_t opened, reused;
    uint64_t handshakes, resumed;
    uint64_t retries;
    uint64_t dns_hits, dns_queries;
    size_t nkinds;
    struct kind kinds[KINDS];
    uint64_t kinds_other; /* failures past the table */
    cli_hist *ph[CLI_PH_COUNT];
};

static const char *const phase_names[CLI_PH_COUNT] = {"queue", "dns",        "connect",
                                                      "tls",   "first_byte", "total"};
static const char *const phase_labels[CLI_PH_COUNT] = {"queue", "dns",        "connect",
                                                       "tls",   "first byte", "total"};

cli_summary *cli_summary_new(void)
{
    cli_summary *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    for (int i = 0; i < CLI_PH_COUNT; i++) {
        s->ph[i] = cli_hist_new();
        if (!s->ph[i]) {
            cli_summary_free(s);
            return NULL;
        }
    }
    return s;
}

void cli_summary_free(cli_summary *s)
{
    if (!s)
        return;
    for (int i = 0; i < CLI_PH_COUNT; i++)
        cli_hist_free(s->ph[i]);
    free(s);
}

static void add_kind(cli_summary *s, int exitcode, const char *name, uint64_t n)
{
    for (size_t i = 0; i < s->nkinds; i++) {
        if (s->kinds[i].exitcode == exitcode && strcmp(s->kinds[i].name, name) == 0) {
            s->kinds[i].n += n;
            return;
        }
    }
    if (s->nkinds == KINDS) {
        s->kinds_other += n;
        return;
    }
    struct kind *k = &s->kinds[s->nkinds++];
    k->exitcode = exitcode;
    snprintf(k->name, sizeof(k->name), "%s", name);
    k->n = n;
}

static int64_t nonneg(int64_t v)
{
    return v < 0 ? 0 : v;
}

void cli_summary_add(cli_summary *s, const cli_result *r)
{
    s->count++;
    if (r->exitcode == 0) {
        s->ok++;
    } else {
        s->failed++;
        add_kind(s, r->exitcode, r->error ? ag_err_name(r->error) : "", 1);
    }
    s->status[r->http_code > 0 && r->http_code < STATUSES ? r->http_code : 0]++;
    s->body_bytes += r->size_download;
    s->decoded_bytes += r->size_decoded;
    s->header_bytes += r->size_header;
    s->opened += r->num_connects;
    if (r->reused)
        s->reused++;
    bool handshake = r->tls_version && !r->reused;
    if (handshake) {
        s->handshakes++;
        if (r->tls_resumed)
            s->resumed++;
    }
    if (r->attempts > 1)
        s->retries += r->attempts - 1;

    /* Phases, each as its own duration. A phase that did not happen carries the time of the one
     * before it (cli.h), so its duration would read 0: it is left out rather than counted as an
     * instant phase. The final connection was opened by this request when it was not reused and
     * either a response came over it or its connect completed (time_connect moved on from
     * time_namelookup; on a failed connect both are the same instant). */
    cli_hist_add(s->ph[CLI_PH_QUEUE], r->time_queue);
    bool opened = !r->reused && (r->http_code > 0 || r->time_connect > r->time_namelookup);
    if (opened) {
        cli_hist_add(s->ph[CLI_PH_DNS], nonneg(r->time_namelookup - r->time_queue));
        cli_hist_add(s->ph[CLI_PH_CONNECT], nonneg(r->time_connect - r->time_namelookup));
    }
    if (handshake && r->time_appconnect > 0)
        cli_hist_add(s->ph[CLI_PH_TLS], nonneg(r->time_appconnect - r->time_connect));
    /* A response byte is known for sure only when a status line came: without one,
     * time_starttransfer may be the end of sending (cli.h's rule for phases that did not
     * happen), not a byte. */
    if (r->http_code > 0)
        cli_hist_add(s->ph[CLI_PH_FIRST_BYTE], nonneg(r->time_starttransfer - r->time_pretransfer));
    cli_hist_add(s->ph[CLI_PH_TOTAL], r->time_total);
}

void cli_summary_merge(cli_summary *dst, const cli_summary *src)
{
    dst->count += src->count;
    dst->ok += src->ok;
    dst->failed += src->failed;
    for (size_t i = 0; i < STATUSES; i++)
        dst->status[i] += src->status[i];
    dst->body_bytes += src->body_bytes;
    dst->decoded_bytes += src->decoded_bytes;
    dst->header_bytes += src->header_bytes;
    dst->opened += src->opened;
    dst->reused += src->reused;
    dst->handshakes += src->handshakes;
    dst->resumed += src->resumed;
    dst->retries += src->retries;
    dst->dns_hits += src->dns_hits;
    dst->dns_queries += src->dns_queries;
    for (size_t i = 0; i < src->nkinds; i++)
        add_kind(dst, src->kinds[i].exitcode, src->kinds[i].name, src->kinds[i].n);
    dst->kinds_other += src->kinds_other;
    for (int i = 0; i < CLI_PH_COUNT; i++)
        cli_hist_merge(dst->ph[i], src->ph[i]);
}

void cli_summary_dns(cli_summary *s, uint64_t cache_hits, uint64_t queries)
{
    s->dns_hits += cache_hits;
    s->dns_queries += queries;
}

static int kind_cmp(const void *a, const void *b)
{
    const struct kind *x = a, *y = b;
    if (x->exitcode != y->exitcode)
        return x->exitcode < y->exitcode ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* The kinds in print order, in caller's storage (the summary stays const). */
static size_t sorted_kinds(const cli_summary *s, struct kind *out)
{
    memcpy(out, s->kinds, s->nkinds * sizeof(*out));
    qsort(out, s->nkinds, sizeof(*out), kind_cmp);
    return s->nkinds;
}

static double per_s(uint64_t n, int64_t wall_ns)
{
    return wall_ns > 0 ? (double)n * 1e9 / (double)wall_ns : 0.0;
}

static void human_bytes(char *out, size_t len, uint64_t n)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)n;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, len, "%" PRIu64 " B", n);
    else
        snprintf(out, len, "%.1f %s", v, units[u]);
}

static const double quantiles[] = {0.5, 0.9, 0.99, 0.999};

void cli_summary_print(const cli_summary *s, FILE *f, int64_t wall_ns)
{
    char a[32], b[32], c[32];
    fprintf(f, "requests     %" PRIu64 " in %.3f s, %.1f requests/s\n", s->count,
            (double)nonneg(wall_ns) / 1e9, per_s(s->count, wall_ns));
    fprintf(f, "ok           %" PRIu64 "\n", s->ok);
    fprintf(f, "failed       %" PRIu64, s->failed);
    struct kind k[KINDS];
    size_t nk = sorted_kinds(s, k);
    for (size_t i = 0; i < nk; i++)
        fprintf(f, "%s exit %d%s%s: %" PRIu64, i ? "," : ":", k[i].exitcode,
                k[i].name[0] ? " " : "", k[i].name, k[i].n);
    if (s->kinds_other)
        fprintf(f, "%s other: %" PRIu64, nk ? "," : ":", s->kinds_other);
    fputc('\n', f);

    fprintf(f, "status       ");
    bool any = false;
    for (size_t i = 1; i < STATUSES; i++) {
        if (s->status[i]) {
            fprintf(f, "%s%zu: %" PRIu64, any ? ", " : "", i, s->status[i]);
            any = true;
        }
    }
    if (s->status[0])
        fprintf(f, "%sno response: %" PRIu64, any ? ", " : "", s->status[0]);
    else if (!any)
        fputs("-", f);
    fputc('\n', f);

    human_bytes(a, sizeof(a), s->body_bytes + s->header_bytes);
    human_bytes(b, sizeof(b), s->body_bytes);
    human_bytes(c, sizeof(c), s->header_bytes);
    if (s->decoded_bytes != s->body_bytes) {
        char d[32];
        human_bytes(d, sizeof(d), s->decoded_bytes);
        fprintf(f, "bytes        %s received (body %s, %s decoded; headers %s)\n", a, b, d, c);
    } else {
        fprintf(f, "bytes        %s received (body %s, headers %s)\n", a, b, c);
    }
    fprintf(f, "connections  %" PRIu64 " opened, %" PRIu64 " requests over reused ones\n",
            s->opened, s->reused);
    fprintf(f, "retries      %" PRIu64 "\n", s->retries);
    fprintf(f, "DNS          %" PRIu64 " cache hits, %" PRIu64 " queries\n", s->dns_hits,
            s->dns_queries);
    fprintf(f, "TLS          %" PRIu64 " handshakes, %" PRIu64 " resumed\n", s->handshakes,
            s->resumed);

    fprintf(f, "\nlatency (ms)  %9s %10s %10s %10s %10s %10s\n", "count", "p50", "p90", "p99",
            "p99.9", "max");
    for (int i = 0; i < CLI_PH_COUNT; i++) {
        const cli_hist *h = s->ph[i];
        fprintf(f, "%-13s %9" PRIu64, phase_labels[i], cli_hist_count(h));
        if (!cli_hist_count(h)) {
            for (size_t q = 0; q <= sizeof(quantiles) / sizeof(quantiles[0]); q++)
                fprintf(f, " %10s", "-");
        } else {
            for (size_t q = 0; q < sizeof(quantiles) / sizeof(quantiles[0]); q++)
                fprintf(f, " %10.3f", (double)cli_hist_quantile(h, quantiles[q]) / 1e6);
            fprintf(f, " %10.3f", (double)cli_hist_max(h) / 1e6);
        }
        fputc('\n', f);
    }
}

struct bucket_out {
    cli_buf *b;
    bool more;
};

static void bucket_json(void *arg, int64_t lo, int64_t hi, uint64_t n)
{
    struct bucket_out *o = arg;
    cli_buf_printf(o->b, "%s[%" PRId64 ",%" PRId64 ",%" PRIu64 "]", o->more ? "," : "", lo, hi, n);
    o->more = true;
}

void cli_summary_json(const cli_summary *s, cli_buf *b, int64_t wall_ns)
{
    cli_buf_printf(b,
                   "{\"requests\":%" PRIu64 ",\"ok\":%" PRIu64 ",\"failed\":%" PRIu64
                   ",\"wall_ns\":%" PRId64 ",\"requests_per_s\":%.3f,\"failures\":[",
                   s->count, s->ok, s->failed, nonneg(wall_ns), per_s(s->count, wall_ns));
    struct kind k[KINDS];
    size_t nk = sorted_kinds(s, k);
    for (size_t i = 0; i < nk; i++) {
        cli_buf_printf(b, "%s{\"exitcode\":%d,\"error\":", i ? "," : "", k[i].exitcode);
        if (k[i].name[0])
            cli_json_cstr(b, k[i].name);
        else
            cli_buf_puts(b, "null");
        cli_buf_printf(b, ",\"count\":%" PRIu64 "}", k[i].n);
    }
    if (s->kinds_other)
        cli_buf_printf(b, "%s{\"exitcode\":null,\"error\":null,\"count\":%" PRIu64 "}",
                       nk ? "," : "", s->kinds_other);
    cli_buf_puts(b, "],\"status\":{");
    bool any = false;
    for (size_t i = 1; i < STATUSES; i++) {
        if (s->status[i]) {
            cli_buf_printf(b, "%s\"%zu\":%" PRIu64, any ? "," : "", i, s->status[i]);
            any = true;
        }
    }
    cli_buf_printf(b,
                   "},\"no_response\":%" PRIu64 ",\"bytes\":{\"total\":%" PRIu64
                   ",\"body\":%" PRIu64 ",\"header\":%" PRIu64 ",\"decoded\":%" PRIu64
                   "},\"connections\":{\"opened\":%" PRIu64 ",\"reused\":%" PRIu64
                   "},\"retries\":%" PRIu64 ",\"dns\":{\"cache_hits\":%" PRIu64
                   ",\"queries\":%" PRIu64 "},\"tls\":{\"handshakes\":%" PRIu64
                   ",\"resumed\":%" PRIu64 "},\"latency\":{",
                   s->status[0], s->body_bytes + s->header_bytes, s->body_bytes, s->header_bytes,
                   s->decoded_bytes, s->opened, s->reused, s->retries, s->dns_hits, s->dns_queries,
                   s->handshakes, s->resumed);
    for (int i = 0; i < CLI_PH_COUNT; i++) {
        const cli_hist *h = s->ph[i];
        cli_buf_printf(b,
                       "%s\"%s\":{\"count\":%" PRIu64 ",\"min_ns\":%" PRId64
                       ",\"mean_ns\":%.1f,\"p50_ns\":%" PRId64 ",\"p90_ns\":%" PRId64
                       ",\"p99_ns\":%" PRId64 ",\"p999_ns\":%" PRId64 ",\"max_ns\":%" PRId64
                       ",\"buckets\":[",
                       i ? "," : "", phase_names[i], cli_hist_count(h), cli_hist_min(h),
                       cli_hist_mean(h), cli_hist_quantile(h, 0.5), cli_hist_quantile(h, 0.9),
                       cli_hist_quantile(h, 0.99), cli_hist_quantile(h, 0.999), cli_hist_max(h));
        struct bucket_out o = {b, false};
        cli_hist_each(h, bucket_json, &o);
        cli_buf_puts(b, "]}");
    }
    cli_buf_puts(b, "}}");
}

/* ---- asyncget summarize ------------------------------------------------------------------ */

/* Seconds (a JSON number, six decimals) to nanoseconds, to the nearest. The times of a result
 * count from its due time and never go back, and a run does not last a century: a negative
 * time, or one of 2^62 ns (146 years) or more, makes the line no result. So the differences the
 * summary takes between two times cannot overflow. */
static bool get_secs(json_object *o, const char *key, int64_t *out)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) ||
        !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
        return false;
    double d = json_object_get_double(v) * 1e9;
    if (!(d >= 0 && d < 4611686018427387904.0))
        return false;
    *out = (int64_t)(d + 0.5);
    return true;
}

static bool get_int(json_object *o, const char *key, int64_t *out)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
        return false;
    *out = json_object_get_int64(v);
    return true;
}

static const char *get_str(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static bool get_bool(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

/* "2026-11-30T00:07:37.123456Z" (or with a +hh:mm / -hh:mm offset) to ns since 1970. */
static bool parse_rfc3339(const char *s, int64_t *out)
{
    struct tm tm = {0};
    int used = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6)
        return false;
    s += used;
    int64_t frac = 0;
    if (*s == '.') {
        int64_t scale = 100000000;
        for (s++; *s >= '0' && *s <= '9'; s++) {
            frac += (*s - '0') * scale;
            scale /= 10;
        }
    }
    int64_t off = 0;
    if (*s == '+' || *s == '-') {
        int hh, mm;
        if (sscanf(s + 1, "%2d:%2d", &hh, &mm) != 2)
            return false;
        off = (*s == '-' ? -1 : 1) * (int64_t)(hh * 3600 + mm * 60);
    } else if (*s != 'Z' && *s != 'z') {
        return false;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1 && errno == EOVERFLOW)
        return false;
    /* Nanoseconds since 1970 in 64 bits reach from 1678 to 2262: a date outside (a line
     * written by a clock gone wrong, or by hand) is no moment of the run. */
    int64_t secs = (int64_t)t - off;
    if (secs <= INT64_MIN / 1000000000 || secs >= INT64_MAX / 1000000000)
        return false;
    *out = secs * 1000000000 + frac;
    return true;
}

static int find_err(const char *name);

/* ag_err_name backwards: asyncget's own codes, then errno values. "" and unknown names: 0. */
static int err_of_name(const char *name)
{
    /* Failures come in runs of the same kind: the last answer saves the search. */
    static __thread char last_name[NAME_LEN];
    static __thread int last_err;
    if (!name || !*name)
        return 0;
    if (last_err && strcmp(name, last_name) == 0)
        return last_err;
    int e = find_err(name);
    if (e) {
        snprintf(last_name, sizeof(last_name), "%s", name);
        last_err = e;
    }
    return e;
}

static int find_err(const char *name)
{
#define AG__ERR_MATCH(n, value, text)                                                              \
    if (strcmp(name, "AG_E" #n) == 0)                                                              \
        return value;
    AG_ERRORS(AG__ERR_MATCH)
#undef AG__ERR_MATCH
    for (int e = 1; e < 4096; e++)
        if (strcmp(ag_err_name(-e), name) == 0)
            return -e;
    return 0;
}

/* One --jsonl line into r (strings point into o). False when it is not one. */
static bool result_of_json(json_object *o, cli_result *r, const char **start)
{
    int64_t v;
    memset(r, 0, sizeof(*r));
    if (!json_object_is_type(o, json_type_object))
        return false;
    if (!get_int(o, "urlnum", &v))
        return false;
    r->urlnum = (uint64_t)v;
    if (!get_int(o, "http_code", &v))
        return false;
    r->http_code = (int)v;
    if (!get_int(o, "exitcode", &v))
        return false;
    r->exitcode = (int)v;
    if (!get_secs(o, "time_queue", &r->time_queue) ||
        !get_secs(o, "time_namelookup", &r->time_namelookup) ||
        !get_secs(o, "time_connect", &r->time_connect) ||
        !get_secs(o, "time_appconnect", &r->time_appconnect) ||
        !get_secs(o, "time_pretransfer", &r->time_pretransfer) ||
        !get_secs(o, "time_starttransfer", &r->time_starttransfer) ||
        !get_secs(o, "time_total", &r->time_total))
        return false;
    /* The rest are read when present: a line from an older or newer writer still counts. */
    if (get_int(o, "size_download", &v))
        r->size_download = (uint64_t)v;
    /* A line without size_decoded (an older writer) decoded nothing. */
    r->size_decoded = get_int(o, "size_decoded", &v) ? (uint64_t)v : r->size_download;
    if (get_int(o, "size_header", &v))
        r->size_header = (uint64_t)v;
    if (get_int(o, "num_connects", &v))
        r->num_connects = (unsigned)v;
    if (get_int(o, "num_redirects", &v))
        r->num_redirects = (unsigned)v;
    if (get_int(o, "conn_id", &v))
        r->conn_id = (uint64_t)v;
    if (get_int(o, "remote_port", &v))
        r->remote_port = (int)v;
    r->attempts = get_int(o, "attempts", &v) && v > 0 ? (unsigned)v : 1;
    r->url = get_str(o, "url");
    r->url_effective = get_str(o, "url_effective");
    r->method = get_str(o, "method");
    r->remote_ip = get_str(o, "remote_ip");
    if (!r->remote_ip)
        r->remote_ip = "";
    r->errormsg = get_str(o, "errormsg");
    r->tls_version = get_str(o, "tls_version");
    r->reused = get_bool(o, "reused");
    r->tls_resumed = get_bool(o, "tls_resumed");
    r->error = err_of_name(get_str(o, "error"));
    *start = get_str(o, "start");
    return true;
}

int cli_summarize_main(int argc, char **argv)
{
    bool json = false;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs("Usage: asyncget summarize [--json] FILE\n"
                  "The summary of a run again, from its --jsonl lines (FILE '-': stdin).\n",
                  stdout);
            return 0;
        } else if (!path && (argv[i][0] != '-' || strcmp(argv[i], "-") == 0)) {
            path = argv[i];
        } else {
            fprintf(stderr, "asyncget summarize: unexpected argument '%s'\n", argv[i]);
            path = NULL;
            argc = -1;
            break;
        }
    }
    if (!path) {
        if (argc >= 0)
            fputs("asyncget summarize: which file? (usage: asyncget summarize [--json] FILE)\n",
                  stderr);
        return 2;
    }
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f) {
        fprintf(stderr, "asyncget summarize: %s: %s\n", path, strerror(errno));
        return 26;
    }
    cli_summary *s = cli_summary_new();
    if (!s) {
        if (f != stdin)
            fclose(f);
        fputs("asyncget summarize: out of memory\n", stderr);
        return 27;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t lineno = 0, bad = 0, first_bad = 0;
    int64_t first = INT64_MAX, last = INT64_MIN;
    json_tokener *tok = json_tokener_new();
    while (tok && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (n == 0)
            continue;
        json_tokener_reset(tok);
        json_object *o = json_tokener_parse_ex(tok, line, (int)(n < INT32_MAX ? n : INT32_MAX));
        /* A line must be one whole JSON value: trailing bytes make it bad too. */
        bool whole = o && json_tokener_get_error(tok) == json_tokener_success &&
                     line[json_tokener_get_parse_end(tok) +
                          strspn(line + json_tokener_get_parse_end(tok), " \t")] == 0;
        cli_result r;
        const char *start = NULL;
        if (!whole || !result_of_json(o, &r, &start)) {
            if (!bad++)
                first_bad = lineno;
            json_object_put(o);
            continue;
        }
        cli_summary_add(s, &r);
        int64_t t;
        /* An end past what 64 bits hold (a time_total of centuries) is no moment either. */
        if (parse_rfc3339(start, &t) && ((r.time_total >= 0 && t <= INT64_MAX - r.time_total) ||
                                         (r.time_total < 0 && t >= INT64_MIN - r.time_total))) {
            if (t < first)
                first = t;
            if (t + r.time_total > last)
                last = t + r.time_total;
        }
        json_object_put(o);
    }
    int code = 0;
    if (!tok || ferror(f)) {
        fprintf(stderr, "asyncget summarize: %s: %s\n", path, tok ? "read error" : "out of memory");
        code = tok ? 26 : 27;
    }
    free(line);
    json_tokener_free(tok);
    if (f != stdin)
        fclose(f);
    if (bad)
        fprintf(stderr,
                "asyncget summarize: %" PRIu64 " of %" PRIu64
                " lines are not --jsonl results (the first: line %" PRIu64 "), left out\n",
                bad, lineno, first_bad);
    int64_t wall = first <= last ? last - first : 0;
    if (json) {
        cli_buf b = {0};
        cli_summary_json(s, &b, wall);
        cli_buf_putc(&b, '\n');
        if (b.oom || fwrite(b.p, 1, b.len, stdout) != b.len)
            code = code ? code : 23;
        cli_buf_free(&b);
    } else {
        cli_summary_print(s, stdout, wall);
    }
    if (fflush(stdout) != 0 && !code)
        code = 23;
    cli_summary_free(s);
    return code;
}
