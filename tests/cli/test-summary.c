/* test-summary.c: the run's summary from results: counts, failures by kind, status codes, bytes,
 * connections, TLS, DNS, per-phase latencies (each phase its own duration), merging, the table,
 * the JSON, and `asyncget summarize` agreeing with the live summary from the --jsonl lines. */
#include "cli.h"
#include "../tap.h"

#include <errno.h>
#include <fcntl.h>
#include <json.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define US 1000LL
#define MS 1000000LL

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

/* A successful request over a new connection, with these phase durations (ns). */
static cli_result fresh(int64_t queue, int64_t dns, int64_t con, int64_t tls, int64_t send,
                        int64_t wait, int64_t recv)
{
    cli_result r = {0};
    r.url = r.url_effective = "https://example.test/";
    r.method = "GET";
    r.http_code = 200;
    r.size_download = 1000;
    r.size_decoded = 1000;
    r.size_header = 100;
    r.time_queue = queue;
    r.time_namelookup = queue + dns;
    r.time_connect = r.time_namelookup + con;
    r.time_appconnect = tls ? r.time_connect + tls : 0;
    r.time_pretransfer = r.time_connect + tls;
    r.time_starttransfer = r.time_pretransfer + send + wait;
    r.time_total = r.time_starttransfer + recv;
    r.num_connects = 1;
    r.conn_id = 1;
    r.remote_ip = "127.0.0.1";
    r.remote_port = 443;
    r.tls_version = tls ? "TLSv1.3" : NULL;
    r.attempts = 1;
    r.start_wall_ns = 1764460800000000000LL; /* 2025-11-30T00:00:00Z */
    return r;
}

/* Over a reused connection: no DNS, connect or TLS; the earlier phases take the queue's end. */
static cli_result reused(int64_t queue, int64_t wait, int64_t recv)
{
    cli_result r = fresh(queue, 0, 0, 0, 0, wait, recv);
    r.reused = true;
    r.num_connects = 0;
    r.tls_version = "TLSv1.3"; /* a TLS connection, but no handshake for this request */
    return r;
}

/* A connect that failed (exit 7): nothing after the name lookup happened. */
static cli_result refused(int64_t queue, int64_t dns)
{
    cli_result r = fresh(queue, dns, 0, 0, 0, 0, 0);
    r.http_code = 0;
    r.size_download = r.size_decoded = r.size_header = 0;
    r.num_connects = 0;
    r.conn_id = 0;
    r.tls_version = NULL;
    r.exitcode = 7;
    r.error = -ECONNREFUSED;
    r.errormsg = "connect: refused";
    return r;
}

static json_object *summary_json(const cli_summary *s, int64_t wall)
{
    cli_buf b = {0};
    cli_summary_json(s, &b, wall);
    json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, b.p, (int)b.len);
    if (!o || json_tokener_get_parse_end(tok) != b.len) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    cli_buf_free(&b);
    return o;
}

/* A member by a path of keys, "a.b.c". */
static json_object *at(json_object *o, const char *path)
{
    char key[64];
    while (o && *path) {
        size_t n = strcspn(path, ".");
        snprintf(key, sizeof(key), "%.*s", (int)n, path);
        if (!json_object_object_get_ex(o, key, &o))
            return NULL;
        path += n + (path[n] == '.');
    }
    return o;
}

static int64_t num(json_object *o, const char *path)
{
    json_object *v = at(o, path);
    return v ? json_object_get_int64(v) : -999;
}

static int near(int64_t got, int64_t want, double rel, int64_t abs)
{
    int64_t d = got > want ? got - want : want - got;
    return (double)d <= rel * (double)(want > 0 ? want : -want) + (double)abs;
}

static void summary_counts(void)
{
    cli_summary *s = cli_summary_new();
    cli_result r;
    r = fresh(0, 1 * MS, 1 * MS, 2 * MS, 0, 5 * MS, 1 * MS); /* a full handshake */
    cli_summary_add(s, &r);
    r = fresh(0, 1 * MS, 1 * MS, 1 * MS, 0, 5 * MS, 1 * MS); /* a resumed one, retried twice */
    r.tls_resumed = true;
    r.attempts = 3;
    cli_summary_add(s, &r);
    r = reused(0, 5 * MS, 1 * MS);
    cli_summary_add(s, &r);
    r = reused(0, 5 * MS, 1 * MS);
    r.http_code = 404;
    r.exitcode = 22; /* --fail: a failure with no error of asyncget's */
    cli_summary_add(s, &r);
    r = refused(0, 1 * MS);
    cli_summary_add(s, &r);
    r = refused(0, 1 * MS);
    cli_summary_add(s, &r);
    r = refused(0, 1 * MS);
    r.exitcode = 28;
    r.error = AG_ECONNECT_TIMEOUT;
    cli_summary_add(s, &r);
    r = fresh(0, 1 * MS, 1 * MS, 0, 0, 5 * MS, 1 * MS); /* plain http over two connections */
    r.num_connects = 2;
    r.http_code = 301;
    r.size_download = r.size_decoded = 0;
    cli_summary_add(s, &r);
    cli_summary_dns(s, 3, 5);
    cli_summary_dns(s, 1, 2);

    json_object *o = summary_json(s, 2000 * MS);
    json_object *f = at(o, "failures");
    int kinds = f && json_object_array_length(f) == 3;
    /* Ordered by exit code, then name: 7 ECONNREFUSED x2, 22 (none) x1, 28 timeout x1. */
    if (kinds) {
        json_object *k0 = json_object_array_get_idx(f, 0), *k1 = json_object_array_get_idx(f, 1),
                    *k2 = json_object_array_get_idx(f, 2);
        kinds = num(k0, "exitcode") == 7 &&
                !strcmp(json_object_get_string(at(k0, "error")), "ECONNREFUSED") &&
                num(k0, "count") == 2 && num(k1, "exitcode") == 22 &&
                json_object_is_type(at(k1, "error"), json_type_null) && num(k1, "count") == 1 &&
                num(k2, "exitcode") == 28 &&
                !strcmp(json_object_get_string(at(k2, "error")), "AG_ECONNECT_TIMEOUT") &&
                num(k2, "count") == 1;
    }
    tap_ok(o && num(o, "requests") == 8 && num(o, "ok") == 4 && num(o, "failed") == 4 && kinds,
           "summary_failures_by_kind: 8 requests, 4 ok, 4 failed grouped by exit code and error "
           "name (7 ECONNREFUSED 2, 22 1, 28 AG_ECONNECT_TIMEOUT 1)");
    tap_ok(num(o, "status.200") == 3 && num(o, "status.404") == 1 && num(o, "status.301") == 1 &&
               num(o, "no_response") == 3 && !at(o, "status.0"),
           "summary_status_codes: counts per code, requests with no response apart");
    tap_ok(num(o, "bytes.body") == 4000 && num(o, "bytes.header") == 500 &&
               num(o, "bytes.total") == 4500,
           "summary_bytes: body %lld + header %lld = %lld", (long long)num(o, "bytes.body"),
           (long long)num(o, "bytes.header"), (long long)num(o, "bytes.total"));
    tap_ok(num(o, "connections.opened") == 4 && num(o, "connections.reused") == 2 &&
               num(o, "retries") == 2,
           "summary_connections: %lld opened (num_connects), %lld reused, %lld retries",
           (long long)num(o, "connections.opened"), (long long)num(o, "connections.reused"),
           (long long)num(o, "retries"));
    tap_ok(num(o, "tls.handshakes") == 2 && num(o, "tls.resumed") == 1 &&
               num(o, "dns.cache_hits") == 4 && num(o, "dns.queries") == 7,
           "summary_tls_dns: 2 handshakes (not the reused TLS connections), 1 resumed; DNS hits "
           "and queries added up");
    json_object *rps = at(o, "requests_per_s");
    tap_ok(num(o, "wall_ns") == 2000 * MS && rps && json_object_get_double(rps) == 4.0,
           "summary_rate: 8 requests over 2 s is 4 requests/s");
    json_object_put(o);
    cli_summary_free(s);
}

/* More kinds of failure than the table holds: the rest go to one row, nothing is lost and memory
 * does not grow. */
static void summary_many_kinds(void)
{
    cli_summary *s = cli_summary_new(), *t = cli_summary_new();
    for (int i = 0; i < 100; i++) {
        cli_result r = refused(0, 1 * MS);
        r.exitcode = 1 + i % 70;
        cli_summary_add(s, &r);
    }
    cli_summary_merge(t, s);
    cli_summary_merge(t, s);
    json_object *o = summary_json(t, 1);
    json_object *f = at(o, "failures");
    int64_t sum = 0;
    size_t n = f ? json_object_array_length(f) : 0;
    for (size_t i = 0; i < n; i++)
        sum += num(json_object_array_get_idx(f, i), "count");
    json_object *last = n ? json_object_array_get_idx(f, n - 1) : NULL;
    tap_ok(o && n == 65 && sum == 200 && num(o, "failed") == 200 && last &&
               json_object_is_type(at(last, "exitcode"), json_type_null) &&
               num(last, "count") == 12,
           "summary_many_kinds: 70 kinds of failure: 64 rows and one for the other 6 (%zu rows, "
           "%lld failures)",
           n, (long long)sum);
    json_object_put(o);
    cli_summary_free(s);
    cli_summary_free(t);
}

/* Each phase is its own duration, recorded only where it happened (cli.h's enum cli_phase). */
static void summary_phases(void)
{
    cli_summary *s = cli_summary_new();
    cli_result r;
    /* queue 1, dns 2, connect 3, tls 4, send 1 + wait 5 (first byte 6), receive 2: total 18 ms */
    r = fresh(1 * MS, 2 * MS, 3 * MS, 4 * MS, 1 * MS, 5 * MS, 2 * MS);
    cli_summary_add(s, &r);
    /* Reused: queue 7, first byte 8, total 7 + 8 + 1. */
    r = reused(7 * MS, 8 * MS, 1 * MS);
    cli_summary_add(s, &r);
    /* Refused: queue 0, dns 9, no connect, no TLS, no first byte. */
    r = refused(0, 9 * MS);
    cli_summary_add(s, &r);
    json_object *o = summary_json(s, 1 * MS);
    struct {
        const char *name;
        int64_t count, min, max;
    } want[] = {
        {"queue", 3, 0, 7 * MS},           {"dns", 1, 2 * MS, 2 * MS},
        {"connect", 1, 3 * MS, 3 * MS},    {"tls", 1, 4 * MS, 4 * MS},
        {"first_byte", 2, 6 * MS, 8 * MS}, {"total", 3, 9 * MS, 18 * MS},
    };
    int ok = o != NULL;
    char path[64];
    for (size_t i = 0; ok && i < sizeof(want) / sizeof(want[0]); i++) {
        snprintf(path, sizeof(path), "latency.%s.count", want[i].name);
        int64_t c = num(o, path);
        snprintf(path, sizeof(path), "latency.%s.min_ns", want[i].name);
        int64_t mn = num(o, path);
        snprintf(path, sizeof(path), "latency.%s.max_ns", want[i].name);
        int64_t mx = num(o, path);
        if (c != want[i].count || mn != want[i].min || mx != want[i].max) {
            tap_diag("%s: count %lld min %lld max %lld", want[i].name, (long long)c, (long long)mn,
                     (long long)mx);
            ok = 0;
        }
    }
    tap_ok(ok, "summary_phases: per-phase durations (not cumulative), DNS and connect only for "
               "opened connections, TLS only for handshakes, first byte only with a response");
    json_object_put(o);
    cli_summary_free(s);
}

static cli_result random_result(uint64_t i)
{
    cli_result r;
    int64_t q = (int64_t)(rnd() % (50 * MS));
    int64_t wait = 100 * US + (int64_t)(rnd() % (200 * MS));
    int64_t recv = (int64_t)(rnd() % (5 * MS));
    switch (rnd() % 10) {
    case 0:
        r = refused(q, 2 * US + (int64_t)(rnd() % MS));
        break;
    case 1:
    case 2:
        r = fresh(q, 2 * US + (int64_t)(rnd() % (3 * MS)), 10 * US + (int64_t)(rnd() % MS),
                  100 * US + (int64_t)(rnd() % (10 * MS)), (int64_t)(rnd() % MS), wait, recv);
        r.tls_resumed = rnd() % 2;
        break;
    default:
        r = reused(q, wait, recv);
        r.http_code = rnd() % 20 ? 200 : 503;
        break;
    }
    r.urlnum = i;
    r.attempts = 1 + (unsigned)(rnd() % 3 == 0);
    if (rnd() % 4 == 0)
        r.size_decoded = r.size_download * 3; /* a coded body */
    /* Starts spread over a second, to the microsecond as --jsonl keeps them. */
    r.start_wall_ns = 1764460800000000000LL + (int64_t)(rnd() % 1000000) * 1000;
    return r;
}

static void summary_merge(void)
{
    cli_summary *a = cli_summary_new(), *b = cli_summary_new(), *all = cli_summary_new(),
                *empty = cli_summary_new();
    for (uint64_t i = 0; i < 5000; i++) {
        cli_result r = random_result(i);
        cli_summary_add(i % 3 ? a : b, &r);
        cli_summary_add(all, &r);
    }
    cli_summary_dns(a, 10, 20);
    cli_summary_dns(b, 1, 2);
    cli_summary_dns(all, 11, 22);
    cli_summary_merge(a, b);
    cli_summary_merge(a, empty);
    cli_summary_merge(empty, a);
    cli_buf x = {0}, y = {0}, z = {0};
    cli_summary_json(a, &x, 1000);
    cli_summary_json(all, &y, 1000);
    cli_summary_json(empty, &z, 1000);
    tap_ok(x.p && y.p && z.p && !strcmp(x.p, y.p) && !strcmp(z.p, y.p),
           "summary_merge: the merge of two threads' summaries equals the summary of all "
           "results (same JSON, %zu bytes), in either direction",
           y.len);
    cli_buf_free(&x);
    cli_buf_free(&y);
    cli_buf_free(&z);
    cli_summary_free(a);
    cli_summary_free(b);
    cli_summary_free(all);
    cli_summary_free(empty);
}

/* The buckets in the JSON add up to each phase's count, in order, and the quantiles stand in
 * their buckets. */
static void summary_json_buckets(void)
{
    cli_summary *s = cli_summary_new();
    for (uint64_t i = 0; i < 3000; i++) {
        cli_result r = random_result(i);
        cli_summary_add(s, &r);
    }
    json_object *o = summary_json(s, 1000);
    json_object *lat = at(o, "latency");
    int ok = lat && json_object_object_length(lat) == CLI_PH_COUNT;
    size_t nb = 0;
    static const char *const names[] = {"queue", "dns", "connect", "tls", "first_byte", "total"};
    for (size_t p = 0; p < CLI_PH_COUNT; p++) {
        const char *name = names[p];
        json_object *ph = at(lat, name);
        json_object *bk = at(ph, "buckets");
        int64_t sum = 0, prev_hi = -1;
        for (size_t i = 0; ok && bk && i < json_object_array_length(bk); i++) {
            json_object *e = json_object_array_get_idx(bk, i);
            int64_t lo = json_object_get_int64(json_object_array_get_idx(e, 0)),
                    hi = json_object_get_int64(json_object_array_get_idx(e, 1)),
                    n = json_object_get_int64(json_object_array_get_idx(e, 2));
            if (json_object_array_length(e) != 3 || lo >= hi || lo < prev_hi || n <= 0)
                ok = 0;
            prev_hi = hi;
            sum += n;
            nb++;
        }
        if (!bk || sum != num(ph, "count") || num(ph, "min_ns") > num(ph, "p50_ns") ||
            num(ph, "p50_ns") > num(ph, "p90_ns") || num(ph, "p90_ns") > num(ph, "p99_ns") ||
            num(ph, "p99_ns") > num(ph, "p999_ns") || num(ph, "p999_ns") > num(ph, "max_ns")) {
            tap_diag("phase %s: buckets add up to %lld of %lld", name, (long long)sum,
                     (long long)num(ph, "count"));
            ok = 0;
        }
    }
    tap_ok(ok && nb > 0,
           "summary_json_buckets: valid JSON; %zu [lo, hi, count] buckets in order add up to "
           "each phase's count; min <= p50 <= p90 <= p99 <= p99.9 <= max",
           nb);
    json_object_put(o);
    cli_summary_free(s);
}

static void summary_print(void)
{
    cli_summary *s = cli_summary_new();
    cli_result r = fresh(1 * MS, 2 * MS, 3 * MS, 4 * MS, 1 * MS, 5 * MS, 2 * MS);
    cli_summary_add(s, &r);
    r = refused(0, 1 * MS);
    cli_summary_add(s, &r);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cli_summary_print(s, f, 1000 * MS);
    fclose(f);
    /* The table: a row per phase, count, p50 p90 p99 p99.9 max in ms with 3 decimals. */
    int ok = text && strstr(text, "requests     2 in 1.000 s, 2.0 requests/s") &&
             strstr(text, "exit 7 ECONNREFUSED: 1") && strstr(text, "200: 1") &&
             strstr(text, "no response: 1") && strstr(text, "p99.9") &&
             strstr(text, "\nconnect               1      3.000      3.000      3.000      "
                          "3.000      3.000\n") &&
             strstr(text, "\ntls                   1      4.000") &&
             strstr(text, "\nfirst byte            1      6.000") &&
             strstr(text, "\ntotal                 2");
    tap_ok(ok, "summary_print: the table names failures, codes, and a latency row per phase in "
               "ms with 3 decimals");
    if (!ok && text)
        tap_diag("%s", text);
    ok = text && strstr(text, "decoded") == NULL;
    free(text);
    /* A coded body: the decoded bytes beside those received. */
    r = fresh(1 * MS, 2 * MS, 3 * MS, 4 * MS, 1 * MS, 5 * MS, 2 * MS);
    r.size_decoded = 5000;
    cli_summary_add(s, &r);
    f = open_memstream(&text, &len);
    cli_summary_print(s, f, 1000 * MS);
    fclose(f);
    ok = ok && text && strstr(text, "(body 2.0 KiB, 5.9 KiB decoded; headers");
    json_object *o = summary_json(s, 1000 * MS);
    ok = ok && num(o, "bytes.body") == 2000 && num(o, "bytes.decoded") == 6000;
    json_object_put(o);
    tap_ok(ok, "summary_decoded: decoded bytes beside the wire's when they differ, only then");
    if (!ok && text)
        tap_diag("%s", text);
    free(text);
    cli_summary_free(s);
}

/* Run cli_summarize_main with stdout and stderr in files; returns its code, the outputs in
 * *out and *err (malloc'd). */
static int summarize(const char *arg1, const char *arg2, char **out, char **err)
{
    char o[] = "/tmp/test-summary-out-XXXXXX", e[] = "/tmp/test-summary-err-XXXXXX";
    int fo = mkstemp(o), fe = mkstemp(e);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    dup2(fo, 1);
    dup2(fe, 2);
    char *argv[] = {"summarize", (char *)arg1, (char *)arg2, NULL};
    int code = cli_summarize_main(arg2 ? 3 : arg1 ? 2 : 1, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    char **dst[2] = {out, err};
    int fds[2] = {fo, fe};
    for (int i = 0; i < 2; i++) {
        off_t n = lseek(fds[i], 0, SEEK_END);
        *dst[i] = calloc(1, (size_t)n + 1);
        if (pread(fds[i], *dst[i], (size_t)n, 0) != n)
            (*dst[i])[0] = 0;
        close(fds[i]);
    }
    unlink(o);
    unlink(e);
    return code;
}

/* The live summary and `asyncget summarize --json` of the same results written as --jsonl lines
 * agree: counts exactly, quantiles within the histogram's 1% plus the microsecond the lines keep,
 * and bad lines are counted and left out. */
static void summarize_matches_live(void)
{
    char path[] = "/tmp/test-summary-jsonl-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    cli_summary *live = cli_summary_new();
    cli_buf line = {0};
    int64_t first = INT64_MAX, last = INT64_MIN;
    enum { N = 20000 };
    for (uint64_t i = 0; i < N; i++) {
        cli_result r = random_result(i);
        cli_summary_add(live, &r);
        if (r.start_wall_ns < first)
            first = r.start_wall_ns;
        if (r.start_wall_ns + r.time_total > last)
            last = r.start_wall_ns + r.time_total;
        cli_buf_reset(&line);
        cli_result_json(&line, &r);
        fprintf(f, "%s\n", line.p);
        if (i == 100)
            fputs("not json\n", f);
        if (i == 200)
            fputs("{\"urlnum\": 1}\n", f); /* JSON, but not a result */
        if (i == 300)
            fputs("\n", f); /* blank: skipped silently */
        if (i == 500)
            fprintf(f, "%s x\n", line.p); /* a result, then bytes that are not JSON */
        if (i == 400) {
            line.p[line.len / 2] = 0; /* cut in the middle */
            fprintf(f, "%s\n", line.p);
        }
    }
    fclose(f);
    cli_buf_free(&line);

    char *out, *err;
    int code = summarize("--json", path, &out, &err);
    json_tokener *tok = json_tokener_new();
    json_object *got = json_tokener_parse_ex(tok, out, (int)strlen(out));
    json_tokener_free(tok);
    json_object *want = summary_json(live, last - first);
    tap_ok(code == 0 && got && strstr(err, "4 of 20005 lines") && strstr(err, "line 102"),
           "summarize_bad_lines: 4 bad lines counted and reported on stderr, not fatal (exit %d; "
           "stderr: %s)",
           code, err);

    static const char *const exact[] = {"requests",
                                        "ok",
                                        "failed",
                                        "no_response",
                                        "status.200",
                                        "status.503",
                                        "bytes.total",
                                        "bytes.decoded",
                                        "connections.opened",
                                        "connections.reused",
                                        "retries",
                                        "tls.handshakes",
                                        "tls.resumed",
                                        "latency.queue.count",
                                        "latency.dns.count",
                                        "latency.connect.count",
                                        "latency.tls.count",
                                        "latency.first_byte.count",
                                        "latency.total.count"};
    int same = got && want;
    for (size_t i = 0; same && i < sizeof(exact) / sizeof(exact[0]); i++) {
        if (num(got, exact[i]) != num(want, exact[i]) || num(want, exact[i]) == -999) {
            tap_diag("%s: summarize %lld, live %lld", exact[i], (long long)num(got, exact[i]),
                     (long long)num(want, exact[i]));
            same = 0;
        }
    }
    /* Failures: the lines carry the exit code, not asyncget's error name. */
    json_object *fk = at(got, "failures");
    same = same && fk && json_object_array_length(fk) == 1 &&
           num(json_object_array_get_idx(fk, 0), "exitcode") == 7 &&
           num(json_object_array_get_idx(fk, 0), "count") == num(want, "failed");
    tap_ok(same, "summarize_counts: every count of summarize equals the live summary's");

    static const char *const phases[] = {"queue", "dns", "connect", "tls", "first_byte", "total"};
    static const char *const qk[] = {"min_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"};
    int close_enough = got && want;
    double worst = 0;
    char p[64];
    for (size_t i = 0; close_enough && i < 6; i++) {
        for (size_t k = 0; k < 6; k++) {
            snprintf(p, sizeof(p), "latency.%s.%s", phases[i], qk[k]);
            int64_t a = num(got, p), b = num(want, p);
            /* 1% for the bucket, 2 µs for two truncated times in a difference. */
            if (!near(a, b, 0.01, 2 * US)) {
                tap_diag("%s: summarize %lld, live %lld", p, (long long)a, (long long)b);
                close_enough = 0;
            }
            double d = b ? (double)(a > b ? a - b : b - a) / (double)b : 0;
            if (d > worst)
                worst = d;
        }
    }
    tap_ok(close_enough,
           "summarize_percentiles: min, p50, p90, p99, p99.9 and max of every phase within 1%% + "
           "2 us of the live run's (worst %.5f)",
           worst);
    tap_ok(near(num(got, "wall_ns"), last - first, 0, 1 * US),
           "summarize_wall: earliest start to latest start + time_total (%lld ns, live %lld)",
           (long long)num(got, "wall_ns"), (long long)(last - first));
    json_object_put(got);
    json_object_put(want);
    free(out);
    free(err);

    /* The table too. */
    code = summarize(path, NULL, &out, &err);
    tap_ok(code == 0 && strstr(out, "requests     20000 in") && strstr(out, "latency (ms)") &&
               strstr(out, "\nfirst byte "),
           "summarize_table: without --json, the table on stdout");
    free(out);
    free(err);
    unlink(path);
    cli_summary_free(live);
}

static void summarize_errors(void)
{
    char *out, *err;
    int none = summarize(NULL, NULL, &out, &err);
    free(out);
    free(err);
    int missing = summarize("/nonexistent/test-summary.jsonl", NULL, &out, &err);
    int said = strstr(err, "/nonexistent/test-summary.jsonl") != NULL;
    free(out);
    free(err);
    int unknown = summarize("--bogus", "x", &out, &err);
    free(out);
    free(err);
    tap_ok(none == 2 && missing == 26 && said && unknown == 2,
           "summarize_errors: no file 2, a missing file 26 (named), an unknown option 2 (got %d "
           "%d %d)",
           none, missing, unknown);
}

/* Starts no clock can hold as nanoseconds since 1970 in 64 bits (past 2262, before 1678), and an
 * end past that: the line counts, but stands for no moment of the run, so the run's wall time
 * comes from the other lines alone (before: the products and sums overflowed, UB, and the wall
 * time was garbage). */
static void summarize_far_dates(void)
{
    static const char *const starts[] = {"9999-12-31T23:59:59.999999Z", "2300-01-01T00:00:00Z",
                                         "1600-01-01T00:00:00Z"};
    char path[] = "/tmp/test-summary-dates-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    cli_result r = fresh(1 * MS, 0, 1 * MS, 0, 0, 1 * MS, 1 * MS);
    r.start_wall_ns = 1800000000LL * 1000000000LL;
    cli_buf line = {0};
    cli_result_json(&line, &r);
    fprintf(f, "%s\n", line.p);
    const char *at = strstr(line.p, "\"start\":\"");
    for (size_t i = 0; i < sizeof starts / sizeof *starts; i++)
        fprintf(f, "%.*s\"start\":\"%s\"}\n", (int)(at - line.p), line.p, starts[i]);
    /* A start just inside the range with a time_total of centuries: the end overflows. */
    const char *tt = strstr(line.p, "\"time_total\":");
    const char *after = strchr(tt, ',');
    fprintf(f, "%.*s\"time_total\":4000000000.0%.*s\"start\":\"2262-04-11T23:47:15Z\"}\n",
            (int)(tt - line.p), line.p, (int)(at - after), after);
    fclose(f);
    cli_buf_free(&line);
    char *out, *err;
    int code = summarize("--json", path, &out, &err);
    json_object *doc = json_tokener_parse(out);
    json_object *v;
    int64_t requests =
        doc && json_object_object_get_ex(doc, "requests", &v) ? json_object_get_int64(v) : -1;
    int64_t wall =
        doc && json_object_object_get_ex(doc, "wall_ns", &v) ? json_object_get_int64(v) : -1;
    tap_ok(code == 0 && requests == 5 && wall == r.time_total,
           "summarize_far_dates: starts in 9999, 2300 and 1600, and an end past 2262, count as "
           "requests without making the wall time (exit %d, %lld requests, wall %lld ns, "
           "expected %lld)",
           code, (long long)requests, (long long)wall, (long long)r.time_total);
    json_object_put(doc);
    free(out);
    free(err);
    unlink(path);
}

/* Times that no run writes: negative, or of centuries. Such a line is no result (left out and
 * counted as bad); before, its phases were taken as differences that overflowed (UB). */
static void summarize_impossible_times(void)
{
    char path[] = "/tmp/test-summary-times-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    cli_result r = fresh(1 * MS, 1 * MS, 1 * MS, 0, 0, 1 * MS, 1 * MS);
    r.start_wall_ns = 1800000000LL * 1000000000LL;
    cli_buf line = {0};
    cli_result_json(&line, &r);
    fprintf(f, "%s\n", line.p);
    /* time_queue far below zero, time_namelookup far above: 1.6e19 ns apart. */
    const char *q = strstr(line.p, "\"time_queue\":");
    const char *c = strstr(line.p, "\"time_connect\":");
    fprintf(f, "%.*s\"time_queue\":-8000000000.0,\"time_namelookup\":8000000000.0,%s\n",
            (int)(q - line.p), line.p, c);
    fprintf(f, "%.*s\"time_queue\":-0.000001,\"time_namelookup\":0.0,%s\n", (int)(q - line.p),
            line.p, c);
    fclose(f);
    cli_buf_free(&line);
    char *out, *err;
    int code = summarize("--json", path, &out, &err);
    json_object *doc = json_tokener_parse(out);
    json_object *v;
    int64_t requests =
        doc && json_object_object_get_ex(doc, "requests", &v) ? json_object_get_int64(v) : -1;
    tap_ok(code == 0 && requests == 1 && strstr(err, "2 of 3 lines") != NULL,
           "summarize_impossible_times: lines with a negative time or one of centuries are left "
           "out as bad (exit %d, %lld requests, stderr %s)",
           code, (long long)requests, err);
    json_object_put(doc);
    free(out);
    free(err);
    unlink(path);
}

int main(void)
{
    summary_counts();
    summary_many_kinds();
    summary_phases();
    summary_merge();
    summary_json_buckets();
    summary_print();
    summarize_matches_live();
    summarize_errors();
    summarize_far_dates();
    summarize_impossible_times();
    return tap_done();
}
