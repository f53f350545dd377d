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
#include "tests/tap.h"

#include <errno.h>
#include <fcntl.h>
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
static const struct {
    const char *name, *fault;
    const char *backends; /* where it happens: NULL everywhere, else a list of names */
} known_faults[] = {
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

/* The case that runs next, and how long it may take before it counts as stalled. */
static void case_begin(const char *name, unsigned seconds)
{
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
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
        return -1;
    peer_pid = fork();
    if (peer_pid < 0)
        return -1;
    if (peer_pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        execl("/usr/bin/python3", "python3", script, cert, key, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    peer_in = in[1];
    char line[64];
    size_t got = 0;
    while (got < sizeof line - 1) {
        struct pollfd p = {out[0], POLLIN, 0};
        if (poll(&p, 1, 20000) != 1)
            break;
        ssize_t r = read(out[0], line + got, 1);
        if (r <= 0 || line[got] == '\n')
            break;
        got++;
    }
    line[got] = 0;
    close(out[0]);
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

static void client_opts(ag_client_opts *o, ag_tls_opts *t, ag_loop *l)
{
    ag_client_opts_init(o);
    ag_tls_opts_init(t);
    t->ca_file = ca_file;
    o->tls = t;
    o->loop = l;
    o->idle_timeout_ms = 20000;
    o->connect_timeout_ms = 20000;
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
        o.idle_timeout_ms = 1000;
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
    for (unsigned i = 0; i < KA_STEPS * 2; i++) {
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
            tap_ok(k.done == KA_STEPS * 2 && k.conns == 1,
                   "%s: %u of %zu right, %u connections%s%s", name, k.done, KA_STEPS * 2, k.conns,
                   k.failed[0] ? "; first wrong: " : "", k.failed);
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
            if (v == 2 && strcmp(ic->action, "close_notify") == 0)
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
    sanitized = getenv("AG_SANITIZED") != NULL;
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

    ag_loop_free(loop);
    peer_stop();
    return tap_done();
}
