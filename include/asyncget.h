/* asyncget.h: the public API of asyncget, an event-driven HTTP/1.1 client with its own reactor. */
#ifndef ASYNCGET_H
#define ASYNCGET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(AG_BUILDING) && defined(__GNUC__)
#define AG_EXPORT __attribute__((visibility("default")))
#else
#define AG_EXPORT
#endif

#include "asyncget_version.h" /* AG_VERSION, AG_VERSION_MAJOR, _MINOR and _PATCH */

/*
 * Errors. Every fallible function returns 0 (or a count) on success and a negative code on
 * failure: a negative errno from the system, or one of asyncget's own codes below, which live in a
 * range no errno uses. ag_strerror() and ag_err_name() name any of them.
 */
#define AG_ERRORS(X)                                                                               \
    X(URL, -20001, "malformed URL")                                                                \
    X(SCHEME, -20002, "unsupported URL scheme")                                                    \
    X(HEADER, -20003, "invalid header name or value")                                              \
    X(DNS, -20004, "host name not found")                                                          \
    X(TLS, -20005, "TLS handshake or protocol failure")                                            \
    X(TLS_VERIFY, -20006, "TLS certificate verification failed")                                   \
    X(PROTO, -20007, "HTTP protocol violation by the server")                                      \
    X(TOO_LARGE, -20008, "response exceeds a configured size limit")                               \
    X(REDIRECTS, -20009, "too many redirects")                                                     \
    X(REDIRECT, -20010, "redirect to an unusable location")                                        \
    X(POOL_TIMEOUT, -20011, "timed out waiting for a connection slot")                             \
    X(CONNECT_TIMEOUT, -20012, "timed out connecting")                                             \
    X(IDLE_TIMEOUT, -20013, "timed out waiting for data from the server")                          \
    X(TOTAL_TIMEOUT, -20014, "request exceeded its total time limit")                              \
    X(CLOSED, -20015, "server closed the connection before responding")                            \
    X(TRUNCATED, -20016, "response body truncated")                                                \
    X(BODY, -20017, "request body could not be read or replayed")                                  \
    X(SINK, -20018, "response body consumer failed")                                               \
    X(REQUEST, -20019, "invalid request")                                                          \
    X(DNS_FAIL, -20020, "name resolution failed at the DNS server")                                \
    X(DNS_TIMEOUT, -20021, "no answer from the DNS servers in time")                               \
    X(TLS_EXPIRED, -20022, "TLS certificate expired or not yet valid")                             \
    X(TLS_UNTRUSTED, -20023, "TLS certificate not issued by a trusted authority")                  \
    X(TLS_HOSTNAME, -20024, "TLS certificate does not match the host name")                        \
    X(DECODE, -20025, "coded response body corrupt, truncated or not supported")                   \
    X(DECODE_RATIO, -20026, "decoded response body expands beyond the ratio limit")

enum ag_error {
#define AG__ERR_ENUM(name, value, text) AG_E##name = value,
    AG_ERRORS(AG__ERR_ENUM)
#undef AG__ERR_ENUM
};

/* Human-readable text for any code (asyncget's own or a negative errno). Never NULL. */
AG_EXPORT const char *ag_strerror(int err);
/* Short symbolic name such as "AG_ETLS" or "ECONNREFUSED". Never NULL. */
AG_EXPORT const char *ag_err_name(int err);

/* The library's version, "MAJOR.MINOR.PATCH" (AG_VERSION of the build that made the library, which
 * may differ from the header a program was compiled with). */
AG_EXPORT const char *ag_version(void);
/* One line naming the library's version, its reactor backend and the versions of the libraries
 * it runs with, e.g. "asyncget/0.2.0 (epoll) http-parser/2.9.4 c-ares/1.18.1 OpenSSL/3.0.11". Never
 * NULL. */
AG_EXPORT const char *ag_version_details(void);
/* The content codings this build can decode, as an Accept-Encoding value: "gzip, deflate, br,
 * zstd" when zlib, libbrotli and libzstd were all found at build time, fewer otherwise, "" with
 * none. Never NULL. */
AG_EXPORT const char *ag_codings(void);

/*
 * Growing the API without breaking programs built against an older header. Every struct the
 * caller allocates (options, requests, timers, timings) ends in reserved words. A new field takes
 * the place of reserved words, so the struct's size and the offsets of existing fields never
 * change within a soname, and a zero-filled struct, or one from an older header, means the
 * defaults: zero means "default" in every field. Always start from the _init function or from a
 * zero-filled struct ({0}, memset) and set only what you need.
 */

/* Monotonic clock in nanoseconds, the time base of every deadline. */
AG_EXPORT int64_t ag_now_ns(void);

/* ------------------------------------------------------------------------------------------ */
/* The reactor. One loop per thread; every object made from a loop stays on that thread. */

typedef struct ag_loop ag_loop;

typedef struct ag_loop_opts {
    size_t stack_size;  /* usable bytes per coroutine stack (rounded to pages); 0: 64 KiB */
    size_t stack_cache; /* parked stacks kept with their pages; 0: 1024 */
    uint64_t reserved[14];
} ag_loop_opts;

AG_EXPORT void ag_loop_opts_init(ag_loop_opts *opts);
/* Make a loop. opts may be NULL for the defaults. */
AG_EXPORT int ag_loop_new(ag_loop **out, const ag_loop_opts *opts);
/* Free a loop. While a coroutine of it is alive (a request in flight is one), or when called from
 * inside the loop's own run or callbacks, it returns -EBUSY and leaves the loop untouched: cancel
 * them and run the loop until they finish, then free it (as libuv's uv_loop_close). -EBUSY too
 * while a client made on the loop keeps connections on it: free the clients first. Fds still
 * registered with ag_fd_register are forgotten, not closed (they are the caller's); timers still
 * armed are disarmed (ag_timer_armed() says 0). NULL returns 0. */
AG_EXPORT int ag_loop_free(ag_loop *loop);
/* Run until no coroutine is alive and no timer is pending, or ag_loop_stop() is called. */
AG_EXPORT int ag_loop_run(ag_loop *loop);
/* Make ag_loop_run() return after the current iteration (from the loop's own thread). */
AG_EXPORT void ag_loop_stop(ag_loop *loop);
/* Name of the readiness backend this build uses: "epoll", "kqueue" or "poll". */
AG_EXPORT const char *ag_loop_backend(void);

/* Embedding in a foreign event loop: watch ag_loop_fd() for readability (it is -ENOTSUP on the
 * poll backend), wake up after ag_loop_timeout_ms() at the latest (-1: no deadline), and call
 * ag_loop_run_once(loop, 0) then. run_once returns the number of live coroutines and timers.
 * Re-read ag_loop_timeout_ms() after every run_once: that is the only time it can move earlier
 * from inside. Work added from outside an iteration (ag_fetch_start, ag_coro_spawn,
 * ag_timer_start or ag_coro_cancel called from the host's own callbacks) makes ag_loop_fd()
 * readable, so the host runs an iteration and re-reads the timeout without being told; this is
 * why there is no timer-change callback (libcurl's CURLMOPT_TIMERFUNCTION). Such a wake-up does
 * not run the ag_loop_on_wake callback. examples/libuv.c shows it in a libuv loop. */
AG_EXPORT int ag_loop_fd(const ag_loop *loop);
AG_EXPORT int ag_loop_timeout_ms(const ag_loop *loop);
AG_EXPORT int ag_loop_run_once(ag_loop *loop, int timeout_ms);

/* Thread-safe: make the loop's current or next wait return. Safe from any thread and from
 * signal handlers. The callback set with ag_loop_on_wake runs on the loop's thread afterwards. */
AG_EXPORT void ag_loop_wake(ag_loop *loop);
AG_EXPORT void ag_loop_on_wake(ag_loop *loop, void (*cb)(ag_loop *loop, void *arg), void *arg);

/* The loop of the calling thread's running coroutine or loop iteration, or NULL. */
AG_EXPORT ag_loop *ag_loop_current(void);

/* ------------------------------------------------------------------------------------------ */
/* Timers: a callback at a monotonic deadline, cancellable. The timer struct is the caller's. */

typedef struct ag_timer ag_timer;
typedef void (*ag_timer_cb)(ag_timer *timer, void *arg);

struct ag_timer {
    int64_t deadline_ns; /* read-only while armed */
    ag_timer_cb cb;
    void *arg;
    size_t heap_index;    /* private: position in the loop's heap plus one, 0: not armed */
    uint64_t reserved[4]; /* private */
};

AG_EXPORT void ag_timer_init(ag_timer *timer, ag_timer_cb cb, void *arg);
/* Arm (or re-arm) the timer for an absolute deadline on ag_now_ns()'s clock. -EINVAL when it has
 * no callback (a zero-filled timer). */
AG_EXPORT int ag_timer_start(ag_loop *loop, ag_timer *timer, int64_t deadline_ns);
/* Disarm; harmless on a timer that is not armed. */
AG_EXPORT void ag_timer_stop(ag_loop *loop, ag_timer *timer);
AG_EXPORT int ag_timer_armed(const ag_timer *timer);

/* ------------------------------------------------------------------------------------------ */
/* Coroutines: stackful, each on its own mmap'd stack with a guard page. Every wait below works
 * inside a coroutine (it parks it and runs others) and outside one (it blocks in poll()). */

typedef struct ag_coro ag_coro;
typedef void (*ag_coro_fn)(void *arg);

/* Start fn(arg) as a coroutine on loop; it first runs at the loop's next iteration. If out is
 * not NULL it receives a reference, to be dropped with ag_coro_unref(). */
AG_EXPORT int ag_coro_spawn(ag_loop *loop, ag_coro_fn fn, void *arg, ag_coro **out);
AG_EXPORT void ag_coro_unref(ag_coro *co);
/* Ask a coroutine to stop: its current and every later wait returns -ECANCELED. */
AG_EXPORT void ag_coro_cancel(ag_coro *co);
AG_EXPORT int ag_coro_done(const ag_coro *co);
/* Wait until co has finished (inside a coroutine), or -ECANCELED. */
AG_EXPORT int ag_coro_join(ag_coro *co);
/* The running coroutine, or NULL in plain code. */
AG_EXPORT ag_coro *ag_coro_self(void);

/* Let the other ready coroutines run; no-op outside a coroutine. -ECANCELED if cancelled. */
AG_EXPORT int ag_yield(void);
/* Sleep until the deadline (absolute ns). 0, or -ECANCELED. */
AG_EXPORT int ag_sleep_until(int64_t deadline_ns);
AG_EXPORT int ag_sleep_ms(int64_t ms);

enum { AG_READ = 1, AG_WRITE = 2 };
/* Wait until fd is readable or writable (AG_READ, AG_WRITE or both) or the absolute deadline
 * passes (-1: none). Returns the ready subset, -ETIMEDOUT or -ECANCELED; -EBUSY when another
 * coroutine already waits on fd for the same direction (one waiter per fd and direction); -EBADF
 * when fd is unregistered while the wait lasts, or found closed at its deadline (close an fd
 * only once nobody waits on it). In a coroutine, a wait begun after its deadline returns
 * -ETIMEDOUT at once; one whose deadline passes while it waits looks at fd once more, so
 * readiness the loop was too late to see in time still counts. Outside a coroutine the wait is a
 * poll(), which looks at fd once even when the deadline has already passed. */
AG_EXPORT int ag_wait_fd(int fd, int events, int64_t deadline_ns);
/* Register a non-blocking fd with the loop for its whole life, so that waits on it cost no system
 * call (an unregistered fd is added and removed around each wait). Call ag_fd_unregister before
 * closing the fd. Call ag_wait_fd only after an I/O call on the fd returned EAGAIN. */
AG_EXPORT int ag_fd_register(ag_loop *loop, int fd);
AG_EXPORT void ag_fd_unregister(ag_loop *loop, int fd);

/* ------------------------------------------------------------------------------------------ */
/* The HTTP/1.1 client. A client owns a keep-alive pool and its settings; it belongs to one loop
 * (or, made with no loop, to plain blocking code on one thread). */

typedef struct ag_client ag_client;
typedef struct ag_response ag_response;

/* Raw bytes and connection events, for protocol-level debugging (like curl's --trace). */
enum ag_trace_kind {
    AG_TRACE_INFO = 1, /* text from asyncget: "connected to ...", "reusing connection", ... */
    AG_TRACE_SEND,     /* bytes written to the connection (over TLS: the plaintext) */
    AG_TRACE_RECV,     /* bytes read from the connection */
    /* A request head as written (request line and fields up to the empty line), once per
     * request sent: redirects and retries each give one. The bytes also come as AG_TRACE_SEND. */
    AG_TRACE_HEAD_OUT,
    /* A response head as received (status line and fields up to the empty line), whole, once
     * per response: interim (1xx) responses and redirects each give one. Also in AG_TRACE_RECV. */
    AG_TRACE_HEAD_IN,
    /* Later versions may add kinds: a hook ignores those it does not know. */
};

typedef struct ag_trace_event {
    int kind;            /* enum ag_trace_kind */
    uint64_t request_id; /* ag_response_request_id() of the request, 0 for none */
    uint64_t conn_id;    /* ag_response_conn_id() of the connection, 0 before there is one */
    int64_t time_ns;     /* ag_now_ns() when it happened */
    const char *data;    /* the bytes (not NUL-terminated), valid during the call only */
    size_t len;
    void *user; /* ag_request.user of the request, NULL for none */
    /* The library allocates this struct: later versions add fields at the end. */
} ag_trace_event;

/* Called on the loop's thread (or the calling thread for blocking clients) as events happen. It
 * must not call into the client. */
typedef void (*ag_trace_cb)(void *arg, const ag_trace_event *ev);

/* TLS settings of https requests. A zero-filled struct means: verify the server's certificate
 * against the system's CA store and its host name (or IP address) against the URL's, TLS 1.2 or
 * later, ALPN offering http/1.1, sessions resumed. Strings are copied when the struct is handed
 * to ag_client_new or to a request; files are read when the first request with these settings
 * needs them (a file that cannot be loaded fails that request with AG_ETLS), once per client
 * and settings, not per connection. Settings out of range fail ag_client_new with -EINVAL, or
 * a request with AG_EREQUEST. A client holds at most 32 distinct settings.
 *
 * Errors of a handshake: AG_ETLS_EXPIRED, AG_ETLS_UNTRUSTED (unknown issuer, self-signed),
 * AG_ETLS_HOSTNAME, AG_ETLS_VERIFY (another certificate fault), AG_ETLS (no common version or
 * cipher, or not TLS at all), AG_ECLOSED (the server closed or reset the connection during it),
 * AG_ECONNECT_TIMEOUT; the detail text says more. Over an established connection, AG_ETLS is a
 * protocol fault (an alert, a bad record), and a body that ends at the close of the connection
 * is AG_ETRUNCATED when the close came without TLS's close_notify. */
typedef struct ag_tls_opts {
    /* Skip the certificate and host-name checks (curl's -k). The minimum version and the
     * cipher rules still apply. */
    int insecure;
    const char *ca_file;      /* PEM file of trusted CA certificates, instead of the system's */
    const char *ca_path;      /* directory of hashed CA certificates (openssl rehash), instead */
    const char *cert_file;    /* client certificate (PEM, chain allowed), for mutual TLS */
    const char *key_file;     /* its private key (PEM); NULL: read from cert_file */
    int min_version;          /* enum ag_tls_version; 0: AG_TLS_1_2 */
    int max_version;          /* enum ag_tls_version; 0: the highest the library knows */
    const char *ciphers;      /* TLS 1.2 and older, OpenSSL's syntax; NULL: OpenSSL's default */
    const char *ciphersuites; /* TLS 1.3, OpenSSL's syntax; NULL: OpenSSL's default */
    int no_session_reuse;     /* neither resume nor remember sessions */
    uint64_t reserved[15];
} ag_tls_opts;

enum ag_tls_version {
    AG_TLS_DEFAULT = 0,
    AG_TLS_1_0 = 10,
    AG_TLS_1_1 = 11,
    AG_TLS_1_2 = 12,
    AG_TLS_1_3 = 13,
};

AG_EXPORT void ag_tls_opts_init(ag_tls_opts *opts);

typedef struct ag_cookie_jar ag_cookie_jar; /* see "Cookies" below */

typedef struct ag_client_opts {
    /* NULL: every wait blocks in poll() (sequential code; such a client used inside a coroutine
     * blocks that coroutine's whole loop while it waits) */
    ag_loop *loop;
    /* Connections need file descriptors: when the process has none free (EMFILE, ENFILE; for a
     * connection or a DNS socket), a request is not failed at once. The client closes its least
     * recently used idle connection, or the request waits, in order of arrival, for one of the
     * client's connections to close or be released (taking it when it is for the same host),
     * trying again after short pauses in case others held the descriptors; when the connect
     * timeout (or pool_timeout_ms) passes first, it fails with -EMFILE or -ENFILE. */
    unsigned max_conns;          /* connections open at once, in total; 0: 1024 */
    unsigned max_conns_per_host; /* per scheme, host and port; 0: 256 */
    unsigned max_connecting;     /* connects in progress at once; 0: 256 */
    int64_t keepalive_idle_ms;   /* idle connections are closed after this; 0: 30,000 */
    int64_t pool_timeout_ms;     /* waiting for a connection slot; 0: none */
    /* The whole connection phase of one connection: name resolution and the TCP connection
     * attempts and, for https, the TLS handshake; not the wait for a pool slot. The
     * attempts follow Happy Eyeballs (happy_eyeballs_delay_ms below), so a dead first address
     * does not eat the others' time. 0: 30,000. */
    int64_t connect_timeout_ms;
    int64_t idle_timeout_ms;       /* between reads and writes of one request; 0: 60,000 */
    int64_t total_timeout_ms;      /* whole request with redirects and retries; 0: none */
    size_t max_header_bytes;       /* each response head, every byte of it; 0: 64 KiB */
    unsigned max_headers;          /* response header fields; 0: 128 */
    size_t max_body_bytes;         /* body kept in memory; 0: 64 MiB */
    unsigned max_redirects;        /* 0: 10; AG_NO_REDIRECTS to not follow */
    unsigned max_interim;          /* 1xx responses skipped before the final one; 0: 10 */
    int no_retry;                  /* do not replay an idempotent request after a stale reuse */
    int no_liveness_check;         /* do not drop idle connections the reactor saw readable */
    const char *user_agent;        /* NULL: "asyncget/" AG_VERSION */
    ag_trace_cb trace;             /* NULL: no tracing */
    void *trace_arg;               /* passed to trace */
    uint64_t expect_continue_size; /* bodies larger than this (or of unknown length) are sent
                                    * after "Expect: 100-continue"; 0: 1 MiB;
                                    * AG_NO_EXPECT: never */
    int64_t expect_timeout_ms;     /* how long to wait for "100 Continue"; 0: 1,000 */
    /* Names. Resolution never blocks the loop (c-ares on the reactor); /etc/hosts is honoured.
     * Answers are cached per name and family for their TTL; concurrent lookups of a name share
     * one query. Numeric hosts and "localhost" never reach the resolver. */
    const char *dns_servers; /* "ADDR[:PORT],...", an IPv6 ADDR in brackets when it has a
                              * port ("[::1]:5353"); NULL: the servers of /etc/resolv.conf */
    /* A server's first try; each later round over the servers waits twice as long as the one
     * before (c-ares), and the connect timeout bounds the whole. 0: 1,000 */
    int64_t dns_timeout_ms;
    int64_t dns_negative_ttl_ms; /* how long "no such name" is remembered; 0: 5,000 */
    /* Happy Eyeballs (RFC 8305): when a name has several addresses, the next connection attempt
     * starts after this delay while the earlier ones go on; the first to connect wins. 0: 250 */
    int64_t happy_eyeballs_delay_ms;
    /* NULL-terminated lists, copied. resolve: "HOST:PORT:ADDR[,ADDR]..." answers HOST at PORT
     * (or any port: "*") with these addresses, without a lookup (curl's --resolve). connect_to:
     * "HOST1:PORT1:HOST2:PORT2" connects to HOST2:PORT2 instead of HOST1:PORT1 (an empty field
     * matches any host or port, or keeps it), while the request still names HOST1 (curl's
     * --connect-to). IPv6 addresses in brackets, at most 8 per family in an entry. A malformed
     * entry fails ag_client_new with -EINVAL. */
    const char *const *resolve;
    const char *const *connect_to;
    unsigned dns_tries;      /* rounds over the servers; 0: 3 */
    unsigned dns_cache_size; /* entries (a name and a family); 0: 4,096; AG_NO_DNS_CACHE: none */
    int ip_family;           /* enum ag_ip_family: which addresses to look up and use */
    /* Queries in flight at once; more wait their turn. A burst of thousands of datagrams
     * overflows a server's socket buffer, and each lost query costs a timeout. 0: 64 */
    unsigned dns_max_queries;
    /* https: copied, strings too; NULL: the defaults of a zero-filled ag_tls_opts. A request
     * may bring its own (ag_request.tls). Connections are pooled per host, port and TLS
     * settings: a connection made with one set is never handed to a request with another. */
    const ag_tls_opts *tls;
    /* Hosts (host, port and settings) whose TLS sessions are remembered for resumption, up to
     * 4 sessions each (a TLS 1.3 ticket serves one connection); the least recently used host
     * goes first. 0: 1,024; AG_NO_TLS_SESSIONS: none */
    unsigned tls_session_cache;
    /* Every connection goes to this Unix domain stream socket instead of the URL's host and
     * port (curl's --unix-socket), pooled like TCP connections; the URL still gives the Host
     * header, the scheme (https runs TLS over the socket, checked against the URL's host) and
     * the redirects' origins. No name is looked up (ag_timings.dns is when the slot was
     * granted). A listener whose queue is full is tried again until the connect timeout. At
     * most 107 bytes (else ag_client_new fails with -EINVAL). NULL: TCP. */
    const char *unix_socket;
    /* Cookies (RFC 6265): Set-Cookie fields of every response (redirects too) are stored in
     * this jar, and every request carries the jar's cookies that match its URL, merged into one
     * Cookie field with the caller's own. Several clients (one per thread) may share a jar; it
     * must outlive them. NULL: no cookies are stored or sent (a caller's Cookie header still
     * is). */
    ag_cookie_jar *cookie_jar;
    /* Decoded bytes of one response body, whatever the sink (the memory sink also stops at
     * max_body_bytes, which counts decoded bytes): past it, AG_ETOO_LARGE. 0: no limit. */
    uint64_t max_decoded_bytes;
    /* Decoded bytes per coded byte the decoder has taken in so far (a bomb that arrives in one
     * read stops after about 1 MiB), checked once more than 1 MiB has been decoded: past it,
     * AG_EDECODE_RATIO (a decompression bomb). 0: 1,000 (zlib's best is about 1,030 for
     * zeros: a plain gzip bomb just trips it; a larger limit would let one through, a smaller
     * one refuse long runs of one byte); AG_NO_RATIO_LIMIT: none. */
    unsigned max_decode_ratio;
    /* Content codings (curl's --compressed). Non-zero: requests say "Accept-Encoding: " with
     * ag_codings() (unless they carry their own), and a body whose Content-Encoding lists only
     * codings of ag_codings() is decoded as it streams, before any sink sees it; a corrupt or
     * truncated coded body fails with AG_EDECODE, never delivers a short body silently, and a
     * Content-Encoding naming any other coding (not built, or unknown) fails with AG_EDECODE too,
     * as curl does (no_decode gets the bytes as they came). ag_response_body_bytes() stays the size
     * on the wire, ag_response_decoded_bytes() gives the decoded size. A response with
     * "Transfer-Encoding: gzip, chunked" (or another built coding before chunked) is decoded the
     * same way. 0: nothing is asked for or decoded, and such a transfer coding is refused with
     * AG_EPROTO. */
    int compressed;
    /* Credentials the request carries (its Authorization, Cookie and Proxy-Authorization
     * headers, ag_request.username/password/bearer, the URL's userinfo) are sent only to the
     * origin (scheme, host and port) of the request's URL: a redirect elsewhere goes without
     * them, and one back to that origin has them again. Non-zero: they follow every redirect
     * (curl's --location-trusted). Cookies of the jar follow their own rules either way. */
    int location_trusted;
    /* unix_socket names a socket in Linux's abstract namespace (curl's --abstract-unix-socket):
     * the name without the leading NUL. -EINVAL from ag_client_new where there is none. */
    int unix_socket_abstract;
    uint64_t reserved[31];
} ag_client_opts;

enum ag_ip_family {
    AG_IP_ANY = 0, /* IPv6 and IPv4 */
    AG_IP_V4 = 4,  /* IPv4 only */
    AG_IP_V6 = 6,  /* IPv6 only */
};

#define AG_NO_DNS_CACHE    0xffffffffu
#define AG_NO_TLS_SESSIONS 0xffffffffu

#define AG_NO_RATIO_LIMIT 0xffffffffu

#define AG_NO_REDIRECTS 0xffffffffu
#define AG_NO_EXPECT    UINT64_MAX

AG_EXPORT void ag_client_opts_init(ag_client_opts *opts);
/* Make a client. opts may be NULL for the defaults; it is copied (strings too). -EINVAL for
 * reserved words that are not zero, a negative time, or a malformed option. */
AG_EXPORT int ag_client_new(ag_client **out, const ag_client_opts *opts);
/* Close every idle connection and free the client. With requests still in flight it frees
 * nothing and returns -EBUSY: cancel them (ag_coro_cancel on the handle of ag_fetch_start, or on
 * the coroutines calling ag_fetch) and let the loop run until they end. A request is over when
 * its ag_fetch_start callback runs: the callback of the last one may free the client. The
 * client's loop must still exist. NULL is accepted (0). */
AG_EXPORT int ag_client_free(ag_client *client);

/* Counters of the client's resolver since it was made. */
typedef struct ag_dns_stats {
    uint64_t queries;      /* lookups sent to the DNS servers (one per name and family) */
    uint64_t cache_hits;   /* lookups answered by the cache (positive or negative) */
    uint64_t cache_misses; /* lookups the cache could not answer */
    uint64_t joined;       /* misses that joined a query already in flight for the same name */
    uint64_t failures;     /* queries that ended without an address */
    uint64_t entries;      /* entries in the cache now */
    uint64_t reserved[10];
} ag_dns_stats;

/* Fill *out with the client's resolver counters. -EINVAL for a NULL argument. */
AG_EXPORT int ag_client_dns_stats(const ag_client *client, ag_dns_stats *out);

/* What a client's connections and requests are doing now, and a few counters since it was made:
 * an embedder's gauges, and the proof that a pool came back to rest (every count of "now" 0
 * but the idle connections) after a storm. */
typedef struct ag_pool_stats {
    uint64_t conns;           /* connection slots in use: open (busy or idle) or being opened */
    uint64_t idle;            /* of which kept idle for reuse */
    uint64_t connecting;      /* connects (and TLS handshakes) in progress */
    uint64_t requests;        /* ag_fetch, ag_fetch_start and ag_client_resolve calls not ended */
    uint64_t waiting_slot;    /* requests queued behind max_conns or max_conns_per_host */
    uint64_t waiting_connect; /* requests queued behind max_connecting */
    uint64_t waiting_fd;      /* requests waiting for a file descriptor (the process at its
                               * RLIMIT_NOFILE) */
    uint64_t fd_waits;        /* since the client was made: times a request had to */
    uint64_t reserved[8];
} ag_pool_stats;

/* Fill *out with the client's pool counts. -EINVAL for a NULL argument. */
AG_EXPORT int ag_client_pool_stats(const ag_client *client, ag_pool_stats *out);

/* An address as the resolver returns it. */
typedef struct ag_addr {
    int family;       /* 4 or 6 */
    uint8_t addr[16]; /* network byte order; IPv4 in the first 4 bytes */
} ag_addr;

/* Resolve host as a request to it would: the client's overrides (resolve, not connect_to: the
 * first resolve entry for host, whatever its port, since no port is asked), its
 * cache and servers, its ip_family. Up to max addresses go to out, IPv6 and IPv4 interleaved in
 * the order a connect tries them; *count says how many. Waits like ag_fetch (parks a coroutine,
 * blocks plain code), at most the connect timeout. Returns 0 or AG_EDNS (no such name, or no
 * address of the family asked), AG_EDNS_FAIL, AG_EDNS_TIMEOUT, -ECANCELED, -ENOMEM, -EMFILE or
 * -ENFILE (no descriptor for a DNS socket came free before the connect timeout: like a request,
 * a lookup waits for one), or -EINVAL for a NULL argument or an empty host. */
AG_EXPORT int ag_client_resolve(ag_client *client, const char *host, ag_addr *out, size_t max,
                                size_t *count);

typedef struct ag_header {
    const char *name;
    const char *value;
} ag_header;

/* Where the request body comes from. */
enum ag_body_kind {
    AG_BODY_NONE = 0, /* no body (POST, PUT and PATCH still say Content-Length: 0) */
    AG_BODY_MEMORY,   /* body_len bytes at body (body may be NULL only when body_len is 0) */
    AG_BODY_FILE,     /* body_len bytes read with pread(2) from body_fd at body_offset */
    AG_BODY_READER,   /* body_read(body_read_arg, buf, cap) until it returns 0: length unknown,
                       * sent chunked; a negative return aborts the request (AG_EBODY). Not
                       * replayable: a redirect that keeps the body, or a retry after the first
                       * bytes were read, fails with AG_EBODY */
    AG_BODY_FORM,     /* the multipart/form-data body of form (see "Forms" below), streamed, with
                       * its length known and its Content-Type set (unless the request names
                       * its own); replayable */
};

typedef struct ag_form ag_form;

/* Where the response body goes. */
enum ag_body_sink {
    AG_SINK_MEMORY = 0, /* kept in the response, up to max_body_bytes (AG_ETOO_LARGE past it) */
    AG_SINK_FD,         /* written to sink_fd as it arrives */
    AG_SINK_CALLBACK,   /* handed to on_body as it arrives; a negative return aborts (AG_ESINK) */
    AG_SINK_DISCARD,    /* read and dropped */
};

/* One request. A zero-filled struct is a GET of url with the defaults; ag_request_init makes
 * one. Every field is checked before anything is sent (AG_EREQUEST, AG_EHEADER, AG_EURL, with a
 * detail text in the response). */
typedef struct ag_request {
    const char *method;       /* NULL: "GET" */
    const char *url;          /* absolute http or https URL */
    const ag_header *headers; /* extra or overriding headers (Host, User-Agent, Accept, ...) */
    size_t nheaders;
    int body_kind; /* enum ag_body_kind */
    const void *body;
    uint64_t body_len;
    int body_fd;
    uint64_t body_offset;
    ptrdiff_t (*body_read)(void *arg, void *buf, size_t cap);
    void *body_read_arg;
    int sink; /* enum ag_body_sink */
    int sink_fd;
    int (*on_body)(void *arg, const char *data, size_t len);
    void *on_body_arg;
    int64_t timeout_ms; /* total for this request; 0: the client's */
    int no_redirects;   /* do not follow redirects for this request */
    /* TLS settings for this request and its redirects, instead of the client's (copied by
     * ag_fetch_start); NULL: the client's */
    const ag_tls_opts *tls;
    /* Not used by the library: handed to the trace hook with every event of this request
     * (ag_trace_event.user), so that a hook can tell the requests in flight apart. */
    void *user;
    /* Basic authentication (RFC 7617): "Authorization: Basic" with username ":" password
     * (password NULL: empty). NULL username: the userinfo of url, percent-decoded, when it has
     * one (a redirect's Location never gives credentials: its userinfo is ignored). A
     * username with ':' or a control byte fails with AG_EREQUEST. */
    const char *username;
    const char *password;
    /* "Authorization: Bearer <bearer>" (RFC 6750, curl's --oauth2-bearer). Setting both bearer
     * and username fails with AG_EREQUEST. An Authorization header among headers overrides
     * either. See ag_client_opts.location_trusted for where credentials go. */
    const char *bearer;
    /* The body when body_kind is AG_BODY_FORM; it must outlive the request (ag_fetch_start does
     * not copy it), and it may serve many requests at once. */
    const ag_form *form;
    /* Deliver the body as it came, content codings and all, even when the client decodes
     * (ag_client_opts.compressed; curl's --raw); Accept-Encoding is then not sent either. */
    int no_decode;
    /* Neither send nor store the cookies of the client's jar for this request. */
    int no_cookies;
    uint64_t reserved[9];
} ag_request;

/* Zero-fill a request: a GET with every default. */
AG_EXPORT void ag_request_init(ag_request *req);

/* Per-phase timestamps (ag_now_ns() clock; 0 when the phase did not happen). */
typedef struct ag_timings {
    int64_t start;      /* ag_fetch called */
    int64_t queued;     /* a connection slot was granted (pool wait ends) */
    int64_t dns;        /* name resolved */
    int64_t connected;  /* TCP connect done (or reused connection taken) */
    int64_t tls;        /* TLS handshake done */
    int64_t sent;       /* request fully written */
    int64_t first_byte; /* first response byte read */
    int64_t done;       /* response complete */
    /* The wall clock (CLOCK_REALTIME, ns since 1970) at start: for logs and HAR. */
    int64_t wall_start;
    uint64_t reserved[7];
} ag_timings;

/* Make one request, following redirects. Inside a coroutine it waits without blocking the loop;
 * outside one it blocks. On return *out holds the response (also on failure, then carrying the
 * error and the timings so far) unless memory ran out; free it with ag_response_free. Returns 0 or
 * the request's error code; -EINVAL for a NULL client, request or out (then no response: *out is
 * NULL when out is not). */
AG_EXPORT int ag_fetch(ag_client *client, const ag_request *req, ag_response **out);

/* Callback style: start the request in a coroutine of the client's loop; cb runs exactly once,
 * from the loop, with the response (to be freed by cb's owner) and its status. The request and
 * everything it points to are copied (a reader body's callback and argument are not copied, they
 * must live until cb runs). If handle is not NULL it receives a reference to the request's
 * coroutine: ag_coro_cancel(handle) cancels the request (cb still runs, with -ECANCELED), and
 * ag_coro_unref(handle) drops the reference (at any time, also after cb ran). Returns 0 or an error
 * (then cb never runs and *handle is NULL). Safe to call from outside the loop's iteration (from a
 * foreign loop's callback): the loop's fd becomes readable. cb, like on_body, body_read and the
 * trace hook, runs on the request's coroutine stack (ag_loop_opts.stack_size, 64 KiB by default):
 * keep large buffers off it. The request's timeout_ms, and its timings, count from the call of
 * ag_fetch_start, not from the coroutine's first run. */
typedef void (*ag_fetch_cb)(ag_client *client, ag_response *resp, int status, void *arg);
AG_EXPORT int ag_fetch_start(ag_client *client, const ag_request *req, ag_fetch_cb cb, void *arg,
                             ag_coro **handle);

AG_EXPORT void ag_response_free(ag_response *resp);
AG_EXPORT int ag_response_error(const ag_response *resp); /* 0 or a negative code */
/* What went wrong and where, in a few words beside the code ("connect to 127.0.0.1:1: Connection
 * refused", "URL: port out of range"), or "" when there is nothing to add. Never NULL. */
AG_EXPORT const char *ag_response_error_detail(const ag_response *resp);
/* The request's id, unique per client from 1, as the trace hook reports it. */
AG_EXPORT uint64_t ag_response_request_id(const ag_response *resp);
/* The final response's status code as sent, 0 if none arrived. A code outside 100-599 (001-099,
 * 600-999) is delivered as sent and treated as a 5xx (RFC 9110 section 15): final, never
 * followed, and its connection not reused. A status line saying "000" is refused (AG_EPROTO),
 * since 0 means no response here. */
AG_EXPORT int ag_response_status(const ag_response *resp);
/* Reason phrase of the final response's status line ("OK"), "" when none. */
AG_EXPORT const char *ag_response_reason(const ag_response *resp);
/* HTTP minor version of the final response (0 or 1): HTTP/1.2 to 1.9 are read as HTTP/1.1 and
 * report 1 (the trace hook still shows the bytes as sent). */
AG_EXPORT int ag_response_http_minor(const ag_response *resp);
/* First value of a header, compared case-insensitively, or NULL. */
AG_EXPORT const char *ag_response_header(const ag_response *resp, const char *name);
/* Number of header fields (repeats kept, in arrival order) and the i-th of them. */
AG_EXPORT size_t ag_response_header_count(const ag_response *resp);
AG_EXPORT int ag_response_header_at(const ag_response *resp, size_t i, const char **name,
                                    const char **value);
/* Trailer fields of a chunked body, same shape. */
AG_EXPORT size_t ag_response_trailer_count(const ag_response *resp);
AG_EXPORT int ag_response_trailer_at(const ag_response *resp, size_t i, const char **name,
                                     const char **value);
/* Body kept in memory (AG_SINK_MEMORY); NUL-terminated for convenience. */
AG_EXPORT const char *ag_response_body(const ag_response *resp, size_t *len);
/* Body bytes received, whatever the sink: the size on the wire (after the chunked framing,
 * before content codings are decoded), as curl's size_download. */
AG_EXPORT uint64_t ag_response_body_bytes(const ag_response *resp);
/* Body bytes after content codings were decoded (ag_client_opts.compressed); the same as
 * ag_response_body_bytes() when nothing was decoded. */
AG_EXPORT uint64_t ag_response_decoded_bytes(const ag_response *resp);
/* Bytes of every response head received for the request (status lines, fields and the empty
 * lines, of interim responses and redirects too), as curl's size_header. */
AG_EXPORT uint64_t ag_response_header_bytes(const ag_response *resp);
/* Connections opened for the request, redirects and retries included (0: every exchange
 * reused a pooled connection, or no connect succeeded), as curl's num_connects: a connection
 * whose TLS handshake then failed counts. */
AG_EXPORT unsigned ag_response_connects(const ag_response *resp);
AG_EXPORT void ag_response_timings(const ag_response *resp, ag_timings *out);
/* Whether the final response came over a reused keep-alive connection, and that
 * connection's id (unique per client, from 1). */
AG_EXPORT int ag_response_reused(const ag_response *resp);
AG_EXPORT uint64_t ag_response_conn_id(const ag_response *resp);
/* Peer address as text, "127.0.0.1:8080" or "[::1]:8080" ("unix:/path" or "unix:@name" over a
 * Unix socket, cut to 63 bytes): the connection's, or after a failed connect the last address
 * tried; "" if none was. */
AG_EXPORT const char *ag_response_peer(const ag_response *resp);
/* The local end of the final response's connection, "127.0.0.1:54321" or "[::1]:54321" (curl's
 * local_ip and local_port): what a packet capture or a proxy's log knows the connection by. ""
 * over a Unix socket or when no connection was made. */
AG_EXPORT const char *ag_response_local(const ag_response *resp);
/* The TLS connection of a response (strings valid until the response is freed, "" when
 * unknown). */
typedef struct ag_tls_info {
    const char *version; /* "TLSv1.3" */
    const char *cipher;  /* "TLS_AES_256_GCM_SHA384" */
    const char *alpn;    /* the protocol the server chose ("http/1.1"), "" when it chose none */
    int resumed;         /* the connection's handshake resumed an earlier session */
    int verified;        /* certificate and host name were checked and passed (0: insecure) */
    const char *subject; /* the server certificate's subject, issuer (one line, RFC 2253), */
    const char *issuer;
    int64_t not_before; /* and validity, in seconds since 1970 */
    int64_t not_after;
    uint64_t reserved[8];
} ag_tls_info;

/* Fill *out with what the final response's connection negotiated: 0, -ENOENT when it was not
 * TLS (or no connection was made), -EINVAL for a NULL argument. */
AG_EXPORT int ag_response_tls(const ag_response *resp, ag_tls_info *out);

/* URL of the final response, after redirects, and how many were followed. */
AG_EXPORT const char *ag_response_url(const ag_response *resp);
AG_EXPORT unsigned ag_response_redirects(const ag_response *resp);

/* ------------------------------------------------------------------------------------------ */
/* Cookies: a jar (RFC 6265) that clients fill from Set-Cookie fields and send from
 * (ag_client_opts.cookie_jar). Domain and path matching, host-only cookies, Secure (sent over
 * https only, set only from https; http to localhost or a loopback address counts as https, as
 * in browsers and curl), HttpOnly (kept, and marked in files), Expires and Max-Age;
 * no cookie is accepted for a public suffix ("com", "co.uk": libpsl and the system's list).
 * Every function is thread-safe: clients on several threads may share one jar. Expiry counts
 * on the wall clock. */

/* Make an empty jar. 0, or -ENOMEM. */
AG_EXPORT int ag_cookie_jar_new(ag_cookie_jar **out);
/* Free a jar no client uses any more. NULL is accepted. */
AG_EXPORT void ag_cookie_jar_free(ag_cookie_jar *jar);
/* Add the cookies of a file in the Netscape format curl and browsers write (tab-separated
 * domain, subdomains flag, path, secure flag, expiry, name, value; "#HttpOnly_" before the
 * domain of an HttpOnly cookie; an expiry of 0 for a session cookie). Lines that are blank,
 * comments or malformed are skipped; expired cookies are not added. Returns the number added,
 * or a negative errno (-ENOENT for a missing file). */
AG_EXPORT int ag_cookie_jar_load(ag_cookie_jar *jar, const char *path);
/* Write the jar's unexpired cookies, session cookies included (with expiry 0), in that format:
 * to a temporary file in the same directory, then renamed over path. 0 or a negative errno. */
AG_EXPORT int ag_cookie_jar_save(ag_cookie_jar *jar, const char *path);
/* Store what "Set-Cookie: set_cookie" in a response to url would store. 1 when it was stored,
 * 0 when the rules refused it (a public suffix, a domain the URL's host does not match,
 * Secure from http, malformed), -EINVAL for a malformed url or NULL, -ENOMEM. */
AG_EXPORT int ag_cookie_jar_set(ag_cookie_jar *jar, const char *url, const char *set_cookie);
/* The Cookie field value a request to url would carry ("a=1; b=2", most specific path first),
 * in memory the caller frees with free(): *out is NULL when no cookie matches. 0, -EINVAL or
 * -ENOMEM. */
AG_EXPORT int ag_cookie_jar_header(ag_cookie_jar *jar, const char *url, char **out);
/* Cookies in the jar now (expired ones are not counted). */
AG_EXPORT size_t ag_cookie_jar_count(ag_cookie_jar *jar);
/* Forget the session cookies (those without Expires or Max-Age), as a browser does at exit
 * (curl's --junk-session-cookies after loading). */
AG_EXPORT void ag_cookie_jar_clear_session(ag_cookie_jar *jar);

/* ------------------------------------------------------------------------------------------ */
/* Forms: a multipart/form-data body (RFC 7578) for AG_BODY_FORM, built once and sent by any
 * number of requests (curl's -F). Files are read as the body is sent, never whole into memory.
 * A form is not changed by sending it; adding parts while a request sends it is not allowed. */

/* Make an empty form with a random boundary. 0, or -ENOMEM. */
AG_EXPORT int ag_form_new(ag_form **out);
/* Free a form that no request in flight uses. NULL is accepted. */
AG_EXPORT void ag_form_free(ag_form *form);
/* A part whose content is len bytes at value (copied). filename: the part's filename parameter
 * (NULL: none, a plain field); content_type: its Content-Type (NULL: none). Names and filenames
 * are sent with '"', CR and LF percent-encoded (as browsers do); a content_type with a control
 * byte, or a NULL name, is -EINVAL. 0, -EINVAL or -ENOMEM. */
AG_EXPORT int ag_form_add(ag_form *form, const char *name, const void *value, size_t len,
                          const char *filename, const char *content_type);
/* A part whose content is the file at path: opened now (its size taken now), read when the body
 * is sent. filename NULL: the last component of path; "": no filename parameter. content_type
 * NULL: "application/octet-stream". A file that is shorter when sent fails that request with
 * AG_EBODY. 0, a negative errno from open or fstat (not a regular file: -EINVAL), -ENOMEM. */
AG_EXPORT int ag_form_add_file(ag_form *form, const char *name, const char *path,
                               const char *filename, const char *content_type);
/* "multipart/form-data; boundary=..." for the Content-Type header. Never NULL. */
AG_EXPORT const char *ag_form_content_type(const ag_form *form);
/* Bytes of the whole body, as its Content-Length says. */
AG_EXPORT uint64_t ag_form_size(const ag_form *form);

#ifdef __cplusplus
}
#endif
#endif
