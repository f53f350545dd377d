/* cookie.c: the cookie jar (RFC 6265): Set-Cookie parsing, storage with domain and path rules and
 * public suffixes refused (libpsl), the Cookie value of a request, Netscape cookie files. */
#include "http/cookie.h"
#include "core/str.h"

#include <errno.h>
#include <fcntl.h>
#include <libpsl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct cookie {
    char *name; /* one allocation: name, value, domain and path, each NUL-terminated */
    char *value;
    char *domain; /* lower case, without a leading dot */
    char *path;
    const char *base; /* the registrable domain inside domain (per-domain limits), or domain */
    int64_t expiry;   /* seconds since 1970; INT64_MAX for a session cookie */
    uint64_t created; /* jar sequence numbers: creation order, and last access for eviction */
    uint64_t accessed;
    bool persistent; /* Expires or Max-Age was given */
    bool host_only;
    bool secure;
    bool http_only;
    uint8_t same_site; /* 0 none given, 1 Strict, 2 Lax, 3 None: kept, not enforced */
} cookie;

struct ag_cookie_jar {
    pthread_mutex_t mu;
    cookie **v;
    size_t n, cap;
    uint64_t seq;      /* the last sequence number given out */
    int64_t fixed_now; /* tests: the clock's reading; 0: the wall clock */
};

/* ---- the public suffix list ---- */

static pthread_once_t psl_once = PTHREAD_ONCE_INIT;
static const psl_ctx_t *psl; /* NULL: no list at all, and then no Domain attribute is accepted */

static void psl_load(void)
{
    /* The newer of the system's list (Debian's publicsuffix package) and the copy built into
     * libpsl; the built-in one alone when the file cannot be read. Kept for the process's life. */
    const psl_ctx_t *p = psl_latest(NULL);
    psl = p ? p : psl_builtin();
}

static bool public_suffix(const char *domain)
{
    /* Without a list, every domain could be one: the safe answer. The implicit "*" rule makes
     * unlisted top-level names ("test", "localhost") suffixes too, as browsers do. */
    return !psl || psl_is_public_suffix2(psl, domain, PSL_TYPE_ANY);
}

/* ---- small helpers ---- */

static int64_t jar_now(const ag_cookie_jar *jar)
{
    if (jar->fixed_now)
        return jar->fixed_now;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

static bool wsp(char c)
{
    return c == ' ' || c == '\t';
}

static void trim(const char **s, size_t *n)
{
    while (*n && wsp(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && wsp((*s)[*n - 1]))
        (*n)--;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool has_byte(const char *s, size_t n, char c)
{
    return n && memchr(s, c, n) != NULL;
}

/* A host that is an IPv4 address in dotted form (the URL parser keeps IPv6 apart). */
static bool dotted_ipv4(const char *h)
{
    int parts = 0, digits = 0;
    for (const char *p = h;; p++) {
        if (*p >= '0' && *p <= '9') {
            if (++digits > 3)
                return false;
        } else if (*p == '.' || *p == 0) {
            if (!digits)
                return false;
            parts++;
            digits = 0;
            if (!*p)
                break;
        } else {
            return false;
        }
    }
    return parts == 4;
}

static bool host_is_ip(const ag__url *u)
{
    return u->ipv6 || dotted_ipv4(u->host);
}

/* https, or a loopback host: browsers and curl treat http://localhost as a secure context, since
 * its traffic never leaves the machine, and local development servers rarely speak TLS. */
static bool secure_origin(const ag__url *u)
{
    if (u->proto == AG__HTTPS)
        return true;
    const char *h = u->host;
    size_t n = strlen(h);
    if (strcmp(h, "localhost") == 0 || (n > 10 && strcmp(h + n - 10, ".localhost") == 0))
        return true;
    if (u->ipv6)
        return strcmp(h, "::1") == 0;
    return dotted_ipv4(h) && strncmp(h, "127.", 4) == 0;
}

/* Section 5.1.3: host domain-matches domain. */
static bool domain_match(const char *host, bool ip, const char *domain)
{
    if (strcmp(host, domain) == 0)
        return true;
    if (ip)
        return false;
    size_t lh = strlen(host), ld = strlen(domain);
    return ld < lh && host[lh - ld - 1] == '.' && memcmp(host + lh - ld, domain, ld) == 0;
}

/* Section 5.1.4: the request path (target without its query) path-matches the cookie's path. */
static bool path_match(const char *req, size_t lr, const char *path)
{
    size_t lp = strlen(path);
    if (lp > lr || memcmp(req, path, lp) != 0)
        return false;
    return lp == lr || path[lp - 1] == '/' || req[lp] == '/';
}

static size_t target_path_len(const ag__url *u)
{
    const char *q = strchr(u->target, '?');
    return q ? (size_t)(q - u->target) : strlen(u->target);
}

/* ---- the date algorithm of section 5.1.1 ---- */

static bool date_delim(unsigned char c)
{
    return c == 0x09 || (c >= 0x20 && c <= 0x2f) || (c >= 0x3b && c <= 0x40) ||
           (c >= 0x5b && c <= 0x60) || (c >= 0x7b && c <= 0x7e);
}

static bool digit(char c)
{
    return c >= '0' && c <= '9';
}

/* min to max digits at *p (within end) and then no digit: their value, *p moved past them; -1
 * otherwise. */
static int digits(const char **p, const char *end, int min, int max)
{
    int v = 0, k = 0;
    const char *s = *p;
    while (s < end && digit(*s) && k <= max) {
        v = v * 10 + (*s++ - '0');
        k++;
    }
    if (k < min || k > max)
        return -1;
    *p = s;
    return v;
}

static bool time_token(const char *t, const char *end, int *h, int *m, int *s)
{
    const char *p = t;
    if ((*h = digits(&p, end, 1, 2)) < 0 || p >= end || *p++ != ':')
        return false;
    if ((*m = digits(&p, end, 1, 2)) < 0 || p >= end || *p++ != ':')
        return false;
    return (*s = digits(&p, end, 1, 2)) >= 0;
}

static int month_token(const char *t, const char *end)
{
    static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
    if (end - t < 3)
        return -1;
    for (int i = 0; i < 12; i++)
        if (lower(t[0]) == months[3 * i] && lower(t[1]) == months[3 * i + 1] &&
            lower(t[2]) == months[3 * i + 2])
            return i + 1;
    return -1;
}

static bool leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar. */
static int64_t days_since_epoch(int64_t y, int m, int d)
{
    static const int before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    /* Leap days in the years before y, counted from year 0 (which was one). */
    int64_t py = y - 1;
    int64_t days = 365 * y + (py / 4 - py / 100 + py / 400 + 1);
    days += before[m - 1] + (m > 2 && leap(y)) + d - 1;
    /* The same count for 1970-01-01. */
    const int64_t epoch = 365 * 1970 + (1969 / 4 - 1969 / 100 + 1969 / 400 + 1);
    return days - epoch;
}

int ag__cookie_date(const char *s, size_t len, int64_t *out)
{
    const char *end = s + len;
    int hour = -1, minute = 0, second = 0, day = -1, month = -1, year = -1;
    const char *p = s;
    while (p < end) {
        while (p < end && date_delim((unsigned char)*p))
            p++;
        const char *t = p;
        while (p < end && !date_delim((unsigned char)*p))
            p++;
        if (t == p)
            break;
        int h, m, sec, v;
        const char *q = t;
        if (hour < 0 && time_token(t, p, &h, &m, &sec)) {
            hour = h;
            minute = m;
            second = sec;
        } else if (day < 0 && (v = digits(&q, p, 1, 2)) >= 0) {
            day = v;
        } else if (month < 0 && (v = month_token(t, p)) > 0) {
            month = v;
        } else if (year < 0 && (q = t, v = digits(&q, p, 2, 4)) >= 0) {
            year = v;
        }
    }
    if (hour < 0 || day < 0 || month < 0 || year < 0)
        return -1;
    if (year >= 70 && year <= 99)
        year += 1900;
    else if (year <= 69)
        year += 2000;
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (day < 1 || year < 1601 || hour > 23 || minute > 59 || second > 59)
        return -1;
    if (day > mdays[month - 1] + (month == 2 && leap(year)))
        return -1; /* a date that does not exist (February 30th) */
    *out = days_since_epoch(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
    return 0;
}

/* ---- parsing a Set-Cookie value (section 5.2) ---- */

typedef struct parsed {
    const char *name, *value;
    size_t name_len, value_len;
    const char *domain, *path; /* NULL: not given (or ignored) */
    size_t domain_len, path_len;
    bool has_max_age, has_expires;
    int64_t max_age_expiry, expires;
    bool secure, http_only;
    uint8_t same_site;
} parsed;

static bool attr_is(const char *n, size_t len, const char *want)
{
    return strlen(want) == len && strncasecmp(n, want, len) == 0;
}

/* Max-Age: an optional '-' and digits; its expiry in *out (the earliest time for zero or less). */
static bool max_age(const char *v, size_t n, int64_t now, int64_t *out)
{
    size_t i = 0;
    bool neg = n && v[0] == '-';
    if (neg)
        i = 1;
    if (i == n)
        return false;
    int64_t delta = 0;
    for (; i < n; i++) {
        if (!digit(v[i]))
            return false;
        if (delta < INT64_MAX / 10)
            delta = delta * 10 + (v[i] - '0'); /* larger values mean forever: saturated */
    }
    if (neg || delta == 0)
        *out = INT64_MIN;
    else
        *out = delta > INT64_MAX - now ? INT64_MAX : now + delta;
    return true;
}

static int parse_set_cookie(const char *sc, int64_t now, parsed *pc)
{
    memset(pc, 0, sizeof *pc);
    size_t len = strlen(sc);
    /* Control bytes other than HTAB have no place in a field value, and here they would reach
     * a request head or a cookie file. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)sc[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return -1;
    }
    const char *semi = memchr(sc, ';', len);
    size_t nv_len = semi ? (size_t)(semi - sc) : len;
    const char *eq = memchr(sc, '=', nv_len);
    if (!eq)
        return -1; /* no '=': RFC 6265 ignores the cookie */
    pc->name = sc;
    pc->name_len = (size_t)(eq - sc);
    pc->value = eq + 1;
    pc->value_len = nv_len - pc->name_len - 1;
    trim(&pc->name, &pc->name_len);
    trim(&pc->value, &pc->value_len);
    /* An empty name is refused; a TAB inside would break the cookie file's columns. */
    if (!pc->name_len || has_byte(pc->name, pc->name_len, '\t') ||
        has_byte(pc->value, pc->value_len, '\t'))
        return -1;
    const char *p = semi, *end = sc + len;
    while (p && p < end) {
        p++; /* the ';' */
        const char *next = memchr(p, ';', (size_t)(end - p));
        const char *av_end = next ? next : end;
        const char *an = p, *av = av_end;
        const char *aeq = memchr(p, '=', (size_t)(av_end - p));
        size_t an_len = (size_t)((aeq ? aeq : av_end) - p), av_len = 0;
        if (aeq) {
            av = aeq + 1;
            av_len = (size_t)(av_end - av);
        }
        trim(&an, &an_len);
        trim(&av, &av_len);
        p = next;
        if (av_len > AG__COOKIE_MAX_ATTR)
            continue;
        if (attr_is(an, an_len, "expires")) {
            int64_t t;
            if (ag__cookie_date(av, av_len, &t) == 0) {
                pc->has_expires = true;
                pc->expires = t;
            }
        } else if (attr_is(an, an_len, "max-age")) {
            if (max_age(av, av_len, now, &pc->max_age_expiry))
                pc->has_max_age = true;
        } else if (attr_is(an, an_len, "domain")) {
            /* An empty Domain is ignored; a leading dot is dropped (section 5.2.3). */
            if (av_len && av[0] == '.') {
                av++;
                av_len--;
            }
            if (av_len) {
                pc->domain = av;
                pc->domain_len = av_len;
            }
        } else if (attr_is(an, an_len, "path")) {
            /* A path that does not start with '/' means the default path. */
            pc->path = av_len && av[0] == '/' ? av : NULL;
            pc->path_len = pc->path ? av_len : 0;
        } else if (attr_is(an, an_len, "secure")) {
            pc->secure = true;
        } else if (attr_is(an, an_len, "httponly")) {
            pc->http_only = true;
        } else if (attr_is(an, an_len, "samesite")) {
            pc->same_site = attr_is(av, av_len, "strict") ? 1
                            : attr_is(av, av_len, "lax")  ? 2
                            : attr_is(av, av_len, "none") ? 3
                                                          : 0;
        }
        /* Other attributes are ignored (section 5.2). */
    }
    return 0;
}

/* ---- storage (section 5.3) ---- */

static cookie *cookie_new(const char *name, size_t ln, const char *value, size_t lv,
                          const char *domain, size_t ld, const char *path, size_t lp)
{
    cookie *c = calloc(1, sizeof *c + ln + lv + ld + lp + 4);
    if (!c)
        return NULL;
    char *s = (char *)(c + 1);
    c->name = s;
    memcpy(s, name, ln);
    s += ln + 1;
    c->value = s;
    memcpy(s, value, lv);
    s += lv + 1;
    c->domain = s;
    for (size_t i = 0; i < ld; i++)
        s[i] = lower(domain[i]);
    s += ld + 1;
    c->path = s;
    memcpy(s, path, lp);
    /* An address is its own "domain": the list would see its last two numbers as one. */
    const char *base = psl && !dotted_ipv4(c->domain) && !strchr(c->domain, ':')
                           ? psl_registrable_domain(psl, c->domain)
                           : NULL;
    c->base = base ? base : c->domain;
    return c;
}

static bool expired(const cookie *c, int64_t now)
{
    return c->persistent && c->expiry <= now;
}

static void remove_at(ag_cookie_jar *jar, size_t i)
{
    free(jar->v[i]);
    jar->v[i] = jar->v[--jar->n];
}

/* Drop the expired cookies, then the least recently accessed ones past the limits. */
static void enforce_limits(ag_cookie_jar *jar, const char *base, int64_t now)
{
    for (size_t i = 0; i < jar->n;) {
        if (expired(jar->v[i], now))
            remove_at(jar, i);
        else
            i++;
    }
    for (;;) {
        size_t same = 0, oldest = SIZE_MAX;
        for (size_t i = 0; i < jar->n; i++) {
            if (strcmp(jar->v[i]->base, base) != 0)
                continue;
            same++;
            if (oldest == SIZE_MAX || jar->v[i]->accessed < jar->v[oldest]->accessed)
                oldest = i;
        }
        if (same <= AG__COOKIE_MAX_PER_DOMAIN)
            break;
        remove_at(jar, oldest);
    }
    while (jar->n > AG__COOKIE_MAX_TOTAL) {
        size_t oldest = 0;
        for (size_t i = 1; i < jar->n; i++)
            if (jar->v[i]->accessed < jar->v[oldest]->accessed)
                oldest = i;
        remove_at(jar, oldest);
    }
}

/* Put c in the jar in place of a cookie of the same name, domain and path (keeping that one's
 * creation time), or as a new one. An expired c only deletes. 1, or -ENOMEM (c freed). */
static int insert(ag_cookie_jar *jar, cookie *c, int64_t now)
{
    c->created = c->accessed = ++jar->seq;
    for (size_t i = 0; i < jar->n; i++) {
        cookie *o = jar->v[i];
        if (strcmp(o->name, c->name) == 0 && strcmp(o->domain, c->domain) == 0 &&
            strcmp(o->path, c->path) == 0) {
            c->created = o->created;
            remove_at(jar, i);
            break;
        }
    }
    if (expired(c, now)) {
        free(c);
        return 1;
    }
    if (jar->n == jar->cap) {
        size_t cap = jar->cap ? jar->cap * 2 : 16;
        cookie **v = realloc(jar->v, cap * sizeof *v);
        if (!v) {
            free(c);
            return -ENOMEM;
        }
        jar->v = v;
        jar->cap = cap;
    }
    jar->v[jar->n++] = c;
    enforce_limits(jar, c->base, now);
    return 1;
}

/* "Leave Secure Cookies Alone" (RFC 6265bis section 5.7 step 16): a cookie from an insecure
 * origin may not replace or shadow a Secure cookie of the same name whose domain meets its own
 * and whose path its path matches, or a man in the middle of http could change https sessions. */
static bool shadows_secure(const ag_cookie_jar *jar, const cookie *c, int64_t now)
{
    for (size_t i = 0; i < jar->n; i++) {
        const cookie *o = jar->v[i];
        if (o->secure && !expired(o, now) && strcmp(o->name, c->name) == 0 &&
            (domain_match(o->domain, false, c->domain) ||
             domain_match(c->domain, false, o->domain)) &&
            path_match(c->path, strlen(c->path), o->path))
            return true;
    }
    return false;
}

static int store_locked(ag_cookie_jar *jar, const ag__url *url, const char *sc)
{
    int64_t now = jar_now(jar);
    parsed pc;
    if (parse_set_cookie(sc, now, &pc) < 0)
        return 0;
    if (pc.name_len + pc.value_len > AG__COOKIE_MAX_BYTES)
        return 0;
    bool secure = secure_origin(url);
    if (pc.secure && !secure)
        return 0; /* Secure from an insecure origin (RFC 6265bis section 5.7) */
    /* Name prefixes (RFC 6265bis section 4.1.3), in any case as browsers match them: a
     * "__Secure-" cookie must say Secure, a "__Host-" one also Path=/ and no Domain, so that a
     * site can tell such a cookie was set over https by the host itself. */
    if (pc.name_len >= 9 && strncasecmp(pc.name, "__Secure-", 9) == 0 && !pc.secure)
        return 0;
    if (pc.name_len >= 7 && strncasecmp(pc.name, "__Host-", 7) == 0 &&
        (!pc.secure || pc.domain || pc.path_len != 1))
        return 0;
    bool ip = host_is_ip(url);
    const char *host = url->host;
    bool host_only = true;
    if (pc.domain) {
        char dom[256];
        if (pc.domain_len >= sizeof dom || has_byte(pc.domain, pc.domain_len, '\t'))
            return 0; /* longer than any host name: it cannot match */
        for (size_t i = 0; i < pc.domain_len; i++)
            dom[i] = lower(pc.domain[i]);
        dom[pc.domain_len] = 0;
        if (!domain_match(host, ip, dom))
            return 0;
        /* A public suffix is refused, unless it is the host itself: then the cookie is the
         * host's alone (section 5.3 step 5). An IP address matches only itself, and such a
         * cookie is host-only too, as in curl: no other host can share it. */
        if (strcmp(dom, host) != 0 && public_suffix(dom))
            return 0;
        host_only = strcmp(dom, host) == 0 && (ip || public_suffix(dom));
    }
    /* Section 5.1.4: the default path is the request path up to its last '/', or "/". */
    const char *path = pc.path;
    size_t lp = pc.path_len;
    if (!path) {
        path = url->target;
        lp = target_path_len(url);
        const char *slash = NULL;
        for (size_t i = lp; i > 0 && !slash; i--)
            if (path[i - 1] == '/')
                slash = path + i - 1;
        if (!lp || path[0] != '/' || slash == path)
            path = "/", lp = 1;
        else
            lp = (size_t)(slash - path);
    }
    if (has_byte(path, lp, '\t'))
        return 0;
    const char *domain = pc.domain && !host_only ? pc.domain : host;
    size_t ld = pc.domain && !host_only ? pc.domain_len : strlen(host);
    cookie *c = cookie_new(pc.name, pc.name_len, pc.value, pc.value_len, domain, ld, path, lp);
    if (!c)
        return -ENOMEM;
    if (!pc.secure && !secure && shadows_secure(jar, c, now)) {
        free(c);
        return 0;
    }
    c->host_only = host_only;
    c->secure = pc.secure;
    c->http_only = pc.http_only;
    c->same_site = pc.same_site;
    /* Max-Age wins over Expires (section 5.3 step 3). */
    c->persistent = pc.has_max_age || pc.has_expires;
    c->expiry = pc.has_max_age ? pc.max_age_expiry : pc.has_expires ? pc.expires : INT64_MAX;
    return insert(jar, c, now);
}

int ag__cookie_store(ag_cookie_jar *jar, const ag__url *url, const char *set_cookie)
{
    pthread_mutex_lock(&jar->mu);
    int rc = store_locked(jar, url, set_cookie);
    pthread_mutex_unlock(&jar->mu);
    return rc;
}

/* ---- the Cookie header (section 5.4) ---- */

/* Longer paths first, then earlier creation. */
static int by_path_then_age(const void *a, const void *b)
{
    const cookie *x = *(cookie *const *)a, *y = *(cookie *const *)b;
    size_t lx = strlen(x->path), ly = strlen(y->path);
    if (lx != ly)
        return lx > ly ? -1 : 1;
    return x->created < y->created ? -1 : x->created > y->created;
}

static int value_locked(ag_cookie_jar *jar, const ag__url *url, char **out)
{
    *out = NULL;
    if (!jar->n)
        return 0;
    int64_t now = jar_now(jar);
    bool ip = host_is_ip(url), secure = secure_origin(url);
    size_t lr = target_path_len(url);
    cookie **hit = malloc(jar->n * sizeof *hit);
    if (!hit)
        return -ENOMEM;
    size_t n = 0, size = 0;
    for (size_t i = 0; i < jar->n; i++) {
        cookie *c = jar->v[i];
        if (expired(c, now) || (c->secure && !secure))
            continue;
        if (c->host_only ? strcmp(url->host, c->domain) != 0
                         : !domain_match(url->host, ip, c->domain))
            continue;
        if (!path_match(url->target, lr, c->path))
            continue;
        hit[n++] = c;
        size += strlen(c->name) + 1 + strlen(c->value) + 2;
    }
    int rc = 0;
    if (n) {
        qsort(hit, n, sizeof *hit, by_path_then_age);
        char *s = malloc(size);
        if (!s) {
            rc = -ENOMEM;
            goto out;
        }
        char *w = s;
        for (size_t i = 0; i < n; i++) {
            if (i) {
                *w++ = ';';
                *w++ = ' ';
            }
            size_t k = strlen(hit[i]->name);
            memcpy(w, hit[i]->name, k);
            w += k;
            *w++ = '=';
            k = strlen(hit[i]->value);
            memcpy(w, hit[i]->value, k);
            w += k;
            hit[i]->accessed = ++jar->seq;
        }
        *w = 0;
        *out = s;
    }
out:
    free(hit);
    return rc;
}

int ag__cookie_value(ag_cookie_jar *jar, const ag__url *url, char **out)
{
    pthread_mutex_lock(&jar->mu);
    int rc = value_locked(jar, url, out);
    pthread_mutex_unlock(&jar->mu);
    return rc;
}

void ag__cookie_jar_set_time(ag_cookie_jar *jar, int64_t now)
{
    pthread_mutex_lock(&jar->mu);
    jar->fixed_now = now;
    pthread_mutex_unlock(&jar->mu);
}

/* ---- the public functions ---- */

int ag_cookie_jar_new(ag_cookie_jar **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    /* Loaded here, in plain code, rather than under a request on a coroutine's small stack. */
    pthread_once(&psl_once, psl_load);
    ag_cookie_jar *jar = calloc(1, sizeof *jar);
    if (!jar)
        return -ENOMEM;
    pthread_mutex_init(&jar->mu, NULL);
    *out = jar;
    return 0;
}

void ag_cookie_jar_free(ag_cookie_jar *jar)
{
    if (!jar)
        return;
    for (size_t i = 0; i < jar->n; i++)
        free(jar->v[i]);
    free(jar->v);
    pthread_mutex_destroy(&jar->mu);
    free(jar);
}

static int parse_url(ag__url *u, const char *url)
{
    if (!url)
        return -EINVAL;
    int rc = ag__url_parse(u, url);
    return rc == -ENOMEM ? rc : rc < 0 ? -EINVAL : 0;
}

int ag_cookie_jar_set(ag_cookie_jar *jar, const char *url, const char *set_cookie)
{
    if (!jar || !set_cookie)
        return -EINVAL;
    ag__url u;
    int rc = parse_url(&u, url);
    if (rc < 0)
        return rc;
    rc = ag__cookie_store(jar, &u, set_cookie);
    ag__url_free(&u);
    return rc;
}

int ag_cookie_jar_header(ag_cookie_jar *jar, const char *url, char **out)
{
    if (out)
        *out = NULL;
    if (!jar || !out)
        return -EINVAL;
    ag__url u;
    int rc = parse_url(&u, url);
    if (rc < 0)
        return rc;
    rc = ag__cookie_value(jar, &u, out);
    ag__url_free(&u);
    return rc;
}

size_t ag_cookie_jar_count(ag_cookie_jar *jar)
{
    if (!jar)
        return 0;
    pthread_mutex_lock(&jar->mu);
    int64_t now = jar_now(jar);
    size_t n = 0;
    for (size_t i = 0; i < jar->n; i++)
        n += !expired(jar->v[i], now);
    pthread_mutex_unlock(&jar->mu);
    return n;
}

void ag_cookie_jar_clear_session(ag_cookie_jar *jar)
{
    if (!jar)
        return;
    pthread_mutex_lock(&jar->mu);
    for (size_t i = 0; i < jar->n;) {
        if (!jar->v[i]->persistent)
            remove_at(jar, i);
        else
            i++;
    }
    pthread_mutex_unlock(&jar->mu);
}

/* ---- Netscape cookie files, as curl reads and writes them ---- */

static bool flag(const char *s, bool *out)
{
    if (strcasecmp(s, "TRUE") == 0)
        *out = true;
    else if (strcasecmp(s, "FALSE") == 0)
        *out = false;
    else
        return false;
    return true;
}

/* The longest line read from a cookie file: name and value, domain, a path that long, and the
 * other columns fit with room to spare. */
#define COOKIE_LINE_MAX (64 * 1024)

/* One line of a cookie file: 1 added, 0 skipped (blank, comment, malformed, expired), -ENOMEM. */
static int load_line(ag_cookie_jar *jar, char *line, int64_t now)
{
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = 0;
    bool http_only = false;
    if (strncmp(line, "#HttpOnly_", 10) == 0) {
        http_only = true;
        line += 10;
    } else if (line[0] == '#') {
        return 0;
    }
    for (const char *p = line; *p; p++)
        if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
            return 0;
    char *f[8];
    int nf = 0;
    for (char *p = line; nf < 8;) {
        f[nf++] = p;
        char *tab = strchr(p, '\t');
        if (!tab)
            break;
        *tab = 0;
        p = tab + 1;
    }
    /* Seven fields; six when the value is empty, as curl accepts. */
    if (nf == 6)
        f[nf++] = "";
    if (nf != 7)
        return 0;
    const char *domain = f[0];
    if (domain[0] == '.')
        domain++;
    bool subdomains, secure;
    if (!domain[0] || strchr(domain, ' ') || strchr(domain, '/') || !flag(f[1], &subdomains) ||
        f[2][0] != '/' || !flag(f[3], &secure) || !f[5][0])
        return 0;
    if (strlen(f[5]) + strlen(f[6]) > AG__COOKIE_MAX_BYTES)
        return 0;
    int64_t expiry = 0;
    const char *e = f[4];
    if (!*e)
        return 0;
    for (; *e; e++) {
        if (!digit(*e))
            return 0;
        if (expiry < INT64_MAX / 10)
            expiry = expiry * 10 + (*e - '0');
    }
    cookie *c = cookie_new(f[5], strlen(f[5]), f[6], strlen(f[6]), domain, strlen(domain), f[2],
                           strlen(f[2]));
    if (!c)
        return -ENOMEM;
    /* A file may name any domain: a cookie for a public suffix's subdomains is refused here as
     * it would be from a response. */
    if (subdomains &&
        (dotted_ipv4(c->domain) || strchr(c->domain, ':') || public_suffix(c->domain))) {
        free(c);
        return 0;
    }
    c->host_only = !subdomains;
    c->secure = secure;
    c->http_only = http_only;
    c->persistent = expiry != 0;
    c->expiry = expiry ? expiry : INT64_MAX;
    if (expired(c, now)) {
        free(c);
        return 0;
    }
    return insert(jar, c, now);
}

int ag_cookie_jar_load(ag_cookie_jar *jar, const char *path)
{
    if (!jar || !path)
        return -EINVAL;
    FILE *fp = fopen(path, "re");
    if (!fp)
        return -errno;
    /* Lines are read into a buffer of fixed size: a longer one cannot hold a cookie the jar
     * would keep, and is skipped as it streams by rather than grown in memory (a hostile or
     * endless file, such as /dev/zero, would otherwise take all of it). A NUL byte makes a
     * line malformed too. */
    char *line = malloc(COOKIE_LINE_MAX + 1);
    if (!line) {
        fclose(fp);
        return -ENOMEM;
    }
    size_t len = 0;
    bool skip = false;
    int added = 0, rc = 0, ch;
    pthread_mutex_lock(&jar->mu);
    int64_t now = jar_now(jar);
    errno = 0;
    do {
        ch = getc_unlocked(fp);
        if (ch != '\n' && ch != EOF) {
            if (ch == 0 || len == COOKIE_LINE_MAX)
                skip = true;
            else if (!skip)
                line[len++] = (char)ch;
            continue;
        }
        if (!skip && len) {
            line[len] = 0;
            rc = load_line(jar, line, now);
            if (rc < 0)
                break;
            added += rc;
        }
        len = 0;
        skip = false;
    } while (ch != EOF);
    /* A read error (a directory opens, and says EISDIR on the read) is the caller's to know. */
    if (rc >= 0 && ferror(fp))
        rc = errno > 0 ? -errno : -EIO;
    pthread_mutex_unlock(&jar->mu);
    free(line);
    fclose(fp);
    return rc < 0 ? rc : added;
}

static int write_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The file's text, in creation order, in memory the caller frees. */
static char *file_text(ag_cookie_jar *jar, int64_t now, size_t *len)
{
    static const char intro[] = "# Netscape HTTP Cookie File\n"
                                "# https://curl.se/docs/http-cookies.html\n"
                                "# This file was written by asyncget. Edit at your own risk.\n\n";
    size_t size = sizeof intro;
    for (size_t i = 0; i < jar->n; i++) {
        const cookie *c = jar->v[i];
        size += 10 + 1 + strlen(c->domain) + 6 + strlen(c->path) + 6 + 21 + strlen(c->name) +
                strlen(c->value) + 8;
    }
    char *s = malloc(size);
    if (!s)
        return NULL;
    cookie **v = malloc((jar->n ? jar->n : 1) * sizeof *v);
    if (!v) {
        free(s);
        return NULL;
    }
    size_t n = jar->n;
    if (n) /* an empty jar has no array to copy from */
        memcpy(v, jar->v, n * sizeof *v);
    /* Creation order, so that a file read back gives the same order of equal paths. */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && v[j - 1]->created > v[j]->created; j--) {
            cookie *t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    char *w = s;
#define PUT(str)                                                                                   \
    do {                                                                                           \
        size_t k_ = strlen(str);                                                                   \
        memcpy(w, str, k_);                                                                        \
        w += k_;                                                                                   \
    } while (0)
    PUT(intro);
    for (size_t i = 0; i < n; i++) {
        const cookie *c = v[i];
        if (expired(c, now))
            continue;
        if (c->http_only)
            PUT("#HttpOnly_");
        if (!c->host_only)
            PUT(".");
        PUT(c->domain);
        PUT(c->host_only ? "\tFALSE\t" : "\tTRUE\t");
        PUT(c->path);
        PUT(c->secure ? "\tTRUE\t" : "\tFALSE\t");
        w += ag__put_u64(w, c->persistent ? (uint64_t)c->expiry : 0);
        PUT("\t");
        PUT(c->name);
        PUT("\t");
        PUT(c->value);
        PUT("\n");
    }
#undef PUT
    free(v);
    *len = (size_t)(w - s);
    return s;
}

int ag_cookie_jar_save(ag_cookie_jar *jar, const char *path)
{
    if (!jar || !path)
        return -EINVAL;
    pthread_mutex_lock(&jar->mu);
    size_t len = 0;
    char *text = file_text(jar, jar_now(jar), &len);
    pthread_mutex_unlock(&jar->mu);
    if (!text)
        return -ENOMEM;
    /* A temporary file beside path, renamed over it: a reader never sees half a file, and a
     * failed write leaves the old one. mkstemp makes it 0600, which is what a file of session
     * tokens wants: anyone who reads it can act as the user at those sites. */
    size_t lp = strlen(path);
    char *tmp = malloc(lp + 8);
    int rc = -ENOMEM;
    if (!tmp)
        goto out;
    memcpy(tmp, path, lp);
    memcpy(tmp + lp, ".XXXXXX", 8);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    rc = write_all(fd, text, len);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
out:
    free(tmp);
    free(text);
    return rc;
}
