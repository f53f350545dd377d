/* peer.h: a test peer, a Python program of tests/ run by /usr/bin/python3. Its stdin is a pipe
 * the test keeps open: the peer ends when the pipe closes, also when the test dies. It tells its
 * ports on stdout. */
#ifndef AG_TESTS_PEER_H
#define AG_TESTS_PEER_H

#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <sys/types.h>
#include <unistd.h>

/* Start the peer: args is the script and its arguments, NULL-terminated. *in_fd gets the write
 * end of its stdin, *out_fd the read end of its stdout. The pid, or -1. */
static inline pid_t peer_spawn(const char *const *args, int *in_fd, int *out_fd)
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) < 0)
        return -1;
    if (pipe2(out, O_CLOEXEC) < 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        const char *argv[16] = {"python3"};
        for (size_t i = 0; args[i] && i + 2 < sizeof argv / sizeof *argv; i++)
            argv[i + 1] = args[i];
        execv("/usr/bin/python3", (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    if (pid < 0) {
        close(in[1]);
        close(out[0]);
        return -1;
    }
    *in_fd = in[1];
    *out_fd = out[0];
    return pid;
}

/* Read one line from fd into line (without its newline, NUL-terminated), waiting at most
 * timeout_ms for each byte. Returns its length; a peer that said nothing gives 0. */
static inline size_t peer_read_line(int fd, char *line, size_t size, int timeout_ms)
{
    size_t got = 0;
    while (got + 1 < size) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, timeout_ms) != 1 || read(fd, line + got, 1) != 1 || line[got] == '\n')
            break;
        got++;
    }
    line[got] = 0;
    return got;
}

#endif
