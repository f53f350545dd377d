/* numeric.h: IPv4 and IPv6 addresses between text and bytes, the one grammar for both that the
 * resolver and the URL parser use. */
#ifndef AG_DNS_NUMERIC_H
#define AG_DNS_NUMERIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The parsers accept exactly the textual forms: a dotted quad without leading zeros in its parts
 * (so no octal ambiguity), and the IPv6address of RFC 3986 section 3.2.2 (RFC 4291 section 2.2:
 * eight groups of one to four hex digits, fewer with one "::", the last 32 bits optionally a
 * dotted quad), with no brackets and no zone ID. The _n forms take a length instead of a NUL. */
bool ag__ipv4_parse(const char *s, uint8_t out[4]);
bool ag__ipv6_parse(const char *s, uint8_t out[16]);
bool ag__ipv6_parse_n(const char *s, size_t len, uint8_t out[16]);
/* The formatters write NUL-terminated text (IPv6 per RFC 5952) and return a pointer to the NUL.
 * p holds 16 bytes for IPv4, 40 for IPv6. */
char *ag__ipv4_format(char *p, const uint8_t a[4]);
char *ag__ipv6_format(char *p, const uint8_t a[16]);

#endif
