/* request.c: the bench server's HTTP/1.x request-head parser: request line, the few headers the
 * server acts on (Content-Length, Connection, Transfer-Encoding), keep-alive rules. */
#include "bench.h"

#include <string.h>

/* Whether s[0..n) equals lit (lower case), ignoring ASCII case. */
static bool lower_eq(const char *s, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    if (n != m)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (ch != lit[i])
            return false;
    }
    return true;
}

/* Whether a comma-separated header value holds the token lit (lower case). */
static bool has_token(const char *s, size_t n, const char *lit)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
            i++;
        size_t start = i;
        while (i < n && s[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t'))
            end--;
        if (lower_eq(s + start, end - start, lit))
            return true;
    }
    return false;
}

bool request_parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 19)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* Parse one request head at the start of buf. Returns 1 with *r filled, 0 when the head is not
 * complete yet, -1 when it is malformed. Lines end in CRLF or a bare LF. */
int request_parse(const char *buf, size_t len, request *r)
{
    const char *end = buf + len;
    const char *nl = memchr(buf, '\n', len);
    if (!nl)
        return 0;
    memset(r, 0, sizeof *r);
    /* Request line: METHOD SP TARGET SP HTTP/1.x */
    const char *line_end = (nl > buf && nl[-1] == '\r') ? nl - 1 : nl;
    const char *sp1 = memchr(buf, ' ', (size_t)(line_end - buf));
    if (!sp1)
        return -1;
    const char *tgt = sp1 + 1;
    const char *sp2 = memchr(tgt, ' ', (size_t)(line_end - tgt));
    if (!sp2 || line_end - sp2 != 9 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
        return -1;
    int minor = sp2[8] - '0';
    if (minor != 0 && minor != 1)
        return -1;
    r->head = (sp1 - buf == 4 && memcmp(buf, "HEAD", 4) == 0);
    r->target = tgt;
    r->target_len = (size_t)(sp2 - tgt);
    r->http10 = minor == 0;
    r->keep_alive = minor == 1;
    bool saw_close = false, saw_keep = false;
    /* Header fields, up to the empty line. */
    const char *p = nl + 1;
    for (;;) {
        nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return 0;
        line_end = (nl > p && nl[-1] == '\r') ? nl - 1 : nl;
        if (line_end == p)
            break;
        const char *colon = memchr(p, ':', (size_t)(line_end - p));
        if (!colon)
            return -1;
        const char *v = colon + 1;
        while (v < line_end && (*v == ' ' || *v == '\t'))
            v++;
        const char *ve = line_end;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        size_t nlen = (size_t)(colon - p), vlen = (size_t)(ve - v);
        if (lower_eq(p, nlen, "content-length")) {
            if (!request_parse_u64(v, vlen, &r->content_length))
                return -1;
        } else if (lower_eq(p, nlen, "connection")) {
            saw_close |= has_token(v, vlen, "close");
            saw_keep |= has_token(v, vlen, "keep-alive");
        } else if (lower_eq(p, nlen, "transfer-encoding")) {
            r->chunked = true;
        }
        p = nl + 1;
    }
    if (saw_close)
        r->keep_alive = false;
    else if (saw_keep)
        r->keep_alive = true;
    r->head_len = (size_t)(nl + 1 - buf);
    return 1;
}
