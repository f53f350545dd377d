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

/* When a wait gives up: `total` (an absolute deadline, -1 none, AG__NO_WAIT: never wait), or
 * `idle_ns` after the wait begins (0: never), whichever comes first. Waits begin right after the
 * last progress, so the idle part limits the time between two bytes, not the whole transfer. */
typedef struct ag__deadline {
    int64_t total;
    int64_t idle_ns;
} ag__deadline;

#define AG__NO_WAIT (-2)

static inline int64_t ag__deadline_next(const ag__deadline *d)
{
    if (d->idle_ns <= 0 || d->total == AG__NO_WAIT)
        return d->total;
    int64_t idle = ag_now_ns() + d->idle_ns;
    return d->total >= 0 && d->total < idle ? d->total : idle;
}

/* A layer moves a connection's bytes: TCP at the bottom, filters such as TLS stacked over the
 * layer below them. Each call waits for what it needs itself (a filter calls the layer below,
 * which parks the coroutine or blocks in poll()), so a filter runs as if it were blocking and
 * never needs to know what the bottom waits on: a readiness socket today, a completion ring or
 * a proxy tunnel later. */
typedef struct ag__layer ag__layer;

/* A write that gave way to the peer's answer (watch_read): a layer's private return value. */
#define AG__LAYER_READABLE (-1000001)

typedef struct ag__layer_ops {
    /* Read up to len bytes: the count, 0 at the end of the stream, or a negative code. Waits
     * until the deadline (-1: none; AG__NO_WAIT: -EAGAIN instead of waiting). */
    ssize_t (*read)(ag__layer *l, void *buf, size_t len, int64_t deadline);
    /* Write a prefix of iov, at least one byte: the count, or a negative code. Waits as d says
     * (d->total AG__NO_WAIT: -EAGAIN instead); with watch_read, a wait that sees the peer's
     * bytes arrive first returns AG__LAYER_READABLE, and the caller calls again later with the
     * same bytes (a TLS record half sent must be finished first). */
    ssize_t (*writev)(ag__layer *l, const struct iovec *iov, int iovcnt, const ag__deadline *d,
                      bool watch_read);
    /* Bytes that a read would return without asking the layer below (decrypted and buffered). */
    bool (*pending)(ag__layer *l);
    /* An idle connection is fit for another request: no end of stream, error or unasked bytes
     * arrived while it was idle. */
    bool (*is_alive)(ag__layer *l);
    /* Release the layer and everything below it. */
    void (*close)(ag__layer *l);
} ag__layer_ops;

struct ag__layer {
    const ag__layer_ops *ops;
    ag__layer *below; /* NULL at the bottom */
    ag__conn *conn;
};

/* What the connection negotiated over TLS, shared by the connection and the responses it served
 * (reference counted: a response may outlive its connection, and be freed on another thread).
 * The strings live in the same allocation. */
typedef struct ag__tls_info {
    int refs;
    int resumed, verified;
    int64_t not_before, not_after;
    const char *version, *cipher, *alpn, *subject, *issuer;
} ag__tls_info;

void ag__tls_info_ref(ag__tls_info *i);
void ag__tls_info_unref(ag__tls_info *i);

struct ag__conn {
    ag__io io;         /* the socket */
    ag__layer tcp;     /* the bottom layer, over io */
    ag__layer *top;    /* where reads and writes go: &tcp, or a filter over it */
    unsigned want;     /* what the socket must be ready for, after a read's EAGAIN */
    bool eof_unclean;  /* the stream ended without the TLS close_notify */
    ag__tls_info *tls; /* set while a TLS layer is on */
    const char *why;   /* static detail of the last AG_ETLS a layer returned */
    ag__host *host;
    uint64_t id;
    unsigned served;                 /* responses completed on this connection */
    int64_t idle_since;              /* when it went back to the pool */
    ag__conn *host_prev, *host_next; /* idle list of its host, most recent first */
    ag__conn *lru_prev, *lru_next;   /* idle list of the pool, oldest first */
    char peer[64];                   /* "1.2.3.4:80", "[::1]:80" or "unix:/path" */
    char local[64];                  /* the local end, "127.0.0.1:54321"; "" over a Unix socket */
    /* The trace hook of the client, and the request the connection serves now. */
    ag_trace_cb trace;
    void *trace_arg;
    uint64_t req_id;
    void *user; /* ag_request.user of the request, for the trace hook */
};

/* Report an event of c to its trace hook, if it has one. */
void ag__conn_trace(const ag__conn *c, int kind, const char *data, size_t len);

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
/* Connect c to the Unix domain stream socket at path (abstract: the name in Linux's abstract
 * namespace, without its leading NUL) on loop (NULL: blocking), before the deadline. c->peer
 * says "unix:/path" or "unix:@name", cut to fit. A listener whose queue is full is tried again
 * after short pauses until the deadline (-ETIMEDOUT then). 0, or a negative errno (-ENOENT: no
 * such socket, -ECONNREFUSED: nobody listens), -ETIMEDOUT, -ECANCELED. */
int ag__conn_connect_unix(ag__conn *c, ag_loop *loop, const char *path, bool abstract,
                          int64_t deadline_ns);
/* c->io holds a connected, registered socket: make TCP c's only layer (ag__conn_connect does
 * this itself; for tests that make sockets their own way). */
void ag__conn_attach(ag__conn *c);
/* Close every layer and the socket; the struct stays the caller's. */
void ag__conn_close(ag__conn *c);
/* Read at least one byte: bytes read, 0 at end of stream, -ETIMEDOUT at the deadline, or a
 * negative errno or code. With the deadline AG__NO_WAIT it never waits: -EAGAIN instead. */
ssize_t ag__conn_read(ag__conn *c, void *buf, size_t len, int64_t deadline_ns);
/* A read would find bytes (or the end) without waiting, as far as the connection knows: bytes
 * buffered in a filter, or a socket the reactor reported ready and nobody drained since. */
bool ag__conn_ready(ag__conn *c);
/* Wait until a read may make progress: for what the last read that said -EAGAIN was waiting
 * for (a TLS read may need the socket writable). The ready directions, -ETIMEDOUT, -ECANCELED. */
int ag__conn_wait(ag__conn *c, int64_t deadline_ns);
/* Write everything: 0, -ETIMEDOUT, or a negative errno or code. iov is consumed (modified).
 * With watch_read, a write that has to wait also waits for readability, and returns
 * AG__READABLE when the connection became readable first (the server answers while the
 * request is still being sent); iov then holds what is left. */
#define AG__READABLE 1
int ag__conn_writev(ag__conn *c, struct iovec *iov, int iovcnt, const ag__deadline *d,
                    bool watch_read);
/* An idle connection is dead if the reactor saw it readable and what came was not just
 * protocol housekeeping (a TLS session ticket): the server closed it or sent bytes nobody
 * asked for. Costs system calls only in that case. */
bool ag__conn_idle_alive(ag__conn *c);

/* What a URL's scheme asks of a new connection above TCP: a filter to stack over its layers
 * (TLS for https, tls/tls.h's ag__tls_start), or nothing. net/ knows filters only by this: any
 * of them can stack over any layer (a proxy tunnel, another TLS connection). */
typedef int (*ag__filter_start)(ag__conn *c, void *ctx, const char *host, uint16_t port,
                                int64_t deadline_ns, const char **why);
typedef struct ag__security {
    ag__filter_start start; /* NULL: nothing (plain http) */
    void *ctx;              /* the filter's settings (TLS: an ag__tls_ctx) */
    const char *host;       /* the name (or IP literal) the peer must prove it is */
    uint16_t port;
} ag__security;

/* Make a connected c carry what sec asks for: the filter's layer and its handshake, within the
 * deadline. 0, or a code with *why set to a static detail or NULL. */
int ag__conn_secure(ag__conn *c, const ag__security *sec, int64_t deadline_ns, const char **why);

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
/* Counts (ag_client_pool_stats, tests): connection slots in use, idle connections, connects in
 * progress, waiters queued for a slot and for a connect, requests waiting for a file descriptor
 * now, and how many had to since the pool was made; idle connections closed to free one. */
typedef struct ag__pool_counts {
    unsigned total, idle, connecting, waiting, connect_waiting, fd_waiting;
    uint64_t fd_waits, fd_idle_closed;
} ag__pool_counts;
void ag__pool_counts_get(const ag__pool *pool, ag__pool_counts *out);
/* A new connection for a slot of host found no file descriptor (failed: socket() said EMFILE or
 * ENFILE), or is about to try while others wait for one (!failed: it queues behind them, FIFO).
 * A failure closes the least recently used idle connection, if there is one, and returns at
 * once; else the request waits until one of the client's connections closes (or a connect
 * fails), or until a connection of host is released, which is then handed over (1, *conn set:
 * the slot held was given back); or until a pause that doubles from 1 ms to 100 ms (in
 * *backoff_ns, 0 before a request's first wait) passes, as the descriptors may be held by
 * others. 0: try again; -ETIMEDOUT at the deadline; -ECANCELED. */
int ag__pool_fd_wait(ag__pool *pool, ag__host *host, bool failed, int64_t deadline_ns,
                     int64_t *backoff_ns, ag__conn **conn);
/* Limit connects in progress: take before connecting, give back after. */
int ag__pool_connect_begin(ag__pool *pool, int64_t deadline_ns);
void ag__pool_connect_end(ag__pool *pool);

#endif
