/* test-resolve.c: the resolver against dnsmasq on loopback (with-servers --dnsmasq): families,
 * CNAME chains, NXDOMAIN and NODATA, the cache (counted in dnsmasq's own query log and in the
 * client's counters), TTL expiry, shared queries, 1,000 names at once, a server that never
 * answers, the overrides, and requests to nginx through names. Every client is given the test
 * servers explicitly: nothing here reads /etc/resolv.conf. */
#include "tests/dns/util.h"
#include "tests/http/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *dns_server, *dns_log, *blackhole;
static int nginx_port;
static ag_loop *loop;

static ag_client *client_with(const char *servers, int family, void (*tweak)(ag_client_opts *))
{
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = ag_coro_self() ? loop : NULL;
    o.dns_servers = servers;
    o.ip_family = family;
    if (tweak)
        tweak(&o);
    ag_client *c = NULL;
    int rc = ag_client_new(&c, &o);
    if (rc < 0)
        tap_diag("ag_client_new: %s", ag_err_name(rc));
    return c;
}

static void families(void)
{
    ag_client *c = client_with(dns_server, AG_IP_ANY, NULL);
    char t[256];
    int rc = resolve_text(c, "both.test", t, sizeof t);
    tap_ok(rc == 0 && strcmp(t, "::1 127.0.0.1") == 0,
           "dns_both_families: AAAA and A, IPv6 first (%s: \"%s\")", ag_err_name(rc), t);
    rc = resolve_text(c, "v4.test", t, sizeof t);
    tap_ok(rc == 0 && strcmp(t, "127.0.0.1") == 0, "dns_v4_only_name: A alone (%s: \"%s\")",
           ag_err_name(rc), t);
    rc = resolve_text(c, "v6.test", t, sizeof t);
    tap_ok(rc == 0 && strcmp(t, "::1") == 0, "dns_v6_only_name: AAAA alone (%s: \"%s\")",
           ag_err_name(rc), t);
    rc = resolve_text(c, "alias.test", t, sizeof t);
    tap_ok(rc == 0 && strcmp(t, "::1 127.0.0.1") == 0,
           "dns_cname_chain: alias.test -> alias2.test -> both.test (%s: \"%s\")", ag_err_name(rc),
           t);
    rc = resolve_text(c, "multi.test", t, sizeof t);
    tap_ok(rc == 0 && strstr(t, "127.0.0.1") && strstr(t, "127.0.0.2"),
           "dns_several_addresses: both A records kept (%s: \"%s\")", ag_err_name(rc), t);
    rc = resolve_text(c, "nx.test", t, sizeof t);
    tap_ok(rc == AG_EDNS, "dns_nxdomain: AG_EDNS (%s)", ag_err_name(rc));
    rc = resolve_text(c, "refused.test", t, sizeof t);
    tap_ok(rc == AG_EDNS_FAIL,
           "dns_refused_is_server_failure: AG_EDNS_FAIL, not \"not found\" (%s)", ag_err_name(rc));
    rc = resolve_text(c, "BOTH.Test", t, sizeof t);
    tap_ok(rc == 0 && strcmp(t, "::1 127.0.0.1") == 0,
           "dns_case_insensitive: BOTH.Test is both.test (%s: \"%s\")", ag_err_name(rc), t);
    ag_client_free(c);

    c = client_with(dns_server, AG_IP_V6, NULL);
    int before = logged_at_least("A", "v4.test", 0);
    rc = resolve_text(c, "v4.test", t, sizeof t);
    tap_ok(rc == AG_EDNS, "dns_nodata_for_family: v4.test with ip_family v6 is AG_EDNS (%s)",
           ag_err_name(rc));
    rc = resolve_text(c, "both.test", t, sizeof t);
    tap_ok(rc == 0 && strcmp(t, "::1") == 0, "dns_family_v6_only: only ::1 (%s: \"%s\")",
           ag_err_name(rc), t);
    usleep(100 * 1000);
    tap_ok(logged("A", "v4.test") == before,
           "dns_family_v6_asks_no_a: no A query went out for a v6-only client");
    ag_client_free(c);
    c = client_with(dns_server, AG_IP_V4, NULL);
    rc = resolve_text(c, "both.test", t, sizeof t);
    tap_ok(rc == 0 && strcmp(t, "127.0.0.1") == 0,
           "dns_family_v4_only: only 127.0.0.1 (%s: \"%s\")", ag_err_name(rc), t);
    ag_client_free(c);
}

static void cache(void)
{
    ag_client *c = client_with(dns_server, AG_IP_ANY, NULL);
    char t[256];
    int q0 = logged("A", "cache1.bulk.test");
    int rc1 = resolve_text(c, "cache1.bulk.test", t, sizeof t);
    int q1 = logged_at_least("A", "cache1.bulk.test", q0 + 1);
    int rc2 = resolve_text(c, "cache1.bulk.test", t, sizeof t);
    usleep(200 * 1000);
    int q2 = logged("A", "cache1.bulk.test");
    ag_dns_stats s;
    ag_client_dns_stats(c, &s);
    tap_ok(rc1 == 0 && rc2 == 0 && q1 == q0 + 1 && q2 == q1 && s.queries == 2 && s.cache_hits == 2,
           "dns_cache_answers_second_lookup: one A query in dnsmasq's log (%d then %d), "
           "queries %llu, hits %llu",
           q1 - q0, q2 - q1, (unsigned long long)s.queries, (unsigned long long)s.cache_hits);

    /* NXDOMAIN is remembered too, for the negative TTL. */
    q0 = logged("A", "nx.test");
    resolve_text(c, "nx.test", t, sizeof t);
    q1 = logged_at_least("A", "nx.test", q0 + 1);
    int rc = resolve_text(c, "nx.test", t, sizeof t);
    usleep(200 * 1000);
    q2 = logged("A", "nx.test");
    tap_ok(rc == AG_EDNS && q1 == q0 + 1 && q2 == q1,
           "dns_negative_cache: a second NXDOMAIN lookup sends nothing (%d, %d)", q1 - q0, q2 - q1);

    /* short.test has a TTL of 1 s: after it, a new query. */
    q0 = logged("A", "short.test");
    resolve_text(c, "short.test", t, sizeof t);
    resolve_text(c, "short.test", t, sizeof t);
    q1 = logged_at_least("A", "short.test", q0 + 1);
    usleep(1100 * 1000);
    rc = resolve_text(c, "short.test", t, sizeof t);
    q2 = logged_at_least("A", "short.test", q1 + 1);
    tap_ok(rc == 0 && q1 == q0 + 1 && q2 == q1 + 1,
           "dns_ttl_expiry_requeries: one query within the TTL, another after it (%d, %d)", q1 - q0,
           q2 - q1);
    ag_client_free(c);
}

static void no_cache(ag_client_opts *o)
{
    o->dns_cache_size = AG_NO_DNS_CACHE;
}

static void cache_off(void)
{
    ag_client *c = client_with(dns_server, AG_IP_ANY, no_cache);
    char t[256];
    int q0 = logged("A", "nocache.bulk.test");
    resolve_text(c, "nocache.bulk.test", t, sizeof t);
    int rc = resolve_text(c, "nocache.bulk.test", t, sizeof t);
    int q1 = logged_at_least("A", "nocache.bulk.test", q0 + 2);
    ag_dns_stats s;
    ag_client_dns_stats(c, &s);
    tap_ok(rc == 0 && q1 == q0 + 2 && s.entries == 0,
           "dns_cache_off: AG_NO_DNS_CACHE asks every time (%d queries, %llu entries)", q1 - q0,
           (unsigned long long)s.entries);
    ag_client_free(c);
}

/* ---- many lookups at once, on the loop ---- */

typedef struct job {
    ag_client *c;
    char name[64];
    int rc;
    size_t n;
} job;

static void resolve_job(void *arg)
{
    job *j = arg;
    ag_addr a[4];
    j->rc = ag_client_resolve(j->c, j->name, a, 4, &j->n);
}

static int run_jobs(job *jobs, int n)
{
    for (int i = 0; i < n; i++)
        if (ag_coro_spawn(loop, resolve_job, &jobs[i], NULL) < 0)
            return -1;
    return ag_loop_run(loop);
}

static void many(void)
{
    enum { N = 1000, SAME = 100 };
    job *jobs = calloc(N, sizeof *jobs);
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.dns_servers = dns_server;
    ag_client *c;
    ag_client_new(&c, &o);
    for (int i = 0; i < N; i++) {
        jobs[i].c = c;
        snprintf(jobs[i].name, sizeof jobs[i].name, "h%d.bulk.test", i);
    }
    run_jobs(jobs, N);
    int ok = 0, shown = 0;
    for (int i = 0; i < N; i++) {
        ok += jobs[i].rc == 0 && jobs[i].n == 1;
        if (jobs[i].rc != 0 && shown++ < 3)
            tap_diag("%s: %s", jobs[i].name, ag_err_name(jobs[i].rc));
    }
    ag_dns_stats s;
    ag_client_dns_stats(c, &s);
    tap_ok(ok == N && s.queries == 2 * N,
           "dns_1000_names_at_once: %d of %d resolved, %llu queries (A and AAAA each)", ok, N,
           (unsigned long long)s.queries);

    /* The same name from 100 coroutines at once: one query per family, the rest join it. */
    for (int i = 0; i < SAME; i++)
        snprintf(jobs[i].name, sizeof jobs[i].name, "shared.bulk.test");
    int q0 = logged("A", "shared.bulk.test");
    ag_dns_stats s0 = s;
    run_jobs(jobs, SAME);
    ok = 0;
    for (int i = 0; i < SAME; i++)
        ok += jobs[i].rc == 0 && jobs[i].n == 1;
    ag_client_dns_stats(c, &s);
    int q1 = logged_at_least("A", "shared.bulk.test", q0 + 1);
    usleep(100 * 1000);
    q1 = logged("A", "shared.bulk.test");
    tap_ok(ok == SAME && s.queries - s0.queries == 2 && q1 - q0 == 1 &&
               s.joined - s0.joined == 2 * (SAME - 1),
           "dns_concurrent_lookups_share_one_query: %d ok, %llu queries, %d A in the log, %llu "
           "joined",
           ok, (unsigned long long)(s.queries - s0.queries), q1 - q0,
           (unsigned long long)(s.joined - s0.joined));
    ag_client_free(c);

    /* Without a cache, lookups at once still share the query. */
    o.dns_cache_size = AG_NO_DNS_CACHE;
    ag_client_new(&c, &o);
    for (int i = 0; i < SAME; i++) {
        jobs[i].c = c;
        snprintf(jobs[i].name, sizeof jobs[i].name, "shared-nocache.bulk.test");
    }
    run_jobs(jobs, SAME);
    ok = 0;
    for (int i = 0; i < SAME; i++)
        ok += jobs[i].rc == 0 && jobs[i].n == 1;
    ag_client_dns_stats(c, &s);
    tap_ok(ok == SAME && s.queries == 2 && s.entries == 0,
           "dns_no_cache_still_shares_queries: %d ok, %llu queries, %llu entries left", ok,
           (unsigned long long)s.queries, (unsigned long long)s.entries);
    ag_client_free(c);
    free(jobs);
}

/* ---- a server that never answers ---- */

static void short_dns(ag_client_opts *o)
{
    o->dns_timeout_ms = 100;
    o->dns_tries = 2;
}

static void blackholed(void)
{
    ag_client *c = client_with(blackhole, AG_IP_ANY, short_dns);
    char t[256];
    int64_t t0 = ag_now_ns();
    int rc = resolve_text(c, "both.test", t, sizeof t);
    int64_t el = ag_now_ns() - t0;
    /* 100 ms, then twice that for the second round. */
    tap_ok(rc == AG_EDNS_TIMEOUT && el >= 300 * 1000000LL,
           "dns_server_never_answers: AG_EDNS_TIMEOUT after %lld ms (at least 300) (%s)",
           (long long)(el / 1000000), ag_err_name(rc));
    ag_client_free(c);

    /* The first server swallows queries, the second answers: c-ares moves on after the first
     * try's timeout, and the wait watches both sockets. */
    char two[128];
    snprintf(two, sizeof two, "%s,%s", blackhole, dns_server);
    c = client_with(two, AG_IP_ANY, short_dns);
    t0 = ag_now_ns();
    rc = resolve_text(c, "both.test", t, sizeof t);
    el = ag_now_ns() - t0;
    tap_ok(rc == 0 && strcmp(t, "::1 127.0.0.1") == 0 && el >= 100 * 1000000LL,
           "dns_second_server_answers%s: %s \"%s\" after %lld ms (at least 100)",
           ag_coro_self() ? "" : "_blocking", ag_err_name(rc), t, (long long)(el / 1000000));
    ag_client_free(c);
}

static void long_dns(ag_client_opts *o)
{
    o->dns_timeout_ms = 5000;
    o->connect_timeout_ms = 200;
}

static void fetch_blackholed(void *arg)
{
    (void)arg;
    ag_client *c = client_with(blackhole, AG_IP_ANY, long_dns);
    char url[128];
    snprintf(url, sizeof url, "http://both.test:%d/", nginx_port);
    int64_t t0 = ag_now_ns();
    int rc;
    ag_response *r = get(c, url, &rc);
    int64_t el = ag_now_ns() - t0;
    tap_ok(rc == AG_EDNS_TIMEOUT && el >= 200 * 1000000LL &&
               strstr(ag_response_error_detail(r), "both.test"),
           "dns_timeout_within_connect_timeout: %s after %lld ms (at least 200): \"%s\"",
           ag_err_name(rc), (long long)(el / 1000000), ag_response_error_detail(r));
    ag_response_free(r);
    /* Nothing else runs on this loop: a timer still armed would be the resolver's, kept for a
     * query nobody waits for (c-ares would give up on it only after 5 + 10 + 20 s). */
    int next = ag_loop_timeout_ms(loop);
    tap_ok(next < 0, "dns_abandoned_query_dropped: no timer left armed (next in %d ms)", next);
    tap_ok(ag_client_free(c) == 0, "dns_client_free_after_abandoned_query");
}

/* A query nobody waits for any more must not keep the loop alive until c-ares gives up. */
static void abandoned(void)
{
    ag_coro_spawn(loop, fetch_blackholed, NULL, NULL);
    ag_loop_run(loop);
    tap_ok(ag_loop_run_once(loop, 0) == 0,
           "dns_abandoned_query_leaves_loop_idle: no timer or coroutine left behind");
}

/* ---- requests through names ---- */

static void fetches(void *arg)
{
    (void)arg;
    char rs[64], ct[96];
    snprintf(rs, sizeof rs, "pinned.test:%d:127.0.0.1", nginx_port);
    snprintf(ct, sizeof ct, "elsewhere.test:80:127.0.0.1:%d", nginx_port);
    const char *resolve[] = {rs, NULL}, *connect_to[] = {ct, NULL};
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = ag_coro_self() ? loop : NULL;
    o.dns_servers = dns_server;
    o.resolve = resolve;
    o.connect_to = connect_to;
    ag_client *c;
    int rc = ag_client_new(&c, &o);
    char url[128];
    snprintf(url, sizeof url, "http://v4.test:%d/hello", nginx_port);
    ag_response *r = get(c, url, &rc);
    ag_timings t;
    ag_response_timings(r, &t);
    tap_ok(rc == 0 && ag_response_status(r) == 200 && t.dns >= t.start && t.dns > 0,
           "dns_fetch_through_name: 200 from nginx via v4.test (%s), dns timing set",
           ag_err_name(rc));
    ag_response_free(r);
    /* Again on a new connection ("Connection: close" closed the first): the name comes from the
     * cache, and the timing is still set. */
    ag_header close_hdr[] = {{"Connection", "close"}};
    ag_request req;
    ag_request_init(&req);
    req.url = url;
    req.headers = close_hdr;
    req.nheaders = 1;
    ag_fetch(c, &req, &r);
    ag_response_free(r);
    ag_fetch(c, &req, &r);
    ag_response_timings(r, &t);
    ag_dns_stats s;
    ag_client_dns_stats(c, &s);
    tap_ok(ag_response_status(r) == 200 && !ag_response_reused(r) && t.dns > 0 &&
               t.dns >= t.queued && t.connected >= t.dns && s.cache_hits >= 2,
           "dns_timing_set_from_cache: a cached answer still sets timings.dns (hits %llu)",
           (unsigned long long)s.cache_hits);
    ag_response_free(r);

    int q0 = logged("A", "pinned.test");
    snprintf(url, sizeof url, "http://pinned.test:%d/hello", nginx_port);
    r = get(c, url, &rc);
    usleep(100 * 1000);
    tap_ok(rc == 0 && ag_response_status(r) == 200 && logged("A", "pinned.test") == q0,
           "dns_resolve_override: pinned.test answered by the option, no query (%s)",
           ag_err_name(rc));
    ag_response_free(r);
    snprintf(url, sizeof url, "http://pinned.test:%d/hello",
             nginx_port + 1 > 65535 ? 1 : nginx_port + 1);
    r = get(c, url, &rc);
    tap_ok(rc == AG_EDNS, "dns_resolve_override_port: another port is not overridden (%s)",
           ag_err_name(rc));
    ag_response_free(r);

    r = get(c, "http://elsewhere.test/hello", &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 200,
           "dns_connect_to: elsewhere.test:80 reached at 127.0.0.1:nginx (%s, %d)", ag_err_name(rc),
           ag_response_status(r));
    ag_response_free(r);

    r = get(c, "http://refused.test/", &rc);
    tap_ok(rc == AG_EDNS_FAIL && strstr(ag_response_error_detail(r), "REFUSED"),
           "dns_fetch_refused_detail: the server's answer is named (\"%s\")",
           ag_response_error_detail(r));
    ag_response_free(r);
    r = get(c, "http://nx.test/", &rc);
    tap_ok(rc == AG_EDNS && strstr(ag_response_error_detail(r), "nx.test") &&
               strstr(ag_response_error_detail(r), "NXDOMAIN"),
           "dns_fetch_nxdomain_detail: \"%s\"", ag_response_error_detail(r));
    ag_response_free(r);
    ag_client_free(c);
}

static void bad_options(void)
{
    const char *bad_resolve[][2] = {
        {"x.test:80", NULL},       {"x.test:80:", NULL},  {"x.test:99999:1.2.3.4", NULL},
        {"x.test:80:1.2.3", NULL}, {":80:1.2.3.4", NULL}, {"x.test:80:1.2.3.4,", NULL}};
    int refused = 0;
    for (size_t i = 0; i < sizeof bad_resolve / sizeof *bad_resolve; i++) {
        ag_client_opts o;
        ag_client_opts_init(&o);
        o.resolve = bad_resolve[i];
        ag_client *c = NULL;
        refused += ag_client_new(&c, &o) == -EINVAL && !c;
    }
    tap_ok(refused == 6, "dns_resolve_option_malformed: %d of 6 refused with -EINVAL", refused);
    const char *bad_cto[][2] = {
        {"a:1:b", NULL}, {"a:x:b:2", NULL}, {"[::1:1:b:2", NULL}, {"a:1:b:70000", NULL}};
    refused = 0;
    for (size_t i = 0; i < sizeof bad_cto / sizeof *bad_cto; i++) {
        ag_client_opts o;
        ag_client_opts_init(&o);
        o.connect_to = bad_cto[i];
        ag_client *c = NULL;
        refused += ag_client_new(&c, &o) == -EINVAL && !c;
    }
    tap_ok(refused == 4, "dns_connect_to_option_malformed: %d of 4 refused", refused);
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.dns_servers = "not an address";
    ag_client *c = NULL;
    tap_ok(ag_client_new(&c, &o) == -EINVAL && !c, "dns_servers_malformed: -EINVAL");
    o.dns_servers = NULL;
    o.connect_timeout_ms = -1;
    tap_ok(ag_client_new(&c, &o) == -EINVAL && !c, "client_negative_time_refused: -EINVAL");
    o.connect_timeout_ms = 0;
    o.ip_family = 5;
    tap_ok(ag_client_new(&c, &o) == -EINVAL && !c, "dns_ip_family_invalid: -EINVAL");
    size_t n = 7;
    ag_addr a[1];
    ag_client_opts_init(&o);
    o.dns_servers = dns_server; /* a name that slipped through must not reach the system's */
    ag_client_new(&c, &o);
    tap_ok(ag_client_resolve(c, "", a, 1, &n) == -EINVAL && n == 0 &&
               ag_client_resolve(NULL, "x", a, 1, &n) == -EINVAL &&
               ag_client_resolve(c, NULL, a, 1, &n) == -EINVAL &&
               ag_client_resolve(c, "x", NULL, 1, &n) == -EINVAL &&
               ag_client_resolve(c, "x", a, 1, NULL) == -EINVAL,
           "dns_resolve_null_arguments: -EINVAL");
    tap_ok(ag_client_resolve(c, "127.0.0.1", NULL, 0, &n) == 0 && n == 0,
           "dns_resolve_zero_max: numeric host, room for nothing, 0 addresses");
    ag_client_free(c);
    const char *pinned[] = {"pin.test:8080:10.1.2.3", NULL};
    ag_client_opts_init(&o);
    o.resolve = pinned;
    o.dns_servers = "127.0.0.1:9"; /* nothing listens: a query would fail */
    ag_client_new(&c, &o);
    int prc = ag_client_resolve(c, "pin.test", a, 1, &n);
    tap_ok(prc == 0 && n == 1 && a[0].family == 4 && a[0].addr[0] == 10 && a[0].addr[3] == 3,
           "dns_resolve_uses_port_specific_override: ag_client_resolve asks no port (%s, %zu)",
           ag_err_name(prc), n);
    tap_ok(ag_client_dns_stats(NULL, NULL) == -EINVAL, "dns_stats_null: -EINVAL");
    ag_dns_stats st;
    ag_client_dns_stats(c, &st);
    int rcs = ag_client_resolve(c, "a b.test", a, 1, &n) == AG_EDNS &&
              ag_client_resolve(c, "a\r\nb.test", a, 1, &n) == AG_EDNS &&
              ag_client_resolve(c, "\xc3\xa9.test", a, 1, &n) == AG_EDNS &&
              ag_client_resolve(c, "a\\.b.test", a, 1, &n) == AG_EDNS &&
              ag_client_resolve(c, "a\\000.test", a, 1, &n) == AG_EDNS;
    ag_dns_stats st2;
    ag_client_dns_stats(c, &st2);
    tap_ok(
        rcs && st2.queries == st.queries,
        "dns_resolve_malformed_name: spaces, CRLF, raw UTF-8, backslash escapes are AG_EDNS, never "
        "sent");
    ag_client_free(c);
}

typedef struct step {
    void (*fn)(void);
} step;

static void in_coro(void *arg)
{
    ((step *)arg)->fn();
}

static void on_loop(void (*fn)(void))
{
    step s = {fn};
    ag_coro_spawn(loop, in_coro, &s, NULL);
    ag_loop_run(loop);
}

int main(void)
{
    dns_server = getenv("AG_DNS_SERVER");
    dns_log = getenv("AG_DNS_LOG");
    blackhole = getenv("AG_DNS_BLACKHOLE");
    const char *np = getenv("AG_NGINX_PORT");
    if (!dns_server || !dns_log || !blackhole || !np) {
        tap_skip("dns: needs with-servers --dnsmasq --nginx");
        return tap_done();
    }
    nginx_port = atoi(np);
    ag_loop_new(&loop, NULL);
    bad_options();
    on_loop(families);
    families(); /* the same, blocking */
    on_loop(cache);
    on_loop(cache_off);
    many();
    on_loop(blackholed);
    blackholed();
    abandoned();
    ag_coro_spawn(loop, fetches, NULL, NULL);
    ag_loop_run(loop);
    fetches(NULL);
    ag_loop_free(loop);
    return tap_done();
}
