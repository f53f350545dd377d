/* cookie.h: the cookie jar (RFC 6265) as the client uses it: store a response's Set-Cookie
 * fields, and give the Cookie value of a request. The public functions are in asyncget.h. */
#ifndef AG_HTTP_COOKIE_H
#define AG_HTTP_COOKIE_H

#include "asyncget.h"
#include "http/url.h"

#include <stdint.h>

/* Limits, as browsers set them (Firefox and Chrome: 180 cookies per registrable domain; about
 * 3,000 in all; 4,096 bytes of name and value per cookie). Past a count, the cookie accessed
 * least recently goes first. */
#define AG__COOKIE_MAX_BYTES      4096
#define AG__COOKIE_MAX_PER_DOMAIN 180
#define AG__COOKIE_MAX_TOTAL      3000
/* An attribute value longer than this is ignored (RFC 6265bis section 5.6). */
#define AG__COOKIE_MAX_ATTR 1024

/* Store what "Set-Cookie: set_cookie" in a response to url stores: 1 stored (or, for an expired
 * cookie, the matching one deleted), 0 refused by the rules, -ENOMEM. */
int ag__cookie_store(ag_cookie_jar *jar, const ag__url *url, const char *set_cookie);

/* The Cookie value for a request to url in *out (malloc'd; NULL when no cookie matches), and
 * the last-access time of those cookies updated. 0 or -ENOMEM. */
int ag__cookie_value(ag_cookie_jar *jar, const ag__url *url, char **out);

/* For tests: the jar's clock reads now (seconds since 1970) instead of the wall clock; 0 goes
 * back to the wall clock. */
void ag__cookie_jar_set_time(ag_cookie_jar *jar, int64_t now);

/* The section 5.1.1 date algorithm on len bytes at s: 0 and the seconds since 1970 (UTC) in
 * *out, or -1 when s is not a date the algorithm accepts. */
int ag__cookie_date(const char *s, size_t len, int64_t *out);

#endif
