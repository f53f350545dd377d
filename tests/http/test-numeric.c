/* test-numeric.c: the numeric address parsers and formatters, against the C library's. */
#include "dns/resolve.h"
#include "tests/tap.h"

#include <arpa/inet.h>
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
                              "::1:2:3:4:5:6:7"};
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
                             ":1::"};
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
    return tap_done();
}
