/* url.c: parsing, checking and resolving http and https URLs (RFC 3986), and header checks. */
#include "http/url.h"

#include "asyncget.h"
#include "core/str.h"
#include "dns/numeric.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* A piece of the caller's text: not NUL-terminated. */
typedef struct span {
    const char *p;
    size_t n;
} span;

/* The five parts of RFC 3986 appendix B, found without judging their contents. The fragment is
 * not kept: nothing here ever uses it. */
typedef struct parts {
    span scheme, authority, path, query;
    bool has_scheme, has_authority, has_query;
} parts;

/* The authority of an http URL once checked: spans into the caller's text. */
typedef struct authority {
    span userinfo, host;
    bool has_userinfo, ipv6, port_given;
    uint16_t port;
} authority;

/* ---------------------------------------------------------------------------------------------
 * Character classes of RFC 3986 section 2 and RFC 9110 section 5.6.2. They take unsigned char
 * values so that bytes >= 0x80 never index anything or match by sign extension. */

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_unreserved(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static bool is_sub_delim(unsigned char c)
{
    switch (c) {
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
        return true;
    default:
        return false;
    }
}

static char to_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool span_eq_nocase(span s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.n != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (to_lower(s.p[i]) != lit[i])
            return false;
    }
    return true;
}

static uint16_t default_port(bool https)
{
    return https ? 443 : 80;
}

uint16_t ag__url_default_port(const ag__url *url)
{
    return default_port(url->proto == AG__HTTPS);
}

/* ---------------------------------------------------------------------------------------------
 * Splitting and checking. */

/* The rules every URL and reference obey wherever a byte sits, fragment included: visible ASCII
 * only (no control byte, space, DEL or byte >= 0x80), no backslash (which some servers and
 * browsers read as '/'), and each '%' starting a two-hex-digit escape. Passing this is what
 * keeps a request line and Host header free of injected bytes. */
static const char bad_bytes[] = "URL: control byte, space, non-ASCII byte, backslash or bad "
                                "%-escape";

static bool check_bytes(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '\\')
            return false;
        if (c == '%') {
            if (len - i < 3 || ag__hex_value(s[i + 1]) < 0 || ag__hex_value(s[i + 2]) < 0)
                return false;
            i += 2;
        }
    }
    return true;
}

/* The length of the scheme at the start of s ("ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )"
 * followed by ':'), or 0 when s does not start with one. */
static size_t scheme_length(const char *s, size_t len)
{
    if (len == 0 || !is_alpha((unsigned char)s[0]))
        return 0;
    for (size_t i = 1; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ':')
            return i;
        if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.')
            return 0;
    }
    return 0;
}

/* The index of the first byte of s[from, len) found in stops, or len. */
static size_t find_any(const char *s, size_t from, size_t len, const char *stops)
{
    for (size_t i = from; i < len; i++) {
        if (s[i] != '\0' && strchr(stops, s[i]))
            return i;
    }
    return len;
}

/* Splits s per the regular expression of RFC 3986 appendix B. */
static void split(const char *s, size_t len, parts *out)
{
    size_t i = 0;
    size_t n = scheme_length(s, len);

    memset(out, 0, sizeof *out);
    if (n > 0) {
        out->has_scheme = true;
        out->scheme = (span){s, n};
        i = n + 1;
    }
    if (len - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
        size_t end = find_any(s, i + 2, len, "/?#");
        out->has_authority = true;
        out->authority = (span){s + i + 2, end - (i + 2)};
        i = end;
    }
    size_t end = find_any(s, i, len, "?#");
    out->path = (span){s + i, end - i};
    i = end;
    if (i < len && s[i] == '?') {
        end = find_any(s, i + 1, len, "#");
        out->has_query = true;
        out->query = (span){s + i + 1, end - (i + 1)};
    }
}

/* userinfo of RFC 3986: unreserved, sub-delims, ':' and escapes (checked by check_bytes). */
static bool is_userinfo(span s)
{
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (!is_unreserved(c) && !is_sub_delim(c) && c != ':' && c != '%')
            return false;
    }
    return true;
}

/* reg-name of RFC 3986, made non-empty: host names and IPv4 addresses. Escapes are kept as
 * written, not decoded. */
static bool is_reg_name(span s)
{
    if (s.n == 0)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (!is_unreserved(c) && !is_sub_delim(c) && c != '%')
            return false;
    }
    return true;
}

/* Splits and checks "[userinfo@]host[:port]". The first '@' ends the userinfo; a second one
 * lands in the host, where it is not allowed. An empty port ("h:") is the default port, as
 * RFC 3986 section 3.2.3 allows, and counts as not given. */
static int parse_authority(span a, bool https, authority *out, const char **why)
{
    const char *at = memchr(a.p, '@', a.n);
    span rest = a;

    memset(out, 0, sizeof *out);
    if (at) {
        out->has_userinfo = true;
        out->userinfo = (span){a.p, (size_t)(at - a.p)};
        if (!is_userinfo(out->userinfo)) {
            *why = "URL: bad byte in the user information";
            return AG_EURL;
        }
        rest = (span){at + 1, a.n - out->userinfo.n - 1};
    }

    const char *after;
    if (rest.n > 0 && rest.p[0] == '[') {
        const char *close = memchr(rest.p, ']', rest.n);
        if (!close) {
            *why = "URL: '[' without ']' in the host";
            return AG_EURL;
        }
        out->ipv6 = true;
        out->host = (span){rest.p + 1, (size_t)(close - rest.p - 1)};
        /* IPvFuture ("[v1.x]") and zone IDs (RFC 6874, "fe80::1%25eth0") are refused too. */
        uint8_t bytes[16];
        if (!ag__ipv6_parse_n(out->host.p, out->host.n, bytes)) {
            *why = "URL: malformed IPv6 address";
            return AG_EURL;
        }
        after = close + 1;
    } else {
        const char *colon = memchr(rest.p, ':', rest.n);
        after = colon ? colon : rest.p + rest.n;
        out->host = (span){rest.p, (size_t)(after - rest.p)};
        if (!is_reg_name(out->host)) {
            *why = out->host.n ? "URL: bad byte in the host" : "URL: empty host";
            return AG_EURL;
        }
        if (out->host.n > 255) {
            *why = "URL: host longer than 255 bytes";
            return AG_EURL;
        }
    }

    const char *end = rest.p + rest.n;
    out->port = default_port(https);
    if (after == end)
        return 0;
    if (*after != ':') {
        *why = "URL: bytes after the IPv6 address";
        return AG_EURL;
    }
    if (after + 1 == end)
        return 0;
    unsigned long v = 0;
    for (const char *p = after + 1; p < end; p++) {
        if (!is_digit((unsigned char)*p)) {
            *why = "URL: port is not a number";
            return AG_EURL;
        }
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > 65535) {
            *why = "URL: port out of range";
            return AG_EURL;
        }
    }
    if (v == 0) {
        *why = "URL: port 0";
        return AG_EURL;
    }
    out->port = (uint16_t)v;
    out->port_given = true;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Parsing. */

static char *put(char *w, const char *s, size_t n)
{
    memcpy(w, s, n);
    return w + n;
}

/* The path and query are sent as written, escapes included. Beyond what check_bytes rejects
 * they may hold any visible ASCII byte: characters RFC 3986 would have escaped ('"', '<', '|',
 * '{' and the like) are common in real links and harmless on the request line. */
int ag__url_parse(ag__url *url, const char *text)
{
    assert(url && text);
    memset(url, 0, sizeof *url);

    size_t len = strlen(text);
    if (!check_bytes(text, len)) {
        url->why = bad_bytes;
        return AG_EURL;
    }

    parts pt;
    split(text, len, &pt);
    if (!pt.has_scheme) {
        url->why = "URL: no scheme (http:// or https://)";
        return AG_EURL;
    }
    bool https = span_eq_nocase(pt.scheme, "https");
    if (!https && !span_eq_nocase(pt.scheme, "http")) {
        url->why = "URL: scheme is not http or https";
        return AG_ESCHEME;
    }
    if (!pt.has_authority) {
        url->why = "URL: no host (expected scheme://host)";
        return AG_EURL;
    }

    authority au;
    const char *why = NULL;
    int rc = parse_authority(pt.authority, https, &au, &why);
    if (rc < 0) {
        url->why = why;
        return rc;
    }

    /* One allocation holds every string: scheme, host, userinfo and target, each with a NUL. */
    const char *scheme = https ? "https" : "http";
    size_t scheme_n = strlen(scheme);
    size_t path_n = pt.path.n > 0 ? pt.path.n : 1;
    size_t target_n = path_n + (pt.has_query ? 1 + pt.query.n : 0);
    size_t size = scheme_n + 1 + au.host.n + 1 + target_n + 1;
    if (au.has_userinfo)
        size += au.userinfo.n + 1;
    char *buf = malloc(size);
    if (!buf)
        return -ENOMEM;

    char *w = buf;
    url->scheme = w;
    w = put(w, scheme, scheme_n + 1);

    url->host = w;
    for (size_t i = 0; i < au.host.n; i++)
        *w++ = to_lower(au.host.p[i]);
    *w++ = '\0';

    if (au.has_userinfo) {
        url->userinfo = w;
        w = put(w, au.userinfo.p, au.userinfo.n);
        *w++ = '\0';
    }

    url->target = w;
    if (pt.path.n > 0)
        w = put(w, pt.path.p, pt.path.n);
    else
        *w++ = '/';
    if (pt.has_query) {
        *w++ = '?';
        w = put(w, pt.query.p, pt.query.n);
    }
    *w++ = '\0';
    assert((size_t)(w - buf) == size);

    url->proto = https ? AG__HTTPS : AG__HTTP;
    url->port = au.port;
    url->port_given = au.port_given;
    url->ipv6 = au.ipv6;
    url->buf = buf;
    return 0;
}

void ag__url_free(ag__url *url)
{
    if (!url)
        return;
    free(url->buf);
    memset(url, 0, sizeof *url);
}

/* ---------------------------------------------------------------------------------------------
 * Resolving. */

/* Drops the last segment and the '/' before it from the output s[0, w). */
static size_t drop_last_segment(const char *s, size_t w)
{
    while (w > 0 && s[w - 1] != '/')
        w--;
    return w > 0 ? w - 1 : 0;
}

static bool at_is(const char *s, size_t left, const char *lit)
{
    size_t n = strlen(lit);
    return left >= n && memcmp(s, lit, n) == 0;
}

/* remove_dot_segments of RFC 3986 section 5.2.4, in place; returns the new length. The output
 * never grows faster than the input is consumed (w <= r), so both share s. Where the RFC
 * replaces a prefix of the input with "/", the last consumed byte is overwritten with '/' and
 * left unconsumed. */
static size_t remove_dot_segments(char *s, size_t n)
{
    size_t r = 0, w = 0;
    while (r < n) {
        size_t left = n - r;
        const char *in = s + r;
        if (at_is(in, left, "../")) {
            r += 3; /* rule A */
        } else if (at_is(in, left, "./")) {
            r += 2; /* rule A */
        } else if (at_is(in, left, "/./")) {
            r += 2; /* rule B: "/./x" becomes "/x" */
        } else if (left == 2 && at_is(in, left, "/.")) {
            r += 1; /* rule B: "/." becomes "/" */
            s[r] = '/';
        } else if (at_is(in, left, "/../")) {
            r += 3; /* rule C */
            w = drop_last_segment(s, w);
        } else if (left == 3 && at_is(in, left, "/..")) {
            r += 2; /* rule C */
            s[r] = '/';
            w = drop_last_segment(s, w);
        } else if ((left == 1 && in[0] == '.') || (left == 2 && at_is(in, left, ".."))) {
            r = n; /* rule D */
        } else {
            /* Rule E: the first segment, with its leading '/' if any, moves to the output. */
            size_t k = 1;
            while (k < left && in[k] != '/')
                k++;
            memmove(s + w, in, k);
            w += k;
            r += k;
        }
    }
    return w;
}

/* The base's authority as it would be written in a URL: "[userinfo@]host[:port]". The port is
 * kept only when the base named it, so that port_given carries over to the result. */
static size_t base_authority(const ag__url *base, char *w)
{
    char *start = w;
    if (base->userinfo) {
        w = put(w, base->userinfo, strlen(base->userinfo));
        *w++ = '@';
    }
    if (base->ipv6)
        *w++ = '[';
    w = put(w, base->host, strlen(base->host));
    if (base->ipv6)
        *w++ = ']';
    if (base->port_given) {
        *w++ = ':';
        w += ag__put_u64(w, base->port);
    }
    return (size_t)(w - start);
}

/* Builds the target URL of RFC 3986 section 5.2.2 as text, then parses it, so the result gets
 * every check a URL given directly gets. The fragment of ref is dropped (it is never sent); it is
 * still checked by check_bytes like the rest of ref. */
int ag__url_resolve(ag__url *out, const ag__url *base, const char *ref)
{
    assert(out && base && base->buf && ref);
    memset(out, 0, sizeof *out);

    size_t len = strlen(ref);
    if (!check_bytes(ref, len)) {
        out->why = bad_bytes;
        return AG_EURL;
    }
    parts r;
    split(ref, len, &r);

    const char *btarget = base->target;
    const char *bq = strchr(btarget, '?');
    span bpath = {btarget, bq ? (size_t)(bq - btarget) : strlen(btarget)};
    span bquery = {bq ? bq + 1 : "", bq ? strlen(bq + 1) : 0};

    span scheme = {base->scheme, strlen(base->scheme)};
    bool use_base_authority = false;
    span dir = {"", 0}, path = r.path, query = r.query;
    bool has_query = r.has_query, remove_dots = true;

    if (r.has_scheme) {
        scheme = r.scheme;
    } else if (!r.has_authority) {
        use_base_authority = true;
        if (r.path.n == 0) {
            /* The base path is taken as it is, without dot removal (section 5.2.2). */
            path = bpath;
            remove_dots = false;
            if (!r.has_query) {
                query = bquery;
                has_query = bq != NULL;
            }
        } else if (r.path.p[0] != '/') {
            /* Merge (section 5.2.3): the base path up to its last '/'. The base always has an
             * authority and a target starting with '/', so that '/' exists. */
            size_t k = bpath.n;
            while (k > 0 && bpath.p[k - 1] != '/')
                k--;
            dir = (span){bpath.p, k};
        }
    }

    bool has_authority = use_base_authority || r.has_authority;
    size_t auth_max = use_base_authority ? (base->userinfo ? strlen(base->userinfo) + 1 : 0) +
                                               strlen(base->host) + 2 + 6
                                         : r.authority.n;
    size_t size = scheme.n + 3 + auth_max + dir.n + path.n + 1 + query.n + 1;
    char *text = malloc(size);
    if (!text)
        return -ENOMEM;

    char *w = put(text, scheme.p, scheme.n);
    *w++ = ':';
    if (has_authority) {
        *w++ = '/';
        *w++ = '/';
        if (use_base_authority)
            w += base_authority(base, w);
        else
            w = put(w, r.authority.p, r.authority.n);
    }
    char *path_start = w;
    w = put(w, dir.p, dir.n);
    w = put(w, path.p, path.n);
    if (remove_dots)
        w = path_start + remove_dot_segments(path_start, (size_t)(w - path_start));
    if (has_query) {
        *w++ = '?';
        w = put(w, query.p, query.n);
    }
    *w = '\0';
    assert((size_t)(w - text) < size);

    int rc = ag__url_parse(out, text);
    free(text);
    return rc;
}

bool ag__url_location_given(const char *value)
{
    return value && value[strspn(value, " \t")] != '\0';
}

int ag__url_resolve_location(ag__url *out, const ag__url *base, const char *loc)
{
    assert(out && base && loc);
    memset(out, 0, sizeof *out);
    size_t len = strlen(loc);
    /* Where the authority ends: what is before stays as sent, so that a space or a raw byte in
     * a host is refused rather than sent to the resolver as an escape. */
    size_t from = scheme_length(loc, len);
    if (from)
        from++; /* the ':' */
    if (len - from >= 2 && loc[from] == '/' && loc[from + 1] == '/')
        from = find_any(loc, from + 2, len, "/?#");
    size_t extra = 0;
    for (size_t i = from; i < len; i++) {
        unsigned char c = (unsigned char)loc[i];
        extra += c == ' ' || c >= 0x80 ? 2 : 0;
    }
    char *text = malloc(len + extra + 1);
    if (!text)
        return -ENOMEM;
    static const char hex[] = "0123456789ABCDEF";
    char *w = put(text, loc, from);
    for (size_t i = from; i < len; i++) {
        unsigned char c = (unsigned char)loc[i];
        if (c == ' ' || c >= 0x80) {
            *w++ = '%';
            *w++ = hex[c >> 4];
            *w++ = hex[c & 15];
        } else {
            *w++ = (char)c;
        }
    }
    *w = '\0';
    int rc = ag__url_resolve(out, base, text);
    /* The bytes that are still refused, named for a Location: spaces and non-ASCII bytes
     * outside the authority were escaped above. */
    if (rc == AG_EURL && (!out->why || out->why == bad_bytes))
        out->why = "Location: control byte, DEL, backslash or bad %-escape, or a space or "
                   "non-ASCII byte in the host";
    free(text);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Host header and header checks. */

int ag__url_host_header(const ag__url *url, char *buf, size_t size)
{
    assert(url && url->buf && (buf || size == 0));
    char port[8];
    size_t port_n = 0;
    if (url->port != ag__url_default_port(url)) {
        port[0] = ':';
        port_n = 1 + ag__put_u64(port + 1, url->port);
    }
    size_t host_n = strlen(url->host);
    size_t need = host_n + (url->ipv6 ? 2 : 0) + port_n;
    if (need >= size || need > INT_MAX) {
        if (size > 0)
            buf[0] = '\0';
        return -ENOSPC;
    }

    char *w = buf;
    if (url->ipv6)
        *w++ = '[';
    w = put(w, url->host, host_n);
    if (url->ipv6)
        *w++ = ']';
    w = put(w, port, port_n);
    *w = '\0';
    return (int)need;
}

static bool is_tchar(unsigned char c)
{
    if (is_alpha(c) || is_digit(c))
        return true;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
        return true;
    default:
        return false;
    }
}

bool ag__http_is_token(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!is_tchar((unsigned char)s[i]))
            return false;
    }
    return true;
}

/* An empty value is allowed: RFC 9110 field-value is "*field-content". */
bool ag__http_is_field_value(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}
