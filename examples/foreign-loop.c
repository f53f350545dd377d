/* foreign-loop.c: driving asyncget from another event loop. Here the other loop is a plain
 * poll(): it watches asyncget's fd, sleeps no longer than asyncget's next timeout, and lets
 * asyncget run one iteration whenever either says so. GLib, libuv or a game loop would do the
 * same with their own watch and timer calls.
 *   usage: example-foreign-loop URL... */
#include <asyncget.h>

#include <poll.h>
#include <stdio.h>

static int pending, failures;

static void done(ag_client *client, ag_response *resp, int status, void *arg)
{
    (void)client;
    printf("%s: %d\n", (const char *)arg, status < 0 ? status : ag_response_status(resp));
    failures += status < 0;
    pending--;
    ag_response_free(resp);
}

int main(int argc, char **argv)
{
    ag_loop *loop;
    ag_client *client;
    ag_client_opts opts;
    if (ag_loop_new(&loop, NULL) < 0)
        return 1;
    int fd = ag_loop_fd(loop);
    if (fd < 0) {
        printf("this build's backend (%s) has no pollable fd\n", ag_loop_backend());
        ag_loop_free(loop);
        return 77;
    }
    ag_client_opts_init(&opts);
    opts.loop = loop;
    if (ag_client_new(&client, &opts) < 0)
        return 1;
    for (int i = 1; i < argc; i++) {
        ag_request req;
        ag_request_init(&req);
        req.url = argv[i];
        if (ag_fetch_start(client, &req, done, argv[i], NULL) == 0)
            pending++;
    }
    /* The foreign loop: nothing of asyncget's runs except inside ag_loop_run_once. */
    while (pending > 0) {
        ag_loop_run_once(loop, 0);
        if (pending == 0)
            break;
        struct pollfd pfd = {fd, POLLIN, 0};
        poll(&pfd, 1, ag_loop_timeout_ms(loop));
    }
    ag_client_free(client);
    failures += ag_loop_free(loop) < 0; /* -EBUSY: a coroutine outlived the run */
    return failures ? 1 : 0;
}
