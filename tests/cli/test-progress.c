/* test-progress.c: the progress line drawn on a pseudo-terminal, never elsewhere, at most 10
 * times a second of the caller's clock, cut to the terminal's width, and cleared at the end. */
#include "cli.h"
#include "../tap.h"

#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__)
#include <util.h>
#else
#include <pty.h>
#endif

#define MS 1000000LL

static int master = -1, slave = -1;

/* Everything written to the slave so far, read from the master without waiting. */
static size_t drain(char *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = read(master, buf + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == cap - 1)
            break;
    }
    buf[n] = 0;
    return n;
}

static size_t count(const char *s, const char *what)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

static int open_pty(unsigned short cols)
{
    struct winsize ws = {.ws_row = 24, .ws_col = cols};
    if (openpty(&master, &slave, NULL, NULL, &ws) != 0)
        return -1;
    /* Bytes as written: no \n to \r\n translation to reason about. */
    struct termios t;
    if (tcgetattr(slave, &t) == 0) {
        t.c_oflag &= ~(tcflag_t)OPOST;
        tcsetattr(slave, TCSANOW, &t);
    }
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    return 0;
}

static void close_pty(void)
{
    close(master);
    close(slave);
    master = slave = -1;
}

static void progress_not_a_tty(void)
{
    int fds[2];
    int ok = pipe(fds) == 0;
    cli_progress *p = ok ? cli_progress_new(fds[1], 10) : NULL;
    int devnull = open("/dev/null", O_WRONLY);
    cli_progress *q = cli_progress_new(devnull, 10);
    cli_progress *r = cli_progress_new(-1, 10);
    /* The NULL handle takes every call, so the caller needs no test of its own. */
    cli_progress_update(p, 1, 0, 0);
    cli_progress_set_total(p, 5);
    cli_progress_free(p);
    char b[16];
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    ssize_t got = read(fds[0], b, sizeof(b));
    tap_ok(ok && !p && !q && !r && got < 0,
           "progress_not_a_tty: a pipe, /dev/null and a bad fd get no progress line (NULL) and "
           "nothing is written");
    close(fds[0]);
    close(fds[1]);
    close(devnull);
}

static void progress_draws(void)
{
    if (open_pty(200) != 0) {
        tap_skip("progress_draws: no pseudo-terminal");
        return;
    }
    static char out[4096];
    cli_progress *p = cli_progress_new(slave, 100);
    cli_progress_update(p, 0, 0, 1000 * MS);
    cli_progress_update(p, 50, 3, 11000 * MS); /* 50 in 10 s: 5 req/s, 50 left: 10 s */
    drain(out, sizeof(out));
    const char *last = strrchr(out, '\r');
    int ok = p && last && strstr(last, "50/100") && strstr(last, "5 req/s") &&
             strstr(last, "3 errors") && strstr(last, "ETA 0:10") &&
             !strcmp(last + strlen(last) - 3, "\033[K") && count(out, "\r") == 2;
    tap_ok(ok,
           "progress_draws: on a terminal, \\r + done/total, req/s, errors, ETA + ESC[K "
           "(last: \"%s\")",
           last ? last + 1 : "(none)");

    /* Unknown total: no ETA, no "/total"; set later, both appear. */
    cli_progress *u = cli_progress_new(slave, 0);
    cli_progress_update(u, 0, 0, 0);
    cli_progress_update(u, 20, 0, 2000 * MS);
    drain(out, sizeof(out));
    last = strrchr(out, '\r');
    int no_eta = last && strstr(last, "\r20 done") && !strstr(last, "ETA");
    cli_progress_set_total(u, 40);
    cli_progress_update(u, 30, 0, 3000 * MS);
    drain(out, sizeof(out));
    last = strrchr(out, '\r');
    int eta = last && strstr(last, "30/40") && strstr(last, "ETA 0:01");
    tap_ok(no_eta && eta, "progress_total_unknown: no ETA while the total is unknown, then one");
    cli_progress_free(u);
    drain(out, sizeof(out));

    cli_progress_free(p);
    size_t n = drain(out, sizeof(out));
    tap_ok(n == 4 && !memcmp(out, "\r\033[K", 4), "progress_cleared_on_free: \\r ESC[K (%zu bytes)",
           n);

    /* Never drawn: nothing to clear, nothing written. */
    cli_progress *z = cli_progress_new(slave, 5);
    cli_progress_free(z);
    n = drain(out, sizeof(out));
    tap_ok(z && n == 0, "progress_free_undrawn: nothing written when nothing was drawn");
    close_pty();
}

/* Updates every millisecond of the caller's clock for 2 s: 20 redraws (t = 0, 100, ..., 1900 ms),
 * whatever the number of updates; a burst of updates at one instant draws once. */
static void progress_rate_limit(void)
{
    if (open_pty(200) != 0) {
        tap_skip("progress_rate_limit: no pseudo-terminal");
        return;
    }
    static char out[1 << 16];
    size_t draws = 0;
    cli_progress *p = cli_progress_new(slave, 1000000);
    for (int64_t t = 0; t < 2000; t++) {
        cli_progress_update(p, (uint64_t)t * 10, 0, 5000 * MS + t * MS);
        if (t % 100 == 99) {
            drain(out, sizeof(out));
            draws += count(out, "\r");
        }
    }
    for (int i = 0; i < 1000; i++)
        cli_progress_update(p, 20000, 0, 7000 * MS);
    drain(out, sizeof(out));
    size_t burst = count(out, "\r");
    tap_ok(draws == 20 && burst == 1,
           "progress_rate_limit: 2000 updates over 2 s drew %zu times (want 20), 1000 at one "
           "instant %zu (want 1)",
           draws, burst);
    cli_progress_free(p);
    close_pty();
}

/* A line longer than the terminal would wrap and leave stale rows behind each \r. */
static void progress_fits_width(void)
{
    if (open_pty(20) != 0) {
        tap_skip("progress_fits_width: no pseudo-terminal");
        return;
    }
    static char out[4096];
    cli_progress *p = cli_progress_new(slave, 1000000000);
    cli_progress_update(p, 0, 0, 0);
    cli_progress_update(p, 123456789, 987654, 1000 * MS);
    drain(out, sizeof(out));
    const char *last = strrchr(out, '\r');
    size_t visible = last ? strlen(last) - 1 - 3 : 0;
    tap_ok(last && visible == 19 && !strcmp(last + strlen(last) - 3, "\033[K"),
           "progress_fits_width: on a 20-column terminal the line shows %zu characters (want 19)",
           visible);
    cli_progress_free(p);
    close_pty();
}

int main(void)
{
    progress_not_a_tty();
    progress_draws();
    progress_rate_limit();
    progress_fits_width();
    return tap_done();
}
