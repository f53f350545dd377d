/* cert.c: the bench server's TLS context: a P-256 key and a self-signed certificate for
 * 127.0.0.1 and localhost made at start, written as PEM to a temporary file the clients trust. */
#include "bench.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define CERT_DAYS 7

/* Where the certificate was written, for the cleanup that may run from a signal handler. */
static char cert_dir[256];
static char cert_file[300];

static bool add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, v3, nid, value);
    if (!ext)
        return false;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1;
}

/* A certificate that is its own CA: the client trusts it as the only entry of its CA file and
 * still verifies the chain, the validity and the host name (IP SAN or DNS SAN) as for any
 * server. Subject and authority key identifiers are there for OpenSSL's strict checks. */
static X509 *make_cert(EVP_PKEY *key)
{
    X509 *x = X509_new();
    if (!x)
        return NULL;
    uint64_t serial = 0;
    if (getrandom(&serial, sizeof serial, 0) != sizeof serial)
        serial = (uint64_t)getpid();
    serial >>= 1; /* positive, at most 63 bits */
    X509V3_CTX v3;
    X509_NAME *name = X509_get_subject_name(x);
    bool ok = X509_set_version(x, X509_VERSION_3) == 1 &&
              ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial ? serial : 1) == 1 &&
              X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
              X509_gmtime_adj(X509_getm_notAfter(x), (long)CERT_DAYS * 86400) &&
              X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                         (const unsigned char *)"asyncget-bench loopback", -1, -1,
                                         0) == 1 &&
              X509_set_issuer_name(x, name) == 1 && X509_set_pubkey(x, key) == 1;
    if (ok) {
        X509V3_set_ctx_nodb(&v3);
        X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
        ok = add_ext(x, &v3, NID_basic_constraints, "critical,CA:TRUE") &&
             add_ext(x, &v3, NID_key_usage, "critical,digitalSignature,keyCertSign") &&
             add_ext(x, &v3, NID_ext_key_usage, "serverAuth") &&
             add_ext(x, &v3, NID_subject_key_identifier, "hash") &&
             add_ext(x, &v3, NID_authority_key_identifier, "keyid:always") &&
             add_ext(x, &v3, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost") &&
             X509_sign(x, key, EVP_sha256()) > 0;
    }
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static bool write_pem(X509 *x, char *path, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(cert_dir, sizeof cert_dir, "%s/asyncget-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(cert_dir)) {
        cert_dir[0] = '\0';
        return false;
    }
    snprintf(cert_file, sizeof cert_file, "%s/ca.pem", cert_dir);
    FILE *f = fopen(cert_file, "w");
    bool ok = f && PEM_write_X509(f, x) == 1;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok) {
        cert_cleanup();
        return false;
    }
    snprintf(path, len, "%s", cert_file);
    return true;
}

void cert_cleanup(void)
{
    /* Only unlink and rmdir: this may run from a signal handler. */
    if (cert_file[0])
        unlink(cert_file);
    if (cert_dir[0])
        rmdir(cert_dir);
    cert_file[0] = cert_dir[0] = '\0';
}

struct ssl_ctx_st *cert_server_ctx(int version, char *path, size_t len)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = key ? make_cert(key) : NULL;
    SSL_CTX *ctx = x ? SSL_CTX_new(TLS_server_method()) : NULL;
    bool ok = ctx != NULL;
    if (ok) {
        int lo = version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION;
        int hi = version == 12 ? TLS1_2_VERSION : TLS1_3_VERSION;
        static const unsigned char sid_ctx[] = "asyncget-bench";
        ok = SSL_CTX_set_min_proto_version(ctx, lo) == 1 &&
             SSL_CTX_set_max_proto_version(ctx, hi) == 1 && SSL_CTX_use_certificate(ctx, x) == 1 &&
             SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1 &&
             SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1) == 1 &&
             write_pem(x, path, len);
    }
    if (ok) {
        /* Read ahead: one read() takes in whatever the client sent, several records at once, so
         * a request costs one read as in plain text; SSL_has_pending then tells what is buffered.
         * One TLS 1.3 ticket per connection is all a client needs to resume the next one; TLS
         * 1.2 resumes by tickets too (stateless, the default) or by the session cache. */
        SSL_CTX_set_read_ahead(ctx, 1);
        SSL_CTX_set_num_tickets(ctx, 1);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    } else {
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(ctx);
        ctx = NULL;
    }
    X509_free(x);
    EVP_PKEY_free(key);
    return ctx;
}
