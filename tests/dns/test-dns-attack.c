/* test-dns-attack.c: the resolver attacked through the public API only, as an outside reviewer
 * would: a hostile DNS server (hostile_dns.py, started here) that lies, stalls, truncates and
 * floods; misuse of the options and of ag_client_resolve; cancellation and freeing in the middle
 * of lookups; floods of names; a full fd table. Run as
 *   with-servers --tap --dnsmasq -- test-dns-attack tests/dns/hostile_dns.py
 * Every case must end in a clear error or the right answer for THAT name, never a crash, a hang
 * (an alarm turns one into a failure), a leak (ASan) or an address meant for another name.
 *
 * A case that shows a fault not fixed yet is reported as a skip naming the fault (the TODO_* texts
 * below) and what it saw; once the fault is fixed the case passes, and its text is set to NULL so
 * that the case fails if the fault ever comes back. */
#include "asyncget.h"
#include "tests/peer.h"
#include "tests/tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* Known faults, each the reason its case still fails; NULL once fixed. */
static const char *const TODO_SERVFAIL_DETAIL = NULL; /* fixed by 1827958 */
static const char *const TODO_LOCALHOST_DOT = NULL;   /* fixed by 1827958 */
static const char *const TODO_ABANDONED_SLOT = NULL;  /* fixed by 1827958 */
static const char *const TODO_HUGE_MS = NULL;         /* fixed by 1827958 */
static const char *const TODO_NO_CACHE_SHARE = NULL;  /* fixed by 77fc79d */
static const char *const TODO_SERVFAIL_TWO_SERVERS =
    "with two servers c-ares still reports SERVFAIL as ARES_ECONNREFUSED ('DNS servers "
    "unreachable')";
static const char *const TODO_TCP_SECOND_QUERY = NULL; /* fixed by 3091a0f */
/* The same fault where it depends on timing (tc-ok: whether the second family's TC comes before
 * the first's answer over TCP): a pass says nothing. */
static const char *const TODO_TCP_RACE = NULL;     /* fixed by 3091a0f */
static const char *const TODO_SERVERS_PORT = NULL; /* fixed by 1827958 */

/* A bound on the whole run: a hang becomes a failed assertion, not a stuck suite. */
enum { RUN_BOUND_S = 240 };

static const char *dns_server, *blackhole;
static ag_loop *loop;

/* A case that may be a known fault (todo not NULL). A known fault that still shows is reported
 * as a skip naming the fault and what was seen: scripts/test-all counts any "not ok", TODO or
 * not, as a failure, and main stays green. A known fault that no longer shows passes, with a note
 * to set its TODO_* text to NULL so that it can never come back unnoticed. Returns cond. */
__attribute__((format(printf, 3, 4))) static int check(int cond, const char *todo, const char *fmt,
                                                       ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!todo || cond) {
        if (todo && strncmp(todo, "(race)", 6) != 0)
            tap_diag("a known fault is fixed: set its TODO_* text to NULL (%s)", todo);
        return tap_ok(cond, "%s", msg);
    }
    tap_skip("%s -- known fault, still there: %s", msg, todo);
    return cond;
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char m[] = "not ok 999 - dns_attack_bounded: the run did not end within its "
                            "bound (a lookup hung)\n";
    ssize_t w = write(1, m, sizeof m - 1);
    (void)w;
    _exit(1);
}

/* ---- the hostile server ---- */

static pid_t hd_pid = -1;
static int hd_in = -1;
static char hd_server[64], hd_dir[256], hd_log[300];

static int hostile_start(const char *script)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(hd_dir, sizeof hd_dir, "%s/ag-hostile-dns.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(hd_dir))
        return -1;
    snprintf(hd_log, sizeof hd_log, "%s/queries.log", hd_dir);
    const char *args[] = {script, "--log", hd_log, NULL};
    int out;
    if ((hd_pid = peer_spawn(args, &hd_in, &out)) < 0)
        return -1;
    char line[32];
    peer_read_line(out, line, sizeof line, 20000);
    close(out);
    int port = atoi(line);
    if (port <= 0)
        return -1;
    snprintf(hd_server, sizeof hd_server, "127.0.0.1:%d", port);
    return 0;
}

static void hostile_stop(void)
{
    if (hd_in >= 0)
        close(hd_in); /* the server exits on EOF */
    if (hd_pid > 0) {
        for (int i = 0; i < 100 && waitpid(hd_pid, NULL, WNOHANG) == 0; i++)
            usleep(20 * 1000);
        kill(hd_pid, SIGKILL);
        waitpid(hd_pid, NULL, 0);
    }
    unlink(hd_log);
    rmdir(hd_dir);
}

/* Queries of type ("A", "AAAA") for name the hostile server logged (it logs before answering). */
static int hd_count(const char *type, const char *name)
{
    FILE *f = fopen(hd_log, "r");
    if (!f)
        return 0;
    char line[600], t[16], n[512];
    int c = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%15s %511s", t, n) == 2 && strcmp(t, type) == 0 && strcmp(n, name) == 0)
            c++;
    fclose(f);
    return c;
}

/* ---- helpers ---- */

static ag_client *client(const char *servers, void (*tweak)(ag_client_opts *))
{
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = ag_coro_self() ? loop : NULL;
    o.dns_servers = servers;
    if (tweak)
        tweak(&o);
    ag_client *c = NULL;
    int rc = ag_client_new(&c, &o);
    if (rc < 0)
        tap_diag("ag_client_new: %s", ag_err_name(rc));
    return c;
}

/* The addresses of name as text ("::1 127.0.0.1"); the status of ag_client_resolve. */
static int resolve_text(ag_client *c, const char *name, char *out, size_t cap)
{
    ag_addr a[32];
    size_t n = 0;
    int rc = ag_client_resolve(c, name, a, 32, &n);
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        char b[64];
        inet_ntop(a[i].family == 4 ? AF_INET : AF_INET6, a[i].addr, b, sizeof b);
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s%s", i ? " " : "", b);
    }
    return rc;
}

/* The detail a fetch of http://name:1/ fails with (the lookup fails before any connect). */
static int fetch_detail(ag_client *c, const char *name, char *detail, size_t cap)
{
    char url[400];
    snprintf(url, sizeof url, "http://%s:1/", name);
    ag_request req;
    ag_request_init(&req);
    req.url = url;
    ag_response *r = NULL;
    int rc = ag_fetch(c, &req, &r);
    snprintf(detail, cap, "%s", r ? ag_response_error_detail(r) : "");
    ag_response_free(r);
    return rc;
}

static bool wrong_address(const char *t)
{
    return strstr(t, "10.6.6.6") || strstr(t, "fd00::666");
}

typedef struct step {
    void (*fn)(void);
} step;

static void in_coro(void *arg)
{
    ((step *)arg)->fn();
}

/* fn inside a coroutine of the loop, then plain (blocking) code. */
static void both_modes(void (*fn)(void))
{
    step s = {fn};
    ag_coro_spawn(loop, in_coro, &s, NULL);
    ag_loop_run(loop);
    fn();
}

static const char *mode(void)
{
    return ag_coro_self() ? "" : "_blocking";
}

/* ---- the hostile server, name by name ---- */

enum { ANY_ERROR = 1 };

typedef struct hcase {
    const char *behaviour;
    int want;           /* 0, an AG_E* code, or ANY_ERROR */
    const char *addrs;  /* the exact answer when want is 0 */
    const char *reason; /* why that is the right outcome */
} hcase;

static const hcase hcases[] = {
    {"ok", 0, "::3 127.0.0.3", "the control case"},
    {"v4only", 0, "127.0.0.3", "NODATA for AAAA, A kept"},
    {"wrongid", AG_EDNS_TIMEOUT, NULL, "an answer with another ID is not ours"},
    {"wrongid-ok", 0, "::4 127.0.0.4", "the wrong-ID answer ignored, the right one taken"},
    {"wrongq", AG_EDNS_TIMEOUT, NULL, "an answer to another question is not ours"},
    {"wrongq-ok", 0, "::4 127.0.0.4", "the wrong-question answer ignored"},
    {"wrongowner", AG_EDNS, NULL, "a record of another owner name is no address of ours"},
    {"garbage", ANY_ERROR, NULL, "random bytes"},
    {"garbage-ok", 0, "::4 127.0.0.4", "random bytes ignored, then the answer"},
    {"short", ANY_ERROR, NULL, "a packet cut inside a record"},
    {"empty", 0, "::4 127.0.0.4", "a zero-length datagram ignored (CVE-2023-32067)"},
    {"header", ANY_ERROR, NULL, "a bare header claiming a record"},
    {"ptrloop", ANY_ERROR, NULL, "a compression pointer to itself"},
    {"tc-ok", 0,
     "::100 127.0.1.0 ::101 127.0.1.1 ::102 127.0.1.2 ::103 127.0.1.3 ::104 127.0.1.4 ::105 "
     "127.0.1.5 ::106 127.0.1.6 ::107 127.0.1.7",
     "TC then 300 records over TCP, 8 kept per family"},
    {"tc-stall", AG_EDNS_TIMEOUT, NULL, "TC then a TCP server that never answers"},
    {"tc-close", ANY_ERROR, NULL, "TC then a TCP server that closes"},
    {"tc-huge", ANY_ERROR, NULL, "TC then a TCP length of 65535 and 10 bytes"},
    {"tc-garbage", ANY_ERROR, NULL, "TC then random bytes over TCP"},
    {"tc-loop", ANY_ERROR, NULL, "TC over TCP too"},
    {"tc-late6", 0, "::3 127.0.0.3", "AAAA's TC comes after A got its answer over TCP"},
    {"tc-late4", 0, "::3 127.0.0.3", "A's TC comes after AAAA got its answer over TCP"},
    {"many", 0, "127.0.1.0 127.0.1.1 127.0.1.2 127.0.1.3 127.0.1.4 127.0.1.5 127.0.1.6 127.0.1.7",
     "300 A records in one 5 KB datagram"},
    {"many-aaaa", 0, "::100 ::101 ::102 ::103 ::104 ::105 ::106 ::107", "300 AAAA records"},
    {"cnameloop", AG_EDNS, NULL, "a CNAME loop without an address"},
    {"ttl0", 0, "::5 127.0.0.5", "TTL 0"},
    {"ttlmax", 0, "::6 127.0.0.6", "TTL 0xffffffff"},
    {"ttlbig", 0, "::7 127.0.0.7", "TTL 0x7fffffff"},
    {"otherfam", AG_EDNS, NULL, "A answered with AAAA and the other way round"},
    {"otherport", AG_EDNS_TIMEOUT, NULL, "the answer from another port is dropped"},
    {"otherport-ok", 0, "::4 127.0.0.4", "the answer from another port dropped, the right taken"},
    {"dup", 0, "::8 127.0.0.8", "the same record five times is one address"},
    {"servfail", AG_EDNS_FAIL, NULL, "SERVFAIL is a server failure"},
    {"notimp", AG_EDNS_FAIL, NULL, "NOTIMP is a server failure"},
    {"formerr", AG_EDNS_FAIL, NULL, "FORMERR is a server failure"},
    {"nxdomain", AG_EDNS, NULL, "NXDOMAIN"},
    {"never", AG_EDNS_TIMEOUT, NULL, "no answer at all"},
};

static void hostile_opts(ag_client_opts *o)
{
    o->dns_timeout_ms = 150;
    o->dns_tries = 2;
    o->connect_timeout_ms = 1500;
}

/* For the cases that end in an answer or an error of the server's: time enough that a slow
 * moment of the machine (the server is Python) is no timeout. */
static void patient_opts(ag_client_opts *o)
{
    o->dns_timeout_ms = 2000;
    o->dns_tries = 2;
    o->connect_timeout_ms = 20000;
}

static void hostile_names(void)
{
    /* Cases that end in a timeout get short ones, the others all the time they need. */
    ag_client *quick = client(hd_server, hostile_opts), *patient = client(hd_server, patient_opts);
    const char *zone = ag_coro_self() ? "loop.test" : "block.test";
    for (size_t i = 0; i < sizeof hcases / sizeof *hcases; i++) {
        const hcase *h = &hcases[i];
        char name[128], t[1024];
        snprintf(name, sizeof name, "%s.%s", h->behaviour, zone);
        ag_client *c = h->want == AG_EDNS_TIMEOUT || h->want == ANY_ERROR ? quick : patient;
        int rc = resolve_text(c, name, t, sizeof t);
        bool ok = h->want == 0           ? rc == 0 && strcmp(t, h->addrs) == 0
                  : h->want == ANY_ERROR ? rc < 0 && t[0] == 0
                                         : rc == h->want && t[0] == 0;
        /* The epoll backend (edge-triggered) never reports an idle socket writable again. */
        bool epoll_loop = ag_coro_self() && strcmp(ag_loop_backend(), "epoll") == 0;
        const char *todo = !epoll_loop                                ? NULL
                           : strncmp(h->behaviour, "tc-late", 7) == 0 ? TODO_TCP_SECOND_QUERY
                           : strcmp(h->behaviour, "tc-ok") == 0       ? TODO_TCP_RACE
                                                                      : NULL;
        check(ok && !wrong_address(t), todo, "dns_attack_hostile_%s%s: %s (%s \"%s\")",
              h->behaviour, mode(), h->reason, ag_err_name(rc), t);
    }
    ag_client_free(quick);
    ag_client_free(patient);
}

/* SERVFAIL must be reported as what it is: a lookup failure at the server, with SERVFAIL in the
 * detail, not as an unreachable server. */
static void servfail_detail(void)
{
    ag_client *c = client(hd_server, patient_opts);
    char d[512];
    int rc = fetch_detail(c, "servfail.detail.test", d, sizeof d);
    check(rc == AG_EDNS_FAIL && strstr(d, "SERVFAIL"), TODO_SERVFAIL_DETAIL,
          "dns_attack_servfail_detail%s: AG_EDNS_FAIL naming SERVFAIL (%s \"%s\")", mode(),
          ag_err_name(rc), d);
    ag_client_free(c);
    /* The same server twice: every server said SERVFAIL. */
    char two[160];
    snprintf(two, sizeof two, "%s,%s", hd_server, hd_server);
    c = client(two, patient_opts);
    rc = fetch_detail(c, "servfail.detail2.test", d, sizeof d);
    check(rc == AG_EDNS_FAIL && strstr(d, "SERVFAIL"), TODO_SERVFAIL_TWO_SERVERS,
          "dns_attack_servfail_detail_two_servers%s: AG_EDNS_FAIL naming SERVFAIL (%s \"%s\")",
          mode(), ag_err_name(rc), d);
    ag_client_free(c);
    c = client(dns_server, NULL);
    rc = fetch_detail(c, "refused.test", d, sizeof d);
    check(rc == AG_EDNS_FAIL && strstr(d, "REFUSED"), TODO_SERVFAIL_DETAIL,
          "dns_attack_refused_detail%s: dnsmasq's REFUSED named in the detail (%s \"%s\")", mode(),
          ag_err_name(rc), d);
    ag_client_free(c);
}

/* TTLs: 0 is never cached, 0xffffffff is 0 (RFC 2181 section 8), 0x7fffffff is kept. */
static void ttls(void)
{
    ag_client *c = client(hd_server, patient_opts);
    char t[256];
    const char *names[] = {"ttl0.ttl.test", "ttlmax.ttl.test", "ttlbig.ttl.test"};
    int want[] = {2, 2, 1};
    for (int i = 0; i < 3; i++) {
        int rc1 = resolve_text(c, names[i], t, sizeof t);
        int rc2 = resolve_text(c, names[i], t, sizeof t);
        int q = hd_count("A", names[i]);
        tap_ok(rc1 == 0 && rc2 == 0 && q == want[i],
               "dns_attack_ttl_%s: two lookups send %d A quer%s (%d)", names[i], want[i],
               want[i] == 1 ? "y" : "ies", q);
    }
    ag_client_free(c);
}

/* An answer that comes after the query gave up is dropped: it reaches no later lookup. */
static void late_opts(ag_client_opts *o)
{
    o->dns_timeout_ms = 300;
    o->dns_tries = 2;
    o->connect_timeout_ms = 20000;
}

static void late_answer(void)
{
    ag_client *c = client(hd_server, late_opts);
    char t[256], t2[256], t3[256];
    /* Both tries time out (at 300 and 900 ms); their answers come at 1.5 and 2.1 s. */
    int rc1 = resolve_text(c, "slow1500.late.test", t, sizeof t);
    int rc2 = resolve_text(c, "echo.10.late.test", t2, sizeof t2);
    ag_sleep_ms(2000); /* the late answers arrive now */
    int rc3 = resolve_text(c, "echo.15.late.test", t3, sizeof t3);
    tap_ok(rc1 == AG_EDNS_TIMEOUT && rc2 == 0 && strcmp(t2, "::a 127.0.0.10") == 0 && rc3 == 0 &&
               strcmp(t3, "::f 127.0.0.15") == 0,
           "dns_attack_late_answer_dropped%s: %s, then \"%s\" and \"%s\"", mode(), ag_err_name(rc1),
           t2, t3);
    ag_client_free(c);
}

/* An answer may carry records of other names (a CNAME's target): they serve this lookup only,
 * and never become another name's cached answer. */
static void cname_poison(void)
{
    ag_client *c = client(hd_server, patient_opts);
    const char *zone = ag_coro_self() ? "cp.test" : "cpb.test";
    char name[64], victim[64], t[256], t2[256];
    snprintf(name, sizeof name, "cnamepoison.%s", zone);
    snprintf(victim, sizeof victim, "victim.%s", zone);
    int rc = resolve_text(c, name, t, sizeof t);
    int rc2 = resolve_text(c, victim, t2, sizeof t2);
    int q = hd_count("A", victim);
    tap_ok(rc == 0 && strcmp(t, "::9 127.0.0.9") == 0 && rc2 == AG_EDNS && q == 1,
           "dns_attack_cname_target_not_cached%s: the alias resolves (\"%s\"), its target is asked "
           "itself (%s, %d A query)",
           mode(), t, ag_err_name(rc2), q);
    ag_client_free(c);
}

/* RFC 6761: localhost names are the loopback, whatever a DNS server says, also with the trailing
 * dot of a fully qualified name. */
static void localhost_dot(void)
{
    ag_client *c = client(hd_server, patient_opts);
    char t[256], t2[256];
    int rc = resolve_text(c, "localhost.", t, sizeof t);
    int rc2 = resolve_text(c, "LocalHost.", t2, sizeof t2);
    int q = hd_count("A", "localhost") + hd_count("AAAA", "localhost");
    check(rc == 0 && rc2 == 0 && strstr(t, "127.0.0.1") && strstr(t, "::1") && !wrong_address(t) &&
              !wrong_address(t2) && q == 0,
          TODO_LOCALHOST_DOT,
          "dns_attack_localhost_dot%s: 'localhost.' is the loopback, no query (%s \"%s\", %d "
          "queries)",
          mode(), ag_err_name(rc), t, q);
    rc = resolve_text(c, "app.localhost.", t, sizeof t);
    q = hd_count("A", "app.localhost");
    check(rc == 0 && strstr(t, "127.0.0.1") && q == 0, TODO_LOCALHOST_DOT,
          "dns_attack_sub_localhost_dot%s: 'app.localhost.' too (%s \"%s\", %d queries)", mode(),
          ag_err_name(rc), t, q);
    ag_client_free(c);
}

/* ---- many names at once, answers out of order ---- */

typedef struct job {
    ag_client *c;
    char name[80];
    int delay_ms;
    int rc;
    char text[256];
    ag_coro *co;
} job;

static void job_run(void *arg)
{
    job *j = arg;
    if (j->delay_ms)
        ag_sleep_ms(j->delay_ms);
    j->rc = resolve_text(j->c, j->name, j->text, sizeof j->text);
}

static void crossed_opts(ag_client_opts *o)
{
    o->dns_max_queries = 16;
    o->connect_timeout_ms = 20000;
}

static void crossed_nocache(ag_client_opts *o)
{
    crossed_opts(o);
    o->dns_cache_size = AG_NO_DNS_CACHE;
}

/* 255 names whose answers come back out of order (echo.K answers 127.0.0.K after (K % 5) * 20
 * ms): every lookup gets its own K. */
static void crossed_answers(void)
{
    enum { N = 255 };
    for (int pass = 0; pass < 2; pass++) {
        ag_client *c = NULL;
        ag_client_opts o;
        ag_client_opts_init(&o);
        o.loop = loop;
        o.dns_servers = hd_server;
        (pass ? crossed_nocache : crossed_opts)(&o);
        ag_client_new(&c, &o);
        job *jobs = calloc(N, sizeof *jobs);
        for (int i = 0; i < N; i++) {
            jobs[i].c = c;
            snprintf(jobs[i].name, sizeof jobs[i].name, "echo.%d.x%d.test", i + 1, pass);
            ag_coro_spawn(loop, job_run, &jobs[i], NULL);
        }
        ag_loop_run(loop);
        int right = 0;
        for (int i = 0; i < N; i++) {
            char want[64];
            snprintf(want, sizeof want, "::%x 127.0.0.%d", i + 1, i + 1);
            right += jobs[i].rc == 0 && strcmp(jobs[i].text, want) == 0;
            if (!(jobs[i].rc == 0 && strcmp(jobs[i].text, want) == 0) && right + 3 > i)
                tap_diag("%s: %s \"%s\"", jobs[i].name, ag_err_name(jobs[i].rc), jobs[i].text);
        }
        tap_ok(right == N,
               "dns_attack_out_of_order_answers%s: %d of %d names got their own address",
               pass ? "_no_cache" : "", right, N);
        ag_client_free(c);
        free(jobs);
    }
}

/* ---- lifetime: free, cancel, restart ---- */

static void lifetime_opts(ag_client_opts *o)
{
    o->dns_timeout_ms = 5000;
    o->connect_timeout_ms = 20000;
}

static ag_client *lifetime_client, *random_client;
static job *lifetime_jobs; /* the last cancelled ones end after lifetime() returns */

static void lifetime(void)
{
    enum { N = 40 };
    ag_client *c = client(hd_server, lifetime_opts);
    job *jobs = calloc(N + 1, sizeof *jobs);
    for (int i = 0; i < N; i++) {
        jobs[i].c = c;
        snprintf(jobs[i].name, sizeof jobs[i].name, "slow300.share.test");
        ag_coro_spawn(loop, job_run, &jobs[i], &jobs[i].co);
    }
    ag_sleep_ms(100);
    int busy = ag_client_free(c);
    for (int i = 0; i < N; i += 2)
        ag_coro_cancel(jobs[i].co);
    /* The same name again, right after half its waiters were cancelled. */
    jobs[N].c = c;
    snprintf(jobs[N].name, sizeof jobs[N].name, "slow300.share.test");
    ag_coro_spawn(loop, job_run, &jobs[N], &jobs[N].co);
    int ok = 0, cancelled = 0;
    for (int i = 0; i <= N; i++) {
        ag_coro_join(jobs[i].co);
        ag_coro_unref(jobs[i].co);
        ok += jobs[i].rc == 0 && strcmp(jobs[i].text, "::3 127.0.0.3") == 0;
        cancelled += jobs[i].rc == -ECANCELED;
    }
    tap_ok(busy == -EBUSY, "dns_attack_free_during_lookup: ag_client_free refuses (%s)",
           ag_err_name(busy));
    tap_ok(ok == N / 2 + 1 && cancelled == N / 2 && hd_count("A", "slow300.share.test") == 1,
           "dns_attack_cancel_half_of_shared_query: %d answered, %d cancelled, %d A query", ok,
           cancelled, hd_count("A", "slow300.share.test"));

    /* Every waiter cancelled, then the name asked again at once. */
    for (int i = 0; i < N; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].c = c;
        snprintf(jobs[i].name, sizeof jobs[i].name, "slow300.again.test");
        ag_coro_spawn(loop, job_run, &jobs[i], &jobs[i].co);
    }
    ag_sleep_ms(50);
    for (int i = 0; i < N; i++)
        ag_coro_cancel(jobs[i].co);
    char t[256];
    int rc = resolve_text(c, "slow300.again.test", t, sizeof t);
    for (int i = 0; i < N; i++) {
        ag_coro_join(jobs[i].co);
        ag_coro_unref(jobs[i].co);
    }
    tap_ok(rc == 0 && strcmp(t, "::3 127.0.0.3") == 0,
           "dns_attack_cancel_all_then_again: the name asked again right away resolves (%s "
           "\"%s\")",
           ag_err_name(rc), t);

    /* Every waiter of a dead name cancelled and nothing else asked: the loop must end. */
    for (int i = 0; i < N; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].c = c;
        snprintf(jobs[i].name, sizeof jobs[i].name, "never.%d.dead.test", i % 4);
        ag_coro_spawn(loop, job_run, &jobs[i], &jobs[i].co);
    }
    ag_sleep_ms(50);
    for (int i = 0; i < N; i++) {
        ag_coro_cancel(jobs[i].co);
        ag_coro_unref(jobs[i].co);
    }
    /* main frees the client and the jobs once the loop has ended. */
    lifetime_client = c;
    lifetime_jobs = jobs;
}

/* ---- a query nobody waits for, and the in-flight limit ---- */

static void hol_opts(ag_client_opts *o)
{
    o->dns_max_queries = 2; /* one name: its A and AAAA queries */
    o->dns_timeout_ms = 10000;
    o->dns_tries = 1;
    o->connect_timeout_ms = 1000;
}

static void hol_cancel_opts(ag_client_opts *o)
{
    hol_opts(o);
    o->connect_timeout_ms = 3000;
}

/* A lookup of a dead name gives up at its deadline (or is cancelled), but c-ares would go on for
 * 10 s: the slots it holds must not make an answerable name queued behind it time out. The order
 * is fixed by the spawns: the dead name is sent, then the live one is queued (300 ms later, well
 * before the dead one's deadline), then the dead one's lookup ends. */
static void abandoned_slot(void)
{
    for (int pass = 0; pass < 2; pass++) {
        ag_client *c = client(hd_server, pass ? hol_cancel_opts : hol_opts);
        job jobs[2];
        memset(jobs, 0, sizeof jobs);
        jobs[0].c = jobs[1].c = c;
        snprintf(jobs[0].name, sizeof jobs[0].name, "never.hol%d.test", pass);
        snprintf(jobs[1].name, sizeof jobs[1].name, "ok.hol%d.test", pass);
        ag_coro_spawn(loop, job_run, &jobs[0], &jobs[0].co);
        ag_sleep_ms(pass ? 50 : 300);
        ag_coro_spawn(loop, job_run, &jobs[1], &jobs[1].co);
        if (pass) {
            ag_sleep_ms(50);
            ag_coro_cancel(jobs[0].co);
        }
        ag_coro_join(jobs[0].co);
        ag_coro_join(jobs[1].co);
        ag_coro_unref(jobs[0].co);
        ag_coro_unref(jobs[1].co);
        check(jobs[1].rc == 0 && strcmp(jobs[1].text, "::3 127.0.0.3") == 0, TODO_ABANDONED_SLOT,
              "dns_attack_%s_query_frees_its_slot: the dead name %s, the live one queued behind "
              "it: %s \"%s\"",
              pass ? "cancelled" : "timed_out", ag_err_name(jobs[0].rc), ag_err_name(jobs[1].rc),
              jobs[1].text);
        ag_client_free(c);
    }
}

/* ---- absurd option values ---- */

static int64_t huge_value;

static void huge_negative_ttl(ag_client_opts *o)
{
    o->dns_negative_ttl_ms = huge_value;
}

static void huge_connect_timeout(ag_client_opts *o)
{
    o->connect_timeout_ms = huge_value;
}

static void huge_dns(ag_client_opts *o)
{
    o->dns_timeout_ms = INT64_MAX;
    o->dns_tries = UINT32_MAX;
    o->connect_timeout_ms = 300;
}

static void many_tries(ag_client_opts *o)
{
    o->dns_timeout_ms = 1;
    o->dns_tries = 1000;
    o->connect_timeout_ms = 300;
}

static void absurd_values(void)
{
    char t[256];
    /* 317 years of negative caching: an NXDOMAIN must be asked once. */
    huge_value = 10000000000000LL;
    ag_client *c = client(hd_server, huge_negative_ttl);
    /* A name per mode: the server's log counts both. */
    const char *nx = ag_coro_self() ? "nxdomain.neg.test" : "nxdomain.negb.test";
    int rc1 = resolve_text(c, nx, t, sizeof t);
    int rc2 = resolve_text(c, nx, t, sizeof t);
    int q = hd_count("A", nx);
    check(rc1 == AG_EDNS && rc2 == AG_EDNS && q == 1, TODO_HUGE_MS,
          "dns_attack_huge_negative_ttl%s: NXDOMAIN remembered, %d A quer%s (want 1)", mode(), q,
          q == 1 ? "y" : "ies");
    ag_client_free(c);
    /* INT64_MAX ms of connect timeout is no deadline, not one in the past. */
    huge_value = INT64_MAX;
    c = client(hd_server, huge_connect_timeout);
    int rc = resolve_text(c, "slow100.huge.test", t, sizeof t);
    check(rc == 0 && strcmp(t, "::3 127.0.0.3") == 0, TODO_HUGE_MS,
          "dns_attack_huge_connect_timeout%s: a 100 ms answer is waited for (%s \"%s\")", mode(),
          ag_err_name(rc), t);
    ag_client_free(c);
    /* Huge per-try timeout and tries: the connect timeout still ends the lookup. */
    c = client(blackhole, huge_dns);
    int64_t t0 = ag_now_ns();
    rc = resolve_text(c, "both.test", t, sizeof t);
    int64_t el = ag_now_ns() - t0;
    tap_ok(rc == AG_EDNS_TIMEOUT && el >= 300 * 1000000LL,
           "dns_attack_huge_dns_timeout_and_tries%s: ended by the connect timeout (%s after %lld "
           "ms)",
           mode(), ag_err_name(rc), (long long)(el / 1000000));
    ag_client_free(c);
    c = client(blackhole, many_tries);
    rc = resolve_text(c, "both.test", t, sizeof t);
    tap_ok(rc == AG_EDNS_TIMEOUT, "dns_attack_1000_tries_of_1ms%s: %s", mode(), ag_err_name(rc));
    ag_client_free(c);
}

static void servers_port(void)
{
    const char *bad[] = {"127.0.0.1:65536", "127.0.0.1:65589", "[::1]:99999"};
    int refused = 0;
    for (int i = 0; i < 3; i++) {
        ag_client_opts o;
        ag_client_opts_init(&o);
        o.dns_servers = bad[i];
        ag_client *c = NULL;
        int rc = ag_client_new(&c, &o);
        refused += rc == -EINVAL && !c;
        if (rc != -EINVAL)
            tap_diag("dns_servers \"%s\": %s", bad[i], ag_err_name(rc));
        ag_client_free(c);
    }
    check(refused == 3, TODO_SERVERS_PORT,
          "dns_attack_servers_port_out_of_range: %d of 3 refused with -EINVAL", refused);
}

static void nocache_opts(ag_client_opts *o)
{
    o->dns_cache_size = AG_NO_DNS_CACHE;
    o->dns_timeout_ms = 5000; /* a retry would be a second query in the log */
    o->connect_timeout_ms = 20000;
}

/* The header: "concurrent lookups of a name share one query", cache or not. */
static void nocache_share(void)
{
    enum { N = 50 };
    ag_client *c = client(hd_server, nocache_opts);
    job *jobs = calloc(N, sizeof *jobs);
    for (int i = 0; i < N; i++) {
        jobs[i].c = c;
        snprintf(jobs[i].name, sizeof jobs[i].name, "slow100.nocache.test");
        ag_coro_spawn(loop, job_run, &jobs[i], &jobs[i].co);
    }
    int ok = 0;
    for (int i = 0; i < N; i++) {
        ag_coro_join(jobs[i].co);
        ag_coro_unref(jobs[i].co);
        ok += jobs[i].rc == 0;
    }
    int q = hd_count("A", "slow100.nocache.test");
    check(ok == N && q == 1, TODO_NO_CACHE_SHARE,
          "dns_attack_no_cache_shares_inflight_query: %d lookups at once, %d A queries (want 1)", N,
          q);
    ag_client_free(c);
    free(jobs);
}

/* ---- floods against dnsmasq ---- */

static void flood_opts(ag_client_opts *o)
{
    o->connect_timeout_ms = 120000;
}

static void flood(void)
{
    enum { N = 10000 };
    ag_client *c = NULL;
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.dns_servers = dns_server;
    flood_opts(&o);
    ag_client_new(&c, &o);
    job *jobs = calloc(N, sizeof *jobs);
    for (int same = 0; same < 2; same++) {
        ag_dns_stats s0, s;
        ag_client_dns_stats(c, &s0);
        for (int i = 0; i < N; i++) {
            memset(&jobs[i], 0, sizeof jobs[i]);
            jobs[i].c = c;
            if (same)
                snprintf(jobs[i].name, sizeof jobs[i].name, "same.flood.bulk.test");
            else
                snprintf(jobs[i].name, sizeof jobs[i].name, "f%d.flood.bulk.test", i);
            ag_coro_spawn(loop, job_run, &jobs[i], NULL);
        }
        ag_loop_run(loop);
        int ok = 0;
        for (int i = 0; i < N; i++)
            ok += jobs[i].rc == 0 && strcmp(jobs[i].text, "127.0.0.1") == 0;
        ag_client_dns_stats(c, &s);
        unsigned long long q = (unsigned long long)(s.queries - s0.queries);
        tap_ok(ok == N && q == (same ? 2u : 2u * N),
               "dns_attack_flood_%s: %d of %d resolved, %llu queries", same ? "same_name" : "names",
               ok, N, q);
    }
    /* The loop ended: nothing of the resolver is left armed. */
    tap_ok(ag_loop_timeout_ms(loop) < 0 && ag_client_free(c) == 0,
           "dns_attack_flood_leaves_nothing_armed");
    free(jobs);
}

static void churn_opts(ag_client_opts *o)
{
    o->dns_cache_size = 1;
    o->dns_max_queries = 1;
    o->ip_family = AG_IP_V4;
    o->connect_timeout_ms = 60000;
}

static void lru_opts(ag_client_opts *o)
{
    o->dns_cache_size = 2;
    o->ip_family = AG_IP_V4;
}

static void cache_churn(void)
{
    enum { N = 2000 };
    ag_client *c = client(dns_server, churn_opts);
    job *jobs = calloc(N, sizeof *jobs);
    for (int i = 0; i < N; i++) {
        jobs[i].c = c;
        snprintf(jobs[i].name, sizeof jobs[i].name, "c%d.churn.bulk.test", i % 700);
        ag_coro_spawn(loop, job_run, &jobs[i], &jobs[i].co);
    }
    int ok = 0;
    for (int i = 0; i < N; i++) {
        ag_coro_join(jobs[i].co);
        ag_coro_unref(jobs[i].co);
        ok += jobs[i].rc == 0 && strcmp(jobs[i].text, "127.0.0.1") == 0;
    }
    ag_dns_stats s;
    ag_client_dns_stats(c, &s);
    tap_ok(ok == N && s.entries <= 1,
           "dns_attack_cache_of_one_one_query_at_a_time: %d of %d resolved, %llu entries left", ok,
           N, (unsigned long long)s.entries);
    ag_client_free(c);
    free(jobs);

    /* LRU: x1 x2 x1 x3 evicts x2, not x1. */
    c = client(dns_server, lru_opts);
    char t[64];
    const char *seq[] = {"x1.lru.bulk.test", "x2.lru.bulk.test", "x1.lru.bulk.test",
                         "x3.lru.bulk.test", "x1.lru.bulk.test", "x2.lru.bulk.test"};
    int hit[6];
    for (int i = 0; i < 6; i++) {
        ag_dns_stats a, b;
        ag_client_dns_stats(c, &a);
        resolve_text(c, seq[i], t, sizeof t);
        ag_client_dns_stats(c, &b);
        hit[i] = (int)(b.cache_hits - a.cache_hits);
    }
    tap_ok(!hit[0] && !hit[1] && hit[2] && !hit[3] && hit[4] && !hit[5],
           "dns_attack_cache_lru_order: hits %d %d %d %d %d %d (want 0 0 1 0 1 0)", hit[0], hit[1],
           hit[2], hit[3], hit[4], hit[5]);
    ag_client_free(c);
}

/* ---- no free file descriptor ---- */

static void fd_opts(ag_client_opts *o)
{
    o->dns_timeout_ms = 300;
    o->dns_tries = 2;
    o->connect_timeout_ms = 1500;
}

static void fd_exhaustion(void)
{
    ag_client *c = client(dns_server, fd_opts);
    struct rlimit old, low;
    getrlimit(RLIMIT_NOFILE, &old);
    low = old;
    low.rlim_cur = 256;
    setrlimit(RLIMIT_NOFILE, &low);
    int fds[256], n = 0;
    for (int fd; n < 256 && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;)
        fds[n++] = fd;
    char t[64], d[512];
    char name[64];
    snprintf(name, sizeof name, "emfile%s.bulk.test", mode());
    /* The client owns none of the descriptors: it tries again after pauses, until the connect
     * timeout, and then says what was missing. */
    int rc = fetch_detail(c, name, d, sizeof d);
    tap_ok(rc == -EMFILE && strstr(d, "out of file descriptors") && strstr(d, "DNS socket"),
           "dns_attack_no_free_fd%s: a clear error (%s \"%s\")", mode(), ag_err_name(rc), d);
    while (n > 0)
        close(fds[--n]);
    setrlimit(RLIMIT_NOFILE, &old);
    rc = resolve_text(c, name, t, sizeof t);
    tap_ok(rc == 0 && strcmp(t, "127.0.0.1") == 0,
           "dns_attack_fd_freed_resolves_again%s: the same name resolves (%s \"%s\")", mode(),
           ag_err_name(rc), t);
    ag_client_free(c);
}

/* ---- malformed option strings and names ---- */

static unsigned rnd_state = 12345;

static unsigned rnd(void)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (rnd_state >> 16) & 0x7fff;
}

/* A string made mostly of the characters the option grammars care about. */
static void rnd_string(char *out, size_t cap)
{
    static const char alpha[] = "0123456789abcdef.:[],*+-_% xyz.:[],127.0.0.1::1";
    static const char *const pieces[] = {"127.0.0.1", "[::1]", "::1", ":80", ":*:", "65535",
                                         "99999",     ",",     "[",   "]",   ":",   "x.test",
                                         "1.2.3",     "",      "::",  "%lo", "0",   "-1"};
    size_t len = rnd() % (cap - 1 < 60 ? cap - 1 : 60), i = 0;
    while (i < len) {
        if (rnd() % 3 == 0) {
            const char *p = pieces[rnd() % (sizeof pieces / sizeof *pieces)];
            while (*p && i < len)
                out[i++] = *p++;
        } else {
            unsigned r = rnd();
            out[i++] = r % 17 == 0 ? (char)(1 + r % 255) : alpha[r % (sizeof alpha - 1)];
        }
    }
    out[i] = 0;
}

static void fuzz_options(void)
{
    enum { N = 3000 };
    int bad = 0, accepted = 0;
    char s[128];
    for (int i = 0; i < 3 * N; i++) {
        rnd_string(s, sizeof s);
        const char *list[] = {s, NULL};
        ag_client_opts o;
        ag_client_opts_init(&o);
        /* No lookup is made with these servers: a random address may be off this machine. */
        if (i % 3 == 0)
            o.dns_servers = s;
        else if (i % 3 == 1)
            o.resolve = list;
        else
            o.connect_to = list;
        ag_client *c = NULL;
        int rc = ag_client_new(&c, &o);
        if (rc != 0 && rc != -EINVAL) {
            if (bad++ < 3)
                tap_diag("option %d \"%s\": %s", i % 3, s, ag_err_name(rc));
        }
        accepted += rc == 0;
        if ((rc == 0) != (c != NULL))
            bad++;
        ag_client_free(c);
    }
    tap_ok(bad == 0, "dns_attack_fuzz_option_strings: %d strings, %d accepted, %d wrong results",
           3 * N, accepted, bad);
}

static void fuzz_opts(ag_client_opts *o)
{
    o->dns_timeout_ms = 100;
    o->dns_tries = 1;
    o->connect_timeout_ms = 2000;
}

/* Random names against the hostile server (which answers NXDOMAIN to most): only the resolver's
 * own results, never an address of the wrong kind. */
static void fuzz_names(void)
{
    enum { N = 1500 };
    ag_client *c = client(hd_server, fuzz_opts);
    int bad = 0;
    char name[400], t[1024];
    for (int i = 0; i < N; i++) {
        size_t len = 1 + rnd() % (i % 10 == 0 ? 300 : 40);
        for (size_t k = 0; k < len; k++) {
            unsigned r = rnd();
            name[k] = r % 23 == 0   ? (char)(1 + r % 255)
                      : r % 7 == 0  ? '.'
                      : r % 31 == 0 ? '\\'
                                    : (char)('a' + r % 26);
        }
        name[len] = 0;
        int rc = resolve_text(c, name, t, sizeof t);
        if ((rc != 0 && rc != AG_EDNS && rc != AG_EDNS_FAIL && rc != AG_EDNS_TIMEOUT) ||
            wrong_address(t)) {
            if (bad++ < 3)
                tap_diag("name %d: %s \"%s\"", i, ag_err_name(rc), t);
        }
    }
    tap_ok(bad == 0, "dns_attack_fuzz_names%s: %d random names, %d wrong results", mode(), N, bad);
    ag_client_free(c);
}

/* Lengths and shapes at the edges of RFC 1035 (dnsmasq answers every name under bulk.test). */
static void name_edges(void)
{
    ag_client *c = client(dns_server, NULL);
    char name[2048], t[256];
    struct {
        int label, total; /* first label's length, or the whole name's */
        int want;
    } lens[] = {{63, 0, 0},        {64, 0, AG_EDNS},  {0, 253, 0},
                {0, 254, AG_EDNS}, {0, 255, AG_EDNS}, {0, 1100, AG_EDNS}};
    int right = 0;
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        if (lens[i].label) {
            memset(name, 'a', (size_t)lens[i].label);
            snprintf(name + lens[i].label, sizeof name - (size_t)lens[i].label, ".bulk.test");
        } else {
            /* Labels of 50 then the tail, total characters without a trailing dot. */
            int left = lens[i].total - 10; /* ".bulk.test" */
            char *p = name;
            while (left > 0) {
                int l = left > 50 ? 50 : left;
                if (left - l == 1)
                    l--;
                memset(p, 'b', (size_t)l);
                p += l;
                left -= l;
                if (left > 0) {
                    *p++ = '.';
                    left--;
                }
            }
            snprintf(p, sizeof name - (size_t)(p - name), ".bulk.test");
        }
        int rc = resolve_text(c, name, t, sizeof t);
        bool ok = lens[i].want == 0 ? rc == 0 && strcmp(t, "127.0.0.1") == 0 : rc == lens[i].want;
        right += ok;
        if (!ok)
            tap_diag("label %d total %zu: %s", lens[i].label, strlen(name), ag_err_name(rc));
    }
    tap_ok(right == (int)(sizeof lens / sizeof *lens),
           "dns_attack_name_lengths%s: labels of 63/64, names of 253/254/255/1100 (%d right)",
           mode(), right);
    struct {
        const char *name;
        int want;
    } shapes[] = {{"a..bulk.test", AG_EDNS},
                  {".bulk.test", AG_EDNS},
                  {"bulk.test.", 0},
                  {"bulk.test..", AG_EDNS},
                  {"BULK.TEST.", 0},
                  {"..", AG_EDNS},
                  {"a\x80.bulk.test", AG_EDNS},
                  {"\xc3\xa9t\xc3\xa9.bulk.test", AG_EDNS}};
    right = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        int rc = resolve_text(c, shapes[i].name, t, sizeof t);
        bool ok =
            shapes[i].want == 0 ? rc == 0 && strcmp(t, "127.0.0.1") == 0 : rc == shapes[i].want;
        right += ok;
        if (!ok)
            tap_diag("\"%s\": %s", shapes[i].name, ag_err_name(rc));
    }
    tap_ok(right == (int)(sizeof shapes / sizeof *shapes),
           "dns_attack_name_shapes%s: empty labels, trailing dots, raw 8-bit bytes (%d right)",
           mode(), right);
    size_t n = 9;
    ag_addr one[1];
    int rc0 = ag_client_resolve(c, "both.test", NULL, 0, &n);
    size_t n0 = n;
    int rc1 = ag_client_resolve(c, "both.test", one, 1, &n);
    tap_ok(rc0 == 0 && n0 == 0 && rc1 == 0 && n == 1 && one[0].family == 6,
           "dns_attack_resolve_small_max%s: room for 0 then 1 address (%zu, %zu)", mode(), n0, n);
    ag_client_free(c);

    /* A zero-filled options struct (no _init) is the defaults. */
    ag_client_opts z;
    memset(&z, 0, sizeof z);
    z.loop = ag_coro_self() ? loop : NULL;
    z.dns_servers = dns_server;
    c = NULL;
    int rc = ag_client_new(&c, &z);
    int rr = c ? resolve_text(c, "both.test", t, sizeof t) : rc;
    tap_ok(rc == 0 && rr == 0 && strcmp(t, "::1 127.0.0.1") == 0,
           "dns_attack_zero_filled_options%s: %s \"%s\"", mode(), ag_err_name(rr), t);
    ag_client_free(c);
}

/* ---- a random sequence of lookups and cancels ---- */

static void random_opts(ag_client_opts *o)
{
    o->dns_timeout_ms = 2000;
    o->dns_tries = 2;
    o->connect_timeout_ms = 20000;
    o->dns_max_queries = 3;
    o->dns_cache_size = 2;
    o->dns_negative_ttl_ms = 30;
}

/* Bursts of lookups of a few names that answer in every way but silence, with random cancels,
 * against a tiny cache and three query slots: every lookup of an answering name that was not
 * cancelled resolves, and the end leaves nothing behind. */
static void random_sequence(void)
{
    enum { NJ = 1500 };
    static const char *const beh[] = {"ok",       "slow200", "servfail", "nxdomain",   "tc-ok",
                                      "tc-late6", "slow50",  "ttl0",     "wrongid-ok", "dup"};
    ag_client *c = client(hd_server, random_opts);
    job *jobs = calloc(NJ, sizeof *jobs);
    int64_t end = ag_now_ns() + 3000000000LL;
    int k = 0;
    rnd_state = 4242;
    while (ag_now_ns() < end && k < NJ) {
        int burst = 1 + (int)(rnd() % 20);
        for (int b = 0; b < burst && k < NJ; b++, k++) {
            jobs[k].c = c;
            snprintf(jobs[k].name, sizeof jobs[k].name, "%s.r%u.test", beh[rnd() % 10], rnd() % 8);
            ag_coro_spawn(loop, job_run, &jobs[k], &jobs[k].co);
        }
        for (unsigned n = rnd() % 10; n > 0 && k > 0; n--)
            ag_coro_cancel(jobs[rnd() % (unsigned)k].co);
        ag_sleep_ms(rnd() % 40);
    }
    int bad = 0, answered = 0;
    for (int i = 0; i < k; i++) {
        ag_coro_join(jobs[i].co);
        ag_coro_unref(jobs[i].co);
        int rc = jobs[i].rc;
        bool answering = strncmp(jobs[i].name, "servfail.", 9) != 0 &&
                         strncmp(jobs[i].name, "nxdomain.", 9) != 0;
        bool ok = rc == -ECANCELED || (answering ? rc == 0 : rc == AG_EDNS_FAIL || rc == AG_EDNS);
        answered += rc == 0;
        if (!ok && bad++ < 3)
            tap_diag("%s: %s \"%s\"", jobs[i].name, ag_err_name(rc), jobs[i].text);
    }
    tap_ok(bad == 0 && answered > 0,
           "dns_attack_random_lookups_and_cancels: %d lookups, %d answered, %d wrong", k, answered,
           bad);
    random_client = c;
    free(jobs);
}

int main(int argc, char **argv)
{
    dns_server = getenv("AG_DNS_SERVER");
    blackhole = getenv("AG_DNS_BLACKHOLE");
    if (!dns_server || !blackhole || argc < 2) {
        printf("1..0 # SKIP needs with-servers --dnsmasq and the path of hostile_dns.py\n");
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    alarm(RUN_BOUND_S);
    if (hostile_start(argv[1]) < 0) {
        printf("1..0 # SKIP hostile_dns.py did not start\n");
        hostile_stop();
        return 0;
    }
    ag_loop_new(&loop, NULL);

    both_modes(hostile_names);
    both_modes(servfail_detail);
    both_modes(localhost_dot);
    both_modes(late_answer);
    both_modes(cname_poison);
    both_modes(absurd_values);
    both_modes(name_edges);
    both_modes(fd_exhaustion);
    both_modes(fuzz_names);
    step s = {ttls};
    ag_coro_spawn(loop, in_coro, &s, NULL);
    ag_loop_run(loop);
    crossed_answers();
    s.fn = lifetime;
    ag_coro_spawn(loop, in_coro, &s, NULL);
    ag_loop_run(loop);
    tap_ok(ag_loop_timeout_ms(loop) < 0 && ag_loop_run_once(loop, 0) == 0 &&
               ag_client_free(lifetime_client) == 0,
           "dns_attack_cancelled_dead_names_leave_loop_idle: no timer, no coroutine, client freed");
    free(lifetime_jobs);
    s.fn = random_sequence;
    ag_coro_spawn(loop, in_coro, &s, NULL);
    ag_loop_run(loop);
    tap_ok(ag_loop_timeout_ms(loop) < 0 && ag_client_free(random_client) == 0,
           "dns_attack_random_sequence_leaves_nothing: no timer armed, client freed");
    s.fn = abandoned_slot;
    ag_coro_spawn(loop, in_coro, &s, NULL);
    ag_loop_run(loop);
    s.fn = nocache_share;
    ag_coro_spawn(loop, in_coro, &s, NULL);
    ag_loop_run(loop);
    s.fn = cache_churn;
    ag_coro_spawn(loop, in_coro, &s, NULL);
    ag_loop_run(loop);
    flood();
    servers_port();
    fuzz_options();

    tap_ok(ag_loop_free(loop) == 0, "dns_attack_loop_freed");
    hostile_stop();
    return tap_done();
}
