/* test-connect.c: connect deadlines against a listener whose queue is full (SYNs go
 * unanswered), without any server program: the connect timeout and the total timeout each give
 * their own error, no earlier than asked, and the client still works afterwards. */
#include "tests/http/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
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
    ag_loop_free(loop);
    for (int i = 0; i < 64; i++)
        close(fill[i]);
    close(l);
    return tap_done();
}
