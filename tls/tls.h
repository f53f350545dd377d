/* tls.h: TLS (OpenSSL 3) as a filter layer over whatever layer a connection has below it, the
 * contexts of a client (one per distinct settings) and their session caches. */
#ifndef AG_TLS_TLS_H
#define AG_TLS_TLS_H

#include "asyncget.h"
#include "net/net.h"

/* A client's TLS contexts: each holds one set of settings, its SSL_CTX (the CA store loaded
 * once) and the sessions remembered for resumption, keyed by host and port. */
typedef struct ag__tls_set ag__tls_set;
typedef struct ag__tls_ctx ag__tls_ctx;

/* sessions: sessions kept per context (0: none). */
int ag__tls_set_new(ag__tls_set **out, unsigned sessions);
/* Free the set; no connection of its contexts may be open. NULL is accepted. */
void ag__tls_set_free(ag__tls_set *set);

/* Check settings before anything uses them: 0, or -EINVAL with *why a static text (reserved
 * words not zero, an unknown version, a minimum above the maximum). NULL is fine. */
int ag__tls_opts_check(const ag_tls_opts *o, const char **why);

/* A copy of o in *dst whose strings live in one allocation, *strs (the caller frees it). */
int ag__tls_opts_copy(ag_tls_opts *dst, char **strs, const ag_tls_opts *o);

/* The context for settings o (NULL: the defaults), made on first use. 0 with *out, AG_ETLS with
 * *why (a CA file, certificate or key that cannot be loaded, a cipher list that matches
 * nothing), -ENOMEM, or AG_EREQUEST when the set holds too many distinct settings already. */
int ag__tls_ctx_get(ag__tls_set *set, const ag_tls_opts *o, ag__tls_ctx **out, const char **why);
/* A number unique among the set's contexts, for pool keys. */
unsigned ag__tls_ctx_id(const ag__tls_ctx *x);

/* The filter of https (an ag__filter_start; ctx is an ag__tls_ctx): put a TLS layer over c's
 * top layer and run the handshake within the deadline: SNI and the
 * host-name check for names, an IP check for IP literals, a remembered session offered. 0, or
 * -ETIMEDOUT, -ECANCELED, AG_ECLOSED (the peer closed or reset during the handshake),
 * AG_ETLS_EXPIRED, AG_ETLS_UNTRUSTED, AG_ETLS_HOSTNAME, AG_ETLS_VERIFY, AG_ETLS (the handshake
 * failed: protocol version, no shared cipher, not TLS), -ENOMEM; *why says more (static). On
 * failure c keeps its layers below (the caller closes c). */
int ag__tls_start(ag__conn *c, void *ctx, const char *host, uint16_t port, int64_t deadline_ns,
                  const char **why);

/* "3.0.11": the version of the OpenSSL library in use. */
const char *ag__tls_lib_version(void);

#endif
