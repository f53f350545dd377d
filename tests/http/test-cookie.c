/* test-cookie.c: the cookie jar (RFC 6265) through its public functions and the internal clock
 * hook: parsing, dates, domain and path rules, public suffixes, Secure, expiry, limits, files. */
#include "asyncget.h"
#include "http/cookie.h"
#include "tests/tap.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#define T0 1700000000 /* the clock of most cases: 2023-11-14 */

static ag_cookie_jar *jar_at(int64_t now)
{
    ag_cookie_jar *jar;
    if (ag_cookie_jar_new(&jar) != 0) {
        printf("Bail out! no jar\n");
        exit(1);
    }
    ag__cookie_jar_set_time(jar, now);
    return jar;
}

/* The Cookie value for url, "" for none, in a rotating static buffer. */
static const char *hdr(ag_cookie_jar *jar, const char *url)
{
    static char bufs[8][8192];
    static int next;
    char *b = bufs[next++ % 8];
    char *v = NULL;
    int rc = ag_cookie_jar_header(jar, url, &v);
    snprintf(b, sizeof bufs[0], "%s", rc < 0 ? "(error)" : v ? v : "");
    free(v);
    return b;
}

static int set(ag_cookie_jar *jar, const char *url, const char *sc)
{
    return ag_cookie_jar_set(jar, url, sc);
}

static bool same(const char *got, const char *want, const char *what)
{
    if (strcmp(got, want) != 0) {
        tap_diag("%s: got \"%s\", want \"%s\"", what, got, want);
        return false;
    }
    return true;
}

static void cookie_parse_name_value(void)
{
    ag_cookie_jar *jar = jar_at(T0);
    bool ok = set(jar, "http://example.com/", "  a =  b c  ; Path=/") == 1;
    ok &= set(jar, "http://example.com/", "e=") == 1; /* an empty value is a value */
    ok &= set(jar, "http://example.com/", "q=\"quoted\"") == 1;
    ok &= same(hdr(jar, "http://example.com/"), "a=b c; e=; q=\"quoted\"", "header");
    tap_ok(ok, "cookie_parse_name_value: name and value trimmed of white space, empty and quoted "
               "values kept");
    ag_cookie_jar_free(jar);
}

static void cookie_parse_refuses_malformed(void)
{
    ag_cookie_jar *jar = jar_at(T0);
    const char *bad[] = {
        "novalue",          /* no '=' */
        "=x",               /* empty name */
        "  =x; Path=/",     /* empty after trimming */
        "a=b\r\nX-Evil: 1", /* CR LF: header injection */
        "a=b\x01",          /* a control byte */
        "a=b\tc",           /* a TAB inside the value breaks the file's columns */
        "",                 /* nothing */
    };
    bool ok = true;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (set(jar, "http://example.com/", bad[i]) != 0) {
            tap_diag("stored: case %zu", i);
            ok = false;
        }
    ok &= ag_cookie_jar_count(jar) == 0;
    tap_ok(ok, "cookie_parse_refuses_malformed: no '=', empty name, control bytes, TAB refused");
    ag_cookie_jar_free(jar);
}

static void cookie_parse_unknown_attributes_ignored(void)
{
    ag_cookie_jar *jar = jar_at(T0);
    bool ok = set(jar, "https://example.com/",
                  "a=1; Priority=High; Partitioned; SameSite=Strict; foo; =bar; Comment=x") == 1;
    ok &= same(hdr(jar, "https://example.com/"), "a=1", "header");
    tap_ok(ok, "cookie_parse_unknown_attributes_ignored: unknown attributes and SameSite do not "
               "refuse the cookie");
    ag_cookie_jar_free(jar);
}

static void cookie_date_formats(void)
{
    static const struct {
        const char *s;
        int64_t want; /* -1: refused (no case here is 1969-12-31 23:59:59) */
    } cases[] = {
        {"Sun, 06 Nov 1994 08:49:37 GMT", 784111777},    /* IMF-fixdate */
        {"Sunday, 06-Nov-94 08:49:37 GMT", 784111777},   /* RFC 850, two-digit year */
        {"Sun Nov  6 08:49:37 1994", 784111777},         /* asctime */
        {"Sun,06-Nov-1994/08:49:37+GMT", 784111777},     /* odd delimiters */
        {"1994 Nov 6 08:49:37", 784111777},              /* year first */
        {"6th November 1994 8:49:37am", 784111777},      /* trailing letters on tokens */
        {"november 6 1994 8:49:37", 784111777},          /* month in lower case */
        {"Thu, 01 Jan 70 00:00:00 GMT", 0},              /* 70 is 1970 */
        {"Sun, 01 Jan 69 00:00:00 GMT", 3124224000},     /* 69 is 2069 */
        {"Tue, 29 Feb 2000 00:00:00 GMT", 951782400},    /* a leap day */
        {"Mon, 01 Jan 1601 00:00:00 GMT", -11644473600}, /* the earliest year */
        {"Fri, 31 Dec 9999 23:59:59 GMT", 253402300799},
        {"Tue, 19 Jan 2038 03:14:08 GMT", 2147483648}, /* past 32-bit time */
        {"Thu, 29 Feb 2001 00:00:00 GMT", -1},         /* no such day */
        {"Wed, 31 Apr 2020 00:00:00 GMT", -1},         /* no such day */
        {"Sat, 01 Jan 1600 00:00:00 GMT", -1},         /* before 1601 */
        {"Sun, 06 Nov 1994 24:00:00 GMT", -1},         /* hour out of range */
        {"Sun, 06 Nov 1994 08:60:00 GMT", -1},         /* minute out of range */
        {"Sun, 06 Nov 1994 08:49:60 GMT", -1},         /* second out of range */
        {"Sun, 06 Nov 1994 GMT", -1},                  /* no time */
        {"Sun, 32 Nov 1994 08:49:37 GMT", -1},         /* day out of range */
        {"Sun, 06 Foo 1994 08:49:37 GMT", -1},         /* no month */
        {"Sun, 06 Nov 08:49:37 GMT", -1},              /* no year */
        {"Sun, 006 Nov 1994 08:49:37", -1},            /* 3-digit day: taken as the year */
        {"Sun, 06 Nov 19945 08:49:37", -1},            /* 5-digit year */
        {"Sun, 06 Nov 1994 108:49:37", -1},            /* 3-digit hour */
        {"", -1},
    };
    bool ok = true;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int64_t got = -1;
        if (ag__cookie_date(cases[i].s, strlen(cases[i].s), &got) < 0)
            got = -1;
        if (got != cases[i].want) {
            tap_diag("\"%s\": got %lld, want %lld", cases[i].s, (long long)got,
                     (long long)cases[i].want);
            ok = false;
        }
    }
    tap_ok(ok, "cookie_date_formats: the section 5.1.1 algorithm on the three HTTP formats and "
               "odd ones, impossible dates refused");
}

static void cookie_expires_with_time(void)
{
    ag_cookie_jar *jar = jar_at(T0);
    /* 2023-11-14 22:14:20 UTC is T0 + 60 */
    bool ok = set(jar, "http://example.com/", "a=1; Expires=Tue, 14 Nov 2023 22:14:20 GMT") == 1;
    ok &= set(jar, "http://example.com/", "s=1") == 1; /* a session cookie never expires */
    ag__cookie_jar_set_time(jar, T0 + 59);
    ok &= same(hdr(jar, "http://example.com/"), "a=1; s=1", "before");
    ok &= ag_cookie_jar_count(jar) == 2;
    ag__cookie_jar_set_time(jar, T0 + 60);
    ok &= same(hdr(jar, "http://example.com/"), "s=1", "at expiry");
    ok &= ag_cookie_jar_count(jar) == 1;
    /* An Expires in the past deletes a cookie. */
    ok &= set(jar, "http://example.com/", "s=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT") == 1;
    ok &= ag_cookie_jar_count(jar) == 0;
    tap_ok(ok, "cookie_expires_with_time: a cookie goes at its Expires time, a past Expires "
               "deletes");
    ag_cookie_jar_free(jar);
}

static void cookie_max_age_wins_over_expires(void)
{
    ag_cookie_jar *jar = jar_at(T0);
    bool ok = set(jar, "http://example.com/",
                  "a=1; Max-Age=100; Expires=Thu, 01 Jan 1970 00:00:00 GMT") == 1;
    ok &= set(jar, "http://example.com/",
              "b=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=100") == 1;
    ok &= set(jar, "http://example.com/",
              "c=1; Expires=Fri, 31 Dec 9999 23:59:59 GMT; Max-Age=0") == 1;
    ok &= same(hdr(jar, "http://example.com/"), "a=1; b=1", "now");
    ag__cookie_jar_set_time(jar, T0 + 99);
    ok &= ag_cookie_jar_count(jar) == 2;
    ag__cookie_jar_set_time(jar, T0 + 100);
    ok &= ag_cookie_jar_count(jar) == 0;
    /* A malformed Max-Age is ignored: the Expires holds. */
    ok &= set(jar, "http://example.com/",
              "d=1; Max-Age=12x; Expires=Fri, 31 Dec 9999 23:59:59 GMT") == 1;
    ok &= same(hdr(jar, "http://example.com/"), "d=1", "malformed Max-Age");
    tap_ok(ok, "cookie_max_age_wins_over_expires: whatever the order; a malformed Max-Age is "
               "ignored");
    ag_cookie_jar_free(jar);
}

static void cookie_max_age_zero_deletes(void)
{
    ag_cookie_jar *jar = jar_at(T0);
    bool ok = set(jar, "http://example.com/", "a=1") == 1;
    ok &= set(jar, "http://example.com/", "b=1") == 1;
    ok &= set(jar, "http://example.com/", "a=gone; Max-Age=0") == 1;
    ok &= set(jar, "http://example.com/", "b=gone; Max-Age=-5") == 1;
    ok &= ag_cookie_jar_count(jar) == 0 && same(hdr(jar, "http://example.com/"), "", "header");
    tap_ok(ok, "cookie_max_age_zero_deletes: Max-Age 0 or negative deletes the stored cookie");
    ag_cookie_jar_free(jar);
}

static void cookie_domain_attribute(void)
{
    ag_cookie_jar *jar = jar_at(T0);
    bool ok = set(jar, "http://www.example.com/", "a=1; Domain=.Example.COM") == 1;
    ok &= same(hdr(jar, "http://example.com/"), "a=1", "the domain itself");
    ok &= same(hdr(jar, "http://x.y.example.com/"), "a=1", "a subdomain");
    ok &= same(hdr(jar, "http://badexample.com/"), "", "a suffix without the dot");
    ok &= same(hdr(jar, "http://example.org/"), "", "another domain");
    ok &= set(jar, "http://www.example.com/", "b=1; Domain=other.com") == 0;
    ok &= set(jar, "http://example.com/", "b=1; Domain=www.example.com") == 0;
    ok &= set(jar, "http://www.example.com/", "b=1; Domain=ample.com") == 0;
    tap_ok(ok, "cookie_domain_attribute: leading dot ignored, subdomains match, a domain the "
               "host does not match is refused");
    ag_cookie_jar_free(jar);
}

static void cookie_host_only(void)
{
    ag_cookie_jar *jar = jar_at(T0);
    bool ok = set(jar, "http://www.example.com/", "a=1") == 1;
    ok &= same(hdr(jar, "http://www.example.com/"), "a=1", "the host");
    ok &= same(hdr(jar, "http://WWW.EXAMPLE.COM/"), "a=1", "the host in upper case");
    ok &= same(hdr(jar, "http://sub.www.example.com/"), "", "a subdomain");
    ok &= same(hdr(jar, "http://example.com/"), "", "the parent");
    /* Domain equal to the host: a domain cookie, subdomains included. */
    ok &= set(jar, "http://www.example.com/", "b=1; Domain=www.example.com") == 1;
    ok &= same(hdr(jar, "http://sub.www.example.com/"), "b=1", "Domain=host");
    tap_ok(ok, "cookie_host_only: without Domain only the exact host gets the cookie");
    ag_cookie_jar_free(jar);
}

static void cookie_path_rules(void)
{
    ag_cookie_jar *jar = jar_at(T0);
    bool ok = set(jar, "http://h.example/a/b/c?q=/x/y", "d=1") == 1; /* default path /a/b */
    ok &= set(jar, "http://h.example/p", "p=1; Path=/p") == 1;
    ok &= set(jar, "http://h.example/", "s=1; Path=/s/") == 1;
    ok &= set(jar, "http://h.example/x/y", "r=1; Path=relative") == 1; /* default path /x */
    ok &= set(jar, "http://h.example/top", "t=1") == 1;                /* default path / */
    struct {
        const char *url, *want;
    } cases[] = {
        {"http://h.example/a/b", "d=1; t=1"},   {"http://h.example/a/b/", "d=1; t=1"},
        {"http://h.example/a/b/z", "d=1; t=1"}, {"http://h.example/a/b?x", "d=1; t=1"},
        {"http://h.example/a/bx", "t=1"},       {"http://h.example/a", "t=1"},
        {"http://h.example/p", "p=1; t=1"},     {"http://h.example/p/q", "p=1; t=1"},
        {"http://h.example/pq", "t=1"},         {"http://h.example/p?x", "p=1; t=1"},
        {"http://h.example/s/", "s=1; t=1"},    {"http://h.example/s/x", "s=1; t=1"},
        {"http://h.example/s", "t=1"},          {"http://h.example/x/z", "r=1; t=1"},
        {"http://h.example/A/b", "t=1"}, /* paths are case-sensitive */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        ok &= same(hdr(jar, cases[i].url), cases[i].want, cases[i].url);
    tap_ok(ok, "cookie_path_rules: default path, Path prefix on a '/' boundary, query ignored");
    ag_cookie_jar_free(jar);
}

static void cookie_public_suffix_refused(void)
{
    ag_cookie_jar *jar = jar_at(T0);
    bool ok = set(jar, "http://example.com/", "a=1; Domain=com") == 0;
    ok &= set(jar, "http://www.example.co.uk/", "a=1; Domain=co.uk") == 0;
    ok &= set(jar, "http://www.example.co.uk/", "a=1; Domain=.uk") == 0;
    /* github.io is in the list's private section: one user's pages must not set cookies for
     * every other user's. */
    ok &= set(jar, "https://alice.github.io/", "a=1; Domain=github.io") == 0;
    /* An unlisted top-level name counts as a suffix (the list's implicit "*" rule). */
    ok &= set(jar, "http://a.b.test/", "a=1; Domain=test") == 0;
    ok &= ag_cookie_jar_count(jar) == 0;
    /* One label more than the suffix is a registrable domain. */
    ok &= set(jar, "http://www.example.co.uk/", "b=1; Domain=example.co.uk") == 1;
    ok &= set(jar, "https://x.alice.github.io/", "c=1; Domain=alice.github.io") == 1;
    ok &= same(hdr(jar, "http://other.example.co.uk/"), "b=1", "example.co.uk");
    ok &= same(hdr(jar, "https://alice.github.io/"), "c=1", "alice.github.io");
    ok &= same(hdr(jar, "https://bob.github.io/"), "", "bob.github.io");
    tap_ok(ok, "cookie_public_suffix_refused: com, co.uk, github.io (private section) and an "
               "unlisted TLD refused as Domain");
    ag_cookie_jar_free(jar);
}

static void cookie_public_suffix_host_itself(void)
{
    ag_cookie_jar *jar = jar_at(T0);
    bool ok = set(jar, "https://github.io/", "a=1; Domain=github.io") == 1;
    ok &= set(jar, "http://co.uk/", "b=1; Domain=.co.uk") == 1;
    ok &= same(hdr(jar, "https://github.io/"), "a=1", "github.io itself");
    ok &= same(hdr(jar, "https://alice.github.io/"), "", "a subdomain of github.io");
    ok &= same(hdr(jar, "http://co.uk/"), "b=1", "co.uk itself");
    ok &= same(hdr(jar, "http://example.co.uk/"), "", "a subdomain of co.uk");
    tap_ok(ok, "cookie_public_suffix_host_itself: Domain equal to a suffix the host is becomes "
               "host-only");
    ag_cookie_jar_free(jar);
}

static void cookie_ip_hosts_exact(void)
{
    ag_cookie_jar *jar = jar_at(T0);
    bool ok = set(jar, "http://192.168.1.2/", "a=1") == 1;
    ok &= set(jar, "http://192.168.1.2/", "b=1; Domain=168.1.2") == 0;
    ok &= set(jar, "http://192.168.1.2/", "c=1; Domain=1.2") == 0;
    ok &= set(jar, "http://192.168.1.2/", "d=1; Domain=192.168.1.2") == 1;
    ok &= set(jar, "http://[2001:db8::1]/", "e=1") == 1;
    ok &= set(jar, "http://[2001:db8::1]/", "f=1; Domain=db8::1") == 0;
    ok &= same(hdr(jar, "http://192.168.1.2/"), "a=1; d=1", "the address");
    ok &= same(hdr(jar, "http://x.192.168.1.2/"), "", "a name ending in the address");
    ok &= same(hdr(jar, "http://[2001:db8::1]:8080/"), "e=1", "IPv6, another port");
    ok &= same(hdr(jar, "http://[2001:db8::2]/"), "", "another IPv6 address");
    tap_ok(ok, "cookie_ip_hosts_exact: an IP address host matches only itself");
    ag_cookie_jar_free(jar);
}

static void cookie_secure(void)
{
    ag_cookie_jar *jar = jar_at(T0);
    bool ok = set(jar, "http://example.com/", "a=1; Secure") == 0;
    ok &= set(jar, "https://example.com/", "b=1; secure") == 1;
    ok &= set(jar, "http://example.com/", "c=1") == 1;
    ok &= same(hdr(jar, "http://example.com/"), "c=1", "over http");
    ok &= same(hdr(jar, "https://example.com/"), "b=1; c=1", "over https");
    /* Loopback counts as a secure origin, as in browsers and curl. */
    ok &= set(jar, "http://localhost:8080/", "l=1; Secure") == 1;
    ok &= set(jar, "http://127.0.0.1:8080/", "i=1; Secure") == 1;
    ok &= set(jar, "http://[::1]:8080/", "j=1; Secure") == 1;
    ok &= same(hdr(jar, "http://localhost:9/"), "l=1", "localhost");
    ok &= same(hdr(jar, "http://127.0.0.1/"), "i=1", "127.0.0.1");
    ok &= set(jar, "http://notlocalhost/", "n=1; Secure") == 0;
    ok &= set(jar, "http://127.0.0.1.example/", "n=1; Secure") == 0;
    tap_ok(ok, "cookie_secure: not set from http, not sent over http; loopback counts as secure");
    ag_cookie_jar_free(jar);
}

static void cookie_secure_left_alone(void)
{
    ag_cookie_jar *jar = jar_at(T0);
    bool ok = set(jar, "https://www.example.com/", "sid=good; Secure; Domain=example.com") == 1;
    /* From http, no cookie of that name may shadow or replace it where its domain and path
     * meet the new one's (RFC 6265bis section 5.7, "Leave Secure Cookies Alone"). */
    ok &= set(jar, "http://www.example.com/", "sid=evil") == 0;
    ok &= set(jar, "http://a.example.com/", "sid=evil; Domain=example.com; Path=/x") == 0;
    ok &= set(jar, "http://example.com/", "sid=evil; Max-Age=0") == 0;
    /* The other way: a host-only Secure cookie under a wider Domain from http. */
    ok &= set(jar, "https://www.example.com/", "h=good; Secure") == 1;
    ok &= set(jar, "http://a.example.com/", "h=evil; Domain=example.com") == 0;
    ok &= same(hdr(jar, "https://www.example.com/x"), "sid=good; h=good", "the secure cookies");
    /* Another name, or from https, is another matter. */
    ok &= set(jar, "http://www.example.com/", "other=1") == 1;
    ok &= set(jar, "https://www.example.com/", "sid=new; Secure; Domain=example.com") == 1;
    ok &= same(hdr(jar, "https://www.example.com/"), "sid=new; h=good; other=1",
               "replaced over https");
    tap_ok(ok, "cookie_secure_left_alone: http cannot overwrite or shadow a Secure cookie");
    ag_cookie_jar_free(jar);
}

static void cookie_name_prefixes(void)
{
    ag_cookie_jar *jar = jar_at(T0);
    bool ok = set(jar, "https://www.example.com/", "__Secure-a=1") == 0;
    ok &= set(jar, "https://www.example.com/", "__Secure-b=1; Secure; Domain=example.com") == 1;
    ok &= set(jar, "https://www.example.com/", "__Host-c=1; Secure; Path=/") == 1;
    ok &= set(jar, "https://www.example.com/", "__Host-d=1; Secure") == 0; /* no Path=/ */
    ok &=
        set(jar, "https://www.example.com/", "__Host-e=1; Secure; Path=/; Domain=example.com") == 0;
    ok &= set(jar, "https://www.example.com/x", "__Host-f=1; Path=/") == 0; /* not Secure */
    ok &= set(jar, "https://www.example.com/", "__host-g=1; Path=/") == 0;  /* any case */
    ok &= same(hdr(jar, "https://www.example.com/"), "__Secure-b=1; __Host-c=1", "kept");
    tap_ok(ok, "cookie_name_prefixes: __Secure- needs Secure, __Host- also Path=/ and no Domain");
    ag_cookie_jar_free(jar);
}

static void cookie_replace_keeps_creation(void)
{
    ag_cookie_jar *jar = jar_at(T0);
    bool ok = set(jar, "http://example.com/", "a=1") == 1;
    ok &= set(jar, "http://example.com/", "b=2") == 1;
    ok &= set(jar, "http://example.com/", "a=3") == 1;
    ok &= same(hdr(jar, "http://example.com/"), "a=3; b=2", "replaced");
    ok &= ag_cookie_jar_count(jar) == 2;
    /* Another path, or host-only against Domain, is another cookie. */
    ok &= set(jar, "http://example.com/", "a=4; Path=/x") == 1;
    ok &= ag_cookie_jar_count(jar) == 3;
    tap_ok(ok, "cookie_replace_keeps_creation: same name, domain and path replace in place");
    ag_cookie_jar_free(jar);
}

static void cookie_order(void)
{
    ag_cookie_jar *jar = jar_at(T0);
    bool ok = set(jar, "http://example.com/", "a=1; Path=/") == 1;
    ok &= set(jar, "http://example.com/", "b=2; Path=/x/y") == 1;
    ok &= set(jar, "http://example.com/", "c=3; Path=/x") == 1;
    ok &= set(jar, "http://example.com/", "d=4; Path=/x") == 1;
    ok &= set(jar, "http://example.com/", "e=5; Path=/") == 1;
    ok &= same(hdr(jar, "http://example.com/x/y/z"), "b=2; c=3; d=4; a=1; e=5", "order");
    tap_ok(ok, "cookie_order: longer paths first, then earlier creation");
    ag_cookie_jar_free(jar);
}

static void cookie_size_limit(void)
{
    ag_cookie_jar *jar = jar_at(T0);
    size_t n = AG__COOKIE_MAX_BYTES + 2 + 32;
    char *sc = malloc(n);
    memset(sc, 'v', n);
    memcpy(sc, "nm=", 3);
    sc[AG__COOKIE_MAX_BYTES + 1] = 0; /* "nm" and 4094 bytes of value: 4096 */
    bool ok = set(jar, "http://example.com/", sc) == 1;
    sc[AG__COOKIE_MAX_BYTES + 1] = 'v';
    sc[AG__COOKIE_MAX_BYTES + 2] = 0; /* 4097 */
    memcpy(sc, "n2=", 3);
    ok &= set(jar, "http://example.com/", sc) == 0;
    ok &= ag_cookie_jar_count(jar) == 1;
    free(sc);
    tap_ok(ok, "cookie_size_limit: %d bytes of name and value kept, one more refused",
           AG__COOKIE_MAX_BYTES);
    ag_cookie_jar_free(jar);
}

static void cookie_per_domain_limit(void)
{
    ag_cookie_jar *jar = jar_at(T0);
    char sc[64];
    bool ok = set(jar, "http://a.example.com/", "c0=0; Path=/keep") == 1;
    for (int i = 1; i < AG__COOKIE_MAX_PER_DOMAIN; i++) {
        /* Alternate hosts: the limit counts the registrable domain, example.com. */
        snprintf(sc, sizeof sc, "c%d=%d; Path=/other", i, i);
        ok &= set(jar, i % 2 ? "http://b.example.com/" : "http://a.example.com/", sc) == 1;
    }
    ok &= set(jar, "http://example.org/", "o=1") == 1; /* another domain, not counted */
    /* c0, the oldest, is read now: c1 becomes the least recently accessed. */
    ok &= same(hdr(jar, "http://a.example.com/keep"), "c0=0", "c0");
    ok &= set(jar, "http://a.example.com/", "new=1; Path=/keep") == 1;
    ok &= ag_cookie_jar_count(jar) == AG__COOKIE_MAX_PER_DOMAIN + 1;
    ok &= same(hdr(jar, "http://a.example.com/keep"), "c0=0; new=1", "after eviction");
    ok &= strstr(hdr(jar, "http://b.example.com/other"), "c1=") == NULL;
    ok &= strstr(hdr(jar, "http://b.example.com/other"), "c3=3") != NULL;
    ok &= same(hdr(jar, "http://example.org/"), "o=1", "the other domain");
    tap_ok(ok,
           "cookie_per_domain_limit: %d per registrable domain, the least recently accessed "
           "goes",
           AG__COOKIE_MAX_PER_DOMAIN);
    ag_cookie_jar_free(jar);
}

static void cookie_ip_limit_per_address(void)
{
    ag_cookie_jar *jar = jar_at(T0);
    char sc[32];
    bool ok = true;
    for (int i = 0; i < AG__COOKIE_MAX_PER_DOMAIN; i++) {
        snprintf(sc, sizeof sc, "c%d=1", i);
        ok &= set(jar, "http://10.0.1.2/", sc) == 1;
    }
    /* Another address that ends in the same two numbers is not the same "domain". */
    ok &= set(jar, "http://192.168.1.2/", "other=1") == 1;
    ok &= ag_cookie_jar_count(jar) == AG__COOKIE_MAX_PER_DOMAIN + 1;
    tap_ok(ok,
           "cookie_ip_limit_per_address: the per-domain limit counts each address apart "
           "(%zu cookies)",
           ag_cookie_jar_count(jar));
    ag_cookie_jar_free(jar);
}

static void cookie_total_limit(void)
{
    ag_cookie_jar *jar = jar_at(T0);
    char url[64];
    bool ok = true;
    for (int i = 0; i < AG__COOKIE_MAX_TOTAL; i++) {
        snprintf(url, sizeof url, "http://h%d.example/", i);
        ok &= set(jar, url, "c=1") == 1;
    }
    ok &= ag_cookie_jar_count(jar) == AG__COOKIE_MAX_TOTAL;
    ok &= same(hdr(jar, "http://h0.example/"), "c=1", "h0 read"); /* h1 is now the least recent */
    ok &= set(jar, "http://new.example/", "c=1") == 1;
    ok &= ag_cookie_jar_count(jar) == AG__COOKIE_MAX_TOTAL;
    ok &= same(hdr(jar, "http://h0.example/"), "c=1", "h0 kept");
    ok &= same(hdr(jar, "http://h1.example/"), "", "h1 evicted");
    ok &= same(hdr(jar, "http://new.example/"), "c=1", "the new one");
    tap_ok(ok, "cookie_total_limit: %d in all, the least recently accessed goes",
           AG__COOKIE_MAX_TOTAL);
    ag_cookie_jar_free(jar);
}

static char tmpdir[64];

static char *text_of(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return NULL;
    char *s = calloc(1, 65536);
    size_t n = fread(s, 1, 65535, fp);
    s[n] = 0;
    fclose(fp);
    return s;
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
}

static void cookie_file_round_trip(void)
{
    char p1[128], p2[128];
    snprintf(p1, sizeof p1, "%s/one.txt", tmpdir);
    snprintf(p2, sizeof p2, "%s/two.txt", tmpdir);
    ag_cookie_jar *jar = jar_at(T0);
    bool ok = set(jar, "https://www.example.com/app/x", "host=1; HttpOnly") == 1;
    ok &= set(jar, "https://www.example.com/", "dom=2; Domain=example.com; Secure; Max-Age=3600") ==
          1;
    ok &= set(jar, "http://192.168.1.2/", "ip=3; Path=/p; Expires=Fri, 31 Dec 9999 23:59:59 GMT") ==
          1;
    ok &= set(jar, "http://example.org/", "empty=") == 1;
    ok &= ag_cookie_jar_save(jar, p1) == 0;
    ag_cookie_jar *back = jar_at(T0);
    ok &= ag_cookie_jar_load(back, p1) == 4;
    ok &= ag_cookie_jar_count(back) == 4;
    const char *urls[] = {"https://www.example.com/app/x", "https://a.example.com/",
                          "http://www.example.com/app/", "http://192.168.1.2/p/q",
                          "http://example.org/"};
    for (size_t i = 0; i < sizeof urls / sizeof *urls; i++)
        ok &= same(hdr(back, urls[i]), hdr(jar, urls[i]), urls[i]);
    ok &= ag_cookie_jar_save(back, p2) == 0;
    char *t1 = text_of(p1), *t2 = text_of(p2);
    ok &= t1 && t2 && same(t2, t1, "the second file");
    ok &= t1 && strstr(t1, "#HttpOnly_www.example.com\tFALSE\t/app\tFALSE\t0\thost\t1\n") &&
          strstr(t1, ".example.com\tTRUE\t/\tTRUE\t1700003600\tdom\t2\n") &&
          strstr(t1, "192.168.1.2\tFALSE\t/p\tFALSE\t253402300799\tip\t3\n") &&
          strstr(t1, "example.org\tFALSE\t/\tFALSE\t0\tempty\t\n");
    if (t1 && !ok)
        tap_diag("file:\n%s", t1);
    free(t1);
    free(t2);
    tap_ok(ok, "cookie_file_round_trip: a saved jar loads back the same, and saves the same "
               "bytes");
    ag_cookie_jar_free(jar);
    ag_cookie_jar_free(back);
}

static void cookie_file_from_curl(void)
{
    char p[128];
    snprintf(p, sizeof p, "%s/curl.txt", tmpdir);
    /* What curl -c writes (docs/http-cookies.md): its three comment lines, a blank line, then
     * one cookie per line. */
    write_text(p, "# Netscape HTTP Cookie File\n"
                  "# https://curl.se/docs/http-cookies.html\n"
                  "# This file was generated by libcurl! Edit at your own risk.\n"
                  "\n"
                  ".example.com\tTRUE\t/\tFALSE\t0\tsess\ts1\n"
                  "#HttpOnly_www.example.com\tFALSE\t/app\tTRUE\t4102444800\ttok\tabc\n"
                  "example.org\tFALSE\t/\tFALSE\t1\told\tgone\n"
                  "example.net\tFALSE\t/\tFALSE\t0\tnoval\n"
                  "example.edu\tFALSE\t/\tFALSE\t0\tcrlf\tv\r\n");
    ag_cookie_jar *jar = jar_at(T0);
    bool ok = ag_cookie_jar_load(jar, p) == 4;
    ok &= same(hdr(jar, "https://www.example.com/app/1"), "tok=abc; sess=s1", "www");
    ok &= same(hdr(jar, "http://www.example.com/app/1"), "sess=s1", "www over http");
    ok &= same(hdr(jar, "http://a.b.example.com/"), "sess=s1", "a subdomain");
    ok &= same(hdr(jar, "https://x.www.example.com/app"), "sess=s1", "tok is host-only");
    ok &= same(hdr(jar, "http://example.org/"), "", "expired");
    ok &= same(hdr(jar, "http://example.net/"), "noval=", "six fields");
    ok &= same(hdr(jar, "http://example.edu/"), "crlf=v", "CR LF line end");
    /* A session cookie of the file is a session cookie. */
    ag_cookie_jar_clear_session(jar);
    ok &= same(hdr(jar, "https://www.example.com/app/1"), "tok=abc", "after clear_session");
    tap_ok(ok, "cookie_file_from_curl: a file as curl writes it: dot and subdomain flag, "
               "#HttpOnly_, 0 for session, expired skipped");
    ag_cookie_jar_free(jar);
}

static void cookie_file_malformed_skipped(void)
{
    char p[128];
    snprintf(p, sizeof p, "%s/bad.txt", tmpdir);
    write_text(p, "example.com\tFALSE\t/\tFALSE\t0\n"             /* five fields */
                  "example.com\tYES\t/\tFALSE\t0\ta\t1\n"         /* bad flag */
                  "example.com\tFALSE\tnoslash\tFALSE\t0\ta\t1\n" /* path */
                  "example.com\tFALSE\t/\tFALSE\t12x\ta\t1\n"     /* expiry */
                  "example.com\tFALSE\t/\tFALSE\t-5\ta\t1\n"      /* negative expiry */
                  "example.com\tFALSE\t/\tFALSE\t0\t\t1\n"        /* empty name */
                  "example.com\tFALSE\t/\tFALSE\t0\ta\t1\tx\n"    /* eight fields */
                  ".com\tTRUE\t/\tFALSE\t0\ta\t1\n"               /* a public suffix */
                  ".co.uk\tTRUE\t/\tFALSE\t0\ta\t1\n"             /* another */
                  "\tFALSE\t/\tFALSE\t0\ta\t1\n"                  /* empty domain */
                  "example.com\tFALSE\t/\tFALSE\t0\ta\t1\x01\n"   /* a control byte */
                  "   \n"                                         /* blank */
                  "# a comment\tFALSE\t/\tFALSE\t0\ta\t1\n"       /* a comment */
                  "good.example\tFALSE\t/\tFALSE\t0\tok\t1\n");
    ag_cookie_jar *jar = jar_at(T0);
    bool ok = ag_cookie_jar_load(jar, p) == 1;
    ok &= ag_cookie_jar_count(jar) == 1;
    ok &= same(hdr(jar, "http://good.example/"), "ok=1", "the good line");
    ok &= same(hdr(jar, "http://x.com/"), "", "no .com cookie");
    tap_ok(ok, "cookie_file_malformed_skipped: only the well-formed line is added");
    ag_cookie_jar_free(jar);
}

static void cookie_file_errors_and_mode(void)
{
    char p[128], missing[128];
    snprintf(p, sizeof p, "%s/mode.txt", tmpdir);
    snprintf(missing, sizeof missing, "%s/none/x.txt", tmpdir);
    ag_cookie_jar *jar = jar_at(T0);
    bool ok = ag_cookie_jar_load(jar, missing) == -ENOENT;
    ok &= ag_cookie_jar_load(jar, tmpdir) == -EISDIR;
    ok &= ag_cookie_jar_save(jar, missing) == -ENOENT;
    write_text(p, "old contents\n");
    chmod(p, 0644);
    ok &= set(jar, "http://example.com/", "a=1") == 1;
    ok &= ag_cookie_jar_save(jar, p) == 0;
    struct stat st;
    ok &= stat(p, &st) == 0 && (st.st_mode & 0777) == 0600;
    /* No temporary file is left beside it. */
    int files = 0;
    DIR *d = opendir(tmpdir);
    for (struct dirent *e; d && (e = readdir(d));)
        files += strncmp(e->d_name, "mode.txt", 8) == 0;
    if (d)
        closedir(d);
    ok &= files == 1;
    tap_ok(ok, "cookie_file_errors_and_mode: -ENOENT for a missing file or directory, -EISDIR "
               "for a directory, saved 0600 by a rename, no temporary left");
    ag_cookie_jar_free(jar);
}

static void cookie_clear_session(void)
{
    ag_cookie_jar *jar = jar_at(T0);
    bool ok = set(jar, "http://example.com/", "s=1") == 1;
    ok &= set(jar, "http://example.com/", "p=1; Max-Age=60") == 1;
    ok &= set(jar, "http://example.com/", "e=1; Expires=Fri, 31 Dec 9999 23:59:59 GMT") == 1;
    ag_cookie_jar_clear_session(jar);
    ok &= same(hdr(jar, "http://example.com/"), "p=1; e=1", "after");
    tap_ok(ok, "cookie_clear_session: session cookies go, persistent ones stay");
    ag_cookie_jar_free(jar);
}

static void cookie_api_arguments(void)
{
    ag_cookie_jar *jar = jar_at(T0);
    char *v = (char *)"x";
    bool ok = set(jar, "not a url", "a=1") == -EINVAL;
    ok &= set(jar, NULL, "a=1") == -EINVAL && set(jar, "http://e.com/", NULL) == -EINVAL;
    ok &= set(NULL, "http://e.com/", "a=1") == -EINVAL;
    ok &= ag_cookie_jar_header(jar, "ftp://e.com/", &v) == -EINVAL && v == NULL;
    ok &= ag_cookie_jar_header(jar, "http://e.com/", NULL) == -EINVAL;
    v = (char *)"x";
    ok &= ag_cookie_jar_header(jar, "http://e.com/", &v) == 0 && v == NULL;
    ok &= ag_cookie_jar_count(NULL) == 0;
    ag_cookie_jar_free(NULL);
    ag_cookie_jar_clear_session(NULL);
    tap_ok(ok, "cookie_api_arguments: -EINVAL for a malformed url or NULL, NULL when none match");
    ag_cookie_jar_free(jar);
}

typedef struct worker {
    ag_cookie_jar *jar;
    int id;
    int seen; /* headers that held this thread's own last cookie */
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    char url[64], sc[64], want[32];
    snprintf(url, sizeof url, "http://t%d.example.com/", w->id);
    for (int i = 0; i < 2000; i++) {
        snprintf(sc, sizeof sc, "k%d=%d; Domain=example.com", i % 50, i);
        ag_cookie_jar_set(w->jar, url, sc);
        snprintf(sc, sizeof sc, "own=%d", i);
        ag_cookie_jar_set(w->jar, url, sc);
        char *v = NULL;
        if (ag_cookie_jar_header(w->jar, url, &v) == 0 && v) {
            snprintf(want, sizeof want, "own=%d", i);
            w->seen += strstr(v, want) != NULL;
        }
        free(v);
    }
    return NULL;
}

static void cookie_threads_share_jar(void)
{
    ag_cookie_jar *jar = jar_at(0);
    worker w[2] = {{jar, 1, 0}, {jar, 2, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, work, &w[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    /* 50 domain cookies shared by both threads, and one host-only cookie each. */
    bool ok = ag_cookie_jar_count(jar) == 52 && w[0].seen == 2000 && w[1].seen == 2000;
    if (!ok)
        tap_diag("count %zu, seen %d and %d", ag_cookie_jar_count(jar), w[0].seen, w[1].seen);
    tap_ok(ok, "cookie_threads_share_jar: two threads set and read one jar");
    ag_cookie_jar_free(jar);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ag-cookie-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    cookie_parse_name_value();
    cookie_parse_refuses_malformed();
    cookie_parse_unknown_attributes_ignored();
    cookie_date_formats();
    cookie_expires_with_time();
    cookie_max_age_wins_over_expires();
    cookie_max_age_zero_deletes();
    cookie_domain_attribute();
    cookie_host_only();
    cookie_path_rules();
    cookie_public_suffix_refused();
    cookie_public_suffix_host_itself();
    cookie_ip_hosts_exact();
    cookie_secure();
    cookie_secure_left_alone();
    cookie_name_prefixes();
    cookie_replace_keeps_creation();
    cookie_order();
    cookie_size_limit();
    cookie_per_domain_limit();
    cookie_ip_limit_per_address();
    cookie_total_limit();
    cookie_file_round_trip();
    cookie_file_from_curl();
    cookie_file_malformed_skipped();
    cookie_file_errors_and_mode();
    cookie_clear_session();
    cookie_api_arguments();
    cookie_threads_share_jar();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        tap_diag("could not remove %s", tmpdir);
    return tap_done();
}
