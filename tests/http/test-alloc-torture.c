/* test-alloc-torture.c: every allocation of a normal exchange (a name looked up by c-ares, a
 * redirect that sets a cookie, https verified against a test CA, a gzip-coded chunked body) made to
 * fail in turn, as curl's torture tests do: each run must end in a clean error or a whole
 * success, with no crash, no hang and no leak.
 *
 * The program replaces malloc and its family (glibc lets a program do so: libc, OpenSSL, c-ares,
 * zlib and libpsl then call these), forwarding to glibc's own allocator and counting. Armed with
 * N, the Nth allocation call fails with ENOMEM. Every N runs in a child forked from a parent that
 * made the exchange twice already, so that each child starts from the same warm state (OpenSSL,
 * c-ares and libpsl initialise themselves once, on first use) and a crash or a hang kills one
 * child, not the sweep. A table of the live blocks gives the leak check without a sanitizer.
 *
 * AG_TORTURE_FULL=1 runs every N; the default is a sample (the first 200, then every k-th, k
 * chosen for about 400 runs). AG_TORTURE_N=n runs that N alone and says what happened, with a
 * backtrace of the failed allocation and of each block left behind (AG_TORTURE_TRACE=1 records
 * them in a sweep too, slowly). */
#include "asyncget.h"
#include "tests/http/util.h"
#include "tests/tap.h"

#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <execinfo.h>
#include <malloc.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define TORTURE_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define TORTURE_SANITIZED 1
#endif
#endif

#ifndef TORTURE_SANITIZED

/* ---- the allocator ---------------------------------------------------------------------- */

extern void *__libc_malloc(size_t size);
extern void __libc_free(void *p);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);

/* Live blocks: open addressing with linear probing, keyed by address. The table is static (no
 * allocation can make it) and big enough for the peak of an https exchange many times over. */
/* The build hides symbols by default; these must be seen by every library to replace glibc's. */
#define REPLACES __attribute__((visibility("default")))

#define LIVE_BITS 16
#define LIVE_SIZE (1u << LIVE_BITS)
#define BT_DEPTH  24
#define BT_SLOTS  (1u << 16)

typedef struct live_block {
    uintptr_t addr; /* 0: empty */
    void *site;     /* the caller of malloc */
    uint64_t serial;
} live_block;

static live_block live[LIVE_SIZE];
static size_t nlive, nlive_peak;
static bool live_overflow;
static uint64_t serial;

/* Arming: while counting, every allocation call has a number from 1; fail_at's fails. */
static bool counting;
static long calls;
static long fail_at;
static bool fired;
static void *fired_site;
/* AG_TORTURE_TRACE: a backtrace per allocation of the armed run (by serial from arm_serial),
 * and of the failed one. backtrace() is called once before arming, so that it has loaded what
 * it needs and does not allocate here. */
static bool tracing;
static uint64_t arm_serial;
static void *bt_store[BT_SLOTS][BT_DEPTH];
#define FIRED_DEPTH 64 /* deep enough to see who read the CA file */
static void *fired_bt[FIRED_DEPTH];
static int fired_depth;
static bool in_trace;

static size_t slot_of(uintptr_t a)
{
    return (size_t)(((uint64_t)a >> 4) * 0x9E3779B97F4A7C15ull >> (64 - LIVE_BITS));
}

static void track_add(void *p, void *site)
{
    if (!p)
        return;
    if (nlive >= LIVE_SIZE - LIVE_SIZE / 8) {
        live_overflow = true;
        return;
    }
    size_t i = slot_of((uintptr_t)p);
    while (live[i].addr)
        i = (i + 1) & (LIVE_SIZE - 1);
    live[i].addr = (uintptr_t)p;
    live[i].site = site;
    live[i].serial = ++serial;
    if (++nlive > nlive_peak)
        nlive_peak = nlive;
    if (tracing && counting && !in_trace && serial - arm_serial < BT_SLOTS) {
        in_trace = true;
        int n = backtrace(bt_store[serial - arm_serial], BT_DEPTH);
        if (n < BT_DEPTH)
            bt_store[serial - arm_serial][n] = NULL;
        in_trace = false;
    }
}

static live_block *track_find(void *p)
{
    size_t i = slot_of((uintptr_t)p);
    while (live[i].addr != (uintptr_t)p) {
        if (!live[i].addr)
            return NULL;
        i = (i + 1) & (LIVE_SIZE - 1);
    }
    return &live[i];
}

static void track_rebirth(void *p, uint64_t born)
{
    live_block *b = track_find(p);
    if (b)
        b->serial = born;
}

/* Forgets p; returns its serial, 0 when it was not ours (allocated before tracking could see
 * it). Backward-shift deletion keeps every probe chain unbroken without tombstones. */
static uint64_t track_del(void *p)
{
    live_block *b = track_find(p);
    if (!b)
        return 0;
    uint64_t born = b->serial;
    size_t i = (size_t)(b - live);
    nlive--;
    size_t hole = i;
    for (;;) {
        i = (i + 1) & (LIVE_SIZE - 1);
        if (!live[i].addr)
            break;
        size_t home = slot_of(live[i].addr);
        /* Move the entry into the hole unless its home lies cyclically in (hole, i]. */
        bool stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
        if (!stays) {
            live[hole] = live[i];
            hole = i;
        }
    }
    live[hole].addr = 0;
    return born;
}

/* The clean run's call sites by call number, to choose the sample (see main), and which of its
 * calls were made while the CA file was read: OpenSSL keeps what it decoded there for good. */
#define SITES_MAX (1 << 16)
static bool recording;
static void *clean_site[SITES_MAX];
static bool clean_ca_load[SITES_MAX];
/* The code of a function: [from, to). */
typedef struct code_range {
    uintptr_t from, to;
} code_range;

static code_range ca_load; /* PEM_X509_INFO_read_bio_ex, which reads a CA file */
static code_range ctx_new; /* SSL_CTX_new_ex */

static void range_of(code_range *r, void *fn)
{
    Dl_info d;
    const ElfW(Sym) *sym = NULL;
    if (dladdr1(fn, &d, (void **)&sym, RTLD_DL_SYMENT) && d.dli_saddr && sym) {
        r->from = (uintptr_t)d.dli_saddr;
        r->to = r->from + sym->st_size;
    }
}

/* Whether a frame of this backtrace is in the function. */
static bool bt_in(const code_range *r, void *const *bt, int n)
{
    for (int i = 0; i < n; i++)
        if ((uintptr_t)bt[i] > r->from && (uintptr_t)bt[i] < r->to)
            return true;
    return false;
}

static bool inject(void *site)
{
    if (!counting)
        return false;
    if (++calls < SITES_MAX && recording) {
        clean_site[calls] = site;
        if (!in_trace) {
            in_trace = true;
            void *bt[FIRED_DEPTH];
            clean_ca_load[calls] = bt_in(&ca_load, bt, backtrace(bt, FIRED_DEPTH));
            in_trace = false;
        }
    }
    if (calls != fail_at)
        return false;
    fired = true;
    fired_site = site;
    if (!in_trace) { /* one backtrace per run: it names a known fault (see child) */
        in_trace = true;
        fired_depth = backtrace(fired_bt, FIRED_DEPTH);
        in_trace = false;
    }
    errno = ENOMEM;
    return true;
}

REPLACES void *malloc(size_t size)
{
    void *site = __builtin_return_address(0);
    if (inject(site))
        return NULL;
    void *p = __libc_malloc(size);
    track_add(p, site);
    return p;
}

REPLACES void free(void *p)
{
    if (!p)
        return;
    track_del(p);
    __libc_free(p);
}

REPLACES void *calloc(size_t n, size_t size)
{
    void *site = __builtin_return_address(0);
    if (inject(site))
        return NULL;
    void *p = __libc_calloc(n, size);
    track_add(p, site);
    return p;
}

REPLACES void *realloc(void *p, size_t size)
{
    void *site = __builtin_return_address(0);
    if (p && size == 0) {
        track_del(p);
        return __libc_realloc(p, 0);
    }
    if (inject(site))
        return NULL;
    void *q = __libc_realloc(p, size);
    if (q) {
        /* A block that moves keeps its birth: it is the same block to the leak check. */
        uint64_t born = p ? track_del(p) : 0;
        track_add(q, site);
        if (born)
            track_rebirth(q, born);
    }
    return q;
}

REPLACES void *reallocarray(void *p, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, total);
}

static void *aligned(size_t align, size_t size, void *site)
{
    if (inject(site))
        return NULL;
    void *p = __libc_memalign(align, size);
    track_add(p, site);
    return p;
}

REPLACES void *memalign(size_t align, size_t size)
{
    return aligned(align, size, __builtin_return_address(0));
}

REPLACES void *aligned_alloc(size_t align, size_t size)
{
    return aligned(align, size, __builtin_return_address(0));
}

REPLACES int posix_memalign(void **out, size_t align, size_t size)
{
    if (align < sizeof(void *) || (align & (align - 1)))
        return EINVAL;
    int saved = errno;
    void *p = aligned(align, size, __builtin_return_address(0));
    errno = saved; /* posix_memalign reports through its result, not errno */
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

REPLACES void *valloc(size_t size)
{
    return aligned((size_t)sysconf(_SC_PAGESIZE), size, __builtin_return_address(0));
}

REPLACES void *pvalloc(size_t size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return aligned(page, (size + page - 1) & ~(page - 1), __builtin_return_address(0));
}

static void arm(long n)
{
    calls = 0;
    fail_at = n;
    fired = false;
    fired_site = NULL;
    fired_depth = 0;
    arm_serial = serial;
    counting = true;
}

static void disarm(void)
{
    counting = false;
}

/* ---- the exchange ------------------------------------------------------------------------ */

/* What one run of the exchange did; the child's copy lives in memory shared with the parent,
 * so that a crash still leaves its stage and the failed allocation behind. */
enum stage {
    ST_START,
    ST_LOOP,
    ST_JAR,
    ST_CLIENT,
    ST_SPAWN,
    ST_RUN,
    ST_A,
    ST_B,
    ST_C,
    ST_FREE,
    ST_END
};
static const char *const stage_names[] = {"start",
                                          "ag_loop_new",
                                          "ag_cookie_jar_new",
                                          "ag_client_new",
                                          "ag_coro_spawn",
                                          "ag_loop_run",
                                          "fetch A (redirect to https)",
                                          "fetch B (gzip echo)",
                                          "fetch C (https again)",
                                          "teardown",
                                          "end"};

#define MAX_FIELDS 32

typedef struct outcome {
    int stage;
    int setup_rc; /* ag_loop_new, ag_cookie_jar_new, ag_client_new or ag_coro_spawn failed */
    int rc_a, rc_b, rc_c;
    bool ran_a, ran_b, ran_c;
    bool wrong; /* a success whose data is not the clean run's */
    char detail_a[160], detail_b[160], detail_c[160];
    char lasting[256];                   /* a request failed after the failed allocation was over */
    bool lasting_tls; /* with AG_ETLS */ /* ag_response_error_detail of a failure */
    char why[512];
    long calls;
    /* The head fields of each response (names, and values but Date's), to compare with the
     * clean run's. */
    int nfields_a, nfields_b;
    char fields_a[MAX_FIELDS][96], fields_b[MAX_FIELDS][96];
} outcome;

typedef struct expected {
    char url_a[512], url_a_final[256], url_b[256];
    char *body_a;
    size_t body_a_len;
    char *body_b_cookie, *body_b_nocookie; /* with and without the cookie A stores */
    size_t body_b_cookie_len, body_b_nocookie_len;
    outcome clean; /* the fields of the clean run */
} expected;

static expected E;
static const char *dns_server, *ca_file;
static char connect_to_rule[128];

typedef struct run {
    outcome *o;
    ag_client *client;
    ag_cookie_jar *jar;
    size_t jar_before_b;
    /* The failed allocation was over before B (C) began: only one allocation fails per run, so
     * the request must succeed; a failure then is a lasting effect of the earlier one (a
     * poisoned cache, pool or TLS context). */
    bool b_after, c_after;
} run;

static void say(outcome *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(outcome *o, const char *fmt, ...)
{
    o->wrong = true;
    size_t len = strlen(o->why);
    if (len + 2 >= sizeof o->why)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->why + len, sizeof o->why - len, fmt, ap);
    va_end(ap);
}

static int fields_of(const ag_response *resp, char (*out)[96])
{
    size_t n = ag_response_header_count(resp);
    int k = 0;
    for (size_t i = 0; i < n && k < MAX_FIELDS; i++) {
        const char *name, *value;
        if (ag_response_header_at(resp, i, &name, &value) < 0)
            break;
        snprintf(out[k++], 96, "%s: %s", name, strcasecmp(name, "date") ? value : "*");
    }
    return k;
}

static void compare_fields(outcome *o, const char *which, int n, char (*got)[96], int clean_n,
                           char (*clean)[96])
{
    if (n != clean_n) {
        say(o, "%s: %d header fields, the clean run had %d; ", which, n, clean_n);
        return;
    }
    for (int i = 0; i < n; i++)
        if (strcmp(got[i], clean[i]))
            say(o, "%s: field %d is \"%s\", the clean run's \"%s\"; ", which, i, got[i], clean[i]);
}

/* A failed request must come back as a response that carries its error, except when even that
 * could not be allocated (-ENOMEM and no response). */
static void check_failure(outcome *o, const char *which, int rc, const ag_response *resp)
{
    if (!resp) {
        if (rc != -ENOMEM)
            say(o, "%s: no response with %s; ", which, ag_err_name(rc));
        return;
    }
    if (ag_response_error(resp) != rc)
        say(o, "%s: returned %s, the response says %s; ", which, ag_err_name(rc),
            ag_err_name(ag_response_error(resp)));
}

/* A request that failed though the failed allocation was over before it began. */
static void lasting(outcome *o, const char *which, int rc, const ag_response *resp)
{
    snprintf(o->lasting, sizeof o->lasting,
             "%s: %s (%s) though the failed allocation was over before it began; ", which,
             ag_err_name(rc), resp ? ag_response_error_detail(resp) : "no response");
    o->lasting_tls = rc == AG_ETLS || rc == AG_ETLS_VERIFY || rc == AG_ETLS_UNTRUSTED ||
                     rc == AG_ETLS_HOSTNAME || rc == AG_ETLS_EXPIRED;
}

static void check_a(run *r, int rc, ag_response *resp)
{
    outcome *o = r->o;
    o->rc_a = rc;
    o->ran_a = true;
    if (rc < 0) {
        check_failure(o, "A", rc, resp);
        if (resp)
            snprintf(o->detail_a, sizeof o->detail_a, "%s", ag_response_error_detail(resp));
        return;
    }
    if (!resp) {
        say(o, "A: success without a response; ");
        return;
    }
    size_t len;
    const char *body = ag_response_body(resp, &len);
    if (ag_response_status(resp) != 200)
        say(o, "A: status %d; ", ag_response_status(resp));
    if (len != E.body_a_len || memcmp(body, E.body_a, len))
        say(o, "A: body of %zu bytes is not nginx's /1k; ", len);
    if (ag_response_redirects(resp) != 1)
        say(o, "A: %u redirects; ", ag_response_redirects(resp));
    if (strcmp(ag_response_url(resp), E.url_a_final))
        say(o, "A: final URL %s; ", ag_response_url(resp));
    ag_tls_info ti;
    if (ag_response_tls(resp, &ti) != 0 || !ti.verified)
        say(o, "A: the final connection is not verified TLS; ");
    if (ag_cookie_jar_count(r->jar) != 1)
        say(o, "A: succeeded, and the jar has %zu cookies (the redirect set one); ",
            ag_cookie_jar_count(r->jar));
    o->nfields_a = fields_of(resp, o->fields_a);
}

static void check_b(run *r, int rc, ag_response *resp)
{
    outcome *o = r->o;
    o->rc_b = rc;
    o->ran_b = true;
    if (rc < 0 && r->b_after)
        lasting(o, "B", rc, resp);
    if (rc < 0) {
        check_failure(o, "B", rc, resp);
        if (resp)
            snprintf(o->detail_b, sizeof o->detail_b, "%s", ag_response_error_detail(resp));
        return;
    }
    if (!resp) {
        say(o, "B: success without a response; ");
        return;
    }
    size_t len;
    const char *body = ag_response_body(resp, &len);
    const char *want = r->jar_before_b ? E.body_b_cookie : E.body_b_nocookie;
    size_t want_len = r->jar_before_b ? E.body_b_cookie_len : E.body_b_nocookie_len;
    if (ag_response_status(resp) != 200)
        say(o, "B: status %d; ", ag_response_status(resp));
    if (len != want_len || memcmp(body, want, len)) {
        const char *nl = len ? memchr(body, '\n', len) : NULL;
        say(o,
            "B: decoded body of %zu bytes is not the echo expected (%zu bytes; first line "
            "\"%.*s\", jar %zu); ",
            len, want_len, nl ? (int)(nl - body) : 0, body, r->jar_before_b);
    }
    o->nfields_b = fields_of(resp, o->fields_b);
}

static void check_c(run *r, int rc, ag_response *resp)
{
    outcome *o = r->o;
    o->rc_c = rc;
    o->ran_c = true;
    if (rc < 0 && r->c_after)
        lasting(o, "C", rc, resp);
    if (rc < 0) {
        check_failure(o, "C", rc, resp);
        if (resp)
            snprintf(o->detail_c, sizeof o->detail_c, "%s", ag_response_error_detail(resp));
        return;
    }
    size_t len;
    const char *body = ag_response_body(resp, &len);
    if (ag_response_status(resp) != 200 || len != E.body_a_len || memcmp(body, E.body_a, len))
        say(o, "C: status %d, %zu bytes, not nginx's /1k; ", ag_response_status(resp), len);
}

static void b_done(ag_client *client, ag_response *resp, int status, void *arg)
{
    (void)client;
    run *r = arg;
    check_b(r, status, resp);
    ag_response_free(resp);
}

static void exchange(void *arg)
{
    run *r = arg;
    r->o->stage = ST_A;
    ag_request req;
    ag_request_init(&req);
    req.url = E.url_a;
    ag_response *resp = NULL;
    int rc = ag_fetch(r->client, &req, &resp);
    check_a(r, rc, resp);
    ag_response_free(resp);

    r->o->stage = ST_B;
    r->jar_before_b = ag_cookie_jar_count(r->jar);
    static const ag_header hdr[] = {{"X-Torture", "yes"}};
    ag_request_init(&req);
    req.url = E.url_b;
    req.headers = hdr;
    req.nheaders = 1;
    r->b_after = fired;
    ag_coro *b = NULL;
    rc = ag_fetch_start(r->client, &req, b_done, r, &b);
    if (rc < 0) {
        r->o->rc_b = rc;
        r->o->ran_b = true;
    } else {
        ag_coro_join(b);
        ag_coro_unref(b);
    }

    /* C: https again, on A's pooled connection or, when A failed, on a new one made with the
     * client's TLS context (its CA loaded by A). */
    r->o->stage = ST_C;
    r->c_after = fired;
    ag_request_init(&req);
    req.url = E.url_a_final;
    resp = NULL;
    rc = ag_fetch(r->client, &req, &resp);
    check_c(r, rc, resp);
    ag_response_free(resp);
}

/* One whole exchange from nothing to nothing: loop, jar, client, the two requests, teardown. */
static void exchange_run(outcome *o)
{
    memset(o, 0, sizeof *o);
    run r = {.o = o};
    ag_loop *loop = NULL;
    o->stage = ST_LOOP;
    int rc = ag_loop_new(&loop, NULL);
    if (rc < 0)
        goto setup_failed;
    o->stage = ST_JAR;
    if ((rc = ag_cookie_jar_new(&r.jar)) < 0)
        goto setup_failed;
    ag_tls_opts tls;
    ag_tls_opts_init(&tls);
    tls.ca_file = ca_file;
    const char *cto[] = {connect_to_rule, NULL};
    ag_client_opts co;
    ag_client_opts_init(&co);
    co.loop = loop;
    co.dns_servers = dns_server;
    co.connect_to = cto;
    co.tls = &tls;
    co.compressed = 1;
    co.cookie_jar = r.jar;
    o->stage = ST_CLIENT;
    if ((rc = ag_client_new(&r.client, &co)) < 0)
        goto setup_failed;
    o->stage = ST_SPAWN;
    if ((rc = ag_coro_spawn(loop, exchange, &r, NULL)) < 0)
        goto setup_failed;
    o->stage = ST_RUN;
    rc = ag_loop_run(loop);
    if (rc < 0)
        say(o, "ag_loop_run: %s; ", ag_err_name(rc));
    if (!o->ran_a || !o->ran_b || !o->ran_c)
        say(o, "the loop ended with %s unfinished; ", !o->ran_a ? "A" : !o->ran_b ? "B" : "C");
    goto teardown;
setup_failed:
    o->setup_rc = rc;
    if (rc != -ENOMEM)
        say(o, "%s failed with %s, not -ENOMEM; ", stage_names[o->stage], ag_err_name(rc));
teardown:
    o->stage = ST_FREE;
    if ((rc = ag_client_free(r.client)) != 0)
        say(o, "ag_client_free: %s; ", ag_err_name(rc));
    ag_cookie_jar_free(r.jar);
    if ((rc = ag_loop_free(loop)) != 0)
        say(o, "ag_loop_free: %s; ", ag_err_name(rc));
    o->stage = ST_END;
}

/* ---- one N in a child -------------------------------------------------------------------- */

#define MAX_SITES 8

typedef struct child_report {
    outcome o;
    bool fired;
    long calls;
    char fired_where[256];
    bool in_ctx_new;   /* the failed allocation was made inside SSL_CTX_new */
    long leak1, leak2; /* blocks left by the first and the second run of this N */
    int nsites;
    char sites[MAX_SITES][160];
    bool overflow;
} child_report;

static child_report *shared; /* MAP_SHARED: survives the child's crash */

static void where(void *addr, char *out, size_t cap)
{
    Dl_info info;
    if (addr && dladdr(addr, &info) && info.dli_fname) {
        const char *file = strrchr(info.dli_fname, '/');
        file = file ? file + 1 : info.dli_fname;
        if (info.dli_sname)
            snprintf(out, cap, "%s(%s+0x%lx)", file, info.dli_sname,
                     (unsigned long)((char *)addr - (char *)info.dli_saddr));
        else
            snprintf(out, cap, "%s+0x%lx", file,
                     (unsigned long)((char *)addr - (char *)info.dli_fbase));
    } else {
        snprintf(out, cap, "%p", addr);
    }
}

static void print_bt(const char *title, void *const *bt, int depth)
{
    fprintf(stderr, "  %s:\n", title);
    for (int i = 0; i < depth && bt[i]; i++) {
        char w[256];
        where(bt[i], w, sizeof w);
        fprintf(stderr, "    %s\n", w);
    }
}

static void on_crash(int sig)
{
    /* Only async-signal-safe calls: the backtrace goes to stderr as addresses with names. */
    static const char msg[] = "alloc-torture: child crashed; the stack:\n";
    if (write(2, msg, sizeof msg - 1) < 0) {
    }
    void *bt[32];
    int n = backtrace(bt, 32);
    backtrace_symbols_fd(bt, n, 2);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Blocks born since serial0 and still live: where the first few come from (with their
 * backtraces when tracing). */
static void residue(uint64_t serial0, child_report *rep, bool verbose)
{
    for (size_t i = 0; i < LIVE_SIZE; i++) {
        if (!live[i].addr || live[i].serial <= serial0)
            continue;
        if (rep->nsites < MAX_SITES)
            where(live[i].site, rep->sites[rep->nsites++], sizeof rep->sites[0]);
        if (verbose && tracing && live[i].serial - serial0 < BT_SLOTS) {
            char title[64];
            snprintf(title, sizeof title, "born in the run and still live: block #%llu",
                     (unsigned long long)(live[i].serial - serial0));
            int depth = 0;
            while (depth < BT_DEPTH && bt_store[live[i].serial - serial0][depth])
                depth++;
            print_bt(title, bt_store[live[i].serial - serial0], depth);
        }
    }
}

static void child(long n, bool verbose)
{
    signal(SIGSEGV, on_crash);
    signal(SIGBUS, on_crash);
    signal(SIGABRT, on_crash);
    alarm(60); /* a hang dies of SIGALRM, which the parent reports */
    child_report *rep = shared;
    uint64_t serial0 = serial;
    long live0 = (long)nlive;
    arm(n);
    exchange_run(&rep->o);
    disarm();
    rep->fired = fired;
    rep->calls = calls;
    if (fired)
        where(fired_site, rep->fired_where, sizeof rep->fired_where);
    if (verbose && fired && tracing)
        print_bt("the failed allocation", fired_bt, fired_depth);
    rep->in_ctx_new = fired && bt_in(&ctx_new, fired_bt, fired_depth);
    /* The leak check counts blocks: a library may replace a block it keeps by a new one (the
     * blocks born in the run then outlive it without a leak), never grow their number. */
    rep->leak1 = (long)nlive - live0;
    if (rep->leak1 > 0 || verbose)
        residue(serial0, rep, verbose);
    if (rep->leak1 > 0) {
        /* Either a leak, or state a library makes once and keeps (the first error of a kind can
         * do that): the same N again tells them apart. */
        long live1 = (long)nlive;
        outcome again;
        arm(n);
        exchange_run(&again);
        disarm();
        rep->leak2 = (long)nlive - live1;
    }
    rep->overflow = live_overflow;
    _exit(0);
}

/* ---- the sweep --------------------------------------------------------------------------- */

typedef struct sweep {
    long runs, fired, crashes, hangs, leaks, wrong, errors, successes, slow, tls_verdicts, known;
    long codes[64];
    int code_vals[64];
    int ncodes;
} sweep;

static void count_code(sweep *s, int rc)
{
    for (int i = 0; i < s->ncodes; i++)
        if (s->code_vals[i] == rc) {
            s->codes[i]++;
            return;
        }
    if (s->ncodes < 64) {
        s->code_vals[s->ncodes] = rc;
        s->codes[s->ncodes++] = 1;
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs N in a child; returns false when the child found a fault (and says which). */
static bool run_n(long n, sweep *s, bool verbose)
{
    memset(shared, 0, sizeof *shared);
    fflush(stdout);
    fflush(stderr);
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0) {
        printf("# N=%ld: fork: %s\n", n, strerror(errno));
        return false;
    }
    if (pid == 0)
        child(n, verbose);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    double took = now_s() - t0;
    s->runs++;
    child_report *rep = shared;
    const char *stage = stage_names[rep->o.stage < ST_END ? rep->o.stage : ST_END];
    if (took > 5)
        s->slow++;
    if (WIFSIGNALED(st) || WEXITSTATUS(st) != 0) {
        bool hang = WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM;
        if (hang)
            s->hangs++;
        else
            s->crashes++;
        printf("# N=%ld: %s in %s; the failed allocation was %s in %s\n", n,
               hang              ? "hang (60 s)"
               : WIFSIGNALED(st) ? strsignal(WTERMSIG(st))
                                 : "exit status",
               stage, rep->fired ? "made" : "not reached", rep->fired_where);
        return false;
    }
    bool ok = true;
    if (rep->fired)
        s->fired++;
    outcome *o = &rep->o;
    /* The error must say memory ran out. OpenSSL's verdict is taken as it comes: a handshake
     * whose certificate could not be checked for lack of memory can fail with a TLS code
     * (OpenSSL 3.0 calls a key it could not measure "too weak", and queues no error to say
     * why), counted apart. Any other code blames the servers, which did nothing wrong. */
    const int codes[4] = {o->setup_rc, o->ran_a ? o->rc_a : 0, o->ran_b ? o->rc_b : 0,
                          o->ran_c ? o->rc_c : 0};
    static const char *const which[4] = {"setup", "A", "B", "C"};
    const char *const details[3] = {o->detail_a, o->detail_b, o->detail_c};
    for (int i = 0; i < 4; i++) {
        int c = codes[i];
        if (!c || c == -ENOMEM)
            continue;
        if (!rep->fired)
            say(o, "%s: %s though no allocation failed; ", which[i], ag_err_name(c));
        else if (i && strstr(details[i - 1], "malloc failure"))
            say(o, "%s: %s though OpenSSL said \"malloc failure\"; ", which[i], ag_err_name(c));
        else if (c == AG_ETLS || c == AG_ETLS_VERIFY || c == AG_ETLS_UNTRUSTED ||
                 c == AG_ETLS_HOSTNAME || c == AG_ETLS_EXPIRED)
            s->tls_verdicts++;
        else
            say(o, "%s: %s when memory ran out; ", which[i], ag_err_name(c));
    }
    if (!o->wrong) {
        /* Every success must carry the clean run's head fields too. */
        if (o->ran_a && o->rc_a == 0)
            compare_fields(o, "A", o->nfields_a, o->fields_a, E.clean.nfields_a, E.clean.fields_a);
        if (o->ran_b && o->rc_b == 0)
            compare_fields(o, "B", o->nfields_b, o->fields_b, E.clean.nfields_b, E.clean.fields_b);
    }
    if (o->lasting[0] && o->lasting_tls && rep->in_ctx_new) {
        /* KNOWN (README, Known limits): SSL_CTX_new can return a context every handshake fails with
         * after an allocation failed inside it, saying nothing, and the client keeps its
         * context. Any other lasting failure is a fault: the CA store, say, is read twice and
         * compared (tls/tls.c cert_intact). */
        s->known++;
        printf("# N=%ld: KNOWN, OpenSSL state spoiled by the failed allocation %s: %s\n", n,
               rep->fired_where, o->lasting);
    } else if (o->lasting[0]) {
        say(o, "%s", o->lasting);
    }
    if (o->wrong) {
        s->wrong++;
        ok = false;
        printf("# N=%ld: %s(failed allocation %s) %s\n", n, rep->fired ? "" : "not reached ",
               rep->fired_where, o->why);
    }
    if (rep->leak1 > 0 && rep->leak2 > 0) {
        s->leaks++;
        ok = false;
        printf("# N=%ld: %ld blocks left (%ld on the second run), the failed allocation %s:", n,
               rep->leak1, rep->leak2, rep->fired_where);
        for (int i = 0; i < rep->nsites; i++)
            printf(" %s", rep->sites[i]);
        printf("\n");
    } else if (rep->leak1 > 0 && verbose) {
        printf("# N=%ld: %ld blocks more on the first run only (state kept once):", n, rep->leak1);
        for (int i = 0; i < rep->nsites; i++)
            printf(" %s", rep->sites[i]);
        printf("\n");
    }
    if (rep->overflow) {
        ok = false;
        printf("# N=%ld: the live-block table overflowed\n", n);
    }
    int rc = o->setup_rc ? o->setup_rc : o->rc_a ? o->rc_a : o->rc_b ? o->rc_b : o->rc_c;
    if (rc)
        s->errors++;
    else
        s->successes++;
    if (o->setup_rc)
        count_code(s, o->setup_rc);
    if (o->ran_a)
        count_code(s, o->rc_a);
    if (o->ran_b)
        count_code(s, o->rc_b);
    if (o->ran_c)
        count_code(s, o->rc_c);
    if (verbose)
        printf("# N=%ld: %s, %ld calls, setup %s, A %s, B %s, C %s, %.3f s; failed allocation "
               "%s\n",
               n, rep->fired ? "fired" : "not reached", rep->calls, ag_err_name(o->setup_rc),
               o->ran_a ? ag_err_name(o->rc_a) : "-", o->ran_b ? ag_err_name(o->rc_b) : "-",
               o->ran_c ? ag_err_name(o->rc_c) : "-", took, rep->fired_where);
    if (verbose && (o->detail_a[0] || o->detail_b[0]))
        printf("# N=%ld: A \"%s\", B \"%s\"\n", n, o->detail_a, o->detail_b);
    return ok;
}

static char *cat(const char *head, const char *tail, size_t tail_len, size_t *len)
{
    size_t hl = strlen(head);
    char *s = malloc(hl + tail_len + 1);
    if (!s)
        return NULL;
    memcpy(s, head, hl);
    memcpy(s + hl, tail, tail_len);
    s[hl + tail_len] = 0;
    *len = hl + tail_len;
    return s;
}

static bool expectations(void)
{
    int hostile = env_port("AG_HOSTILE_PORT");
    int tls_port = env_port("AG_TLS_PORT");
    dns_server = getenv("AG_DNS_SERVER");
    ca_file = getenv("AG_TLS_CA");
    const char *root = getenv("AG_NGINX_ROOT");
    if (!dns_server || !ca_file || !root) {
        printf("1..0 # SKIP AG_DNS_SERVER, AG_TLS_CA or AG_NGINX_ROOT not set: run through "
               "tests/servers/with-servers --hostile --dnsmasq --tls\n");
        exit(0);
    }
    /* A is looked up (v4.test), redirected to https://localhost, whose connection goes to
     * tls.bulk.test, looked up too: the certificate is still checked against localhost. */
    snprintf(E.url_a_final, sizeof E.url_a_final, "https://localhost:%d/1k", tls_port);
    snprintf(E.url_a, sizeof E.url_a, "http://v4.test:%d/torture/start?to=%s", hostile,
             E.url_a_final);
    snprintf(E.url_b, sizeof E.url_b, "http://v4.test:%d/torture/echo", hostile);
    snprintf(connect_to_rule, sizeof connect_to_rule, "localhost:%d:tls.bulk.test:%d", tls_port,
             tls_port);
    char path[4096];
    snprintf(path, sizeof path, "%s/1k", root);
    E.body_a = read_file(path, &E.body_a_len);
    if (!E.body_a)
        return false;
    char text[128 * 1024];
    size_t tl = 0;
    for (int i = 0; i < 3000; i++)
        tl += (size_t)snprintf(text + tl, sizeof text - tl, "line %d of the torture body\n", i);
    char head[512];
    const char *ae = ag_codings();
    snprintf(head, sizeof head,
             "cookie: tort=1\nx-torture: yes\naccept-encoding: %s\nuser-agent: asyncget/%s\n", ae,
             AG_VERSION);
    E.body_b_cookie = cat(head, text, tl, &E.body_b_cookie_len);
    snprintf(head, sizeof head,
             "cookie: -\nx-torture: yes\naccept-encoding: %s\nuser-agent: asyncget/%s\n", ae,
             AG_VERSION);
    E.body_b_nocookie = cat(head, text, tl, &E.body_b_nocookie_len);
    return E.body_b_cookie && E.body_b_nocookie;
}

int main(void)
{
    const char *wrapper = getenv("AG_TEST_WRAPPER");
    if (wrapper && *wrapper) {
        printf("1..0 # SKIP under a test wrapper (valgrind: it replaces malloc itself)\n");
        return 0;
    }
#ifdef __linux__
    /* On Linux the kqueue backend is libkqueue, an emulation whose kevent() does not survive a
     * failed allocation of its own (it crashes inside kevent, and its queues leak or hang): the
     * sweep would judge that library, not this one. The epoll and poll backends run it. */
    if (strcmp(ag_loop_backend(), "kqueue") == 0) {
        printf("1..0 # SKIP libkqueue (the kqueue backend on Linux) crashes inside kevent() when "
               "its own allocations fail\n");
        return 0;
    }
#endif
    if (!expectations()) {
        printf("1..0 # SKIP the nginx root's /1k could not be read\n");
        return 0;
    }
    const char *single = getenv("AG_TORTURE_N");
    tracing = (single && *single) || (getenv("AG_TORTURE_TRACE") && *getenv("AG_TORTURE_TRACE"));
    void *bt[4];
    backtrace(bt, 4); /* loads what backtrace needs before any run is armed */
    {
        STACK_OF(X509_INFO) * (*read_fn)(BIO *, STACK_OF(X509_INFO) *, pem_password_cb *, void *,
                                         OSSL_LIB_CTX *, const char *) = PEM_X509_INFO_read_bio_ex;
        SSL_CTX *(*new_fn)(OSSL_LIB_CTX *, const char *, const SSL_METHOD *) = SSL_CTX_new_ex;
        void *addr;
        memcpy(&addr, &read_fn, sizeof addr); /* ISO C has no cast from code to data */
        range_of(&ca_load, addr);
        memcpy(&addr, &new_fn, sizeof addr);
        range_of(&ctx_new, addr);
    }
    shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) {
        printf("1..0 # SKIP mmap: %s\n", strerror(errno));
        return 0;
    }

    tap_plan(7);
    /* The replacement must see the libraries' allocations, or the sweep would prove nothing:
     * a clean exchange through them must count thousands of calls, and end with as many
     * blocks live as it began with (twice: the first one makes the state kept once). */
    /* OpenSSL gives each of the 16 slots of a thread's error queue a 1 KiB buffer the first
     * time an error with text lands there, and keeps it for reuse: give every slot its buffer
     * now, or a slot first used by a failing run would count as a leak. */
    for (int i = 0; i < 32; i++)
        ERR_raise_data(ERR_LIB_USER, 1, "%s", "warm-up");
    ERR_clear_error();
    outcome clean[2];
    long clean_calls[2];
    long clean_left[2];
    double clean_took = 0;
    for (int i = 0; i < 2; i++) {
        size_t before = nlive;
        double t = now_s();
        recording = i == 1;
        arm(0);
        exchange_run(&clean[i]);
        disarm();
        recording = false;
        clean_took = now_s() - t;
        clean_calls[i] = calls;
        clean_left[i] = (long)nlive - (long)before;
    }
    E.clean = clean[1];
    bool clean_ok =
        !clean[1].wrong && clean[1].rc_a == 0 && clean[1].rc_b == 0 && clean[1].setup_rc == 0;
    tap_ok(clean_ok && clean_calls[1] > 1000,
           "alloc_torture_clean: the exchange succeeds unarmed with %ld allocation calls seen "
           "in %.3f s (first run %ld; A %s, B %s%s%s)",
           clean_calls[1], clean_took, clean_calls[0], ag_err_name(clean[1].rc_a),
           ag_err_name(clean[1].rc_b), clean[1].why[0] ? "; " : "", clean[1].why);
    tap_ok(clean_left[1] == 0,
           "alloc_torture_clean_no_leak: a clean exchange leaves no block behind (%ld left, "
           "%ld by the first run; at most %zu blocks live)",
           clean_left[1], clean_left[0], nlive_peak);
    if (!clean_ok) {
        for (int i = 0; i < 5; i++)
            tap_skip("the clean exchange failed: no sweep");
        return 1;
    }

    sweep s;
    memset(&s, 0, sizeof s);
    long total = clean_calls[1];
    long first = 1, last = total + total / 20 + 20, step = 1;
    bool full = getenv("AG_TORTURE_FULL") && !strcmp(getenv("AG_TORTURE_FULL"), "1");
    const char *range = getenv("AG_TORTURE_RANGE");
    bool verbose = (single && *single) || getenv("AG_TORTURE_VERBOSE");
    if (single && *single) {
        first = last = atol(single);
    } else if (range && *range) {
        /* "FROM-TO", every N in it: for chasing what a sweep found. */
        char *end;
        first = strtol(range, &end, 10);
        last = *end == '-' ? strtol(end + 1, NULL, 10) : first;
    } else if (!full) {
        /* The sample: every call the clean run made from outside libcrypto (asyncget's own, and
         * those of libc, c-ares, zlib and libssl whose failures come back to asyncget's code),
         * and every step-th of libcrypto's, about 60 of its 4,000-odd (parsing certificates and
         * keys, hashing: thousands that fail alike), and every 8th call made reading the CA
         * file, whose faults OpenSSL would keep. Each run starts from the same state, so a build
         * samples the same calls each time. */
        step = last / 60 + 1;
    }
    void *in_crypto;
    void (*crypto_fn)(void) = ERR_clear_error;
    memcpy(&in_crypto, &crypto_fn, sizeof in_crypto); /* ISO C has no cast from code to data */
    Dl_info crypto;
    bool sites_known = dladdr(in_crypto, &crypto) != 0;
    long own = 0, ca_calls = 0;
    for (long n = 1; n <= total && n < SITES_MAX; n++) {
        Dl_info at;
        if (sites_known && dladdr(clean_site[n], &at) && at.dli_fbase != crypto.dli_fbase)
            own++;
        else
            clean_site[n] = NULL;
        /* Of the CA file's calls (about 1,400: a key and extensions per certificate), every
         * 8th: each certificate's decoding still fails at several points. */
        if (clean_ca_load[n] && ca_calls++ % 8 != 0)
            clean_ca_load[n] = false;
    }
    printf("# the clean run's calls: %ld from libcrypto, %ld from elsewhere; %ld reading the CA "
           "file%s\n",
           total - own, own, ca_calls, step > 1 ? " (every 8th of them sampled)" : "");
    double t0 = now_s();
    long faulty = 0;
    for (long n = first; n <= last; n++)
        if (step == 1 || n % step == 0 || (n < SITES_MAX && (clean_site[n] || clean_ca_load[n])))
            if (!run_n(n, &s, verbose))
                faulty++;
    double took = now_s() - t0;
    printf("# %ld runs (N from %ld to %ld, %s) in %.1f s: %ld made their failure, %ld clean "
           "errors (%ld of them a TLS verdict), %ld whole successes, %ld slower than 5 s\n",
           s.runs, first, last, step > 1 ? "sampled: set AG_TORTURE_FULL=1 for every N" : "every N",
           took, s.fired, s.errors, s.tls_verdicts, s.successes, s.slow);
    printf("# results:");
    for (int i = 0; i < s.ncodes; i++)
        printf(" %s=%ld", ag_err_name(s.code_vals[i]), s.codes[i]);
    printf("\n");
    tap_ok(s.fired > 0 && s.runs > 0, "alloc_torture_fires: %ld of %ld runs failed an allocation",
           s.fired, s.runs);
    tap_ok(s.crashes == 0, "alloc_torture_no_crash: %ld runs crashed", s.crashes);
    tap_ok(s.hangs == 0, "alloc_torture_no_hang: %ld runs hung", s.hangs);
    tap_ok(s.leaks == 0, "alloc_torture_no_leak: %ld runs left blocks behind, twice", s.leaks);
    tap_ok(s.wrong == 0,
           "alloc_torture_no_wrong_result: %ld runs succeeded with data lost or "
           "failed untidily (and %ld KNOWN: TLS failing on after an allocation failed inside "
           "SSL_CTX_new, which kept the context it spoiled)",
           s.wrong, s.known);
    (void)faulty;
    free(E.body_a);
    free(E.body_b_cookie);
    free(E.body_b_nocookie);
    return tap_failed ? 1 : 0;
}

#else

int main(void)
{
    printf("1..0 # SKIP the sanitizer owns malloc in this build\n");
    return 0;
}

#endif
