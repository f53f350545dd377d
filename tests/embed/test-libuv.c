/* test-libuv.c: asyncget embedded in a real libuv loop, with requests started from libuv timer
 * callbacks (outside any asyncget iteration) and nothing re-armed after each start. */
#include "asyncget.h"
#include "tests/http/util.h"
#include "tests/tap.h"

#ifndef AG_HAVE_LIBUV
int main(void)
{
    printf("1..0 # SKIP libuv not found at build time (Debian: libuv1-dev)\n");
    return 0;
}
#else
#include <uv.h>

#define REQUESTS      40
#define BURST         4 /* requests started by one tick, the next burst only once these are done */
#define BURSTS        (REQUESTS / BURST)
#define GIVE_UP_TICKS 20000 /* a failure bound on a broken build, not a time limit */

static ag_loop *loop;
static ag_client *client;
static uv_poll_t watch;
static uv_timer_t deadline, ticker;
static int port, started, completed, failed, ticks;
static int ticks_at_done[REQUESTS]; /* ticks seen when each completion ran */
static int ticks_at_start[BURSTS];  /* the tick that started each burst */
static int drives;

static void on_deadline(uv_timer_t *h);

/* The embedding exactly as the header describes it, and nothing else: after every iteration the
 * timer follows ag_loop_timeout_ms(); nothing is re-armed after ag_fetch_start. */
static void drive(void)
{
    drives++;
    ag_loop_run_once(loop, 0);
    int ms = ag_loop_timeout_ms(loop);
    if (ms < 0)
        uv_timer_stop(&deadline);
    else
        uv_timer_start(&deadline, on_deadline, (uint64_t)ms, 0);
}

static void on_deadline(uv_timer_t *h)
{
    (void)h;
    drive();
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    (void)h;
    (void)status;
    (void)events;
    drive();
}

static void stop_all(void)
{
    uv_timer_stop(&ticker);
    uv_timer_stop(&deadline);
    uv_poll_stop(&watch);
}

static void done(ag_client *c, ag_response *resp, int status, void *arg)
{
    (void)c;
    (void)arg;
    if (status < 0 || ag_response_status(resp) != 200) {
        failed++;
        tap_diag("request failed: %s", status < 0 ? ag_err_name(status) : "status not 200");
    }
    if (completed < REQUESTS)
        ticks_at_done[completed] = ticks;
    completed++;
    ag_response_free(resp);
    if (completed == REQUESTS)
        stop_all();
}

static void on_tick(uv_timer_t *h)
{
    (void)h;
    ticks++;
    if (completed < started || started == REQUESTS)
        goto out; /* the previous burst is still in flight */
    ticks_at_start[started / BURST] = ticks;
    for (int i = 0; i < BURST; i++) {
        ag_request req;
        ag_request_init(&req);
        req.url = url_of(port, "/hello");
        if (ag_fetch_start(client, &req, done, NULL, NULL) == 0)
            started++;
        else
            failed++, started++, completed++;
    }
out:
    if (ticks > GIVE_UP_TICKS) {
        tap_diag("giving up after %d ticks: %d started, %d completed", ticks, started, completed);
        stop_all();
    }
}

int main(void)
{
    port = env_port("AG_NGINX_PORT");
    uv_loop_t *uv = uv_default_loop();
    ag_loop_new(&loop, NULL);
    int fd = ag_loop_fd(loop);
    if (fd < 0) {
        printf("1..0 # SKIP the %s backend has no loop fd for libuv to watch\n", ag_loop_backend());
        ag_loop_free(loop);
        return 0;
    }
    ag_client_opts opts;
    ag_client_opts_init(&opts);
    opts.loop = loop;
    ag_client_new(&client, &opts);
    uv_poll_init(uv, &watch, fd);
    uv_poll_start(&watch, UV_READABLE, on_readable);
    uv_timer_init(uv, &deadline);
    uv_timer_init(uv, &ticker);
    uv_timer_start(&ticker, on_tick, 1, 1);
    uv_run(uv, UV_RUN_DEFAULT); /* asyncget is never driven before the first request */

    tap_ok(started == REQUESTS && completed == REQUESTS && failed == 0,
           "libuv_all_complete: %d started from libuv callbacks, %d completed, %d failed", started,
           completed, failed);
    /* Interleaved: each burst was started by a libuv tick after the previous burst completed,
     * and completed after the tick that started it and before the next burst's tick. */
    int interleaved = completed == REQUESTS;
    for (int i = 0; interleaved && i < REQUESTS; i++) {
        int b = i / BURST;
        interleaved = ticks_at_done[i] >= ticks_at_start[b] &&
                      (b + 1 == BURSTS || ticks_at_done[i] < ticks_at_start[b + 1]);
    }
    tap_ok(interleaved && ticks_at_start[BURSTS - 1] > ticks_at_start[0],
           "libuv_ticks_interleave: %d bursts started at ticks %d..%d, completions at ticks "
           "%d..%d, %d iterations driven",
           BURSTS, ticks_at_start[0], ticks_at_start[BURSTS - 1], ticks_at_done[0],
           ticks_at_done[REQUESTS - 1], drives);
    int rc_client = ag_client_free(client);
    int rc_loop = ag_loop_free(loop);
    uv_close((uv_handle_t *)&watch, NULL);
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_close((uv_handle_t *)&ticker, NULL);
    uv_run(uv, UV_RUN_DEFAULT);
    tap_ok(rc_client == 0 && rc_loop == 0 && uv_loop_close(uv) == 0,
           "libuv_teardown: client %d, loop %d, libuv loop closed", rc_client, rc_loop);
    return tap_done();
}
#endif
