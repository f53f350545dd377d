/* fuzz-url.c: the URL parser (http/url.c) fed arbitrary text. A URL it accepts is judged by an
 * oracle written from RFC 3986 (url-oracle.h), not by url.c's own checks: the text obeys the byte
 * rules url.h promises; its parts are the parts appendix B's split finds in the text (host lower
 * cased, "/" for an empty path, the fragment dropped); the request target and Host header are
 * clean; and the URL written back as text parses to the same parts, and resolves against itself
 * to itself. */
#include "tests/fuzz/url-oracle.h"

long ag_fuzz_accepted, ag_fuzz_refused;

const char *const ag_fuzz_dict[] = {"http://",
                                    "https://",
                                    "HTTP://",
                                    "//",
                                    "@",
                                    ":",
                                    "[",
                                    "]",
                                    "::1",
                                    "%25",
                                    "%zz",
                                    "%4",
                                    "?",
                                    "#",
                                    "/../",
                                    "/./",
                                    "..",
                                    ":65535",
                                    ":65536",
                                    ":0",
                                    ":080",
                                    "\r\n",
                                    " ",
                                    "\t",
                                    "\\",
                                    "\x7f",
                                    "\x80",
                                    "[v1.x]",
                                    "[fe80::1%25eth0]",
                                    "user:pass@",
                                    NULL};

static void broken(const char *what)
{
    fuzz_broken("fuzz-url", what);
}

/* The parts appendix B finds in the text agree with what the parser kept. */
static void same_as_split(const ag__url *u, const char *text)
{
    o_parts pt;
    o_split(text, strlen(text), &pt);
    if (!pt.scheme.p || !pt.authority.p)
        broken("accepted a URL without a scheme or an authority");
    if (!o_span_is(pt.scheme, u->scheme))
        broken("kept another scheme than the text's");
    /* The target: path ("/" when empty) and query, as written. */
    size_t tn = strlen(u->target), pn = pt.path.n ? pt.path.n : 1;
    size_t want = pn + (pt.query.p ? 1 + pt.query.n : 0);
    if (tn != want || memcmp(u->target, pt.path.n ? pt.path.p : "/", pn) != 0 ||
        (pt.query.p &&
         (u->target[pn] != '?' || memcmp(u->target + pn + 1, pt.query.p, pt.query.n) != 0)))
        broken("kept another request target than the text's path and query");
    /* The authority: userinfo up to the first '@', then the host, then the port. */
    o_span a = pt.authority;
    const char *at = memchr(a.p, '@', a.n);
    if (at) {
        size_t un = (size_t)(at - a.p);
        if (!u->userinfo || strlen(u->userinfo) != un || memcmp(u->userinfo, a.p, un) != 0)
            broken("kept another userinfo than the text's");
        a.n -= un + 1;
        a.p = at + 1;
    } else if (u->userinfo) {
        broken("kept a userinfo the text has not");
    }
    o_span host, port = {NULL, 0};
    if (a.n && a.p[0] == '[') {
        const char *close = memchr(a.p, ']', a.n);
        if (!close || !u->ipv6)
            broken("took a bracketed host for something else than an IPv6 literal");
        host = (o_span){a.p + 1, (size_t)(close - a.p - 1)};
        if (close + 1 < a.p + a.n) {
            if (close[1] != ':')
                broken("accepted bytes after an IPv6 literal");
            port = (o_span){close + 2, (size_t)(a.p + a.n - close - 2)};
        }
    } else {
        if (u->ipv6)
            broken("made an IPv6 literal of a host without brackets");
        const char *colon = memchr(a.p, ':', a.n);
        host = (o_span){a.p, colon ? (size_t)(colon - a.p) : a.n};
        if (colon)
            port = (o_span){colon + 1, (size_t)(a.p + a.n - colon - 1)};
    }
    if (strlen(u->host) != host.n || strncasecmp(u->host, host.p, host.n) != 0)
        broken("kept another host than the text's");
    if (port.p && port.n) {
        unsigned long v = 0;
        for (size_t i = 0; i < port.n; i++) {
            if (!o_digit((unsigned char)port.p[i]) ||
                (v = v * 10 + (unsigned)(port.p[i] - '0')) > 65535)
                broken("accepted a port that is not a number in 1-65535");
        }
        if (!u->port_given || u->port != v)
            broken("kept another port than the text's");
    } else if (u->port_given) {
        broken("says a port was given where the text has none");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_begin(data, size);
    char *text = fuzz_cstring(data, size);
    if (!text)
        return 0;
    ag__url u;
    int rc = ag__url_parse(&u, text);
    if (rc < 0) {
        ag_fuzz_refused++;
        if (!u.why && rc != -ENOMEM)
            broken("refused a URL without saying why");
        free(text);
        return 0;
    }
    ag_fuzz_accepted++;
    if (!o_clean(text, strlen(text)))
        broken("accepted a URL with a control byte, space, non-ASCII byte, backslash or bad "
               "escape");
    const char *why = o_url_promises(&u);
    if (why)
        broken(why);
    same_as_split(&u, text);

    /* Written back and parsed again: the same parts, and the same text once more. */
    char *again = o_url_text(&u);
    ag__url v;
    if (ag__url_parse(&v, again) < 0)
        broken("refused the URL it had accepted, written back as text");
    if (!o_url_eq(&u, &v))
        broken("parsed the URL written back as text into other parts");
    char *third = o_url_text(&v);
    if (strcmp(again, third) != 0)
        broken("wrote the URL back differently the second time");
    ag__url_free(&v);

    /* An empty reference is the base itself (RFC 3986 section 5.2.2, fragment dropped), and so is
     * the URL's own text when its path has no dot segment to remove. */
    ag__url w;
    if (ag__url_resolve(&w, &u, "") < 0 || !o_url_eq(&u, &w))
        broken("resolved an empty reference to something else than the base");
    ag__url_free(&w);
    const char *q = strchr(u.target, '?');
    size_t pn = q ? (size_t)(q - u.target) : strlen(u.target);
    char *dots = malloc(pn + 1);
    if (!dots)
        abort();
    if (o_remove_dots(u.target, pn, dots) == pn && memcmp(dots, u.target, pn) == 0) {
        if (ag__url_resolve(&w, &u, again) < 0 || !o_url_eq(&u, &w))
            broken("resolved the URL's own text against it to something else");
        ag__url_free(&w);
    }
    free(dots);
    free(third);
    free(again);
    ag__url_free(&u);
    free(text);
    return 0;
}
