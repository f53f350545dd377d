/* progress.c: the live progress line on a terminal (done/total, requests/s, errors, ETA). */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

/* At most 10 redraws a second: enough to look live, cheap even when updates come per request. */
#define REDRAW_NS 100000000LL

struct cli_progress {
    int fd;
    uint64_t total;
    int64_t start_ns; /* now_ns of the first update: the rate counts from there */
    int64_t last_ns;  /* now_ns of the last redraw */
    bool started, drawn;
};

cli_progress *cli_progress_new(int fd, uint64_t total)
{
    if (fd < 0 || !isatty(fd))
        return NULL;
    cli_progress *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->fd = fd;
    p->total = total;
    return p;
}

void cli_progress_set_total(cli_progress *p, uint64_t total)
{
    if (p)
        p->total = total;
}

/* One write per redraw, so that a line is never split by another writer's bytes between our
 * own writes; the caller serialises writers to stderr with its own lock. */
static void put(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* a progress line is not worth failing for */
        s += w;
        n -= (size_t)w;
    }
}

static void fmt_duration(char *out, size_t len, uint64_t s)
{
    if (s >= 3600)
        snprintf(out, len, "%" PRIu64 ":%02u:%02u", s / 3600, (unsigned)(s / 60 % 60),
                 (unsigned)(s % 60));
    else
        snprintf(out, len, "%u:%02u", (unsigned)(s / 60), (unsigned)(s % 60));
}

void cli_progress_update(cli_progress *p, uint64_t done, uint64_t errors, int64_t now_ns)
{
    if (!p)
        return;
    if (!p->started) {
        p->started = true;
        p->start_ns = now_ns;
    } else if (p->drawn && now_ns - p->last_ns < REDRAW_NS) {
        return;
    }
    p->last_ns = now_ns;
    p->drawn = true;

    double secs = (double)(now_ns - p->start_ns) / 1e9;
    double rate = secs > 0 ? (double)done / secs : 0;
    char line[256], eta[32] = "";
    int n;
    if (p->total) {
        if (rate > 0 && done < p->total) {
            double left = (double)(p->total - done) / rate;
            char d[24];
            fmt_duration(d, sizeof(d), left < 1e12 ? (uint64_t)(left + 0.5) : 999999999999ull);
            snprintf(eta, sizeof(eta), ", ETA %s", d);
        }
        n = snprintf(line, sizeof(line),
                     "\r%" PRIu64 "/%" PRIu64 " done, %.0f req/s, %" PRIu64 " errors%s", done,
                     p->total, rate, errors, eta);
    } else {
        n = snprintf(line, sizeof(line), "\r%" PRIu64 " done, %.0f req/s, %" PRIu64 " errors", done,
                     rate, errors);
    }
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof(line) - 4 ? (size_t)n : sizeof(line) - 4; /* room for ESC[K */
    /* A line longer than the terminal wraps, and then \r returns only to the start of its last
     * row, leaving a trail of stale rows: keep it one column short of the width. */
    struct winsize ws;
    if (ioctl(p->fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 && len - 1 > (size_t)ws.ws_col - 1)
        len = 1 + (size_t)ws.ws_col - 1;
    /* Clear what a longer previous line left beyond this one. */
    memcpy(line + len, "\033[K", 4);
    put(p->fd, line, len + 3);
}

void cli_progress_free(cli_progress *p)
{
    if (!p)
        return;
    if (p->drawn)
        put(p->fd, "\r\033[K", 4);
    free(p);
}
