/* test-json: the buffer and JSON writers of cli/json.c, against hostile bytes; each output is
 * checked by a strict validator written here (decoding code points, not byte tables) and a sample
 * by Python's json module. */
#include "cli.h"
#include "../tap.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Decode one JSON string literal at s (exactly, nothing after it) into out (code points as
 * UTF-8). Returns the decoded length, or -1 when the literal is not valid JSON or not valid
 * UTF-8. Strict: raw bytes below 0x20 refused, every UTF-8 sequence decoded and checked for
 * overlong forms, surrogates and range. */
static long check_str(const char *s, size_t n, char *out)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    long o = 0;
    if (n < 2 || u[0] != '"' || u[n - 1] != '"')
        return -1;
    i = 1;
    while (i < n - 1) {
        unsigned c = u[i];
        if (c < 0x20)
            return -1;
        if (c == '"')
            return -1;
        if (c == '\\') {
            if (i + 1 >= n - 1)
                return -1;
            char e = (char)u[i + 1];
            const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
            const char *p = strchr(from, e);
            if (e && p) {
                out[o++] = to[p - from];
                i += 2;
                continue;
            }
            if (e != 'u' || i + 6 > n - 1)
                return -1;
            unsigned cp = 0;
            for (int k = 0; k < 4; k++) {
                char h = (char)u[i + 2 + k];
                cp <<= 4;
                if (h >= '0' && h <= '9')
                    cp |= (unsigned)(h - '0');
                else if (h >= 'a' && h <= 'f')
                    cp |= (unsigned)(h - 'a' + 10);
                else if (h >= 'A' && h <= 'F')
                    cp |= (unsigned)(h - 'A' + 10);
                else
                    return -1;
            }
            if (cp >= 0xd800 && cp <= 0xdfff)
                return -1; /* the writer never needs surrogate escapes */
            i += 6;
            if (cp < 0x80) {
                out[o++] = (char)cp;
            } else if (cp < 0x800) {
                out[o++] = (char)(0xc0 | (cp >> 6));
                out[o++] = (char)(0x80 | (cp & 0x3f));
            } else {
                out[o++] = (char)(0xe0 | (cp >> 12));
                out[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                out[o++] = (char)(0x80 | (cp & 0x3f));
            }
            continue;
        }
        if (c < 0x80) {
            out[o++] = (char)c;
            i++;
            continue;
        }
        int extra;
        unsigned cp, min;
        if ((c & 0xe0) == 0xc0) {
            extra = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            extra = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            extra = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return -1;
        }
        if (i + (size_t)extra > n - 2)
            return -1;
        for (int k = 1; k <= extra; k++) {
            if ((u[i + (size_t)k] & 0xc0) != 0x80)
                return -1;
            cp = (cp << 6) | (u[i + (size_t)k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return -1;
        memcpy(out + o, s + i, (size_t)extra + 1);
        o += extra + 1;
        i += (size_t)extra + 1;
    }
    return o;
}

/* Encode s with cli_json_str and check it; the decoded text into dec (len in *dlen). */
static int enc_check(const char *s, size_t n, cli_buf *b, char **dec, long *dlen)
{
    cli_buf_reset(b);
    cli_json_str(b, s, n);
    if (b->oom)
        return 0;
    *dec = realloc(*dec, b->len + 1);
    *dlen = check_str(b->p, b->len, *dec);
    return *dlen >= 0;
}

static void test_every_byte(void)
{
    cli_buf b = {0};
    char *dec = NULL;
    long dlen;
    int bad_valid = 0, bad_value = 0;
    for (int c = 0; c < 256; c++) {
        char s[3] = {'a', (char)c, 'b'};
        if (!enc_check(s, 3, &b, &dec, &dlen)) {
            bad_valid++;
            tap_diag("byte 0x%02x: %s", c, b.p);
            continue;
        }
        /* ASCII (NUL and DEL too) comes back as it was; a byte above 0x7f alone is never a
         * character, so it becomes U+FFFD. */
        if (c < 0x80) {
            if (dlen != 3 || memcmp(dec, s, 3) != 0)
                bad_value++;
        } else if (dlen != 5 || memcmp(dec,
                                       "a\xef\xbf\xbd"
                                       "b",
                                       5) != 0) {
            bad_value++;
        }
    }
    tap_ok(bad_valid == 0, "json_every_byte_valid (%d invalid)", bad_valid);
    tap_ok(bad_value == 0, "json_every_byte_roundtrips (%d wrong)", bad_value);
    /* The short escapes JSON has, and \u00XX for the other control bytes. */
    cli_buf_reset(&b);
    cli_json_str(&b, "\"\\\b\f\n\r\t\x01\x1f\x7f/", 11);
    tap_ok(strcmp(b.p, "\"\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\x7f/\"") == 0,
           "json_control_escapes (%s)", b.p);
    cli_buf_reset(&b);
    cli_json_str(&b, "a\0b", 3);
    tap_ok(strcmp(b.p, "\"a\\u0000b\"") == 0, "json_nul_inside_kept (%s)", b.p);
    free(dec);
    cli_buf_free(&b);
}

/* Each ill-formed class, and the number of U+FFFD it must give (maximal subparts). */
static const struct {
    const char *name, *in, *want;
} utf8_cases[] = {
    {"valid_2", "\xc3\xa9", "\"\xc3\xa9\""},
    {"valid_3", "\xe2\x82\xac", "\"\xe2\x82\xac\""},
    {"valid_4", "\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""},
    {"max_cp", "\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\""},
    {"last_before_surrogates", "\xed\x9f\xbf", "\"\xed\x9f\xbf\""},
    {"first_after_surrogates", "\xee\x80\x80", "\"\xee\x80\x80\""},
    {"stray_continuation", "\x80", "\"\\ufffd\""},
    {"two_stray", "\x80\xbf", "\"\\ufffd\\ufffd\""},
    {"overlong_c0", "\xc0\xaf", "\"\\ufffd\\ufffd\""},
    {"overlong_c1", "\xc1\xbf", "\"\\ufffd\\ufffd\""},
    {"overlong_e0", "\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\""},
    {"overlong_f0", "\xf0\x80\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},
    {"surrogate_hi", "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""},
    {"surrogate_lo", "\xed\xbf\xbf", "\"\\ufffd\\ufffd\\ufffd\""},
    {"above_10ffff_f4", "\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},
    {"lead_f5", "\xf5\x80\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},
    {"lead_ff", "\xff", "\"\\ufffd\""},
    {"lead_fe", "\xfe\xfe", "\"\\ufffd\\ufffd\""},
    {"cut_2_at_end", "a\xc3", "\"a\\ufffd\""},
    {"cut_3_at_end", "a\xe2\x82", "\"a\\ufffd\""},
    {"cut_4_at_end", "a\xf0\x9f\x98", "\"a\\ufffd\""},
    {"cut_3_then_ascii", "\xe2\x82z", "\"\\ufffdz\""},
    {"cut_4_then_valid", "\xf0\x9f\xc3\xa9", "\"\\ufffd\xc3\xa9\""},
    {"cut_then_quote", "\xe2\"", "\"\\ufffd\\\"\""},
    {"lead_then_lead", "\xc3\xc3\xa9", "\"\\ufffd\xc3\xa9\""},
    {"unicode_example", "\x61\xf1\x80\x80\xe1\x80\xc2\x62\x80\x63\x80\xbf\x64",
     "\"a\\ufffd\\ufffd\\ufffdb\\ufffdc\\ufffd\\ufffdd\""},
};

static void test_utf8_classes(void)
{
    cli_buf b = {0};
    char *dec = NULL;
    long dlen;
    for (size_t i = 0; i < sizeof utf8_cases / sizeof utf8_cases[0]; i++) {
        const char *in = utf8_cases[i].in;
        int valid = enc_check(in, strlen(in), &b, &dec, &dlen);
        tap_ok(valid && strcmp(b.p, utf8_cases[i].want) == 0, "json_utf8_%s (got %s)",
               utf8_cases[i].name, b.p);
    }
    free(dec);
    cli_buf_free(&b);
}

/* A small PRNG so runs are reproducible. */
static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Random strings biased toward the bytes that matter (leads, continuations, controls). */
static size_t random_str(char *s, size_t max)
{
    static const unsigned char pick[] = {0x00, 0x1f, 0x22, 0x5c, 0x7f, 0x80, 0xbf, 0xc0,
                                         0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5,
                                         0xff, 0x9f, 0xa0, 0x8f, 0x90, 'a'};
    size_t n = next_rand() % max;
    for (size_t i = 0; i < n; i++) {
        uint64_t r = next_rand();
        s[i] = (char)(r & 1 ? pick[(r >> 8) % sizeof pick] : (unsigned char)(r >> 16));
    }
    return n;
}

static void test_random(void)
{
    cli_buf b = {0};
    char *dec = NULL;
    long dlen;
    char s[64];
    int bad = 0;
    for (int i = 0; i < 200000; i++) {
        size_t n = random_str(s, sizeof s);
        if (!enc_check(s, n, &b, &dec, &dlen)) {
            if (bad++ < 3)
                tap_diag("invalid: %s", b.p);
        }
    }
    tap_ok(bad == 0, "json_random_bytes_valid (200000 strings, %d invalid)", bad);

    /* A long string of every byte value over and over, across buffer growth. */
    size_t big = 3 << 20;
    char *l = malloc(big);
    for (size_t i = 0; i < big; i++)
        l[i] = (char)(next_rand() >> 24);
    int ok = enc_check(l, big, &b, &dec, &dlen);
    tap_ok(ok && b.len >= big, "json_long_random_valid (%zu bytes in, %zu out)", big, b.len);
    memset(l, 'x', big);
    ok = enc_check(l, big, &b, &dec, &dlen);
    tap_ok(ok && (size_t)dlen == big && b.len == big + 2, "json_long_ascii_exact");
    free(l);
    free(dec);
    cli_buf_free(&b);
}

/* Python's json module as the independent parser: one literal a line; it reads the bytes as strict
 * UTF-8 and answers with the number of lines that parsed to a str. */
static void test_python(void)
{
    if (access("/usr/bin/python3", X_OK) != 0) {
        tap_skip("json_python_accepts: no /usr/bin/python3");
        return;
    }
    char path[] = "/tmp/test-json-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    cli_buf b = {0};
    char s[64];
    int lines = 0;
    for (int c = 0; c < 256; c++, lines++) {
        char one[3] = {'x', (char)c, 'y'};
        cli_buf_reset(&b);
        cli_json_str(&b, one, 3);
        fprintf(f, "%s\n", b.p);
    }
    for (size_t i = 0; i < sizeof utf8_cases / sizeof utf8_cases[0]; i++, lines++) {
        cli_buf_reset(&b);
        cli_json_cstr(&b, utf8_cases[i].in);
        fprintf(f, "%s\n", b.p);
    }
    for (int i = 0; i < 5000; i++, lines++) {
        size_t n = random_str(s, sizeof s);
        cli_buf_reset(&b);
        cli_json_str(&b, s, n);
        fprintf(f, "%s\n", b.p);
    }
    fclose(f);
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import json,sys\n"
             "n=0\n"
             "for l in open(sys.argv[1],\"rb\").read().decode(\"utf-8\").split(chr(10))[:-1]:\n"
             "  n += isinstance(json.loads(l), str)\n"
             "print(n)' %s",
             path);
    FILE *p = popen(cmd, "r");
    int got = -1;
    if (p) {
        if (fscanf(p, "%d", &got) != 1)
            got = -1;
        pclose(p);
    }
    unlink(path);
    tap_ok(got == lines, "json_python_accepts (%d of %d lines)", got, lines);
    cli_buf_free(&b);
}

static void test_secs(void)
{
    static const struct {
        int64_t ns;
        const char *want;
    } cases[] = {
        {0, "0.000000"},
        {999, "0.000000"},
        {1000, "0.000001"},
        {12345678, "0.012345"},
        {1000000000, "1.000000"},
        {3600123456789, "3600.123456"},
        {-1500000, "-0.001500"},
        {INT64_MAX, "9223372036.854775"},
        {INT64_MIN, "-9223372036.854775"},
    };
    cli_buf b = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cli_buf_reset(&b);
        cli_json_secs(&b, cases[i].ns);
        tap_ok(strcmp(b.p, cases[i].want) == 0, "json_secs_%s (%" PRId64 " ns: %s)", cases[i].want,
               cases[i].ns, b.p);
    }
    cli_buf_free(&b);
}

static void test_buf(void)
{
    cli_buf b = {0};
    cli_buf_puts(&b, "");
    tap_ok(b.p && b.len == 0 && b.p[0] == '\0', "buf_empty_put_terminates");
    for (int i = 0; i < 10000; i++)
        cli_buf_printf(&b, "%d,", i);
    size_t len = b.len;
    cli_buf b2 = {0};
    for (int i = 0; i < 10000; i++) {
        char t[16];
        snprintf(t, sizeof t, "%d,", i);
        cli_buf_puts(&b2, t);
    }
    tap_ok(len == b2.len && memcmp(b.p, b2.p, len) == 0 && b.p[len] == 0,
           "buf_printf_matches_puts (%zu bytes)", len);
    char big[5000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = 0;
    cli_buf_reset(&b);
    cli_buf_printf(&b, "<%s>", big);
    tap_ok(b.len == sizeof big + 1 && b.p[0] == '<' && b.p[b.len - 1] == '>' && !b.oom,
           "buf_printf_longer_than_room");
    cli_buf_reset(&b);
    tap_ok(b.len == 0 && b.p[0] == 0 && b.cap > 0, "buf_reset_keeps_memory");
    /* A size no allocation can meet: the buffer says so and stays as it was. */
    cli_buf_puts(&b, "keep");
    cli_buf_put(&b, "x", SIZE_MAX - 2);
    cli_buf_putc(&b, 'y');
    tap_ok(b.oom && b.len == 4 && strcmp(b.p, "keep") == 0, "buf_oom_sticks_and_keeps_prefix");
    cli_buf_free(&b);
    cli_buf_free(&b2);
    tap_ok(b.p == NULL && !b.oom, "buf_free_clears");
    cli_buf_free(&b); /* twice is harmless */
}

static void test_result(void)
{
    cli_result r = {0};
    r.urlnum = 7;
    r.url = "http://h/\xff\"x";
    r.method = "GET";
    r.http_code = 200;
    r.size_download = 1234;
    r.size_decoded = 5678;
    r.local_ip = "::1";
    r.local_port = 50123;
    r.size_header = 99;
    r.time_queue = 1000;
    r.time_namelookup = 2000000;
    r.time_connect = 3000000;
    r.time_appconnect = 0;
    r.time_pretransfer = 3500000;
    r.time_starttransfer = 4000000;
    r.time_total = 5123456789;
    r.num_connects = 1;
    r.num_redirects = 2;
    r.conn_id = 42;
    r.remote_ip = "::1";
    r.remote_port = 8443;
    r.reused = true;
    r.tls_version = "TLSv1.3";
    r.tls_resumed = false;
    r.attempts = 3;
    r.start_wall_ns = INT64_C(1796000523) * 1000000000 + 123456789;
    cli_buf b = {0};
    cli_result_json(&b, &r);
    const char *want =
        "{\"urlnum\":7,\"url\":\"http://h/\\ufffd\\\"x\",\"url_effective\":\"http://h/"
        "\\ufffd\\\"x\","
        "\"method\":\"GET\",\"http_code\":200,\"size_download\":1234,\"size_header\":99,"
        "\"time_queue\":0.000001,\"time_namelookup\":0.002000,\"time_connect\":0.003000,"
        "\"time_appconnect\":0.000000,\"time_pretransfer\":0.003500,\"time_starttransfer\":0."
        "004000,"
        "\"time_total\":5.123456,\"num_connects\":1,\"num_redirects\":2,\"conn_id\":42,"
        "\"remote_ip\":\"::1\",\"remote_port\":8443,\"exitcode\":0,\"errormsg\":null,"
        "\"reused\":true,\"tls_version\":\"TLSv1.3\",\"tls_resumed\":false,\"attempts\":3,"
        "\"start\":\"2026-11-30T01:02:03.123456Z\",\"size_decoded\":5678,"
        "\"local_ip\":\"::1\",\"local_port\":50123}";
    tap_ok(strcmp(b.p, want) == 0, "result_json_exact_keys_and_values");
    if (strcmp(b.p, want) != 0)
        tap_diag("got  %s\nwant %s", b.p, want);

    /* The keys in the contract's order, read back by json-c. */
    static const char *keys[] = {"urlnum",
                                 "url",
                                 "url_effective",
                                 "method",
                                 "http_code",
                                 "size_download",
                                 "size_header",
                                 "time_queue",
                                 "time_namelookup",
                                 "time_connect",
                                 "time_appconnect",
                                 "time_pretransfer",
                                 "time_starttransfer",
                                 "time_total",
                                 "num_connects",
                                 "num_redirects",
                                 "conn_id",
                                 "remote_ip",
                                 "remote_port",
                                 "exitcode",
                                 "errormsg",
                                 "reused",
                                 "tls_version",
                                 "tls_resumed",
                                 "attempts",
                                 "start",
                                 "size_decoded",
                                 "local_ip",
                                 "local_port"};
    /* A failed request: no response, an error message with hostile bytes, no address. */
    cli_result f = {0};
    f.urlnum = UINT64_MAX;
    f.url = "http://x/";
    f.url_effective = "http://y/";
    f.method = "POST";
    f.exitcode = 7;
    f.errormsg = "connect: \x01\xed\xa0\x80 refused\n";
    f.attempts = 1;
    f.start_wall_ns = -1; /* just before 1970: the fraction is still positive */
    cli_buf_reset(&b);
    cli_result_json(&b, &f);
    json_object *o = json_tokener_parse(b.p);
    int order_ok = o && json_object_get_type(o) == json_type_object;
    size_t k = 0;
    if (order_ok) {
        /* The iterator, not json_object_object_foreach: that macro is a GNU extension. */
        struct json_object_iterator it = json_object_iter_begin(o), end = json_object_iter_end(o);
        for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it), k++) {
            const char *key = json_object_iter_peek_name(&it);
            if (k >= sizeof keys / sizeof keys[0] || strcmp(key, keys[k]) != 0)
                order_ok = 0;
        }
    }
    tap_ok(order_ok && k == sizeof keys / sizeof keys[0], "result_json_key_order (%zu keys)", k);
    json_object *v;
    tap_ok(o && json_object_object_get_ex(o, "errormsg", &v) &&
               strcmp(json_object_get_string(v),
                      "connect: \x01\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd refused\n") == 0,
           "result_json_errormsg_escaped");
    tap_ok(o && json_object_object_get_ex(o, "tls_version", &v) && v == NULL,
           "result_json_tls_version_null");
    tap_ok(o && json_object_object_get_ex(o, "remote_ip", &v) &&
               json_object_get_type(v) == json_type_string && !*json_object_get_string(v),
           "result_json_remote_ip_empty_string");
    tap_ok(o && json_object_object_get_ex(o, "url_effective", &v) &&
               strcmp(json_object_get_string(v), "http://y/") == 0,
           "result_json_url_effective_given");
    tap_ok(o && json_object_object_get_ex(o, "start", &v) &&
               strcmp(json_object_get_string(v), "1969-12-31T23:59:59.999999Z") == 0,
           "result_json_start_before_epoch");
    tap_ok(strstr(b.p, "\"urlnum\":18446744073709551615,") != NULL, "result_json_urlnum_max");
    json_object_put(o);
    cli_buf_free(&b);
}

int main(void)
{
    test_buf();
    test_every_byte();
    test_utf8_classes();
    test_random();
    test_python();
    test_secs();
    test_result();
    return tap_done();
}
