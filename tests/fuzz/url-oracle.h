/* url-oracle.h: RFC 3986 read directly, for the URL and Location fuzz targets: the split of
 * appendix B, the scheme syntax of section 3.1, remove_dot_segments of section 5.2.4, and the
 * promises a parsed http URL keeps (what reaches the request line and the Host header). Written
 * here, apart from http/url.c, so that a bug there cannot judge itself. */
#ifndef AG_TESTS_FUZZ_URL_ORACLE_H
#define AG_TESTS_FUZZ_URL_ORACLE_H

#include "http/url.h"
#include "tests/fuzz/fuzz-common.h"

#include <arpa/inet.h>
#include <strings.h>

/* A piece of a string; p NULL: the component is not there (not the same as empty). */
typedef struct {
    const char *p;
    size_t n;
} o_span;

typedef struct {
    o_span scheme, authority, path, query, fragment;
} o_parts;

/* ^(([^:/?#]+):)?(//([^/?#]*))?([^?#]*)(\?([^#]*))?(#(.*))? of appendix B, on s[0, len). */
static inline void o_split(const char *s, size_t len, o_parts *out)
{
    memset(out, 0, sizeof *out);
    size_t i = 0, k = 0;
    while (k < len && !strchr(":/?#", s[k]))
        k++;
    if (k > 0 && k < len && s[k] == ':') {
        out->scheme = (o_span){s, k};
        i = k + 1;
    }
    if (len - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
        k = i + 2;
        while (k < len && !strchr("/?#", s[k]))
            k++;
        out->authority = (o_span){s + i + 2, k - i - 2};
        i = k;
    }
    k = i;
    while (k < len && s[k] != '?' && s[k] != '#')
        k++;
    out->path = (o_span){s + i, k - i};
    i = k;
    if (i < len && s[i] == '?') {
        k = i + 1;
        while (k < len && s[k] != '#')
            k++;
        out->query = (o_span){s + i + 1, k - i - 1};
        i = k;
    }
    if (i < len && s[i] == '#')
        out->fragment = (o_span){s + i + 1, len - i - 1};
}

static inline bool o_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline bool o_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (section 3.1). */
static inline bool o_scheme_ok(o_span s)
{
    if (!s.n || !o_alpha((unsigned char)s.p[0]))
        return false;
    for (size_t i = 1; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (!o_alpha(c) && !o_digit(c) && c != '+' && c != '-' && c != '.')
            return false;
    }
    return true;
}

static inline bool o_span_is(o_span s, const char *lit)
{
    return s.p && s.n == strlen(lit) && strncasecmp(s.p, lit, s.n) == 0;
}

/* unreserved / sub-delims of section 2. */
static inline bool o_unreserved(unsigned char c)
{
    return o_alpha(c) || o_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static inline bool o_sub_delim(unsigned char c)
{
    return c && strchr("!$&'()*+,;=", c);
}

/* Visible ASCII only, each '%' starting two hex digits: what the header url.h promises of
 * every URL and reference it takes (no backslash either). */
static inline bool o_clean(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '\\')
            return false;
        if (c == '%') {
            if (n - i < 3 || fuzz_hex(s[i + 1]) < 0 || fuzz_hex(s[i + 2]) < 0)
                return false;
            i += 2;
        }
    }
    return true;
}

/* remove_dot_segments, section 5.2.4, step by step as the RFC writes it: an input buffer whose
 * prefix is removed or replaced, and an output buffer. out has room for n + 1 bytes. */
static inline size_t o_remove_dots(const char *path, size_t n, char *out)
{
    char *in = malloc(n + 2);
    if (!in)
        abort();
    memcpy(in, path, n);
    size_t il = n, ol = 0;
#define O_STARTS(lit) (il >= strlen(lit) && memcmp(in, lit, strlen(lit)) == 0)
#define O_IS(lit)     (il == strlen(lit) && memcmp(in, lit, il) == 0)
#define O_DROP(k)     (memmove(in, in + (k), il - (k)), il -= (k))
    while (il > 0) {
        if (O_STARTS("../")) {
            O_DROP(3); /* A */
        } else if (O_STARTS("./")) {
            O_DROP(2); /* A */
        } else if (O_STARTS("/./")) {
            O_DROP(2); /* B: "/./" becomes "/" */
        } else if (O_IS("/.")) {
            il = 1; /* B: "/." becomes "/" */
            in[0] = '/';
        } else if (O_STARTS("/../") || O_IS("/..")) {
            /* C: the prefix becomes "/", and the output loses its last segment and the '/'
             * before it. */
            if (O_IS("/.."))
                il = 1;
            else
                O_DROP(3);
            in[0] = '/';
            while (ol > 0 && out[ol - 1] != '/')
                ol--;
            if (ol > 0)
                ol--;
        } else if (O_IS(".") || O_IS("..")) {
            il = 0; /* D */
        } else {
            /* E: the first segment, with its leading '/' if any, up to the next '/'. */
            size_t k = in[0] == '/' ? 1 : 0;
            while (k < il && in[k] != '/')
                k++;
            memcpy(out + ol, in, k);
            ol += k;
            O_DROP(k);
        }
    }
#undef O_STARTS
#undef O_IS
#undef O_DROP
    free(in);
    out[ol] = 0;
    return ol;
}

/* The promises of a parsed http URL: what goes to the request line and Host header is clean.
 * Returns NULL, or what broke. */
static inline const char *o_url_promises(const ag__url *u)
{
    if (!u->scheme || !u->host || !u->target)
        return "a part is missing";
    bool https = strcmp(u->scheme, "https") == 0;
    if (!https && strcmp(u->scheme, "http") != 0)
        return "the scheme is neither http nor https";
    if (u->proto != (https ? AG__HTTPS : AG__HTTP))
        return "proto disagrees with the scheme";
    if (u->port == 0)
        return "port 0";
    if (!u->port_given && u->port != (https ? 443 : 80))
        return "a port not given is not the scheme's default";
    /* The request line "GET <target> HTTP/1.1": origin-form starts with '/', carries no
     * fragment, and holds no byte that would end or split the line. */
    if (u->target[0] != '/')
        return "the request target does not start with '/'";
    if (strchr(u->target, '#'))
        return "the request target holds a fragment";
    if (!o_clean(u->target, strlen(u->target)))
        return "the request target holds a control byte, space, non-ASCII byte or bad escape";
    size_t hn = strlen(u->host);
    if (!hn || hn > 255)
        return "the host is empty or longer than 255 bytes";
    if (u->ipv6) {
        struct in6_addr a;
        if (inet_pton(AF_INET6, u->host, &a) != 1)
            return "an IPv6 host that inet_pton does not read";
    } else {
        /* reg-name (section 3.2.2), lower case. */
        for (size_t i = 0; i < hn; i++) {
            unsigned char c = (unsigned char)u->host[i];
            if (c >= 'A' && c <= 'Z')
                return "the host is not lower case";
            if (!o_unreserved(c) && !o_sub_delim(c) && c != '%')
                return "the host holds a byte a reg-name may not";
        }
        if (!o_clean(u->host, hn))
            return "the host holds a bad escape";
    }
    if (u->userinfo) {
        for (const char *p = u->userinfo; *p; p++) {
            unsigned char c = (unsigned char)*p;
            if (!o_unreserved(c) && !o_sub_delim(c) && c != ':' && c != '%')
                return "the userinfo holds a byte it may not";
        }
        if (!o_clean(u->userinfo, strlen(u->userinfo)))
            return "the userinfo holds a bad escape";
    }
    /* The Host header: the authority without userinfo, the port only when not the default. */
    char want[300], got[300];
    if (u->port != (https ? 443 : 80))
        snprintf(want, sizeof want, "%s%s%s:%u", u->ipv6 ? "[" : "", u->host, u->ipv6 ? "]" : "",
                 u->port);
    else
        snprintf(want, sizeof want, "%s%s%s", u->ipv6 ? "[" : "", u->host, u->ipv6 ? "]" : "");
    int n = ag__url_host_header(u, got, sizeof got);
    if (n < 0 || (size_t)n != strlen(got) || strcmp(got, want) != 0)
        return "the Host header is not the host and the port";
    return NULL;
}

/* A URL written back as text: scheme://[userinfo@]host[:port]target, the port when given. */
static inline char *o_url_text(const ag__url *u)
{
    size_t size = strlen(u->scheme) + strlen(u->host) + strlen(u->target) +
                  (u->userinfo ? strlen(u->userinfo) : 0) + 32;
    char *s = malloc(size);
    if (!s)
        abort();
    char port[8] = "";
    if (u->port_given)
        snprintf(port, sizeof port, ":%u", u->port);
    snprintf(s, size, "%s://%s%s%s%s%s%s%s", u->scheme, u->userinfo ? u->userinfo : "",
             u->userinfo ? "@" : "", u->ipv6 ? "[" : "", u->host, u->ipv6 ? "]" : "", port,
             u->target);
    return s;
}

static inline bool o_str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Two parsed URLs name the same thing, part by part. */
static inline bool o_url_eq(const ag__url *a, const ag__url *b)
{
    return o_str_eq(a->scheme, b->scheme) && a->proto == b->proto && o_str_eq(a->host, b->host) &&
           a->port == b->port && a->port_given == b->port_given && a->ipv6 == b->ipv6 &&
           o_str_eq(a->userinfo, b->userinfo) && o_str_eq(a->target, b->target);
}

#endif
