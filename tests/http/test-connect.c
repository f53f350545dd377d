/* test-connect.c: connect deadlines against a listener whose queue is full (SYNs go
 * unanswered), without any server program: the connect timeout and the total timeout each give
 * their own error, no earlier than asked, and the client still works afterwards. */
#include "tests/http/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>

static ag_loop *loop;
static int lport;

/* A listener that never accepts, with its queue filled: further SYNs are dropped. */
static int blackhole(int *fill, int nfill)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 0) < 0 ||
        getsockname(l, (struct sockaddr *)&a, &len) < 0)
        return -1;
    lport = ntohs(a.sin_port);
    for (int i = 0; i < nfill; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fill[i], (struct sockaddr *)&a, sizeof a);
    }
    usleep(100 * 1000); /* let the handshakes that can complete do so */
    return l;
}

static void run(void *arg)
{
    (void)arg;
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.connect_timeout_ms = 300;
    ag_client *c;
    ag_client_new(&c, &o);
    int64_t t0 = ag_now_ns();
    int rc;
    ag_response *r = get(c, url_of(lport, "/"), &rc);
    int64_t el = ag_now_ns() - t0;
    tap_ok(rc == AG_ECONNECT_TIMEOUT && el >= 300 * 1000000LL,
           "connect_timeout: %s after %lld ms (at least 300)", ag_err_name(rc),
           (long long)(el / 1000000));
    ag_response_free(r);

    ag_request req;
    ag_request_init(&req);
    req.url = url_of(lport, "/");
    req.timeout_ms = 150; /* the total deadline comes before the connect timeout */
    t0 = ag_now_ns();
    rc = ag_fetch(c, &req, &r);
    el = ag_now_ns() - t0;
    tap_ok(rc == AG_ETOTAL_TIMEOUT && el >= 150 * 1000000LL,
           "connect_total_timeout: %s after %lld ms (at least 150)", ag_err_name(rc),
           (long long)(el / 1000000));
    ag_response_free(r);
    ag_client_free(c);
}

/* One connection on [::1]:port answered with a small response. */
static void *answer_one(void *arg)
{
    int l = *(int *)arg;
    int s = accept(l, NULL, NULL);
    if (s < 0)
        return NULL;
    char buf[4096];
    ssize_t n = read(s, buf, sizeof buf);
    (void)n;
    static const char resp[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    n = write(s, resp, sizeof resp - 1);
    close(s);
    return NULL;
}

/* localhost resolves to 127.0.0.1 then ::1: with the first a black hole, Happy Eyeballs starts
 * the second one attempt delay (250 ms by default) after the first, while the first goes on, and
 * the second wins. */
static void second_address(void *arg)
{
    (void)arg;
    int l6 = socket(AF_INET6, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(l6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)lport)};
    a6.sin6_addr = in6addr_loopback;
    if (l6 < 0 || bind(l6, (struct sockaddr *)&a6, sizeof a6) < 0 || listen(l6, 8) < 0) {
        tap_skip("connect_timeout_shared_by_addresses: no [::1]:%d listener (IPv6 loopback?)",
                 lport);
        if (l6 >= 0)
            close(l6);
        return;
    }
    pthread_t th;
    pthread_create(&th, NULL, answer_one, &l6);
    ag_client_opts o = {0};
    o.loop = loop;
    o.connect_timeout_ms = 1000;
    ag_client *c;
    ag_client_new(&c, &o);
    char url[64];
    snprintf(url, sizeof url, "http://localhost:%d/", lport);
    int rc;
    int64_t t0 = ag_now_ns();
    ag_response *r = get(c, url, &rc);
    int64_t el = ag_now_ns() - t0;
    char want[32];
    snprintf(want, sizeof want, "[::1]:%d", lport);
    tap_ok(rc == 0 && ag_response_status(r) == 200 && strcmp(ag_response_peer(r), want) == 0 &&
               el >= 250 * 1000000LL,
           "connect_timeout_shared_by_addresses: a dead first address does not hold up the "
           "second, started one attempt delay later (%s via %s after %lld ms, at least 250)",
           ag_err_name(rc), ag_response_peer(r), (long long)(el / 1000000));
    ag_response_free(r);
    ag_client_free(c);
    shutdown(l6, SHUT_RDWR); /* wakes the thread's accept when no connection came */
    pthread_join(th, NULL);
    close(l6);
}

/* ---- a late loop ----
 * The loop is held up (a long iteration, a starved process) for longer than the connect and idle
 * timeouts, while the connect completes and the answer comes at once: the request succeeds. */

typedef struct late_server {
    int l;
    int port;
} late_server;

static void *answer_at_once(void *arg)
{
    late_server *ls = arg;
    int s = accept(ls->l, NULL, NULL);
    if (s < 0)
        return NULL;
    char buf[4096];
    ssize_t n = read(s, buf, sizeof buf);
    (void)n;
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate";
    usleep(20 * 1000); /* after the client has parked for it, within its idle timeout */
    n = write(s, resp, sizeof resp - 1);
    n = read(s, buf, sizeof buf); /* until the client closes */
    close(s);
    return NULL;
}

static bool late_done;

static int late_blocks;

/* Holds the thread 120 ms in each iteration of the loop until the request ends, after the
 * request's coroutine has run (the yield puts this one behind it) and before the poll. */
static void late_blocker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 50 && !late_done; i++) {
        ag_yield();
        usleep(120 * 1000);
        late_blocks++;
        ag_sleep_ms(0);
    }
}

static void late_loop(void *arg)
{
    late_server *ls = arg;
    ag_client_opts o = {0};
    o.loop = loop;
    o.connect_timeout_ms = 40;
    o.idle_timeout_ms = 40;
    ag_client *c;
    ag_client_new(&c, &o);
    ag_coro_spawn(loop, late_blocker, NULL, NULL); /* runs once this coroutine parks */
    int rc;
    int64_t t0 = ag_now_ns();
    ag_response *r = get(c, url_of(ls->port, "/late"), &rc);
    int64_t el = ag_now_ns() - t0;
    late_done = true;
    size_t len = 0;
    const char *body = r ? ag_response_body(r, &len) : NULL;
    tap_ok(rc == 0 && ag_response_status(r) == 200 && len == 4 && memcmp(body, "late", 4) == 0 &&
               late_blocks >= 2,
           "late_loop_connect_and_answer: a loop held 120 ms per iteration, with connect and idle "
           "timeouts of 40 ms, still takes the connect and answer that came in time: %s, %d, "
           "after %lld ms and %d holds",
           ag_err_name(rc), ag_response_status(r), (long long)(el / 1000000), late_blocks);
    ag_response_free(r);
    ag_client_free(c);
}

int main(void)
{
    int fill[64];
    int l = blackhole(fill, 64);
    if (l < 0) {
        tap_skip("connect: no loopback listener could be made");
        return tap_done();
    }
    ag_loop_new(&loop, NULL);
    ag_coro_spawn(loop, run, NULL, NULL);
    ag_loop_run(loop);
    ag_coro_spawn(loop, second_address, NULL, NULL);
    ag_loop_run(loop);
    late_server ls = {socket(AF_INET, SOCK_STREAM, 0), 0};
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (ls.l < 0 || bind(ls.l, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls.l, 8) < 0 ||
        getsockname(ls.l, (struct sockaddr *)&a, &alen) < 0) {
        tap_skip("late_loop_connect_and_answer: no second loopback listener");
    } else {
        ls.port = ntohs(a.sin_port);
        pthread_t th;
        pthread_create(&th, NULL, answer_at_once, &ls);
        ag_coro_spawn(loop, late_loop, &ls, NULL);
        ag_loop_run(loop);
        shutdown(ls.l, SHUT_RDWR);
        pthread_join(th, NULL);
    }
    if (ls.l >= 0)
        close(ls.l);
    ag_loop_free(loop);
    for (int i = 0; i < 64; i++)
        close(fill[i]);
    close(l);
    return tap_done();
}
