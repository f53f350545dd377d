/* numeric.c: IPv4 and IPv6 addresses between text and bytes. The C library's inet_pton and
 * inet_ntop use over 3 KiB of stack, and these run on coroutine stacks, where every page touched
 * stays resident while the request waits: at 10,000 requests in flight that is 40 MB. */
#include "dns/numeric.h"
#include "core/str.h"

#include <string.h>

/* Dotted quad, four decimal parts of at most 255, no leading zeros (so no octal ambiguity). */
static bool parse4(const char *s, const char *end, uint8_t out[4])
{
    for (int part = 0; part < 4; part++) {
        if (s >= end || *s < '0' || *s > '9')
            return false;
        unsigned v = 0;
        const char *start = s;
        while (s < end && *s >= '0' && *s <= '9') {
            v = v * 10 + (unsigned)(*s++ - '0');
            if (v > 255)
                return false;
        }
        if (s - start > 1 && *start == '0')
            return false;
        out[part] = (uint8_t)v;
        if (part < 3) {
            if (s >= end || *s != '.')
                return false;
            s++;
        }
    }
    return s == end;
}

bool ag__ipv4_parse(const char *s, uint8_t out[4])
{
    return parse4(s, s + strlen(s), out);
}

bool ag__ipv6_parse_n(const char *s, size_t len, uint8_t out[16])
{
    const char *p = s, *end = s + len;
    uint8_t b[16];
    int n = 0, gap = -1; /* bytes parsed; where "::" stands, in bytes */
    if (end - p >= 2 && p[0] == ':' && p[1] == ':') {
        gap = 0;
        p += 2;
    }
    while (p < end) {
        const char *start = p;
        unsigned v = 0;
        int d;
        while (p < end && p - start < 4 && (d = ag__hex_value(*p)) >= 0) {
            v = v * 16 + (unsigned)d;
            p++;
        }
        if (p < end && *p == '.') {
            /* An embedded IPv4 address ends the text and fills the last two groups' place. */
            if (n > 12 || !parse4(start, end, b + n))
                return false;
            n += 4;
            break;
        }
        /* No digit (a lone ':' included), a fifth digit, or more than eight groups. */
        if (p == start || n > 14 || (p < end && ag__hex_value(*p) >= 0))
            return false;
        b[n++] = (uint8_t)(v >> 8);
        b[n++] = (uint8_t)v;
        if (p == end)
            break;
        if (*p != ':')
            return false;
        p++;
        if (p < end && *p == ':') {
            if (gap >= 0)
                return false;
            gap = n;
            p++;
        } else if (p == end) {
            return false; /* a single trailing ':' */
        }
    }
    if (gap < 0) {
        if (n != 16)
            return false;
        memcpy(out, b, 16);
        return true;
    }
    if (n > 14)
        return false; /* "::" must stand for at least one group */
    memset(out, 0, 16);
    memcpy(out, b, (size_t)gap);
    memcpy(out + 16 - (n - gap), b + gap, (size_t)(n - gap));
    return true;
}

bool ag__ipv6_parse(const char *s, uint8_t out[16])
{
    return ag__ipv6_parse_n(s, strlen(s), out);
}

char *ag__ipv4_format(char *p, const uint8_t a[4])
{
    for (int i = 0; i < 4; i++) {
        p += ag__put_u64(p, a[i]);
        if (i < 3)
            *p++ = '.';
    }
    *p = 0;
    return p;
}

char *ag__ipv6_format(char *p, const uint8_t a[16])
{
    static const char hex[] = "0123456789abcdef";
    unsigned g[8];
    for (int i = 0; i < 8; i++)
        g[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
    /* RFC 5952: the longest run of two or more zero groups, the first of equals, becomes "::". */
    int best = -1, best_len = 1;
    for (int i = 0; i < 8;) {
        int j = i;
        while (j < 8 && g[j] == 0)
            j++;
        if (j - i > best_len) {
            best = i;
            best_len = j - i;
        }
        i = j > i ? j : i + 1;
    }
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            *p++ = ':';
            *p++ = ':';
            i += best_len - 1;
            continue;
        }
        if (i > 0 && i != best + best_len)
            *p++ = ':';
        bool started = false;
        for (int shift = 12; shift >= 0; shift -= 4) {
            unsigned d = (g[i] >> shift) & 15;
            if (d || started || shift == 0) {
                *p++ = hex[d];
                started = true;
            }
        }
    }
    *p = 0;
    return p;
}
