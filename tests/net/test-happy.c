/* test-happy.c: Happy Eyeballs (RFC 8305) against listeners of this process on [::1] and
 * 127.0.0.1 at one port: a listener whose accept queue is full drops SYNs (a black hole), a port
 * with no listener refuses, and a DNS server of tests/net/slowdns.py answers AAAA late or never.
 * The attempts are seen through the connection's trace hook (ag__conn_connect reports each start
 * and failure); times are only ever asserted as lower bounds. Nothing leaves loopback. */
#include "net/net.h"
#include "tests/tap.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MS 1000000LL

static ag_loop *loop;
static const char *slowdns; /* path of slowdns.py, or NULL */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* ---- listeners ---- */

/* A listener on [::1] (v6) or 127.0.0.1 at port (0: the kernel picks); -1 when that fails. */
static int listen_at(bool v6, int port, int backlog)
{
    int l = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l < 0)
        return -1;
    ag__sockaddr a;
    memset(&a, 0, sizeof a);
    if (v6) {
        int one = 1;
        setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        a.in6.sin6_family = AF_INET6;
        a.in6.sin6_addr = in6addr_loopback;
        a.in6.sin6_port = htons((uint16_t)port);
    } else {
        a.in.sin_family = AF_INET;
        a.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.in.sin_port = htons((uint16_t)port);
    }
    if (bind(l, &a.sa, ag__sockaddr_len(&a)) < 0 || listen(l, backlog) < 0) {
        close(l);
        return -1;
    }
    return l;
}

static int port_of(int l)
{
    ag__sockaddr a;
    socklen_t len = sizeof a;
    getsockname(l, &a.sa, &len);
    return ntohs(a.sa.sa_family == AF_INET ? a.in.sin_port : a.in6.sin6_port);
}

/* Two listeners at one port, free on both families: *l6 on [::1], *l4 on 127.0.0.1. Returns
 * the port, or -1 (no IPv6 loopback, say). */
static int listen_pair(int *l6, int *l4, int backlog6, int backlog4)
{
    for (int i = 0; i < 50; i++) {
        *l6 = listen_at(true, 0, backlog6);
        if (*l6 < 0)
            return -1;
        int port = port_of(*l6);
        *l4 = listen_at(false, port, backlog4);
        if (*l4 >= 0)
            return port;
        close(*l6);
    }
    return -1;
}

/* Fill the accept queue of l (listen backlog 0), so that the SYNs that follow are dropped. */
typedef struct hole {
    int fill[16];
} hole;

static void fill_queue(hole *h, int l)
{
    ag__sockaddr a;
    socklen_t len = sizeof a;
    getsockname(l, &a.sa, &len);
    for (int i = 0; i < 16; i++) {
        h->fill[i] = socket(a.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        connect(h->fill[i], &a.sa, len);
    }
    usleep(100 * 1000); /* let the handshakes that can complete do so */
}

static void hole_close(hole *h)
{
    for (int i = 0; i < 16; i++)
        close(h->fill[i]);
}

/* A thread that answers every connection on its listeners with a small response. */
typedef struct server {
    int l[2], n;
    int stop[2]; /* a pipe: writing ends the thread */
    pthread_t th;
} server;

static void *serve(void *arg)
{
    server *s = arg;
    for (;;) {
        struct pollfd p[3] = {{s->stop[0], POLLIN, 0}, {s->l[0], POLLIN, 0}, {s->l[1], POLLIN, 0}};
        if (poll(p, (nfds_t)(1 + s->n), -1) < 0 && errno != EINTR)
            return NULL;
        if (p[0].revents)
            return NULL;
        for (int i = 0; i < s->n; i++) {
            if (!p[1 + i].revents)
                continue;
            int c = accept(s->l[i], NULL, NULL);
            if (c < 0)
                continue;
            char buf[4096];
            ssize_t r = read(c, buf, sizeof buf);
            static const char resp[] =
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
            if (r > 0)
                r = write(c, resp, sizeof resp - 1);
            close(c);
        }
    }
}

static void server_start(server *s, int l0, int l1)
{
    s->l[0] = l0;
    s->l[1] = l1;
    s->n = l1 >= 0 ? 2 : 1;
    if (pipe(s->stop) < 0)
        abort();
    pthread_create(&s->th, NULL, serve, s);
}

static void server_stop(server *s)
{
    ssize_t w = write(s->stop[1], "x", 1);
    (void)w;
    pthread_join(s->th, NULL);
    close(s->stop[0]);
    close(s->stop[1]);
}

/* ---- what a connect did, from its trace ---- */

typedef struct attempt_log {
    int starts, fails;
    char start[8][64]; /* "connecting to ..." without the prefix */
    int64_t start_at[8];
    char fail[8][96];
} attempt_log;

static void on_trace(void *arg, const ag_trace_event *ev)
{
    attempt_log *g = arg;
    static const char s[] = "connecting to ", f[] = "connect failed: ";
    if (ev->kind != AG_TRACE_INFO)
        return;
    if (ev->len > sizeof s - 1 && memcmp(ev->data, s, sizeof s - 1) == 0 && g->starts < 8) {
        size_t n = ev->len - (sizeof s - 1);
        n = n < 63 ? n : 63;
        memcpy(g->start[g->starts], ev->data + sizeof s - 1, n);
        g->start[g->starts][n] = '\0';
        g->start_at[g->starts++] = ev->time_ns;
    } else if (ev->len > sizeof f - 1 && memcmp(ev->data, f, sizeof f - 1) == 0 && g->fails < 8) {
        size_t n = ev->len - (sizeof f - 1);
        n = n < 95 ? n : 95;
        memcpy(g->fail[g->fails], ev->data + sizeof f - 1, n);
        g->fail[g->fails++][n] = '\0';
    }
}

static const char *v6name(int port)
{
    static char b[4][32];
    static int k;
    char *p = b[k++ % 4];
    snprintf(p, 32, "[::1]:%d", port);
    return p;
}

static const char *v4name(int port)
{
    static char b[4][32];
    static int k;
    char *p = b[k++ % 4];
    snprintf(p, 32, "127.0.0.1:%d", port);
    return p;
}

/* One ag__conn_connect to host:port with resolver options ro (its loop is the test's, or NULL
 * outside a coroutine). */
typedef struct connect_case {
    ag__resolver_opts ro;
    ag__resolver *res; /* made by the caller, or NULL: made from ro */
    const char *host;
    int port;
    int64_t attempt_delay_ms, timeout_ms;
    /* results */
    int rc;
    int64_t took_ns, dns_at_ns;
    char peer[64];
    attempt_log log;
} connect_case;

static void connect_run(connect_case *t, ag_loop *on)
{
    ag__resolver *res = t->res;
    t->ro.loop = on;
    if (!res && (t->rc = ag__resolver_new(&res, &t->ro)) < 0)
        return;
    ag__conn c;
    memset(&c, 0, sizeof c);
    c.io.fd = -1;
    c.trace = on_trace;
    c.trace_arg = &t->log;
    ag__connect_opts o = {t->attempt_delay_ms * MS, 50 * MS};
    int64_t t0 = ag_now_ns();
    ag__lookup lk;
    t->rc = ag__lookup_start(res, &lk, t->host, (uint16_t)t->port);
    if (t->rc == 0) {
        const char *why = NULL;
        int64_t dns_at = 0;
        t->rc = ag__conn_connect(&c, on, &lk, &o, t0 + t->timeout_ms * MS, &dns_at, &why);
        t->took_ns = ag_now_ns() - t0;
        t->dns_at_ns = dns_at ? dns_at - t0 : -1;
        memcpy(t->peer, c.peer, sizeof t->peer);
        ag__lookup_end(&lk);
        if (t->rc == 0)
            ag__conn_close(&c);
    }
    if (!t->res)
        ag__resolver_free(res);
}

static void connect_coro(void *arg)
{
    connect_case *t = arg;
    connect_run(t, loop);
}

/* Run t inside a coroutine on the loop. */
static void connect_on_loop(connect_case *t)
{
    ag_coro_spawn(loop, connect_coro, t, NULL);
    ag_loop_run(loop);
}

static const char *resolve_entry(const char *host, int port, const char *addrs)
{
    static char b[4][128];
    static int k;
    char *p = b[k++ % 4];
    snprintf(p, 128, "%s:%d:%s", host, port, addrs);
    return p;
}

/* ---- the cases ---- */

/* [::1] drops SYNs, 127.0.0.1 accepts: IPv6 is tried first, IPv4 one attempt delay later, and
 * IPv4 wins; the IPv6 attempt is closed. */
static void picks_ipv4(int64_t delay_ms, bool blocking)
{
    int l6, l4;
    int port = listen_pair(&l6, &l4, 0, 64);
    const char *name = blocking ? "happy_picks_ipv4_when_ipv6_silent_blocking"
                                : "happy_picks_ipv4_when_ipv6_silent";
    if (port < 0) {
        tap_skip("%s: no listeners on [::1] and 127.0.0.1 at one port", name);
        return;
    }
    hole h;
    fill_queue(&h, l6);
    int fds = count_fds();
    const char *entry[2] = {resolve_entry("he.test", port, "[::1],127.0.0.1"), NULL};
    connect_case t = {.ro = {.resolve = entry},
                      .host = "he.test",
                      .port = port,
                      .attempt_delay_ms = delay_ms,
                      .timeout_ms = 5000};
    if (blocking)
        connect_run(&t, NULL);
    else
        connect_on_loop(&t);
    int after = count_fds();
    int64_t gap = t.log.starts == 2 ? t.log.start_at[1] - t.log.start_at[0] : -1;
    tap_ok(t.rc == 0 && strcmp(t.peer, v4name(port)) == 0 && t.log.starts == 2 &&
               strcmp(t.log.start[0], v6name(port)) == 0 &&
               strcmp(t.log.start[1], v4name(port)) == 0 && gap >= delay_ms * MS &&
               t.log.fails == 0 && after == fds,
           "%s (delay %lld ms%s): %s via %s; %d attempts (%s, then %s %lld ms later, at least "
           "%lld), %d failed (the first must still be in flight); %d fds open before, %d after",
           name, (long long)delay_ms, blocking ? ", no loop" : "", ag_err_name(t.rc), t.peer,
           t.log.starts, t.log.starts > 0 ? t.log.start[0] : "-",
           t.log.starts > 1 ? t.log.start[1] : "-", (long long)(gap / MS), (long long)delay_ms,
           t.log.fails, fds, after);
    hole_close(&h);
    close(l6);
    close(l4);
}

/* [::1] drops SYNs, nothing listens on 127.0.0.2 (refused), 127.0.0.1 accepts. The refusal
 * of the second attempt starts the third at once, while the first is still in flight: with an
 * attempt delay of 1.5 s and a timeout of 2.5 s, a connect that waited the delay again before
 * the third would run out of time. */
static void refused_moves_on(void)
{
    int l6, l4;
    int port = listen_pair(&l6, &l4, 0, 64);
    if (port < 0) {
        tap_skip("happy_refused_moves_on_at_once: no listeners at one port");
        return;
    }
    hole h;
    fill_queue(&h, l6);
    char refused[32];
    snprintf(refused, sizeof refused, "127.0.0.2:%d", port);
    const char *entry[2] = {resolve_entry("he.test", port, "[::1],127.0.0.2,127.0.0.1"), NULL};
    connect_case t = {.ro = {.resolve = entry},
                      .host = "he.test",
                      .port = port,
                      .attempt_delay_ms = 1500,
                      .timeout_ms = 2500};
    connect_on_loop(&t);
    tap_ok(t.rc == 0 && strcmp(t.peer, v4name(port)) == 0 && t.log.starts == 3 &&
               strcmp(t.log.start[0], v6name(port)) == 0 && strcmp(t.log.start[1], refused) == 0 &&
               strcmp(t.log.start[2], v4name(port)) == 0 && t.log.fails == 1 &&
               strstr(t.log.fail[0], refused) && strstr(t.log.fail[0], "refused"),
           "happy_refused_moves_on_at_once: %s via %s; %d attempts (%s, %s, %s), %d failed "
           "(%s), with an attempt delay of 1.5 s and a timeout of 2.5 s",
           ag_err_name(t.rc), t.peer, t.log.starts, t.log.starts > 0 ? t.log.start[0] : "-",
           t.log.starts > 1 ? t.log.start[1] : "-", t.log.starts > 2 ? t.log.start[2] : "-",
           t.log.fails, t.log.fails > 0 ? t.log.fail[0] : "-");
    hole_close(&h);
    close(l6);
    close(l4);
}

/* Both families drop SYNs: both attempts run at once until the deadline ends them, and every
 * socket is closed. */
static void both_silent(void)
{
    int l6, l4;
    int port = listen_pair(&l6, &l4, 0, 0);
    if (port < 0) {
        tap_skip("happy_both_silent_connect_timeout: no listeners at one port");
        return;
    }
    hole h6, h4;
    fill_queue(&h6, l6);
    fill_queue(&h4, l4);
    int fds = count_fds();
    const char *entry[2] = {resolve_entry("he.test", port, "[::1],127.0.0.1"), NULL};
    connect_case t = {.ro = {.resolve = entry},
                      .host = "he.test",
                      .port = port,
                      .attempt_delay_ms = 100,
                      .timeout_ms = 500};
    connect_on_loop(&t);
    int after = count_fds();
    tap_ok(t.rc == -ETIMEDOUT && t.took_ns >= 500 * MS && t.log.starts == 2 && t.log.fails == 0 &&
               t.log.start_at[1] - t.log.start_at[0] >= 100 * MS && after == fds,
           "happy_both_silent_connect_timeout: %s after %lld ms (at least 500), %d attempts "
           "both in flight to the end (%d failed); %d fds open before, %d after",
           ag_err_name(t.rc), (long long)(t.took_ns / MS), t.log.starts, t.log.fails, fds, after);

    /* The same through the client: its connect timeout error, and no fd left. */
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = NULL;
    o.connect_timeout_ms = 500;
    o.happy_eyeballs_delay_ms = 100;
    o.resolve = entry;
    ag_client *c;
    int rc = ag_client_new(&c, &o);
    fds = count_fds();
    char url[64];
    snprintf(url, sizeof url, "http://he.test:%d/", port);
    ag_request req;
    ag_request_init(&req);
    req.url = url;
    ag_response *r = NULL;
    int64_t t0 = ag_now_ns();
    if (rc == 0)
        rc = ag_fetch(c, &req, &r);
    int64_t took = ag_now_ns() - t0;
    ag_response_free(r);
    after = count_fds();
    ag_client_free(c);
    tap_ok(rc == AG_ECONNECT_TIMEOUT && took >= 500 * MS && after == fds,
           "happy_both_silent_client_error: %s after %lld ms (at least 500); %d fds open "
           "before, %d after",
           ag_err_name(rc), (long long)(took / MS), fds, after);
    hole_close(&h6);
    hole_close(&h4);
    close(l6);
    close(l4);
}

/* A cancel while two attempts are in flight: -ECANCELED, and both sockets closed. */
static ag_coro *victim;

static void canceller(void *arg)
{
    (void)arg;
    ag_sleep_ms(200);
    ag_coro_cancel(victim);
}

static void cancelled(void)
{
    int l6, l4;
    int port = listen_pair(&l6, &l4, 0, 0);
    if (port < 0) {
        tap_skip("happy_cancel_closes_attempts: no listeners at one port");
        return;
    }
    hole h6, h4;
    fill_queue(&h6, l6);
    fill_queue(&h4, l4);
    int fds = count_fds();
    const char *entry[2] = {resolve_entry("he.test", port, "[::1],127.0.0.1"), NULL};
    connect_case t = {.ro = {.resolve = entry},
                      .host = "he.test",
                      .port = port,
                      .attempt_delay_ms = 50,
                      .timeout_ms = 10000};
    ag_coro_spawn(loop, connect_coro, &t, &victim);
    ag_coro_spawn(loop, canceller, NULL, NULL);
    ag_loop_run(loop);
    ag_coro_unref(victim);
    int after = count_fds();
    tap_ok(t.rc == -ECANCELED && t.log.starts == 2 && t.log.fails == 0 && after == fds,
           "happy_cancel_closes_attempts: %s with %d attempts in flight; %d fds open before, "
           "%d after",
           ag_err_name(t.rc), t.log.starts, fds, after);
    hole_close(&h6);
    hole_close(&h4);
    close(l6);
    close(l4);
}

/* Out of file descriptors: a socket() that fails is that attempt's failure; with nothing else
 * in flight it is the connect's error, and with an attempt still in flight that attempt goes
 * on. */
static void out_of_fds(void)
{
    int l6, l4;
    int port = listen_pair(&l6, &l4, 0, 64);
    if (port < 0) {
        tap_skip("happy_emfile_is_the_attempts_error: no listeners at one port");
        return;
    }
    hole h;
    fill_queue(&h, l6);
    const char *entry[2] = {resolve_entry("he.test", port, "[::1],127.0.0.1"), NULL};
    struct rlimit old;
    getrlimit(RLIMIT_NOFILE, &old);
    for (int room = 0; room < 2; room++) {
        int fds = count_fds();
        int lowest = dup(0); /* the fd a socket() would get */
        close(lowest);
        connect_case t = {.ro = {.resolve = entry},
                          .host = "he.test",
                          .port = port,
                          .attempt_delay_ms = 50,
                          .timeout_ms = 300};
        /* The loop and the resolver exist before the limit: only sockets are refused. */
        ag__resolver_opts ro = {.loop = loop, .resolve = entry};
        ag__resolver *res;
        if (ag__resolver_new(&res, &ro) < 0)
            abort();
        t.res = res;
        struct rlimit lim = {(rlim_t)(lowest + room), old.rlim_max};
        setrlimit(RLIMIT_NOFILE, &lim);
        connect_on_loop(&t);
        setrlimit(RLIMIT_NOFILE, &old);
        ag__resolver_free(res);
        int after = count_fds();
        if (room == 0)
            tap_ok(t.rc == -EMFILE && t.log.starts == 2 && t.log.fails == 2 && after == fds,
                   "happy_emfile_is_the_attempts_error: %s after %d attempts, %d failed (%s); "
                   "%d fds open before, %d after",
                   ag_err_name(t.rc), t.log.starts, t.log.fails, t.log.fails ? t.log.fail[0] : "-",
                   fds, after);
        else
            tap_ok(t.rc == -ETIMEDOUT && t.log.starts == 2 && t.log.fails == 1 &&
                       strstr(t.log.fail[0], v4name(port)) && after == fds,
                   "happy_emfile_leaves_the_attempt_in_flight: %s after %d attempts, %d failed "
                   "(%s); %d fds open before, %d after",
                   ag_err_name(t.rc), t.log.starts, t.log.fails, t.log.fails ? t.log.fail[0] : "-",
                   fds, after);
    }
    hole_close(&h);
    close(l6);
    close(l4);
}

/* One fetch with a client, inside a coroutine on the loop when the client has one. */
typedef struct fetch_case {
    ag_client *c;
    const char *url;
    int rc;
    int64_t took_ns;
    ag_response *r;
} fetch_case;

static void fetch_run(void *arg)
{
    fetch_case *f = arg;
    ag_request req;
    ag_request_init(&req);
    req.url = f->url;
    int64_t t0 = ag_now_ns();
    f->rc = ag_fetch(f->c, &req, &f->r);
    f->took_ns = ag_now_ns() - t0;
}

static void fetch(fetch_case *f, bool on_loop)
{
    if (on_loop) {
        ag_coro_spawn(loop, fetch_run, f, NULL);
        ag_loop_run(loop);
    } else {
        fetch_run(f);
    }
}

/* A client (on the loop, or without one) fetching through a name whose [::1] is silent. */
static void client_picks_ipv4(bool blocking)
{
    int l6, l4;
    int port = listen_pair(&l6, &l4, 0, 64);
    const char *name = blocking ? "happy_client_blocking_picks_ipv4" : "happy_client_picks_ipv4";
    if (port < 0) {
        tap_skip("%s: no listeners at one port", name);
        return;
    }
    hole h;
    fill_queue(&h, l6);
    server s;
    server_start(&s, l4, -1);
    const char *entry[2] = {resolve_entry("he.test", port, "[::1],127.0.0.1"), NULL};
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = blocking ? NULL : loop;
    o.happy_eyeballs_delay_ms = 120;
    o.resolve = entry;
    attempt_log log;
    memset(&log, 0, sizeof log);
    o.trace = on_trace;
    o.trace_arg = &log;
    char url[64];
    snprintf(url, sizeof url, "http://he.test:%d/", port);
    fetch_case f = {.url = url};
    f.rc = ag_client_new(&f.c, &o);
    if (f.rc == 0)
        fetch(&f, !blocking);
    tap_ok(f.rc == 0 && ag_response_status(f.r) == 200 &&
               strcmp(ag_response_peer(f.r), v4name(port)) == 0 && f.took_ns >= 120 * MS,
           "%s: %s, status %d via %s after %lld ms (at least the attempt delay, 120)", name,
           ag_err_name(f.rc), f.r ? ag_response_status(f.r) : 0, f.r ? ag_response_peer(f.r) : "-",
           (long long)(f.took_ns / MS));
    tap_ok(log.starts == 2 && strcmp(log.start[0], v6name(port)) == 0 &&
               strcmp(log.start[1], v4name(port)) == 0 &&
               log.start_at[1] - log.start_at[0] >= 120 * MS,
           "%s_trace: the client's trace hook shows both attempts in order (%d: %s, %s)", name,
           log.starts, log.start[0], log.starts > 1 ? log.start[1] : "-");
    ag_response_free(f.r);
    ag_client_free(f.c);
    server_stop(&s);
    hole_close(&h);
    close(l6);
    close(l4);
}

/* ---- the resolution delay, against slowdns.py ---- */

typedef struct dns_server {
    pid_t pid;
    int in; /* its stdin: closing it ends the server */
    int port;
} dns_server;

/* Start slowdns.py with AAAA answered after delay_ms (negative: never); 0 or -1. */
static int dns_start(dns_server *d, int delay_ms)
{
    int in[2], out[2];
    if (!slowdns || pipe(in) < 0)
        return -1;
    if (pipe(out) < 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    char arg[16];
    snprintf(arg, sizeof arg, "%d", delay_ms);
    char *argv[] = {(char *)"/usr/bin/python3", (char *)slowdns, arg, NULL};
    extern char **environ;
    int rc = posix_spawn(&d->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    char buf[16] = {0};
    ssize_t n = rc == 0 ? read(out[0], buf, sizeof buf - 1) : -1;
    close(out[0]);
    d->in = in[1];
    d->port = n > 0 ? atoi(buf) : 0;
    if (d->port <= 0) {
        close(d->in);
        if (rc == 0)
            waitpid(d->pid, NULL, 0);
        return -1;
    }
    return 0;
}

static void dns_stop(dns_server *d)
{
    close(d->in);
    waitpid(d->pid, NULL, 0);
}

/* A answers at once and AAAA 20 ms later, within the resolution delay: IPv6 is still the first
 * and only attempt. */
static void aaaa_late(void)
{
    int l6, l4;
    int port = listen_pair(&l6, &l4, 64, 64);
    dns_server d;
    if (port < 0 || dns_start(&d, 20) < 0) {
        tap_skip("happy_aaaa_within_resolution_delay_preferred: %s",
                 port < 0 ? "no listeners at one port" : "slowdns.py did not start");
        if (port >= 0) {
            close(l6);
            close(l4);
        }
        return;
    }
    char servers[32];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", d.port);
    connect_case t = {.ro = {.servers = servers, .timeout_ms = 3000, .tries = 1},
                      .host = "late6.test",
                      .port = port,
                      .attempt_delay_ms = 250,
                      .timeout_ms = 5000};
    connect_on_loop(&t);
    tap_ok(t.rc == 0 && strcmp(t.peer, v6name(port)) == 0 && t.log.starts == 1 &&
               strcmp(t.log.start[0], v6name(port)) == 0,
           "happy_aaaa_within_resolution_delay_preferred: %s via %s; %d attempts (first %s)",
           ag_err_name(t.rc), t.peer, t.log.starts, t.log.starts > 0 ? t.log.start[0] : "-");
    dns_stop(&d);
    close(l6);
    close(l4);
}

/* AAAA never answered (its timeout is longer than the connect timeout): IPv4 starts after the
 * resolution delay, and the request succeeds through the client too. */
static void aaaa_dead(void)
{
    int l6, l4;
    int port = listen_pair(&l6, &l4, 64, 64);
    dns_server d;
    if (port < 0 || dns_start(&d, -1) < 0) {
        tap_skip("happy_aaaa_dead_costs_resolution_delay: %s",
                 port < 0 ? "no listeners at one port" : "slowdns.py did not start");
        if (port >= 0) {
            close(l6);
            close(l4);
        }
        return;
    }
    char servers[32];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", d.port);
    connect_case t = {.ro = {.servers = servers, .timeout_ms = 3000, .tries = 1},
                      .host = "dead6.test",
                      .port = port,
                      .attempt_delay_ms = 250,
                      .timeout_ms = 2000};
    int64_t t0 = ag_now_ns();
    connect_on_loop(&t);
    int64_t first = t.log.starts > 0 ? t.log.start_at[0] - t0 : -1;
    tap_ok(t.rc == 0 && strcmp(t.peer, v4name(port)) == 0 && t.log.starts == 1 &&
               first >= 50 * MS && t.dns_at_ns >= 50 * MS,
           "happy_aaaa_dead_costs_resolution_delay: %s via %s (DNS timeout 3 s, connect "
           "timeout 2 s); %d attempts, the first %lld ms after the lookup began (at least 50)",
           ag_err_name(t.rc), t.peer, t.log.starts, (long long)(first / MS));

    server s;
    server_start(&s, l6, l4);
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.dns_servers = servers;
    o.dns_timeout_ms = 3000;
    o.dns_tries = 1;
    o.connect_timeout_ms = 2000;
    char url[64];
    snprintf(url, sizeof url, "http://dead6-client.test:%d/", port);
    fetch_case f = {.url = url};
    f.rc = ag_client_new(&f.c, &o);
    if (f.rc == 0)
        fetch(&f, true);
    tap_ok(f.rc == 0 && ag_response_status(f.r) == 200 &&
               strcmp(ag_response_peer(f.r), v4name(port)) == 0,
           "happy_aaaa_dead_client: %s, status %d via %s after %lld ms", ag_err_name(f.rc),
           f.r ? ag_response_status(f.r) : 0, f.r ? ag_response_peer(f.r) : "-",
           (long long)(f.took_ns / MS));
    ag_response_free(f.r);
    ag_client_free(f.c);
    server_stop(&s);
    dns_stop(&d);
    close(l6);
    close(l4);
}

/* AAAA comes 300 ms late, after the resolution delay: 127.0.0.1 (silent) starts alone, the late
 * [::1] joins the list and starts one attempt delay later, and wins; 127.0.0.1 is not tried
 * twice. */
static void aaaa_joins(void)
{
    int l6, l4;
    int port = listen_pair(&l6, &l4, 64, 0);
    dns_server d;
    if (port < 0 || dns_start(&d, 300) < 0) {
        tap_skip("happy_late_aaaa_joins_the_attempts: %s",
                 port < 0 ? "no listeners at one port" : "slowdns.py did not start");
        if (port >= 0) {
            close(l6);
            close(l4);
        }
        return;
    }
    hole h;
    fill_queue(&h, l4);
    char servers[32];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", d.port);
    connect_case t = {.ro = {.servers = servers, .timeout_ms = 3000, .tries = 1},
                      .host = "join6.test",
                      .port = port,
                      .attempt_delay_ms = 400,
                      .timeout_ms = 5000};
    connect_on_loop(&t);
    int64_t gap = t.log.starts == 2 ? t.log.start_at[1] - t.log.start_at[0] : -1;
    tap_ok(t.rc == 0 && strcmp(t.peer, v6name(port)) == 0 && t.log.starts == 2 &&
               strcmp(t.log.start[0], v4name(port)) == 0 &&
               strcmp(t.log.start[1], v6name(port)) == 0 && gap >= 400 * MS && t.log.fails == 0,
           "happy_late_aaaa_joins_the_attempts: %s via %s; %d attempts (%s, then %s %lld ms "
           "later, at least the attempt delay 400), %d failed",
           ag_err_name(t.rc), t.peer, t.log.starts, t.log.starts > 0 ? t.log.start[0] : "-",
           t.log.starts > 1 ? t.log.start[1] : "-", (long long)(gap / MS), t.log.fails);
    hole_close(&h);
    dns_stop(&d);
    close(l6);
    close(l4);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    slowdns = argc > 1 ? argv[1] : NULL;
    ag_loop_new(&loop, NULL);
    picks_ipv4(250, false);
    picks_ipv4(60, false);
    picks_ipv4(60, true);
    refused_moves_on();
    both_silent();
    cancelled();
    out_of_fds();
    client_picks_ipv4(false);
    client_picks_ipv4(true);
    aaaa_late();
    aaaa_dead();
    aaaa_joins();
    ag_loop_free(loop);
    return tap_done();
}
