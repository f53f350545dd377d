/* consumer.c: a program outside the tree that uses asyncget as an installed library would be used:
 * only <asyncget.h>, compiled with the flags pkg-config or a meson dependency gives. It needs no
 * network: a loop, a timer that stops it, error names and the version. Prints TAP. */
#include <asyncget.h>

#include <stdio.h>
#include <string.h>

static void on_timer(ag_timer *timer, void *arg)
{
    (void)timer;
    int *fired = arg;
    (*fired)++;
    ag_loop_stop(ag_loop_current());
}

int main(int argc, char **argv)
{
    const char *want_version = argc > 1 ? argv[1] : AG_VERSION;
    int n = 0, failed = 0;
#define CHECK(cond, name)                                                                          \
    do {                                                                                           \
        int ok_ = (cond);                                                                          \
        failed += !ok_;                                                                            \
        printf("%sok %d - %s\n", ok_ ? "" : "not ", ++n, name);                                    \
    } while (0)

    CHECK(strcmp(AG_VERSION, want_version) == 0, "consumer_header_version_is_project_version");
    CHECK(strcmp(ag_version(), AG_VERSION) == 0, "consumer_library_version_is_header_version");
    CHECK(strcmp(ag_strerror(AG_ETOTAL_TIMEOUT), "request exceeded its total time limit") == 0 &&
              strcmp(ag_err_name(AG_ETOTAL_TIMEOUT), "AG_ETOTAL_TIMEOUT") == 0,
          "consumer_error_names");

    ag_loop *loop = NULL;
    int rc = ag_loop_new(&loop, NULL);
    CHECK(rc == 0 && loop, "consumer_loop_new");
    if (rc == 0) {
        ag_timer timer;
        int fired = 0;
        ag_timer_init(&timer, on_timer, &fired);
        ag_timer_start(loop, &timer, ag_now_ns() + 1000000);
        rc = ag_loop_run(loop);
        CHECK(rc >= 0 && fired == 1, "consumer_timer_fires_and_stops_loop");
        ag_loop_free(loop);
    }
    printf("# backend %s, asyncget %s\n", ag_loop_backend(), AG_VERSION);
    printf("1..%d\n", n);
    return failed ? 1 : 0;
}
