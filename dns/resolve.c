/* resolve.c: the resolver of a client. c-ares asks the DNS servers; its sockets are watched by the
 * client's loop (or by the waiting caller's poll() when there is no loop) and its timeouts run on
 * a loop timer. Answers are cached per name and family for their TTL, in an LRU bounded in
 * entries; a lookup of a name whose query is in flight joins it. */
#include "dns/resolve.h"
#include "dns/hosts.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* One name and family: a query in flight (PENDING, with the lookups waiting on it) or an answer
 * (DONE) kept until it expires. */
typedef struct entry {
    ag__queue lru;      /* in the resolver's LRU while cached, oldest first */
    struct entry *next; /* hash chain */
    ag__resolver *res;
    uint32_t hash;
    uint8_t fam;    /* AG__FAM4 or AG__FAM6 */
    uint8_t state;  /* AG__LK_PENDING or AG__LK_DONE */
    bool cached;    /* in the hash table (an entry left out only serves its waiters) */
    bool queued;    /* pending, waiting for a free query slot (linked through lru) */
    bool abandoned; /* sent, then left by every lookup: its slot was given back */
    ag__lookup_fam answer;
    int64_t expires;
    unsigned no_fd_mark; /* the resolver's no_fd_count when the query was sent */
    ag__queue waiters;   /* lookups, through their link[fam] */
    char name[];         /* lower case */
} entry;

/* A socket c-ares asked us to watch. */
typedef struct sock {
    ag__io io;
    ag__resolver *res;
    unsigned want; /* AG_READ, AG_WRITE */
} sock;

/* A resolve override: host at port (0: any) answered with these addresses. */
typedef struct override {
    char *host;
    uint16_t port;
    uint8_t n[2];
    uint8_t addr[2][AG__DNS_MAX][16];
} override;

struct ag__resolver {
    ag_loop *loop;
    ares_channel ch;
    bool ch_ok;
    int family;
    unsigned cache_size; /* 0: no cache */
    int64_t negative_ttl_ns;
    entry **table;
    size_t table_size; /* a power of two */
    size_t cached;     /* entries in the table */
    ag__queue lru;
    size_t waiting;  /* lookups linked to pending entries */
    size_t pending;  /* query slots in use: sent, and someone still waits (dns_max_queries) */
    size_t inflight; /* queries in c-ares, abandoned ones too */
    unsigned max_queries;
    ag__queue queued; /* pending entries not sent yet, oldest first */
    bool draining;
    bool closing;    /* ares_destroy runs the callbacks of the queries left: send nothing more */
    bool write_kick; /* a socket newly wants writing: the timer runs at once to try it */
    /* A socket c-ares opened could not be watched (its error; see lose_socket), and the queries
     * it carries are being cancelled: they end with that error. */
    int lost_err;
    bool cancelling;
    sock **socks;
    size_t nsocks, socks_cap;
    ag_timer timer;
    override *ovr;
    size_t novr;
    ag__hosts *hosts;
    ag_dns_stats stats;
    /* c-ares could not open a socket (EMFILE or ENFILE) this many times, the last with no_fd */
    unsigned no_fd_count;
    int no_fd;
};

static pthread_once_t ares_once = PTHREAD_ONCE_INIT;
static int ares_init_status = ARES_SUCCESS;

static void ares_setup(void)
{
    ares_init_status = ares_library_init(ARES_LIB_INIT_ALL);
}

void ag__sockaddr_set(ag__sockaddr *sa, int family, const uint8_t *addr, uint16_t port)
{
    memset(sa, 0, sizeof *sa);
    if (family == AF_INET) {
        sa->in.sin_family = AF_INET;
        sa->in.sin_port = htons(port);
        memcpy(&sa->in.sin_addr, addr, 4);
    } else {
        sa->in6.sin6_family = AF_INET6;
        sa->in6.sin6_port = htons(port);
        memcpy(&sa->in6.sin6_addr, addr, 16);
    }
}

/* ---- the cache ---- */

static uint32_t name_hash(const char *s, uint8_t fam)
{
    uint32_t h = 2166136261u ^ fam; /* FNV-1a */
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 16777619u;
    }
    return h;
}

static entry *cache_find(ag__resolver *r, const char *name, uint8_t fam, uint32_t h)
{
    if (!r->table)
        return NULL;
    for (entry *e = r->table[h & (r->table_size - 1)]; e; e = e->next)
        if (e->hash == h && e->fam == fam && strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

static void cache_unlink(ag__resolver *r, entry *e)
{
    if (!e->cached)
        return;
    entry **p = &r->table[e->hash & (r->table_size - 1)];
    while (*p != e)
        p = &(*p)->next;
    *p = e->next;
    e->cached = false;
    r->cached--;
    if (e->state == AG__LK_DONE)
        ag__queue_remove(&e->lru);
}

static int cache_grow(ag__resolver *r)
{
    size_t n = r->table_size ? r->table_size * 2 : 64;
    entry **t = calloc(n, sizeof *t);
    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i < r->table_size; i++) {
        for (entry *e = r->table[i], *next; e; e = next) {
            next = e->next;
            e->next = t[e->hash & (n - 1)];
            t[e->hash & (n - 1)] = e;
        }
    }
    free(r->table);
    r->table = t;
    r->table_size = n;
    return 0;
}

/* Drop the oldest answers beyond the bound. Pending entries are not in the LRU: a query in
 * flight is never evicted, so the table may briefly hold more than the bound. */
static void cache_trim(ag__resolver *r)
{
    while (r->cached > r->cache_size && !ag__queue_empty(&r->lru)) {
        entry *e = ag__queue_data(ag__queue_head(&r->lru), entry, lru);
        cache_unlink(r, e);
        free(e);
    }
}

/* ---- sockets and timeouts ---- */

static void arm_timer(ag__resolver *r)
{
    if (!r->loop)
        return;
    if (r->write_kick || r->lost_err) {
        ag_timer_start(r->loop, &r->timer, ag_now_ns());
        return;
    }
    struct timeval tv;
    if (!ares_timeout(r->ch, NULL, &tv)) {
        ag_timer_stop(r->loop, &r->timer);
        return;
    }
    int64_t at = ag_now_ns() + (int64_t)tv.tv_sec * 1000000000 + (int64_t)tv.tv_usec * 1000;
    ag_timer_start(r->loop, &r->timer, at);
}

/* c-ares opened a socket that cannot be watched (no memory for its record): its answers would
 * never be read, and its queries would run out their timeouts and blame the servers. They end now
 * with that error instead, from the timer or the next wait (not inside a c-ares callback);
 * ares_cancel ends them all, and closes the sockets once no query is left. */
static void lose_socket(ag__resolver *r, int err)
{
    r->lost_err = err;
    if (r->loop)
        ag_timer_start(r->loop, &r->timer, ag_now_ns());
}

static void cancel_lost(ag__resolver *r)
{
    r->cancelling = true;
    ares_cancel(r->ch);
    r->cancelling = false;
    r->lost_err = 0;
}

static void on_timer(ag_timer *t, void *arg)
{
    (void)t;
    ag__resolver *r = arg;
    if (r->lost_err) {
        cancel_lost(r);
        arm_timer(r);
        return;
    }
    if (r->write_kick) {
        /* Sockets that c-ares newly wants to write: writing may close one and open another on
         * the same fd, so take the fds first. */
        r->write_kick = false;
        int fds[16];
        size_t n = 0;
        for (size_t i = 0; i < r->nsocks && n < 16; i++)
            if (r->socks[i]->want & AG_WRITE)
                fds[n++] = r->socks[i]->io.fd;
        for (size_t i = 0; i < n; i++)
            ares_process_fd(r->ch, ARES_SOCKET_BAD, fds[i]);
    }
    ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    arm_timer(r);
}

static sock *sock_find(ag__resolver *r, int fd, size_t *at)
{
    for (size_t i = 0; i < r->nsocks; i++) {
        if (r->socks[i]->io.fd == fd) {
            if (at)
                *at = i;
            return r->socks[i];
        }
    }
    return NULL;
}

static bool fd_readable(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLERR | POLLHUP));
}

/* The loop saw one of c-ares's sockets ready. c-ares reads a UDP socket until it would block, but
 * a TCP one once per call, and stops early on a datagram from a stranger: with edge-triggered
 * reports, bytes left behind would never be reported again, so look again before leaving. */
static void sock_ready(ag__io *io, unsigned events)
{
    sock *s = io->data;
    ag__resolver *r = s->res;
    int fd = io->fd;
    ares_socket_t rfd = (events & AG_READ) && (s->want & AG_READ) ? fd : ARES_SOCKET_BAD;
    ares_socket_t wfd = (events & AG_WRITE) && (s->want & AG_WRITE) ? fd : ARES_SOCKET_BAD;
    if (rfd != ARES_SOCKET_BAD || wfd != ARES_SOCKET_BAD) {
        ares_process_fd(r->ch, rfd, wfd);
        for (int i = 0; i < 16; i++) {
            /* c-ares may have closed the socket, and even opened another on the same fd: look
             * it up again rather than trust s. */
            sock *again = sock_find(r, fd, NULL);
            if (!again || !(again->want & AG_READ) || !fd_readable(fd))
                break;
            ares_process_fd(r->ch, fd, ARES_SOCKET_BAD);
        }
    }
    sock *still = sock_find(r, fd, NULL);
    if (still)
        ag__io_rearm(&still->io, still->want);
    arm_timer(r);
}

/* c-ares opens, changes and closes its sockets through here (a close is announced before it
 * happens). */
static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    ag__resolver *r = data;
    size_t at;
    sock *s = sock_find(r, fd, &at);
    if (!readable && !writable) {
        if (!s)
            return;
        ag__io_detach(&s->io);
        r->socks[at] = r->socks[--r->nsocks];
        free(s);
        return;
    }
    unsigned want = (readable ? (unsigned)AG_READ : 0u) | (writable ? (unsigned)AG_WRITE : 0u);
    if (!s) {
        if (r->nsocks == r->socks_cap) {
            size_t cap = r->socks_cap ? r->socks_cap * 2 : 4;
            sock **v = realloc(r->socks, cap * sizeof *v);
            if (!v) {
                lose_socket(r, -ENOMEM);
                return;
            }
            r->socks = v;
            r->socks_cap = cap;
        }
        s = calloc(1, sizeof *s);
        if (!s) {
            lose_socket(r, -ENOMEM);
            return;
        }
        int rc = ag__io_init(&s->io, r->loop, fd);
        if (rc < 0) {
            free(s);
            lose_socket(r, rc);
            return;
        }
        s->io.on_ready = sock_ready;
        s->io.data = s;
        s->res = r;
        r->socks[r->nsocks++] = s;
    }
    /* Interest in writing a socket that is writable already (a query queued on c-ares's idle TCP
     * connection) brings no new readiness edge on epoll or kqueue: try the write from the loop
     * soon, as an edge would have. */
    if ((want & AG_WRITE) && !(s->want & AG_WRITE) && r->loop) {
        r->write_kick = true;
        ag_timer_start(r->loop, &r->timer, ag_now_ns());
    }
    s->want = want;
    ag__io_rearm(&s->io, want);
}

/* ---- answers ---- */

static void set_error(ag__lookup_fam *a, int status)
{
    a->n = 0;
    switch (status) {
    case ARES_ENOTFOUND:
        a->error = AG_EDNS;
        a->why = "no such name (NXDOMAIN)";
        break;
    case ARES_ENODATA:
        a->error = AG_EDNS;
        a->why = "no address of this family (NODATA)";
        break;
    case ARES_EBADNAME:
        a->error = AG_EDNS;
        a->why = "malformed name";
        break;
    case ARES_ESERVFAIL:
        a->error = AG_EDNS_FAIL;
        a->why = "server failure (SERVFAIL)";
        break;
    case ARES_EREFUSED:
        a->error = AG_EDNS_FAIL;
        a->why = "query refused (REFUSED)";
        break;
    case ARES_ETIMEOUT:
        a->error = AG_EDNS_TIMEOUT;
        a->why = "no answer from the DNS servers";
        break;
    case ARES_ECONNREFUSED:
        /* What c-ares 1.18.1 says when every server answered SERVFAIL or REFUSED (with several
         * servers it moves on from such an answer and keeps none), when none could be reached,
         * and when it could not open a socket (no free fd). */
        a->error = AG_EDNS_FAIL;
        a->why = "every DNS server failed or refused the query, or none could be reached (or no "
                 "free file descriptor)";
        break;
    case ARES_ENOMEM:
        a->error = -ENOMEM;
        a->why = NULL;
        break;
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION:
        a->error = AG_EDNS_FAIL;
        a->why = "lookup cancelled";
        break;
    default:
        a->error = AG_EDNS_FAIL;
        a->why = "malformed or unusable answer";
        break;
    }
}

static void drain(ag__resolver *r);

int64_t ag__dns_answer(ag__lookup_fam *a, uint8_t fam, int status, const struct ares_addrinfo *ai)
{
    int64_t ttl_ns = 0;
    memset(a, 0, sizeof *a);
    a->state = AG__LK_DONE;
    if (status == ARES_SUCCESS && ai) {
        int family = fam == AG__FAM4 ? AF_INET : AF_INET6;
        /* The answer lasts as long as its shortest-lived record (RFC 2181 section 5.2: an RRSet
         * whose TTLs differ is taken at the lowest), counting the records not kept (duplicates,
         * those past AG__DNS_MAX) too, and a negative TTL is 0 (section 8: the top bit set). */
        bool have_ttl = false;
        int ttl = 0;
        for (struct ares_addrinfo_node *n = ai->nodes; n; n = n->ai_next) {
            if (n->ai_family != family || !n->ai_addr)
                continue;
            if (!have_ttl || n->ai_ttl < ttl)
                ttl = n->ai_ttl;
            have_ttl = true;
            if (a->n == AG__DNS_MAX)
                continue;
            const uint8_t *b = family == AF_INET
                                   ? (const uint8_t *)&((struct sockaddr_in *)n->ai_addr)->sin_addr
                                   : ((struct sockaddr_in6 *)n->ai_addr)->sin6_addr.s6_addr;
            size_t len = family == AF_INET ? 4 : 16;
            bool dup = false;
            for (unsigned i = 0; i < a->n && !dup; i++)
                dup = memcmp(a->addr[i], b, len) == 0;
            if (!dup)
                memcpy(a->addr[a->n++], b, len);
        }
        /* A name reached through aliases lasts as long as the shortest link of the chain. */
        for (struct ares_addrinfo_cname *c = ai->cnames; c; c = c->next)
            if (c->ttl < ttl)
                ttl = c->ttl;
        if (a->n == 0)
            set_error(a, ARES_ENODATA);
        else
            ttl_ns = ttl > 0 ? (int64_t)ttl * 1000000000 : 0;
    } else {
        set_error(a, status == ARES_SUCCESS ? ARES_ENODATA : status);
    }
    return ttl_ns;
}

static void query_done(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
    (void)timeouts;
    entry *e = arg;
    ag__resolver *r = e->res;
    ag__lookup_fam *a = &e->answer;
    int64_t ttl_ns = ag__dns_answer(a, e->fam, status, ai);
    if (status == ARES_ECANCELLED && r->cancelling) {
        a->error = r->lost_err;
        a->why = "a DNS socket could not be watched";
    }
    if (ai)
        ares_freeaddrinfo(ai);
    if (a->n == 0 && r->no_fd_count != e->no_fd_mark && status != ARES_ENOTFOUND &&
        status != ARES_ENODATA && status != ARES_ENOMEM) {
        /* c-ares reports a socket it could not open as a server that cannot be reached: the
         * name was not asked, and the caller may ask again once a descriptor is free (never
         * cached, as no failure of the servers is). Another query's socket may have been the
         * one refused: asked again, this one then gets its own answer. */
        a->error = r->no_fd;
        a->why = "no descriptor for a DNS socket";
    }
    if (a->n == 0) {
        r->stats.failures++;
        /* Only "this name has no such address" is remembered; a failure of the servers is
         * asked again next time. */
        ttl_ns = a->error == AG_EDNS ? r->negative_ttl_ns : 0;
    }
    e->state = AG__LK_DONE;
    e->expires = ag_now_ns() + ttl_ns;
    r->inflight--;
    if (!e->abandoned)
        r->pending--;
    while (!ag__queue_empty(&e->waiters)) {
        ag__queue *l = ag__queue_head(&e->waiters);
        ag__queue_remove(l);
        r->waiting--;
        ag__lookup *lk = ag__queue_data(l, ag__lookup, link[e->fam]);
        lk->fam[e->fam] = *a;
        lk->entry[e->fam] = NULL;
        if (lk->first < 0)
            lk->first = e->fam;
        if (lk->co)
            ag__coro_wake(lk->co, 0);
    }
    if (e->cached && ttl_ns > 0 && r->cache_size > 0) {
        ag__queue_push(&r->lru, &e->lru);
        cache_trim(r);
    } else {
        cache_unlink(r, e);
        free(e);
    }
    drain(r);
}

static void query_send(ag__resolver *r, entry *e)
{
    r->pending++;
    r->inflight++;
    r->stats.queries++;
    struct ares_addrinfo_hints hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = e->fam == AG__FAM4 ? AF_INET : AF_INET6;
    /* No sorting: c-ares would open a socket per address to sort them (RFC 6724). */
    hints.ai_flags = ARES_AI_NOSORT;
    e->no_fd_mark = r->no_fd_count;
    /* The callback may run before this returns (an answer from /etc/hosts, a failure). */
    ares_getaddrinfo(r->ch, e->name, NULL, &hints, query_done, e);
}

/* Send queued queries while slots are free. A query that completes at once (from /etc/hosts)
 * frees its slot inside query_send: the loop here, not a recursion, sends the next one. */
static void drain(ag__resolver *r)
{
    if (r->draining || r->closing)
        return;
    r->draining = true;
    while (r->pending < r->max_queries && !ag__queue_empty(&r->queued)) {
        entry *e = ag__queue_data(ag__queue_pop(&r->queued), entry, lru);
        e->queued = false;
        query_send(r, e);
    }
    r->draining = false;
}

/* ---- the resolver ---- */

static int parse_override(const char *spec, override *o)
{
    memset(o, 0, sizeof *o);
    if (*spec == '+')
        spec++;
    const char *c1 = strchr(spec, ':');
    if (!c1 || c1 == spec)
        return -EINVAL;
    const char *c2 = strchr(c1 + 1, ':');
    if (!c2)
        return -EINVAL;
    if (c2 - c1 == 2 && c1[1] == '*') {
        o->port = 0;
    } else {
        unsigned long port = 0;
        if (c2 == c1 + 1)
            return -EINVAL;
        for (const char *p = c1 + 1; p < c2; p++) {
            if (*p < '0' || *p > '9' || (port = port * 10 + (unsigned)(*p - '0')) > 65535)
                return -EINVAL;
        }
        if (port == 0)
            return -EINVAL;
        o->port = (uint16_t)port;
    }
    if (!(o->host = strndup(spec, (size_t)(c1 - spec))))
        return -ENOMEM;
    for (char *p = o->host; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    const char *p = c2 + 1;
    bool any = false;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *a0 = p;
        if (len >= 2 && a0[0] == '[' && a0[len - 1] == ']') {
            a0++;
            len -= 2;
        }
        char buf[64];
        if (len == 0 || len >= sizeof buf)
            goto bad;
        memcpy(buf, a0, len);
        buf[len] = '\0';
        uint8_t a[16];
        /* More addresses than a lookup keeps would be dropped in silence: refused. A repeat is
         * kept once. */
        int fam;
        size_t alen;
        if (ag__ipv4_parse(buf, a)) {
            fam = AG__FAM4;
            alen = 4;
        } else if (ag__ipv6_parse(buf, a)) {
            fam = AG__FAM6;
            alen = 16;
        } else {
            goto bad;
        }
        bool dup = false;
        for (unsigned i = 0; i < o->n[fam] && !dup; i++)
            dup = memcmp(o->addr[fam][i], a, alen) == 0;
        if (!dup) {
            if (o->n[fam] == AG__DNS_MAX)
                goto bad;
            memcpy(o->addr[fam][o->n[fam]++], a, alen);
        }
        any = true;
        if (!end)
            break;
        p = end + 1;
    }
    if (!any)
        goto bad;
    return 0;
bad:
    free(o->host);
    o->host = NULL;
    return -EINVAL;
}

/* Whether a dns_servers list is "ADDR[:PORT],...": IPv4, IPv6 bare or in brackets, a port only
 * after IPv4 or a bracket, 1 to 65535. c-ares 1.18.1's own parser takes a port above 65535 and
 * wraps it. */
static bool servers_valid(const char *list)
{
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char buf[64];
        if (len == 0 || len >= sizeof buf)
            return false;
        memcpy(buf, p, len);
        buf[len] = '\0';
        uint8_t a[16];
        char *port = NULL;
        if (buf[0] == '[') {
            char *close = strchr(buf, ']');
            if (!close || (close[1] && close[1] != ':'))
                return false;
            *close = '\0';
            if (!ag__ipv6_parse(buf + 1, a))
                return false;
            port = close[1] ? close + 2 : NULL;
        } else if (!ag__ipv6_parse(buf, a)) {
            char *colon = strchr(buf, ':');
            if (colon) {
                *colon = '\0';
                port = colon + 1;
            }
            if (!ag__ipv4_parse(buf, a))
                return false;
        }
        if (port) {
            unsigned long v = 0;
            if (!*port || strlen(port) > 5)
                return false;
            for (const char *q = port; *q; q++) {
                if (*q < '0' || *q > '9')
                    return false;
                v = v * 10 + (unsigned)(*q - '0');
            }
            if (v == 0 || v > 65535)
                return false;
        }
        if (!end)
            return true;
        p = end + 1;
    }
}

/* c-ares's socket calls, as c-ares makes them itself, so that a socket it cannot open for want
 * of a file descriptor is known (c-ares only says the server could not be reached), and sends
 * never raise SIGPIPE. */
static ares_socket_t cares_socket(int family, int type, int protocol, void *arg)
{
    ag__resolver *r = arg;
    int fd = ag__socket(family, type, protocol);
    if (fd >= 0)
        return fd;
    if (fd == -EMFILE || fd == -ENFILE) {
        r->no_fd = fd;
        r->no_fd_count++;
    }
    errno = -fd;
    return ARES_SOCKET_BAD;
}

static int cares_close(ares_socket_t fd, void *arg)
{
    (void)arg;
    return close(fd);
}

static int cares_connect(ares_socket_t fd, const struct sockaddr *sa, ares_socklen_t len, void *arg)
{
    (void)arg;
    return connect(fd, sa, len);
}

static ares_ssize_t cares_recvfrom(ares_socket_t fd, void *buf, size_t len, int flags,
                                   struct sockaddr *from, ares_socklen_t *from_len, void *arg)
{
    (void)arg;
    return recvfrom(fd, buf, len, flags, from, from_len);
}

static ares_ssize_t cares_sendv(ares_socket_t fd, const struct iovec *iov, int iovcnt, void *arg)
{
    (void)arg;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = (struct iovec *)iov;
    msg.msg_iovlen = (size_t)iovcnt;
    return sendmsg(fd, &msg, AG__MSG_NOSIGNAL);
}

static const struct ares_socket_functions cares_funcs = {cares_socket, cares_close, cares_connect,
                                                         cares_recvfrom, cares_sendv};

static int channel_open(ag__resolver *r, const ag__resolver_opts *o, int flags)
{
    struct ares_options ao;
    memset(&ao, 0, sizeof ao);
    ao.flags = flags;
    ao.timeout = (int)(o->timeout_ms > 0x7fffffff ? 0x7fffffff : o->timeout_ms);
    ao.tries = (int)(o->tries > 64 ? 64 : o->tries);
    ao.sock_state_cb = sock_state;
    ao.sock_state_cb_data = r;
    /* DNS only: the hosts file is read here (hosts.c), once, not by c-ares for every query. */
    ao.lookups = (char *)"b";
    int st = ares_init_options(&r->ch, &ao,
                               ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
                                   ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS);
    if (st != ARES_SUCCESS)
        return st == ARES_ENOMEM ? -ENOMEM : AG_EDNS_FAIL;
    r->ch_ok = true;
    ares_set_socket_functions(r->ch, &cares_funcs, r);
    if (o->servers) {
        st = ares_set_servers_ports_csv(r->ch, o->servers);
        if (st != ARES_SUCCESS)
            return st == ARES_ENOMEM ? -ENOMEM : -EINVAL;
    }
    return 0;
}

int ag__resolver_new(ag__resolver **out, const ag__resolver_opts *o)
{
    pthread_once(&ares_once, ares_setup);
    if (ares_init_status != ARES_SUCCESS)
        return AG_EDNS_FAIL;
    ag__resolver *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->loop = o->loop;
    r->family = o->family;
    r->cache_size = o->cache_size == AG_NO_DNS_CACHE ? 0 : o->cache_size;
    r->negative_ttl_ns = o->negative_ttl_ms * 1000000;
    r->max_queries = o->max_queries ? o->max_queries : 64;
    ag__queue_init(&r->lru);
    ag__queue_init(&r->queued);
    ag_timer_init(&r->timer, on_timer, r);
    int rc = 0;
    size_t n = 0;
    while (o->resolve && o->resolve[n])
        n++;
    if (n && !(r->ovr = calloc(n, sizeof *r->ovr))) {
        rc = -ENOMEM;
        goto fail;
    }
    for (; r->novr < n; r->novr++) {
        if ((rc = parse_override(o->resolve[r->novr], &r->ovr[r->novr])) < 0)
            goto fail;
    }
    if (o->servers && !servers_valid(o->servers)) {
        rc = -EINVAL;
        goto fail;
    }
    if ((rc = ag__hosts_new(&r->hosts, o->hosts_path ? o->hosts_path : "/etc/hosts")) < 0)
        goto fail;
    /* c-ares 1.18.1 takes a SERVFAIL or REFUSED as a reason to ask the next server, and when
     * none is left reports what it started with, "connection refused". With a single server
     * there is nobody else to ask: let the answer through (ARES_FLAG_NOCHECKRESP), so that the
     * error can say what the server said. */
    if ((rc = channel_open(r, o, 0)) < 0)
        goto fail;
    struct ares_addr_port_node *list = NULL;
    int nservers = 0;
    if (ares_get_servers_ports(r->ch, &list) == ARES_SUCCESS) {
        for (struct ares_addr_port_node *s = list; s; s = s->next)
            nservers++;
        ares_free_data(list);
    }
    if (nservers == 1) {
        ares_destroy(r->ch);
        r->ch_ok = false;
        if ((rc = channel_open(r, o, ARES_FLAG_NOCHECKRESP)) < 0)
            goto fail;
    }
    *out = r;
    return 0;
fail:
    ag__resolver_free(r);
    return rc;
}

void ag__resolver_free(ag__resolver *r)
{
    if (!r)
        return;
    /* Queries still in flight end here (their callbacks free the entries outside the cache);
     * c-ares announces the close of each socket, which unregisters it. */
    r->closing = true;
    if (r->ch_ok)
        ares_destroy(r->ch);
    /* Queries never sent are in the table (freed below), or were only in the queue. */
    while (!ag__queue_empty(&r->queued)) {
        entry *e = ag__queue_data(ag__queue_pop(&r->queued), entry, lru);
        if (!e->cached)
            free(e);
    }
    for (size_t i = 0; i < r->nsocks; i++) {
        ag__io_detach(&r->socks[i]->io);
        free(r->socks[i]);
    }
    free(r->socks);
    for (size_t i = 0; i < r->table_size; i++) {
        for (entry *e = r->table[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(r->table);
    if (r->loop)
        ag_timer_stop(r->loop, &r->timer);
    ag__hosts_free(r->hosts);
    for (size_t i = 0; i < r->novr; i++)
        free(r->ovr[i].host);
    free(r->ovr);
    free(r);
}

void ag__resolver_stats(const ag__resolver *r, ag_dns_stats *out)
{
    *out = r->stats;
    out->entries = r->cached;
}

const char *ag__resolver_version(void)
{
    return ares_version(NULL);
}

/* ---- lookups ---- */

/* addr: n addresses of 16 bytes each (IPv4 in the first 4). */
static void done_with(ag__lookup_fam *a, const void *addr, unsigned n, size_t len)
{
    a->state = AG__LK_DONE;
    a->n = (uint8_t)n;
    for (unsigned i = 0; i < n; i++)
        memcpy(a->addr[i], (const uint8_t *)addr + 16 * i, len);
    if (n == 0) {
        a->error = AG_EDNS;
        a->why = "no address of this family";
    }
}

static bool asks(const ag__resolver *r, int fam)
{
    return r->family == AG_IP_ANY ||
           (fam == AG__FAM4 ? r->family == AG_IP_V4 : r->family == AG_IP_V6);
}

/* Answers that need no query: numeric hosts, localhost, the overrides. */
static bool answer_locally(ag__resolver *r, ag__lookup *lk, const char *host, const char *lower)
{
    uint8_t a[1][16];
    if (ag__ipv4_parse(host, a[0])) {
        done_with(&lk->fam[AG__FAM4], a, 1, 4);
        done_with(&lk->fam[AG__FAM6], a, 0, 16);
        return true;
    }
    if (ag__ipv6_parse(host, a[0])) {
        done_with(&lk->fam[AG__FAM6], a, 1, 16);
        done_with(&lk->fam[AG__FAM4], a, 0, 4);
        return true;
    }
    for (size_t i = 0; i < r->novr; i++) {
        const override *o = &r->ovr[i];
        /* Port 0: a lookup for no port in particular (ag_client_resolve) takes an entry for
         * any port. */
        if ((o->port == 0 || lk->port == 0 || o->port == lk->port) && strcmp(o->host, lower) == 0) {
            done_with(&lk->fam[AG__FAM4], o->addr[AG__FAM4], o->n[AG__FAM4], 4);
            done_with(&lk->fam[AG__FAM6], o->addr[AG__FAM6], o->n[AG__FAM6], 16);
            return true;
        }
    }
    /* The special names below, with or without the root's trailing dot. */
    size_t n = strlen(lower);
    if (n > 1 && lower[n - 1] == '.')
        n--;
    /* RFC 6761: "invalid" never exists, and is never asked about. */
    if ((n == 7 && memcmp(lower, "invalid", 7) == 0) ||
        (n > 8 && memcmp(lower + n - 8, ".invalid", 8) == 0)) {
        for (int fam = 0; fam < 2; fam++) {
            lk->fam[fam].state = AG__LK_DONE;
            lk->fam[fam].error = AG_EDNS;
            lk->fam[fam].why = "no such name (the .invalid domain, RFC 6761)";
        }
        return true;
    }
    /* RFC 6761: localhost names the loopback, never a DNS answer. */
    if ((n == 9 && memcmp(lower, "localhost", 9) == 0) ||
        (n > 10 && memcmp(lower + n - 10, ".localhost", 10) == 0)) {
        static const uint8_t lo4[1][16] = {{127, 0, 0, 1}};
        static const uint8_t lo6[1][16] = {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}};
        done_with(&lk->fam[AG__FAM4], lo4, 1, 4);
        done_with(&lk->fam[AG__FAM6], lo6, 1, 16);
        lk->prefer4 = true;
        return true;
    }
    /* Then the hosts file, then DNS: the usual "files dns" order. */
    ag__hosts_refresh(r->hosts);
    return ag__hosts_find(r->hosts, lower, lk->fam);
}

static int start_family(ag__resolver *r, ag__lookup *lk, const char *name, uint8_t fam)
{
    int64_t now = ag_now_ns();
    uint32_t h = name_hash(name, fam);
    entry *e = cache_find(r, name, fam, h);
    if (e && e->state == AG__LK_DONE && e->expires > now) {
        r->stats.cache_hits++;
        lk->fam[fam] = e->answer;
        ag__queue_remove(&e->lru);
        ag__queue_push(&r->lru, &e->lru); /* most recently used last */
        return 0;
    }
    r->stats.cache_misses++;
    if (e && e->state == AG__LK_PENDING) {
        r->stats.joined++;
        lk->fam[fam].state = AG__LK_PENDING;
        lk->entry[fam] = e;
        ag__queue_push(&e->waiters, &lk->link[fam]);
        r->waiting++;
        return 0;
    }
    if (e) { /* expired */
        cache_unlink(r, e);
        free(e);
    }
    size_t len = strlen(name);
    e = calloc(1, sizeof *e + len + 1);
    if (!e)
        return -ENOMEM;
    memcpy(e->name, name, len + 1);
    e->res = r;
    e->hash = h;
    e->fam = fam;
    e->state = AG__LK_PENDING;
    ag__queue_init(&e->waiters);
    ag__queue_init(&e->lru);
    /* In the table while pending even without a cache, so that concurrent lookups share it;
     * the answer leaves it at once unless it is to be kept. */
    if (r->cached < r->table_size || cache_grow(r) == 0) {
        entry **head = &r->table[h & (r->table_size - 1)];
        e->next = *head;
        *head = e;
        e->cached = true;
        r->cached++;
    }
    lk->fam[fam].state = AG__LK_PENDING;
    lk->entry[fam] = e;
    ag__queue_push(&e->waiters, &lk->link[fam]);
    r->waiting++;
    e->queued = true;
    ag__queue_push(&r->queued, &e->lru);
    drain(r);
    return 0;
}

int ag__lookup_start(ag__resolver *r, ag__lookup *lk, const char *host, uint16_t port)
{
    memset(lk, 0, sizeof *lk);
    lk->res = r;
    lk->port = port;
    lk->first = -1;
    ag__queue_init(&lk->link[0]);
    ag__queue_init(&lk->link[1]);
    char stackname[256], *lower = stackname;
    size_t len = strlen(host);
    if (len >= sizeof stackname && !(lower = malloc(len + 1)))
        return -ENOMEM;
    for (size_t i = 0; i <= len; i++)
        lower[i] = host[i] >= 'A' && host[i] <= 'Z' ? (char)(host[i] - 'A' + 'a') : host[i];
    int rc = 0;
    /* A host name is printable ASCII without spaces or backslashes (a URL's host was checked
     * already; the public ag_client_resolve takes any string): anything else is no name, and is
     * not sent. */
    bool printable = len > 0 && len <= 1024;
    for (size_t i = 0; i < len && printable; i++)
        printable = (unsigned char)host[i] > ' ' && (unsigned char)host[i] < 0x7f &&
                    host[i] != '\\'; /* c-ares would read it as an escape ("a\\.b", "\\000") */
    if (!printable) {
        for (int fam = 0; fam < 2; fam++) {
            lk->fam[fam].state = AG__LK_DONE;
            lk->fam[fam].error = AG_EDNS;
            lk->fam[fam].why = "malformed name";
        }
    } else if (!answer_locally(r, lk, host, lower)) {
        for (uint8_t fam = 0; fam < 2 && rc == 0; fam++)
            if (asks(r, fam))
                rc = start_family(r, lk, lower, fam);
        if (r->loop)
            arm_timer(r);
    }
    if (lower != stackname)
        free(lower);
    /* A family the client does not use counts as asked and empty. */
    for (int fam = 0; fam < 2; fam++) {
        if (!asks(r, fam)) {
            memset(&lk->fam[fam], 0, sizeof lk->fam[fam]);
        } else if (lk->fam[fam].state == AG__LK_DONE && lk->first < 0) {
            lk->first = fam;
        }
    }
    if (rc < 0)
        ag__lookup_end(lk);
    return rc;
}

bool ag__lookup_done(const ag__lookup *lk)
{
    return lk->fam[0].state != AG__LK_PENDING && lk->fam[1].state != AG__LK_PENDING;
}

int ag__lookup_prepare(ag__lookup *lk, ag__wait_item *items, int max, int64_t *deadline_ns)
{
    ag__resolver *r = lk->res;
    ag_coro *co = ag__current;
    if (co && co->loop == r->loop) {
        lk->co = co;
        return 0;
    }
    if (r->lost_err)
        *deadline_ns = ag_now_ns(); /* ag__lookup_finish ends the lost queries at once */
    int k = 0;
    for (size_t i = 0; i < r->nsocks && k < max; i++) {
        sock *s = r->socks[i];
        s->io.ready = 0; /* only what poll() reports now counts */
        items[k++] = (ag__wait_item){&s->io, s->want, 0};
    }
    struct timeval tv;
    if (ares_timeout(r->ch, NULL, &tv)) {
        int64_t at = ag_now_ns() + (int64_t)tv.tv_sec * 1000000000 + (int64_t)tv.tv_usec * 1000;
        if (*deadline_ns < 0 || at < *deadline_ns)
            *deadline_ns = at;
    }
    return k;
}

void ag__lookup_finish(ag__lookup *lk, ag__wait_item *items, int k)
{
    ag__resolver *r = lk->res;
    lk->co = NULL;
    if (k == 0 && r->loop && ag__current && ag__current->loop == r->loop)
        return; /* the loop drives c-ares */
    if (r->lost_err)
        cancel_lost(r);
    /* Processing one socket may close another: take the fds first. */
    int fds[AG__WAIT_ANY_MAX];
    unsigned ev[AG__WAIT_ANY_MAX];
    for (int i = 0; i < k; i++) {
        fds[i] = items[i].io->fd;
        ev[i] = items[i].revents;
    }
    for (int i = 0; i < k; i++) {
        if (!ev[i] || !sock_find(r, fds[i], NULL))
            continue;
        ares_process_fd(r->ch, ev[i] & AG_READ ? fds[i] : ARES_SOCKET_BAD,
                        ev[i] & AG_WRITE ? fds[i] : ARES_SOCKET_BAD);
    }
    /* The timeouts, and what a socket left unread. */
    ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    arm_timer(r);
}

int ag__lookup_wait(ag__lookup *lk, int64_t deadline_ns)
{
    uint8_t before[2] = {lk->fam[0].state, lk->fam[1].state};
    for (;;) {
        if (ag__lookup_done(lk))
            return 0;
        ag__wait_item items[AG__WAIT_ANY_MAX];
        int64_t until = deadline_ns;
        int k = ag__lookup_prepare(lk, items, AG__WAIT_ANY_MAX, &until);
        int rc;
        if (k > 0 || ag__current)
            rc = ag__wait_any(items, k, until);
        else
            rc = ag_sleep_until(until < 0 ? ag_now_ns() + 1000000000 : until);
        ag__lookup_finish(lk, items, k);
        if (lk->fam[0].state != before[0] || lk->fam[1].state != before[1])
            return 0;
        if (rc == -ECANCELED)
            return rc;
        if (deadline_ns >= 0 && ag_now_ns() >= deadline_ns)
            return -ETIMEDOUT;
        if (rc < 0 && rc != -ETIMEDOUT)
            return rc;
    }
}

void ag__lookup_end(ag__lookup *lk)
{
    ag__resolver *r = lk->res;
    lk->co = NULL;
    for (int fam = 0; fam < 2; fam++) {
        if (!lk->entry[fam])
            continue;
        entry *e = lk->entry[fam];
        ag__queue_remove(&lk->link[fam]);
        lk->entry[fam] = NULL;
        r->waiting--;
        if (!ag__queue_empty(&e->waiters))
            continue;
        if (e->queued) {
            /* Not sent yet, and nobody waits for it: dropped. */
            ag__queue_remove(&e->lru);
            cache_unlink(r, e);
            free(e);
        } else if (!e->abandoned) {
            /* c-ares cannot cancel one query: it goes on (its answer still fills the cache),
             * but its slot goes to a lookup someone waits for. */
            e->abandoned = true;
            r->pending--;
            drain(r);
        }
    }
    /* Nobody waits for any answer: the queries in flight would only keep sockets open and the
     * loop's timer armed (a loop would not end until they time out). Their entries leave the
     * cache in the callbacks, which ares_cancel runs now. */
    if (r->waiting == 0 && r->inflight > 0) {
        ares_cancel(r->ch);
        arm_timer(r);
    }
}

void ag__lookup_addrs(const ag__lookup *lk, ag__addrs *out)
{
    out->count = 0;
    const ag__lookup_fam *f4 = &lk->fam[AG__FAM4], *f6 = &lk->fam[AG__FAM6];
    unsigned n4 = f4->state == AG__LK_DONE ? f4->n : 0, n6 = f6->state == AG__LK_DONE ? f6->n : 0;
    bool v4_first = lk->prefer4 || n6 == 0;
    unsigned i4 = 0, i6 = 0;
    while (i4 < n4 || i6 < n6) {
        bool take4 = i6 >= n6 || (i4 < n4 && (v4_first ? i4 <= i6 : i4 < i6));
        if (take4) {
            ag__sockaddr_set(&out->addr[out->count++], AF_INET, f4->addr[i4++], lk->port);
        } else {
            ag__sockaddr_set(&out->addr[out->count++], AF_INET6, f6->addr[i6++], lk->port);
        }
    }
}

int ag__lookup_error(const ag__lookup *lk, const char **why)
{
    static const int rank[] = {-ENOMEM, -EMFILE, -ENFILE, AG_EDNS_FAIL, AG_EDNS_TIMEOUT, AG_EDNS};
    const ag__lookup_fam *best = NULL;
    /* A name that does not exist says it all; else the most serious failure. */
    for (int fam = 0; fam < 2; fam++) {
        const ag__lookup_fam *a = &lk->fam[fam];
        if (a->state == AG__LK_DONE && a->error == AG_EDNS && a->why && strstr(a->why, "NXDOMAIN"))
            best = a;
    }
    for (size_t k = 0; !best && k < sizeof rank / sizeof *rank; k++)
        for (int fam = 0; fam < 2 && !best; fam++)
            if (lk->fam[fam].state == AG__LK_DONE && lk->fam[fam].error == rank[k])
                best = &lk->fam[fam];
    if (!best) {
        *why = "no address";
        return AG_EDNS;
    }
    *why = best->why ? best->why : "";
    return best->error;
}
