/* test-pool-stress.c: many requests through small pool limits against a misbehaving server,
 * two hosts, random cancels and pool timeouts. Every request ends with a result, nothing leaks
 * (the sanitizer build checks), and the pool's counts come back to rest: every slot in use is an
 * idle connection, no connect in progress, nobody waiting. */
#include "http/internal.h"
#include "tests/http/util.h"

#include <errno.h>

#define REQUESTS 400

static int port;
static ag_loop *loop;
static ag_client *client;
static int finished, succeeded, failed, unexpected;
static uint32_t rng = 12345;

static uint32_t next(void)
{
    rng = rng * 1103515245u + 12345u;
    return rng >> 8;
}

static const char *paths[] = {
    "/ok",
    "/ok",
    "/ok",
    "/slow-body?n=3&ms=5",
    "/close-after-response?ms=5",
    "/truncated",
    "/conn-close",
    "/extra-bytes",
    "/stall?s=1",
    "/reset",
};

typedef struct job {
    char url[128];
    int64_t pool_timeout_ms;
} job;

static void one(void *arg)
{
    job *j = arg;
    ag_request req;
    ag_request_init(&req);
    req.url = j->url;
    req.timeout_ms = 2000;
    ag_response *r;
    int rc = ag_fetch(client, &req, &r);
    finished++;
    if (rc == 0)
        succeeded++;
    else if (rc == AG_ETRUNCATED || rc == AG_EPOOL_TIMEOUT || rc == AG_ETOTAL_TIMEOUT ||
             rc == AG_EIDLE_TIMEOUT || rc == -ECANCELED || rc == -ECONNRESET || rc == AG_ECLOSED ||
             rc == -EPIPE)
        failed++;
    else
        unexpected++;
    ag_response_free(r);
    free(j);
}

static void driver(void *arg)
{
    (void)arg;
    ag_coro *victims[REQUESTS];
    int nv = 0;
    for (int i = 0; i < REQUESTS; i++) {
        job *j = calloc(1, sizeof *j);
        const char *host = next() % 2 ? "127.0.0.1" : "localhost";
        snprintf(j->url, sizeof j->url, "http://%s:%d%s", host, port,
                 paths[next() % (sizeof paths / sizeof *paths)]);
        ag_coro *co;
        ag_coro_spawn(loop, one, j, &co);
        if (next() % 8 == 0)
            victims[nv++] = co; /* cancelled a little later */
        else
            ag_coro_unref(co);
        if (i % 20 == 0)
            ag_sleep_ms(1);
    }
    ag_sleep_ms(20);
    for (int i = 0; i < nv; i++) {
        ag_coro_cancel(victims[i]);
        ag_coro_unref(victims[i]);
    }
}

/* A response desync made visible: many requests over two connections, one in eight answered
 * by an HTTP/1.0 response with Transfer-Encoding and keep-alive, which the server follows a
 * little later with a stray response. A client that keeps that connection reads the stray
 * response as the answer to its next request, and every later answer on it one request late.
 * Each body must be the target of its own request. */
#define DESYNC_REQUESTS 200

static int desync_right, desync_wrong, desync_failed;
static char desync_example[200];

typedef struct djob {
    char url[128];
    char target[64];
} djob;

static void desync_one(void *arg)
{
    djob *j = arg;
    ag_request req;
    ag_request_init(&req);
    req.url = j->url;
    req.timeout_ms = 5000;
    ag_response *r;
    int rc = ag_fetch(client, &req, &r);
    const char *body = ag_response_body(r, NULL);
    if (rc == 0 && ag_response_status(r) == 200 && strcmp(body, j->target) == 0) {
        desync_right++;
    } else {
        if (rc == 0)
            desync_wrong++;
        else
            desync_failed++;
        if (!desync_example[0])
            snprintf(desync_example, sizeof desync_example, "%s got %s \"%.40s\"", j->target,
                     ag_err_name(rc), body);
    }
    ag_response_free(r);
    free(j);
}

static void desync_driver(void *arg)
{
    (void)arg;
    for (int i = 0; i < DESYNC_REQUESTS; i++) {
        djob *j = calloc(1, sizeof *j);
        snprintf(j->target, sizeof j->target, "%s?id=%d", i % 8 == 3 ? "/http10-te" : "/path", i);
        snprintf(j->url, sizeof j->url, "http://127.0.0.1:%d%s", port, j->target);
        ag_coro_spawn(loop, desync_one, j, NULL);
    }
}

static void desync(void)
{
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.max_conns_per_host = 2;
    ag_client_new(&client, &o);
    ag_coro_spawn(loop, desync_driver, NULL, NULL);
    ag_loop_run(loop);
    tap_ok(desync_right == DESYNC_REQUESTS,
           "pool_no_desync_http10_te: %d of %d bodies answer their own request, %d answer "
           "another, %d failed%s%s",
           desync_right, DESYNC_REQUESTS, desync_wrong, desync_failed,
           desync_example[0] ? "; first: " : "", desync_example);
    ag_client_free(client);
}

int main(void)
{
    port = env_port("AG_HOSTILE_PORT");
    ag_loop_new(&loop, NULL);
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.max_conns = 8;
    o.max_conns_per_host = 5;
    o.max_connecting = 3;
    o.pool_timeout_ms = 1500;
    o.idle_timeout_ms = 500;
    ag_client_new(&client, &o);
    ag_coro_spawn(loop, driver, NULL, NULL);
    ag_loop_run(loop);
    ag__pool_counts n;
    ag__pool_counts_get(client->pool, &n);
    tap_ok(finished == REQUESTS && unexpected == 0,
           "pool_stress: %d requests ended (%d ok, %d with an expected error, %d unexpected)",
           finished, succeeded, failed, unexpected);
    tap_ok(n.total == n.idle && n.connecting == 0 && n.waiting == 0 && n.connect_waiting == 0 &&
               n.total <= 8,
           "pool_stress_at_rest: %u slots, %u idle, %u connecting, %u + %u waiting", n.total,
           n.idle, n.connecting, n.waiting, n.connect_waiting);
    /* The server still serves a fresh client. */
    ag_client_free(client);
    ag_client_opts_init(&o);
    ag_client_new(&client, &o);
    ag_request req;
    ag_request_init(&req);
    req.url = url_of(port, "/ok");
    ag_response *r;
    int rc = ag_fetch(client, &req, &r);
    tap_ok(rc == 0 && ag_response_status(r) == 200, "pool_stress_after: a new request works");
    ag_response_free(r);
    ag_client_free(client);
    desync();
    ag_loop_free(loop);
    return tap_done();
}
