/* auth.c: the credentials of a request (Basic from username/password or the URL's userinfo,
 * Bearer), made once per request, and the rule of where they may go. */
#include "http/internal.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* The value of one percent-escape digit, or -1. */
static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode n bytes of s into out (at least n bytes): the decoded length. The URL parser
 * has checked every escape already; a bad one is copied as it is. */
static size_t pct_decode(const char *s, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 &&
            (lo = hexval(s[i + 2])) >= 0) {
            out[k++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[k++] = s[i];
        }
    }
    return k;
}

static bool has_ctl(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return true;
    return false;
}

/* "Basic " and the base64 of user ":" pass (RFC 7617), in memory the caller frees. */
static int basic(const char *user, size_t ulen, const char *pass, size_t plen, char **out)
{
    size_t raw_len = ulen + 1 + plen;
    char *raw = malloc(raw_len + 1);
    /* base64: 4 bytes per 3, rounded up, and the NUL EVP_EncodeBlock writes */
    char *v = malloc(6 + (raw_len + 2) / 3 * 4 + 1);
    if (!raw || !v) {
        free(raw);
        free(v);
        return -ENOMEM;
    }
    memcpy(raw, user, ulen);
    raw[ulen] = ':';
    memcpy(raw + ulen + 1, pass, plen);
    memcpy(v, "Basic ", 6);
    EVP_EncodeBlock((unsigned char *)v + 6, (const unsigned char *)raw, (int)raw_len);
    OPENSSL_cleanse(raw, raw_len);
    free(raw);
    *out = v;
    return 0;
}

int ag__auth_make(const ag_request *req, const ag__url *url, char **out, const char **why)
{
    *out = NULL;
    if (req->bearer && req->username) {
        *why = "both bearer and username are set";
        return AG_EREQUEST;
    }
    if (req->bearer) {
        size_t n = strlen(req->bearer);
        if (n == 0 || !ag__http_is_field_value(req->bearer, n)) {
            *why = "bearer is empty or holds CR, LF or another control byte";
            return AG_EREQUEST;
        }
        char *v = malloc(7 + n + 1);
        if (!v)
            return -ENOMEM;
        memcpy(v, "Bearer ", 7);
        memcpy(v + 7, req->bearer, n + 1);
        *out = v;
        return 0;
    }
    if (req->username) {
        const char *pass = req->password ? req->password : "";
        size_t ulen = strlen(req->username), plen = strlen(pass);
        /* RFC 7617 section 2: neither may hold a control byte; the user-id no ':'. */
        if (memchr(req->username, ':', ulen) || has_ctl(req->username, ulen)) {
            *why = "username holds ':' or a control byte";
            return AG_EREQUEST;
        }
        if (has_ctl(pass, plen)) {
            *why = "password holds a control byte";
            return AG_EREQUEST;
        }
        if (ulen > 65536 || plen > 65536) {
            *why = "username or password longer than 64 KiB";
            return AG_EREQUEST;
        }
        return basic(req->username, ulen, pass, plen, out);
    }
    if (!url->userinfo || !url->userinfo[0])
        return 0;
    /* "user:password", each part percent-decoded after the split, so that an escaped ':' in a
     * password stays in the password. */
    const char *ui = url->userinfo;
    const char *colon = strchr(ui, ':');
    size_t uraw = colon ? (size_t)(colon - ui) : strlen(ui);
    size_t praw = colon ? strlen(colon + 1) : 0;
    char *dec = malloc(uraw + praw + 2);
    if (!dec)
        return -ENOMEM;
    size_t ulen = pct_decode(ui, uraw, dec);
    char *pass = dec + ulen + 1;
    size_t plen = colon ? pct_decode(colon + 1, praw, pass) : 0;
    int rc;
    if (memchr(dec, ':', ulen) || has_ctl(dec, ulen)) {
        *why = "the URL's user name holds an escaped ':' or a control byte";
        rc = AG_EURL;
    } else if (has_ctl(pass, plen)) {
        *why = "the URL's password holds an escaped control byte";
        rc = AG_EURL;
    } else {
        rc = basic(dec, ulen, pass, plen, out);
    }
    OPENSSL_cleanse(dec, uraw + praw + 2);
    free(dec);
    return rc;
}

bool ag__same_origin(const ag__url *a, const ag__url *b)
{
    return a->proto == b->proto && a->port == b->port && strcmp(a->host, b->host) == 0;
}
