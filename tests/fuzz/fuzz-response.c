/* fuzz-response.c: one fuzz input is a response's bytes plus the sizes its reads are cut into.
 * The same entry point serves libFuzzer (clang -fsanitize=fuzzer, see tests/fuzz/README.md) and
 * the deterministic mutation run of test-fuzz-response, which CI runs under the sanitizers. */
#include "http/internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Outcomes so far, for the deterministic run to report how much it reached. */
long ag_fuzz_complete, ag_fuzz_errors, ag_fuzz_pending;

static ag_client *client(void)
{
    static ag_client *c;
    if (!c) {
        ag_client_opts o;
        ag_client_opts_init(&o);
        o.max_body_bytes = 1 << 16; /* small caps reach the limit paths */
        o.max_header_bytes = 4096;
        o.max_headers = 32;
        o.max_interim = 3;
        if (ag_client_new(&c, &o) < 0)
            abort();
    }
    return c;
}

/* Byte 0: flags (bit 0: HEAD request, bit 1: end of stream after the bytes); byte 1: the seed of
 * the read sizes; the rest: the bytes from the server. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    bool head = data[0] & 1, eof = data[0] & 2;
    unsigned seed = data[1];
    data += 2;
    size -= 2;
    ag_request req;
    ag_request_init(&req);
    ag_response *r = calloc(1, sizeof *r);
    if (!r)
        return 0;
    ag__parse ps;
    ag__parse_init(&ps, client(), &req, r, head, true);
    int rc = 0;
    size_t off = 0;
    while (off < size && rc == 0) {
        seed = seed * 1103515245u + 12345u;
        size_t n = 1 + (seed >> 16) % 64;
        if (n > size - off)
            n = size - off;
        /* Each read in a buffer of its own, exactly its size, so an over-read is caught. */
        char *piece = malloc(n);
        if (!piece)
            break;
        memcpy(piece, data + off, n);
        rc = ag__parse_feed(&ps, piece, n);
        free(piece);
        off += n;
    }
    if (rc == 0 && eof)
        rc = ag__parse_feed(&ps, NULL, 0);
    if (rc == 1)
        ag_fuzz_complete++;
    else if (rc < 0)
        ag_fuzz_errors++;
    else
        ag_fuzz_pending++;
    if (rc == 1) {
        /* A complete response keeps the promises the rest of the client relies on. */
        if (r->status < 100 || r->status > 599 || r->body_len > (1 << 16) ||
            ((head || r->status == 204 || r->status == 304) && r->body_bytes != 0))
            abort();
        for (size_t i = 0; i < r->headers.n; i++) {
            const char *name, *value;
            ag_response_header_at(r, i, &name, &value);
            if (!ag__http_is_token(name, strlen(name)) ||
                !ag__http_is_field_value(value, strlen(value)))
                abort();
        }
    }
    ag_response_free(r);
    return 0;
}
