/* test-stats: ag_response_local names the connection's local end as the server sees it, and
 * ag_client_pool_stats counts a request in flight, its busy connection, and the pool at rest
 * after it. The server is a thread of the test: it knows the client's port from accept(). */
#include "asyncget.h"
#include "tests/tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct server {
    int lfd;
    int port;
    int go[2];        /* the test writes a byte here to let the held response go */
    char seen[2][64]; /* "127.0.0.1:PORT" of each accepted connection, as getpeername says */
    int accepted;
} server;

/* Read one request head (the test sends no body). */
static int read_head(int fd)
{
    char buf[4096];
    size_t n = 0;
    while (n < sizeof buf - 1) {
        ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
        if (r <= 0)
            return -1;
        n += (size_t)r;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            return 0;
    }
    return -1;
}

/* Two connections: the first gets one response at once, the second one request held until the
 * test says go. Each connection is kept open until the client closes it. */
static void *serve(void *arg)
{
    server *s = arg;
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    for (int i = 0; i < 2; i++) {
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        int fd = accept(s->lfd, (struct sockaddr *)&peer, &len);
        if (fd < 0)
            return NULL;
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
        snprintf(s->seen[i], sizeof s->seen[i], "%s:%u", ip, (unsigned)ntohs(peer.sin_port));
        __atomic_store_n(&s->accepted, i + 1, __ATOMIC_RELEASE);
        if (read_head(fd) == 0) {
            char go;
            if (i == 1 && read(s->go[0], &go, 1) != 1)
                go = 0;
            if (write(fd, resp, sizeof resp - 1) < 0) {
                /* the client went away: the test's checks say so */
            }
        }
        char b[64];
        while (read(fd, b, sizeof b) > 0) {
        }
        close(fd);
    }
    return NULL;
}

static int server_start(server *s)
{
    memset(s, 0, sizeof *s);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(s->lfd, 8) < 0 ||
        getsockname(s->lfd, (struct sockaddr *)&a, &len) < 0 || pipe(s->go) < 0)
        return -1;
    s->port = ntohs(a.sin_port);
    return 0;
}

static void on_done(ag_client *client, ag_response *resp, int status, void *arg)
{
    (void)client;
    (void)status;
    *(ag_response **)arg = resp;
}

int main(void)
{
    server s;
    if (server_start(&s) < 0) {
        tap_ok(0, "stats_listener (%s)", strerror(errno));
        return tap_done();
    }
    pthread_t th;
    pthread_create(&th, NULL, serve, &s);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", s.port);

    ag_pool_stats st;
    memset(&st, 0xa5, sizeof st);
    tap_ok(ag_client_pool_stats(NULL, &st) == -EINVAL, "stats_null_client_einval");

    /* A blocking client: one request, then the pool at rest with the connection idle. */
    ag_client *c;
    if (ag_client_new(&c, NULL) != 0) {
        tap_ok(0, "stats_client_new");
        return tap_done();
    }
    tap_ok(ag_client_pool_stats(c, NULL) == -EINVAL, "stats_null_out_einval");
    ag_request req;
    ag_request_init(&req);
    req.url = url;
    ag_response *resp = NULL;
    int rc = ag_fetch(c, &req, &resp);
    tap_ok(rc == 0 && resp && ag_response_status(resp) == 200, "stats_first_fetch_ok (rc %d)", rc);
    const char *local = resp ? ag_response_local(resp) : "";
    tap_ok(strcmp(local, s.seen[0]) == 0, "local_is_what_the_server_accepted ('%s' vs '%s')", local,
           s.seen[0]);
    tap_ok(strcmp(local, resp ? ag_response_peer(resp) : "") != 0, "local_is_not_the_peer");
    ag_response_free(resp);
    ag_client_pool_stats(c, &st);
    tap_ok(st.conns == 1 && st.idle == 1 && st.requests == 0 && st.connecting == 0 &&
               st.waiting_slot == 0 && st.waiting_connect == 0 && st.waiting_fd == 0,
           "stats_at_rest_one_idle (conns %llu idle %llu requests %llu)",
           (unsigned long long)st.conns, (unsigned long long)st.idle,
           (unsigned long long)st.requests);
    ag_client_free(c);

    /* On a loop: a request held by the server shows as one request on one busy connection. */
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    ag_client_new(&c, &o);
    resp = NULL;
    ag_fetch_start(c, &req, on_done, &resp, NULL);
    while (__atomic_load_n(&s.accepted, __ATOMIC_ACQUIRE) < 2)
        ag_loop_run_once(loop, 10);
    for (int i = 0; i < 20; i++) /* let the request be written */
        ag_loop_run_once(loop, 5);
    ag_client_pool_stats(c, &st);
    tap_ok(st.requests == 1 && st.conns == 1 && st.idle == 0,
           "stats_in_flight_one_busy (requests %llu conns %llu idle %llu)",
           (unsigned long long)st.requests, (unsigned long long)st.conns,
           (unsigned long long)st.idle);
    tap_ok(write(s.go[1], "g", 1) == 1, "stats_server_released");
    while (!resp)
        ag_loop_run_once(loop, 100);
    tap_ok(ag_response_error(resp) == 0 && strcmp(ag_response_local(resp), s.seen[1]) == 0,
           "local_of_second_connection ('%s' vs '%s')", ag_response_local(resp), s.seen[1]);
    ag_response_free(resp);
    ag_client_pool_stats(c, &st);
    tap_ok(st.requests == 0 && st.conns == 1 && st.idle == 1, "stats_back_to_rest");
    tap_ok(ag_client_free(c) == 0, "stats_client_frees");
    ag_loop_free(loop);
    pthread_join(th, NULL);

    /* No connection at all: "". */
    ag_client_new(&c, NULL);
    req.url = "http://127.0.0.1:1/";
    resp = NULL;
    ag_fetch(c, &req, &resp);
    tap_ok(resp && strcmp(ag_response_local(resp), "") == 0, "local_empty_without_connection");
    ag_response_free(resp);
    ag_client_free(c);
    return tap_done();
}
