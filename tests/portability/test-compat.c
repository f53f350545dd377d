/* test-compat.c: the portable fallbacks of core/compat.h that can run on Linux: the errno name
 * table (checked against glibc's own names), the fcntl path for non-blocking close-on-exec fds, and
 * the sockets the library creates. */
#include "asyncget.h"
#include "core/compat.h"
#include "tests/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static int nonblock_cloexec(int fd)
{
    return (fcntl(fd, F_GETFL) & O_NONBLOCK) && (fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

int main(void)
{
    tap_plan(5);

    /* Every name in the fallback table is the name glibc gives the same number, so a program
     * reads the same ag_err_name on macOS or the BSDs as here. */
#if AG__HAVE_STRERRORNAME_NP
    int named = 0, wrong = 0;
    for (int e = 1; e < 4096; e++) {
        const char *mine = ag__errno_name_table(e);
        if (!mine)
            continue;
        named++;
        const char *glibc = strerrorname_np(e);
        if (!glibc || strcmp(mine, glibc) != 0) {
            wrong++;
            tap_diag("errno %d: table says %s, glibc says %s", e, mine, glibc ? glibc : "(none)");
        }
    }
    tap_ok(named >= 70 && wrong == 0, "compat_errno_table_matches_glibc (%d names, %d wrong)",
           named, wrong);
#else
    tap_skip("compat_errno_table_matches_glibc: no strerrorname_np to compare with");
#endif
    tap_ok(strcmp(ag_err_name(-ECONNREFUSED), "ECONNREFUSED") == 0 &&
               strcmp(ag_err_name(-EPIPE), "EPIPE") == 0 &&
               strcmp(ag_err_name(-ETIMEDOUT), "ETIMEDOUT") == 0,
           "compat_err_name_names_errno");

    /* The path taken where SOCK_NONBLOCK and SOCK_CLOEXEC are missing. */
    int p[2];
    int ok = pipe(p) == 0 && !nonblock_cloexec(p[0]) && ag__fd_nonblock_cloexec(p[0]) == 0 &&
             nonblock_cloexec(p[0]);
    tap_ok(ok, "compat_fd_nonblock_cloexec_sets_both");
    close(p[0]);
    close(p[1]);
    tap_ok(ag__fd_nonblock_cloexec(p[0]) == -EBADF, "compat_fd_nonblock_cloexec_reports_errno");

    int fd = ag__socket(AF_INET, SOCK_STREAM, 0);
    tap_ok(fd >= 0 && nonblock_cloexec(fd), "compat_socket_is_nonblocking_and_cloexec");
    if (fd >= 0)
        close(fd);
    return tap_done();
}
