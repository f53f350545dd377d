/* test-poller.c: the readiness backend's contract, on whichever backend this build uses. */
#include "asyncget.h"
#include "core/internal.h"
#include "tests/tap.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#define PIPES 20
#define MAX   8

/* More ready fds than one wait may report, each re-armed after every report as a waiter would:
 * every fd must be reported within a few waits, not only the first MAX forever. */
static void poller_no_starvation_past_max(void)
{
    ag__poller *p;
    ag__poller_new(&p);
    int fds[PIPES][2];
    int seen[PIPES] = {0};
    for (int i = 0; i < PIPES; i++) {
        if (pipe(fds[i]) != 0 || write(fds[i][1], "x", 1) != 1)
            abort();
        fcntl(fds[i][0], F_SETFL, O_NONBLOCK);
        ag__poller_add(p, fds[i][0], AG__POLL_IN);
    }
    ag__poll_event ev[MAX];
    int waits = (PIPES + MAX - 1) / MAX + 1, reported = 0;
    for (int w = 0; w < waits; w++) {
        int n = ag__poller_wait(p, ev, MAX, 0);
        for (int k = 0; k < n; k++) {
            for (int i = 0; i < PIPES; i++)
                if (fds[i][0] == ev[k].fd && !seen[i]++)
                    reported++;
            ag__poller_want(p, ev[k].fd, AG__POLL_IN); /* the waiter parks again at once */
        }
    }
    tap_ok(reported == PIPES,
           "poller_no_starvation_past_max: %d of %d ready fds reported in %d "
           "waits of at most %d",
           reported, PIPES, waits, MAX);
    for (int i = 0; i < PIPES; i++) {
        ag__poller_del(p, fds[i][0]);
        close(fds[i][0]);
        close(fds[i][1]);
    }
    ag__poller_free(p);
}

/* Deadlines past 24.8 days do not fit an int of milliseconds: they must clamp, not wrap. */
static void poller_timeout_ms_clamps(void)
{
    const int64_t ms = 1000000, day = 86400000 * ms;
    int ok = ag__timeout_ms(-1) == -1 && ag__timeout_ms(0) == 0 && ag__timeout_ms(1) == 1 &&
             ag__timeout_ms(ms) == 1 && ag__timeout_ms(ms + 1) == 2 &&
             ag__timeout_ms(24 * day) == 24 * 86400000 && ag__timeout_ms(25 * day) == INT32_MAX &&
             ag__timeout_ms(((int64_t)1 << 32) * ms) == INT32_MAX &&
             ag__timeout_ms(INT64_MAX) == INT32_MAX;
    tap_ok(ok, "poller_timeout_ms_clamps: 25 days gives %d, 2^32 ms gives %d, INT64_MAX ns %d",
           ag__timeout_ms(25 * day), ag__timeout_ms(((int64_t)1 << 32) * ms),
           ag__timeout_ms(INT64_MAX));
}

int main(void)
{
    tap_diag("backend: %s", ag_loop_backend());
    poller_no_starvation_past_max();
    poller_timeout_ms_clamps();
    return tap_done();
}
