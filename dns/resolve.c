/* resolve.c: numeric addresses and "localhost", without a resolver. Names that need DNS fail
 * with AG_EDNS until the c-ares resolver lands behind ag__resolve. */
#include "dns/resolve.h"
#include "asyncget.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

static void add4(ag__addrs *out, const struct in_addr *a, uint16_t port)
{
    struct sockaddr_in *sin = &out->addr[out->count++].in;
    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr = *a;
}

static void add6(ag__addrs *out, const struct in6_addr *a, uint16_t port)
{
    struct sockaddr_in6 *sin6 = &out->addr[out->count++].in6;
    memset(sin6, 0, sizeof *sin6);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    sin6->sin6_addr = *a;
}

int ag__resolve(const char *host, uint16_t port, ag__addrs *out, int64_t deadline_ns)
{
    (void)deadline_ns;
    struct in_addr a4;
    struct in6_addr a6;
    out->count = 0;
    if (ag__ipv4_parse(host, (uint8_t *)&a4.s_addr)) {
        add4(out, &a4, port);
        return 0;
    }
    if (ag__ipv6_parse(host, a6.s6_addr)) {
        add6(out, &a6, port);
        return 0;
    }
    /* RFC 6761: localhost names the loopback, never a DNS answer. IPv4 first, as most local
     * servers listen there. */
    size_t n = strlen(host);
    if (strcasecmp(host, "localhost") == 0 ||
        (n > 10 && strcasecmp(host + n - 10, ".localhost") == 0)) {
        a4.s_addr = htonl(INADDR_LOOPBACK);
        add4(out, &a4, port);
        add6(out, &in6addr_loopback, port);
        return 0;
    }
    return AG_EDNS;
}
