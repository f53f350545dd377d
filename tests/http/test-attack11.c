/* test-attack11.c: content codings, credentials, cookies, forms and Unix sockets attacked
 * through the public API only: misuse, hostile bytes, floods. Each case names the fault it
 * would catch; a known fault that is not fixed yet is a skip whose reason says so. */
#include "tests/http/util.h"

#include <errno.h>
#include <sys/resource.h>

static long maxrss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* A cookie file whose first line is 128 MiB of NUL bytes without a newline (a sparse file: no
 * disk), then a good line. Reading must not hold the long line in memory: the jar keeps no
 * line longer than a few KiB, so nothing longer needs to be read whole. */
static void cookie_load_long_line_bounded(void)
{
    char path[] = "/tmp/ag-attack11-XXXXXX";
    int fd = mkstemp(path);
    const off_t junk = (off_t)128 << 20;
    static const char good[] = "\nexample.com\tFALSE\t/\tFALSE\t0\ta\tb\n";
    int ok = fd >= 0 && ftruncate(fd, junk) == 0 &&
             pwrite(fd, good, sizeof good - 1, junk) == (ssize_t)(sizeof good - 1);
    if (fd >= 0)
        close(fd);
    ag_cookie_jar *jar = NULL;
    ag_cookie_jar_new(&jar);
    long before = maxrss_kib();
    int rc = ok ? ag_cookie_jar_load(jar, path) : -1;
    long grew = maxrss_kib() - before;
    tap_ok(rc == 1 && ag_cookie_jar_count(jar) == 1 && grew < 32 * 1024,
           "cookie_load_long_line_bounded: a 128 MiB line costs %ld KiB of memory (under 32 MiB "
           "wanted), the good line after it is added (rc %d)",
           grew, rc);
    ag_cookie_jar_free(jar);
    unlink(path);
}

int main(void)
{
    cookie_load_long_line_bounded();
    return tap_done();
}
