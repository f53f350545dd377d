/* libuv.c: asyncget inside a libuv loop. libuv watches asyncget's fd with a uv_poll and keeps a
 * uv_timer armed for asyncget's next deadline; when either fires, asyncget runs one iteration and
 * the timer is armed again from ag_loop_timeout_ms(). The requests are started from a libuv timer
 * callback, outside any asyncget iteration: that makes asyncget's fd readable by itself, so the
 * program needs no extra call after ag_fetch_start. (The poll backend has no fd to watch.)
 *   usage: example-libuv URL... */
#include <asyncget.h>
#include <uv.h>

#include <stdio.h>

/* The glue: one poll watcher and one timer per asyncget loop. */
typedef struct embed {
    ag_loop *loop;
    uv_poll_t poll;
    uv_timer_t timer;
} embed;

static void drive(embed *e);

static void on_readable(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    drive(h->data);
}

static void on_deadline(uv_timer_t *h)
{
    drive(h->data);
}

/* One asyncget iteration, then the timeout, which only an iteration can move earlier. */
static void drive(embed *e)
{
    ag_loop_run_once(e->loop, 0);
    int ms = ag_loop_timeout_ms(e->loop);
    if (ms < 0)
        uv_timer_stop(&e->timer);
    else
        uv_timer_start(&e->timer, on_deadline, (uint64_t)ms, 0);
}

static int embed_start(embed *e, uv_loop_t *uv, ag_loop *loop)
{
    e->loop = loop;
    int fd = ag_loop_fd(loop);
    if (fd < 0)
        return fd;
    if (uv_poll_init(uv, &e->poll, fd) < 0 || uv_timer_init(uv, &e->timer) < 0)
        return -1;
    e->poll.data = e->timer.data = e;
    return uv_poll_start(&e->poll, UV_READABLE, on_readable);
}

static void embed_stop(embed *e)
{
    uv_close((uv_handle_t *)&e->poll, NULL);
    uv_close((uv_handle_t *)&e->timer, NULL);
}

/* The application: a libuv timer that starts one request per tick. */
static embed glue;
static ag_client *client;
static uv_timer_t ticker;
static char **urls;
static int nurls, next, pending, failures, ticks;

static void done(ag_client *c, ag_response *resp, int status, void *arg)
{
    (void)c;
    printf("%s: %d (tick %d)\n", (const char *)arg, status < 0 ? status : ag_response_status(resp),
           ticks);
    failures += status < 0;
    pending--;
    ag_response_free(resp);
    if (pending == 0 && next == nurls) {
        uv_timer_stop(&ticker);
        embed_stop(&glue); /* libuv's loop ends once the handles are closed */
    }
}

static void on_tick(uv_timer_t *h)
{
    (void)h;
    ticks++;
    if (next == nurls)
        return;
    ag_request req;
    ag_request_init(&req);
    req.url = urls[next];
    if (ag_fetch_start(client, &req, done, urls[next], NULL) == 0)
        pending++;
    else
        failures++;
    next++;
}

int main(int argc, char **argv)
{
    uv_loop_t *uv = uv_default_loop();
    ag_loop *loop;
    if (ag_loop_new(&loop, NULL) < 0)
        return 1;
    if (embed_start(&glue, uv, loop) < 0) {
        printf("this build's backend (%s) has no pollable fd\n", ag_loop_backend());
        return 77;
    }
    ag_client_opts opts;
    ag_client_opts_init(&opts);
    opts.loop = loop;
    if (ag_client_new(&client, &opts) < 0)
        return 1;
    urls = argv + 1;
    nurls = argc - 1;
    uv_timer_init(uv, &ticker);
    if (nurls > 0)
        uv_timer_start(&ticker, on_tick, 1, 1);
    else
        embed_stop(&glue);
    uv_run(uv, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&ticker, NULL);
    uv_run(uv, UV_RUN_DEFAULT);
    failures += ag_client_free(client) < 0;
    failures += ag_loop_free(loop) < 0;
    failures += uv_loop_close(uv) < 0;
    return failures ? 1 : 0;
}
