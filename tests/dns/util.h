/* util.h: what the DNS tests share: counting dnsmasq's logged queries, and a name's addresses
 * as text. */
#ifndef AG_TESTS_DNS_UTIL_H
#define AG_TESTS_DNS_UTIL_H

#include <asyncget.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Queries for name of type ("A", "AAAA") in dnsmasq's log (AG_DNS_LOG) so far; -1 without it. */
static inline int logged(const char *type, const char *name)
{
    const char *log = getenv("AG_DNS_LOG");
    FILE *f = log ? fopen(log, "r") : NULL;
    if (!f)
        return -1;
    char line[512], pat[300];
    snprintf(pat, sizeof pat, "query[%s] %s from", type, name);
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, pat) != NULL;
    fclose(f);
    return n;
}

/* dnsmasq writes its log line before it answers, but give a slow machine time: wait until the
 * count reaches want, or up to 2 s, and return what is there. */
static inline int logged_at_least(const char *type, const char *name, int want)
{
    int n = 0;
    for (int i = 0; i < 200 && (n = logged(type, name)) < want; i++)
        usleep(10 * 1000);
    return n;
}

/* Resolve name with c; its addresses as text in out, "::1 127.0.0.1". */
static inline int resolve_text(ag_client *c, const char *name, char *out, size_t cap)
{
    ag_addr a[16];
    size_t n = 0;
    int rc = ag_client_resolve(c, name, a, 16, &n);
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        char b[64];
        inet_ntop(a[i].family == 4 ? AF_INET : AF_INET6, a[i].addr, b, sizeof b);
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s%s", i ? " " : "", b);
    }
    return rc;
}

#endif
