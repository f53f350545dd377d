/* fuzz-location.c: the resolution of a Location value against the URL it answered
 * (ag__url_resolve, what http/client.c does for a redirect) fed arbitrary references and bases.
 * The oracle resolves the same reference itself, as RFC 3986 section 5.2 writes it (appendix B's
 * split, the transform of 5.2.2, the merge of 5.2.3, remove_dot_segments of 5.2.4 and the
 * recomposition of 5.3, all in url-oracle.h), and parses that: the library must give the same
 * URL, part by part, or refuse where that text is refused too. Every result keeps the promises
 * of a parsed URL (an absolute http or https URL, nothing in it that could inject a line). A
 * reference with a byte url.h refuses (anywhere, its fragment too) is refused.
 * Input: byte 0 picks the base from a list, or with bit 7 set the base is the text up to the
 * first newline; the rest is the reference. */
#include "tests/fuzz/url-oracle.h"

long ag_fuzz_accepted, ag_fuzz_refused;

const char *const ag_fuzz_dict[] = {"http://", "https://", "//",   "../", "./", "/..",  "/.",
                                    "..",      ".",        "?",    "#",   "@",  ":",    "[::1]",
                                    "%2e",     "%2E%2e",   "\r\n", " ",   "\\", "\x7f", "\x80",
                                    "g;x",     "g:h",      ":80",  "\n",  NULL};

static const char *const bases[] = {
    "http://a/b/c/d;p?q", /* the base of RFC 3986 section 5.4 */
    "https://User:pw@Example.COM:8443/x/y/",
    "http://[::1]:8080",
    "http://h",
    "http://h/a/../b/./c?x#frag",
    "https://h:/only?",
    "http://h//a//b",
    "http://h/%7e/~/",
};

static void broken(const char *what)
{
    fuzz_broken("fuzz-location", what);
}

/* Appends n bytes of p to the text at *w. */
static void add(char **w, const char *p, size_t n)
{
    memcpy(*w, p, n);
    *w += n;
}

/* The target URI of section 5.2.2 as text (section 5.3), from the texts of base and reference;
 * NULL when the reference is no URI-reference (a scheme that breaks section 3.1's syntax, or a
 * relative path whose first segment holds ':', which section 4.2 forbids). */
static char *reference_resolve(const char *base, const char *ref)
{
    o_parts b, r;
    o_split(base, strlen(base), &b);
    o_split(ref, strlen(ref), &r);
    if (r.scheme.p && !o_scheme_ok(r.scheme))
        return NULL;
    if (!r.scheme.p && !r.authority.p && r.path.n && r.path.p[0] != '/') {
        const char *slash = memchr(r.path.p, '/', r.path.n);
        size_t first = slash ? (size_t)(slash - r.path.p) : r.path.n;
        if (memchr(r.path.p, ':', first))
            return NULL;
    }
    size_t size = strlen(base) + strlen(ref) + 8;
    char *merged = malloc(size), *out = malloc(size);
    if (!merged || !out)
        abort();
    o_span scheme = b.scheme, auth = b.authority, query = r.query;
    const char *path;
    size_t path_n;
    char *w = merged;
    if (r.scheme.p) {
        scheme = r.scheme;
        auth = r.authority;
        add(&w, r.path.p, r.path.n);
        path_n = o_remove_dots(merged, (size_t)(w - merged), out);
        path = out;
    } else if (r.authority.p) {
        auth = r.authority;
        add(&w, r.path.p, r.path.n);
        path_n = o_remove_dots(merged, (size_t)(w - merged), out);
        path = out;
    } else if (r.path.n == 0) {
        path = b.path.p;
        path_n = b.path.n;
        if (!r.query.p)
            query = b.query;
    } else {
        if (r.path.p[0] == '/') {
            add(&w, r.path.p, r.path.n);
        } else if (b.authority.p && b.path.n == 0) {
            /* Section 5.2.3: a base with an authority and an empty path. */
            add(&w, "/", 1);
            add(&w, r.path.p, r.path.n);
        } else {
            /* The base path up to and with its last '/', then the reference's path. */
            size_t k = b.path.n;
            while (k > 0 && b.path.p[k - 1] != '/')
                k--;
            add(&w, b.path.p, k);
            add(&w, r.path.p, r.path.n);
        }
        path_n = o_remove_dots(merged, (size_t)(w - merged), out);
        path = out;
    }
    /* Section 5.3: scheme ":" ["//" authority] path ["?" query]; the fragment is never sent. */
    size_t tsize = scheme.n + 3 + (auth.p ? auth.n : 0) + path_n + 1 + (query.p ? query.n : 0) + 1;
    char *text = malloc(tsize);
    if (!text)
        abort();
    w = text;
    add(&w, scheme.p, scheme.n);
    add(&w, ":", 1);
    if (auth.p) {
        add(&w, "//", 2);
        add(&w, auth.p, auth.n);
    }
    add(&w, path, path_n);
    if (query.p) {
        add(&w, "?", 1);
        add(&w, query.p, query.n);
    }
    *w = 0;
    free(merged);
    free(out);
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    fuzz_begin(data, size);
    char *base_text, *ref;
    if (data[0] & 0x80) {
        const uint8_t *nl = memchr(data + 1, '\n', size - 1);
        if (!nl)
            return 0;
        base_text = fuzz_cstring(data + 1, (size_t)(nl - data - 1));
        ref = fuzz_cstring(nl + 1, size - (size_t)(nl + 1 - data));
    } else {
        base_text = strdup(bases[data[0] % (sizeof bases / sizeof *bases)]);
        ref = fuzz_cstring(data + 1, size - 1);
    }
    if (!base_text || !ref)
        abort();
    ag__url base;
    if (ag__url_parse(&base, base_text) < 0) {
        free(base_text);
        free(ref);
        return 0;
    }
    ag__url got;
    int rc = ag__url_resolve(&got, &base, ref);
    if (rc == 0) {
        ag_fuzz_accepted++;
        const char *why = o_url_promises(&got);
        if (why)
            broken(why);
    } else {
        ag_fuzz_refused++;
    }
    bool clean = o_clean(ref, strlen(ref));
    if (!clean && rc == 0)
        broken("resolved a reference with a byte a URL may not hold");
    char *want_text = clean ? reference_resolve(base_text, ref) : NULL;
    if (want_text) {
        ag__url want;
        int wrc = ag__url_parse(&want, want_text);
        if (wrc == 0 && rc < 0)
            broken("refused a reference whose resolution RFC 3986 gives as a good URL");
        if (wrc < 0 && rc == 0)
            broken("resolved a reference to a URL where RFC 3986 gives a refused one");
        if (wrc == 0 && rc == 0 && !o_url_eq(&want, &got)) {
            fprintf(stderr, "base %s, RFC 3986 gives %s, the library %s://%s%s\n", base_text,
                    want_text, got.scheme, got.host, got.target);
            broken("resolved a reference otherwise than RFC 3986 section 5.2");
        }
        if (wrc == 0)
            ag__url_free(&want);
        free(want_text);
    }
    /* An absolute URL without dot segments resolves to itself, whatever the base. */
    ag__url self;
    if (rc == 0 && ag__url_parse(&self, ref) == 0) {
        const char *q = strchr(self.target, '?');
        size_t pn = q ? (size_t)(q - self.target) : strlen(self.target);
        char *dots = malloc(pn + 1);
        if (!dots)
            abort();
        if (o_remove_dots(self.target, pn, dots) == pn && memcmp(dots, self.target, pn) == 0 &&
            !o_url_eq(&self, &got))
            broken("resolved an absolute URL to something else than itself");
        free(dots);
        ag__url_free(&self);
    }
    if (rc == 0)
        ag__url_free(&got);
    ag__url_free(&base);
    free(base_text);
    free(ref);
    return 0;
}
