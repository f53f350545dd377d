/* test-pool-stress.c: many requests through small pool limits against a misbehaving server,
 * two hosts, random cancels and pool timeouts. Each request ends with an outcome its own path
 * allows: the body its request asked for where the server answers normally, the error the
 * server's misbehaviour causes otherwise; a pool timeout anywhere (the limits are meant to be
 * too small), a cancel only where one was sent. Enough requests succeed that a client failing
 * them all cannot pass. Nothing leaks (the sanitizer build checks), and the pool's counts come
 * back to rest: every slot in use is an idle connection, no connect in progress, nobody
 * waiting. */
#include "http/internal.h"
#include "tests/http/util.h"

#include <errno.h>

#define REQUESTS 400

static int port;
static ag_loop *loop;
static ag_client *client;
static uint32_t rng = 12345;

static uint32_t next(void)
{
    rng = rng * 1103515245u + 12345u;
    return rng >> 8;
}

/* What each path may end with, besides a pool timeout and (for a cancelled request) -ECANCELED.
 * A path with a body succeeds with exactly that body ("=" : the request target, which /path
 * echoes), and a request on it that got a connection and was not cancelled must succeed. */
typedef struct pcase {
    const char *path;
    const char *body; /* NULL: the server never answers normally */
    int errors[3];    /* what the server's misbehaviour causes, 0 terminated */
} pcase;

static const pcase paths[] = {
    {"/path?id=%d", "=", {0}},
    {"/path?id=%d", "=", {0}},
    {"/path?id=%d", "=", {0}},
    {"/slow-body?n=3&ms=5&id=%d", "012", {0}},
    /* The server closes the connection 5 ms after the response: the next request on it meets a
     * stale connection, which the liveness check or the retry hides. */
    {"/close-after-response?ms=5&id=%d", "ok", {0}},
    {"/truncated?id=%d", NULL, {AG_ETRUNCATED}},
    {"/conn-close?id=%d", "ok", {0}},
    {"/extra-bytes?id=%d", "ok", {0}},
    /* Headers, then nothing for 1 s: the 500 ms idle timeout ends it. */
    {"/stall?s=1&id=%d", NULL, {AG_EIDLE_TIMEOUT}},
    /* libkqueue reads SO_ERROR itself, which clears a reset: it looks like a close there. */
    {"/reset?id=%d", NULL, {-ECONNRESET, AG_ECLOSED, AG_ETRUNCATED}},
};
#define NPATHS (sizeof paths / sizeof *paths)

typedef struct job {
    int path; /* index in paths */
    bool victim;
    char target[96];
    char url[160];
    int rc;
    bool done, right_body;
} job;

static job jobs[REQUESTS];

static void one(void *arg)
{
    job *j = arg;
    ag_request req;
    ag_request_init(&req);
    req.url = j->url;
    /* Long enough never to be what ends a request: the pool timeout and the idle timeout are. */
    req.timeout_ms = 10000;
    ag_response *r;
    j->rc = ag_fetch(client, &req, &r);
    const pcase *p = &paths[j->path];
    if (j->rc == 0 && p->body)
        j->right_body =
            ag_response_status(r) == 200 &&
            strcmp(ag_response_body(r, NULL), strcmp(p->body, "=") == 0 ? j->target : p->body) == 0;
    j->done = true;
    ag_response_free(r);
}

static void driver(void *arg)
{
    (void)arg;
    ag_coro *victims[REQUESTS];
    int nv = 0;
    for (int i = 0; i < REQUESTS; i++) {
        job *j = &jobs[i];
        const char *host = next() % 2 ? "127.0.0.1" : "localhost";
        j->path = (int)(next() % NPATHS);
        char target[sizeof j->target];
        snprintf(target, sizeof target, paths[j->path].path, i);
        memcpy(j->target, target, sizeof target);
        snprintf(j->url, sizeof j->url, "http://%s:%d%s", host, port, target);
        ag_coro *co;
        ag_coro_spawn(loop, one, j, &co);
        j->victim = next() % 8 == 0;
        if (j->victim)
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

/* Whether a request's outcome is one its path allows. */
static bool allowed(const job *j)
{
    const pcase *p = &paths[j->path];
    if (!j->done)
        return false;
    if (j->rc == AG_EPOOL_TIMEOUT || (j->rc == -ECANCELED && j->victim))
        return true;
    if (j->rc == 0)
        return p->body && j->right_body;
    for (int k = 0; k < 3 && p->errors[k]; k++)
        if (j->rc == p->errors[k])
            return true;
    return false;
}

static void stress(void)
{
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

    int bad = 0, ok = 0, pool_timeouts = 0, cancelled = 0, served_normal = 0;
    int ok_per_path[NPATHS] = {0};
    char first_bad[240] = "";
    for (int i = 0; i < REQUESTS; i++) {
        const job *j = &jobs[i];
        if (j->rc == 0 && j->right_body) {
            ok++;
            ok_per_path[j->path]++;
        }
        pool_timeouts += j->rc == AG_EPOOL_TIMEOUT;
        cancelled += j->rc == -ECANCELED;
        /* A normal answer that got a connection and was not cancelled must be a success. */
        if (paths[j->path].body && j->rc != AG_EPOOL_TIMEOUT && j->rc != -ECANCELED)
            served_normal++;
        if (!allowed(j)) {
            if (!bad++)
                snprintf(first_bad, sizeof first_bad, "; first: %s%s gave %s%s", j->target,
                         j->victim ? " (cancelled)" : "", j->done ? ag_err_name(j->rc) : "nothing",
                         j->rc == 0 ? " with another body" : "");
        }
    }
    tap_ok(bad == 0,
           "pool_stress_outcomes: %d of %d requests ended as their path allows (%d ok, %d pool "
           "timeouts, %d cancelled)%s",
           REQUESTS - bad, REQUESTS, ok, pool_timeouts, cancelled, first_bad);
    /* Every normally answered path succeeded sometimes, and the requests that reached a server
     * answering normally were many: a client that ends everything in the pool cannot pass. */
    int paths_ok = 1;
    for (size_t k = 0; k < NPATHS; k++)
        if (paths[k].body && ok_per_path[k] == 0)
            paths_ok = 0;
    tap_ok(paths_ok && served_normal >= REQUESTS / 8 && ok == served_normal,
           "pool_stress_successes: %d of the %d normally answered requests that got a connection "
           "succeeded with their own body (want all, and at least %d), every such path at least "
           "once",
           ok, served_normal, REQUESTS / 8);
    ag__pool_counts n;
    ag__pool_counts_get(client->pool, &n);
    tap_ok(n.total == n.idle && n.connecting == 0 && n.waiting == 0 && n.connect_waiting == 0 &&
               n.total <= 8,
           "pool_stress_at_rest: %u slots, %u idle, %u connecting, %u + %u waiting", n.total,
           n.idle, n.connecting, n.waiting, n.connect_waiting);
    ag_client_free(client);
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
    stress();
    /* The server still serves a fresh client. */
    ag_client_opts o;
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
