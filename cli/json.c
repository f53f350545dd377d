/* json.c: a growable buffer and the JSON writers of the command (strings that are valid whatever
 * the bytes, times as curl prints them, one request's result as a --jsonl line). */
#include "cli.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Room for n more bytes and the terminating NUL. After one failed allocation the buffer stays
 * as it was and refuses everything, so its content is a prefix of what was asked, never a
 * mixture. */
static bool buf_grow(cli_buf *b, size_t n)
{
    if (b->oom)
        return false;
    if (n < b->cap - b->len && b->p)
        return true;
    if (n > SIZE_MAX / 2 - b->len - 1) {
        b->oom = true;
        return false;
    }
    size_t need = b->len + n + 1;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void cli_buf_put(cli_buf *b, const void *p, size_t n)
{
    if (!buf_grow(b, n))
        return;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void cli_buf_puts(cli_buf *b, const char *s)
{
    cli_buf_put(b, s, strlen(s));
}

void cli_buf_putc(cli_buf *b, char c)
{
    cli_buf_put(b, &c, 1);
}

void cli_buf_printf(cli_buf *b, const char *fmt, ...)
{
    va_list ap;
    /* Most calls are short: try in the room there is, grow once when it was not enough. */
    if (!buf_grow(b, 32))
        return;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->p[b->len] = '\0';
        return;
    }
    if ((size_t)n >= b->cap - b->len) {
        if (!buf_grow(b, (size_t)n)) {
            b->p[b->len] = '\0';
            return;
        }
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

void cli_buf_reset(cli_buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

void cli_buf_free(cli_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}

/* The length of the well-formed UTF-8 sequence at s (1 to 4), or, when it is not well-formed,
 * minus the length of its maximal subpart (the lead byte and the continuation bytes that could
 * still have been part of a valid sequence): Unicode's recommended practice, one U+FFFD for
 * each such subpart. n is at least 1. */
static int utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    int want;
    unsigned char lo = 0x80, hi = 0xbf; /* the range of the second byte */
    if (c < 0x80)
        return 1;
    if (c < 0xc2 || c > 0xf4)
        return -1; /* a stray continuation byte, an overlong lead, or above U+10FFFF */
    if (c < 0xe0)
        want = 2;
    else if (c < 0xf0) {
        want = 3;
        if (c == 0xe0)
            lo = 0xa0; /* below: overlong */
        else if (c == 0xed)
            hi = 0x9f; /* above: surrogates D800-DFFF */
    } else {
        want = 4;
        if (c == 0xf0)
            lo = 0x90; /* below: overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* above: beyond U+10FFFF */
    }
    int i = 1;
    for (; i < want; i++) {
        if ((size_t)i >= n)
            return -i;
        unsigned char lo_i = i == 1 ? lo : 0x80, hi_i = i == 1 ? hi : 0xbf;
        if (s[i] < lo_i || s[i] > hi_i)
            return -i;
    }
    return want;
}

void cli_json_str(cli_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (!s) {
        cli_buf_put(b, "null", 4);
        return;
    }
    const unsigned char *u = (const unsigned char *)s;
    cli_buf_putc(b, '"');
    size_t i = 0, run = 0; /* bytes [run, i) are copied as they are */
    while (i < len) {
        unsigned char c = u[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        int n = c < 0x80 ? 1 : utf8_seq(u + i, len - i);
        if (c >= 0x80 && n > 0) {
            i += (size_t)n;
            continue;
        }
        cli_buf_put(b, s + run, i - run);
        if (n < 0) {
            cli_buf_put(b, "\\ufffd", 6);
            i += (size_t)-n;
        } else {
            char esc[6] = {'\\', 0, 0, 0, 0, 0};
            size_t elen = 2;
            switch (c) {
            case '"':
                esc[1] = '"';
                break;
            case '\\':
                esc[1] = '\\';
                break;
            case '\b':
                esc[1] = 'b';
                break;
            case '\f':
                esc[1] = 'f';
                break;
            case '\n':
                esc[1] = 'n';
                break;
            case '\r':
                esc[1] = 'r';
                break;
            case '\t':
                esc[1] = 't';
                break;
            default:
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                elen = 6;
            }
            cli_buf_put(b, esc, elen);
            i++;
        }
        run = i;
    }
    cli_buf_put(b, s + run, i - run);
    cli_buf_putc(b, '"');
}

void cli_json_cstr(cli_buf *b, const char *s)
{
    cli_json_str(b, s, s ? strlen(s) : 0);
}

/* Whole integers only, so no NaN or infinity can appear. curl counts its times in microseconds
 * and prints them as seconds with six decimals: the nanoseconds below a microsecond drop. */
void cli_json_secs(cli_buf *b, int64_t ns)
{
    /* Written digit by digit from the right: --jsonl prints seven of these per line, and
     * printf would be most of its cost. */
    char d[32];
    size_t i = sizeof d;
    uint64_t mag = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    uint64_t us = mag / 1000;
    for (int k = 0; k < 6; k++, us /= 10)
        d[--i] = (char)('0' + us % 10);
    d[--i] = '.';
    do {
        d[--i] = (char)('0' + us % 10);
        us /= 10;
    } while (us);
    if (ns < 0)
        d[--i] = '-';
    cli_buf_put(b, d + i, sizeof d - i);
}

bool cli_json_date(cli_buf *b, int64_t wall_ns, bool epoch_if_none)
{
    int64_t sec = wall_ns / 1000000000, frac = wall_ns % 1000000000;
    if (frac < 0) {
        frac += 1000000000;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    bool ok = gmtime_r(&t, &tm) && tm.tm_year + 1900 >= 0 && tm.tm_year + 1900 <= 9999;
    if (!ok && !epoch_if_none) {
        cli_buf_puts(b, "null");
        return false;
    }
    if (!ok) {
        memset(&tm, 0, sizeof tm);
        tm.tm_year = 70;
        tm.tm_mday = 1;
        frac = 0;
    }
    cli_buf_printf(b, "\"%04d-%02d-%02dT%02d:%02d:%02d.%06dZ\"", tm.tm_year + 1900, tm.tm_mon + 1,
                   tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(frac / 1000));
    return ok;
}

static void json_key(cli_buf *b, const char *key)
{
    cli_buf_putc(b, ',');
    cli_buf_putc(b, '"');
    cli_buf_puts(b, key);
    cli_buf_puts(b, "\":");
}

static void json_secs_key(cli_buf *b, const char *key, int64_t ns)
{
    json_key(b, key);
    cli_json_secs(b, ns);
}

void cli_result_json(cli_buf *b, const cli_result *r)
{
    cli_buf_printf(b, "{\"urlnum\":%" PRIu64, r->urlnum);
    json_key(b, "url");
    cli_json_cstr(b, r->url);
    json_key(b, "url_effective");
    cli_json_cstr(b, r->url_effective ? r->url_effective : r->url);
    json_key(b, "method");
    cli_json_cstr(b, r->method);
    cli_buf_printf(b, ",\"http_code\":%d,\"size_download\":%" PRIu64 ",\"size_header\":%" PRIu64,
                   r->http_code, r->size_download, r->size_header);
    json_secs_key(b, "time_queue", r->time_queue);
    json_secs_key(b, "time_namelookup", r->time_namelookup);
    json_secs_key(b, "time_connect", r->time_connect);
    json_secs_key(b, "time_appconnect", r->time_appconnect);
    json_secs_key(b, "time_pretransfer", r->time_pretransfer);
    json_secs_key(b, "time_starttransfer", r->time_starttransfer);
    json_secs_key(b, "time_total", r->time_total);
    cli_buf_printf(b, ",\"num_connects\":%u,\"num_redirects\":%u,\"conn_id\":%" PRIu64,
                   r->num_connects, r->num_redirects, r->conn_id);
    /* Always a string, so a reader need not test its type: "" when no address was tried. */
    json_key(b, "remote_ip");
    cli_json_cstr(b, r->remote_ip ? r->remote_ip : "");
    cli_buf_printf(b, ",\"remote_port\":%d,\"exitcode\":%d", r->remote_port, r->exitcode);
    json_key(b, "errormsg");
    cli_json_cstr(b, r->errormsg);
    cli_buf_printf(b, ",\"reused\":%s", r->reused ? "true" : "false");
    json_key(b, "tls_version");
    cli_json_cstr(b, r->tls_version);
    cli_buf_printf(b, ",\"tls_resumed\":%s,\"attempts\":%u", r->tls_resumed ? "true" : "false",
                   r->attempts);
    json_key(b, "start");
    cli_json_date(b, r->start_wall_ns, false);
    /* Keys added later go at the end, so that the order of the others never changes. */
    cli_buf_printf(b, ",\"size_decoded\":%" PRIu64, r->size_decoded);
    json_key(b, "local_ip");
    cli_json_cstr(b, r->local_ip ? r->local_ip : "");
    cli_buf_printf(b, ",\"local_port\":%d", r->local_port);
    cli_buf_putc(b, '}');
}
