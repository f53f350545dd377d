/* test-numeric.c: the numeric address parsers and formatters, against the C library's. */
#include "core/str.h"
#include "dns/numeric.h"
#include "tests/tap.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *good6[] = {"::",
                              "::1",
                              "1::",
                              "1:2:3:4:5:6:7:8",
                              "fe80::1:2",
                              "::ffff:1.2.3.4",
                              "2001:db8::8:800:200c:417a",
                              "1:0:0:2::3",
                              "0:0:1::",
                              "::1:2:3:4:5:6:7",
                              "1:2:3:4:5:6:7::",
                              "::1.2.3.4",
                              "1:2:3:4:5:6:1.2.3.4",
                              "ABCD:ef01::"};
static const char *bad6[] = {"",
                             ":",
                             ":::",
                             "1:::2",
                             "1::2::3",
                             "12345::",
                             "1:2:3:4:5:6:7:8:9",
                             "1:2:3:4:5:6:7",
                             "g::",
                             "::1.2.3",
                             "1.2.3.4",
                             "::1:",
                             ":1::",
                             "1:2:3:4:5:6:7:8::",
                             "1:2:3:4:5:6:7:1.2.3.4",
                             "::1.2.3.04",
                             "::1.2.3.4:5",
                             "1a.2.3.4::",
                             "fe80::1%eth0",
                             "[::1]",
                             "::1 "};
static const char *good4[] = {"0.0.0.0", "127.0.0.1", "255.255.255.255", "10.20.30.40"};
static const char *bad4[] = {"",         "1.2.3",  "1.2.3.4.5", "256.1.1.1",
                             "01.2.3.4", "1..2.3", "a.b.c.d",   "1.2.3.4 "};

int main(void)
{
    for (size_t i = 0; i < sizeof good6 / sizeof *good6; i++) {
        uint8_t ours[16], libc[16];
        char text[64], back[INET6_ADDRSTRLEN];
        int ok = ag__ipv6_parse(good6[i], ours) && inet_pton(AF_INET6, good6[i], libc) == 1 &&
                 memcmp(ours, libc, 16) == 0;
        ag__ipv6_format(text, ours);
        inet_ntop(AF_INET6, libc, back, sizeof back);
        /* glibc prints IPv4-mapped addresses with a dotted tail; ours always in hex groups. */
        uint8_t again[16];
        tap_ok(ok && ag__ipv6_parse(text, again) && memcmp(again, ours, 16) == 0 &&
                   (strchr(back, '.') || strcmp(text, back) == 0),
               "ipv6 %s -> %s (libc %s)", good6[i], text, back);
    }
    for (size_t i = 0; i < sizeof bad6 / sizeof *bad6; i++) {
        uint8_t b[16];
        tap_ok(!ag__ipv6_parse(bad6[i], b), "ipv6 refuses \"%s\"", bad6[i]);
    }
    /* The URL parser hands over a span of its text: the length, not a NUL, ends the address.
     * Each case is followed by bytes that would change the answer if they were read. */
    int spans = 1;
    for (size_t i = 0; i < sizeof good6 / sizeof *good6 + sizeof bad6 / sizeof *bad6; i++) {
        int good = i < sizeof good6 / sizeof *good6;
        const char *t = good ? good6[i] : bad6[i - sizeof good6 / sizeof *good6];
        char buf[64];
        uint8_t whole[16], span[16];
        snprintf(buf, sizeof buf, "%s1:]", t);
        int ok = ag__ipv6_parse_n(buf, strlen(t), span);
        spans &= ok == good && (!ok || (ag__ipv6_parse(t, whole) && memcmp(whole, span, 16) == 0));
    }
    tap_ok(spans, "ipv6 parses a span, not reading past its length, with the same answers");
    for (size_t i = 0; i < sizeof good4 / sizeof *good4; i++) {
        uint8_t ours[4];
        struct in_addr libc;
        char text[16];
        int ok = ag__ipv4_parse(good4[i], ours) && inet_pton(AF_INET, good4[i], &libc) == 1 &&
                 memcmp(ours, &libc, 4) == 0;
        ag__ipv4_format(text, ours);
        tap_ok(ok && strcmp(text, good4[i]) == 0, "ipv4 %s round trip", good4[i]);
    }
    for (size_t i = 0; i < sizeof bad4 / sizeof *bad4; i++) {
        uint8_t b[4];
        tap_ok(!ag__ipv4_parse(bad4[i], b), "ipv4 refuses \"%s\"", bad4[i]);
    }
    /* Every 16-bit pattern of zero and non-zero groups formats and parses back. */
    int all = 1;
    for (unsigned m = 0; m < 256; m++) {
        uint8_t a[16] = {0}, b[16];
        char text[64];
        for (int g = 0; g < 8; g++)
            if (m & (1u << g))
                a[2 * g + 1] = (uint8_t)(g + 1);
        ag__ipv6_format(text, a);
        char libc[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, a, libc, sizeof libc);
        all &= ag__ipv6_parse(text, b) && memcmp(a, b, 16) == 0 &&
               (strchr(libc, '.') || strcmp(text, libc) == 0);
    }
    tap_ok(all, "ipv6 zero-run compression matches the C library for all 256 group patterns");
    /* The one decimal formatter and hex-digit helper (core/str.h). */
    static const struct {
        uint64_t v;
        const char *text;
    } decs[] = {
        {0, "0"}, {9, "9"}, {10, "10"}, {65535, "65535"}, {UINT64_MAX, "18446744073709551615"}};
    for (size_t i = 0; i < sizeof decs / sizeof *decs; i++) {
        char buf[24];
        memset(buf, 'x', sizeof buf);
        size_t n = ag__put_u64(buf, decs[i].v);
        int raw_ok =
            n == strlen(decs[i].text) && memcmp(buf, decs[i].text, n) == 0 && buf[n] == 'x';
        size_t m = ag__fmt_u64(buf, decs[i].v);
        tap_ok(raw_ok && m == n && strcmp(buf, decs[i].text) == 0,
               "str_fmt_u64 %s: digits only from put, NUL-terminated from fmt", decs[i].text);
    }
    int hex_ok = 1;
    for (int c = 0; c < 256; c++) {
        const char *digits = "0123456789abcdef", *upper = "0123456789ABCDEF";
        const char *lo = c ? strchr(digits, c) : NULL, *up = c ? strchr(upper, c) : NULL;
        int want = lo ? (int)(lo - digits) : up ? (int)(up - upper) : -1;
        hex_ok &= ag__hex_value((char)c) == want;
    }
    tap_ok(hex_ok, "str_hex_value: the 22 hex digits have their values, the other 234 bytes -1");
    static const struct {
        uint64_t v;
        const char *text;
    } hexes[] = {{0, "0"},    {9, "9"},         {10, "a"},
                 {255, "ff"}, {65536, "10000"}, {UINT64_MAX, "ffffffffffffffff"}};
    for (size_t i = 0; i < sizeof hexes / sizeof *hexes; i++) {
        char buf[24];
        memset(buf, 'x', sizeof buf);
        size_t n = ag__put_hex(buf, hexes[i].v);
        tap_ok(n == strlen(hexes[i].text) && memcmp(buf, hexes[i].text, n) == 0 && buf[n] == 'x',
               "str_put_hex %s: lower-case digits, no NUL", hexes[i].text);
    }
    return tap_done();
}
