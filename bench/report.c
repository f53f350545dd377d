/* report.c: what the bench prints: latency percentiles, the comparison table with a bar per
 * mode, and the CSV and JSON-lines forms whose columns and keys are a contract. */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

#define BAR_WIDTH 50

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double report_percentile(double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    /* Nearest rank: the smallest value with at least p% of the values at or below it. */
    double exact = p / 100.0 * (double)n;
    size_t rank = (size_t)exact;
    if ((double)rank < exact)
        rank++;
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

void report_finish(mode_result *r, double *lat_ms, size_t n)
{
    r->rps = r->wall_s > 0 ? (double)r->requests / r->wall_s : 0;
    r->p50_ms = report_percentile(lat_ms, n, 50);
    r->p99_ms = report_percentile(lat_ms, n, 99);
}

/* Sizes in KiB as a short human form. */
static void fmt_kb(char *buf, size_t len, long kb)
{
    if (kb >= 1024 * 1024)
        snprintf(buf, len, "%.2f GB", (double)kb / (1024.0 * 1024.0));
    else if (kb >= 1024)
        snprintf(buf, len, "%.1f MB", (double)kb / 1024.0);
    else
        snprintf(buf, len, "%ld kB", kb);
}

/* Seconds with three significant digits or so. */
static void fmt_s(char *buf, size_t len, double s)
{
    if (s >= 100)
        snprintf(buf, len, "%.0f", s);
    else if (s >= 10)
        snprintf(buf, len, "%.1f", s);
    else if (s >= 1)
        snprintf(buf, len, "%.2f", s);
    else
        snprintf(buf, len, "%.3f", s);
}

static const mode_result *find_seq(const mode_result *rs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rs[i].mode, "seq") == 0 && !rs[i].failed && rs[i].wall_s > 0)
            return &rs[i];
    return NULL;
}

void report_table(FILE *f, const mode_result *rs, size_t n)
{
    const mode_result *seq = find_seq(rs, n);
    fprintf(f, "%-7s %8s %8s %6s %9s %9s %10s %9s %9s %7s %10s\n", "mode", "requests", "ok", "conc",
            "wall s", "speed-up", "req/s", "p50 ms", "p99 ms", "CPU s", "peak RSS");
    for (size_t i = 0; i < n; i++) {
        const mode_result *r = &rs[i];
        if (r->failed) {
            fprintf(f, "%-7s %8ld   failed to run\n", r->mode, r->requests);
            continue;
        }
        char wall[24], speed[24], rss[24], cpu[24];
        fmt_s(wall, sizeof wall, r->wall_s);
        fmt_s(cpu, sizeof cpu, r->cpu_s);
        fmt_kb(rss, sizeof rss, r->peak_rss_kb);
        if (seq && r->wall_s > 0)
            snprintf(speed, sizeof speed, "%.1fx", seq->wall_s / r->wall_s);
        else
            snprintf(speed, sizeof speed, "-");
        fprintf(f, "%-7s %8ld %8ld %6d %9s %9s %10.0f %9.2f %9.2f %7s %10s\n", r->mode, r->requests,
                r->ok, r->concurrency, wall, speed, r->rps, r->p50_ms, r->p99_ms, cpu, rss);
    }
}

void report_bars(FILE *f, const mode_result *rs, size_t n)
{
    double max = 0;
    for (size_t i = 0; i < n; i++)
        if (!rs[i].failed && rs[i].wall_s > max)
            max = rs[i].wall_s;
    if (max <= 0)
        return;
    fprintf(f, "wall time (one # = %.3g s)\n", max / BAR_WIDTH);
    for (size_t i = 0; i < n; i++) {
        const mode_result *r = &rs[i];
        if (r->failed)
            continue;
        int w = (int)(r->wall_s / max * BAR_WIDTH + 0.5);
        if (w < 1)
            w = 1;
        char bar[BAR_WIDTH + 1];
        memset(bar, '#', (size_t)w);
        bar[w] = '\0';
        char wall[16];
        fmt_s(wall, sizeof wall, r->wall_s);
        fprintf(f, "  %-7s %-*s %s s\n", r->mode, BAR_WIDTH, bar, wall);
    }
}

void report_csv_header(FILE *f, bool tls)
{
    fprintf(f,
            "mode,requests,ok,concurrency,delay_ms,wall_s,rps,p50_ms,p99_ms,cpu_s,peak_rss_kb%s\n",
            tls ? ",tls_version,tls_handshakes,tls_resumed" : "");
}

void report_csv(FILE *f, const mode_result *r, bool tls)
{
    fprintf(f, "%s,%ld,%ld,%d,%d,%.6f,%.2f,%.3f,%.3f,%.3f,%ld", r->mode, r->requests, r->ok,
            r->concurrency, r->delay_ms, r->wall_s, r->rps, r->p50_ms, r->p99_ms, r->cpu_s,
            r->peak_rss_kb);
    if (tls)
        fprintf(f, ",%s,%ld,%ld", r->tls_version, r->tls_handshakes, r->tls_resumed);
    fprintf(f, "\n");
}

void report_json(FILE *f, const mode_result *r, bool tls)
{
    fprintf(f,
            "{\"mode\": \"%s\", \"requests\": %ld, \"ok\": %ld, \"concurrency\": %d, "
            "\"delay_ms\": %d, \"wall_s\": %.6f, \"rps\": %.2f, \"p50_ms\": %.3f, "
            "\"p99_ms\": %.3f, \"cpu_s\": %.3f, \"peak_rss_kb\": %ld",
            r->mode, r->requests, r->ok, r->concurrency, r->delay_ms, r->wall_s, r->rps, r->p50_ms,
            r->p99_ms, r->cpu_s, r->peak_rss_kb);
    if (tls)
        fprintf(f,
                ", \"tls_version\": \"%s\", \"tls_cipher\": \"%s\", \"tls_handshakes\": %ld, "
                "\"tls_resumed\": %ld",
                r->tls_version, r->tls_cipher, r->tls_handshakes, r->tls_resumed);
    fprintf(f, "}\n");
}

void report_tls(FILE *f, const mode_result *rs, size_t n)
{
    const char *version = "", *cipher = "";
    for (size_t i = 0; i < n && !version[0]; i++) {
        version = rs[i].tls_version;
        cipher = rs[i].tls_cipher;
    }
    fprintf(f, "TLS: %s%s%s; handshakes (resumed):", version[0] ? version : "none seen",
            cipher[0] ? " " : "", cipher);
    for (size_t i = 0; i < n; i++)
        if (!rs[i].failed)
            fprintf(f, " %s %ld (%ld)%s", rs[i].mode, rs[i].tls_handshakes, rs[i].tls_resumed,
                    i + 1 < n ? "," : "");
    fprintf(f, "\n");
}
