/* sys.c: the bench's dealings with the system: CPU pinning, the descriptor limit, CPU time, and
 * starting this program again as the loopback server on a port the kernel picks. */
#include "asyncget.h"
#include "bench.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROOT_NOFILE 200000 /* what root asks for beyond the hard limit */

int sys_ncpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int sys_pin(bool last, char *note, size_t len)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) < 0 || CPU_COUNT(&set) < 2) {
        snprintf(note, len, "one CPU: not pinned");
        return -1;
    }
    int cpu = -1;
    for (int i = 0; i < CPU_SETSIZE; i++) {
        if (CPU_ISSET(i, &set)) {
            cpu = i;
            if (!last)
                break;
        }
    }
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (sched_setaffinity(0, sizeof one, &one) < 0) {
        snprintf(note, len, "not pinned (%s)", strerror(errno));
        return -1;
    }
    snprintf(note, len, "CPU %d", cpu);
    return 0;
}

long sys_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    /* Root may lift the hard limit itself, up to fs.nr_open; fall back to the hard limit. */
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < ROOT_NOFILE) {
        struct rlimit want = {ROOT_NOFILE, ROOT_NOFILE};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            return ROOT_NOFILE;
    }
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur == RLIM_INFINITY ? -1 : (long)rl.rlim_cur;
}

double sys_cpu_s(const struct rusage *ru)
{
    return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) +
           (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1e6;
}

ssize_t sys_read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

int sys_write_full(int fd, const void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, (const char *)buf + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

pid_t sys_spawn_server(int delay_ms, bool pin, int tls, int *port, char *ca, size_t ca_len)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        /* The server must not outlive the bench, even when the bench is killed. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        close(p[0]);
        int wfd = dup(p[1]); /* dup clears close-on-exec */
        char fdarg[16], delayarg[16];
        snprintf(fdarg, sizeof fdarg, "%d", wfd);
        snprintf(delayarg, sizeof delayarg, "%d", delay_ms);
        char *argv[12] = {"asyncget-bench", "--serve", "0", "--port-fd", fdarg,
                          "--delay",        delayarg};
        int argc = 7;
        if (!pin)
            argv[argc++] = "--no-pin";
        if (tls) {
            argv[argc++] = "--tls";
            if (tls == 12 || tls == 13) {
                argv[argc++] = "--tls-version";
                argv[argc++] = tls == 12 ? "1.2" : "1.3";
            }
        }
        argv[argc] = NULL;
        execv("/proc/self/exe", argv);
        fprintf(stderr, "asyncget-bench: cannot exec the server: %s\n", strerror(errno));
        _exit(127);
    }
    close(p[1]);
    /* The server writes its port once it listens (and over TLS the path of its certificate);
     * give it a few seconds. */
    char line[640] = "";
    struct pollfd pfd = {p[0], POLLIN, 0};
    ssize_t n = -1;
    if (poll(&pfd, 1, 10000) > 0)
        n = sys_read_full(p[0], line, sizeof line - 1);
    close(p[0]);
    char *rest = line;
    if (n > 0) {
        line[n] = '\0';
        *port = (int)strtol(line, &rest, 10);
        rest += strspn(rest, " ");
        rest[strcspn(rest, "\n")] = '\0';
        if (ca_len)
            snprintf(ca, ca_len, "%s", rest);
    }
    if (n <= 0 || *port <= 0 || (tls && !rest[0])) {
        sys_stop_server(pid);
        return -1;
    }
    return pid;
}

void sys_stop_server(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

long sys_status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kb = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
            kb = strtol(line + fl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

long sys_heap_kb(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (long)((mi.uordblks + mi.hblkhd) / 1024);
}

long sys_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = -1; /* the DIR's own descriptor */
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}
