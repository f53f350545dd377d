/* test-url.c: URL parsing, resolving, Host headers and header checks: tables and a fuzz loop. */
#include "asyncget.h"
#include "http/url.h"
#include "tests/tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------------
 * Helpers. */

/* Every input is copied flush against a PROT_NONE page, so reading one byte past its NUL
 * crashes the test instead of passing unnoticed. */
static char *guard_base;
static size_t guard_page;

static void guard_init(void)
{
    guard_page = (size_t)sysconf(_SC_PAGESIZE);
    void *p =
        mmap(NULL, 2 * guard_page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || mprotect((char *)p + guard_page, guard_page, PROT_NONE) != 0) {
        tap_diag("guard page setup failed");
        exit(1);
    }
    guard_base = p;
}

static const char *guarded(const char *s, size_t n)
{
    if (n + 1 > guard_page) {
        tap_diag("input too long for the guard page");
        exit(1);
    }
    char *p = guard_base + guard_page - (n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static const char *guarded_str(const char *s)
{
    return guarded(s, strlen(s));
}

static bool str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

/* A failed parse must leave the struct zeroed: nothing to free, nothing dangling. */
static bool is_zeroed(const ag__url *u)
{
    return !u->scheme && !u->host && !u->port && !u->port_given && !u->ipv6 && !u->userinfo &&
           !u->target && !u->buf;
}

/* The same struct seen as garbage first, so that zeroing on failure is really checked. */
static void scribble(ag__url *u)
{
    memset(u, 0xa5, sizeof *u);
}

/* ---------------------------------------------------------------------------------------------
 * ag__url_parse. */

typedef struct parse_case {
    const char *name;
    const char *text;
    int rc;
    const char *scheme;
    const char *host;
    int port;
    bool port_given;
    bool ipv6;
    const char *userinfo;
    const char *target;
} parse_case;

#define OK(name, text, scheme, host, port, given, v6, userinfo, target)                            \
    {                                                                                              \
        name, text, 0, scheme, host, port, given, v6, userinfo, target                             \
    }
#define BAD(name, text, rc)                                                                        \
    {                                                                                              \
        name, text, rc, NULL, NULL, 0, false, false, NULL, NULL                                    \
    }

static const parse_case parse_cases[] = {
    /* The plainest form. */
    OK("url_parse_simple", "http://example.com/", "http", "example.com", 80, false, false, NULL,
       "/"),
    /* No path at all: the target becomes "/". */
    OK("url_parse_no_path", "http://h", "http", "h", 80, false, false, NULL, "/"),
    /* Scheme and host are case-insensitive and come out lower case; an explicit default port. */
    OK("url_parse_upper_case", "HTTP://H.EXAMPLE:80/", "http", "h.example", 80, true, false, NULL,
       "/"),
    /* https defaults to 443. */
    OK("url_parse_https", "https://h/", "https", "h", 443, false, false, NULL, "/"),
    /* Mixed-case https with a port; the path keeps its case. */
    OK("url_parse_https_port", "HtTpS://h:8443/X", "https", "h", 8443, true, false, NULL, "/X"),
    /* The highest port. */
    OK("url_parse_port_max", "http://h:65535/", "http", "h", 65535, true, false, NULL, "/"),
    /* The lowest port. */
    OK("url_parse_port_min", "http://h:1/", "http", "h", 1, true, false, NULL, "/"),
    /* An empty port means the default and does not count as given. */
    OK("url_parse_port_empty", "http://h:/p", "http", "h", 80, false, false, NULL, "/p"),
    /* Leading zeros in a port are digits like any other. */
    OK("url_parse_port_leading_zero", "http://h:00080/", "http", "h", 80, true, false, NULL, "/"),
    /* A query without a path gets "/" in front. */
    OK("url_parse_query_no_path", "http://h?q", "http", "h", 80, false, false, NULL, "/?q"),
    /* An empty query keeps its '?'. */
    OK("url_parse_query_empty", "http://h/p?", "http", "h", 80, false, false, NULL, "/p?"),
    /* The fragment is dropped, the query kept. */
    OK("url_parse_fragment_dropped", "http://h/p?a=1&b=2#frag", "http", "h", 80, false, false, NULL,
       "/p?a=1&b=2"),
    /* A fragment right after the host. */
    OK("url_parse_fragment_only", "http://h#f", "http", "h", 80, false, false, NULL, "/"),
    /* Escapes are not decoded in the target. */
    OK("url_parse_escape_kept", "http://h/a%20b%4A%4a", "http", "h", 80, false, false, NULL,
       "/a%20b%4A%4a"),
    /* Userinfo is kept apart from the host. */
    OK("url_parse_userinfo", "http://user:pw@h/", "http", "h", 80, false, false, "user:pw", "/"),
    /* An empty userinfo is still a userinfo. */
    OK("url_parse_userinfo_empty", "http://@h/", "http", "h", 80, false, false, "", "/"),
    /* An escaped '@' inside the userinfo. */
    OK("url_parse_userinfo_escaped", "http://u%40x:p@h:81/", "http", "h", 81, true, false,
       "u%40x:p", "/"),
    /* IPv6 loopback with a port, query and fragment. */
    OK("url_parse_ipv6_port", "http://[::1]:8080/p?q#f", "http", "::1", 8080, true, true, NULL,
       "/p?q"),
    /* The unspecified address, all elided. */
    OK("url_parse_ipv6_all_elided", "http://[::]/", "http", "::", 80, false, true, NULL, "/"),
    /* IPv6 hex digits come out lower case. */
    OK("url_parse_ipv6_lower", "http://[2001:DB8::A]/", "http", "2001:db8::a", 80, false, true,
       NULL, "/"),
    /* Eight full groups. */
    OK("url_parse_ipv6_full", "http://[1:2:3:4:5:6:7:8]/", "http", "1:2:3:4:5:6:7:8", 80, false,
       true, NULL, "/"),
    /* Trailing "::". */
    OK("url_parse_ipv6_trailing_elided", "https://[1::]/", "https", "1::", 443, false, true, NULL,
       "/"),
    /* An IPv4-mapped address. */
    OK("url_parse_ipv6_mapped_v4", "http://[::ffff:192.0.2.1]/", "http", "::ffff:192.0.2.1", 80,
       false, true, NULL, "/"),
    /* Six groups and an embedded IPv4 address make eight. */
    OK("url_parse_ipv6_six_plus_v4", "http://[1:2:3:4:5:6:1.2.3.4]/", "http", "1:2:3:4:5:6:1.2.3.4",
       80, false, true, NULL, "/"),
    /* An IPv4 address is a reg-name. */
    OK("url_parse_ipv4", "http://192.0.2.1:8080/x", "http", "192.0.2.1", 8080, true, false, NULL,
       "/x"),
    /* Unreserved characters in a host name. */
    OK("url_parse_host_unreserved", "http://a_b.c-d~e/", "http", "a_b.c-d~e", 80, false, false,
       NULL, "/"),
    /* Sub-delims are reg-name characters too. */
    OK("url_parse_host_sub_delims", "http://a!$&'()*+,;=b/", "http", "a!$&'()*+,;=b", 80, false,
       false, NULL, "/"),
    /* A valid escape in a host is kept escaped. */
    OK("url_parse_host_escape", "http://%41.Example/", "http", "%41.example", 80, false, false,
       NULL, "/"),
    /* Dot segments are sent as written: only resolution removes them. */
    OK("url_parse_dots_kept", "http://h/a/../b/./c", "http", "h", 80, false, false, NULL,
       "/a/../b/./c"),
    /* Every pchar and '/' '?' in the query. */
    OK("url_parse_pchars", "http://h/p:@!$&'()*+,;=/?q/?:@", "http", "h", 80, false, false, NULL,
       "/p:@!$&'()*+,;=/?q/?:@"),
    /* Visible characters RFC 3986 would escape are sent as they are. */
    OK("url_parse_lenient_path", "http://h/{x}|y^\"<>`[]", "http", "h", 80, false, false, NULL,
       "/{x}|y^\"<>`[]"),

    /* A space in the path. */
    BAD("url_parse_space", "http://h/a b", AG_EURL),
    /* Header injection through CR LF. */
    BAD("url_parse_crlf", "http://h/\r\nX: y", AG_EURL),
    /* A tab. */
    BAD("url_parse_tab", "http://h/\ta", AG_EURL),
    /* DEL. */
    BAD("url_parse_del", "http://h/\x7f", AG_EURL),
    /* A control byte in the host. */
    BAD("url_parse_ctl_host", "http://h\x01x/", AG_EURL),
    /* Raw UTF-8. */
    BAD("url_parse_non_ascii", "http://h/\xc3\xa9", AG_EURL),
    /* Raw UTF-8 in the host. */
    BAD("url_parse_non_ascii_host", "http://\xc3\xa9.example/", AG_EURL),
    /* A backslash where a slash should be. */
    BAD("url_parse_backslash_host", "http://h\\p", AG_EURL),
    /* A backslash in the path. */
    BAD("url_parse_backslash_path", "http://h/a\\b", AG_EURL),
    /* Port 0. */
    BAD("url_parse_port_zero", "http://h:0/", AG_EURL),
    /* Port 65536. */
    BAD("url_parse_port_too_big", "http://h:65536/", AG_EURL),
    /* A port that overflows every integer type. */
    BAD("url_parse_port_overflow", "http://h:99999999999999999999999/", AG_EURL),
    /* A letter in the port. */
    BAD("url_parse_port_letter", "http://h:8a/", AG_EURL),
    /* A sign in the port. */
    BAD("url_parse_port_minus", "http://h:-1/", AG_EURL),
    /* A plus sign in the port. */
    BAD("url_parse_port_plus", "http://h:+80/", AG_EURL),
    /* Two ports. */
    BAD("url_parse_port_twice", "http://h:80:81/", AG_EURL),
    /* "::" twice. */
    BAD("url_parse_ipv6_double_elision", "http://[1::2::3]/", AG_EURL),
    /* Nine groups. */
    BAD("url_parse_ipv6_nine_groups", "http://[1:2:3:4:5:6:7:8:9]/", AG_EURL),
    /* Seven groups without "::". */
    BAD("url_parse_ipv6_seven_groups", "http://[1:2:3:4:5:6:7]/", AG_EURL),
    /* Eight groups and "::" too. */
    BAD("url_parse_ipv6_eight_and_elision", "http://[1:2:3:4::5:6:7:8]/", AG_EURL),
    /* A group of five digits. */
    BAD("url_parse_ipv6_long_group", "http://[12345::]/", AG_EURL),
    /* A non-hex digit. */
    BAD("url_parse_ipv6_non_hex", "http://[::g]/", AG_EURL),
    /* Zone IDs are not supported. */
    BAD("url_parse_ipv6_zone", "http://[fe80::1%25eth0]/", AG_EURL),
    /* An embedded IPv4 octet over 255. */
    BAD("url_parse_ipv6_v4_octet", "http://[::1.2.3.256]/", AG_EURL),
    /* An embedded IPv4 octet with a leading zero. */
    BAD("url_parse_ipv6_v4_leading_zero", "http://[::01.2.3.4]/", AG_EURL),
    /* An embedded IPv4 address with three octets. */
    BAD("url_parse_ipv6_v4_short", "http://[::1.2.3]/", AG_EURL),
    /* An embedded IPv4 address not at the end. */
    BAD("url_parse_ipv6_v4_not_last", "http://[::1.2.3.4:5]/", AG_EURL),
    /* A lone leading colon. */
    BAD("url_parse_ipv6_leading_colon", "http://[:1]/", AG_EURL),
    /* A lone trailing colon. */
    BAD("url_parse_ipv6_trailing_colon", "http://[1:]/", AG_EURL),
    /* Three colons. */
    BAD("url_parse_ipv6_triple_colon", "http://[1:::2]/", AG_EURL),
    /* No closing bracket. */
    BAD("url_parse_ipv6_unclosed", "http://[::1/", AG_EURL),
    /* Something between ']' and the port. */
    BAD("url_parse_ipv6_junk", "http://[::1]x/", AG_EURL),
    /* Empty brackets. */
    BAD("url_parse_ipv6_empty", "http://[]/", AG_EURL),
    /* IPvFuture is not supported. */
    BAD("url_parse_ipvfuture", "http://[v1.x]/", AG_EURL),
    /* An IPv6 address without brackets: the host before the first ':' is empty. */
    BAD("url_parse_ipv6_bare", "http://::1/", AG_EURL),
    /* Another scheme. */
    BAD("url_parse_ftp", "ftp://h/", AG_ESCHEME),
    /* A scheme that only starts like http. */
    BAD("url_parse_httpx", "httpx://h/", AG_ESCHEME),
    /* A host and port without a scheme parse as scheme "localhost". */
    BAD("url_parse_host_port_only", "localhost:8080/x", AG_ESCHEME),
    /* One slash after the scheme. */
    BAD("url_parse_one_slash", "http:/h/", AG_EURL),
    /* No authority. */
    BAD("url_parse_no_authority", "http:h", AG_EURL),
    /* Scheme-relative. */
    BAD("url_parse_scheme_relative", "//h/p", AG_EURL),
    /* A relative path. */
    BAD("url_parse_relative", "h/p", AG_EURL),
    /* Nothing. */
    BAD("url_parse_empty", "", AG_EURL),
    /* A scheme must start with a letter. */
    BAD("url_parse_scheme_digit", "1http://h/", AG_EURL),
    /* A bad escape in the host. */
    BAD("url_parse_bad_escape_host", "http://%zz/", AG_EURL),
    /* An escape cut short at the end. */
    BAD("url_parse_short_escape", "http://h/%4", AG_EURL),
    /* A lone '%' at the end. */
    BAD("url_parse_lone_percent", "http://h/%", AG_EURL),
    /* A bad escape in the query. */
    BAD("url_parse_bad_escape_query", "http://h/?%g0", AG_EURL),
    /* A bad escape in the fragment, which is checked although dropped. */
    BAD("url_parse_bad_escape_fragment", "http://h/#%", AG_EURL),
    /* A space in the fragment. */
    BAD("url_parse_space_fragment", "http://h/#a b", AG_EURL),
    /* An empty host. */
    BAD("url_parse_empty_host", "http:///p", AG_EURL),
    /* An empty host after a userinfo. */
    BAD("url_parse_empty_host_userinfo", "http://u@/p", AG_EURL),
    /* An empty host before a port. */
    BAD("url_parse_empty_host_port", "http://u:p@:80/", AG_EURL),
    /* Two '@': the second lands in the host. */
    BAD("url_parse_two_at", "http://a@b@c/", AG_EURL),
    /* A character outside reg-name. */
    BAD("url_parse_host_bad_char", "http://h<x>/", AG_EURL),
    /* A bracket inside a reg-name. */
    BAD("url_parse_host_bracket", "http://h]/", AG_EURL),
    /* A character outside userinfo. */
    BAD("url_parse_userinfo_bad_char", "http://u[x]@h/", AG_EURL),
};

static void test_parse(void)
{
    for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
        const parse_case *c = &parse_cases[i];
        ag__url u;
        scribble(&u);
        int rc = ag__url_parse(&u, guarded_str(c->text));
        bool ok = rc == c->rc;
        if (rc == 0 && ok) {
            ok = str_eq(u.scheme, c->scheme) && str_eq(u.host, c->host) && u.port == c->port &&
                 u.port_given == c->port_given && u.ipv6 == c->ipv6 &&
                 str_eq(u.userinfo, c->userinfo) && str_eq(u.target, c->target) &&
                 u.scheme == u.buf && u.host > u.scheme && u.target > u.host;
            if (!ok)
                tap_diag("got %s %s %u %d %d %s %s", u.scheme, u.host, u.port, u.port_given, u.ipv6,
                         u.userinfo ? u.userinfo : "(null)", u.target);
        } else if (rc != 0) {
            ok = ok && is_zeroed(&u);
        }
        if (!ok)
            tap_diag("rc %d, expected %d", rc, c->rc);
        tap_ok(ok, "%s", c->name);
        /* A failed parse left nothing to free; this call frees a successful one. */
        ag__url_free(&u);
    }
}

/* ---------------------------------------------------------------------------------------------
 * ag__url_resolve. */

typedef struct resolve_case {
    const char *name;
    const char *base;
    const char *ref;
    int rc;
    const char *scheme;
    const char *host;
    int port;
    const char *target;
} resolve_case;

#define RFC_BASE "http://a/b/c/d;p?q"
#define R(name, ref, target)                                                                       \
    {                                                                                              \
        name, RFC_BASE, ref, 0, "http", "a", 80, target                                            \
    }

static const resolve_case resolve_cases[] = {
    /* RFC 3986 section 5.4.1, normal examples. "g:h" names another scheme. */
    {"url_resolve_rfc_other_scheme", RFC_BASE, "g:h", AG_ESCHEME, NULL, NULL, 0, NULL},
    R("url_resolve_rfc_g", "g", "/b/c/g"),
    R("url_resolve_rfc_dot_g", "./g", "/b/c/g"),
    R("url_resolve_rfc_g_slash", "g/", "/b/c/g/"),
    R("url_resolve_rfc_abs_path", "/g", "/g"),
    /* "//g": a new authority and an empty path. */
    {"url_resolve_rfc_authority", RFC_BASE, "//g", 0, "http", "g", 80, "/"},
    R("url_resolve_rfc_query", "?y", "/b/c/d;p?y"),
    R("url_resolve_rfc_g_query", "g?y", "/b/c/g?y"),
    /* A fragment alone keeps the base path and query; the fragment is dropped. */
    R("url_resolve_rfc_fragment", "#s", "/b/c/d;p?q"),
    R("url_resolve_rfc_g_fragment", "g#s", "/b/c/g"),
    R("url_resolve_rfc_g_query_fragment", "g?y#s", "/b/c/g?y"),
    R("url_resolve_rfc_semicolon", ";x", "/b/c/;x"),
    R("url_resolve_rfc_g_semicolon", "g;x", "/b/c/g;x"),
    R("url_resolve_rfc_g_semicolon_query", "g;x?y#s", "/b/c/g;x?y"),
    /* The empty reference is the base without its fragment. */
    R("url_resolve_rfc_empty", "", "/b/c/d;p?q"),
    R("url_resolve_rfc_dot", ".", "/b/c/"),
    R("url_resolve_rfc_dot_slash", "./", "/b/c/"),
    R("url_resolve_rfc_dotdot", "..", "/b/"),
    R("url_resolve_rfc_dotdot_slash", "../", "/b/"),
    R("url_resolve_rfc_dotdot_g", "../g", "/b/g"),
    R("url_resolve_rfc_dotdot2", "../..", "/"),
    R("url_resolve_rfc_dotdot2_slash", "../../", "/"),
    R("url_resolve_rfc_dotdot2_g", "../../g", "/g"),
    /* RFC 3986 section 5.4.2, abnormal examples: too many "..", dots inside names. */
    R("url_resolve_rfc_dotdot3_g", "../../../g", "/g"),
    R("url_resolve_rfc_dotdot4_g", "../../../../g", "/g"),
    R("url_resolve_rfc_abs_dot", "/./g", "/g"),
    R("url_resolve_rfc_abs_dotdot", "/../g", "/g"),
    R("url_resolve_rfc_g_dot", "g.", "/b/c/g."),
    R("url_resolve_rfc_dot_name", ".g", "/b/c/.g"),
    R("url_resolve_rfc_g_dotdot", "g..", "/b/c/g.."),
    R("url_resolve_rfc_dotdot_name", "..g", "/b/c/..g"),
    R("url_resolve_rfc_dot_dotdot_g", "./../g", "/b/g"),
    R("url_resolve_rfc_trailing_dot", "./g/.", "/b/c/g/"),
    R("url_resolve_rfc_inner_dot", "g/./h", "/b/c/g/h"),
    R("url_resolve_rfc_inner_dotdot", "g/../h", "/b/c/h"),
    R("url_resolve_rfc_param_dot", "g;x=1/./y", "/b/c/g;x=1/y"),
    R("url_resolve_rfc_param_dotdot", "g;x=1/../y", "/b/c/y"),
    /* Dots in the query or fragment are not path segments. */
    R("url_resolve_rfc_query_dots", "g?y/./x", "/b/c/g?y/./x"),
    R("url_resolve_rfc_fragment_dots", "g#s/../x", "/b/c/g"),
    /* "http:g" is not an http URL: it has no authority. */
    {"url_resolve_rfc_http_g", RFC_BASE, "http:g", AG_EURL, NULL, NULL, 0, NULL},

    /* A scheme-relative reference with its own port. */
    {"url_resolve_other_authority", RFC_BASE, "//other:8080/x", 0, "http", "other", 8080, "/x"},
    /* An absolute reference to https. */
    {"url_resolve_absolute_https", RFC_BASE, "https://x/y", 0, "https", "x", 443, "/y"},
    /* An absolute reference gets its dot segments removed. */
    {"url_resolve_absolute_dots", RFC_BASE, "HTTP://X/a/./b/../c", 0, "http", "x", 80, "/a/c"},
    /* Scheme-relative from an https base stays https. */
    {"url_resolve_scheme_relative_https", "https://a:8443/p", "//b/q", 0, "https", "b", 443, "/q"},
    /* A relative reference keeps the base's port and userinfo-free host. */
    {"url_resolve_keeps_port", "http://u:p@a:8080/b/c", "d", 0, "http", "a", 8080, "/b/d"},
    /* A relative reference against an IPv6 base. */
    {"url_resolve_ipv6_base", "http://[::1]:81/a/b", "../c?d", 0, "http", "::1", 81, "/c?d"},
    /* A relative reference against a base with an empty path. */
    {"url_resolve_empty_base_path", "http://a", "g", 0, "http", "a", 80, "/g"},
    /* A query-only reference against a base with no query. */
    {"url_resolve_query_no_base_query", "http://a/p", "?", 0, "http", "a", 80, "/p?"},
    /* Another scheme. */
    {"url_resolve_ftp", RFC_BASE, "ftp://x/", AG_ESCHEME, NULL, NULL, 0, NULL},
    /* A space in the reference. */
    {"url_resolve_space", RFC_BASE, "a b", AG_EURL, NULL, NULL, 0, NULL},
    /* CR LF in the reference. */
    {"url_resolve_crlf", RFC_BASE, "/x\r\nSet-Cookie: a=b", AG_EURL, NULL, NULL, 0, NULL},
    /* A bad escape in the reference. */
    {"url_resolve_bad_escape", RFC_BASE, "/%zz", AG_EURL, NULL, NULL, 0, NULL},
    /* A scheme-relative reference with an empty host. */
    {"url_resolve_empty_host", RFC_BASE, "///x", AG_EURL, NULL, NULL, 0, NULL},
    /* A scheme-relative reference with a bad port. */
    {"url_resolve_bad_port", RFC_BASE, "//h:0/", AG_EURL, NULL, NULL, 0, NULL},
};

static void test_resolve(void)
{
    for (size_t i = 0; i < sizeof resolve_cases / sizeof resolve_cases[0]; i++) {
        const resolve_case *c = &resolve_cases[i];
        ag__url base, u;
        int rc = ag__url_parse(&base, c->base);
        if (rc < 0) {
            tap_ok(0, "%s: base %s does not parse", c->name, c->base);
            continue;
        }
        scribble(&u);
        rc = ag__url_resolve(&u, &base, guarded_str(c->ref));
        bool ok = rc == c->rc;
        if (rc == 0 && ok) {
            ok = str_eq(u.scheme, c->scheme) && str_eq(u.host, c->host) && u.port == c->port &&
                 str_eq(u.target, c->target);
            if (!ok)
                tap_diag("got %s %s %u %s", u.scheme, u.host, u.port, u.target);
        } else if (rc != 0) {
            ok = ok && is_zeroed(&u);
        }
        if (!ok)
            tap_diag("rc %d, expected %d", rc, c->rc);
        tap_ok(ok, "%s", c->name);
        ag__url_free(&u);
        ag__url_free(&base);
    }
}

/* ---------------------------------------------------------------------------------------------
 * ag__url_host_header. */

typedef struct host_case {
    const char *name;
    const char *url;
    size_t size; /* the buffer size passed */
    int rc;
    const char *out;
} host_case;

static const host_case host_cases[] = {
    /* A bare host. */
    {"url_host_header_plain", "http://h/", 64, 1, "h"},
    /* The default port is left out even when given. */
    {"url_host_header_default_given", "http://h:80/", 64, 1, "h"},
    /* Another port is kept. */
    {"url_host_header_port", "http://h:8080/", 64, 6, "h:8080"},
    /* https's default port is 443. */
    {"url_host_header_https_default", "https://h:443/", 64, 1, "h"},
    /* Port 80 is not https's default. */
    {"url_host_header_https_80", "https://h:80/", 64, 4, "h:80"},
    /* The host comes out lower case. */
    {"url_host_header_lower", "http://H.Example/", 64, 9, "h.example"},
    /* IPv6 gets its brackets back. */
    {"url_host_header_ipv6", "http://[::1]/", 64, 5, "[::1]"},
    /* IPv6 with a port. */
    {"url_host_header_ipv6_port", "http://[::1]:8080/", 64, 10, "[::1]:8080"},
    /* Userinfo never appears. */
    {"url_host_header_no_userinfo", "http://u:p@h:1/", 64, 3, "h:1"},
    /* The buffer holds the text and the NUL exactly. */
    {"url_host_header_exact_fit", "http://h:8080/", 7, 6, "h:8080"},
    /* One byte short: the NUL does not fit. */
    {"url_host_header_no_room_nul", "http://h:8080/", 6, -ENOSPC, ""},
    /* One byte short for IPv6. */
    {"url_host_header_no_room_ipv6", "http://[::1]/", 5, -ENOSPC, ""},
    /* No buffer at all. */
    {"url_host_header_size_zero", "http://h/", 0, -ENOSPC, NULL},
};

static void test_host_header(void)
{
    for (size_t i = 0; i < sizeof host_cases / sizeof host_cases[0]; i++) {
        const host_case *c = &host_cases[i];
        ag__url u;
        char buf[64];
        memset(buf, 'x', sizeof buf);
        if (ag__url_parse(&u, c->url) < 0) {
            tap_ok(0, "%s: %s does not parse", c->name, c->url);
            continue;
        }
        int rc = ag__url_host_header(&u, buf, c->size);
        bool ok = rc == c->rc;
        if (c->out)
            ok = ok && strcmp(buf, c->out) == 0;
        else
            ok = ok && buf[0] == 'x'; /* size 0: nothing written */
        if (!ok)
            tap_diag("rc %d, buffer \"%.*s\"", rc, (int)sizeof buf, buf);
        tap_ok(ok, "%s", c->name);
        ag__url_free(&u);
    }
}

/* ---------------------------------------------------------------------------------------------
 * ag__http_is_token and ag__http_is_field_value. */

typedef struct check_case {
    const char *name;
    const char *s;
    size_t len; /* given, so that NUL bytes can be in s */
    bool token;
    bool field_value;
} check_case;

#define CHECK(name, lit, token, value)                                                             \
    {                                                                                              \
        name, lit, sizeof lit - 1, token, value                                                    \
    }

static const check_case check_cases[] = {
    /* An ordinary header name. */
    CHECK("http_check_name", "Content-Type", true, true),
    /* Every tchar that is not a letter or digit. */
    CHECK("http_check_all_tchars", "!#$%&'*+-.^_`|~09azAZ", true, true),
    /* Empty: no token, but an empty field value is fine. */
    CHECK("http_check_empty", "", false, true),
    /* A colon ends a field name. */
    CHECK("http_check_colon", "X:y", false, true),
    /* Space: fine inside a value. */
    CHECK("http_check_space", "a b", false, true),
    /* A tab is allowed in a value. */
    CHECK("http_check_tab", "a\tb", false, true),
    /* CR LF is header injection. */
    CHECK("http_check_crlf", "a\r\nX-Evil: 1", false, false),
    /* A bare CR. */
    CHECK("http_check_cr", "a\rb", false, false),
    /* A bare LF. */
    CHECK("http_check_lf", "a\nb", false, false),
    /* An embedded NUL. */
    CHECK("http_check_nul", "a\0b", false, false),
    /* Another control byte. */
    CHECK("http_check_ctl", "a\x01", false, false),
    /* DEL. */
    CHECK("http_check_del", "a\x7f", false, false),
    /* obs-text is allowed in values, never in tokens. */
    CHECK("http_check_obs_text", "caf\xc3\xa9", false, true),
    /* Separators are not tchars. */
    CHECK("http_check_separators", "a(b)", false, true),
    /* Quotes, slashes and brackets are not tchars either. */
    CHECK("http_check_quote_slash", "\"/[]{}", false, true),
    /* A typical value. */
    CHECK("http_check_value", "text/html; charset=utf-8", false, true),
};

static void test_checks(void)
{
    for (size_t i = 0; i < sizeof check_cases / sizeof check_cases[0]; i++) {
        const check_case *c = &check_cases[i];
        const char *s = guarded(c->s, c->len);
        tap_ok(ag__http_is_token(s, c->len) == c->token, "%s_token", c->name);
        tap_ok(ag__http_is_field_value(s, c->len) == c->field_value, "%s_field_value", c->name);
    }
}

/* ---------------------------------------------------------------------------------------------
 * A deterministic fuzz loop: mutated and random URLs must never crash, and whatever is accepted
 * must be safe to put on a request line and in a Host header. */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
    /* xorshift64*: small, deterministic, good enough to pick mutations. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1du;
}

static size_t rng_below(size_t n)
{
    return (size_t)(rng() % n);
}

static const char fuzz_alphabet[] = ":/?#[]@%.%.:/09afAFzZ-_~!$&'()*+,;= \r\n\t\x7f\x80\xff\\\"<>|";

static unsigned char fuzz_byte(void)
{
    if (rng_below(4) == 0)
        return (unsigned char)(1 + rng_below(255));
    return (unsigned char)fuzz_alphabet[rng_below(sizeof fuzz_alphabet - 1)];
}

/* Fills buf with a NUL-terminated input of at most cap - 1 bytes and returns its length. */
static size_t fuzz_input(char *buf, size_t cap)
{
    size_t n;
    if (rng_below(8) == 0) {
        n = rng_below(48);
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)fuzz_byte();
        buf[n] = '\0';
        return n;
    }
    const parse_case *seed = &parse_cases[rng_below(sizeof parse_cases / sizeof parse_cases[0])];
    n = strlen(seed->text);
    memcpy(buf, seed->text, n);
    int ops = 1 + (int)rng_below(4);
    for (int k = 0; k < ops; k++) {
        size_t at = n ? rng_below(n + 1) : 0;
        switch (rng_below(5)) {
        case 0: /* replace a byte */
            if (at < n)
                buf[at] = (char)fuzz_byte();
            break;
        case 1: /* insert a byte */
            if (n + 1 < cap) {
                memmove(buf + at + 1, buf + at, n - at);
                buf[at] = (char)fuzz_byte();
                n++;
            }
            break;
        case 2: /* delete a run */
            if (at < n) {
                size_t del = 1 + rng_below(n - at);
                memmove(buf + at, buf + at + del, n - at - del);
                n -= del;
            }
            break;
        case 3: /* duplicate a run */
            if (at < n) {
                size_t dup = 1 + rng_below(n - at);
                if (n + dup < cap) {
                    memmove(buf + at + dup, buf + at, n - at);
                    n += dup;
                }
            }
            break;
        default: /* truncate */
            n = at;
            break;
        }
    }
    buf[n] = '\0';
    return n;
}

/* Every byte allowed on a request line or in a Host header: visible ASCII, no backslash. */
static bool safe_bytes(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || c == '\\')
            return false;
    }
    return true;
}

static bool sane(const ag__url *u)
{
    bool https = str_eq(u->scheme, "https");
    if (!https && !str_eq(u->scheme, "http"))
        return false;
    if (!u->buf || !u->host || !u->host[0] || !safe_bytes(u->host) || strpbrk(u->host, "/?#@[]"))
        return false;
    for (const char *p = u->host; *p; p++) {
        if (*p >= 'A' && *p <= 'Z')
            return false;
        if (!u->ipv6 && *p == ':')
            return false;
    }
    /* The C library, not the parser the URL code shares with the resolver, judges the literal. */
    unsigned char v6[16];
    if (u->ipv6 && inet_pton(AF_INET6, u->host, v6) != 1)
        return false;
    if (!u->target || u->target[0] != '/' || !safe_bytes(u->target) || strchr(u->target, '#'))
        return false;
    if (u->userinfo && !safe_bytes(u->userinfo))
        return false;
    if (u->port == 0 || (!u->port_given && u->port != (https ? 443 : 80)))
        return false;
    char hh[600];
    int n = ag__url_host_header(u, hh, sizeof hh);
    return n > 0 && (size_t)n == strlen(hh) && safe_bytes(hh);
}

/* Counts a success whose result is sane, or a failure that is a URL error and leaves the struct
 * zeroed; anything else is bad, and the first five are told. Frees u. */
static void judge(const char *what, int rc, ag__url *u, const char *in, int *ok, int *bad)
{
    if (rc == 0) {
        ++*ok;
        if (!sane(u) && ++*bad <= 5)
            tap_diag("%s accepted an unsafe result from \"%s\"", what, in);
    } else if ((rc != AG_EURL && rc != AG_ESCHEME) || !is_zeroed(u)) {
        if (++*bad <= 5)
            tap_diag("%s failed badly (%d) on \"%s\"", what, rc, in);
    }
    ag__url_free(u);
}

static void test_fuzz(void)
{
    enum { ROUNDS = 100000 };
    char buf[512];
    int parse_bad = 0, resolve_bad = 0, accepted = 0, resolved = 0;
    ag__url base;
    if (ag__url_parse(&base, "https://u@b.example:8443/x/y/z?q") < 0) {
        tap_ok(0, "url_fuzz: base does not parse");
        return;
    }
    for (int i = 0; i < ROUNDS; i++) {
        size_t n = fuzz_input(buf, sizeof buf);
        const char *in = guarded(buf, n);
        ag__url u;

        scribble(&u);
        judge("parse", ag__url_parse(&u, in), &u, in, &accepted, &parse_bad);

        /* The same input as a Location value, from the second character on every other round
         * so that relative references come up too. */
        const char *ref = (i & 1) && n > 0 ? in + 1 : in;
        scribble(&u);
        judge("resolve", ag__url_resolve(&u, &base, ref), &u, ref, &resolved, &resolve_bad);
    }
    ag__url_free(&base);
    tap_diag("fuzz: %d of %d parsed, %d resolved", accepted, ROUNDS, resolved);
    tap_ok(parse_bad == 0 && accepted > 0, "url_fuzz_parse");
    tap_ok(resolve_bad == 0 && resolved > 0, "url_fuzz_resolve");
}

int main(void)
{
    guard_init();
    test_parse();
    test_resolve();
    test_host_header();
    test_checks();
    test_fuzz();

    /* Freeing a zeroed struct, twice, is harmless. */
    ag__url z;
    memset(&z, 0, sizeof z);
    ag__url_free(&z);
    ag__url_free(&z);
    ag__url_free(NULL);
    tap_ok(is_zeroed(&z), "url_free_zeroed");
    return tap_done();
}
