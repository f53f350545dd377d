/* server.c: the bench's loopback HTTP/1.1 server on asyncget's reactor: a coroutine per
 * connection, keep-alive and pipelining, /uuid after a delay, /bytes/N, /stats; over TLS too.
 *
 * It must never be the bottleneck, so each request costs one read and one write: responses are
 * built into a per-connection buffer and written once per batch of pipelined requests, and a
 * short read is taken to mean the socket is drained (see conn_read). Over TLS the same holds:
 * OpenSSL reads ahead through our own BIO, which sees the short read, and writes a batch as one
 * record. */
#include "asyncget.h"
#include "bench.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define IN_INIT      2048         /* first read buffer of a connection */
#define IN_MAX       (64 * 1024)  /* largest request head accepted */
#define OUT_INIT     1024         /* first response buffer */
#define BYTES_MAX    (64u << 20)  /* cap of /bytes/N */
#define FILL_LEN     (256 * 1024) /* /bytes bodies are this buffer repeated */
#define ACCEPT_BATCH 64           /* accepts before letting connections run */

typedef struct server {
    int lfd;
    int delay_ms;
    uint64_t accepted;
    uint64_t open;
    uint64_t requests;
    uint64_t rng;
    char *fill;   /* FILL_LEN bytes shared by every /bytes response */
    SSL_CTX *tls; /* NULL: plain HTTP */
    BIO_METHOD *bio_method;
    uint64_t tls_resumed; /* handshakes that resumed a session */
} server;

static server srv;

typedef struct conn {
    int fd;
    bool drained; /* the last read was short and the coroutine has not parked since */
    SSL *ssl;     /* NULL: plain HTTP */
    bool tls_up;  /* handshake done and no fatal error since: a close_notify may be sent */
    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_len, out_cap;
} conn;

/* ---- small helpers ---- */

static uint64_t rng_next(void)
{
    /* splitmix64: fast, and good enough for random-looking identifiers. */
    uint64_t z = (srv.rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A version 4 UUID in its 36-character text form. */
static void uuid_v4(char out[36])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t b[16];
    uint64_t a = rng_next(), c = rng_next();
    memcpy(b, &a, 8);
    memcpy(b + 8, &c, 8);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 15];
    }
}

/* ---- response building ---- */

static bool out_reserve(conn *c, size_t more)
{
    if (c->out_len + more <= c->out_cap)
        return true;
    size_t cap = c->out_cap ? c->out_cap : OUT_INIT;
    while (cap < c->out_len + more)
        cap *= 2;
    char *p = realloc(c->out, cap);
    if (!p)
        return false;
    c->out = p;
    c->out_cap = cap;
    return true;
}

static void out_put(conn *c, const char *s, size_t n)
{
    memcpy(c->out + c->out_len, s, n);
    c->out_len += n;
}

#define OUT_LIT(c, lit) out_put((c), (lit), sizeof(lit) - 1)

static void out_u64(conn *c, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        c->out[c->out_len++] = tmp[--n];
}

/* Append a status line and headers; the caller then appends body_len bytes unless HEAD. */
static bool out_head(conn *c, const request *r, const char *status, const char *type,
                     uint64_t body_len, bool keep_alive)
{
    if (!out_reserve(c, 160 + strlen(status) + strlen(type)))
        return false;
    OUT_LIT(c, "HTTP/1.1 ");
    out_put(c, status, strlen(status));
    OUT_LIT(c, "\r\nContent-Type: ");
    out_put(c, type, strlen(type));
    OUT_LIT(c, "\r\nContent-Length: ");
    out_u64(c, body_len);
    if (!keep_alive)
        OUT_LIT(c, "\r\nConnection: close");
    else if (r && r->http10)
        OUT_LIT(c, "\r\nConnection: keep-alive"); /* a 1.0 client assumes close otherwise */
    OUT_LIT(c, "\r\n\r\n");
    return true;
}

static bool out_simple(conn *c, const request *r, const char *status, const char *type,
                       const char *body, size_t len, bool keep_alive)
{
    if (!out_head(c, r, status, type, len, keep_alive))
        return false;
    if (r && r->head)
        return true;
    if (!out_reserve(c, len))
        return false;
    out_put(c, body, len);
    return true;
}

/* Kept out of line: snprintf's deep stack would otherwise weigh on every connection. */
__attribute__((noinline)) static bool out_stats(conn *c, const request *r, bool keep_alive)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    char body[360];
    int n = snprintf(body, sizeof body,
                     "{\"connections\": %llu, \"open\": %llu, \"requests\": %llu, "
                     "\"cpu_s\": %.6f, \"user_s\": %.6f, \"sys_s\": %.6f, \"maxrss_kb\": %ld",
                     (unsigned long long)srv.accepted, (unsigned long long)srv.open,
                     (unsigned long long)srv.requests, sys_cpu_s(&ru),
                     (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
                     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6, ru.ru_maxrss);
    if (srv.tls)
        n += snprintf(body + n, sizeof body - (size_t)n, ", \"tls_resumed\": %llu",
                      (unsigned long long)srv.tls_resumed);
    n += snprintf(body + n, sizeof body - (size_t)n, "}\n");
    return out_simple(c, r, "200 OK", "application/json", body, (size_t)n, keep_alive);
}

/* ---- socket I/O ---- */

/* Read more request bytes. Returns the count, 0 at end of stream, or a negative error.
 *
 * A read that returns less than the room offered has emptied the socket, so the next read would
 * only say EAGAIN: waiting right away saves that system call. This is safe with the edge-
 * triggered reactor as long as the coroutine has not parked since that read, because data that
 * arrives later raises a new edge which is only collected once we park. Every park therefore
 * clears the flag. */
static ssize_t tls_read(conn *c);

static ssize_t conn_read(conn *c)
{
    if (c->ssl)
        return tls_read(c);
    for (;;) {
        if (c->drained) {
            int w = ag_wait_fd(c->fd, AG_READ, -1);
            c->drained = false;
            if (w < 0)
                return w;
        }
        size_t room = c->in_cap - c->in_len;
        ssize_t n = read(c->fd, c->in + c->in_len, room);
        if (n > 0) {
            c->in_len += (size_t)n;
            c->drained = (size_t)n < room;
            return n;
        }
        if (n == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        c->drained = true;
    }
}

static int tls_writev(conn *c, const struct iovec *iov, int cnt);

/* Write every byte of iov[0..cnt), waiting for room when the socket is full. */
static int conn_writev(conn *c, struct iovec *iov, int cnt)
{
    if (c->ssl)
        return tls_writev(c, iov, cnt);
    while (cnt > 0) {
        ssize_t n = writev(c->fd, iov, cnt);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return -errno;
            int w = ag_wait_fd(c->fd, AG_WRITE, -1);
            c->drained = false;
            if (w < 0)
                return w;
            continue;
        }
        size_t left = (size_t)n;
        while (cnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

static int conn_flush(conn *c)
{
    if (!c->out_len)
        return 0;
    struct iovec iov = {c->out, c->out_len};
    c->out_len = 0;
    return conn_writev(c, &iov, 1);
}

/* The pending responses, then a /bytes body of len bytes from the shared fill buffer. Out of
 * line, so that its iovec array is not part of every connection's stack frame. */
__attribute__((noinline)) static int conn_write_bytes(conn *c, uint64_t len)
{
    struct iovec iov[1 + BYTES_MAX / FILL_LEN + 1];
    int cnt = 0;
    iov[cnt++] = (struct iovec){c->out, c->out_len};
    while (len > 0) {
        size_t k = len < FILL_LEN ? (size_t)len : FILL_LEN;
        iov[cnt++] = (struct iovec){srv.fill, k};
        len -= k;
    }
    c->out_len = 0;
    return conn_writev(c, iov, cnt);
}

/* ---- TLS ----
 *
 * Coroutines share the thread's OpenSSL error queue, so it is cleared before every SSL call and
 * the result classified with SSL_get_error before any wait. A call that wants to read or write
 * waits on the fd for that direction and is repeated with the same arguments. */

/* Our BIO over the connection's socket: like OpenSSL's socket BIO, and it marks the connection
 * drained after a short read, which the socket BIO cannot tell us. */
static int bio_read(BIO *b, char *buf, int len)
{
    conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    for (;;) {
        ssize_t n = read(c->fd, buf, (size_t)len);
        if (n >= 0) {
            c->drained = n < len;
            return (int)n;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->drained = true;
            BIO_set_retry_read(b);
        }
        return -1;
    }
}

static int bio_write(BIO *b, const char *buf, int len)
{
    conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    for (;;) {
        ssize_t n = send(c->fd, buf, (size_t)len, MSG_NOSIGNAL);
        if (n >= 0)
            return (int)n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            BIO_set_retry_write(b);
        return -1;
    }
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    /* Nothing is buffered in this BIO: a flush has nothing to do, and nothing else applies. */
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static bool bio_method_init(void)
{
    srv.bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "bench socket");
    return srv.bio_method && BIO_meth_set_read(srv.bio_method, bio_read) == 1 &&
           BIO_meth_set_write(srv.bio_method, bio_write) == 1 &&
           BIO_meth_set_ctrl(srv.bio_method, bio_ctrl) == 1;
}

/* Wait for what SSL_get_error asked for. Returns 0 to retry the call, or a negative error: -EIO
 * for a TLS failure, -ECONNRESET for an end of stream. */
static int tls_wait(conn *c, int rc)
{
    int w;
    switch (SSL_get_error(c->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        /* Our BIO read the socket dry just now, so the wait is the next thing due. */
        w = ag_wait_fd(c->fd, AG_READ, -1);
        break;
    case SSL_ERROR_WANT_WRITE:
        w = ag_wait_fd(c->fd, AG_WRITE, -1);
        break;
    case SSL_ERROR_ZERO_RETURN:
    case SSL_ERROR_SYSCALL:
        /* The peer's close_notify, or its end of stream or reset: nothing more to say. */
        c->tls_up = false;
        return -ECONNRESET;
    default:
        c->tls_up = false;
        return -EIO;
    }
    c->drained = false;
    return w < 0 ? w : 0;
}

static int tls_accept(conn *c)
{
    for (;;) {
        ERR_clear_error();
        int rc = SSL_accept(c->ssl);
        if (rc == 1) {
            c->tls_up = true;
            break;
        }
        rc = tls_wait(c, rc);
        if (rc < 0)
            return rc;
    }
    if (SSL_session_reused(c->ssl))
        srv.tls_resumed++;
    return 0;
}

/* conn_read over TLS: bytes OpenSSL holds already (read ahead) come first; the socket is waited
 * on without a read only when our BIO saw it drained and OpenSSL holds nothing. */
static ssize_t tls_read(conn *c)
{
    for (;;) {
        if (c->drained && !SSL_has_pending(c->ssl)) {
            int w = ag_wait_fd(c->fd, AG_READ, -1);
            c->drained = false;
            if (w < 0)
                return w;
        }
        size_t room = c->in_cap - c->in_len;
        ERR_clear_error();
        int n = SSL_read(c->ssl, c->in + c->in_len, room > INT_MAX ? INT_MAX : (int)room);
        if (n > 0) {
            c->in_len += (size_t)n;
            return n;
        }
        int rc = tls_wait(c, n);
        if (rc == -ECONNRESET)
            return 0;
        if (rc < 0)
            return rc;
    }
}

static int tls_writev(conn *c, const struct iovec *iov, int cnt)
{
    for (int i = 0; i < cnt; i++) {
        const char *p = iov[i].iov_base;
        size_t left = iov[i].iov_len;
        while (left > 0) {
            int len = left > INT_MAX ? INT_MAX : (int)left;
            ERR_clear_error();
            int n = SSL_write(c->ssl, p, len);
            if (n > 0) {
                p += n;
                left -= (size_t)n;
                continue;
            }
            int rc = tls_wait(c, n);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* An SSL object on the connection's socket through our BIO. */
static int tls_start(conn *c)
{
    c->ssl = SSL_new(srv.tls);
    BIO *b = c->ssl ? BIO_new(srv.bio_method) : NULL;
    if (!b) {
        SSL_free(c->ssl);
        c->ssl = NULL;
        return -ENOMEM;
    }
    BIO_set_data(b, c);
    BIO_set_init(b, 1);
    SSL_set_bio(c->ssl, b, b);
    return 0;
}

/* ---- routing ---- */

/* Answer one request into c->out (flushing first where the answer waits). Returns 0 or a
 * negative error that ends the connection. */
static int route(conn *c, const request *r)
{
    const char *t = r->target;
    size_t tl = r->target_len;
    const char *q = memchr(t, '?', tl);
    size_t pl = q ? (size_t)(q - t) : tl;
    bool ka = r->keep_alive;
    if (pl == 5 && memcmp(t, "/uuid", 5) == 0) {
        uint64_t delay = (uint64_t)srv.delay_ms;
        if (q) {
            const char *d = memmem(q, tl - pl, "delay=", 6);
            if (d) {
                const char *ds = d + 6, *de = ds;
                while (de < t + tl && *de >= '0' && *de <= '9')
                    de++;
                request_parse_u64(ds, (size_t)(de - ds), &delay);
            }
        }
        if (delay > 0) {
            /* Answers already made must not wait behind this one's delay. */
            int rc = conn_flush(c);
            if (rc < 0)
                return rc;
            rc = ag_sleep_ms((int64_t)delay);
            c->drained = false;
            if (rc < 0)
                return rc;
        }
        char body[] = "{\"uuid\": \"xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx\"}";
        uuid_v4(body + 10);
        return out_simple(c, r, "200 OK", "application/json", body, sizeof body - 1, ka) ? 0
                                                                                         : -ENOMEM;
    }
    if (pl > 7 && memcmp(t, "/bytes/", 7) == 0) {
        uint64_t n;
        if (!request_parse_u64(t + 7, pl - 7, &n))
            return out_simple(c, r, "400 Bad Request", "text/plain", "bad size\n", 9, ka) ? 0
                                                                                          : -ENOMEM;
        if (n > BYTES_MAX)
            n = BYTES_MAX;
        if (!out_head(c, r, "200 OK", "application/octet-stream", n, ka))
            return -ENOMEM;
        if (r->head || n == 0)
            return 0;
        if (n <= 16384) {
            if (!out_reserve(c, (size_t)n))
                return -ENOMEM;
            out_put(c, srv.fill, (size_t)n);
            return 0;
        }
        return conn_write_bytes(c, n);
    }
    if (pl == 1 && t[0] == '/')
        return out_simple(c, r, "200 OK", "text/plain", "asyncget-bench server\n", 22, ka)
                   ? 0
                   : -ENOMEM;
    if (pl == 6 && memcmp(t, "/stats", 6) == 0)
        return out_stats(c, r, ka) ? 0 : -ENOMEM;
    return out_simple(c, r, "404 Not Found", "text/plain", "not found\n", 10, ka) ? 0 : -ENOMEM;
}

/* ---- connections ---- */

static void conn_free(conn *c)
{
    if (c->ssl) {
        /* A close_notify when the socket takes it, without waiting: the client has its answer.
         * Never after a fatal error, which OpenSSL forbids. */
        ERR_clear_error();
        if (c->tls_up)
            SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    ag_fd_unregister(ag_loop_current(), c->fd);
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
    srv.open--;
}

static void conn_main(void *arg)
{
    conn *c = arg;
    size_t pos = 0;    /* start of the first unparsed byte in c->in */
    uint64_t skip = 0; /* request body bytes still to drop */
    bool closing = false;
    if (c->ssl && tls_accept(c) < 0)
        goto done;
    for (;;) {
        while (!closing) {
            if (skip) {
                size_t k = c->in_len - pos < skip ? c->in_len - pos : (size_t)skip;
                pos += k;
                skip -= k;
                if (skip)
                    break;
            }
            request r;
            int pr = request_parse(c->in + pos, c->in_len - pos, &r);
            if (pr == 0)
                break;
            if (pr < 0 || r.chunked) {
                if (pr < 0)
                    out_simple(c, NULL, "400 Bad Request", "text/plain", "bad request\n", 12,
                               false);
                else
                    out_simple(c, NULL, "501 Not Implemented", "text/plain",
                               "chunked request bodies are not supported\n", 41, false);
                closing = true;
                break;
            }
            pos += r.head_len;
            skip = r.content_length;
            srv.requests++;
            if (route(c, &r) < 0)
                goto done;
            if (!r.keep_alive)
                closing = true;
        }
        if (conn_flush(c) < 0 || closing)
            break;
        /* Keep the unparsed tail at the front, and grow when a head does not fit. */
        if (pos) {
            memmove(c->in, c->in + pos, c->in_len - pos);
            c->in_len -= pos;
            pos = 0;
        }
        if (c->in_len == c->in_cap) {
            if (c->in_cap >= IN_MAX) {
                out_simple(c, NULL, "431 Request Header Fields Too Large", "text/plain",
                           "request head too large\n", 23, false);
                conn_flush(c);
                break;
            }
            char *p = realloc(c->in, c->in_cap * 2);
            if (!p)
                break;
            c->in = p;
            c->in_cap *= 2;
        }
        if (conn_read(c) <= 0)
            break;
    }
done:
    conn_free(c);
}

static int conn_start(ag_loop *loop, int fd)
{
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->fd = fd;
    c->in_cap = IN_INIT;
    c->in = malloc(IN_INIT);
    int rc = c->in ? 0 : -ENOMEM;
    if (rc == 0 && srv.tls)
        rc = tls_start(c);
    if (rc == 0)
        rc = ag_fd_register(loop, fd);
    if (rc == 0) {
        rc = ag_coro_spawn(loop, conn_main, c, NULL);
        if (rc < 0)
            ag_fd_unregister(loop, fd);
    }
    if (rc < 0) {
        SSL_free(c->ssl);
        free(c->in);
        free(c);
        return rc;
    }
    srv.accepted++;
    srv.open++;
    return 0;
}

static void accept_main(void *arg)
{
    ag_loop *loop = arg;
    int one = 1, batch = 0;
    for (;;) {
        int fd = accept4(srv.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                batch = 0;
                if (ag_wait_fd(srv.lfd, AG_READ, -1) < 0)
                    return;
            } else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: let connections finish, then try again. */
                if (ag_sleep_ms(10) < 0)
                    return;
            } else if (errno != EINTR && errno != ECONNABORTED) {
                return;
            }
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (conn_start(loop, fd) < 0)
            close(fd);
        if (++batch == ACCEPT_BATCH) {
            batch = 0;
            ag_yield();
        }
    }
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 65535) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

static void on_term(int sig)
{
    (void)sig;
    cert_cleanup();
    _exit(0);
}

/* The TLS context and certificate; the certificate file goes away when the server is stopped. */
static int tls_setup(const server_opts *opts, char *ca, size_t len)
{
    srv.tls = cert_server_ctx(opts->tls_version, ca, len);
    if (!srv.tls || !bio_method_init())
        return -1;
    struct sigaction sa = {.sa_handler = on_term};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    return 0;
}

int server_main(const server_opts *opts)
{
    char note[128] = "";
    long nofile = sys_raise_nofile();
    if (opts->pin)
        sys_pin(true, note, sizeof note);
    signal(SIGPIPE, SIG_IGN);
    srv.delay_ms = opts->delay_ms;
    if (getrandom(&srv.rng, sizeof srv.rng, 0) != sizeof srv.rng)
        srv.rng = (uint64_t)ag_now_ns() ^ ((uint64_t)getpid() << 32);
    srv.fill = malloc(FILL_LEN);
    if (!srv.fill)
        return 1;
    for (size_t i = 0; i < FILL_LEN; i++)
        srv.fill[i] = (char)('a' + i % 26);
    srv.lfd = listen_on(opts->port);
    if (srv.lfd < 0) {
        fprintf(stderr, "asyncget-bench: cannot listen on 127.0.0.1:%d: %s\n", opts->port,
                ag_strerror(srv.lfd));
        return 1;
    }
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    getsockname(srv.lfd, (struct sockaddr *)&sa, &sl);
    int port = ntohs(sa.sin_port);
    char ca[512] = "";
    if (opts->tls && tls_setup(opts, ca, sizeof ca) < 0) {
        fprintf(stderr, "asyncget-bench: the server's TLS set-up failed\n");
        cert_cleanup();
        return 1;
    }

    ag_loop *loop;
    int rc = ag_loop_new(&loop, NULL);
    if (rc == 0)
        rc = ag_fd_register(loop, srv.lfd);
    if (rc == 0)
        rc = ag_coro_spawn(loop, accept_main, loop, NULL);
    if (rc < 0) {
        fprintf(stderr, "asyncget-bench: server setup: %s\n", ag_strerror(rc));
        cert_cleanup();
        return 1;
    }
    if (opts->port_fd >= 0) {
        /* The port, and over TLS the certificate to trust, on one line. */
        char line[600];
        int n = snprintf(line, sizeof line, "%d%s%s\n", port, ca[0] ? " " : "", ca);
        sys_write_full(opts->port_fd, line, (size_t)n);
        close(opts->port_fd);
    } else {
        printf("asyncget-bench server: %s://127.0.0.1:%d/ (/uuid after %d ms, /bytes/N, "
               "/stats); %s; up to %ld fds",
               srv.tls ? "https" : "http", port, opts->delay_ms, note[0] ? note : "not pinned",
               nofile);
        if (srv.tls)
            printf("; TLS %s, CA certificate %s",
                   opts->tls_version == 12   ? "1.2"
                   : opts->tls_version == 13 ? "1.3"
                                             : "1.2 or 1.3",
                   ca);
        printf("\n");
        fflush(stdout);
    }
    rc = ag_loop_run(loop);
    fprintf(stderr, "asyncget-bench: server loop ended: %s\n", ag_strerror(rc));
    cert_cleanup();
    return 1;
}
