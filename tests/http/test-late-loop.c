/* test-late-loop.c: a loop held late in every iteration (a long iteration, a starved process)
 * while a server never lets a wait run dry: it trickles the body or the head a byte at a time
 * within the idle timeout, floods the body, or reads an upload slowly. A wait whose deadline the
 * late loop finds passed still takes readiness that came meanwhile; the total deadline must end
 * the request all the same, with AG_ETOTAL_TIMEOUT, no earlier than asked. How far past it the
 * request ends is reported, never asserted. No server program: a thread serves. */
#include "tests/http/util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>

#define TOTAL_MS 500
#define HOLD_MS  120 /* longer than the idle and connect timeouts */
/* A server that is never stopped gives up after this long, so that a client that never ends
 * the request fails the test instead of hanging it. */
#define SERVER_GIVES_UP_NS (15 * 1000000000LL)

enum mode { TRICKLE_BODY, TRICKLE_HEAD, FLOOD_BODY, SLOW_READER };

static const char *const mode_name[] = {"trickled_body", "trickled_head", "flooded_body",
                                        "slowly_read_upload"};

typedef struct server {
    int l;
    enum mode mode;
} server;

static atomic_bool request_over;

static void *serve(void *arg)
{
    server *s = arg;
    int c = accept(s->l, NULL, NULL);
    if (c < 0)
        return NULL;
    static char buf[65536];
    if (s->mode != SLOW_READER && read(c, buf, sizeof buf) <= 0)
        goto out;
    memset(buf, 'x', sizeof buf);
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n";
    if ((s->mode == TRICKLE_BODY || s->mode == FLOOD_BODY) &&
        send(c, head, sizeof head - 1, MSG_NOSIGNAL) < 0)
        goto out;
    int64_t end = ag_now_ns() + SERVER_GIVES_UP_NS;
    for (bool first = true; !atomic_load(&request_over) && ag_now_ns() < end; first = false) {
        ssize_t n;
        switch (s->mode) {
        case TRICKLE_BODY:
            usleep(30 * 1000); /* within the client's 40 ms idle timeout */
            n = send(c, "x", 1, MSG_NOSIGNAL);
            break;
        case TRICKLE_HEAD:
            usleep(30 * 1000);
            n = first ? send(c, "HTTP/1.1 200 OK\r\nX: ", 20, MSG_NOSIGNAL)
                      : send(c, "y", 1, MSG_NOSIGNAL);
            break;
        case FLOOD_BODY:
            n = send(c, buf, sizeof buf, MSG_NOSIGNAL);
            break;
        default:
            usleep(30 * 1000);
            n = read(c, buf, 4096);
            break;
        }
        if (n <= 0)
            break;
    }
out:
    close(c);
    return NULL;
}

static int holds;

/* Holds the thread HOLD_MS in each iteration of the loop until the request ends, after the
 * request's coroutine has run (the yield puts this one behind it) and before the poll. */
static void hold_late(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200 && !atomic_load(&request_over); i++) {
        ag_yield();
        usleep(HOLD_MS * 1000);
        holds++;
        ag_sleep_ms(0);
    }
}

/* An upload that never ends: sent chunked for as long as the server takes it. */
static ptrdiff_t endless(void *arg, void *buf, size_t cap)
{
    (void)arg;
    memset(buf, 'u', cap);
    return (ptrdiff_t)cap;
}

typedef struct late_case {
    enum mode mode;
    bool per_request; /* the request's timeout_ms rather than the client's total_timeout_ms */
    int port;
} late_case;

static ag_loop *loop;

static void run_case(void *arg)
{
    late_case *lc = arg;
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.connect_timeout_ms = 40;
    o.idle_timeout_ms = 40;
    o.total_timeout_ms = lc->per_request ? 60000 : TOTAL_MS;
    ag_client *c;
    if (ag_client_new(&c, &o) < 0)
        abort();
    holds = 0;
    ag_coro_spawn(loop, hold_late, NULL, NULL); /* runs once this coroutine parks */
    ag_request req;
    ag_request_init(&req);
    req.url = url_of(lc->port, "/late");
    req.sink = AG_SINK_DISCARD;
    if (lc->per_request)
        req.timeout_ms = TOTAL_MS;
    if (lc->mode == SLOW_READER) {
        req.method = "POST";
        req.body_kind = AG_BODY_READER;
        req.body_read = endless;
    }
    ag_response *r;
    int64_t t0 = ag_now_ns();
    int rc = ag_fetch(c, &req, &r);
    int64_t el = ag_now_ns() - t0;
    atomic_store(&request_over, true);
    tap_ok(rc == AG_ETOTAL_TIMEOUT && el >= TOTAL_MS * 1000000LL && holds >= 2,
           "late_loop_total_%s%s: over a loop held %d ms per iteration the request ends with %s "
           "after %lld ms (%s %d ms; %d holds, %llu body bytes)",
           mode_name[lc->mode], lc->per_request ? "_request_timeout" : "", HOLD_MS, ag_err_name(rc),
           (long long)(el / 1000000), lc->per_request ? "request timeout_ms" : "total_timeout_ms",
           TOTAL_MS, holds, r ? (unsigned long long)ag_response_body_bytes(r) : 0ULL);
    ag_response_free(r);
    ag_client_free(c);
}

static void one_case(enum mode mode, bool per_request)
{
    server s = {socket(AF_INET, SOCK_STREAM, 0), mode};
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (s.l < 0 || bind(s.l, (struct sockaddr *)&a, sizeof a) < 0 || listen(s.l, 8) < 0 ||
        getsockname(s.l, (struct sockaddr *)&a, &alen) < 0) {
        tap_skip("late_loop_total: no loopback listener");
        if (s.l >= 0)
            close(s.l);
        return;
    }
    atomic_store(&request_over, false);
    late_case lc = {mode, per_request, ntohs(a.sin_port)};
    pthread_t th;
    pthread_create(&th, NULL, serve, &s);
    ag_coro_spawn(loop, run_case, &lc, NULL);
    ag_loop_run(loop);
    shutdown(s.l, SHUT_RDWR);
    pthread_join(th, NULL);
    close(s.l);
}

int main(void)
{
    tap_diag("backend: %s", ag_loop_backend());
    ag_loop_new(&loop, NULL);
    one_case(TRICKLE_BODY, false);
    one_case(TRICKLE_BODY, true);
    one_case(TRICKLE_HEAD, false);
    one_case(FLOOD_BODY, false);
    one_case(SLOW_READER, false);
    ag_loop_free(loop);
    return tap_done();
}
