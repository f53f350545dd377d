/* echo.h: reading what httpbin echoes (its JSON) and comparing bodies with files, for the
 * integration tests of credentials, cookies, codings, Unix sockets and uploads. */
#ifndef AG_TESTS_HTTP_ECHO_H
#define AG_TESTS_HTTP_ECHO_H

#include "tests/http/util.h"

#include <errno.h>
#include <stdint.h>

/* The JSON string value that follows the first "key" in json (httpbin writes compact JSON, but a
 * space after the colon is accepted), unescaped into a malloc'd buffer (caller frees) with its
 * length in *len; NULL when the key is missing or its value is not a string. \uXXXX escapes are
 * written as UTF-8 (no surrogate pairs: httpbin escapes only what JSON requires). */
static inline char *json_str_after(const char *json, const char *from, const char *key, size_t *len)
{
    char pat[256];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(from ? from : json, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    if (*p != '"')
        return NULL;
    p++;
    size_t cap = strlen(p) + 1, n = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    for (; *p && *p != '"'; p++) {
        if (*p != '\\') {
            out[n++] = *p;
            continue;
        }
        p++;
        switch (*p) {
        case 'n':
            out[n++] = '\n';
            break;
        case 'r':
            out[n++] = '\r';
            break;
        case 't':
            out[n++] = '\t';
            break;
        case 'b':
            out[n++] = '\b';
            break;
        case 'f':
            out[n++] = '\f';
            break;
        case 'u': {
            unsigned v = 0;
            for (int i = 1; i <= 4 && p[i]; i++) {
                char c = p[i];
                v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
            }
            p += 4;
            if (v < 0x80) {
                out[n++] = (char)v;
            } else if (v < 0x800) {
                out[n++] = (char)(0xC0 | v >> 6);
                out[n++] = (char)(0x80 | (v & 0x3F));
            } else {
                out[n++] = (char)(0xE0 | v >> 12);
                out[n++] = (char)(0x80 | ((v >> 6) & 0x3F));
                out[n++] = (char)(0x80 | (v & 0x3F));
            }
            break;
        }
        case 0:
            p--;
            break;
        default:
            out[n++] = *p;
            break; /* \" \\ \/ */
        }
    }
    if (*p != '"') {
        free(out);
        return NULL;
    }
    out[n] = 0;
    if (len)
        *len = n;
    return out;
}

static inline char *json_str(const char *json, const char *key, size_t *len)
{
    return json_str_after(json, NULL, key, len);
}

/* Whether the JSON string value of key equals want (NUL-terminated). */
static inline int json_is(const char *json, const char *key, const char *want)
{
    char *v = json_str(json, key, NULL);
    int same = v && strcmp(v, want) == 0;
    free(v);
    return same;
}

/* The whole file at path in memory (caller frees), or NULL; exits the test with a failed case
 * when it cannot be read, since every later comparison would be meaningless. */
static inline char *must_read(const char *path, size_t *len)
{
    char *b = read_file(path, len);
    if (!b) {
        printf("not ok - cannot read %s: %s\n", path, strerror(errno));
        exit(1);
    }
    return b;
}

/* The first offset where a and b differ (their common length when one is a prefix of the
 * other), for the diagnostics of a failed comparison. */
static inline size_t first_diff(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen, i = 0;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

/* A body that must equal want byte for byte. */
static inline int same_bytes(const char *got, size_t glen, const char *want, size_t wlen)
{
    return got && glen == wlen && memcmp(got, want, wlen) == 0;
}

/* path under directory dir (an environment variable's value), in a static rotating buffer. */
static inline const char *path_in(const char *dir, const char *name)
{
    static char bufs[8][1024];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

/* A growing buffer for AG_SINK_CALLBACK. */
typedef struct sinkbuf {
    char *data;
    size_t len, cap;
    unsigned calls;
    size_t limit; /* a negative return (abort) once len would pass it; 0: none */
} sinkbuf;

static inline int sinkbuf_cb(void *arg, const char *data, size_t len)
{
    sinkbuf *s = arg;
    s->calls++;
    if (s->limit && s->len + len > s->limit)
        return -1;
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap : 65536;
        while (cap < s->len + len)
            cap *= 2;
        char *d = realloc(s->data, cap);
        if (!d)
            return -1;
        s->data = d;
        s->cap = cap;
    }
    memcpy(s->data + s->len, data, len);
    s->len += len;
    return 0;
}

/* A counting callback sink that keeps nothing. */
static inline int count_cb(void *arg, const char *data, size_t len)
{
    (void)data;
    *(uint64_t *)arg += len;
    return 0;
}

#endif
