/* glob.c: curl's URL globbing. A pattern is parsed once into literal pieces and patterns; the
 * expansions are produced one at a time by an odometer over the patterns (the last turning
 * fastest), so [1-1000000000] costs nothing until it is iterated. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* curl refuses more than this many pieces; so do we, so a pattern cannot make each expansion
 * arbitrarily slow. */
#define GLOB_MAX_PATTERNS 100

enum gkind { G_TEXT, G_SET, G_NUM, G_CHAR };

struct gpiece {
    enum gkind kind;
    /* G_TEXT: text[off, off+len). G_SET: elements at offs[first .. first+n), each
     * NUL-terminated in text. */
    size_t off, len;
    size_t first, n, cur;
    /* G_NUM and G_CHAR: the range, its step and the value shown now. */
    uint64_t min, max, step, val;
    int pad;
};

struct cli_glob {
    struct gpiece *p;
    size_t n, cap;
    cli_buf text;
    size_t *offs; /* start of each set element in text */
    size_t noffs, capoffs;
    uint64_t count;
    bool started, done;
};

static int glob_err(char *err, size_t errlen, const char *what, size_t pos)
{
    snprintf(err, errlen, "%s in URL position %zu", what, pos);
    return -1;
}

static struct gpiece *glob_add(cli_glob *g, enum gkind kind)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 8;
        struct gpiece *p = realloc(g->p, cap * sizeof *p);
        if (!p)
            return NULL;
        g->p = p;
        g->cap = cap;
    }
    struct gpiece *pc = &g->p[g->n++];
    memset(pc, 0, sizeof *pc);
    pc->kind = kind;
    return pc;
}

static bool glob_elem(cli_glob *g)
{
    if (g->noffs == g->capoffs) {
        size_t cap = g->capoffs ? g->capoffs * 2 : 16;
        size_t *o = realloc(g->offs, cap * sizeof *o);
        if (!o)
            return false;
        g->offs = o;
        g->capoffs = cap;
    }
    g->offs[g->noffs++] = g->text.len;
    return true;
}

/* An IPv6 literal in brackets ("[::1]", "[fe80::1%25eth0]") is part of the URL, not a range:
 * hex digits, colons and dots (at least two colons), then an optional zone. The length up to and
 * including "]", or 0. */
static size_t ipv6_len(const char *s)
{
    size_t i = 1, colons = 0;
    for (; s[i] && s[i] != ']' && s[i] != '%'; i++) {
        char c = s[i];
        if (c == ':')
            colons++;
        else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                   c == '.'))
            return 0;
    }
    if (colons < 2)
        return 0;
    if (s[i] == '%') {
        for (i++; s[i] && s[i] != ']'; i++) {
            char c = s[i];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '%' || c == '-' || c == '.' || c == '_' || c == '~'))
                return 0;
        }
    }
    return s[i] == ']' ? i + 1 : 0;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Digits at *s into *v; false when there are none or they overflow 64 bits. */
static bool parse_u64(const char **s, uint64_t *v)
{
    const char *p = *s;
    uint64_t x = 0;
    if (!is_digit(*p))
        return false;
    for (; is_digit(*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (x > (UINT64_MAX - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *v = x;
    *s = p;
    return true;
}

/* The number of values min, min+step, ... up to max; UINT64_MAX when it does not fit. */
static uint64_t range_count(uint64_t min, uint64_t max, uint64_t step)
{
    uint64_t n = (max - min) / step;
    return n == UINT64_MAX ? UINT64_MAX : n + 1;
}

/* A range after its "[": "N-M", "N-M:S" or "a-z", "a-z:S", then "]". curl's rules: a step is at
 * least 1 and at most the width of the range (1 when the range has one value), the start not
 * above the end, letters at most a-z apart; a leading zero pads every value to the start's
 * width. s points after "["; *end receives the position after "]". */
static int parse_range(cli_glob *g, const char *base, const char *s, const char **end, char *err,
                       size_t errlen)
{
    struct gpiece *pc;
    const char *p = s;
    uint64_t min, max, step = 1;
    if (is_alpha(*p)) {
        min = (unsigned char)p[0];
        if (p[1] != '-' || !p[2])
            return glob_err(err, errlen, "bad range", (size_t)(p + 1 - base));
        max = (unsigned char)p[2];
        p += 3;
        if (*p == ':') {
            p++;
            if (!parse_u64(&p, &step))
                return glob_err(err, errlen, "bad range", (size_t)(p - base));
        }
        if (*p != ']')
            return glob_err(err, errlen, "bad range", (size_t)(p - base));
        if (step == 0 || (min == max && step != 1) ||
            (min != max && (min > max || step > max - min || max - min > 'z' - 'a')))
            return glob_err(err, errlen, "bad range", (size_t)(s - base));
        if (!(pc = glob_add(g, G_CHAR)))
            return -2;
    } else if (is_digit(*p)) {
        int pad = 0;
        if (*p == '0') {
            for (const char *q = p; is_digit(*q); q++)
                pad++;
        }
        if (!parse_u64(&p, &min) || *p != '-')
            return glob_err(err, errlen, "bad range", (size_t)(p - base));
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!parse_u64(&p, &max))
            return glob_err(err, errlen, "bad range", (size_t)(p - base));
        if (*p == ':') {
            p++;
            if (!parse_u64(&p, &step))
                return glob_err(err, errlen, "bad range", (size_t)(p - base));
        }
        if (*p != ']')
            return glob_err(err, errlen, "bad range", (size_t)(p - base));
        if (step == 0 || (min == max && step != 1) ||
            (min != max && (min > max || step > max - min)))
            return glob_err(err, errlen, "bad range", (size_t)(s - base));
        if (!(pc = glob_add(g, G_NUM)))
            return -2;
        pc->pad = pad;
    } else {
        return glob_err(err, errlen, "bad range specification", (size_t)(p - base));
    }
    pc->min = pc->val = min;
    pc->max = max;
    pc->step = step;
    *end = p + 1;
    return 0;
}

/* A set after its "{": elements separated by ",", "\" taking the next character as it is; no
 * "{" or "[" inside (curl does not nest), and "{}" is an error. */
static int parse_set(cli_glob *g, const char *base, const char *s, const char **end, char *err,
                     size_t errlen)
{
    const char *p = s;
    struct gpiece *pc = glob_add(g, G_SET);
    if (!pc)
        return -2;
    pc->first = g->noffs;
    if (!glob_elem(g))
        return -2;
    for (;;) {
        switch (*p) {
        case '\0':
            return glob_err(err, errlen, "unmatched brace", (size_t)(s - 1 - base));
        case '{':
        case '[':
            return glob_err(err, errlen, "nested brace", (size_t)(p - base));
        case ']':
            return glob_err(err, errlen, "unexpected close bracket", (size_t)(p - base));
        case '}':
            if (p == s)
                return glob_err(err, errlen, "empty string within braces", (size_t)(p - base));
            /* fall through */
        case ',':
            cli_buf_putc(&g->text, '\0');
            if (*p == '}') {
                g->p[g->n - 1].n = g->noffs - g->p[g->n - 1].first;
                *end = p + 1;
                return 0;
            }
            if (!glob_elem(g))
                return -2;
            p++;
            break;
        case '\\':
            if (p[1])
                p++;
            /* fall through */
        default:
            cli_buf_putc(&g->text, *p);
            p++;
        }
    }
}

static int glob_parse(cli_glob *g, const char *pattern, char *err, size_t errlen)
{
    const char *p = pattern;
    size_t patterns = 0;
    while (*p) {
        if (*p == '{' || (*p == '[' && !ipv6_len(p) && p[1] != ']')) {
            if (++patterns > GLOB_MAX_PATTERNS)
                return glob_err(err, errlen, "too many glob patterns", (size_t)(p - pattern));
            int rc = *p == '{' ? parse_set(g, pattern, p + 1, &p, err, errlen)
                               : parse_range(g, pattern, p + 1, &p, err, errlen);
            if (rc < 0)
                return rc;
            continue;
        }
        /* Literal text up to the next pattern. */
        struct gpiece *pc = glob_add(g, G_TEXT);
        if (!pc)
            return -2;
        pc->off = g->text.len;
        while (*p && *p != '{') {
            size_t skip = 0;
            if (*p == '[') {
                skip = p[1] == ']' ? 2 : ipv6_len(p);
                if (!skip)
                    break;
                cli_buf_put(&g->text, p, skip);
                p += skip;
                continue;
            }
            if (*p == '}' || *p == ']')
                return glob_err(err, errlen, "unmatched close brace/bracket",
                                (size_t)(p - pattern));
            /* Only the four glob characters can be escaped; any other backslash is the URL's. */
            if (*p == '\\' && (p[1] == '{' || p[1] == '[' || p[1] == '}' || p[1] == ']'))
                p++;
            cli_buf_putc(&g->text, *p);
            p++;
        }
        g->p[g->n - 1].len = g->text.len - g->p[g->n - 1].off;
    }
    return g->text.oom ? -2 : 0;
}

int cli_glob_new(const char *pattern, cli_glob **out, char *err, size_t errlen)
{
    *out = NULL;
    cli_glob *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = glob_parse(g, pattern, err, errlen);
    if (rc < 0) {
        if (rc == -2)
            snprintf(err, errlen, "out of memory");
        cli_glob_free(g);
        return -1;
    }
    uint64_t count = 1;
    for (size_t i = 0; i < g->n; i++) {
        const struct gpiece *pc = &g->p[i];
        uint64_t n = pc->kind == G_SET    ? pc->n
                     : pc->kind == G_TEXT ? 1
                                          : range_count(pc->min, pc->max, pc->step);
        if (n == UINT64_MAX || (n && count > UINT64_MAX / n))
            count = UINT64_MAX;
        else if (count != UINT64_MAX)
            count *= n;
    }
    g->count = count;
    *out = g;
    return 0;
}

uint64_t cli_glob_count(const cli_glob *g)
{
    return g->count;
}

/* Turn the odometer by one: the last pattern moves, and each one that wraps moves the one before
 * it. False when every pattern wrapped: the expansions are over. */
static bool glob_advance(cli_glob *g)
{
    for (size_t i = g->n; i-- > 0;) {
        struct gpiece *pc = &g->p[i];
        switch (pc->kind) {
        case G_TEXT:
            continue;
        case G_SET:
            if (++pc->cur < pc->n)
                return true;
            pc->cur = 0;
            break;
        case G_NUM:
        case G_CHAR:
            /* val + step could overflow at the top of the 64-bit range: compare first. */
            if (pc->max - pc->val >= pc->step) {
                pc->val += pc->step;
                return true;
            }
            pc->val = pc->min;
            break;
        }
    }
    return false;
}

int cli_glob_next(cli_glob *g, cli_buf *b)
{
    cli_buf_reset(b);
    if (g->done)
        return 0;
    if (g->started && !glob_advance(g)) {
        g->done = true;
        return 0;
    }
    g->started = true;
    for (size_t i = 0; i < g->n; i++) {
        const struct gpiece *pc = &g->p[i];
        switch (pc->kind) {
        case G_TEXT:
            cli_buf_put(b, g->text.p + pc->off, pc->len);
            break;
        case G_SET:
            cli_buf_puts(b, g->text.p + g->offs[pc->first + pc->cur]);
            break;
        case G_NUM:
            cli_buf_printf(b, "%0*llu", pc->pad, (unsigned long long)pc->val);
            break;
        case G_CHAR:
            cli_buf_putc(b, (char)pc->val);
            break;
        }
    }
    if (!b->p)
        cli_buf_puts(b, ""); /* an empty pattern expands to one empty string */
    return 1;
}

void cli_glob_free(cli_glob *g)
{
    if (!g)
        return;
    free(g->p);
    free(g->offs);
    cli_buf_free(&g->text);
    free(g);
}
