/* numeric.c: IPv4 and IPv6 addresses between text and bytes. The C library's inet_pton and
 * inet_ntop use over 3 KiB of stack, and these run on coroutine stacks, where every page touched
 * stays resident while the request waits: at 10,000 requests in flight that is 40 MB. */
#include "dns/resolve.h"
#include "core/internal.h"

#include <stdbool.h>
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

bool ag__ipv6_parse(const char *s, uint8_t out[16])
{
    uint8_t b[16];
    int n = 0, gap = -1;
    const char *p = s;
    if (p[0] == ':') {
        if (p[1] != ':')
            return false;
        gap = 0;
        p += 2;
        if (*p == 0)
            goto done;
    }
    for (;;) {
        /* An embedded IPv4 address ends the text. */
        const char *dot = strchr(p, '.');
        if (dot && !strchr(p, ':')) {
            if (n > 12 || !parse4(p, p + strlen(p), b + n))
                return false;
            n += 4;
            break;
        }
        int digits = 0;
        unsigned v = 0;
        while (digits < 4 && ag__hex_value(*p) >= 0)
            v = v * 16 + (unsigned)ag__hex_value(*p++), digits++;
        if (digits == 0 || n > 14 || ag__hex_value(*p) >= 0)
            return false;
        b[n++] = (uint8_t)(v >> 8);
        b[n++] = (uint8_t)v;
        if (*p == 0)
            break;
        if (*p != ':')
            return false;
        p++;
        if (*p == ':') {
            if (gap >= 0)
                return false;
            gap = n;
            p++;
            if (*p == 0)
                break;
        }
    }
done:
    if (gap < 0) {
        if (n != 16)
            return false;
        memcpy(out, b, 16);
        return true;
    }
    if (n > 14)
        return false;
    memset(out, 0, 16);
    memcpy(out, b, (size_t)gap);
    memcpy(out + 16 - (n - gap), b + gap, (size_t)(n - gap));
    return true;
}

static char *put_dec(char *p, unsigned v)
{
    if (v >= 100)
        *p++ = (char)('0' + v / 100);
    if (v >= 10)
        *p++ = (char)('0' + v / 10 % 10);
    *p++ = (char)('0' + v % 10);
    return p;
}

char *ag__ipv4_format(char *p, const uint8_t a[4])
{
    for (int i = 0; i < 4; i++) {
        p = put_dec(p, a[i]);
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
