/* callback.c: the callback style. Requests start with a completion function; asyncget makes
 * the coroutines.
 *   usage: example-callback URL... */
#include <asyncget.h>

#include <stdio.h>

static int failures;

static void done(ag_client *client, ag_response *resp, int status, void *arg)
{
    (void)client;
    const char *url = arg;
    if (status < 0) {
        printf("%s: %s\n", url, ag_strerror(status));
        failures++;
    } else {
        printf("%s: %d, %llu bytes\n", url, ag_response_status(resp),
               (unsigned long long)ag_response_body_bytes(resp));
    }
    ag_response_free(resp); /* the callback owns the response */
}

int main(int argc, char **argv)
{
    ag_loop *loop;
    ag_client *client;
    ag_client_opts opts;
    if (ag_loop_new(&loop, NULL) < 0)
        return 1;
    ag_client_opts_init(&opts);
    opts.loop = loop;
    if (ag_client_new(&client, &opts) < 0)
        return 1;
    for (int i = 1; i < argc; i++) {
        ag_request req;
        ag_request_init(&req);
        req.url = argv[i];
        int rc = ag_fetch_start(client, &req, done, argv[i], NULL);
        if (rc < 0) {
            printf("%s: %s\n", argv[i], ag_strerror(rc));
            failures++;
        }
    }
    ag_loop_run(loop);
    ag_client_free(client);
    failures += ag_loop_free(loop) < 0; /* -EBUSY: a coroutine outlived the run */
    return failures ? 1 : 0;
}
