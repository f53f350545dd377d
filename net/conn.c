/* conn.c: a TCP connection: non-blocking connect with a deadline, and reads and writes that try
 * the system call first and wait on the reactor only after EAGAIN. */
#include "net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

/* The TCP layer: the system call first, a wait on the reactor only after EAGAIN. */

static ssize_t tcp_read(ag__layer *l, void *buf, size_t len, int64_t deadline)
{
    ag__conn *c = l->conn;
    for (;;) {
        if (ag__io_ready(&c->io, AG_READ)) {
            ssize_t n = read(c->io.fd, buf, len);
            if (n >= 0) {
                /* A short read drained the socket: the next read would say EAGAIN, and new
                 * data brings a new readiness report. Not so once the peer has closed: the end
                 * of stream waits behind the data and no further report will announce it.
                 * This holds for the socket only: a filter above (TLS) decides for itself
                 * what its own short reads mean. */
                if ((size_t)n < len && n > 0 && !(c->io.ready & AG__POLL_HUP) &&
                    ag__poller_reports_every_edge())
                    ag__io_clear(&c->io, AG_READ);
                return n;
            }
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -errno;
            ag__io_clear(&c->io, AG_READ);
        }
        c->want = AG_READ;
        if (deadline == AG__NO_WAIT)
            return -EAGAIN;
        int rc = ag__io_wait(&c->io, AG_READ, deadline);
        if (rc < 0)
            return rc;
    }
}

static ssize_t tcp_writev(ag__layer *l, const struct iovec *iov, int iovcnt, const ag__deadline *d,
                          bool watch_read)
{
    ag__conn *c = l->conn;
    for (;;) {
        if (ag__io_ready(&c->io, AG_WRITE)) {
            /* send and sendmsg rather than write and writev: MSG_NOSIGNAL turns a closed peer
             * into EPIPE, not SIGPIPE. A request head alone (the usual GET) takes the cheaper
             * send. */
            ssize_t n;
            if (iovcnt == 1) {
                n = send(c->io.fd, iov->iov_base, iov->iov_len, AG__MSG_NOSIGNAL);
            } else {
                struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
                n = sendmsg(c->io.fd, &msg, AG__MSG_NOSIGNAL);
            }
            if (n >= 0)
                return n;
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -errno;
            ag__io_clear(&c->io, AG_WRITE);
        }
        if (d->total == AG__NO_WAIT)
            return -EAGAIN;
        if (watch_read && ag__io_ready(&c->io, AG_READ))
            return AG__LAYER_READABLE;
        int rc = ag__io_wait(&c->io, AG_WRITE | (watch_read ? AG_READ : 0), ag__deadline_next(d));
        if (rc < 0)
            return rc;
        if (watch_read && (rc & AG_READ))
            return AG__LAYER_READABLE;
    }
}

static bool tcp_pending(ag__layer *l)
{
    (void)l;
    return false;
}

static bool tcp_is_alive(ag__layer *l)
{
    ag__conn *c = l->conn;
    /* With a reactor, an idle connection that was never reported readable is alive. Blocking
     * code has no reactor watching: it always asks. */
    if (c->io.loop && !ag__io_ready(&c->io, AG_READ))
        return true;
    char b;
    ssize_t n = recv(c->io.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        ag__io_clear(&c->io, AG_READ); /* a stale report: the connection is fine */
        return true;
    }
    return false; /* end of stream, an error, or bytes nobody asked for */
}

static void tcp_close(ag__layer *l)
{
    ag__io_close(&l->conn->io);
}

static const ag__layer_ops tcp_ops = {tcp_read, tcp_writev, tcp_pending, tcp_is_alive, tcp_close};

static char *addr_format(char *p, const ag__sockaddr *ss);

void ag__conn_attach(ag__conn *c)
{
    c->tcp = (ag__layer){&tcp_ops, NULL, c};
    c->top = &c->tcp;
    c->want = AG_READ;
    /* The local end, once per connection: what a caller matches against a capture or a
     * proxy's log (curl's local_ip and local_port). */
    c->local[0] = '\0';
    ag__sockaddr ss;
    socklen_t len = sizeof ss;
    if (getsockname(c->io.fd, &ss.sa, &len) == 0 &&
        (ss.sa.sa_family == AF_INET || ss.sa.sa_family == AF_INET6))
        addr_format(c->local, &ss);
}

/* "1.2.3.4:80" or "[::1]:80" at p (at most 48 bytes with the NUL); returns the end. */
static char *addr_format(char *p, const ag__sockaddr *ss)
{
    unsigned port;
    if (ss->sa.sa_family == AF_INET) {
        const struct sockaddr_in *s = &ss->in;
        p = ag__ipv4_format(p, (const uint8_t *)&s->sin_addr.s_addr);
        port = ntohs(s->sin_port);
    } else {
        const struct sockaddr_in6 *s = &ss->in6;
        *p++ = '[';
        p = ag__ipv6_format(p, s->sin6_addr.s6_addr);
        port = ntohs(s->sin6_port);
        *p++ = ']';
    }
    *p++ = ':';
    return p + ag__fmt_u64(p, port);
}

static void format_peer(ag__conn *c, const ag__sockaddr *ss)
{
    addr_format(c->peer, ss);
}

/* Start connecting a new socket to addr, registered in io before connect() so that the completion
 * edge is not missed: 1 when connected at once, 0 in progress (wait for AG_WRITE, then
 * connect_result), or a negative errno with io closed. */
static int connect_start(ag__io *io, ag_loop *loop, const ag__sockaddr *addr)
{
    int fd = ag__socket(addr->sa.sa_family, SOCK_STREAM, IPPROTO_TCP);
    if (fd < 0) {
        io->fd = -1;
        return fd;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = ag__io_init(io, loop, fd);
    if (rc < 0) {
        close(fd);
        io->fd = -1;
        return rc;
    }
    if (connect(fd, &addr->sa, ag__sockaddr_len(addr)) == 0)
        return 1;
    if (errno != EINPROGRESS) {
        rc = -errno;
        ag__io_close(io);
        return rc;
    }
    ag__io_clear(io, AG_WRITE);
    return 0;
}

/* How a connect that was reported writable ended: 0 connected, or a negative errno. */
static int connect_result(int fd)
{
    int err = 0;
    socklen_t elen = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
        err = errno;
    if (err == 0 && strcmp(ag__poller_name(), "kqueue") == 0) {
        /* Some kqueue emulations read SO_ERROR themselves, which clears it: ask the socket
         * whether it really has a peer. epoll and poll leave SO_ERROR alone: no system call
         * more per connect there. */
        ag__sockaddr peer;
        socklen_t plen = sizeof peer;
        if (getpeername(fd, &peer.sa, &plen) < 0) {
            char b;
            err = read(fd, &b, 1) < 0 && errno != EAGAIN ? errno : ECONNREFUSED;
        }
    }
    return -err;
}

/* One attempt, alone: a single address costs no more than this. */
static int connect_one(ag__conn *c, ag_loop *loop, const ag__sockaddr *addr, int64_t deadline_ns)
{
    int rc = connect_start(&c->io, loop, addr);
    if (rc == 0) {
        rc = ag__io_wait(&c->io, AG_WRITE, deadline_ns);
        if (rc >= 0)
            rc = connect_result(c->io.fd);
        if (rc < 0) {
            ag__io_close(&c->io);
            return rc;
        }
    }
    if (rc < 0)
        return rc;
    ag__conn_attach(c);
    return 0;
}

/* Tell the trace hook that an attempt on addr starts (err 0) or failed. */
static void trace_attempt(const ag__conn *c, const ag__sockaddr *addr, int err)
{
    if (!c->trace)
        return;
    char buf[160], *p = buf;
    static const char start[] = "connecting to ", fail[] = "connect failed: ";
    const char *head = err ? fail : start;
    size_t hl = err ? sizeof fail - 1 : sizeof start - 1;
    memcpy(p, head, hl);
    p = addr_format(p + hl, addr);
    if (err) {
        const char *e = ag_strerror(err);
        size_t el = strlen(e);
        if (el > (size_t)(buf + sizeof buf - p - 2))
            el = (size_t)(buf + sizeof buf - p - 2);
        *p++ = ' ';
        memcpy(p, e, el);
        p += el;
    }
    ag__conn_trace(c, AG_TRACE_INFO, buf, (size_t)(p - buf));
}

static bool same_addr(const ag__sockaddr *a, const ag__sockaddr *b)
{
    if (a->sa.sa_family != b->sa.sa_family)
        return false;
    if (a->sa.sa_family == AF_INET)
        return a->in.sin_addr.s_addr == b->in.sin_addr.s_addr && a->in.sin_port == b->in.sin_port;
    return memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof a->in6.sin6_addr) == 0 &&
           a->in6.sin6_port == b->in6.sin6_port;
}

/* The state of a Happy Eyeballs connect. Every address started has a slot, in order, which
 * holds its socket while the attempt is in flight (fd -1 once it ended). The slots never move:
 * the loop's table points at their io. */
typedef struct he {
    ag__sockaddr addr[AG__MAX_ADDRS];
    ag__io io[AG__MAX_ADDRS];
    int started, inflight;
    ag__sockaddr todo[AG__MAX_ADDRS]; /* known and not started, in the order to start them */
    int ntodo, next;
} he;

/* Rebuild the list of addresses to start from what the lookup knows now: without those already
 * started, the families alternating from the one after the last started (RFC 8305 section 4:
 * answers that arrive late join the interleaving), or in the lookup's order when none started. */
static void he_plan(he *h, const ag__lookup *lk)
{
    ag__addrs all;
    ag__lookup_addrs(lk, &all);
    ag__sockaddr fam[2][AG__MAX_ADDRS];
    int n[2] = {0, 0};
    for (int i = 0; i < all.count; i++) {
        bool seen = false;
        for (int j = 0; j < h->started && !seen; j++)
            seen = same_addr(&all.addr[i], &h->addr[j]);
        if (!seen) {
            int f = all.addr[i].sa.sa_family == AF_INET6;
            fam[f][n[f]++] = all.addr[i];
        }
    }
    int f;
    if (h->started > 0)
        f = h->addr[h->started - 1].sa.sa_family != AF_INET6;
    else
        f = all.count > 0 && all.addr[0].sa.sa_family == AF_INET6;
    int i[2] = {0, 0};
    h->ntodo = h->next = 0;
    while (i[0] < n[0] || i[1] < n[1]) {
        if (i[f] < n[f])
            h->todo[h->ntodo++] = fam[f][i[f]++];
        f = !f;
    }
}

/* Close every attempt still in flight. */
static void he_close(he *h)
{
    for (int i = 0; i < h->started; i++)
        ag__io_close(&h->io[i]);
    h->inflight = 0;
}

static int64_t earlier(int64_t a, int64_t b)
{
    return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

static int happy_eyeballs(ag__conn *c, ag_loop *loop, ag__lookup *lk, const ag__connect_opts *o,
                          int64_t deadline_ns, int64_t *dns_at, const char **why)
{
    he h;
    h.started = h.inflight = h.ntodo = h.next = 0;
    uint8_t seen[2] = {0xff, 0xff};
    int rc = -EADDRNOTAVAIL; /* the error of the last attempt that ended */
    int no_fd = 0;           /* EMFILE or ENFILE: an address went untried for want of an fd */
    int last_failed = -1;    /* its slot */
    int64_t answered = -1;   /* when the first address became known */
    int64_t resolution_end = -1;
    int64_t next_at = 0; /* the next attempt starts no earlier than this */
    for (;;) {
        int64_t now = ag_now_ns();
        if (lk->fam[0].state != seen[0] || lk->fam[1].state != seen[1]) {
            seen[0] = lk->fam[0].state;
            seen[1] = lk->fam[1].state;
            he_plan(&h, lk);
            if (h.ntodo > 0 && answered < 0)
                answered = now;
        }
        /* RFC 8305 section 3: an IPv4 answer waits a little for the IPv6 one, which is preferred,
         * before the first attempt. */
        bool may_start = true;
        if (h.started == 0 && h.ntodo > 0 && lk->fam[AG__FAM6].state == AG__LK_PENDING) {
            if (resolution_end < 0)
                resolution_end = now + o->resolution_delay_ns;
            may_start = now >= resolution_end;
        }
        while (may_start && h.next < h.ntodo && (h.inflight == 0 || now >= next_at)) {
            int s = h.started++;
            h.addr[s] = h.todo[h.next++];
            if (s == 0 && dns_at)
                *dns_at = now;
            trace_attempt(c, &h.addr[s], 0);
            int r = connect_start(&h.io[s], loop, &h.addr[s]);
            if (r == 1) {
                ag__io_move(&c->io, &h.io[s]);
                he_close(&h);
                format_peer(c, &h.addr[s]);
                ag__conn_attach(c);
                return 0;
            }
            if (r < 0) {
                /* Refused or unreachable at once, or no socket: the next one starts now. */
                trace_attempt(c, &h.addr[s], r);
                rc = r;
                if (r == -EMFILE || r == -ENFILE)
                    no_fd = r;
                last_failed = s;
                next_at = now;
                continue;
            }
            h.inflight++;
            /* Counted from after the start (and its trace event), not from the clock read
             * before it: a thread preempted in between must not start the next one early. */
            next_at = ag_now_ns() + o->attempt_delay_ns;
        }
        if (h.inflight == 0 && h.next >= h.ntodo && ag__lookup_done(lk)) {
            if (h.started == 0) {
                if (dns_at)
                    *dns_at = now;
                return ag__lookup_error(lk, why);
            }
            format_peer(c, &h.addr[last_failed]);
            /* An address that got no socket was not tried: that is the failure to report, for
             * the caller may try them all again once a descriptor is free. */
            return no_fd ? no_fd : rc;
        }
        if (deadline_ns >= 0 && now >= deadline_ns) {
            /* Every address known so far failed, and only an answer of the other family was
             * still awaited: the failure says more than the timeout. */
            if (h.inflight == 0 && h.next >= h.ntodo && last_failed >= 0) {
                he_close(&h);
                format_peer(c, &h.addr[last_failed]);
                return rc;
            }
            rc = -ETIMEDOUT;
            break;
        }

        /* Wait for an attempt to end, an answer, the next start, or the deadline. */
        int64_t until = deadline_ns;
        if (h.next < h.ntodo)
            until = earlier(until, may_start ? next_at : resolution_end);
        ag__wait_item items[AG__WAIT_ANY_MAX];
        int slot[AG__MAX_ADDRS];
        int n = 0;
        for (int s = 0; s < h.started; s++) {
            if (h.io[s].fd >= 0) {
                slot[n] = s;
                items[n++] = (ag__wait_item){&h.io[s], AG_WRITE, 0};
            }
        }
        bool pending = !ag__lookup_done(lk);
        int k = pending ? ag__lookup_prepare(lk, items + n, AG__WAIT_ANY_MAX - n, &until) : 0;
        int wr;
        if (n + k > 0 || ag__current)
            wr = ag__wait_any(items, n + k, until);
        else /* plain code waiting for c-ares with no socket open: its timeouts only */
            wr = ag_sleep_until(until < 0 ? ag_now_ns() + 1000000000 : until);
        if (pending)
            ag__lookup_finish(lk, items + n, k);
        if (wr < 0 && wr != -ETIMEDOUT) {
            rc = wr;
            break;
        }
        now = ag_now_ns();
        for (int i = 0; i < n && wr > 0; i++) {
            if (!items[i].revents)
                continue;
            int s = slot[i];
            int r = connect_result(h.io[s].fd);
            if (r == 0) {
                ag__io_move(&c->io, &h.io[s]);
                he_close(&h);
                format_peer(c, &h.addr[s]);
                ag__conn_attach(c);
                return 0;
            }
            trace_attempt(c, &h.addr[s], r);
            ag__io_close(&h.io[s]);
            h.inflight--;
            rc = r;
            last_failed = s;
            next_at = now; /* RFC 8305 section 5: a failure starts the next attempt at once */
        }
    }
    he_close(&h);
    if (h.started > 0)
        format_peer(c, &h.addr[h.started - 1]);
    if (rc == -ETIMEDOUT && h.started == 0 && answered >= 0 && dns_at)
        *dns_at = answered; /* an address was known: the connect ran out of time, not the lookup */
    return rc;
}

int ag__conn_connect(ag__conn *c, ag_loop *loop, ag__lookup *lk, const ag__connect_opts *o,
                     int64_t deadline_ns, int64_t *dns_at, const char **why)
{
    c->peer[0] = '\0';
    if (ag__lookup_done(lk) && lk->fam[0].n + lk->fam[1].n <= 1) {
        /* A numeric host, the usual case: one plain attempt. */
        if (dns_at)
            *dns_at = ag_now_ns();
        ag__addrs one;
        ag__lookup_addrs(lk, &one);
        if (one.count == 0)
            return ag__lookup_error(lk, why);
        format_peer(c, &one.addr[0]);
        trace_attempt(c, &one.addr[0], 0);
        int rc = connect_one(c, loop, &one.addr[0], deadline_ns);
        if (rc < 0 && rc != -ETIMEDOUT && rc != -ECANCELED)
            trace_attempt(c, &one.addr[0], rc);
        return rc;
    }
    return happy_eyeballs(c, loop, lk, o, deadline_ns, dns_at, why);
}

/* "unix:/path" or "unix:@name" in c->peer, cut to fit. */
static void format_unix_peer(ag__conn *c, const char *path, bool abstract)
{
    char *p = c->peer, *end = c->peer + sizeof c->peer - 1;
    memcpy(p, "unix:", 5);
    p += 5;
    if (abstract)
        *p++ = '@';
    for (const char *s = path; *s && p < end; s++)
        *p++ = *s;
    *p = '\0';
}

int ag__conn_connect_unix(ag__conn *c, ag_loop *loop, const char *path, bool abstract,
                          int64_t deadline_ns)
{
    format_unix_peer(c, path, abstract);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t n = strlen(path);
    if (n == 0 || n + 1 > sizeof sa.sun_path)
        return -EINVAL;
    /* An abstract name is a NUL and the name's bytes, and its length is exactly theirs: a
     * trailing NUL would be part of another name. A path gets its NUL. */
    memcpy(sa.sun_path + abstract, path, n);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    if (c->trace) {
        char buf[160] = "connecting to ";
        size_t k = strlen(buf), pl = strlen(c->peer);
        memcpy(buf + k, c->peer, pl);
        ag__conn_trace(c, AG_TRACE_INFO, buf, k + pl);
    }
    int fd = ag__socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return fd;
    int rc = ag__io_init(&c->io, loop, fd);
    if (rc < 0) {
        close(fd);
        c->io.fd = -1;
        return rc;
    }
    /* A listener whose queue is full makes Linux refuse a non-blocking connect with EAGAIN,
     * and nothing announces when room appears: try again after a pause that doubles from 1 ms
     * up to 100 ms, until the connect deadline. */
    int64_t pause = 1000000;
    for (;;) {
        if (connect(fd, (const struct sockaddr *)&sa, len) == 0) {
            rc = 0;
            break;
        }
        rc = -errno;
        if (rc == -EINTR)
            continue;
        if (rc == -EINPROGRESS) {
            ag__io_clear(&c->io, AG_WRITE);
            rc = ag__io_wait(&c->io, AG_WRITE, deadline_ns);
            if (rc >= 0)
                rc = connect_result(fd);
            break;
        }
        if (rc != -EAGAIN)
            break;
        int64_t now = ag_now_ns();
        if (deadline_ns >= 0 && now >= deadline_ns) {
            rc = -ETIMEDOUT;
            break;
        }
        int64_t until = now + pause;
        if (deadline_ns >= 0 && until > deadline_ns)
            until = deadline_ns;
        rc = ag_sleep_until(until);
        if (rc < 0)
            break;
        if (pause < 100000000)
            pause *= 2;
    }
    if (rc < 0) {
        ag__io_close(&c->io);
        if (c->trace && rc != -ECANCELED) {
            char buf[200] = "connect failed: ";
            size_t k = strlen(buf), pl = strlen(c->peer);
            memcpy(buf + k, c->peer, pl);
            buf[k + pl] = ' ';
            const char *e = ag_strerror(rc);
            size_t el = strlen(e);
            if (el > sizeof buf - k - pl - 1)
                el = sizeof buf - k - pl - 1;
            memcpy(buf + k + pl + 1, e, el);
            ag__conn_trace(c, AG_TRACE_INFO, buf, k + pl + 1 + el);
        }
        return rc;
    }
    ag__conn_attach(c);
    return 0;
}

void ag__conn_trace(const ag__conn *c, int kind, const char *data, size_t len)
{
    if (!c->trace)
        return;
    ag_trace_event ev = {
        .kind = kind,
        .request_id = c->req_id,
        .conn_id = c->id,
        .time_ns = ag_now_ns(),
        .data = data,
        .len = len,
        .user = c->user,
    };
    c->trace(c->trace_arg, &ev);
}

void ag__conn_close(ag__conn *c)
{
    if (c->top)
        c->top->ops->close(c->top);
    else
        ag__io_close(&c->io);
    c->top = NULL;
    if (c->tls) {
        ag__tls_info_unref(c->tls);
        c->tls = NULL;
    }
}

ssize_t ag__conn_read(ag__conn *c, void *buf, size_t len, int64_t deadline_ns)
{
    c->want = AG_READ;
    ssize_t n = c->top->ops->read(c->top, buf, len, deadline_ns);
    if (n > 0 && c->trace)
        ag__conn_trace(c, AG_TRACE_RECV, buf, (size_t)n);
    return n;
}

bool ag__conn_ready(ag__conn *c)
{
    return ag__io_ready(&c->io, c->want) || c->top->ops->pending(c->top);
}

int ag__conn_wait(ag__conn *c, int64_t deadline_ns)
{
    return ag__io_wait(&c->io, c->want, deadline_ns);
}

int ag__conn_writev(ag__conn *c, struct iovec *iov, int iovcnt, const ag__deadline *d,
                    bool watch_read)
{
    while (iovcnt > 0) {
        if (iov->iov_len == 0) {
            iov++;
            iovcnt--;
            continue;
        }
        ssize_t n = c->top->ops->writev(c->top, iov, iovcnt, d, watch_read);
        if (n == AG__LAYER_READABLE)
            return AG__READABLE;
        if (n < 0)
            return (int)n;
        size_t left = (size_t)n;
        while (iovcnt > 0 && left >= iov->iov_len) {
            if (c->trace && iov->iov_len)
                ag__conn_trace(c, AG_TRACE_SEND, iov->iov_base, iov->iov_len);
            left -= iov->iov_len;
            /* Emptied in the caller's array too: after AG__READABLE the caller calls again
             * with the same array, which must hold only what is left, or a written piece (the
             * request head) would go out a second time. */
            iov->iov_len = 0;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            if (c->trace && left)
                ag__conn_trace(c, AG_TRACE_SEND, iov->iov_base, left);
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

bool ag__conn_idle_alive(ag__conn *c)
{
    return c->top->ops->is_alive(c->top);
}

int ag__conn_secure(ag__conn *c, const ag__security *sec, int64_t deadline_ns, const char **why)
{
    *why = NULL;
    if (!sec->start)
        return 0;
    return sec->start(c, sec->ctx, sec->host, sec->port, deadline_ns, why);
}

void ag__tls_info_ref(ag__tls_info *i)
{
    __atomic_add_fetch(&i->refs, 1, __ATOMIC_RELAXED);
}

void ag__tls_info_unref(ag__tls_info *i)
{
    if (i && __atomic_sub_fetch(&i->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(i);
}
