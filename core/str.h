/* str.h: small text helpers shared by every layer (decimal digits, hex digit values), free of
 * the reactor, so that the parsers and formatters of dns/ and http/ need nothing else. */
#ifndef AG_CORE_STR_H
#define AG_CORE_STR_H

#include <stddef.h>
#include <stdint.h>

/* Writes the decimal digits of v at w, without a NUL (1 to 20 bytes); returns how many. Used
 * instead of snprintf on coroutine stacks: printf's frames are deep enough to make every parked
 * coroutine keep a second page of stack. */
static inline size_t ag__put_u64(char *w, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        w[i] = tmp[n - 1 - i];
    return n;
}

/* The same, NUL-terminated: buf holds the digits and one more byte (21 bytes hold any v). */
static inline size_t ag__fmt_u64(char *buf, uint64_t v)
{
    size_t n = ag__put_u64(buf, v);
    buf[n] = 0;
    return n;
}

/* Writes the lower-case hexadecimal digits of v at w, without a NUL (1 to 16 bytes); returns how
 * many. A chunk-size line, for one. */
static inline size_t ag__put_hex(char *w, uint64_t v)
{
    char tmp[16];
    size_t n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    for (size_t i = 0; i < n; i++)
        w[i] = tmp[n - 1 - i];
    return n;
}

/* The value of a hexadecimal digit, or -1. */
static inline int ag__hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
