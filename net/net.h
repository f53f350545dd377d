/* net.h: connections (non-blocking connect, I/O with deadlines) and the keep-alive pool. */
#ifndef AG_NET_NET_H
#define AG_NET_NET_H

#include "core/internal.h"
#include "dns/resolve.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct ag__conn ag__conn;
typedef struct ag__host ag__host;
typedef struct ag__pool ag__pool;

/* How a connection moves bytes: plain TCP now; TLS plugs in here with the same calls. */
typedef struct ag__transport {
    /* Like read(2)/write(2): bytes moved, 0 at end of stream, or a negative errno (-EAGAIN when
     * the caller must wait for the direction in *want). */
    ssize_t (*read)(ag__conn *c, void *buf, size_t len, unsigned *want);
    ssize_t (*writev)(ag__conn *c, const struct iovec *iov, int iovcnt, unsigned *want);
    void (*close)(ag__conn *c);
} ag__transport;

struct ag__conn {
    ag__io io;
    const ag__transport *tp;
    ag__host *host;
    uint64_t id;
    unsigned served;                 /* responses completed on this connection */
    int64_t idle_since;              /* when it went back to the pool */
    ag__conn *host_prev, *host_next; /* idle list of its host, most recent first */
    ag__conn *lru_prev, *lru_next;   /* idle list of the pool, oldest first */
    char peer[64];                   /* "1.2.3.4:80" or "[::1]:80" */
    /* The trace hook of the client, and the request the connection serves now. */
    ag_trace_cb trace;
    void *trace_arg;
    uint64_t req_id;
};

/* Report an event of c to its trace hook, if it has one. */
void ag__conn_trace(const ag__conn *c, int kind, const char *data, size_t len);

/* When a wait gives up: `total` (an absolute deadline, -1 none), or `idle_ns` after the wait
 * begins (0: never), whichever comes first. Waits begin right after the last progress, so the
 * idle part limits the time between two bytes, not the whole transfer. */
typedef struct ag__deadline {
    int64_t total;
    int64_t idle_ns;
} ag__deadline;

static inline int64_t ag__deadline_next(const ag__deadline *d)
{
    if (d->idle_ns <= 0)
        return d->total;
    int64_t idle = ag_now_ns() + d->idle_ns;
    return d->total >= 0 && d->total < idle ? d->total : idle;
}

/* ---- conn.c ---- */

/* How the connect phase runs (the client's options, in nanoseconds). */
typedef struct ag__connect_opts {
    int64_t attempt_delay_ns;    /* Happy Eyeballs: start the next attempt after this */
    int64_t resolution_delay_ns; /* an IPv4 answer waits this long for the IPv6 one */
} ag__connect_opts;

/* Connect to the addresses of a started lookup (its families done or pending) on loop (NULL:
 * blocking), before the deadline, by Happy Eyeballs (RFC 8305): the first attempt starts as soon
 * as an answer can be used (an IPv4 answer waits up to resolution_delay_ns for IPv6), the
 * families interleave, each next attempt starts attempt_delay_ns after the last one or at once
 * when the last one failed, answers that arrive meanwhile join the list, and the first attempt to
 * connect wins while the others are closed. A single address is one plain attempt. On success c
 * is a connected, registered, TCP_NODELAY connection and c->peer names its address; *dns_at (if
 * not NULL) is when the first answer was used. On failure c->peer names the last address tried
 * (or is empty). Errors: the lookup's (AG_EDNS, AG_EDNS_FAIL, AG_EDNS_TIMEOUT, with *why set)
 * when it found no address, the negative errno of the last attempt, -ETIMEDOUT when the deadline
 * passed, or -ECANCELED. With c->trace set, each attempt's start ("connecting to ADDR") and
 * failure ("connect failed: ADDR ERROR") are reported as AG_TRACE_INFO. */
int ag__conn_connect(ag__conn *c, ag_loop *loop, ag__lookup *lk, const ag__connect_opts *o,
                     int64_t deadline_ns, int64_t *dns_at, const char **why);
/* Close the socket (and its transport state); the struct stays the caller's. */
void ag__conn_close(ag__conn *c);
/* Read at least one byte: bytes read, 0 at end of stream, -ETIMEDOUT at the deadline, or a
 * negative errno. With the deadline AG__NO_WAIT it never waits: -EAGAIN instead. Clears the cached
 * readiness after a short read, so the next call waits without a system call that would only say
 * EAGAIN. */
#define AG__NO_WAIT (-2)
ssize_t ag__conn_read(ag__conn *c, void *buf, size_t len, int64_t deadline_ns);
/* Write everything: 0, -ETIMEDOUT, or a negative errno. iov is consumed (modified). With
 * watch_read, a write that has to wait also waits for readability, and returns AG__READABLE when
 * the connection became readable first (the server answers while the request is still being
 * sent); iov then holds what is left. */
#define AG__READABLE 1
int ag__conn_writev(ag__conn *c, struct iovec *iov, int iovcnt, const ag__deadline *d,
                    bool watch_read);
/* An idle connection is dead if the reactor saw it readable: the server closed it or sent bytes
 * nobody asked for. Costs a system call only in that case (a peek that tells a stale readiness
 * report from a real one). */
bool ag__conn_idle_alive(ag__conn *c);

/* ---- pool.c ---- */

typedef struct ag__pool_opts {
    unsigned max_total, max_per_host, max_connecting;
    int64_t idle_ns;
    bool liveness_check;
} ag__pool_opts;

int ag__pool_new(ag__pool **out, ag_loop *loop, const ag__pool_opts *opts);
/* Close idle connections and free; no connection may be out. */
void ag__pool_free(ag__pool *pool);

/* A claim on a host: either a live idle connection (*conn set, reused) or a free slot to open a
 * new one (*conn NULL). Waits FIFO behind the limits until deadline: -ETIMEDOUT, -ECANCELED.
 * fresh: do not take an idle connection (a retry after a stale one). */
int ag__pool_acquire(ag__pool *pool, const char *key, bool fresh, int64_t deadline_ns,
                     ag__host **host, ag__conn **conn);
/* Give a connection back: kept idle for reuse when reusable, else closed and freed. */
void ag__pool_release(ag__pool *pool, ag__conn *conn, bool reusable);
/* Give back a slot whose connect failed (no connection was made). */
void ag__pool_release_slot(ag__pool *pool, ag__host *host);
/* Allocate a connection for a slot of host. */
ag__conn *ag__pool_conn_new(ag__pool *pool, ag__host *host);
/* Counts for tests: connection slots in use, idle connections, connects in progress, waiters
 * queued for a slot and for a connect. */
typedef struct ag__pool_counts {
    unsigned total, idle, connecting, waiting, connect_waiting;
} ag__pool_counts;
void ag__pool_counts_get(const ag__pool *pool, ag__pool_counts *out);
/* Limit connects in progress: take before connecting, give back after. */
int ag__pool_connect_begin(ag__pool *pool, int64_t deadline_ns);
void ag__pool_connect_end(ag__pool *pool);

#endif
