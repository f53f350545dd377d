/* resolve.h: where names become addresses. A resolver belongs to a client: c-ares on the
 * client's loop (or in poll() for a client without one), a cache that keeps each answer for its
 * TTL, and the client's overrides. A lookup asks for IPv4 and IPv6 separately, so that the
 * connect phase can start on the first answer (Happy Eyeballs, net/). */
#ifndef AG_DNS_RESOLVE_H
#define AG_DNS_RESOLVE_H

#include "core/internal.h"
#include "dns/numeric.h"

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* Addresses kept per family of one name; more are dropped. */
#define AG__DNS_MAX 8
/* Addresses a connect may try: both families. */
#define AG__MAX_ADDRS (2 * AG__DNS_MAX)

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

/* Fill *sa with family (AF_INET or AF_INET6), the address bytes and port. */
void ag__sockaddr_set(ag__sockaddr *sa, int family, const uint8_t *addr, uint16_t port);

typedef struct ag__resolver ag__resolver;

typedef struct ag__resolver_opts {
    ag_loop *loop; /* NULL: lookups wait in poll() */
    const char *servers;
    int64_t timeout_ms;
    unsigned tries;
    int family; /* enum ag_ip_family */
    unsigned cache_size;
    int64_t negative_ttl_ms;
    unsigned max_queries;       /* in flight at once */
    const char *const *resolve; /* "HOST:PORT:ADDR[,ADDR]..." entries, copied */
    const char *hosts_path;     /* NULL: /etc/hosts (tests give another; kept, not copied) */
} ag__resolver_opts;

/* Make a resolver; the options are the client's, defaults filled in. -EINVAL for a malformed
 * server list or resolve entry, -ENOMEM, or AG_EDNS_FAIL when c-ares cannot start (no
 * resolv.conf is fine: it then asks the local host). */
int ag__resolver_new(ag__resolver **out, const ag__resolver_opts *opts);
/* Free; no lookup may be in progress (queries nobody waits for any more are dropped). */
void ag__resolver_free(ag__resolver *r);
void ag__resolver_stats(const ag__resolver *r, ag_dns_stats *out);
/* The version of the c-ares library in use, "1.18.1". */
const char *ag__resolver_version(void);

enum { AG__FAM4 = 0, AG__FAM6 = 1 };
enum { AG__LK_UNASKED = 0, AG__LK_PENDING, AG__LK_DONE };

/* The answer of one family. */
typedef struct ag__lookup_fam {
    uint8_t state;   /* AG__LK_* */
    uint8_t n;       /* addresses */
    int error;       /* when done: 0, or AG_EDNS, AG_EDNS_FAIL, AG_EDNS_TIMEOUT, -ENOMEM, -EMFILE or
                      * -ENFILE (c-ares found no descriptor for a socket: the name was not asked) */
    const char *why; /* a static text beside error ("NXDOMAIN", "SERVFAIL", ...), or NULL */
    uint8_t addr[AG__DNS_MAX][16]; /* IPv4 in the first 4 bytes */
} ag__lookup_fam;

typedef struct ag__lookup ag__lookup;
struct ag__lookup {
    ag__resolver *res;
    ag_coro *co; /* between prepare and finish: the coroutine to wake on an answer */
    uint16_t port;
    bool prefer4; /* try IPv4 first (localhost: most local servers listen there) */
    int first;    /* the family that completed first, -1 before one did */
    ag__lookup_fam fam[2];
    /* private: the cache entries this lookup waits on, and its links in their waiter lists */
    void *entry[2];
    ag__queue link[2];
};

/* Start looking up host (no brackets for IPv6) for a connect to port. Numeric hosts,
 * "localhost", the resolve overrides and cached answers complete at once, without a query.
 * Returns 0 (then ag__lookup_end must follow), or -ENOMEM. */
int ag__lookup_start(ag__resolver *r, ag__lookup *lk, const char *host, uint16_t port);
/* Whether every family asked is done. */
bool ag__lookup_done(const ag__lookup *lk);
/* Wait until a family that was pending completes, or the deadline: 0, -ETIMEDOUT, -ECANCELED.
 * 0 at once when nothing is pending. */
int ag__lookup_wait(ag__lookup *lk, int64_t deadline_ns);
/*
 * For a wait on the lookup together with other things (Happy Eyeballs waits on its connection
 * attempts too), around one ag__wait_any:
 *   k = ag__lookup_prepare(lk, items + n, max - n, &deadline);
 *   rc = ag__wait_any(items, n + k, deadline);
 *   ag__lookup_finish(lk, items + n, k);
 * prepare adds the resolver's sockets to the items (plain code only: on a loop they are the
 * loop's) and may move the deadline earlier (a c-ares timeout); inside a coroutine it makes an
 * answer wake the wait (ag__wait_any returns 0). finish processes what the sockets brought and
 * the c-ares timeouts, after which the family states may have changed.
 */
int ag__lookup_prepare(ag__lookup *lk, ag__wait_item *items, int max, int64_t *deadline_ns);
void ag__lookup_finish(ag__lookup *lk, ag__wait_item *items, int k);
/* Stop waiting for the lookup (also when it is not done: the query goes on for the cache, or
 * is dropped when nobody else waits). */
void ag__lookup_end(ag__lookup *lk);
/* The addresses to try, with port: IPv6 and IPv4 interleaved (RFC 8305 section 4), starting with
 * the preferred family when both are done, else with the one that is. */
void ag__lookup_addrs(const ag__lookup *lk, ag__addrs *out);
/* One family's answer from c-ares (the status and result of ares_getaddrinfo) made into *a: up to
 * AG__DNS_MAX distinct addresses of that family (fam: AG__FAM4 or AG__FAM6) in the order given,
 * or an error with its why. Returns how long the answer may be cached, in ns: the least TTL of
 * the records and aliases, 0 when none or on an error (the caller applies its negative TTL).
 * Split out of the c-ares callback so that the fuzz target can feed it arbitrary answers. */
struct ares_addrinfo;
int64_t ag__dns_answer(ag__lookup_fam *a, uint8_t fam, int status, const struct ares_addrinfo *ai);

/* The error of a lookup that found nothing: the most telling of its families' errors, with its
 * why. */
int ag__lookup_error(const ag__lookup *lk, const char **why);

#endif
