/* url.h: parsing, checking and resolving http and https URLs, and checking header fields. */
#ifndef AG_HTTP_URL_H
#define AG_HTTP_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A parsed URL. Every string is NUL-terminated and owned by the struct (one allocation, freed by
 * ag__url_free). */
enum ag__proto { AG__HTTP = 1, AG__HTTPS };

typedef struct ag__url {
    char *scheme;         /* "http" or "https", lower case */
    enum ag__proto proto; /* the scheme, to compare */
    char *host;           /* lower case; an IPv6 literal without its brackets */
    uint16_t port;        /* explicit, or 80 / 443 by scheme */
    bool port_given;      /* the URL named the port */
    bool ipv6;            /* host is an IPv6 literal */
    char *userinfo;       /* "user:pass" before '@', or NULL (never sent; kept for the caller) */
    char *target;         /* path and query as sent on the request line, "/" when empty; never a
                           * fragment */
    char *buf;            /* the allocation the pointers above point into */
    const char *why;      /* after a failed parse: what was wrong, a static text */
} ag__url;

/* The port a URL of this scheme has when it names none: 80 or 443. */
uint16_t ag__url_default_port(const ag__url *url);

/* Parse an absolute http or https URL. Rejects (AG_EURL): control bytes (0x00-0x1f, 0x7f), spaces
 * and non-ASCII bytes anywhere, a bad percent escape ("%zz", "%4"), an empty or malformed host,
 * a port outside 1..65535 or with non-digits, a malformed IPv6 literal. Another scheme gives
 * AG_ESCHEME. The fragment ("#...") is dropped. Returns 0 or a negative code; on failure *url is
 * left zeroed but for url->why, and needs no free. */
int ag__url_parse(ag__url *url, const char *text);
void ag__url_free(ag__url *url);

/* Resolve a reference (a Location header value: absolute, scheme-relative "//host/p",
 * absolute-path "/p", or relative "p", "../p", "?q") against base, per RFC 3986 section 5,
 * including dot-segment removal, and parse the result into *out. */
int ag__url_resolve(ag__url *out, const ag__url *base, const char *ref);

/* Resolve a Location field value against base as a redirect does: as ag__url_resolve, after
 * percent-encoding (%XX, upper-case hex) each space and each byte 0x80-0xFF outside the
 * reference's authority, as browsers and curl do with the Locations servers send. Escapes already
 * there are kept as written, so "%0d%0a" stays three bytes each and can never become a line end
 * in the request. Everything ag__url_resolve refuses is still refused (AG_EURL with out->why):
 * control bytes (HTAB, DEL), a backslash, a bad escape, and a space or non-ASCII byte in the
 * host or port. */
int ag__url_resolve_location(ag__url *out, const ag__url *base, const char *loc);
/* A Location value that names something to follow: not NULL, empty or white space only. A 3xx
 * without one is the answer itself. */
bool ag__url_location_given(const char *value);

/* The authority for a Host header: "host", "host:port" when the port is not the scheme's
 * default, "[v6]" / "[v6]:port" for IPv6. Returns the length written (without NUL) or
 * -ENOSPC. */
int ag__url_host_header(const ag__url *url, char *buf, size_t size);

/* Header checks used for request headers (no header injection) and response parsing. */
/* A token (RFC 9110 tchar: ALPHA DIGIT and !#$%&'*+-.^_`|~), non-empty. */
bool ag__http_is_token(const char *s, size_t len);
/* A field value: no CR, LF, NUL or other control byte except HTAB; obs-text (>= 0x80) allowed. */
bool ag__http_is_field_value(const char *s, size_t len);

#endif
