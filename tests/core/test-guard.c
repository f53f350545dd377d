/* test-guard.c: a coroutine that overflows its stack dies on the guard page with SIGSEGV. The
 * child reports where it faulted before dying, so the test knows it was the guard page. */
#include "asyncget.h"
#include "core/internal.h"
#include "tests/tap.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static uintptr_t guard_lo, guard_hi;
static int report_fd = -1;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    uintptr_t a = (uintptr_t)si->si_addr;
    char verdict = a >= guard_lo && a < guard_hi ? 'G' : 'O';
    ssize_t w = write(report_fd, &verdict, 1);
    (void)w;
    signal(sig, SIG_DFL);
    raise(sig);
}

static volatile int depth_limit = 1 << 30; /* far beyond any stack */

static __attribute__((noinline)) int overflow(int depth)
{
    volatile char frame[1024];
    frame[0] = (char)depth;
    if (depth >= depth_limit)
        return 0;
    return overflow(depth + 1) + frame[0];
}

static void doomed(void *arg)
{
    (void)arg;
    ag_coro *self = ag_coro_self();
    size_t ps = ag__page_size();
    guard_lo = (uintptr_t)self->stack_lo - ps;
    guard_hi = (uintptr_t)self->stack_lo;
    overflow(0);
}

static int child(int fd)
{
    report_fd = fd;
    static char altstack[64 * 1024];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
    sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &sa, NULL);
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    ag_coro_spawn(loop, doomed, NULL, NULL);
    ag_loop_run(loop);
    return 0; /* not reached when the guard works */
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "child") == 0)
        return child(atoi(argv[2]));

    int p[2];
    if (pipe(p) != 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        char fdarg[16];
        snprintf(fdarg, sizeof fdarg, "%d", p[1]);
        /* AddressSanitizer would catch the fault itself; the test wants the kernel's SIGSEGV. */
        setenv("ASAN_OPTIONS", "handle_segv=0:detect_leaks=0", 1);
        execl(argv[0], argv[0], "child", fdarg, (char *)NULL);
        /* No exec (qemu-user without binfmt cannot run the binary again): the forked copy is
         * the child. Only sanitizer builds need the exec, and they run natively. */
        _exit(child(p[1]));
    }
    close(p[1]);
    char verdict = '?';
    ssize_t r = read(p[0], &verdict, 1);
    (void)r;
    int status = 0;
    waitpid(pid, &status, 0);
    int segv = WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
    tap_ok(segv && verdict == 'G',
           "guard_overflow: the child died of SIGSEGV (%d) at its guard page (%c), mode %s", segv,
           verdict, ag__stack_guard_mode() == AG__GUARD_MADVISE ? "madvise" : "mprotect");
    return tap_done();
}
