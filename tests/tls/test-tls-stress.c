/* test-tls-stress.c: https through the public API under concurrency and pooling: responses cut
 * into records and TCP segments of every shape, keep-alive bursts of many body sizes, uploads
 * answered early, redirects between the schemes, idle pooled connections that the server closes,
 * resets or sends housekeeping to, resumption and its cache, thousands of requests and
 * handshakes, the memory of idle connections, and a foreign loop driving it all.
 *
 *   with-servers --tap --nginx --tls -- test-tls-stress tests/tls/stress_peer.py
 *
 * stress_peer.py (started here) decides where records and sends begin and end; nginx (AG_TLS_*)
 * is the fast server for the counts. An alarm per case is the failure signal of a stall: no
 * case asserts that anything is fast. AG_TLS_STRESS_SOAK=1 runs the big counts in full on every
 * build (the sanitizer build runs smaller ones otherwise). */
#include "asyncget.h"
#include "tests/peer.h"
#include "tests/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <openssl/sha.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WRONG (-1) /* a response that is not the one asked for */

/* ag_err_name, or "wrong response" for WRONG. */
static const char *err_text(int rc)
{
    return rc == WRONG ? "wrong response" : ag_err_name(rc);
}

static int tls_port, tls12_port, plain_nginx_port;
static int peer13, peer12, peer_plain;
static const char *ca_file, *nginx_root, *tls_dir;
static bool sanitized;
static ag_loop *loop;

/* AG_TLS_STRESS_SOAK=1: the big counts in full on every build, and the plain http controls. */
static bool soak(void)
{
    return getenv("AG_TLS_STRESS_SOAK") != NULL;
}

/* AG_TLS_STRESS_ONLY=TEXT runs only the cases whose name contains TEXT. */
static bool wanted(const char *name)
{
    const char *only = getenv("AG_TLS_STRESS_ONLY");
    return !only || strstr(name, only);
}

/* Faults found by these cases and not fixed yet: the case is a skip naming the fault, so the
 * suite stays green; AG_TLS_STRESS_FAULTS=1 runs them (to see them fail, or pass once fixed). */
/* F1 (fixed by 2b61102) and F2 (fixed by 70bedd5) were found here on e261461 and run as plain
 * cases now: a partial record in OpenSSL's buffer counted as ready data (the tls_records_*,
 * keep-alive and partial-record cases hung or spun), and a blocking client's liveness check never
 * read the socket (the tls_idle_* cases of the blocking client). */
/* F3 (the cache evicted by store time, not use: a resumed TLS 1.2 session went first) is fixed
 * by 604b963 and runs as a plain case. */
/* F4: of connections that start their TLS 1.3 handshakes together after earlier ones, few
 * resume. Before 604b963 the cache kept one session per host. After it (4 per host) the burst
 * case on the sanitizer build still resumed 3, 1, 10 and 10 of 10 in four runs. A debug print in
 * session_find and the new-session callback showed why: each of the ten sequential connections
 * resumed, spent its ticket and received one new one (an OpenSSL server sends one ticket after a
 * resumption, two after a full handshake), so the host holds one unspent ticket when the burst
 * starts. Connections that look it up before a handshake has used it all offer it (nginx
 * accepts them all: 10 of 10); those that look later find it spent (OpenSSL marks it when a
 * handshake used it) and make a full handshake: 1 of 10 when the handshakes run one after
 * another (the failing runs' trace). Timing decides: a skip everywhere. */
#define FAULT_ONE_TICKET                                                                           \
    "F4, a limit of TLS 1.3 rather than a fault: tickets are single-use and a resumed handshake "  \
    "brings one new ticket, so a burst resumes as many as the host has unspent (timing decides)"

static const struct {
    const char *name, *fault;
    const char *backends; /* where it happens: NULL everywhere, else a list of names */
} known_faults[] = {
    {"tls_resume_burst_of_10_connections_after_10_sequential (TLS 1.3)", FAULT_ONE_TICKET, NULL},
    /* The same: how many of a round start together is the machine's timing (18 to 40 of 40
     * resumed were seen, against a bound of 20). */
    {"tls_resume_20_clients_reconnecting_at_once_resume_later_rounds (TLS 1.3)", FAULT_ONE_TICKET,
     NULL},
    {NULL, NULL, NULL},
};

/* The fault a case is known to hit, or NULL. */
static const char *known_fault(const char *name)
{
    if (getenv("AG_TLS_STRESS_FAULTS"))
        return NULL;
    for (size_t i = 0; known_faults[i].name; i++)
        if (strcmp(known_faults[i].name, name) == 0 &&
            (!known_faults[i].backends || strstr(known_faults[i].backends, ag_loop_backend())))
            return known_faults[i].fault;
    return NULL;
}

/* Whether to run a case now: false for one filtered out (nothing printed) or one with a known
 * fault (a skip naming it). */
static bool runs(const char *name)
{
    if (!wanted(name))
        return false;
    const char *fault = known_fault(name);
    if (fault) {
        tap_skip("%s: known fault: %s", name, fault);
        return false;
    }
    return true;
}

/* ---- the alarm: a stall is a failure, reported with the case's name ---- */

static char alarm_msg[256];
static size_t alarm_len;

static void on_alarm(int sig)
{
    (void)sig;
    ssize_t w = write(1, alarm_msg, alarm_len);
    (void)w;
    _exit(1);
}

/* Under the valgrind setup (AG_TEST_WRAPPER set) everything is 20 times slower, as meson's
 * timeout is 20 times longer. */
static unsigned slowdown = 1;

/* The case that runs next, and how long it may take before it counts as stalled. */
static void case_begin(const char *name, unsigned seconds)
{
    seconds *= slowdown;
    int n = snprintf(alarm_msg, sizeof alarm_msg, "not ok %d - %s: stalled (no end within %u s)\n",
                     tap_count + 1, name, seconds);
    alarm_len = n > 0 ? (size_t)n : 0;
    alarm(seconds);
}

static void case_end(void)
{
    alarm(0);
}

/* ---- the peer ---- */

static pid_t peer_pid = -1;
static int peer_in = -1;

static int peer_start(const char *script)
{
    char cert[512], key[512];
    snprintf(cert, sizeof cert, "%s/valid.pem", tls_dir);
    snprintf(key, sizeof key, "%s/valid.key", tls_dir);
    const char *args[] = {script, cert, key, NULL};
    int out;
    if ((peer_pid = peer_spawn(args, &peer_in, &out)) < 0)
        return -1;
    char line[64];
    peer_read_line(out, line, sizeof line, 20000);
    close(out);
    if (sscanf(line, "%d %d %d", &peer13, &peer12, &peer_plain) != 3)
        return -1;
    return 0;
}

static void peer_stop(void)
{
    if (peer_in >= 0)
        close(peer_in); /* the peer exits at the end of its stdin */
    if (peer_pid > 0) {
        for (int i = 0; i < 100 && waitpid(peer_pid, NULL, WNOHANG) == 0; i++)
            usleep(20 * 1000);
        kill(peer_pid, SIGKILL);
        waitpid(peer_pid, NULL, 0);
    }
}

/* ---- helpers ---- */

/* The peer's body of size bytes for tag: byte i is (i * 7 + tag) % 251. */
static bool body_is(const char *b, size_t len, size_t size, unsigned tag)
{
    if (len != size)
        return false;
    for (size_t i = 0; i < size; i++)
        if ((unsigned char)b[i] != (i * 7 + tag) % 251)
            return false;
    return true;
}

/* AG_TLS_STRESS_TRACE=1: the trace hook's information lines on stdout, as TAP comments. */
static void trace_info(void *arg, const ag_trace_event *ev)
{
    (void)arg;
    if (ev->kind == AG_TRACE_INFO)
        tap_diag("trace req %llu conn %llu: %.*s", (unsigned long long)ev->request_id,
                 (unsigned long long)ev->conn_id, (int)ev->len, ev->data);
}

static void client_opts(ag_client_opts *o, ag_tls_opts *t, ag_loop *l)
{
    ag_client_opts_init(o);
    ag_tls_opts_init(t);
    t->ca_file = ca_file;
    o->tls = t;
    o->loop = l;
    /* Scaled as the alarms are: hundreds of handshakes at once under valgrind outlast 20 s. */
    o->idle_timeout_ms = 20000 * (int64_t)slowdown;
    o->connect_timeout_ms = 20000 * (int64_t)slowdown;
    if (getenv("AG_TLS_STRESS_TRACE"))
        o->trace = trace_info;
}

static ag_client *new_client(ag_loop *l)
{
    ag_client_opts o;
    ag_tls_opts t;
    client_opts(&o, &t, l);
    ag_client *c = NULL;
    if (ag_client_new(&c, &o) < 0)
        return NULL;
    return c;
}

static int get(ag_client *c, const char *url, ag_response **r)
{
    ag_request req;
    ag_request_init(&req);
    req.url = url;
    return ag_fetch(c, &req, r);
}

/* Run fn(arg) in a coroutine of the test's loop until the loop has nothing left. */
static void in_loop(ag_coro_fn fn, void *arg)
{
    ag_coro_spawn(loop, fn, arg, NULL);
    ag_loop_run(loop);
}

/* A GET of url whose body must be the peer's for size and tag; 0 when so, else the error (or
 * -1 for a wrong body), and the response's connection id and reuse in *conn / *reused. */
static int get_checked(ag_client *c, const char *url, size_t size, unsigned tag, uint64_t *conn,
                       int *reused)
{
    ag_response *r;
    int rc = get(c, url, &r);
    if (rc == 0) {
        size_t len;
        const char *b = ag_response_body(r, &len);
        if (ag_response_status(r) != 200 || !body_is(b, len, size, tag)) {
            tap_diag("%s: status %d, %zu bytes", url, ag_response_status(r), len);
            rc = WRONG;
        }
    } else {
        tap_diag("%s: %s (%s)", url, ag_err_name(rc), ag_response_error_detail(r));
    }
    if (conn)
        *conn = r ? ag_response_conn_id(r) : 0;
    if (reused)
        *reused = r ? ag_response_reused(r) : 0;
    ag_response_free(r);
    return rc;
}

/* ---- records and segments ---- */

typedef struct shape_case {
    const char *name;
    const char *query; /* after "/r?" */
    size_t size;
    unsigned tag;
} shape_case;

static const shape_case shapes[] = {
    /* 4,000 records of one byte each in one send (92 KB on the wire): most of them are decrypted
     * out of OpenSSL's buffer after the socket said all it had. */
    {"tls_records_one_byte_each_in_one_send", "size=4000&rec=1&tag=3", 4000, 3},
    /* The head too, one byte per record. */
    {"tls_records_head_one_byte_each", "size=300&rec=1&hrec=1&tag=4", 300, 4},
    /* Chunked, three bytes per chunk and record. */
    {"tls_records_chunked_small", "size=3000&rec=3&chunked=1&tag=5", 3000, 5},
    /* Records of 1,000 bytes, a send per record. */
    {"tls_records_send_each", "size=100000&rec=1000&flush=each&tag=6", 100000, 6},
    /* The last 5 wire bytes 300 ms after the rest: the last record waits half in OpenSSL. */
    {"tls_records_last_split", "size=100000&split=5&tag=7", 100000, 7},
    {"tls_records_small_last_split", "size=4000&rec=1&split=5&tag=8", 4000, 8},
    /* A KeyUpdate that asks for the client's, halfway through the body. */
    {"tls_records_keyupdate_midbody", "size=200000&rec=4000&kumid=1&tag=9", 200000, 9},
};

typedef struct shape_run {
    ag_client *c;
    const shape_case *s;
    int rc;
} shape_run;

static void shape_one(void *arg)
{
    shape_run *sr = arg;
    char url[256];
    snprintf(url, sizeof url, "https://localhost:%d/r?%s", peer13, sr->s->query);
    sr->rc = get_checked(sr->c, url, sr->s->size, sr->s->tag, NULL, NULL);
}

static void test_shapes(void)
{
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        for (int blocking = 0; blocking < 2; blocking++) {
            char name[160];
            snprintf(name, sizeof name, "%s (%s)", shapes[i].name,
                     blocking ? "blocking client" : "loop client");
            if (!runs(name))
                continue;
            case_begin(name, 15);
            shape_run sr = {new_client(blocking ? NULL : loop), &shapes[i], -1};
            if (blocking)
                shape_one(&sr);
            else
                in_loop(shape_one, &sr);
            case_end();
            tap_ok(sr.rc == 0, "%s", name);
            ag_client_free(sr.c);
        }
    }
}

/* A record whose last bytes never come: the idle timeout ends the request. */
typedef struct cut_run {
    ag_client *c;
    int rc;
} cut_run;

static void cut_one(void *arg)
{
    cut_run *cr = arg;
    char url[256];
    snprintf(url, sizeof url, "https://localhost:%d/r?size=5000&cut=5&tag=1", peer13);
    ag_response *r;
    cr->rc = get(cr->c, url, &r);
    ag_response_free(r);
}

static void test_cut(void)
{
    for (int blocking = 0; blocking < 2; blocking++) {
        char name[160];
        snprintf(name, sizeof name, "tls_partial_record_then_silence_times_out (%s)",
                 blocking ? "blocking client" : "loop client");
        if (!runs(name))
            continue;
        ag_client_opts o;
        ag_tls_opts t;
        client_opts(&o, &t, blocking ? NULL : loop);
        o.idle_timeout_ms = 300;
        cut_run cr = {NULL, 0};
        ag_client_new(&cr.c, &o);
        case_begin(name, 15);
        if (blocking)
            cut_one(&cr);
        else
            in_loop(cut_one, &cr);
        case_end();
        tap_ok(cr.rc == AG_EIDLE_TIMEOUT, "%s: %s", name, ag_err_name(cr.rc));
        ag_client_free(cr.c);
    }
}

/* ---- keep-alive sequences: one connection, responses of every size and framing ---- */

typedef struct ka_step {
    const char *method; /* NULL: GET */
    const char *query;  /* after "/r?", with %u for the tag */
    size_t size;        /* the body expected */
    int status;
} ka_step;

/* Sizes around the 16 KiB record and multiples of it, framed by length and chunked, in records
 * of every size, between responses that have no body although their head names a length. */
static const ka_step ka_steps[] = {
    {NULL, "size=16384&tag=%u", 16384, 200},
    {"HEAD", "size=16384&tag=%u", 0, 200},
    {NULL, "size=16383&tag=%u", 16383, 200},
    {NULL, "size=0&tag=%u", 0, 200},
    {NULL, "size=16385&tag=%u", 16385, 200},
    {NULL, "size=16384&status=304&tag=%u", 0, 304},
    {NULL, "size=32768&tag=%u", 32768, 200},
    {NULL, "status=204&tag=%u", 0, 204},
    {NULL, "size=49152&chunked=1&tag=%u", 49152, 200},
    {"HEAD", "size=49152&chunked=1&tag=%u", 0, 200},
    {NULL, "size=65536&rec=16383&tag=%u", 65536, 200},
    {NULL, "size=16384&chunked=1&rec=1&tag=%u", 16384, 200},
    {NULL, "size=1&tag=%u", 1, 200},
    {NULL, "size=131072&rec=65536&tag=%u", 131072, 200},
    {NULL, "size=16384&flush=each&rec=512&tag=%u", 16384, 200},
    {"HEAD", "size=1048576&tag=%u", 0, 200},
    {NULL, "size=1048576&tag=%u", 1048576, 200},
    {NULL, "size=1000&hrec=7&rec=7&tag=%u", 1000, 200},
    {NULL, "size=0&chunked=1&tag=%u", 0, 200},
    {NULL, "size=16384&split=3&tag=%u", 16384, 200},
};
#define KA_STEPS (sizeof ka_steps / sizeof *ka_steps)

/* The steps once, twice in the soak. */
static unsigned ka_rounds(void)
{
    return soak() ? 2 : 1;
}

typedef struct ka_run {
    ag_client *c;
    int port;
    unsigned done;  /* steps that got their own response */
    unsigned conns; /* distinct connection ids seen */
    char failed[200];
} ka_run;

static void ka_main(void *arg)
{
    ka_run *k = arg;
    uint64_t first = 0;
    for (unsigned i = 0; i < KA_STEPS * ka_rounds(); i++) {
        const ka_step *st = &ka_steps[i % KA_STEPS];
        unsigned tag = 10 + i;
        char q[128], url[256];
        snprintf(q, sizeof q, st->query, tag);
        snprintf(url, sizeof url, "https://localhost:%d/r?%s", k->port, q);
        ag_request req;
        ag_request_init(&req);
        req.url = url;
        req.method = st->method;
        ag_response *r;
        if (getenv("AG_TLS_STRESS_VERBOSE"))
            tap_diag("step %u: %s", i, q);
        int rc = ag_fetch(k->c, &req, &r);
        size_t len = 0;
        const char *b = rc == 0 ? ag_response_body(r, &len) : NULL;
        const char *xt = rc == 0 ? ag_response_header(r, "X-Tag") : NULL;
        bool ok = rc == 0 && ag_response_status(r) == st->status && xt &&
                  (unsigned)atoi(xt) == tag && body_is(b, len, st->size, tag);
        if (!ok && !k->failed[0])
            snprintf(k->failed, sizeof k->failed, "step %u (%s %s): %s, status %d, %zu bytes", i,
                     st->method ? st->method : "GET", q, ag_err_name(rc),
                     r ? ag_response_status(r) : 0, len);
        if (ok)
            k->done++;
        if (r && ag_response_conn_id(r) != first) {
            first = ag_response_conn_id(r);
            k->conns++;
        }
        ag_response_free(r);
    }
}

static void test_keepalive_sequence(void)
{
    const int ports[2] = {peer13, peer12};
    for (int v = 0; v < 2; v++) {
        for (int blocking = 0; blocking < 2; blocking++) {
            char name[160];
            snprintf(name, sizeof name,
                     "tls_keepalive_sizes_framings_head_204_304_one_connection (TLS %s, %s)",
                     v ? "1.2" : "1.3", blocking ? "blocking client" : "loop client");
            if (!runs(name))
                continue;
            ka_run k = {new_client(blocking ? NULL : loop), ports[v], 0, 0, ""};
            case_begin(name, 60);
            if (blocking)
                ka_main(&k);
            else
                in_loop(ka_main, &k);
            case_end();
            tap_ok(k.done == KA_STEPS * ka_rounds() && k.conns == 1,
                   "%s: %u of %zu right, %u connections%s%s", name, k.done, KA_STEPS * ka_rounds(),
                   k.conns, k.failed[0] ? "; first wrong: " : "", k.failed);
            ag_client_free(k.c);
        }
    }
}

/* ---- idle pooled connections: what the server does to them while they wait ---- */

typedef struct idle_case {
    const char *action; /* stress_peer.py's after= */
    bool must_reuse;    /* the connection is healthy: the next request must reuse it */
    bool tls13;         /* only TLS 1.3 has it */
} idle_case;

static const idle_case idle_cases[] = {
    {"close_notify", false, false}, {"close", false, false},   {"fin", false, false},
    {"reset", false, false},        {"garbage", false, false}, {"ticket", true, true},
    {"keyupdate", true, true},
};

enum idle_mode { IDLE_LOOP, IDLE_BLOCKING, IDLE_NO_CHECK, IDLE_MODES };
static const char *const idle_mode_names[] = {"loop client", "blocking client",
                                              "loop client, no liveness check"};

typedef struct idle_run {
    ag_client *c, *control;
    const idle_case *ic;
    int port;
    const char *scheme;
    const char *method;
    unsigned serial;
    int rc;
    int reused;
    char why[200];
} idle_run;

static void idle_main(void *arg)
{
    idle_run *ir = arg;
    char url[256], ev[64];
    snprintf(ev, sizeof ev, "idle-%s-%u", ir->ic->action, ir->serial);
    snprintf(url, sizeof url, "%s://localhost:%d/r?size=100&tag=1&after=%s&ev=%s", ir->scheme,
             ir->port, ir->ic->action, ev);
    uint64_t first_conn = 0;
    ir->rc = get_checked(ir->c, url, 100, 1, &first_conn, NULL);
    if (ir->rc < 0) {
        snprintf(ir->why, sizeof ir->why, "; first request: %s", err_text(ir->rc));
        return;
    }
    /* Wait, on a connection of another client, until the server has done it; the loop runs
     * meanwhile, so the reactor sees whatever arrived on the idle connection. */
    snprintf(url, sizeof url, "https://localhost:%d/wait?ev=%s", peer13, ev);
    ag_response *w;
    int rc = get(ir->control, url, &w);
    if (rc < 0 || ag_response_status(w) != 200) {
        ir->rc = rc < 0 ? rc : WRONG;
        snprintf(ir->why, sizeof ir->why, "; waiting for the event: %s %d", ag_err_name(rc),
                 ag_response_status(w));
        ag_response_free(w);
        return;
    }
    ag_response_free(w);
    ag_sleep_ms(2);
    snprintf(url, sizeof url, "%s://localhost:%d/r?size=20000&tag=2", ir->scheme, ir->port);
    ag_request req;
    ag_request_init(&req);
    req.url = url;
    req.method = ir->method;
    ag_response *r;
    ir->rc = ag_fetch(ir->c, &req, &r);
    size_t len = 0;
    const char *b = ir->rc == 0 ? ag_response_body(r, &len) : NULL;
    if (ir->rc == 0 && (ag_response_status(r) != 200 || !body_is(b, len, 20000, 2)))
        ir->rc = WRONG;
    ir->reused = r && ag_response_conn_id(r) == first_conn;
    if (ir->rc)
        snprintf(ir->why, sizeof ir->why, "; second request: %s (%s), status %d, %zu bytes",
                 err_text(ir->rc), r ? ag_response_error_detail(r) : "",
                 r ? ag_response_status(r) : 0, len);
    ag_response_free(r);
}

static void test_idle_events(void)
{
    unsigned serial = 0;
    for (size_t i = 0; i < sizeof idle_cases / sizeof *idle_cases; i++) {
        const idle_case *ic = &idle_cases[i];
        /* v: TLS 1.3, TLS 1.2, and plain http as the control (what TLS must do as well). */
        for (int v = 0; v < 3; v++) {
            if (v > 0 && ic->tls13)
                continue;
            /* The plain controls run in the soak only: they test no TLS. */
            if (v == 2 && (strcmp(ic->action, "close_notify") == 0 || !soak()))
                continue;
            for (int m = 0; m < IDLE_MODES; m++) {
                for (int post = 0; post < 2; post++) {
                    /* A POST is never replayed: without the liveness check it may fail, as
                     * over plain TCP; with it, it must not. Bytes nobody asked for are only
                     * seen by the liveness check. */
                    if (m == IDLE_NO_CHECK && (post || strcmp(ic->action, "garbage") == 0))
                        continue;
                    char name[200];
                    snprintf(name, sizeof name, "%s_idle_%s_then_%s (%s, %s)",
                             v == 2 ? "plain" : "tls", ic->action, post ? "post" : "get",
                             v == 2 ? "http"
                             : v    ? "TLS 1.2"
                                    : "TLS 1.3",
                             idle_mode_names[m]);
                    if (!runs(name))
                        continue;
                    ag_client_opts o;
                    ag_tls_opts t;
                    client_opts(&o, &t, m == IDLE_BLOCKING ? NULL : loop);
                    o.no_liveness_check = m == IDLE_NO_CHECK;
                    idle_run ir = {.ic = ic,
                                   .port = v == 2 ? peer_plain
                                           : v    ? peer12
                                                  : peer13,
                                   .scheme = v == 2 ? "http" : "https",
                                   .method = post ? "POST" : NULL,
                                   .serial = serial++};
                    ag_client_new(&ir.c, &o);
                    o.no_liveness_check = 0;
                    ag_client_new(&ir.control, &o);
                    case_begin(name, 20);
                    if (m == IDLE_BLOCKING)
                        idle_main(&ir);
                    else
                        in_loop(idle_main, &ir);
                    case_end();
                    if (ic->must_reuse)
                        tap_ok(ir.rc == 0 && ir.reused, "%s: %s, %s%s", name,
                               ir.rc ? "failed" : "succeeded", ir.reused ? "reused" : "NOT reused",
                               ir.why);
                    else
                        tap_ok(ir.rc == 0, "%s: %s (%s)%s", name, ir.rc ? "failed" : "succeeded",
                               ir.reused ? "reused" : "fresh connection", ir.why);
                    ag_client_free(ir.c);
                    ag_client_free(ir.control);
                }
            }
        }
    }
}

/* ---- bursts: many requests at once over few connections, each must get its own answer ---- */

typedef struct burst_job {
    ag_client *c;
    unsigned tag;
    int rc;
} burst_job;

/* What request number tag asks for: a size, a framing, a method, and how the response ends. */
static void burst_request(unsigned tag, char *q, size_t qsize, const char **method, size_t *size,
                          int *status)
{
    static const size_t sizes[] = {0, 1, 100, 16383, 16384, 16385, 32768, 40000, 65536, 70000};
    *size = sizes[tag % 10];
    *method = NULL;
    *status = 200;
    const char *extra = "";
    switch (tag % 7) {
    case 1:
        extra = "&chunked=1&rec=5000";
        break;
    case 2:
        *method = "HEAD";
        break;
    case 3:
        extra = "&tail=ticket";
        break;
    case 4:
        extra = "&rec=700";
        break;
    case 5:
        extra = "&status=304";
        *status = 304;
        break;
    case 6:
        extra = "&flush=each&rec=3000";
        break;
    }
    snprintf(q, qsize, "size=%zu&tag=%u%s", *size, tag, extra);
    if (*method || *status == 304)
        *size = 0;
}

static void burst_one(void *arg)
{
    burst_job *j = arg;
    char q[128], url[256];
    const char *method;
    size_t size;
    int status;
    burst_request(j->tag, q, sizeof q, &method, &size, &status);
    snprintf(url, sizeof url, "https://localhost:%d/r?%s", peer13, q);
    ag_request req;
    ag_request_init(&req);
    req.url = url;
    req.method = method;
    ag_response *r;
    j->rc = ag_fetch(j->c, &req, &r);
    if (j->rc == 0) {
        size_t len;
        const char *b = ag_response_body(r, &len);
        const char *xt = ag_response_header(r, "X-Tag");
        if (ag_response_status(r) != status || !xt || (unsigned)atoi(xt) != j->tag ||
            !body_is(b, len, size, j->tag))
            j->rc = WRONG;
    }
    ag_response_free(r);
}

#define BURST 200

static void test_burst(void)
{
    const char *name = "tls_burst_200_requests_over_4_connections_each_gets_its_own";
    if (!runs(name))
        return;
    ag_client_opts o;
    ag_tls_opts t;
    client_opts(&o, &t, loop);
    o.max_conns_per_host = 4;
    ag_client *c;
    ag_client_new(&c, &o);
    static burst_job jobs[BURST];
    case_begin(name, 60);
    for (unsigned i = 0; i < BURST; i++) {
        jobs[i] = (burst_job){c, 1000 + i, -1};
        ag_coro_spawn(loop, burst_one, &jobs[i], NULL);
    }
    ag_loop_run(loop);
    case_end();
    unsigned ok = 0, wrong = 0;
    int first_err = 0;
    for (unsigned i = 0; i < BURST; i++) {
        ok += jobs[i].rc == 0;
        wrong += jobs[i].rc == WRONG;
        if (jobs[i].rc && !first_err)
            first_err = jobs[i].rc;
    }
    tap_ok(ok == BURST, "%s: %u right, %u wrong answers, first error %s", name, ok, wrong,
           first_err ? err_text(first_err) : "none");
    ag_client_free(c);
}

/* Unasked bytes in the same send as a response: read ahead with it, they must not answer the
 * next request; a ticket there must not cost the connection. */
typedef struct tail_run {
    ag_client *c;
    const char *tail;
    int rc;
    int reused;
} tail_run;

static void tail_main(void *arg)
{
    tail_run *tr = arg;
    char url[256];
    uint64_t c1 = 0, c2 = 0;
    snprintf(url, sizeof url, "https://localhost:%d/r?size=500&tag=1&tail=%s", peer13, tr->tail);
    tr->rc = get_checked(tr->c, url, 500, 1, &c1, NULL);
    if (tr->rc)
        return;
    snprintf(url, sizeof url, "https://localhost:%d/r?size=600&tag=2", peer13);
    tr->rc = get_checked(tr->c, url, 600, 2, &c2, NULL);
    tr->reused = c1 == c2;
}

static void test_tail(void)
{
    const char *tails[] = {"garbage", "ticket"};
    for (int i = 0; i < 2; i++) {
        for (int blocking = 0; blocking < 2; blocking++) {
            char name[160];
            snprintf(name, sizeof name, "tls_response_then_%s_in_the_same_send (%s)", tails[i],
                     blocking ? "blocking client" : "loop client");
            if (!runs(name))
                continue;
            tail_run tr = {new_client(blocking ? NULL : loop), tails[i], -1, 0};
            case_begin(name, 20);
            if (blocking)
                tail_main(&tr);
            else
                in_loop(tail_main, &tr);
            case_end();
            bool want_reuse = i == 1;
            tap_ok(tr.rc == 0 && tr.reused == want_reuse, "%s: %s, %s", name, err_text(tr.rc),
                   tr.reused ? "reused" : "new connection");
            ag_client_free(tr.c);
        }
    }
}

/* ---- redirects between the schemes: the final response's TLS info is its own ---- */

typedef struct redir_case {
    const char *name;
    const char *chain;   /* the first URL, %d: peer13, peer_plain, peer12, expired port */
    int rc;              /* the request's result */
    const char *version; /* the final connection's TLS version, NULL: not TLS (-ENOENT) */
    unsigned redirects;
} redir_case;

static const redir_case redir_cases[] = {
    {"tls_redirect_https_http_https_final_tls_is_its_own",
     "https://127.0.0.1:%1$d/redir?to=http%%3A%%2F%%2F127.0.0.1%%3A%2$d%%2Fredir%%3Fto%%3D"
     "https%%253A%%252F%%252Flocalhost%%253A%3$d%%252Fr%%253Fsize%%253D300%%2526tag%%253D5",
     0, "TLSv1.2", 2},
    {"tls_redirect_https_to_http_final_has_no_tls",
     "https://localhost:%1$d/"
     "redir?to=http%%3A%%2F%%2F127.0.0.1%%3A%2$d%%2Fr%%3Fsize%%3D300%%26tag%%3D5",
     0, NULL, 1},
    {"tls_redirect_http_to_https_final_is_tls",
     "http://127.0.0.1:%2$d/"
     "redir?to=https%%3A%%2F%%2Flocalhost%%3A%1$d%%2Fr%%3Fsize%%3D300%%26tag%%3D5",
     0, "TLSv1.3", 1},
    {"tls_redirect_tls13_to_tls12_final_says_tls12",
     "https://localhost:%1$d/"
     "redir?to=https%%3A%%2F%%2Flocalhost%%3A%3$d%%2Fr%%3Fsize%%3D300%%26tag%%3D5",
     0, "TLSv1.2", 1},
    {"tls_redirect_to_expired_certificate_has_no_tls_info",
     "https://localhost:%1$d/redir?to=https%%3A%%2F%%2Flocalhost%%3A%4$d%%2Fhello", AG_ETLS_EXPIRED,
     NULL, 1},
    {"tls_redirect_to_refused_port_has_no_tls_info",
     "https://localhost:%1$d/redir?to=http%%3A%%2F%%2F127.0.0.1%%3A1%%2Fhello", -ECONNREFUSED, NULL,
     1},
};

typedef struct redir_run {
    ag_client *c;
    const redir_case *rc_;
    int rc, tls_rc, redirects, body_ok;
    char version[32];
    char url[512];
} redir_run;

static int expired_port;

static void redir_main(void *arg)
{
    redir_run *rr = arg;
    char url[600];
    snprintf(url, sizeof url, rr->rc_->chain, peer13, peer_plain, peer12, expired_port);
    ag_response *r;
    rr->rc = get(rr->c, url, &r);
    ag_tls_info ti;
    rr->tls_rc = ag_response_tls(r, &ti);
    snprintf(rr->version, sizeof rr->version, "%s", rr->tls_rc == 0 ? ti.version : "-");
    rr->redirects = (int)ag_response_redirects(r);
    size_t len;
    const char *b = ag_response_body(r, &len);
    rr->body_ok = rr->rc != 0 || body_is(b, len, 300, 5);
    snprintf(rr->url, sizeof rr->url, "%s", ag_response_url(r) ? ag_response_url(r) : "");
    ag_response_free(r);
}

static void test_redirects(void)
{
    for (size_t i = 0; i < sizeof redir_cases / sizeof *redir_cases; i++) {
        const redir_case *rc = &redir_cases[i];
        if (!runs(rc->name))
            continue;
        redir_run rr = {.c = new_client(loop), .rc_ = rc};
        case_begin(rc->name, 20);
        in_loop(redir_main, &rr);
        case_end();
        bool tls_ok = rc->version ? rr.tls_rc == 0 && strcmp(rr.version, rc->version) == 0
                                  : rr.tls_rc == -ENOENT;
        tap_ok(rr.rc == rc->rc && tls_ok && rr.redirects == (int)rc->redirects && rr.body_ok,
               "%s: %s, TLS info %s %s, %d redirects, final %s", rc->name, err_text(rr.rc),
               ag_err_name(rr.tls_rc), rr.version, rr.redirects, rr.url);
        ag_client_free(rr.c);
    }
}

/* ---- uploads over TLS: early answers, Expect: 100-continue ---- */

typedef struct reader_state {
    const unsigned char *data;
    size_t len, off;
} reader_state;

static ptrdiff_t reader(void *arg, void *buf, size_t cap)
{
    reader_state *rs = arg;
    size_t n = rs->len - rs->off < cap ? rs->len - rs->off : cap;
    if (n > 50000)
        n = 50000;
    memcpy(buf, rs->data + rs->off, n);
    rs->off += n;
    return (ptrdiff_t)n;
}

typedef struct upload_case {
    const char *name;
    const char *query; /* after /echo? */
    int kind;          /* AG_BODY_MEMORY, AG_BODY_READER, AG_BODY_FILE */
    size_t size;
    uint64_t expect_size; /* the client's expect_continue_size; 0 default */
    int status;           /* 413: early; 200: the echo, checked */
} upload_case;

static const upload_case upload_cases[] = {
    {"tls_upload_memory_4m_answered_413_early", "early=1", AG_BODY_MEMORY, 4 << 20, AG_NO_EXPECT,
     413},
    {"tls_upload_reader_4m_answered_413_early", "early=1", AG_BODY_READER, 4 << 20, AG_NO_EXPECT,
     413},
    {"tls_upload_file_4m_answered_413_early", "early=1", AG_BODY_FILE, 4 << 20, AG_NO_EXPECT, 413},
    {"tls_upload_memory_2m_echoed", "", AG_BODY_MEMORY, 2 << 20, AG_NO_EXPECT, 200},
    {"tls_upload_reader_2m_echoed", "", AG_BODY_READER, 2 << 20, AG_NO_EXPECT, 200},
    /* Halfway through the body, while the client writes, the server asks for a KeyUpdate (the
     * client must answer it between its own records) or sends a ticket. */
    {"tls_upload_2m_keyupdate_requested_halfway", "poke=keyupdate", AG_BODY_MEMORY, 2 << 20,
     AG_NO_EXPECT, 200},
    {"tls_upload_2m_file_keyupdate_requested_halfway", "poke=keyupdate", AG_BODY_FILE, 2 << 20,
     AG_NO_EXPECT, 200},
    {"tls_upload_2m_ticket_halfway", "poke=ticket", AG_BODY_MEMORY, 2 << 20, AG_NO_EXPECT, 200},
    {"tls_expect_continue_memory_2m", "mode=continue", AG_BODY_MEMORY, 2 << 20, 0, 200},
    {"tls_expect_continue_reader_2m", "mode=continue", AG_BODY_READER, 2 << 20, 0, 200},
    {"tls_expect_silent_server_memory_2m", "mode=silent", AG_BODY_MEMORY, 2 << 20, 0, 200},
    /* 417: the client sends the same request again without the expectation. */
    {"tls_expect_417_then_retry_memory_2m", "mode=final", AG_BODY_MEMORY, 2 << 20, 0, 200},
    {"tls_expect_417_then_retry_reader_2m", "mode=final", AG_BODY_READER, 2 << 20, 0, 200},
};

static unsigned char *upload_data;
static size_t upload_cap;
static int upload_fd = -1;

typedef struct upload_run {
    ag_client *c;
    const upload_case *uc;
    int rc, status, after_rc;
    bool echo_ok;
} upload_run;

static void upload_main(void *arg)
{
    upload_run *ur = arg;
    const upload_case *uc = ur->uc;
    char url[256];
    snprintf(url, sizeof url, "https://localhost:%d/echo?%s", peer13, uc->query);
    ag_request req;
    ag_request_init(&req);
    req.url = url;
    req.method = "PUT";
    req.body_kind = uc->kind;
    reader_state rs = {upload_data, uc->size, 0};
    req.body = upload_data;
    req.body_len = uc->size;
    req.body_fd = upload_fd;
    req.body_read = reader;
    req.body_read_arg = &rs;
    ag_response *r;
    ur->rc = ag_fetch(ur->c, &req, &r);
    ur->status = ag_response_status(r);
    if (ur->rc == 0 && ur->status == 200) {
        unsigned char md[SHA256_DIGEST_LENGTH];
        SHA256(upload_data, uc->size, md);
        char want[128];
        int n = snprintf(want, sizeof want, "%zu ", uc->size);
        for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
            n += snprintf(want + n, sizeof want - (size_t)n, "%02x", md[i]);
        ur->echo_ok = strcmp(ag_response_body(r, NULL), want) == 0;
    }
    ag_response_free(r);
    /* The client goes on: a next request gets its own answer. */
    snprintf(url, sizeof url, "https://localhost:%d/r?size=3000&tag=4", peer13);
    ur->after_rc = get_checked(ur->c, url, 3000, 4, NULL, NULL);
}

static void test_uploads(void)
{
    if (!upload_data) {
        upload_cap = 4 << 20;
        upload_data = malloc(upload_cap);
        for (size_t i = 0; i < upload_cap; i++)
            upload_data[i] = (unsigned char)(i * 13 + (i >> 9));
        char path[] = "/tmp/ag-tls-stress-upload.XXXXXX";
        upload_fd = mkstemp(path);
        if (upload_fd >= 0) {
            unlink(path);
            ssize_t w = write(upload_fd, upload_data, upload_cap);
            (void)w;
        }
    }
    for (size_t i = 0; i < sizeof upload_cases / sizeof *upload_cases; i++) {
        const upload_case *uc = &upload_cases[i];
        for (int blocking = 0; blocking < 2; blocking++) {
            char name[160];
            snprintf(name, sizeof name, "%s (%s)", uc->name,
                     blocking ? "blocking client" : "loop client");
            if (!runs(name))
                continue;
            ag_client_opts o;
            ag_tls_opts t;
            client_opts(&o, &t, blocking ? NULL : loop);
            o.expect_continue_size = uc->expect_size;
            /* The silent server: the body goes after this long without an answer. */
            o.expect_timeout_ms = 300;
            upload_run ur = {.uc = uc};
            ag_client_new(&ur.c, &o);
            case_begin(name, 30);
            if (blocking)
                upload_main(&ur);
            else
                in_loop(upload_main, &ur);
            case_end();
            bool ok = ur.rc == 0 && ur.status == uc->status && (uc->status != 200 || ur.echo_ok);
            tap_ok(ok && ur.after_rc == 0, "%s: %s, status %d%s; next request %s", name,
                   err_text(ur.rc), ur.status,
                   uc->status == 200 ? (ur.echo_ok ? ", body echoed" : ", WRONG echo") : "",
                   err_text(ur.after_rc));
            ag_client_free(ur.c);
        }
    }
}

/* ---- resumption (nginx): the second connection resumes; the cache's size and order ---- */

typedef struct resume_run {
    ag_client *c;
    const char *const *urls; /* NULL-terminated, each fetched with "Connection: close" */
    char got[32];            /* '1' resumed, '0' full handshake, 'x' failed, per URL */
    char version[32];
} resume_run;

static void resume_main(void *arg)
{
    resume_run *rr = arg;
    ag_header close = {"Connection", "close"};
    size_t i = 0;
    for (; rr->urls[i] && i < sizeof rr->got - 1; i++) {
        ag_request req;
        ag_request_init(&req);
        req.url = rr->urls[i];
        req.headers = &close;
        req.nheaders = 1;
        ag_response *r;
        int rc = ag_fetch(rr->c, &req, &r);
        ag_tls_info ti;
        if (rc == 0 && ag_response_status(r) == 200 && ag_response_tls(r, &ti) == 0) {
            rr->got[i] = ti.resumed ? '1' : '0';
            snprintf(rr->version, sizeof rr->version, "%s", ti.version);
        } else {
            rr->got[i] = 'x';
            tap_diag("%s: %s (%s)", rr->urls[i], ag_err_name(rc), ag_response_error_detail(r));
        }
        ag_response_free(r);
    }
    rr->got[i] = 0;
}

/* Fetch urls in order with a new client of these settings; the resumption pattern in got. */
static void resume_case(const char *name, const char *const *urls, unsigned cache, int insecure,
                        int no_reuse, const char *const *resolve, const char *want,
                        const char *version)
{
    if (!runs(name))
        return;
    ag_client_opts o;
    ag_tls_opts t;
    client_opts(&o, &t, loop);
    o.tls_session_cache = cache;
    t.insecure = insecure;
    t.no_session_reuse = no_reuse;
    o.resolve = resolve;
    resume_run rr = {.urls = urls};
    if (ag_client_new(&rr.c, &o) < 0) {
        tap_ok(0, "%s: no client", name);
        return;
    }
    case_begin(name, 30);
    in_loop(resume_main, &rr);
    case_end();
    tap_ok(strcmp(rr.got, want) == 0 && strcmp(rr.version, version) == 0,
           "%s: resumed %s (want %s), %s", name, rr.got, want, rr.version);
    ag_client_free(rr.c);
}

static void test_resumption(void)
{
    static char u[8][160];
    const int ports[2] = {tls_port, tls12_port};
    const char *versions[2] = {"TLSv1.3", "TLSv1.2"};
    for (int v = 0; v < 2; v++) {
        char name[160];
        snprintf(u[0], sizeof u[0], "https://localhost:%d/hello", ports[v]);
        snprintf(u[1], sizeof u[1], "https://127.0.0.1:%d/hello", ports[v]);
        const char *same[] = {u[0], u[0], u[0], u[0], NULL};
        snprintf(name, sizeof name, "tls_resume_second_connection (%s)", versions[v]);
        resume_case(name, same, 0, 0, 0, NULL, "0111", versions[v]);
        snprintf(name, sizeof name, "tls_resume_none_with_AG_NO_TLS_SESSIONS (%s)", versions[v]);
        resume_case(name, same, AG_NO_TLS_SESSIONS, 0, 0, NULL, "0000", versions[v]);
        snprintf(name, sizeof name, "tls_resume_none_with_no_session_reuse (%s)", versions[v]);
        resume_case(name, same, 0, 0, 1, NULL, "0000", versions[v]);
        /* One entry, two hosts: each host's session pushes the other's out. */
        const char *two[] = {u[0], u[0], u[1], u[0], u[1], u[1], u[0], NULL};
        snprintf(name, sizeof name, "tls_resume_cache_of_one_two_hosts_evict_each_other (%s)",
                 versions[v]);
        resume_case(name, two, 1, 0, 0, NULL, "0100010", versions[v]);
        /* Two entries, three hosts: a session just used is the most recent, so the third host
         * pushes out the one used longest ago. */
        snprintf(u[2], sizeof u[2], "https://a.test:%d/hello", ports[v]);
        snprintf(u[3], sizeof u[3], "https://b.test:%d/hello", ports[v]);
        snprintf(u[4], sizeof u[4], "https://c.test:%d/hello", ports[v]);
        static char res[3][80];
        snprintf(res[0], sizeof res[0], "a.test:%d:127.0.0.1", ports[v]);
        snprintf(res[1], sizeof res[1], "b.test:%d:127.0.0.1", ports[v]);
        snprintf(res[2], sizeof res[2], "c.test:%d:127.0.0.1", ports[v]);
        const char *resolve[] = {res[0], res[1], res[2], NULL};
        const char *lru[] = {u[2], u[3], u[2], u[4], u[2], u[3], NULL};
        snprintf(name, sizeof name, "tls_resume_cache_of_two_evicts_least_recently_used (%s)",
                 versions[v]);
        resume_case(name, lru, 2, 1, 0, resolve, "001010", versions[v]);
    }
}

/* Clients that each open a new connection per request (Connection: close), twenty at once,
 * three rounds: every connection of a round brought tickets (nginx sends two per TLS 1.3
 * handshake) or a reusable session id (TLS 1.2), so the later rounds can resume. OpenSSL offers
 * a TLS 1.3 ticket once only (RFC 8446 C.4): a cache of one session per host resumes one
 * connection of a round. */
typedef struct churn_job {
    ag_client *c;
    const char *url;
    int ok;
    int resumed_later; /* of rounds 2 and 3 */
} churn_job;

static void churn_one(void *arg)
{
    churn_job *j = arg;
    ag_header close = {"Connection", "close"};
    for (int round = 0; round < 3; round++) {
        ag_request req;
        ag_request_init(&req);
        req.url = j->url;
        req.headers = &close;
        req.nheaders = 1;
        ag_response *r;
        int rc = ag_fetch(j->c, &req, &r);
        ag_tls_info ti;
        if (rc == 0 && ag_response_status(r) == 200 && ag_response_tls(r, &ti) == 0) {
            j->ok++;
            j->resumed_later += round > 0 && ti.resumed;
        }
        ag_response_free(r);
        /* The rounds meet: everybody's first connection is done before any second starts. */
        ag_sleep_ms(100);
    }
}

#define CHURN 20

static void test_churn_resume(void)
{
    const int ports[2] = {tls_port, tls12_port};
    for (int v = 0; v < 2; v++) {
        char name[160], url[160];
        snprintf(name, sizeof name,
                 "tls_resume_20_clients_reconnecting_at_once_resume_later_rounds (TLS %s)",
                 v ? "1.2" : "1.3");
        if (!runs(name))
            continue;
        snprintf(url, sizeof url, "https://localhost:%d/hello", ports[v]);
        ag_client *c = new_client(loop);
        static churn_job jobs[CHURN];
        case_begin(name, 30);
        for (int i = 0; i < CHURN; i++) {
            jobs[i] = (churn_job){c, url, 0, 0};
            ag_coro_spawn(loop, churn_one, &jobs[i], NULL);
        }
        ag_loop_run(loop);
        case_end();
        int ok = 0, resumed = 0;
        for (int i = 0; i < CHURN; i++) {
            ok += jobs[i].ok;
            resumed += jobs[i].resumed_later;
        }
        /* At least half of the later connections: a cache that kept what the server gave
         * resumes them all. */
        tap_ok(ok == 3 * CHURN && resumed >= CHURN,
               "%s: %d of %d answered, %d of %d later ones resumed", name, ok, 3 * CHURN, resumed,
               2 * CHURN);
        ag_client_free(c);
    }
}

/* Ten connections one after another (each brings two TLS 1.3 tickets from nginx, or a TLS 1.2
 * session id), then ten opened at once: each of those can resume with a session of its own.
 * OpenSSL offers a TLS 1.3 ticket once only (RFC 8446 C.4), so a cache that keeps only the
 * latest session of a host resumes one connection of a burst. */
typedef struct burst_resume_job {
    ag_client *c;
    const char *url;
    int rc, resumed;
} burst_resume_job;

static void burst_resume_one(void *arg)
{
    burst_resume_job *j = arg;
    ag_header close = {"Connection", "close"};
    ag_request req;
    ag_request_init(&req);
    req.url = j->url;
    req.headers = &close;
    req.nheaders = 1;
    ag_response *r;
    j->rc = ag_fetch(j->c, &req, &r);
    ag_tls_info ti;
    if (j->rc == 0 && ag_response_status(r) != 200)
        j->rc = WRONG;
    j->resumed = j->rc == 0 && ag_response_tls(r, &ti) == 0 && ti.resumed;
    ag_response_free(r);
}

static void test_burst_resume(void)
{
    const int ports[2] = {tls_port, tls12_port};
    for (int v = 0; v < 2; v++) {
        char name[160], url[160];
        snprintf(name, sizeof name,
                 "tls_resume_burst_of_10_connections_after_10_sequential (TLS %s)",
                 v ? "1.2" : "1.3");
        if (!runs(name))
            continue;
        snprintf(url, sizeof url, "https://localhost:%d/hello", ports[v]);
        ag_client *c = new_client(loop);
        burst_resume_job seq = {c, url, 0, 0}, jobs[10];
        case_begin(name, 30);
        int seq_ok = 0;
        for (int i = 0; i < 10; i++) {
            in_loop(burst_resume_one, &seq);
            seq_ok += seq.rc == 0;
        }
        for (int i = 0; i < 10; i++) {
            jobs[i] = (burst_resume_job){c, url, -1, 0};
            ag_coro_spawn(loop, burst_resume_one, &jobs[i], NULL);
        }
        ag_loop_run(loop);
        case_end();
        int ok = 0, resumed = 0;
        for (int i = 0; i < 10; i++) {
            ok += jobs[i].rc == 0;
            resumed += jobs[i].resumed;
        }
        tap_ok(seq_ok == 10 && ok == 10 && resumed >= 5,
               "%s: %d + %d of 20 answered, %d of the 10 at once resumed", name, seq_ok, ok,
               resumed);
        ag_client_free(c);
    }
}

/* ---- nginx: counts, handshakes at once, errors side by side, memory ---- */

static const size_t nginx_sizes[] = {0,     1,     100,   1000,  16383, 16384,
                                     16385, 32768, 49152, 65536, 100000};
#define NSIZES (sizeof nginx_sizes / sizeof *nginx_sizes)
static unsigned char nginx_sha[NSIZES][SHA256_DIGEST_LENGTH];
static bool nginx_files_ok;

/* Files "ts-SIZE" in nginx's document root, byte i being (i * 7 + SIZE % 251) % 251, and their
 * SHA-256. */
static void nginx_files(void)
{
    if (nginx_files_ok || !nginx_root)
        return;
    unsigned char *buf = malloc(100000);
    nginx_files_ok = buf != NULL;
    for (size_t k = 0; k < NSIZES && nginx_files_ok; k++) {
        size_t n = nginx_sizes[k];
        for (size_t i = 0; i < n; i++)
            buf[i] = (unsigned char)((i * 7 + n % 251) % 251);
        SHA256(buf, n, nginx_sha[k]);
        char path[512];
        snprintf(path, sizeof path, "%s/ts-%zu", nginx_root, n);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        nginx_files_ok = fd >= 0 && write(fd, buf, n) == (ssize_t)n;
        if (fd >= 0) {
            fchmod(fd, 0644);
            close(fd);
        }
    }
    free(buf);
}

static bool sha_is(const char *b, size_t len, size_t k)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)b, len, md);
    return len == nginx_sizes[k] && memcmp(md, nginx_sha[k], sizeof md) == 0;
}

typedef struct soak_job {
    ag_client *c;
    unsigned index, count;
    unsigned ok, reused;
    int first_err;
    uint64_t conns[2]; /* the first and the last connection it used */
} soak_job;

static uint64_t soak_conn_seen[256];

static void soak_one(void *arg)
{
    soak_job *j = arg;
    for (unsigned i = 0; i < j->count; i++) {
        size_t k = (j->index + i) % NSIZES;
        char url[160];
        snprintf(url, sizeof url, "https://localhost:%d/ts-%zu", tls_port, nginx_sizes[k]);
        ag_response *r;
        int rc = get(j->c, url, &r);
        size_t len = 0;
        const char *b = rc == 0 ? ag_response_body(r, &len) : NULL;
        if (rc == 0 && (ag_response_status(r) != 200 || !sha_is(b, len, k)))
            rc = WRONG;
        if (rc == 0) {
            j->ok++;
            j->reused += ag_response_reused(r);
        } else if (!j->first_err) {
            j->first_err = rc;
        }
        ag_response_free(r);
    }
}

static void test_soak(void)
{
    unsigned total = soak() ? 10000 : sanitized ? 1000 : 2000;
    char name[160];
    snprintf(name, sizeof name, "tls_%u_requests_over_100_keepalive_connections_bodies_by_sha256",
             total);
    if (!runs(name))
        return;
    nginx_files();
    if (!nginx_files_ok) {
        tap_skip("%s: cannot write files into AG_NGINX_ROOT", name);
        return;
    }
    ag_client_opts o;
    ag_tls_opts t;
    client_opts(&o, &t, loop);
    o.max_conns_per_host = 100;
    ag_client *c;
    ag_client_new(&c, &o);
    static soak_job jobs[100];
    case_begin(name, 240);
    int64_t t0 = ag_now_ns();
    for (unsigned i = 0; i < 100; i++) {
        jobs[i] = (soak_job){.c = c, .index = i, .count = total / 100};
        ag_coro_spawn(loop, soak_one, &jobs[i], NULL);
    }
    ag_loop_run(loop);
    double secs = (double)(ag_now_ns() - t0) / 1e9;
    case_end();
    unsigned ok = 0, reused = 0;
    int err = 0;
    for (unsigned i = 0; i < 100; i++) {
        ok += jobs[i].ok;
        reused += jobs[i].reused;
        if (!err)
            err = jobs[i].first_err;
    }
    (void)soak_conn_seen;
    tap_ok(ok == total && reused >= total - 100,
           "%s: %u right, %u over reused connections, first error %s (%.1f s, %.0f/s, %s)", name,
           ok, reused, err ? err_text(err) : "none", secs, total / secs, ag_loop_backend());
    ag_client_free(c);
}

/* ---- many handshakes at once, and what the idle connections cost ---- */

typedef struct hs_job {
    ag_client *c;
    const char *url;
    int rc;
} hs_job;

static void hs_one(void *arg)
{
    hs_job *j = arg;
    ag_response *r;
    j->rc = get(j->c, j->url, &r);
    if (j->rc == 0 && (ag_response_status(r) != 200 || ag_response_body_bytes(r) != 13))
        j->rc = WRONG;
    ag_response_free(r);
}

static long vm_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static size_t heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

#define HS_MAX 1000

/* n connections opened at once (max_connecting limits the connects and handshakes in
 * progress); with measure, the memory of the n idle connections they leave in the pool. */
/* Connects and handshakes in progress, from the trace: an attempt starts at "connecting to" and
 * ends at "TLS handshake done" (every one of these succeeds). */
typedef struct inflight {
    int now, max;
} inflight;

static void count_inflight(void *arg, const ag_trace_event *ev)
{
    inflight *f = arg;
    if (ev->kind != AG_TRACE_INFO)
        return;
    if (ev->len >= 14 && memcmp(ev->data, "connecting to ", 14) == 0 && ++f->now > f->max)
        f->max = f->now;
    if (ev->len >= 18 && memcmp(ev->data, "TLS handshake done", 18) == 0)
        f->now--;
}

static void handshakes(const char *name, bool tls, unsigned n, unsigned max_connecting,
                       bool measure, double *per_conn_rss, double *per_conn_heap)
{
    if (!runs(name))
        return;
    ag_client_opts o;
    ag_tls_opts t;
    client_opts(&o, &t, loop);
    o.max_conns_per_host = n + 1;
    o.max_conns = n + 1;
    o.max_connecting = max_connecting;
    inflight fl = {0, 0};
    if (tls && max_connecting) {
        o.trace = count_inflight;
        o.trace_arg = &fl;
    }
    ag_client *c;
    ag_client_new(&c, &o);
    char url[160];
    snprintf(url, sizeof url, "%s://127.0.0.1:%d/hello", tls ? "https" : "http",
             tls ? tls_port : plain_nginx_port);
    static hs_job jobs[HS_MAX];
    case_begin(name, 120);
    /* One first: the context (and its CA store) is made then, outside the measure. */
    jobs[0] = (hs_job){c, url, -1};
    in_loop(hs_one, &jobs[0]);
    malloc_trim(0);
    long rss0 = vm_rss_kib();
    size_t heap0 = heap_bytes();
    for (unsigned i = 0; i < n; i++) {
        jobs[i] = (hs_job){c, url, -1};
        ag_coro_spawn(loop, hs_one, &jobs[i], NULL);
    }
    ag_loop_run(loop);
    long rss1 = vm_rss_kib();
    size_t heap1 = heap_bytes();
    unsigned ok = 0;
    int err = 0;
    for (unsigned i = 0; i < n; i++) {
        ok += jobs[i].rc == 0;
        if (jobs[i].rc && !err)
            err = jobs[i].rc;
    }
    ag_client_free(c);
    malloc_trim(0);
    size_t heap2 = heap_bytes();
    case_end();
    if (measure) {
        *per_conn_rss = (double)(rss1 - rss0) * 1024 / n;
        *per_conn_heap = ((double)heap1 - (double)heap2) / n;
        (void)heap0;
    }
    bool limit_ok = !o.trace || (fl.max <= (int)max_connecting && fl.now == 0);
    tap_ok(ok == n && limit_ok, "%s: %u of %u answered, first error %s%s", name, ok, n,
           err ? err_text(err) : "none",
           o.trace ? (limit_ok ? ", handshakes in progress within the limit"
                               : ", MORE handshakes in progress than max_connecting")
                   : "");
    if (o.trace)
        tap_diag("%s: at most %d connects and handshakes in progress at once", name, fl.max);
}

static void test_handshakes(void)
{
    unsigned n = soak() || !sanitized ? 1000 : 300;
    char name[160];
    double rss_tls = 0, heap_tls = 0, rss_plain = 0, heap_plain = 0;
    snprintf(name, sizeof name, "tls_%u_handshakes_at_once_max_connecting_16", soak() ? n : 300);
    handshakes(name, true, soak() ? n : 300, 16, false, NULL, NULL);
    snprintf(name, sizeof name, "tls_%u_handshakes_at_once_default_limits_idle_memory", n);
    handshakes(name, true, n, 0, true, &rss_tls, &heap_tls);
    snprintf(name, sizeof name, "plain_%u_connections_at_once_idle_memory", n);
    handshakes(name, false, n, 0, true, &rss_plain, &heap_plain);
    if (!wanted("idle_memory"))
        return;
    tap_diag("%u idle connections: TLS %.0f B RSS and %.0f B heap each; plain %.0f B RSS and "
             "%.0f B heap each",
             n, rss_tls, heap_tls, rss_plain, heap_plain);
    const char *mname = "tls_idle_connection_releases_its_buffers";
    if (!runs(mname))
        return;
    if (sanitized) {
        tap_skip("%s: the sanitizer's allocator makes heap counts meaningless", mname);
        return;
    }
    /* OpenSSL 3.0's own client, measured the same way against this nginx (500 idle TLS 1.3
     * connections, no session cache): 36.4 KB of heap each with SSL_MODE_RELEASE_BUFFERS, 53.1
     * KB without (the read and write buffers stay). asyncget measured 33.9 KB with the mode.
     * 44 KiB lies between: above it, a buffer stays with every idle connection. */
    tap_ok(heap_tls - heap_plain < 44 * 1024,
           "%s: %.0f B of heap per idle TLS connection above a plain one (with both buffers kept "
           "it would be about 53 KB)",
           mname, heap_tls - heap_plain);
}

/* ---- failing and passing handshakes side by side: each gets its own error ---- */

typedef struct verdict_job {
    ag_client *c;
    int port;
    int want;
    int rc;
} verdict_job;

static void verdict_one(void *arg)
{
    verdict_job *j = arg;
    char url[160];
    snprintf(url, sizeof url, "https://localhost:%d/ts-16385", j->port);
    ag_response *r;
    j->rc = get(j->c, url, &r);
    if (j->rc == 0) {
        size_t len;
        const char *b = ag_response_body(r, &len);
        if (ag_response_status(r) != 200 || !sha_is(b, len, 6))
            j->rc = WRONG;
    }
    ag_response_free(r);
}

#define VERDICTS 150

static void test_verdicts(void)
{
    const char *name = "tls_150_handshakes_valid_expired_wrongname_selfsigned_unknownca_at_once";
    if (!runs(name))
        return;
    nginx_files();
    struct {
        const char *env;
        int want;
    } kinds[] = {{"AG_TLS_PORT", 0},
                 {"AG_TLS_EXPIRED_PORT", AG_ETLS_EXPIRED},
                 {"AG_TLS_WRONGNAME_PORT", AG_ETLS_HOSTNAME},
                 {"AG_TLS_SELFSIGNED_PORT", AG_ETLS_UNTRUSTED},
                 {"AG_TLS_UNKNOWNCA_PORT", AG_ETLS_UNTRUSTED}};
    ag_client *c = new_client(loop);
    static verdict_job jobs[VERDICTS];
    case_begin(name, 60);
    for (int i = 0; i < VERDICTS; i++) {
        const char *e = getenv(kinds[i % 5].env);
        jobs[i] = (verdict_job){c, e ? atoi(e) : 0, kinds[i % 5].want, 1};
        ag_coro_spawn(loop, verdict_one, &jobs[i], NULL);
    }
    ag_loop_run(loop);
    case_end();
    int right = 0, first = -1;
    for (int i = 0; i < VERDICTS; i++) {
        if (jobs[i].rc == jobs[i].want)
            right++;
        else if (first < 0)
            first = i;
    }
    tap_ok(right == VERDICTS, "%s: %d of %d right%s%s%s%s", name, right, VERDICTS,
           first >= 0 ? "; first wrong: got " : "", first >= 0 ? err_text(jobs[first].rc) : "",
           first >= 0 ? ", wanted " : "", first >= 0 ? err_text(jobs[first].want) : "");
    ag_client_free(c);
}

/* ---- cancels in every phase, with the callback API ---- */

typedef struct cancel_job {
    unsigned tag;
    int calls;
    int rc;
    bool right;
    ag_coro *h;
} cancel_job;

static void cancel_cb(ag_client *c, ag_response *r, int status, void *arg)
{
    (void)c;
    cancel_job *j = arg;
    j->calls++;
    j->rc = status;
    if (status == 0) {
        char q[128];
        const char *method;
        size_t size;
        int st;
        burst_request(j->tag, q, sizeof q, &method, &size, &st);
        size_t len;
        const char *b = ag_response_body(r, &len);
        const char *xt = ag_response_header(r, "X-Tag");
        j->right = ag_response_status(r) == st && xt && (unsigned)atoi(xt) == j->tag &&
                   body_is(b, len, size, j->tag);
    }
    ag_response_free(r);
}

typedef struct cancel_timer {
    ag_timer t;
    cancel_job *j;
} cancel_timer;

static void cancel_fire(ag_timer *t, void *arg)
{
    (void)t;
    cancel_timer *ct = arg;
    ag_coro_cancel(ct->j->h);
}

#define CANCELS 150

static void test_cancels(void)
{
    const char *name = "tls_150_requests_a_third_cancelled_at_random_times_rest_right";
    if (!runs(name))
        return;
    ag_client_opts o;
    ag_tls_opts t;
    client_opts(&o, &t, loop);
    o.max_conns_per_host = 8;
    ag_client *c;
    ag_client_new(&c, &o);
    static cancel_job jobs[CANCELS];
    static cancel_timer timers[CANCELS];
    uint32_t rng = 7;
    case_begin(name, 60);
    for (unsigned i = 0; i < CANCELS; i++) {
        jobs[i] = (cancel_job){.tag = 3000 + i};
        char q[128], url[256];
        const char *method;
        size_t size;
        int st;
        burst_request(jobs[i].tag, q, sizeof q, &method, &size, &st);
        snprintf(url, sizeof url, "https://localhost:%d/r?%s", peer13, q);
        ag_request req;
        ag_request_init(&req);
        req.url = url;
        req.method = method;
        ag_fetch_start(c, &req, cancel_cb, &jobs[i], &jobs[i].h);
        if (i % 3 == 0) {
            rng = rng * 1103515245u + 12345u;
            timers[i].j = &jobs[i];
            ag_timer_init(&timers[i].t, cancel_fire, &timers[i]);
            ag_timer_start(loop, &timers[i].t, ag_now_ns() + (int64_t)((rng >> 8) % 80) * 1000000);
        }
    }
    ag_loop_run(loop);
    case_end();
    int once = 0, right = 0, must = 0, cancelled = 0;
    for (unsigned i = 0; i < CANCELS; i++) {
        once += jobs[i].calls == 1;
        if (i % 3 != 0) {
            must++;
            right += jobs[i].rc == 0 && jobs[i].right;
        } else {
            cancelled += jobs[i].rc == -ECANCELED;
            /* One that finished before its cancel must be right too. */
            right += jobs[i].rc == -ECANCELED || (jobs[i].rc == 0 && jobs[i].right);
            must++;
        }
        ag_coro_unref(jobs[i].h);
    }
    int freed = ag_client_free(c);
    tap_ok(once == CANCELS && right == must && freed == 0,
           "%s: callbacks once %d of %d, right %d of %d (%d cancelled), client free %d", name, once,
           CANCELS, right, must, cancelled, freed);
}

/* ---- a foreign loop drives everything through ag_loop_fd and ag_loop_run_once ---- */

typedef struct foreign_job {
    const char *url;
    size_t size;
    unsigned tag;
    int nginx_k; /* index in nginx_sizes, or -1 for the peer's pattern */
    int rc;
    bool right;
    bool done;
} foreign_job;

static void foreign_cb(ag_client *c, ag_response *r, int status, void *arg)
{
    (void)c;
    foreign_job *j = arg;
    j->rc = status;
    j->done = true;
    if (status == 0) {
        size_t len;
        const char *b = ag_response_body(r, &len);
        j->right =
            ag_response_status(r) == 200 && (j->nginx_k >= 0 ? sha_is(b, len, (size_t)j->nginx_k)
                                                             : body_is(b, len, j->size, j->tag));
    }
    ag_response_free(r);
}

#define FOREIGN 60

static void test_foreign_loop(void)
{
    const char *name = "tls_foreign_loop_drives_60_requests_through_loop_fd_and_run_once";
    if (!runs(name))
        return;
    ag_loop *fl;
    ag_loop_new(&fl, NULL);
    int fd = ag_loop_fd(fl);
    if (fd < 0) {
        tap_skip("%s: no loop fd on this backend (%s)", name, ag_loop_backend());
        ag_loop_free(fl);
        return;
    }
    nginx_files();
    ag_client *c = new_client(fl);
    static foreign_job jobs[FOREIGN];
    static char urls[FOREIGN][200];
    case_begin(name, 60);
    for (int i = 0; i < FOREIGN; i++) {
        foreign_job *j = &jobs[i];
        *j = (foreign_job){.url = urls[i], .nginx_k = -1, .tag = 50 + (unsigned)i};
        switch (i % 4) {
        case 0: /* records of one byte: most of the body is decrypted out of OpenSSL's buffer,
                 * with no readiness to announce it */
            j->size = 3000;
            snprintf(urls[i], sizeof urls[i], "https://localhost:%d/r?size=3000&rec=1&tag=%u",
                     peer13, j->tag);
            break;
        case 1:
            j->size = 100000;
            snprintf(urls[i], sizeof urls[i], "https://localhost:%d/r?size=100000&split=5&tag=%u",
                     peer13, j->tag);
            break;
        case 2:
            j->nginx_k = (int)(i % NSIZES);
            snprintf(urls[i], sizeof urls[i], "https://localhost:%d/ts-%zu", tls_port,
                     nginx_sizes[j->nginx_k]);
            break;
        case 3:
            j->size = 40000;
            snprintf(urls[i], sizeof urls[i],
                     "https://localhost:%d/r?size=40000&chunked=1&rec=100&tag=%u", peer12, j->tag);
            break;
        }
        ag_request req;
        ag_request_init(&req);
        req.url = urls[i];
        ag_fetch_start(c, &req, foreign_cb, j, NULL);
    }
    /* The host's loop: wait on the fd for at most what the loop asks, then one iteration. */
    int iterations = 0;
    for (;;) {
        int done = 0;
        for (int i = 0; i < FOREIGN; i++)
            done += jobs[i].done;
        if (done == FOREIGN)
            break;
        struct pollfd p = {fd, POLLIN, 0};
        poll(&p, 1, ag_loop_timeout_ms(fl));
        ag_loop_run_once(fl, 0);
        iterations++;
    }
    case_end();
    int right = 0;
    for (int i = 0; i < FOREIGN; i++)
        right += jobs[i].rc == 0 && jobs[i].right;
    tap_ok(right == FOREIGN, "%s: %d of %d right (%d iterations)", name, right, FOREIGN,
           iterations);
    ag_client_free(c);
    while (ag_loop_run_once(fl, 0) > 0)
        ;
    ag_loop_free(fl);
}

/* ---- per-request settings side by side: an insecure connection never serves a verifying
 * request, nor the other way round ---- */

typedef struct mix_job {
    ag_client *c;
    const ag_tls_opts *tls; /* NULL: the client's (verifying against the test CA) */
    int port;
    int rc;
    int verified;
} mix_job;

static void mix_one(void *arg)
{
    mix_job *j = arg;
    char url[160];
    for (int round = 0; round < 3; round++) {
        snprintf(url, sizeof url, "https://localhost:%d/hello", j->port);
        ag_request req;
        ag_request_init(&req);
        req.url = url;
        req.tls = j->tls;
        ag_response *r;
        int rc = ag_fetch(j->c, &req, &r);
        ag_tls_info ti;
        if (rc == 0 && (ag_response_status(r) != 200 || ag_response_tls(r, &ti) != 0))
            rc = WRONG;
        if (round == 0 || rc != j->rc)
            j->rc = round == 0 ? rc : WRONG; /* every round the same outcome */
        j->verified = rc == 0 && ti.verified;
        ag_response_free(r);
        ag_yield();
    }
}

#define MIX 60

static void test_mix(void)
{
    const char *name = "tls_insecure_and_verifying_requests_side_by_side_never_share_connections";
    if (!runs(name))
        return;
    const char *e = getenv("AG_TLS_SELFSIGNED_PORT");
    int selfsigned = e ? atoi(e) : 0;
    ag_client_opts o;
    ag_tls_opts t, insecure;
    client_opts(&o, &t, loop);
    o.max_conns_per_host = 4;
    ag_tls_opts_init(&insecure);
    insecure.insecure = 1;
    ag_client *c;
    ag_client_new(&c, &o);
    static mix_job jobs[MIX];
    case_begin(name, 60);
    for (int i = 0; i < MIX; i++) {
        /* Against the self-signed server: verifying fails, insecure passes; against the valid
         * one both pass, and only the verifying ones say verified. */
        jobs[i] = (mix_job){c, i % 2 ? &insecure : NULL, i % 4 < 2 ? selfsigned : tls_port, 1, 0};
        ag_coro_spawn(loop, mix_one, &jobs[i], NULL);
    }
    ag_loop_run(loop);
    case_end();
    int right = 0;
    for (int i = 0; i < MIX; i++) {
        bool ins = i % 2, self = i % 4 < 2;
        int want = self && !ins ? AG_ETLS_UNTRUSTED : 0;
        right += jobs[i].rc == want && (want || jobs[i].verified == !ins);
    }
    tap_ok(right == MIX, "%s: %d of %d right", name, right, MIX);
    ag_client_free(c);
}

/* ---- body consumers that wait, side by side: bytes left in OpenSSL while they sleep ---- */

typedef struct sink_job {
    ag_client *c;
    unsigned tag;
    size_t got;
    bool right;
    int rc;
} sink_job;

static int slow_sink(void *arg, const char *data, size_t len)
{
    sink_job *j = arg;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)data[i] != ((j->got + i) * 7 + j->tag) % 251)
            j->right = false;
    j->got += len;
    /* The others read meanwhile; this one's records wait in OpenSSL or the socket. */
    return ag_sleep_ms(1) < 0 ? -1 : 0;
}

static void sink_one(void *arg)
{
    sink_job *j = arg;
    char url[200];
    snprintf(url, sizeof url, "https://localhost:%d/r?size=120000&rec=%u&tag=%u", peer13,
             500 + j->tag % 7 * 1000, j->tag);
    ag_request req;
    ag_request_init(&req);
    req.url = url;
    req.sink = AG_SINK_CALLBACK;
    req.on_body = slow_sink;
    req.on_body_arg = j;
    j->right = true;
    ag_response *r;
    j->rc = ag_fetch(j->c, &req, &r);
    ag_response_free(r);
}

#define SINKS 20

static void test_slow_sinks(void)
{
    const char *name = "tls_20_bodies_to_consumers_that_sleep_each_piece_arrive_whole";
    if (!runs(name))
        return;
    ag_client *c = new_client(loop);
    static sink_job jobs[SINKS];
    case_begin(name, 60);
    for (unsigned i = 0; i < SINKS; i++) {
        jobs[i] = (sink_job){.c = c, .tag = 70 + i};
        ag_coro_spawn(loop, sink_one, &jobs[i], NULL);
    }
    ag_loop_run(loop);
    case_end();
    int right = 0;
    for (unsigned i = 0; i < SINKS; i++)
        right += jobs[i].rc == 0 && jobs[i].right && jobs[i].got == 120000;
    tap_ok(right == SINKS, "%s: %d of %d whole and right", name, right, SINKS);
    ag_client_free(c);
}

/* ---- an idle connection the pool closes itself, then a new one that resumes ---- */

typedef struct expire_run {
    ag_client *c;
    int rc;
    int reused, resumed;
} expire_run;

static void expire_main(void *arg)
{
    expire_run *er = arg;
    char url[160];
    snprintf(url, sizeof url, "https://localhost:%d/hello", tls_port);
    ag_response *r;
    er->rc = get(er->c, url, &r);
    ag_response_free(r);
    if (er->rc)
        return;
    ag_sleep_ms(200); /* past keepalive_idle_ms: the pool closes the connection */
    er->rc = get(er->c, url, &r);
    ag_tls_info ti;
    er->reused = r ? ag_response_reused(r) : 0;
    er->resumed = er->rc == 0 && ag_response_tls(r, &ti) == 0 && ti.resumed;
    ag_response_free(r);
}

static void test_expire(void)
{
    const char *name = "tls_idle_connection_expired_by_the_pool_next_one_resumes";
    if (!runs(name))
        return;
    ag_client_opts o;
    ag_tls_opts t;
    client_opts(&o, &t, loop);
    o.keepalive_idle_ms = 50;
    expire_run er = {0};
    ag_client_new(&er.c, &o);
    case_begin(name, 20);
    in_loop(expire_main, &er);
    case_end();
    tap_ok(er.rc == 0 && !er.reused && er.resumed, "%s: %s, %s, %s", name, err_text(er.rc),
           er.reused ? "REUSED" : "new connection", er.resumed ? "resumed" : "NOT resumed");
    ag_client_free(er.c);
}

int main(int argc, char **argv)
{
    const char *e;
    if (!(e = getenv("AG_TLS_PORT")) || !(tls_port = atoi(e)) || argc < 2) {
        printf("1..0 # SKIP needs with-servers --nginx --tls and the path of stress_peer.py\n");
        return 0;
    }
    tls12_port = atoi(getenv("AG_TLS12_PORT"));
    plain_nginx_port = atoi(getenv("AG_NGINX_PORT"));
    ca_file = getenv("AG_TLS_CA");
    tls_dir = getenv("AG_TLS_DIR");
    nginx_root = getenv("AG_NGINX_ROOT");
    expired_port = atoi(getenv("AG_TLS_EXPIRED_PORT") ? getenv("AG_TLS_EXPIRED_PORT") : "0");
    const char *wrapper = getenv("AG_TEST_WRAPPER");
    if (wrapper && *wrapper)
        slowdown = 20;
    /* Smaller counts, and no heap figures, with another allocator and a slower program. */
    sanitized = (getenv("AG_SANITIZED") && *getenv("AG_SANITIZED")) || slowdown > 1;
    /* SIGPIPE keeps its default: a write to a reset peer must never raise it. */
    signal(SIGALRM, on_alarm);
    if (peer_start(argv[1]) < 0) {
        printf("1..0 # SKIP stress_peer.py did not start\n");
        peer_stop();
        return 0;
    }
    ag_loop_new(&loop, NULL);
    tap_diag("backend %s", ag_loop_backend());

    test_shapes();
    test_cut();
    test_keepalive_sequence();
    test_idle_events();
    test_burst();
    test_tail();
    test_redirects();
    test_uploads();
    test_resumption();
    test_churn_resume();
    test_burst_resume();
    test_soak();
    test_handshakes();
    test_verdicts();
    test_mix();
    test_slow_sinks();
    test_expire();
    test_cancels();
    test_foreign_loop();

    ag_loop_free(loop);
    peer_stop();
    return tap_done();
}
