/* tls.c: a TLS filter over the layer below it.
 *
 * OpenSSL reads and writes through a BIO of our own whose callbacks call the layer below, and
 * that layer waits as the current call allows (parks the coroutine, or blocks in poll(), or says
 * -EAGAIN for a call that must not wait). So OpenSSL runs as if on a blocking socket, and the
 * same code works over TCP, over a proxy tunnel or over another TLS layer. A wait may happen
 * inside an OpenSSL call; other coroutines then use the thread's OpenSSL error queue meanwhile:
 * every call starts with a clear queue, a BIO callback about to wait keeps the first queued
 * error aside, and the result is classified before anything else can run. */
#include "tls/tls.h"

#include "dns/numeric.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CTXS    32          /* distinct settings per client */
#define GATHER      (16 * 1024) /* small pieces of a write are sent as one record */
#define WRITE_SLICE (1 << 20)   /* bytes handed to one SSL_write */

/* ---- contexts and their sessions ---- */

/* Sessions kept per host: a TLS 1.3 ticket is offered once (OpenSSL marks it spent when it
 * goes into a ClientHello, RFC 8446 appendix C.4), so connections that start together each need
 * their own; servers send one or two per handshake. A TLS 1.2 session serves any number. */
#define TICKETS 4

typedef struct session {
    struct session *next;                /* in its hash chain */
    struct session *lru_prev, *lru_next; /* most recently used first */
    SSL_SESSION *sess[TICKETS];          /* oldest first */
    int n;
    char key[]; /* "host:port" */
} session;

struct ag__tls_ctx {
    ag_tls_opts o; /* a copy; its strings point into strs */
    char *strs;
    SSL_CTX *ctx;
    unsigned id;
    /* the session cache: a hash of chains, and an LRU list bounding it */
    session **buckets;
    size_t nbuckets, count, max;
    session *lru_head, *lru_tail;
};

struct ag__tls_set {
    ag__tls_ctx *ctx[MAX_CTXS];
    unsigned n;
    unsigned sessions;
};

int ag__tls_set_new(ag__tls_set **out, unsigned sessions)
{
    ag__tls_set *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->sessions = sessions;
    *out = s;
    return 0;
}

static void session_free(session *e)
{
    for (int i = 0; i < e->n; i++)
        SSL_SESSION_free(e->sess[i]);
    free(e);
}

static void ctx_free(ag__tls_ctx *x)
{
    if (!x)
        return;
    for (session *e = x->lru_head, *next; e; e = next) {
        next = e->lru_next;
        session_free(e);
    }
    free(x->buckets);
    SSL_CTX_free(x->ctx);
    free(x->strs);
    free(x);
}

void ag__tls_set_free(ag__tls_set *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < s->n; i++)
        ctx_free(s->ctx[i]);
    free(s);
}

static uint64_t hash_key(const char *k)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 1099511628211ULL;
    return h;
}

static session **session_slot(ag__tls_ctx *x, const char *key)
{
    session **p = &x->buckets[hash_key(key) & (x->nbuckets - 1)];
    while (*p && strcmp((*p)->key, key) != 0)
        p = &(*p)->next;
    return p;
}

static void lru_unlink(ag__tls_ctx *x, session *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        x->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        x->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push(ag__tls_ctx *x, session *e)
{
    e->lru_prev = NULL;
    e->lru_next = x->lru_head;
    if (x->lru_head)
        x->lru_head->lru_prev = e;
    x->lru_head = e;
    if (!x->lru_tail)
        x->lru_tail = e;
}

static void session_drop(ag__tls_ctx *x, const char *key)
{
    if (!x->buckets)
        return;
    session **p = session_slot(x, key);
    session *e = *p;
    if (!e)
        return;
    *p = e->next;
    lru_unlink(x, e);
    x->count--;
    session_free(e);
}

/* Keep sess (a reference the caller gives) for key, beside the newest ones key has. */
static void session_store(ag__tls_ctx *x, const char *key, SSL_SESSION *sess)
{
    if (!x->buckets) {
        size_t n = 64;
        while (n < x->max && n < 4096)
            n *= 2;
        if (!(x->buckets = calloc(n, sizeof *x->buckets))) {
            SSL_SESSION_free(sess);
            return;
        }
        x->nbuckets = n;
    }
    session **p = session_slot(x, key);
    session *e = *p;
    if (e) {
        if (e->n == TICKETS) {
            SSL_SESSION_free(e->sess[0]);
            memmove(e->sess, e->sess + 1, (TICKETS - 1) * sizeof *e->sess);
            e->n--;
        }
        e->sess[e->n++] = sess;
        lru_unlink(x, e);
        lru_push(x, e);
        return;
    }
    size_t kl = strlen(key) + 1;
    e = malloc(sizeof *e + kl);
    if (!e) {
        SSL_SESSION_free(sess);
        return;
    }
    memcpy(e->key, key, kl);
    e->sess[0] = sess;
    e->n = 1;
    e->next = NULL;
    *p = e;
    lru_push(x, e);
    if (++x->count > x->max)
        session_drop(x, x->lru_tail->key);
}

/* The newest session of key that can still be offered (spent ones are dropped), or NULL. A
 * session found counts as a use for the LRU order. */
static SSL_SESSION *session_find(ag__tls_ctx *x, const char *key)
{
    if (!x->buckets)
        return NULL;
    session *e = *session_slot(x, key);
    if (!e)
        return NULL;
    while (e->n > 0 && !SSL_SESSION_is_resumable(e->sess[e->n - 1]))
        SSL_SESSION_free(e->sess[--e->n]);
    if (e->n == 0) {
        session_drop(x, key);
        return NULL;
    }
    lru_unlink(x, e);
    lru_push(x, e);
    return e->sess[e->n - 1];
}

static bool version_ok(int v)
{
    return v == 0 || (v >= AG_TLS_1_0 && v <= AG_TLS_1_3);
}

static int proto_version(int v)
{
    static const int map[] = {TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION, TLS1_3_VERSION};
    return v ? map[v - AG_TLS_1_0] : 0;
}

int ag__tls_opts_check(const ag_tls_opts *o, const char **why)
{
    *why = NULL;
    if (!o)
        return 0;
    for (size_t i = 0; i < sizeof o->reserved / sizeof *o->reserved; i++) {
        if (o->reserved[i]) {
            *why = "TLS options: reserved words are not zero (start from ag_tls_opts_init)";
            return -EINVAL;
        }
    }
    if (!version_ok(o->min_version) || !version_ok(o->max_version)) {
        *why = "TLS options: unknown version (AG_TLS_1_0 ... AG_TLS_1_3)";
        return -EINVAL;
    }
    int lo = o->min_version ? o->min_version : AG_TLS_1_2;
    if (o->max_version && o->max_version < lo) {
        *why = "TLS options: max_version below min_version (the minimum is TLS 1.2 by default)";
        return -EINVAL;
    }
    return 0;
}

static bool str_same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool opts_same(const ag_tls_opts *a, const ag_tls_opts *b)
{
    return !a->insecure == !b->insecure && a->min_version == b->min_version &&
           a->max_version == b->max_version && !a->no_session_reuse == !b->no_session_reuse &&
           str_same(a->ca_file, b->ca_file) && str_same(a->ca_path, b->ca_path) &&
           str_same(a->cert_file, b->cert_file) && str_same(a->key_file, b->key_file) &&
           str_same(a->ciphers, b->ciphers) && str_same(a->ciphersuites, b->ciphersuites);
}

int ag__tls_opts_copy(ag_tls_opts *dst, char **strs, const ag_tls_opts *o)
{
    *dst = *o;
    const char **f[] = {&dst->ca_file,  &dst->ca_path, &dst->cert_file,
                        &dst->key_file, &dst->ciphers, &dst->ciphersuites};
    size_t size = 1;
    for (size_t i = 0; i < sizeof f / sizeof *f; i++)
        if (*f[i])
            size += strlen(*f[i]) + 1;
    char *p = *strs = malloc(size);
    if (!p)
        return -ENOMEM;
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        if (*f[i]) {
            size_t n = strlen(*f[i]) + 1;
            memcpy(p, *f[i], n);
            *f[i] = p;
            p += n;
        }
    }
    return 0;
}

static int new_session_cb(SSL *ssl, SSL_SESSION *sess);

static const unsigned char alpn_http11[] = "\x08http/1.1";

/* OpenSSL raises "malloc failure" where memory ran out: that is -ENOMEM, no fault of the peer's
 * nor of the protocol. */
static bool out_of_memory(unsigned long e)
{
    return e && ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE;
}

/* OpenSSL 3.0 keeps a certificate whose public key it could not decode (it tolerates key types it
 * does not know), also when the decoding failed only for lack of memory: a key half decoded
 * measures 0 security bits ("CA certificate key too weak"). It computes the extensions of a
 * certificate once, when first needed, and keeps what it got also when an allocation failed
 * there, without a word in the error queue: a CA marked invalid, or missing a flag or its path
 * length ("certificate chain too long"). Such a CA would fail every later verification of the
 * client. So every certificate of the store is read again from its DER, now, under the load,
 * and must measure the same: if not, an allocation failed in one of the readings and the load
 * failed (a later request loads again). */
static int key_bits(X509 *x)
{
    EVP_PKEY *k = X509_get0_pubkey(x);
    return k ? EVP_PKEY_get_security_bits(k) : -1;
}

static bool same_reading(X509 *a, X509 *b)
{
    return key_bits(a) == key_bits(b) &&
           X509_get_extension_flags(a) == X509_get_extension_flags(b) &&
           X509_get_pathlen(a) == X509_get_pathlen(b) &&
           X509_get_key_usage(a) == X509_get_key_usage(b) &&
           X509_get_extended_key_usage(a) == X509_get_extended_key_usage(b);
}

static bool cert_intact(X509 *x)
{
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    const unsigned char *p = der;
    X509 *again = len > 0 ? d2i_X509(NULL, &p, len) : NULL;
    bool intact = again && same_reading(x, again);
    X509_free(again);
    OPENSSL_free(der);
    return intact;
}

static bool store_intact(SSL_CTX *ctx)
{
    STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx));
    bool intact = true;
    for (int i = 0; intact && i < sk_X509_OBJECT_num(objs); i++) {
        X509 *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
        intact = !x || cert_intact(x);
    }
    ERR_clear_error(); /* what the failed decodings queued */
    return intact;
}

/* Make the SSL_CTX for x->o: everything that costs (the CA store above all) happens here,
 * once, and never per connection. */
static int ctx_make(ag__tls_ctx *x, const char **why)
{
    const ag_tls_opts *o = &x->o;
    SSL_CTX *ctx = x->ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return -ENOMEM;
    SSL_CTX_set_app_data(ctx, x);
    SSL_CTX_set_min_proto_version(ctx, proto_version(o->min_version ? o->min_version : AG_TLS_1_2));
    SSL_CTX_set_max_proto_version(ctx, proto_version(o->max_version));
    /* Idle connections give their 2 x 16 KiB buffers back; read-ahead takes whole records (and
     * whatever follows) in one read. A write that had to wait may be retried from another
     * buffer holding the same bytes. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_alpn_protos(ctx, alpn_http11, sizeof alpn_http11 - 1);
    if (o->ciphers && SSL_CTX_set_cipher_list(ctx, o->ciphers) != 1) {
        *why = "TLS options: no cipher matches the ciphers list";
        return AG_ETLS;
    }
    if (o->ciphersuites && SSL_CTX_set_ciphersuites(ctx, o->ciphersuites) != 1) {
        *why = "TLS options: the ciphersuites list is malformed";
        return AG_ETLS;
    }
    if (!o->insecure) {
        int ok = o->ca_file || o->ca_path
                     ? SSL_CTX_load_verify_locations(ctx, o->ca_file, o->ca_path)
                     : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1 && out_of_memory(ERR_peek_error()))
            return -ENOMEM;
        if (ok != 1) {
            *why = o->ca_file || o->ca_path ? "TLS options: cannot load ca_file or ca_path"
                                            : "cannot load the system's CA certificates";
            return AG_ETLS;
        }
        if (!store_intact(ctx))
            return -ENOMEM;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    if (o->cert_file) {
        const char *key = o->key_file ? o->key_file : o->cert_file;
        if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1) {
            *why = "TLS options: cannot load cert_file";
            return AG_ETLS;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            *why = "TLS options: cannot load key_file, or it does not match cert_file";
            return AG_ETLS;
        }
    } else if (o->key_file) {
        *why = "TLS options: key_file without cert_file";
        return AG_ETLS;
    }
    if (!o->no_session_reuse && x->max) {
        /* Sessions are ours to keep, per host and port: OpenSSL's own client cache would not
         * tell two hosts apart. */
        SSL_CTX_set_session_cache_mode(ctx,
                                       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    }
    return 0;
}

int ag__tls_ctx_get(ag__tls_set *s, const ag_tls_opts *o, ag__tls_ctx **out, const char **why)
{
    static const ag_tls_opts defaults;
    if (!o)
        o = &defaults;
    *why = NULL;
    for (unsigned i = 0; i < s->n; i++) {
        if (opts_same(&s->ctx[i]->o, o)) {
            *out = s->ctx[i];
            return 0;
        }
    }
    if (s->n == MAX_CTXS) {
        *why = "too many distinct TLS settings in one client (32)";
        return AG_EREQUEST;
    }
    ag__tls_ctx *x = calloc(1, sizeof *x);
    if (!x || ag__tls_opts_copy(&x->o, &x->strs, o) < 0) {
        free(x);
        return -ENOMEM;
    }
    x->max = s->sessions;
    x->id = s->n + 1;
    ERR_clear_error();
    int rc = ctx_make(x, why);
    ERR_clear_error();
    if (rc < 0) {
        /* Not kept: a later request with the same settings tries again (a CA file that
         * appears later is loaded then) and gets the same error meanwhile. */
        ctx_free(x);
        return rc;
    }
    s->ctx[s->n++] = x;
    *out = x;
    return 0;
}

unsigned ag__tls_ctx_id(const ag__tls_ctx *x)
{
    return x->id;
}

/* ---- the layer ---- */

typedef struct tls {
    ag__layer l;
    SSL *ssl;
    ag__tls_ctx *x;
    /* How the layer below may wait during the current OpenSSL call. */
    ag__deadline d;
    bool watch_read;
    /* What the layer below said during the current call. */
    bool readable;          /* a write gave way to readability */
    int below_err;          /* an error of the layer below (not -EAGAIN) */
    unsigned long kept_err; /* the first queued error, kept aside before a wait */
    bool up;                /* the handshake completed */
    /* OpenSSL asked for more bytes (WANT_READ) and none came from below since: whatever its
     * buffer holds is an incomplete record, which does not make the connection readable. */
    bool starved;
    bool broken; /* a fatal error: no close_notify, no reuse of the session */
    char key[];  /* "host:port", the session cache's key */
} tls;

static pthread_once_t bio_once = PTHREAD_ONCE_INIT;
static BIO_METHOD *bio_method;

/* Before the layer below may wait: the errors OpenSSL queued so far are this call's, and
 * another coroutine will clear the queue meanwhile. */
static void keep_errors(tls *t, bool may_wait)
{
    if (may_wait && !t->kept_err)
        t->kept_err = ERR_peek_error();
}

static int bio_write(BIO *b, const char *data, int len)
{
    tls *t = BIO_get_data(b);
    ag__layer *below = t->l.below;
    BIO_clear_retry_flags(b);
    keep_errors(t, t->d.total != AG__NO_WAIT);
    struct iovec v = {(void *)data, (size_t)len};
    ssize_t n = below->ops->writev(below, &v, 1, &t->d, t->watch_read);
    if (n > 0)
        return (int)n;
    if (n == -EAGAIN || n == AG__LAYER_READABLE) {
        t->readable = n == AG__LAYER_READABLE;
        BIO_set_retry_write(b);
        return -1;
    }
    t->below_err = n < 0 ? (int)n : -EIO;
    return -1;
}

static int bio_read(BIO *b, char *buf, int len)
{
    tls *t = BIO_get_data(b);
    ag__layer *below = t->l.below;
    BIO_clear_retry_flags(b);
    int64_t deadline = ag__deadline_next(&t->d);
    keep_errors(t, deadline != AG__NO_WAIT);
    ssize_t n = below->ops->read(below, buf, (size_t)len, deadline);
    if (n > 0)
        t->starved = false;
    if (n >= 0)
        return (int)n; /* 0: the end of the stream, which OpenSSL judges itself */
    if (n == -EAGAIN) {
        BIO_set_retry_read(b);
        return -1;
    }
    t->below_err = (int)n;
    return -1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0; /* writes go out as they are made */
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void bio_setup(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "asyncget layer");
    if (m && BIO_meth_set_write(m, bio_write) == 1 && BIO_meth_set_read(m, bio_read) == 1 &&
        BIO_meth_set_ctrl(m, bio_ctrl) == 1 && BIO_meth_set_create(m, bio_create) == 1)
        bio_method = m;
    else
        BIO_meth_free(m);
}

/* Start an OpenSSL call: a clear error queue, nothing heard from below yet. */
static void call_begin(tls *t, const ag__deadline *d, bool watch_read)
{
    ERR_clear_error();
    t->d = *d;
    t->watch_read = watch_read;
    t->readable = false;
    t->below_err = 0;
    t->kept_err = 0;
}

/* The first error of the call that just returned, whether still queued or kept aside. */
static unsigned long call_error(tls *t)
{
    unsigned long e = ERR_peek_error();
    return e ? e : t->kept_err;
}

static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    tls *t = SSL_get_app_data(ssl);
    if (!t || !SSL_SESSION_is_resumable(sess))
        return 0;
    session_store(t->x, t->key, sess);
    return 1; /* the reference is the cache's now */
}

static bool unexpected_eof(unsigned long e)
{
    return ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
}

static ssize_t tls_read(ag__layer *l, void *buf, size_t len, int64_t deadline)
{
    tls *t = (tls *)l;
    ag__conn *c = l->conn;
    ag__deadline d = {deadline, 0};
    call_begin(t, &d, false);
    int n = SSL_read(t->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    if (n > 0)
        return n;
    int e = SSL_get_error(t->ssl, n);
    unsigned long err = call_error(t);
    ERR_clear_error();
    switch (e) {
    case SSL_ERROR_ZERO_RETURN:
        return 0; /* close_notify: a clean end */
    case SSL_ERROR_WANT_READ:
        t->starved = true;
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        c->want = AG_WRITE; /* a read that has to send (a key update's answer) */
        return -EAGAIN;
    default:
        break;
    }
    t->broken = true;
    if (t->below_err)
        return t->below_err;
    if (!err || unexpected_eof(err)) {
        /* The end of the stream without close_notify: an end all the same for a response
         * whose framing says where it ends, a truncation for one that ends at the close. */
        c->eof_unclean = true;
        return 0;
    }
    if (out_of_memory(err))
        return -ENOMEM;
    c->why = ERR_reason_error_string(err);
    return AG_ETLS;
}

static ssize_t tls_writev(ag__layer *l, const struct iovec *iov, int iovcnt, const ag__deadline *d,
                          bool watch_read)
{
    tls *t = (tls *)l;
    const void *p = iov[0].iov_base;
    size_t len = iov[0].iov_len;
    char *gather = NULL;
    if (iovcnt > 1 && len < GATHER) {
        /* A head and a small body make one record, not two. The same iov always gathers the
         * same bytes, which a retry needs. */
        if (!(gather = malloc(GATHER)))
            return -ENOMEM;
        len = 0;
        for (int i = 0; i < iovcnt && len < GATHER; i++) {
            size_t k = iov[i].iov_len < GATHER - len ? iov[i].iov_len : GATHER - len;
            memcpy(gather + len, iov[i].iov_base, k);
            len += k;
        }
        p = gather;
    }
    if (len > WRITE_SLICE)
        len = WRITE_SLICE;
    call_begin(t, d, watch_read);
    int n = SSL_write(t->ssl, p, (int)len);
    int e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, n);
    unsigned long err = n > 0 ? 0 : call_error(t);
    ERR_clear_error();
    free(gather);
    if (n > 0)
        return n;
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
        return t->readable ? AG__LAYER_READABLE : -EAGAIN;
    t->broken = true;
    if (t->below_err)
        return t->below_err;
    if (!err || unexpected_eof(err))
        return -EPIPE;
    if (out_of_memory(err))
        return -ENOMEM;
    l->conn->why = ERR_reason_error_string(err);
    return AG_ETLS;
}

/* Decrypted bytes, or whole records read ahead and not yet decrypted: a read finds them
 * without the socket (which may be drained, so that no readiness will ever announce them). */
static bool tls_pending(ag__layer *l)
{
    tls *t = (tls *)l;
    return !t->starved && SSL_has_pending(t->ssl) == 1;
}

static bool tls_is_alive(ag__layer *l)
{
    tls *t = (tls *)l;
    ag__conn *c = l->conn;
    if (c->io.loop && !ag__io_ready(&c->io, AG_READ) && !tls_pending(l))
        return true;
    /* Without a reactor nothing records readiness: the socket itself must be asked. */
    if (!c->io.loop)
        c->io.ready |= ag__poll_bits(AG_READ);
    /* Something came while the connection was idle: a session ticket or a key update is
     * housekeeping that OpenSSL takes in and a peek then finds nothing; a close_notify, a reset,
     * an end of stream or bytes nobody asked for make the connection unfit. */
    ag__deadline d = {AG__NO_WAIT, 0};
    call_begin(t, &d, false);
    char b;
    int n = SSL_peek(t->ssl, &b, 1);
    int e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, n);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ) {
        t->starved = true;
        return true;
    }
    if (e != SSL_ERROR_NONE && e != SSL_ERROR_ZERO_RETURN)
        t->broken = true;
    return false;
}

static void tls_close(ag__layer *l)
{
    tls *t = (tls *)l;
    if (t->up && !t->broken) {
        /* close_notify, without waiting for the peer's: an orderly end also keeps the session
         * resumable (OpenSSL forgets a session whose connection ended without it). */
        ag__deadline d = {AG__NO_WAIT, 0};
        call_begin(t, &d, false);
        SSL_shutdown(t->ssl);
        ERR_clear_error();
    }
    SSL_set_app_data(t->ssl, NULL);
    SSL_free(t->ssl);
    ag__layer *below = l->below;
    free(t);
    below->ops->close(below);
}

static const ag__layer_ops tls_ops = {tls_read, tls_writev, tls_pending, tls_is_alive, tls_close};

/* ---- the handshake ---- */

static int verify_error(long v, const char **why)
{
    *why = X509_verify_cert_error_string(v);
    switch (v) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return AG_ETLS_EXPIRED;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
        return AG_ETLS_UNTRUSTED;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return AG_ETLS_HOSTNAME;
    default:
        return AG_ETLS_VERIFY;
    }
}

/* One line of an X509 name, RFC 2253, into a fresh string. */
static char *name_text(const X509_NAME *name)
{
    BIO *m = BIO_new(BIO_s_mem());
    if (!m)
        return NULL;
    char *s = NULL;
    if (X509_NAME_print_ex(m, name, 0, XN_FLAG_RFC2253) >= 0) {
        char *p;
        long n = BIO_get_mem_data(m, &p);
        if (n >= 0 && (s = malloc((size_t)n + 1))) {
            memcpy(s, p, (size_t)n);
            s[n] = 0;
        }
    }
    BIO_free(m);
    return s;
}

static int64_t asn1_seconds(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

/* What the handshake negotiated, for the responses of the connection. */
static ag__tls_info *info_make(SSL *ssl, bool verified)
{
    X509 *cert = SSL_get0_peer_certificate(ssl);
    char *subject = cert ? name_text(X509_get_subject_name(cert)) : NULL;
    char *issuer = cert ? name_text(X509_get_issuer_name(cert)) : NULL;
    const unsigned char *alpn;
    unsigned alpn_len;
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    const char *parts[] = {SSL_get_version(ssl), SSL_get_cipher_name(ssl), subject ? subject : "",
                           issuer ? issuer : ""};
    size_t size = sizeof(ag__tls_info) + alpn_len + 1;
    for (size_t i = 0; i < 4; i++)
        size += strlen(parts[i] ? parts[i] : "") + 1;
    ag__tls_info *info = malloc(size);
    if (info) {
        char *p = (char *)(info + 1);
        const char **dst[] = {&info->version, &info->cipher, &info->subject, &info->issuer};
        for (size_t i = 0; i < 4; i++) {
            const char *s = parts[i] ? parts[i] : "";
            size_t n = strlen(s) + 1;
            memcpy(p, s, n);
            *dst[i] = p;
            p += n;
        }
        if (alpn_len) /* none chosen: alpn is NULL */
            memcpy(p, alpn, alpn_len);
        p[alpn_len] = 0;
        info->alpn = p;
        info->refs = 1;
        info->resumed = SSL_session_reused(ssl);
        info->verified = verified;
        info->not_before = cert ? asn1_seconds(X509_get0_notBefore(cert)) : 0;
        info->not_after = cert ? asn1_seconds(X509_get0_notAfter(cert)) : 0;
    }
    free(subject);
    free(issuer);
    return info;
}

/* Append the strings of parts (NULL ends them) to buf, cut at size; returns the new length. */
static size_t put_parts(char *buf, size_t n, size_t size, const char *const *parts)
{
    for (; *parts; parts++)
        for (const char *s = *parts; *s && n < size; s++)
            buf[n++] = *s;
    return n;
}

/* "2027-01-31 23:59:59 GMT"; no printf on a coroutine stack. */
static void date_text(int64_t t, char out[24])
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (!gmtime_r(&tt, &tm)) {
        out[0] = 0;
        return;
    }
    int v[] = {tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec};
    const char *sep = "-- ::";
    char *p = out;
    for (int k = 0; k < 6; k++) {
        int w = k == 0 ? 4 : 2, x = v[k] < 0 ? 0 : v[k];
        for (int d = w - 1; d >= 0; d--, x /= 10)
            p[d] = (char)('0' + x % 10);
        p += w;
        if (k < 5)
            *p++ = sep[k];
    }
    memcpy(p, " GMT", 5);
}

static void trace_handshake(ag__conn *c, const ag__tls_info *i)
{
    if (!c->trace)
        return;
    char buf[512];
    const char *done[] = {
        "TLS handshake done: ",      i->version, " ", i->cipher, i->resumed ? " (resumed)" : "",
        i->alpn[0] ? ", ALPN " : "", i->alpn,    NULL};
    ag__conn_trace(c, AG_TRACE_INFO, buf, put_parts(buf, 0, sizeof buf, done));
    if (!i->subject[0] && !i->issuer[0])
        return;
    char expires[24];
    date_text(i->not_after, expires);
    const char *cert[] = {"server certificate: subject: ",
                          i->subject,
                          "; issuer: ",
                          i->issuer,
                          "; expires: ",
                          expires,
                          i->verified ? "; verified" : "; NOT verified",
                          NULL};
    ag__conn_trace(c, AG_TRACE_INFO, buf, put_parts(buf, 0, sizeof buf, cert));
}

int ag__tls_start(ag__conn *c, void *ctx, const char *host, uint16_t port, int64_t deadline_ns,
                  const char **why)
{
    ag__tls_ctx *x = ctx;
    *why = NULL;
    pthread_once(&bio_once, bio_setup);
    if (!bio_method)
        return -ENOMEM;
    /* "example.com." is the same name as "example.com", which is what certificates and SNI
     * carry (RFC 6066 section 3: no trailing dot in SNI). */
    size_t hl = strlen(host);
    if (hl > 1 && host[hl - 1] == '.')
        hl--;
    tls *t = calloc(1, sizeof *t + hl + 8);
    if (!t)
        return -ENOMEM;
    memcpy(t->key, host, hl); /* the name alone first, then the cache key: "name:port" */
    const char *name = t->key;
    t->x = x;
    t->l = (ag__layer){&tls_ops, c->top, c};
    BIO *bio = NULL;
    int rc = -ENOMEM;
    if (!(t->ssl = SSL_new(x->ctx)) || !(bio = BIO_new(bio_method)))
        goto fail;
    BIO_set_data(bio, t);
    SSL_set_bio(t->ssl, bio, bio);
    SSL_set_app_data(t->ssl, t);
    SSL_set_connect_state(t->ssl);
    uint8_t ip[16];
    bool literal = ag__ipv4_parse(name, ip) || ag__ipv6_parse(name, ip);
    if (!literal && SSL_set_tlsext_host_name(t->ssl, name) != 1) /* SNI: names only */
        goto fail;
    if (!x->o.insecure) {
        int ok = literal ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name)
                         : SSL_set1_host(t->ssl, name);
        if (ok != 1)
            goto fail;
        SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    }
    t->key[hl] = ':'; /* OpenSSL keeps copies of the name */
    ag__fmt_u64(t->key + hl + 1, port);
    SSL_SESSION *sess = x->o.no_session_reuse ? NULL : session_find(x, t->key);
    if (sess)
        SSL_set_session(t->ssl, sess);

    ag__deadline d = {deadline_ns, 0};
    call_begin(t, &d, false);
    int n = SSL_connect(t->ssl);
    int e = n == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, n);
    unsigned long err = n == 1 ? 0 : call_error(t);
    long verify = SSL_get_verify_result(t->ssl);
    ERR_clear_error();
    if (n == 1 && !x->o.insecure && !SSL_get0_peer_certificate(t->ssl)) {
        /* An anonymous cipher (which a ciphers setting can allow) has no certificate to
         * verify: that is no verified peer. */
        *why = "the server sent no certificate (anonymous cipher)";
        rc = AG_ETLS_VERIFY;
        goto fail;
    }
    if (n == 1) {
        if (!(c->tls = info_make(t->ssl, !x->o.insecure)))
            goto fail;
        t->up = true;
        c->top = &t->l;
        trace_handshake(c, c->tls);
        return 0;
    }
    if (sess)
        session_drop(x, t->key); /* a session that did not help is not offered again */
    if (t->below_err == -ETIMEDOUT || t->below_err == -ECANCELED || t->below_err == -ENOMEM) {
        rc = t->below_err;
    } else if (t->below_err == -ECONNRESET || t->below_err == -EPIPE) {
        rc = AG_ECLOSED;
        *why = t->below_err == -ECONNRESET
                   ? "the server reset the connection during the TLS handshake"
                   : "the server closed the connection during the TLS handshake";
    } else if (t->below_err) {
        rc = t->below_err; /* the socket's own error says most */
    } else if (out_of_memory(err) || verify == X509_V_ERR_OUT_OF_MEM) {
        /* Before the verdict on the certificate: one that could not be checked for lack of
         * memory is no untrusted certificate. */
        rc = -ENOMEM;
    } else if (!x->o.insecure && verify != X509_V_OK) {
        rc = verify_error(verify, why);
    } else if ((e == SSL_ERROR_SYSCALL && !err) || unexpected_eof(err)) {
        rc = AG_ECLOSED;
        *why = "the server closed the connection during the TLS handshake";
    } else {
        rc = AG_ETLS;
        *why = err ? ERR_reason_error_string(err) : NULL;
        if (!*why)
            *why = "TLS handshake failed";
    }
fail:
    if (t->ssl) {
        SSL_set_app_data(t->ssl, NULL);
        SSL_free(t->ssl); /* and the BIO */
    } else {
        BIO_free(bio);
    }
    free(t);
    return rc;
}

const char *ag__tls_lib_version(void)
{
    return OpenSSL_version(OPENSSL_VERSION_STRING);
}
