/* util.h: shared helpers of the HTTP integration tests: server ports, files, one-line fetches. */
#ifndef AG_TESTS_HTTP_UTIL_H
#define AG_TESTS_HTTP_UTIL_H

#include "asyncget.h"
#include "tests/tap.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static inline int env_port(const char *name)
{
    const char *v = getenv(name);
    if (!v) {
        printf("1..0 # SKIP %s not set: run through tests/servers/with-servers\n", name);
        exit(0);
    }
    return atoi(v);
}

static inline char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return NULL;
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return buf;
}

/* url = base + path, in a static rotating buffer (enough for one test statement). */
static inline const char *url_of(int port, const char *path)
{
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "http://127.0.0.1:%d%s", port, path);
    return b;
}

/* GET url with the client; returns the response (caller frees) and the code in *rc. */
static inline ag_response *get(ag_client *c, const char *url, int *rc)
{
    ag_request r;
    ag_request_init(&r);
    r.url = url;
    ag_response *resp;
    *rc = ag_fetch(c, &r, &resp);
    return resp;
}

#endif
