/* resolve.h: the seam where names become addresses. For now numeric addresses and "localhost"
 * resolve without the network; the c-ares resolver and its cache land behind this same call. */
#ifndef AG_DNS_RESOLVE_H
#define AG_DNS_RESOLVE_H

#include "dns/numeric.h"

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define AG__MAX_ADDRS 8

/* An IPv4 or IPv6 socket address: 28 bytes where sockaddr_storage takes 128, so a list fits on a
 * coroutine stack. */
typedef union ag__sockaddr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
} ag__sockaddr;

typedef struct ag__addrs {
    ag__sockaddr addr[AG__MAX_ADDRS];
    int count;
} ag__addrs;

static inline socklen_t ag__sockaddr_len(const ag__sockaddr *a)
{
    return a->sa.sa_family == AF_INET ? sizeof a->in : sizeof a->in6;
}

/* Resolve host (no brackets for IPv6) and port into out, in the order to try. Returns 0, or
 * AG_EDNS for a name this build cannot resolve yet. The deadline bounds an asynchronous
 * resolution; the numeric path never waits. */
int ag__resolve(const char *host, uint16_t port, ag__addrs *out, int64_t deadline_ns);

#endif
