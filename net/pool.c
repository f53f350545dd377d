/* pool.c: the keep-alive pool: idle connections per scheme, host and port, limits in total and
 * per host with FIFO waiters, a cap on connects in progress, a FIFO queue of requests waiting for
 * a file descriptor, and lazy idle expiry (no timer, so an idle pool never keeps the loop
 * running). */
#include "net/net.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A coroutine parked for a slot or a connect, on its own stack. Its link is removed in O(1)
 * when its wait ends, so many waiters timing out together cost no more than one each. */
typedef struct waiter {
    ag_coro *co;
    ag__queue link;
    uint64_t seq;   /* arrival order across all hosts */
    bool fresh;     /* wants a new connection, not an idle one */
    ag__conn *conn; /* handed an idle connection */
    bool slot;      /* handed a slot for a new connection */
    ag__host *host; /* a descriptor waiter: the host of its slot */
    bool go;        /* a descriptor waiter: a descriptor was freed, try again */
} waiter;

struct ag__host {
    char *key;
    ag__host *chain;
    ag__conn *idle;    /* most recently used first */
    unsigned nconns;   /* slots in use: idle, busy and connecting */
    ag__queue waiters; /* of waiter, oldest first */
    ag__queue queued;  /* link in the pool's queue of hosts that have waiters */
};

struct ag__pool {
    ag_loop *loop;
    ag__pool_opts o;
    ag__host **buckets;
    size_t nbuckets, nhosts;
    unsigned total;
    ag__conn *lru_head, *lru_tail; /* every idle connection, oldest first */
    ag__queue queued_hosts;        /* of ag__host that have waiters, in the order they got one */
    unsigned connecting;
    ag__queue connect_waiters; /* of waiter */
    ag__queue fd_waiters;      /* of waiter: slots whose connect found no file descriptor */
    uint64_t fd_waits, fd_idle_closed;
    uint64_t next_id;
    uint64_t next_seq;
};

static waiter *first_waiter(const ag__queue *q)
{
    ag__queue *node = ag__queue_head(q);
    return node ? ag__queue_data(node, waiter, link) : NULL;
}

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

int ag__pool_new(ag__pool **out, ag_loop *loop, const ag__pool_opts *opts)
{
    ag__pool *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->nbuckets = 64;
    p->buckets = calloc(p->nbuckets, sizeof *p->buckets);
    if (!p->buckets) {
        free(p);
        return -ENOMEM;
    }
    p->loop = loop;
    p->o = *opts;
    ag__queue_init(&p->queued_hosts);
    ag__queue_init(&p->connect_waiters);
    ag__queue_init(&p->fd_waiters);
    *out = p;
    return 0;
}

static int grow(ag__pool *p)
{
    size_t n = p->nbuckets * 2;
    ag__host **b = calloc(n, sizeof *b);
    if (!b)
        return -ENOMEM;
    for (size_t i = 0; i < p->nbuckets; i++) {
        for (ag__host *h = p->buckets[i], *next; h; h = next) {
            next = h->chain;
            size_t j = hash(h->key) & (n - 1);
            h->chain = b[j];
            b[j] = h;
        }
    }
    free(p->buckets);
    p->buckets = b;
    p->nbuckets = n;
    return 0;
}

static ag__host *host_get(ag__pool *p, const char *key)
{
    size_t i = hash(key) & (p->nbuckets - 1);
    for (ag__host *h = p->buckets[i]; h; h = h->chain)
        if (strcmp(h->key, key) == 0)
            return h;
    if (p->nhosts >= 2 * p->nbuckets && grow(p) == 0)
        i = hash(key) & (p->nbuckets - 1);
    ag__host *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->key = strdup(key);
    if (!h->key) {
        free(h);
        return NULL;
    }
    ag__queue_init(&h->waiters);
    ag__queue_init(&h->queued);
    h->chain = p->buckets[i];
    p->buckets[i] = h;
    p->nhosts++;
    return h;
}

/* A host with nothing left is forgotten, so a crawl over many hosts does not grow the table. */
static void host_maybe_free(ag__pool *p, ag__host *h)
{
    if (h->nconns || h->idle || !ag__queue_empty(&h->waiters) || ag__queue_linked(&h->queued))
        return;
    ag__host **pp = &p->buckets[hash(h->key) & (p->nbuckets - 1)];
    while (*pp && *pp != h)
        pp = &(*pp)->chain;
    if (*pp)
        *pp = h->chain;
    p->nhosts--;
    free(h->key);
    free(h);
}

static void idle_unlink(ag__pool *p, ag__conn *c)
{
    ag__host *h = c->host;
    if (c->host_prev)
        c->host_prev->host_next = c->host_next;
    else
        h->idle = c->host_next;
    if (c->host_next)
        c->host_next->host_prev = c->host_prev;
    if (c->lru_prev)
        c->lru_prev->lru_next = c->lru_next;
    else
        p->lru_head = c->lru_next;
    if (c->lru_next)
        c->lru_next->lru_prev = c->lru_prev;
    else
        p->lru_tail = c->lru_prev;
    c->host_prev = c->host_next = c->lru_prev = c->lru_next = NULL;
}

static void idle_push(ag__pool *p, ag__conn *c)
{
    ag__host *h = c->host;
    c->host_prev = NULL;
    c->host_next = h->idle;
    if (h->idle)
        h->idle->host_prev = c;
    h->idle = c;
    c->lru_next = NULL;
    c->lru_prev = p->lru_tail;
    if (p->lru_tail)
        p->lru_tail->lru_next = c;
    else
        p->lru_head = c;
    p->lru_tail = c;
}

static void grant_slots(ag__pool *p);

/* A file descriptor of the client was freed: the oldest request waiting for one tries again. */
static void fd_freed(ag__pool *p)
{
    waiter *w = first_waiter(&p->fd_waiters);
    if (!w)
        return;
    ag__queue_remove(&w->link);
    w->go = true;
    ag__coro_wake(w->co, 0);
}

/* Close a connection that is out of every list, and free its slot. The host is forgotten if
 * nothing is left on it, unless it is `keep` (a host the caller still holds). */
static void conn_destroy(ag__pool *p, ag__conn *c, bool grant, const ag__host *keep)
{
    ag__host *h = c->host;
    ag__conn_close(c);
    free(c);
    h->nconns--;
    p->total--;
    fd_freed(p);
    if (grant)
        grant_slots(p);
    if (h != keep)
        host_maybe_free(p, h);
}

static void expire_idle(ag__pool *p, int64_t now)
{
    while (p->lru_head && now - p->lru_head->idle_since >= p->o.idle_ns) {
        ag__conn *c = p->lru_head;
        idle_unlink(p, c);
        conn_destroy(p, c, true, NULL);
    }
}

/* Take w out of the queue of host h; h leaves the pool's queue of hosts with its last waiter. */
static void waiter_remove(ag__host *h, waiter *w)
{
    ag__queue_remove(&w->link);
    if (ag__queue_empty(&h->waiters))
        ag__queue_remove(&h->queued);
}

/* A slot on h for a new connection, within both limits. A fresh claim (a retry after a stale
 * connection) does not want h's idle connections: on a host full of them, the oldest makes room. */
static bool take_slot(ag__pool *p, ag__host *h, bool fresh)
{
    if (fresh && h->nconns >= p->o.max_per_host && h->idle) {
        ag__conn *oldest = h->idle;
        while (oldest->host_next)
            oldest = oldest->host_next;
        idle_unlink(p, oldest);
        conn_destroy(p, oldest, false, h);
    }
    if (h->nconns >= p->o.max_per_host)
        return false;
    if (p->total >= p->o.max_total) {
        /* The total is full: the oldest idle connection, of some other host, makes room. */
        if (!p->lru_head)
            return false;
        ag__conn *victim = p->lru_head;
        idle_unlink(p, victim);
        conn_destroy(p, victim, false, h);
    }
    h->nconns++;
    p->total++;
    return true;
}

/* Whether the first waiter of h could be served now: by one of h's idle connections (handed
 * over, or closed to make room for a fresh one), or by a new connection within the per-host limit
 * and within the total (or by closing someone's idle connection to make room in it). */
static bool servable(const ag__pool *p, const ag__host *h)
{
    if (ag__queue_empty(&h->waiters))
        return false;
    if (h->idle)
        return true;
    return h->nconns < p->o.max_per_host && (p->total < p->o.max_total || p->lru_head);
}

/* Serve waiters in arrival order across hosts, as long as the oldest servable one can be
 * served: an idle connection of its host if there is one and it may have it, else a slot for a
 * new one. */
static void grant_slots(ag__pool *p)
{
    for (;;) {
        ag__host *best = NULL;
        uint64_t best_seq = 0;
        ag__queue *node;
        ag__queue_foreach (node, &p->queued_hosts) {
            ag__host *h = ag__queue_data(node, ag__host, queued);
            if (!servable(p, h))
                continue;
            uint64_t seq = first_waiter(&h->waiters)->seq;
            if (!best || seq < best_seq) {
                best = h;
                best_seq = seq;
            }
        }
        if (!best)
            return;
        waiter *w = first_waiter(&best->waiters);
        waiter_remove(best, w);
        if (best->idle && !w->fresh) {
            ag__conn *c = best->idle;
            idle_unlink(p, c);
            w->conn = c;
        } else {
            w->slot = take_slot(p, best, w->fresh); /* servable: it succeeds */
        }
        ag__coro_wake(w->co, 0);
    }
}

int ag__pool_acquire(ag__pool *p, const char *key, bool fresh, int64_t deadline_ns, ag__host **host,
                     ag__conn **conn)
{
    if (p->lru_head)
        expire_idle(p, ag_now_ns());
    ag__host *h = host_get(p, key);
    if (!h)
        return -ENOMEM;
    *host = h;
    *conn = NULL;
    if (!fresh && h->idle) {
        ag__conn *c = h->idle;
        idle_unlink(p, c);
        if (!p->o.liveness_check || ag__conn_idle_alive(c)) {
            *conn = c;
            return 0;
        }
        /* Dead (closed by the server, or sent bytes nobody asked for): its slot is ours for a
         * new connection. */
        ag__conn_close(c);
        free(c);
        return 0;
    }
    /* Whoever queued before us goes first; then what is left may be ours. */
    grant_slots(p);
    if (ag__queue_empty(&h->waiters) && take_slot(p, h, fresh))
        return 0;
    if (!ag__current || ag__current->loop != p->loop) {
        host_maybe_free(p, h);
        return -EAGAIN; /* blocking code has nobody to hand a slot back */
    }
    waiter w = {.co = ag__current, .seq = ++p->next_seq, .fresh = fresh};
    ag__queue_push(&h->waiters, &w.link);
    if (!ag__queue_linked(&h->queued))
        ag__queue_push(&p->queued_hosts, &h->queued);
    int rc = ag__coro_park_until(deadline_ns);
    if (w.conn) {
        *conn = w.conn;
        return 0;
    }
    if (w.slot)
        return 0;
    waiter_remove(h, &w);
    host_maybe_free(p, h);
    return rc < 0 ? rc : -EAGAIN;
}

ag__conn *ag__pool_conn_new(ag__pool *p, ag__host *host)
{
    ag__conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->io.fd = -1;
    c->host = host;
    c->id = ++p->next_id;
    return c;
}

void ag__pool_release(ag__pool *p, ag__conn *c, bool reusable)
{
    if (!reusable || c->io.fd < 0) {
        conn_destroy(p, c, true, NULL);
        return;
    }
    /* Requests that found no file descriptor have waited longest of all (they were granted their
     * slot before anyone still queued for one): the oldest takes this connection if it is for
     * its host, giving back the slot it holds; else the connection closes to free its
     * descriptor for it. */
    waiter *fw = first_waiter(&p->fd_waiters);
    if (fw) {
        if (fw->host != c->host) {
            conn_destroy(p, c, true, NULL);
            return;
        }
        ag__queue_remove(&fw->link);
        fw->conn = c;
        c->host->nconns--;
        p->total--;
        ag__coro_wake(fw->co, 0);
        grant_slots(p);
        return;
    }
    /* The liveness check trusts the reactor to have seen the server close an idle connection.
     * An idle connection has no waiter to arm read interest, and backends that report only armed
     * directions (poll, libkqueue) would never see it: arm it now, for the whole idle time. A
     * failure only blinds the check, which the retry covers, so it is not an error. */
    if (c->io.loop)
        (void)ag__poller_want(c->io.loop->poller, c->io.fd, AG__POLL_IN);
    c->idle_since = ag_now_ns();
    idle_push(p, c);
    expire_idle(p, c->idle_since);
    /* The oldest waiter gets it: one of this host's, or one of another host held back by the
     * total limit, for whom this idle connection is room. */
    if (!ag__queue_empty(&p->queued_hosts))
        grant_slots(p);
}

void ag__pool_release_slot(ag__pool *p, ag__host *h)
{
    h->nconns--;
    p->total--;
    /* The connect that failed has closed its sockets. */
    fd_freed(p);
    grant_slots(p);
    host_maybe_free(p, h);
}

int ag__pool_fd_wait(ag__pool *p, ag__host *h, bool failed, int64_t deadline_ns,
                     int64_t *backoff_ns, ag__conn **conn)
{
    *conn = NULL;
    if (failed && p->lru_head) {
        /* The descriptor of the least recently used idle connection is worth more to a request
         * that has none. Nobody is woken: the caller takes the descriptor at once. */
        ag__conn *victim = p->lru_head;
        idle_unlink(p, victim);
        ag__host *vh = victim->host;
        ag__conn_close(victim);
        free(victim);
        vh->nconns--;
        p->total--;
        p->fd_idle_closed++;
        grant_slots(p);
        if (vh != h)
            host_maybe_free(p, vh);
        return 0;
    }
    bool on_loop = ag__current && ag__current->loop == p->loop;
    if (!failed && (ag__queue_empty(&p->fd_waiters) || !on_loop))
        return 0;
    int64_t now = ag_now_ns();
    if (deadline_ns >= 0 && now >= deadline_ns)
        return -ETIMEDOUT;
    /* The client may own none of the descriptors (other clients or the rest of the process
     * hold them): nobody would wake the waiter, so it also tries again after a pause that
     * doubles from 1 ms up to 100 ms. */
    bool again = *backoff_ns > 0;
    if (!again) {
        *backoff_ns = 1000000;
        p->fd_waits++;
    }
    int64_t until = now + *backoff_ns;
    if (deadline_ns >= 0 && until > deadline_ns)
        until = deadline_ns;
    if (*backoff_ns < 100000000)
        *backoff_ns *= 2;
    if (!on_loop) {
        /* Blocking code has nobody to wake it: the pause only. */
        int rc = ag_sleep_until(until);
        return rc < 0 && rc != -ETIMEDOUT ? rc : 0;
    }
    waiter w = {.co = ag__current, .host = h};
    /* One that waited before, was woken and still found none keeps its place at the head. */
    if (again && failed)
        ag__queue_push_head(&p->fd_waiters, &w.link);
    else
        ag__queue_push(&p->fd_waiters, &w.link);
    int rc = ag__coro_park_until(until);
    if (w.conn) {
        *conn = w.conn;
        return 1;
    }
    if (w.go)
        return 0;
    ag__queue_remove(&w.link);
    if (rc == -ETIMEDOUT)
        return deadline_ns >= 0 && ag_now_ns() >= deadline_ns ? -ETIMEDOUT : 0;
    return rc < 0 ? rc : 0;
}

int ag__pool_connect_begin(ag__pool *p, int64_t deadline_ns)
{
    if (p->connecting < p->o.max_connecting && ag__queue_empty(&p->connect_waiters)) {
        p->connecting++;
        return 0;
    }
    if (!ag__current || ag__current->loop != p->loop)
        return -EAGAIN;
    waiter w = {.co = ag__current};
    ag__queue_push(&p->connect_waiters, &w.link);
    int rc = ag__coro_park_until(deadline_ns);
    if (w.slot)
        return 0;
    ag__queue_remove(&w.link);
    return rc < 0 ? rc : -EAGAIN;
}

void ag__pool_connect_end(ag__pool *p)
{
    waiter *w = first_waiter(&p->connect_waiters);
    if (w) {
        ag__queue_remove(&w->link);
        w->slot = true; /* the slot passes on: connecting stays the same */
        ag__coro_wake(w->co, 0);
        return;
    }
    p->connecting--;
}

void ag__pool_free(ag__pool *p)
{
    if (!p)
        return;
    while (p->lru_head) {
        ag__conn *c = p->lru_head;
        idle_unlink(p, c);
        conn_destroy(p, c, false, NULL);
    }
    for (size_t i = 0; i < p->nbuckets; i++) {
        for (ag__host *h = p->buckets[i], *next; h; h = next) {
            next = h->chain;
            free(h->key);
            free(h);
        }
    }
    free(p->buckets);
    free(p);
}

void ag__pool_counts_get(const ag__pool *p, ag__pool_counts *out)
{
    memset(out, 0, sizeof *out);
    out->total = p->total;
    out->connecting = p->connecting;
    for (const ag__conn *c = p->lru_head; c; c = c->lru_next)
        out->idle++;
    const ag__queue *hn, *wn;
    ag__queue_foreach (hn, &p->queued_hosts)
        ag__queue_foreach (wn, &ag__queue_data(hn, ag__host, queued)->waiters)
            out->waiting++;
    ag__queue_foreach (wn, &p->connect_waiters)
        out->connect_waiting++;
    ag__queue_foreach (wn, &p->fd_waiters)
        out->fd_waiting++;
    out->fd_waits = p->fd_waits;
    out->fd_idle_closed = p->fd_idle_closed;
}
