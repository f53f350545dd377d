/* coroutine.c: the coroutine style. Each URL is fetched by a coroutine of our own, written top
 * to bottom; all of them run at once on one loop.
 *   usage: example-coroutine URL... */
#include <asyncget.h>

#include <stdio.h>

static ag_client *client;
static int failures;

static void fetch_one(void *arg)
{
    const char *url = arg;
    ag_request req;
    ag_request_init(&req);
    req.url = url;
    ag_response *resp;
    int rc = ag_fetch(client, &req, &resp); /* waits here, the loop runs the others */
    if (rc < 0) {
        printf("%s: %s\n", url, ag_strerror(rc));
        failures++;
    } else {
        size_t len;
        ag_response_body(resp, &len);
        printf("%s: %d, %zu bytes%s\n", url, ag_response_status(resp), len,
               ag_response_reused(resp) ? ", reused connection" : "");
    }
    ag_response_free(resp);
}

int main(int argc, char **argv)
{
    ag_loop *loop;
    if (ag_loop_new(&loop, NULL) < 0)
        return 1;
    ag_client_opts opts;
    ag_client_opts_init(&opts);
    opts.loop = loop;
    if (ag_client_new(&client, &opts) < 0)
        return 1;
    for (int i = 1; i < argc; i++)
        ag_coro_spawn(loop, fetch_one, argv[i], NULL);
    ag_loop_run(loop);
    ag_client_free(client);
    failures += ag_loop_free(loop) < 0; /* -EBUSY: a coroutine outlived the run */
    return failures ? 1 : 0;
}
