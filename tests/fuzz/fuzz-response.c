/* fuzz-response.c: one fuzz input is a response's bytes plus the sizes its reads are cut into.
 * The same entry point serves libFuzzer (clang -fsanitize=fuzzer, see tests/fuzz/README.md) and
 * the deterministic mutation run of test-fuzz-response, which CI runs under the sanitizers.
 * A complete response is judged by an oracle written here from the RFCs, independent of the
 * library's own validators: a bug in those would otherwise judge itself. */
#include "http/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Outcomes so far, for the deterministic run to report how much it reached. */
long ag_fuzz_complete, ag_fuzz_errors, ag_fuzz_pending;

/* Two clients: one that hands the body over as it came, one that decodes its content codings
 * (gzip, deflate, br, zstd, as built), so the decoders are fed hostile bodies too. */
static ag_client *client(bool decoding)
{
    static ag_client *c[2];
    if (!c[decoding]) {
        ag_client_opts o;
        ag_client_opts_init(&o);
        o.max_body_bytes = 1 << 16; /* small caps reach the limit paths */
        o.max_header_bytes = 4096;
        o.max_headers = 32;
        o.max_interim = 3;
        o.compressed = decoding;
        if (ag_client_new(&c[decoding], &o) < 0)
            abort();
    }
    return c[decoding];
}

/* ---- the oracle: RFC 9110 and RFC 9112 read directly ---- */

/* The input being judged, shown when a promise breaks (the deterministic run has no crash file). */
static const uint8_t *input;
static size_t input_len;

static void broken(const char *what)
{
    fprintf(stderr, "fuzz-response: a complete response %s; the input (flags, seed, bytes):\n",
            what);
    for (size_t i = 0; i < input_len; i++) {
        unsigned char c = input[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            fputc(c, stderr);
        else
            fprintf(stderr, "\\x%02x", c);
    }
    fputc('\n', stderr);
    abort();
}

/* tchar (RFC 9110 section 5.6.2): "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
 * "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA. */
static bool oracle_tchar(unsigned char c)
{
    static const char specials[] = "!#$%&'*+-.^_`|~";
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != 0 && memchr(specials, c, sizeof specials - 1) != NULL;
}

static bool oracle_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!oracle_tchar((unsigned char)*s))
            return false;
    return true;
}

/* field-value = *field-content; field-content = field-vchar [ 1*( SP / HTAB / field-vchar )
 * field-vchar ]; field-vchar = VCHAR / obs-text (RFC 9110 section 5.5). So: no white space at
 * either end (the parser strips it as OWS), and inside only SP, HTAB, 0x21-0x7E and 0x80-0xFF
 * (an obs-fold having become SP). The value is a C string: a NUL inside would end it early,
 * which the length the record takes shows (checked by the caller). */
static bool oracle_field_value(const char *s)
{
    size_t n = strlen(s);
    if (n && (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(c == ' ' || c == '\t' || (c >= 0x21 && c <= 0x7e) || c >= 0x80))
            return false;
    }
    return true;
}

/* Every field is a token name and a clean value, and the records fill the buffer exactly, so
 * no NUL hid inside a name or value. */
static bool oracle_fields(const ag__fields *f)
{
    size_t used = 0;
    for (size_t i = 0; i < f->n; i++) {
        const char *name = f->buf + f->idx[i];
        const char *value = name + strlen(name) + 1;
        if (!oracle_token(name) || !oracle_field_value(value))
            return false;
        used += strlen(name) + 1 + strlen(value) + 1;
    }
    return used == f->len;
}

static bool oracle_name_is(const char *name, const char *want)
{
    for (; *name && *want; name++, want++) {
        char a = *name >= 'A' && *name <= 'Z' ? (char)(*name + 32) : *name;
        if (a != *want)
            return false;
    }
    return !*name && !*want;
}

/* A content coding a decoding client may take as a transfer coding before chunked (RFC 9110
 * section 8.4.1; x-gzip is gzip). */
static bool oracle_coding(const char *e)
{
    return oracle_name_is(e, "gzip") || oracle_name_is(e, "x-gzip") ||
           oracle_name_is(e, "deflate") || oracle_name_is(e, "br") || oracle_name_is(e, "zstd");
}

/* The framing of a complete response with a body (RFC 9112 section 6): Transfer-Encoding, if
 * present, is exactly one "chunked" once empty elements and OWS are dropped, and then there is
 * no Content-Length; a single Content-Length of digits equals the body length received. A client
 * that decodes may also take codings before a final chunked, or codings alone, the body then
 * ending at the close (*by_close). */
static bool oracle_framing(const ag_response *r, bool decoding, bool *te_out, bool *by_close)
{
    bool te = false, chunked_last = false, other_unknown = false;
    unsigned te_elements = 0, te_chunked = 0, lengths = 0;
    const char *length = NULL;
    const ag__fields *f = &r->headers;
    for (size_t i = 0; i < f->n; i++) {
        const char *name = f->buf + f->idx[i];
        const char *value = name + strlen(name) + 1;
        if (oracle_name_is(name, "content-length")) {
            lengths++;
            length = value;
        }
        if (!oracle_name_is(name, "transfer-encoding"))
            continue;
        te = true;
        char elem[16];
        size_t n = 0;
        bool long_elem = false, ws = false; /* ws: white space after the element's first byte */
        for (const char *p = value;; p++) {
            if (*p == ',' || !*p) {
                if (n || long_elem) {
                    te_elements++;
                    elem[n] = 0;
                    chunked_last = !long_elem && n == 7 && oracle_name_is(elem, "chunked");
                    te_chunked += chunked_last;
                    other_unknown |= !chunked_last && (long_elem || !oracle_coding(elem));
                }
                n = 0;
                long_elem = ws = false;
                if (!*p)
                    break;
            } else if (*p == ' ' || *p == '\t') {
                /* Optional white space around an element, however long, is not part of it. */
                ws = n > 0 || long_elem;
            } else if (ws || n + 1 >= sizeof elem) {
                long_elem = true; /* white space inside, or too long: no coding's name */
            } else {
                elem[n++] = *p;
            }
        }
    }
    *te_out = te;
    *by_close = false;
    if (te && decoding && te_elements > te_chunked && !other_unknown && lengths == 0 &&
        te_chunked <= 1 && (te_chunked == 0 || chunked_last)) {
        *by_close = te_chunked == 0;
        return true;
    }
    if (te)
        return te_elements == 1 && te_chunked == 1 && lengths == 0;
    if (lengths == 1) {
        uint64_t want = 0;
        for (const char *p = length; *p; p++) {
            if (*p < '0' || *p > '9' || want > UINT64_MAX / 10 - 9)
                return false;
            want = want * 10 + (uint64_t)(*p - '0');
        }
        return *length && r->body_bytes == want;
    }
    return lengths == 0;
}

/* Byte 0: flags (bit 0: HEAD request, bit 1: end of stream after the bytes, bit 2: a client that
 * decodes content codings); byte 1: the seed of the read sizes; the rest: the bytes from the
 * server. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    input = data;
    input_len = size;
    bool head = data[0] & 1, eof = data[0] & 2, decoding = data[0] & 4;
    unsigned seed = data[1];
    data += 2;
    size -= 2;
    ag_request req;
    ag_request_init(&req);
    ag_response *r = calloc(1, sizeof *r);
    if (!r)
        return 0;
    ag__parse ps;
    ag__parse_init(&ps, client(decoding), &req, r, head, true);
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
        /* Final: not 0 (no response) nor 1xx (interim); three digits. A code outside 100-599
         * is delivered as sent (RFC 9110 section 15 has a client treat it as a 5xx). */
        if (r->status < 1 || r->status > 999 || (r->status >= 100 && r->status < 200))
            broken("has a status that is not a final three-digit code");
        /* HTTP/1.2 to 1.9 read as HTTP/1.1 (RFC 9110 section 2.5). */
        if (r->http_minor != 0 && r->http_minor != 1)
            broken("reports a minor version other than 0 or 1");
        if (r->body_len > (1 << 16))
            broken("holds a body above the cap");
        /* Decoded or not, what the memory sink holds is every byte counted as delivered (a
         * redirect followed drops its body, counting it). */
        if (!ps.discard && r->decoded_bytes != r->body_len)
            broken("holds a body of another length than the bytes it counted as delivered");
        if (!ps.discard && !decoding && r->body_len != r->body_bytes)
            broken("holds a body of another length than the bytes received, without decoding");
        if ((head || r->status == 204 || r->status == 304) && r->body_bytes != 0)
            broken("has a body where none may be");
        if (!oracle_fields(&r->headers))
            broken("has a header field that is not a token name and a clean value");
        if (!oracle_fields(&r->trailers))
            broken("has a trailer field that is not a token name and a clean value");
        bool te = false, by_close = false;
        bool framed = oracle_framing(r, decoding, &te, &by_close);
        bool bodyless = head || r->status == 204 || r->status == 304;
        if (!bodyless && !framed)
            broken("was framed otherwise than by one chunked or one Content-Length");
        /* HTTP/1.0 has no Transfer-Encoding: its connection is not trusted afterwards. */
        bool keep = http_should_keep_alive(&ps.p) && !ps.extra && !ps.must_close;
        /* A body that ended at the close leaves no connection to keep. */
        if (!bodyless && by_close && keep)
            broken("ended at the close, yet keeps its connection");
        if (te && r->http_minor == 0 && keep)
            broken("in HTTP/1.0 with Transfer-Encoding keeps its connection");
        /* A server that breaks the status grammar is not trusted with the next request. */
        if ((r->status < 100 || r->status > 599) && keep)
            broken("with a status outside 100-599 keeps its connection");
    }
    ag__parse_end(&ps);
    ag_response_free(r);
    return 0;
}
