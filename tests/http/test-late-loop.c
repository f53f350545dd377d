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
#include <errno.h>
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

/* ---- a chain of waits under one deadline ----
 * The last look saves a wait whose readiness the late loop finds with its deadline, but not the
 * next wait under the same deadline, which begins after it and returns -ETIMEDOUT at once: the
 * connect after a DNS answer that came in time, or a second request's wait for the slot the first
 * frees once the late loop gets to its answer. These cases say KNOWN (a skip) while that is so,
 * and pass once such a request succeeds. */

/* One A record, 127.0.0.1, for whatever is asked: a DNS server in a thread. */
static void *dns_answer(void *arg)
{
    int u = *(int *)arg;
    unsigned char q[512], a[600];
    for (;;) {
        struct sockaddr_in from;
        socklen_t flen = sizeof from;
        ssize_t n = recvfrom(u, q, sizeof q, 0, (struct sockaddr *)&from, &flen);
        if (n < 12)
            return NULL;
        size_t i = 12;
        while (i < (size_t)n && q[i])
            i += (size_t)q[i] + 1;
        i += 5; /* the root label, type and class */
        if (i > (size_t)n)
            continue;
        memcpy(a, q, i);
        a[2] = 0x81; /* a response, recursion desired and available, no error */
        a[3] = 0x80;
        a[6] = 0, a[7] = 1;   /* one answer */
        a[8] = 0, a[9] = 0;   /* no authority */
        a[10] = 0, a[11] = 0; /* no additional records (the query's OPT is not echoed) */
        static const unsigned char rr[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1};
        memcpy(a + i, rr, sizeof rr);
        sendto(u, a, i + sizeof rr, 0, (struct sockaddr *)&from, flen);
    }
}

static void *answer_each(void *arg)
{
    int l = *(int *)arg;
    for (;;) {
        int s = accept(l, NULL, NULL);
        if (s < 0)
            return NULL;
        char buf[4096];
        static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        /* The answer comes after the client has parked for it (within its idle timeout), so
         * that the late loop sees it one iteration later, whatever the scheduling. */
        while (read(s, buf, sizeof buf) > 0 && usleep(20 * 1000) == 0)
            if (send(s, resp, sizeof resp - 1, MSG_NOSIGNAL) < 0)
                break;
        close(s);
    }
}

typedef struct chain {
    ag_client *c;
    int port;
    const char *host;
    int rc[2];
    int finished;
} chain;

static void chain_fetch(void *arg)
{
    chain *ch = arg;
    int i = ch->rc[0] == 99 ? 0 : 1;
    ch->rc[i] = 98;
    char url[128];
    snprintf(url, sizeof url, "http://%s:%d/%d", ch->host, ch->port, i);
    ag_request req;
    ag_request_init(&req);
    req.url = url;
    ag_response *r;
    int rc = ag_fetch(ch->c, &req, &r);
    ch->rc[i] = rc == 0 && ag_response_status(r) == 200 ? 0 : rc ? rc : -EPROTO;
    ag_response_free(r);
    if (++ch->finished == 2 || ch->rc[1] == 99)
        atomic_store(&request_over, true);
}

static int loopback_socket(int type, int *port)
{
    int s = socket(AF_INET, type, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 ||
        (type == SOCK_STREAM && listen(s, 8) < 0) ||
        getsockname(s, (struct sockaddr *)&a, &alen) < 0) {
        if (s >= 0)
            close(s);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return s;
}

static void chain_case(const char *name, bool dns)
{
    int port, dport = 0;
    int l = loopback_socket(SOCK_STREAM, &port);
    int u = dns ? loopback_socket(SOCK_DGRAM, &dport) : -2;
    if (l < 0 || u == -1) {
        tap_skip("%s: no loopback sockets", name);
        if (l >= 0)
            close(l);
        return;
    }
    char dns_server[32];
    snprintf(dns_server, sizeof dns_server, "127.0.0.1:%d", dport);
    pthread_t th, dth;
    pthread_create(&th, NULL, answer_each, &l);
    if (dns)
        pthread_create(&dth, NULL, dns_answer, &u);
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.connect_timeout_ms = 40;
    o.idle_timeout_ms = 40;
    if (dns) {
        o.dns_servers = dns_server;
        o.ip_family = AG_IP_V4;
    } else {
        o.max_conns_per_host = 1;
        o.pool_timeout_ms = 40;
    }
    chain ch = {.port = port, .host = dns ? "late.test" : "127.0.0.1", .rc = {99, 99}};
    if (ag_client_new(&ch.c, &o) < 0)
        abort();
    atomic_store(&request_over, false);
    holds = 0;
    ag_coro_spawn(loop, chain_fetch, &ch, NULL);
    if (!dns)
        ag_coro_spawn(loop, chain_fetch, &ch, NULL); /* queued behind the first for the slot */
    ag_coro_spawn(loop, hold_late, NULL, NULL);
    ag_loop_run(loop);
    int last = dns ? ch.rc[0] : ch.rc[1];
    int known = dns ? AG_ECONNECT_TIMEOUT : AG_EPOOL_TIMEOUT;
    if (last == known && ch.rc[0] == (dns ? known : 0))
        tap_skip("KNOWN %s: over a loop held %d ms per iteration the request fails with %s though "
                 "every answer came within its timeout (README, Known limits: a late loop)",
                 name, HOLD_MS, ag_err_name(last));
    else
        tap_ok(ch.rc[0] == 0 && last == 0,
               "%s: over a loop held %d ms per iteration, with 40 ms timeouts, requests whose "
               "answered in time succeed: %s, %s (%d holds)",
               name, HOLD_MS, ag_err_name(ch.rc[0]), dns ? "-" : ag_err_name(ch.rc[1]), holds);
    ag_client_free(ch.c);
    shutdown(l, SHUT_RDWR);
    pthread_join(th, NULL);
    close(l);
    if (dns) {
        shutdown(u, SHUT_RDWR);
        close(u); /* ends recvfrom */
        pthread_join(dth, NULL);
    }
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
    chain_case("late_loop_chain_dns_then_connect", true);
    chain_case("late_loop_chain_pool_slot", false);
    ag_loop_free(loop);
    return tap_done();
}
