/* conn.c: a TCP connection: non-blocking connect with a deadline, and reads and writes that try
 * the system call first and wait on the reactor only after EAGAIN. */
#include "net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

static ssize_t tcp_read(ag__conn *c, void *buf, size_t len, unsigned *want)
{
    *want = AG_READ;
    ssize_t n = read(c->io.fd, buf, len);
    return n < 0 ? -errno : n;
}

static ssize_t tcp_writev(ag__conn *c, const struct iovec *iov, int iovcnt, unsigned *want)
{
    *want = AG_WRITE;
    /* send and sendmsg rather than write and writev: MSG_NOSIGNAL turns a closed peer into
     * EPIPE, not SIGPIPE. A request head alone (the usual GET) takes the cheaper send. */
    ssize_t n;
    if (iovcnt == 1) {
        n = send(c->io.fd, iov->iov_base, iov->iov_len, AG__MSG_NOSIGNAL);
    } else {
        struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
        n = sendmsg(c->io.fd, &msg, AG__MSG_NOSIGNAL);
    }
    return n < 0 ? -errno : n;
}

static void tcp_close(ag__conn *c)
{
    ag__io_close(&c->io);
}

static const ag__transport tcp_transport = {tcp_read, tcp_writev, tcp_close};

static void format_peer(ag__conn *c, const ag__sockaddr *ss)
{
    char *p = c->peer;
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
    ag__fmt_u64(p, port);
}

/* One attempt. Registers the socket before connect() so the completion edge is not missed. */
static int connect_one(ag__conn *c, ag_loop *loop, const ag__sockaddr *addr, int64_t deadline_ns)
{
    int fd = ag__socket(addr->sa.sa_family, SOCK_STREAM, IPPROTO_TCP);
    if (fd < 0)
        return fd;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = ag__io_init(&c->io, loop, fd);
    if (rc < 0) {
        close(fd);
        c->io.fd = -1;
        return rc;
    }
    if (connect(fd, &addr->sa, ag__sockaddr_len(addr)) < 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
            goto fail;
        }
        ag__io_clear(&c->io, AG_WRITE);
        rc = ag__io_wait(&c->io, AG_WRITE, deadline_ns);
        if (rc < 0)
            goto fail;
        int err = 0;
        socklen_t elen = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
            err = errno;
        if (err == 0) {
            /* Some kqueue emulations read SO_ERROR themselves, which clears it: ask the socket
             * whether it really has a peer. */
            ag__sockaddr peer;
            socklen_t plen = sizeof peer;
            if (getpeername(fd, &peer.sa, &plen) < 0) {
                char b;
                err = read(fd, &b, 1) < 0 && errno != EAGAIN ? errno : ECONNREFUSED;
            }
        }
        if (err) {
            rc = -err;
            goto fail;
        }
    }
    c->tp = &tcp_transport;
    return 0;
fail:
    ag__io_close(&c->io);
    return rc;
}

int ag__conn_connect(ag__conn *c, ag_loop *loop, ag__lookup *lk, const ag__connect_opts *o,
                     int64_t deadline_ns, int64_t *dns_at, const char **why)
{
    (void)o;
    c->peer[0] = '\0';
    while (!ag__lookup_done(lk)) {
        int rc = ag__lookup_wait(lk, deadline_ns);
        if (rc < 0)
            return rc;
    }
    if (dns_at)
        *dns_at = ag_now_ns();
    ag__addrs addrs_buf, *addrs = &addrs_buf;
    ag__lookup_addrs(lk, addrs);
    if (addrs->count == 0)
        return ag__lookup_error(lk, why);
    int rc = -EADDRNOTAVAIL;
    for (int i = 0; i < addrs->count; i++) {
        /* An equal share of what remains for each address left, so that one that never answers
         * leaves time for the others; the last one may use all of it. */
        int64_t until = deadline_ns;
        int left = addrs->count - i;
        if (deadline_ns >= 0 && left > 1) {
            int64_t now = ag_now_ns();
            int64_t remain = deadline_ns > now ? deadline_ns - now : 0;
            until = now + remain / left;
        }
        format_peer(c, &addrs->addr[i]);
        rc = connect_one(c, loop, &addrs->addr[i], until);
        if (rc == 0 || rc == -ECANCELED)
            break;
        if (deadline_ns >= 0 && ag_now_ns() >= deadline_ns) {
            rc = -ETIMEDOUT;
            break;
        }
    }
    return rc;
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
    };
    c->trace(c->trace_arg, &ev);
}

void ag__conn_close(ag__conn *c)
{
    if (c->tp)
        c->tp->close(c);
    else
        ag__io_close(&c->io);
    c->tp = NULL;
}

ssize_t ag__conn_read(ag__conn *c, void *buf, size_t len, int64_t deadline_ns)
{
    for (;;) {
        unsigned want = AG_READ;
        if (ag__io_ready(&c->io, want)) {
            ssize_t n = c->tp->read(c, buf, len, &want);
            if (n >= 0) {
                /* A short read drained the socket: the next read would say EAGAIN, and new
                 * data brings a new readiness report. Not so once the peer has closed: the end
                 * of stream waits behind the data and no further report will announce it. */
                if ((size_t)n < len && n > 0 && want == AG_READ && !(c->io.ready & AG__POLL_HUP) &&
                    ag__poller_reports_every_edge())
                    ag__io_clear(&c->io, AG_READ);
                /* The hook comes after that decision: a hook that waits (it writes the trace
                 * to a pipe) lets the loop record readiness that arrives meanwhile, and a clear
                 * after it would wipe that edge and leave the request waiting for bytes that
                 * are already there. */
                if (n > 0 && c->trace)
                    ag__conn_trace(c, AG_TRACE_RECV, buf, (size_t)n);
                return n;
            }
            if (n == -EINTR)
                continue;
            if (n != -EAGAIN)
                return n;
            ag__io_clear(&c->io, want);
        }
        if (deadline_ns == AG__NO_WAIT)
            return -EAGAIN;
        int rc = ag__io_wait(&c->io, want, deadline_ns);
        if (rc < 0)
            return rc;
    }
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
        unsigned want = AG_WRITE;
        if (ag__io_ready(&c->io, want)) {
            ssize_t n = c->tp->writev(c, iov, iovcnt, &want);
            if (n >= 0) {
                size_t left = (size_t)n;
                while (iovcnt > 0 && left >= iov->iov_len) {
                    if (c->trace && iov->iov_len)
                        ag__conn_trace(c, AG_TRACE_SEND, iov->iov_base, iov->iov_len);
                    left -= iov->iov_len;
                    /* Emptied in the caller's array too: after AG__READABLE the caller calls
                     * again with the same array, which must hold only what is left, or a
                     * written piece (the request head) would go out a second time. */
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
                continue;
            }
            if (n == -EINTR)
                continue;
            if (n != -EAGAIN)
                return (int)n;
            ag__io_clear(&c->io, want);
        }
        if (watch_read && ag__io_ready(&c->io, AG_READ))
            return AG__READABLE;
        int rc = ag__io_wait(&c->io, want | (watch_read ? AG_READ : 0), ag__deadline_next(d));
        if (rc < 0)
            return rc;
        if (watch_read && (rc & AG_READ))
            return AG__READABLE;
    }
    return 0;
}

bool ag__conn_idle_alive(ag__conn *c)
{
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
