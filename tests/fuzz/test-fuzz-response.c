/* test-fuzz-response.c: a deterministic mutation run over the response parser: valid responses
 * are corrupted (bytes flipped, inserted, deleted, duplicated; CR, LF, digits, chunk sizes,
 * framing fields and list separators injected) and fed in random read sizes. The entry point
 * aborts when a complete response breaks a promise as its own RFC oracle reads it, and the
 * sanitizer build catches memory errors. */
#include "tests/tap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern long ag_fuzz_complete, ag_fuzz_errors, ag_fuzz_pending;

/* Seeds with their lengths: the coded bodies hold NUL bytes. */
#define SEED(s)                                                                                    \
    {                                                                                              \
        s, sizeof s - 1                                                                            \
    }
static const struct {
    const char *p;
    size_t n;
} seeds[] = {
    SEED("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhello"),
    SEED(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n0\r\nT: v\r\n\r\n"),
    SEED("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"),
    SEED("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close"),
    SEED("HTTP/1.1 301 Moved\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n"),
    SEED("HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\n\r\n"),
    SEED("HTTP/1.1 200 OK\r\nTransfer-Encoding: , chunked \r\nX-A: "
         "b\tc\r\n\r\n2\r\nok\r\n0\r\n\r\n"),
    SEED("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
         "2\r\nok\r\n0\r\n\r\n"),
    /* Coded bodies, for a client that decodes (flag bit 2): "hello hello hello\n" in each. */
    SEED("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 29\r\n\r\n"
         "\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\xcb\x48\xcd\xc9\xc9\x57\xc8\x40\x90\x5c"
         "\x00\x3b\x7c\x8a\xdf\x12\x00\x00\x00"),
    SEED("HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n\r\n"
         "11\r\n\x78\x9c\xcb\x48\xcd\xc9\xc9\x57\xc8\x40\x90\x5c\x00\x40\xb5\x06\x87\r\n"
         "0\r\n\r\n"),
    SEED("HTTP/1.1 200 OK\r\nContent-Encoding: zstd\r\nContent-Length: 26\r\n\r\n"
         "\x28\xb5\x2f\xfd\x24\x12\x6d\x00\x00\x38\x68\x65\x6c\x6c\x6f\x20\x0a\x01\x00\x31"
         "\x4a\x11\xa3\xaa\x74\xce"),
    SEED("HTTP/1.1 200 OK\r\nContent-Encoding: br\r\n\r\n"
         "\x21\x44\x00\x04\x68\x65\x6c\x6c\x6f\x20\x68\x65\x6c\x6c\x6f\x20\x68\x65\x6c\x6c"
         "\x6f\x0a\x03"),
    SEED("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
         "1d\r\n\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\xcb\x48\xcd\xc9\xc9\x57\xc8\x40\x90"
         "\x5c\x00\x3b\x7c\x8a\xdf\x12\x00\x00\x00\r\n0\r\n\r\n"),
};

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

static size_t mutate(uint8_t *buf, size_t len, size_t cap)
{
    static const char *inserts[] = {"\r",
                                    "\n",
                                    "\r\n",
                                    " ",
                                    "0",
                                    "9",
                                    ":",
                                    "ffffffff",
                                    "\x00",
                                    "HTTP/1.1 ",
                                    "Content-Length: 3\r\n",
                                    "chunked",
                                    "\t",
                                    ";",
                                    ",",
                                    "gzip",
                                    "Transfer-Encoding: chunked\r\n",
                                    "\x7f",
                                    "\x80"};
    int rounds = 1 + next() % 4;
    for (int k = 0; k < rounds; k++) {
        size_t at = len ? next() % len : 0;
        switch (next() % 5) {
        case 0: /* flip a bit */
            if (len)
                buf[at] ^= (uint8_t)(1u << (next() % 8));
            break;
        case 1: /* delete a run */
            if (len) {
                size_t n = 1 + next() % 8;
                if (n > len - at)
                    n = len - at;
                memmove(buf + at, buf + at + n, len - at - n);
                len -= n;
            }
            break;
        case 2: { /* insert a token */
            const char *s = inserts[next() % (sizeof inserts / sizeof *inserts)];
            size_t n = strlen(s) ? strlen(s) : 1;
            if (len + n <= cap) {
                memmove(buf + at + n, buf + at, len - at);
                memcpy(buf + at, s, n);
                len += n;
            }
            break;
        }
        case 3: /* duplicate a run */
            if (len) {
                size_t n = 1 + next() % 32;
                if (n > len - at)
                    n = len - at;
                if (len + n <= cap) {
                    memmove(buf + at + n, buf + at, len - at);
                    len += n;
                }
            }
            break;
        default: /* random byte */
            if (len)
                buf[at] = (uint8_t)next();
            break;
        }
    }
    return len;
}

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 200000;
    static uint8_t buf[4096];
    for (long i = 0; i < iterations; i++) {
        size_t k = next() % (sizeof seeds / sizeof *seeds);
        const char *seed = seeds[k].p;
        size_t len = seeds[k].n;
        buf[0] = (uint8_t)next();
        buf[1] = (uint8_t)next();
        memcpy(buf + 2, seed, len);
        len = 2 + mutate(buf + 2, len, sizeof buf - 2);
        LLVMFuzzerTestOneInput(buf, len);
    }
    tap_diag("%ld complete, %ld refused with an error, %ld still waiting for bytes",
             ag_fuzz_complete, ag_fuzz_errors, ag_fuzz_pending);
    /* Reaching here means no input crashed or broke a promise: each would have aborted. */
    tap_ok(ag_fuzz_complete > iterations / 20 && ag_fuzz_errors > iterations / 20,
           "fuzz_response: %ld mutated responses parsed, every promise kept", iterations);
    return tap_done();
}
