/* test-decode.c: the coding decoder chain on bodies coded at test time with zlib, brotli and
 * zstd: each coding whole and one byte at a time, stacked codings, multi-member gzip, raw
 * deflate, truncated, corrupt and trailing bytes, unknown codings, and the caps (decoded size,
 * expansion ratio on a bomb, the sink's own error). */
#include "ag_config.h"
#include "http/decode.h"
#include "http/internal.h"
#include "tests/tap.h"

#include <asyncget.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef AG_HAVE_ZLIB
#include <zlib.h>
#endif
#if defined(AG_HAVE_BROTLI) && defined(AG_HAVE_BROTLIENC)
#include <brotli/encode.h>
#define CAN_BR 1
#endif
#ifdef AG_HAVE_ZSTD
#include <zstd.h>
#endif

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void buf_add(buf *b, const void *p, size_t n)
{
    if (n == 0)
        return; /* p may be NULL then, and memcpy must not see it */
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* What the decoder handed out, and an error to return from the sink once (0: none). */
typedef struct sink {
    buf got;
    uint64_t calls;
    size_t largest;
    int fail_with;
} sink;

static int sink_out(void *arg, const char *p, size_t n)
{
    sink *s = arg;
    s->calls++;
    if (n > s->largest)
        s->largest = n;
    if (s->fail_with)
        return s->fail_with;
    buf_add(&s->got, p, n);
    return 0;
}

/* A few hundred KiB of text that compresses but not to nothing: several output pieces. */
static buf sample(size_t n)
{
    buf b = {0};
    uint32_t x = 12345;
    static const char *const words[] = {"asyncget ", "decodes ", "gzip ", "and ",  "brotli ",
                                        "zstd ",     "bodies ",  "as ",   "they ", "stream\n"};
    while (b.len < n) {
        x = x * 1103515245u + 12345u;
        const char *w = words[(x >> 16) % 10];
        buf_add(&b, w, strlen(w));
        if (((x >> 8) & 7) == 0) {
            char num[12];
            int k = snprintf(num, sizeof num, "%u ", x);
            buf_add(&b, num, (size_t)k);
        }
    }
    b.len = n;
    return b;
}

/* ---- encoders ---- */

enum { C_GZIP, C_DEFLATE, C_RAW, C_BR, C_ZSTD, NCODERS };
static const char *const coder_name[] = {"gzip", "deflate", "deflate", "br", "zstd"};
static const char *const coder_label[] = {"gzip", "deflate", "deflate_raw", "br", "zstd"};

static bool coder_built(int c)
{
    switch (c) {
#ifdef AG_HAVE_ZLIB
    case C_GZIP:
    case C_DEFLATE:
    case C_RAW:
        return true;
#endif
#ifdef CAN_BR
    case C_BR:
        return true;
#endif
#ifdef AG_HAVE_ZSTD
    case C_ZSTD:
        return true;
#endif
    default:
        return false;
    }
}

static buf encode(int c, const char *p, size_t n)
{
    buf out = {0};
    switch (c) {
#ifdef AG_HAVE_ZLIB
    case C_GZIP:
    case C_DEFLATE:
    case C_RAW: {
        z_stream z;
        memset(&z, 0, sizeof z);
        int wbits = c == C_GZIP ? 31 : c == C_DEFLATE ? 15 : -15;
        deflateInit2(&z, 6, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY);
        out.cap = deflateBound(&z, (uLong)n) + 64;
        out.p = malloc(out.cap);
        z.next_in = (Bytef *)(uintptr_t)p;
        z.avail_in = (uInt)n;
        z.next_out = (Bytef *)out.p;
        z.avail_out = (uInt)out.cap;
        deflate(&z, Z_FINISH);
        out.len = out.cap - z.avail_out;
        deflateEnd(&z);
        break;
    }
#endif
#ifdef CAN_BR
    case C_BR:
        out.cap = BrotliEncoderMaxCompressedSize(n) + 64;
        out.p = malloc(out.cap);
        out.len = out.cap;
        BrotliEncoderCompress(5, 22, BROTLI_MODE_GENERIC, n, (const uint8_t *)p, &out.len,
                              (uint8_t *)out.p);
        break;
#endif
#ifdef AG_HAVE_ZSTD
    case C_ZSTD:
        out.cap = ZSTD_compressBound(n);
        out.p = malloc(out.cap);
        out.len = ZSTD_compress(out.p, out.cap, p, n, 3);
        break;
#endif
    default:
        (void)p;
        (void)n;
        break;
    }
    return out;
}

/* ---- running the decoder ---- */

typedef struct run_opts {
    const char *codings; /* as Content-Encoding says, in the order applied */
    size_t step;         /* bytes per feed; 0: all at once */
    uint64_t max_decoded;
    unsigned max_ratio;
    int sink_error;
} run_opts;

typedef struct result {
    int add_rc, feed_rc, finish_rc;
    int rc; /* the first error of the three, or 0 */
    sink s;
    uint64_t decoded;
    char why[160];
} result;

static result run(const run_opts *ro, const char *p, size_t n)
{
    result r;
    memset(&r, 0, sizeof r);
    r.s.fail_with = ro->sink_error;
    ag__decode_opts o = {.max_decoded = ro->max_decoded,
                         .max_ratio = ro->max_ratio,
                         .out = sink_out,
                         .out_arg = &r.s};
    ag__decoder *d;
    if (ag__decoder_new(&d, &o) < 0) {
        r.rc = r.add_rc = -1;
        return r;
    }
    r.add_rc = ag__decoder_add_list(d, ro->codings);
    if (r.add_rc == 0) {
        size_t step = ro->step ? ro->step : n;
        for (size_t off = 0; off < n && r.feed_rc == 0; off += step) {
            size_t k = n - off < step ? n - off : step;
            /* Each piece in memory of its own, as a read hands it over: an over-read shows. */
            char *piece = malloc(k);
            memcpy(piece, p + off, k);
            r.feed_rc = ag__decoder_feed(d, piece, k);
            free(piece);
        }
        if (r.feed_rc == 0)
            r.finish_rc = ag__decoder_finish(d);
    }
    r.rc = r.add_rc ? r.add_rc : r.feed_rc ? r.feed_rc : r.finish_rc;
    r.decoded = ag__decoder_decoded(d);
    snprintf(r.why, sizeof r.why, "%s", ag__decoder_why(d));
    ag__decoder_free(d);
    return r;
}

static bool same(const result *r, const buf *want)
{
    return r->rc == 0 && r->s.got.len == want->len && memcmp(r->s.got.p, want->p, want->len) == 0;
}

static void result_free(result *r)
{
    free(r->s.got.p);
}

/* ---- cases ---- */

static void each_coding(const buf *plain)
{
    for (int c = 0; c < NCODERS; c++) {
        if (!coder_built(c)) {
            tap_skip("decode_%s_whole: not built", coder_label[c]);
            tap_skip("decode_%s_byte_by_byte: not built", coder_label[c]);
            continue;
        }
        buf coded = encode(c, plain->p, plain->len);
        run_opts ro = {.codings = coder_name[c]};
        result r = run(&ro, coded.p, coded.len);
        tap_ok(same(&r, plain) && r.decoded == plain->len && r.s.largest <= 64 * 1024,
               "decode_%s_whole (%zu coded bytes to %zu, rc %d, largest piece %zu)", coder_label[c],
               coded.len, r.s.got.len, r.rc, r.s.largest);
        result_free(&r);
        ro.step = 1;
        r = run(&ro, coded.p, coded.len);
        tap_ok(same(&r, plain), "decode_%s_byte_by_byte (rc %d)", coder_label[c], r.rc);
        result_free(&r);
        free(coded.p);
    }
}

static void names(const buf *plain)
{
    if (!coder_built(C_GZIP)) {
        tap_skip("decode_names_any_case: no zlib");
        return;
    }
    buf coded = encode(C_GZIP, plain->p, plain->len);
    run_opts ro = {.codings = " identity ,, X-GZIP , IDENTITY"};
    result r = run(&ro, coded.p, coded.len);
    tap_ok(same(&r, plain), "decode_names_any_case (x-gzip, identity and empty elements; rc %d)",
           r.rc);
    result_free(&r);
    free(coded.p);
}

static void identity_only(const buf *plain)
{
    run_opts ro = {.codings = "identity"};
    result r = run(&ro, plain->p, plain->len);
    tap_ok(same(&r, plain), "decode_identity_passes_through (rc %d)", r.rc);
    result_free(&r);
}

/* "gzip, br": gzip was applied first, br over it; decoding undoes br first. */
static void stacked(const buf *plain)
{
    if (!coder_built(C_GZIP) || !coder_built(C_BR) || !coder_built(C_ZSTD)) {
        tap_skip("decode_stacked_codings: needs zlib, brotli and zstd");
        tap_skip("decode_stacked_codings_byte_by_byte: needs zlib, brotli and zstd");
        return;
    }
    buf a = encode(C_GZIP, plain->p, plain->len);
    buf b = encode(C_BR, a.p, a.len);
    buf c = encode(C_DEFLATE, b.p, b.len);
    buf d = encode(C_ZSTD, c.p, c.len);
    run_opts ro = {.codings = "gzip, br, deflate, zstd"};
    result r = run(&ro, d.p, d.len);
    tap_ok(same(&r, plain), "decode_stacked_codings (gzip, br, deflate, zstd; rc %d %s)", r.rc,
           r.why);
    result_free(&r);
    ro.step = 1;
    r = run(&ro, d.p, d.len);
    tap_ok(same(&r, plain), "decode_stacked_codings_byte_by_byte (rc %d)", r.rc);
    result_free(&r);
    /* The same bytes named in the wrong order cannot decode. */
    ro.codings = "zstd, deflate, br, gzip";
    ro.step = 0;
    r = run(&ro, d.p, d.len);
    tap_ok(r.rc == AG_EDECODE, "decode_stacked_order_matters (rc %d: %s)", r.rc, r.why);
    result_free(&r);
    free(a.p);
    free(b.p);
    free(c.p);
    free(d.p);
}

static void multi_member(const buf *plain)
{
    if (!coder_built(C_GZIP)) {
        tap_skip("decode_gzip_multi_member: no zlib");
        tap_skip("decode_gzip_multi_member_byte_by_byte: no zlib");
        tap_skip("decode_zstd_multi_frame: no zstd");
        return;
    }
    size_t half = plain->len / 2;
    buf a = encode(C_GZIP, plain->p, half);
    buf b = encode(C_GZIP, plain->p + half, plain->len - half);
    buf both = {0};
    buf_add(&both, a.p, a.len);
    buf_add(&both, b.p, b.len);
    run_opts ro = {.codings = "gzip"};
    result r = run(&ro, both.p, both.len);
    tap_ok(same(&r, plain), "decode_gzip_multi_member (two members, rc %d)", r.rc);
    result_free(&r);
    ro.step = 1;
    r = run(&ro, both.p, both.len);
    tap_ok(same(&r, plain), "decode_gzip_multi_member_byte_by_byte (rc %d)", r.rc);
    result_free(&r);
    free(a.p);
    free(b.p);
    free(both.p);
    if (!coder_built(C_ZSTD)) {
        tap_skip("decode_zstd_multi_frame: no zstd");
        return;
    }
    a = encode(C_ZSTD, plain->p, half);
    b = encode(C_ZSTD, plain->p + half, plain->len - half);
    both = (buf){0};
    buf_add(&both, a.p, a.len);
    buf_add(&both, b.p, b.len);
    ro = (run_opts){.codings = "zstd"};
    r = run(&ro, both.p, both.len);
    tap_ok(same(&r, plain), "decode_zstd_multi_frame (two frames, rc %d)", r.rc);
    result_free(&r);
    free(a.p);
    free(b.p);
    free(both.p);
}

/* Cut short anywhere (the middle, or just the last byte), the body fails: never a short body
 * handed over as if whole. */
static void truncated(const buf *plain)
{
    for (int c = 0; c < NCODERS; c++) {
        if (!coder_built(c)) {
            tap_skip("decode_%s_truncated: not built", coder_label[c]);
            continue;
        }
        buf coded = encode(c, plain->p, plain->len);
        run_opts ro = {.codings = coder_name[c]};
        result mid = run(&ro, coded.p, coded.len / 2);
        result last = run(&ro, coded.p, coded.len - 1);
        ro.step = 1;
        result last1 = run(&ro, coded.p, coded.len - 1);
        tap_ok(mid.rc == AG_EDECODE && mid.finish_rc == AG_EDECODE && last.rc == AG_EDECODE &&
                   last1.rc == AG_EDECODE,
               "decode_%s_truncated (half: %d, all but the last byte: %d, byte by byte: %d: %s)",
               coder_label[c], mid.rc, last.rc, last1.rc, last.why);
        result_free(&mid);
        result_free(&last);
        result_free(&last1);
        free(coded.p);
    }
}

/* Bytes changed in the middle of the coded data: an error, at a feed or at the finish (gzip's
 * CRC), never a body that silently differs. */
static void corrupt(const buf *plain)
{
    for (int c = 0; c < NCODERS; c++) {
        if (!coder_built(c)) {
            tap_skip("decode_%s_corrupt: not built", coder_label[c]);
            continue;
        }
        buf coded = encode(c, plain->p, plain->len);
        for (size_t i = coded.len / 2; i < coded.len / 2 + 16; i++)
            coded.p[i] = (char)(coded.p[i] ^ 0x5a);
        /* Raw deflate has no check value: only what breaks its syntax is seen, here a first
         * block of the reserved type 3 (and no zlib header, so it is read as raw). */
        if (c == C_RAW)
            coded.p[0] = 0x07;
        run_opts ro = {.codings = coder_name[c]};
        result r = run(&ro, coded.p, coded.len);
        tap_ok(r.rc == AG_EDECODE, "decode_%s_corrupt (rc %d: %s)", coder_label[c], r.rc, r.why);
        result_free(&r);
        free(coded.p);
    }
}

/* A stream that ended, then more bytes: not part of the body. For gzip they would have to be
 * another member, and "garbage" is no member header. */
static void trailing(const buf *plain)
{
    for (int c = 0; c < NCODERS; c++) {
        if (!coder_built(c)) {
            tap_skip("decode_%s_trailing_garbage: not built", coder_label[c]);
            continue;
        }
        buf coded = encode(c, plain->p, plain->len);
        buf_add(&coded, "garbage", 7);
        run_opts ro = {.codings = coder_name[c]};
        result whole = run(&ro, coded.p, coded.len);
        ro.step = 1;
        result bytes = run(&ro, coded.p, coded.len);
        tap_ok(whole.rc == AG_EDECODE && bytes.rc == AG_EDECODE,
               "decode_%s_trailing_garbage (whole: %d, byte by byte: %d: %s)", coder_label[c],
               whole.rc, bytes.rc, whole.why);
        result_free(&whole);
        result_free(&bytes);
        free(coded.p);
    }
}

static void unknown(void)
{
    ag__decode_opts o = {.out = sink_out};
    ag__decoder *d;
    ag__decoder_new(&d, &o);
    int rc = ag__decoder_add_list(d, "identity, compress");
    tap_ok(rc == AG_EDECODE && strstr(ag__decoder_why(d), "\"compress\""),
           "decode_unknown_coding_named (rc %d: %s)", rc, ag__decoder_why(d));
    /* Refused once, refused for good. */
    tap_ok(ag__decoder_feed(d, "x", 1) == AG_EDECODE, "decode_error_sticks");
    ag__decoder_free(d);

    ag__decoder_new(&d, &o);
    rc = ag__decoder_add_list(d, "gzip, gzip, gzip, gzip, gzip, gzip");
    tap_ok(rc == AG_EDECODE, "decode_too_many_codings (rc %d: %s)", rc, ag__decoder_why(d));
    ag__decoder_free(d);
}

/* No byte at all under a coding: nothing began, so nothing was cut. */
static void empty(void)
{
    run_opts ro = {.codings = ag_codings()[0] ? "gzip" : "identity"};
    if (!coder_built(C_GZIP))
        ro.codings = "identity";
    result r = run(&ro, "", 0);
    tap_ok(r.rc == 0 && r.s.got.len == 0, "decode_empty_body_is_no_error (rc %d)", r.rc);
    result_free(&r);
}

static void codings_text(void)
{
    char want[64] = "";
    const char *parts[] = {coder_built(C_GZIP) ? "gzip, deflate" : NULL,
#ifdef AG_HAVE_BROTLI
                           "br",
#else
                           NULL,
#endif
                           coder_built(C_ZSTD) ? "zstd" : NULL};
    for (int i = 0; i < 3; i++) {
        if (!parts[i])
            continue;
        if (want[0])
            strcat(want, ", ");
        strcat(want, parts[i]);
    }
    tap_ok(strcmp(ag_codings(), want) == 0, "decode_codings_lists_what_was_built (\"%s\")",
           ag_codings());
    char v[128];
    ag__decode_versions(v, sizeof v);
    tap_ok((strstr(v, "zlib/") != NULL) == coder_built(C_GZIP) &&
               (strstr(v, "zstd/") != NULL) == coder_built(C_ZSTD) &&
               (strstr(ag_version_details(), v) != NULL),
           "decode_versions_in_version_details (\"%s\")", ag_version_details());
}

/* 100 MiB of zeros coded into a few KiB: with the default ratio (1,000), decoding stops soon
 * after the first MiB, even with the whole bomb handed over in one feed. */
static void bomb(void)
{
    size_t n = 100u << 20;
    char *zeros = calloc(1, n);
    for (int c = 0; c < NCODERS; c++) {
        if (c == C_RAW || c == C_DEFLATE)
            continue;
        if (!coder_built(c)) {
            tap_skip("decode_%s_bomb_stops_early: not built", coder_label[c]);
            continue;
        }
        buf coded = encode(c, zeros, n);
        /* gzip's best is about 1,030 to 1 on zeros: a ratio of 100 judges it. */
        run_opts ro = {.codings = coder_name[c], .max_ratio = c == C_GZIP ? 100 : 0};
        result r = run(&ro, coded.p, coded.len);
        tap_ok(r.rc == AG_EDECODE_RATIO && r.decoded < (3u << 20) && r.s.got.len == r.decoded,
               "decode_%s_bomb_stops_early (%zu coded bytes; rc %d; %llu decoded: %s)",
               coder_label[c], coded.len, r.rc, (unsigned long long)r.decoded, r.why);
        result_free(&r);
        if (c == C_ZSTD) {
            /* No ratio limit: the same bomb decodes whole (under a size cap to keep it short). */
            ro.max_ratio = AG_NO_RATIO_LIMIT;
            result all = run(&ro, coded.p, coded.len);
            tap_ok(all.rc == 0 && all.decoded == n,
                   "decode_no_ratio_limit (rc %d, %llu decoded: %s)", all.rc,
                   (unsigned long long)all.decoded, all.why);
            result_free(&all);
            ro.max_decoded = 5u << 20;
            result cap = run(&ro, coded.p, coded.len);
            tap_ok(cap.rc == AG_ETOO_LARGE && cap.decoded <= ro.max_decoded,
                   "decode_max_decoded_bytes (rc %d, %llu decoded)", cap.rc,
                   (unsigned long long)cap.decoded);
            result_free(&cap);
        }
        free(coded.p);
    }
    free(zeros);
    /* Under the 1 MiB floor any ratio is fine: a small page may well expand a thousandfold. */
    if (coder_built(C_GZIP)) {
        char *small = calloc(1, 1u << 20);
        buf coded = encode(C_GZIP, small, 1u << 20);
        run_opts ro = {.codings = "gzip"};
        result r = run(&ro, coded.p, coded.len);
        tap_ok(r.rc == 0 && r.decoded == 1u << 20,
               "decode_ratio_not_judged_under_a_mebibyte (rc %d)", r.rc);
        result_free(&r);
        free(coded.p);
        free(small);
    } else {
        tap_skip("decode_ratio_not_judged_under_a_mebibyte: no zlib");
    }
}

static void size_cap(const buf *plain)
{
    int c = coder_built(C_GZIP) ? C_GZIP : -1;
    run_opts ro = {.codings = "identity", .max_decoded = 1000};
    buf coded = {0};
    if (c >= 0) {
        coded = encode(c, plain->p, plain->len);
        ro.codings = "gzip";
    } else {
        buf_add(&coded, plain->p, plain->len);
    }
    result r = run(&ro, coded.p, coded.len);
    tap_ok(r.rc == AG_ETOO_LARGE && r.s.got.len <= 1000,
           "decode_max_decoded_bytes_small (rc %d, %zu handed out)", r.rc, r.s.got.len);
    result_free(&r);
    ro.max_decoded = plain->len;
    r = run(&ro, coded.p, coded.len);
    tap_ok(same(&r, plain), "decode_max_decoded_bytes_exact_fits (rc %d)", r.rc);
    result_free(&r);
    ro.max_decoded = 0;
    ro.sink_error = AG_ESINK;
    r = run(&ro, coded.p, coded.len);
    tap_ok(r.rc == AG_ESINK && r.s.calls == 1,
           "decode_sink_error_passes_through (rc %d, %llu calls)", r.rc,
           (unsigned long long)r.s.calls);
    result_free(&r);
    free(coded.p);
}

#ifdef AG_HAVE_ZSTD
/* A frame asking for a 32 MiB window: more than HTTP's 8 MiB, refused rather than allocated. */
static void zstd_window(void)
{
    size_t n = 1u << 20;
    buf plain = sample(n);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, 25);
    buf coded = {.cap = ZSTD_compressBound(n) + 1024};
    coded.p = malloc(coded.cap);
    ZSTD_inBuffer in = {plain.p, n, 0};
    ZSTD_outBuffer out = {coded.p, coded.cap, 0};
    /* Streamed with no size given: the frame header keeps the window asked for. */
    ZSTD_compressStream2(cc, &out, &in, ZSTD_e_continue);
    while (ZSTD_compressStream2(cc, &out, &in, ZSTD_e_end) != 0)
        ;
    coded.len = out.pos;
    ZSTD_freeCCtx(cc);
    run_opts ro = {.codings = "zstd"};
    result r = run(&ro, coded.p, coded.len);
    tap_ok(r.rc == AG_EDECODE, "decode_zstd_window_over_8mib_refused (rc %d: %s)", r.rc, r.why);
    result_free(&r);
    free(coded.p);
    free(plain.p);
}
#endif

/* ---- through the response parser ---- */

#define CRLF "\r\n"

typedef struct pres {
    int rc; /* 1: complete, or a negative code */
    ag_response *r;
    bool must_close;
    const char *why;
} pres;

static buf chunked(const buf *b)
{
    buf out = {0};
    for (size_t off = 0; off < b->len; off += 1000) {
        size_t k = b->len - off < 1000 ? b->len - off : 1000;
        char line[32];
        int n = snprintf(line, sizeof line, "%zx" CRLF, k);
        buf_add(&out, line, (size_t)n);
        buf_add(&out, b->p + off, k);
        buf_add(&out, CRLF, 2);
    }
    buf_add(&out, "0" CRLF CRLF, 5);
    return out;
}

/* head: the status line and fields up to the empty line (excluded); Content-Length of the body
 * is added when cl. */
static pres parse(ag_client *c, const ag_request *req, const char *head, bool cl, const buf *body,
                  bool eof, size_t step, bool is_head)
{
    buf msg = {0};
    buf_add(&msg, head, strlen(head));
    if (cl) {
        char f[48];
        int n = snprintf(f, sizeof f, CRLF "Content-Length: %zu", body->len);
        buf_add(&msg, f, (size_t)n);
    }
    buf_add(&msg, CRLF CRLF, 4);
    buf_add(&msg, body->p, body->len);
    pres out = {.r = calloc(1, sizeof(ag_response))};
    ag__parse ps;
    ag__parse_init(&ps, c, req, out.r, is_head, true);
    if (!step)
        step = msg.len;
    int rc = 0;
    for (size_t off = 0; off < msg.len && rc == 0; off += step) {
        size_t k = msg.len - off < step ? msg.len - off : step;
        char *piece = malloc(k);
        memcpy(piece, msg.p + off, k);
        rc = ag__parse_feed(&ps, piece, k);
        free(piece);
    }
    if (rc == 0 && eof)
        rc = ag__parse_feed(&ps, NULL, 0);
    out.rc = rc;
    out.must_close = ps.must_close;
    out.why = ps.why;
    if (rc < 0)
        ag__parse_abandon(&ps);
    ag__parse_end(&ps);
    free(msg.p);
    return out;
}

static bool body_is(const pres *p, const buf *want)
{
    size_t n;
    const char *b = ag_response_body(p->r, &n);
    return p->rc == 1 && n == want->len && memcmp(b, want->p, n) == 0 &&
           ag_response_decoded_bytes(p->r) == want->len;
}

static int cb_count;
static int cb_fail(void *arg, const char *p, size_t n)
{
    (void)arg;
    (void)p;
    (void)n;
    cb_count++;
    return -1;
}

static void through_parser(const buf *plain)
{
    if (!coder_built(C_GZIP) || !coder_built(C_BR)) {
        tap_skip("decode_parse_*: needs zlib and brotli");
        return;
    }
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.compressed = 1;
    ag_client *c, *plainc;
    ag_client_new(&c, &o);
    ag_client_new(&plainc, NULL);
    ag_request req;
    ag_request_init(&req);
    buf gz = encode(C_GZIP, plain->p, plain->len);
    buf br_gz = encode(C_BR, gz.p, gz.len);
    buf gz_chunked = chunked(&gz);
    buf br_gz_chunked = chunked(&br_gz);

    for (size_t step = 0; step < 2; step++) {
        pres p = parse(c, &req, "HTTP/1.1 200 OK" CRLF "Content-Encoding: gzip", true, &gz, false,
                       step, false);
        tap_ok(body_is(&p, plain) && ag_response_body_bytes(p.r) == gz.len,
               "decode_parse_content_length_gzip%s (rc %d, wire %llu, decoded %llu)",
               step ? "_bytewise" : "", p.rc, (unsigned long long)ag_response_body_bytes(p.r),
               (unsigned long long)ag_response_decoded_bytes(p.r));
        ag_response_free(p.r);
    }
    pres p = parse(
        c, &req, "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: chunked" CRLF "Content-Encoding: gzip",
        false, &gz_chunked, false, 0, false);
    tap_ok(body_is(&p, plain) && ag_response_body_bytes(p.r) == gz.len,
           "decode_parse_chunked_gzip (rc %d)", p.rc);
    ag_response_free(p.r);

    /* Transfer codings before chunked, under a content coding: chunked comes off first, then
     * the transfer coding, then the content coding. */
    p = parse(c, &req,
              "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: br, chunked" CRLF "Content-Encoding: gzip",
              false, &br_gz_chunked, false, 1, false);
    tap_ok(body_is(&p, plain) && ag_response_body_bytes(p.r) == br_gz.len,
           "decode_parse_te_br_chunked_over_gzip (rc %d %s)", p.rc, p.r->detail);
    ag_response_free(p.r);
    /* A coding list without chunked: the close ends the body, and the connection. */
    p = parse(c, &req, "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: gzip", false, &gz, true, 0,
              false);
    tap_ok(body_is(&p, plain) && p.must_close, "decode_parse_te_gzip_until_close (rc %d)", p.rc);
    ag_response_free(p.r);
    /* Not decoding: as before, such a framing is refused. */
    p = parse(plainc, &req, "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: gzip, chunked", false,
              &gz_chunked, false, 0, false);
    tap_ok(p.rc == AG_EPROTO, "decode_parse_te_gzip_refused_when_not_decoding (rc %d)", p.rc);
    ag_response_free(p.r);
    ag_request nd = req;
    nd.no_decode = 1;
    p = parse(c, &nd, "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: gzip, chunked", false, &gz_chunked,
              false, 0, false);
    tap_ok(p.rc == AG_EPROTO, "decode_parse_te_gzip_refused_with_no_decode (rc %d)", p.rc);
    ag_response_free(p.r);
    /* An unknown transfer coding is still refused, and so is chunked before a coding. */
    p = parse(c, &req, "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: compress, chunked", false,
              &gz_chunked, false, 0, false);
    tap_ok(p.rc == AG_EPROTO, "decode_parse_te_unknown_refused (rc %d)", p.rc);
    ag_response_free(p.r);
    p = parse(c, &req, "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: chunked, gzip", false,
              &gz_chunked, true, 0, false);
    tap_ok(p.rc == AG_EPROTO, "decode_parse_te_chunked_not_last_refused (rc %d)", p.rc);
    ag_response_free(p.r);
    p = parse(c, &req, "HTTP/1.1 200 OK" CRLF "Transfer-Encoding: gzip, chunked", true, &gz_chunked,
              false, 0, false);
    tap_ok(p.rc == AG_EPROTO, "decode_parse_te_with_content_length_refused (rc %d)", p.rc);
    ag_response_free(p.r);

    /* Delivered as it came: not asked to decode, or asked not to. */
    p = parse(plainc, &req, "HTTP/1.1 200 OK" CRLF "Content-Encoding: gzip", true, &gz, false, 0,
              false);
    tap_ok(body_is(&p, &gz), "decode_parse_raw_when_not_decoding (rc %d)", p.rc);
    ag_response_free(p.r);
    p = parse(c, &nd, "HTTP/1.1 200 OK" CRLF "Content-Encoding: gzip", true, &gz, false, 0, false);
    tap_ok(body_is(&p, &gz), "decode_parse_raw_with_no_decode (rc %d)", p.rc);
    ag_response_free(p.r);

    /* A gzip body cut short with a Content-Length that matches what was sent. */
    buf cut = {.p = gz.p, .len = gz.len / 2};
    p = parse(c, &req, "HTTP/1.1 200 OK" CRLF "Content-Encoding: gzip", true, &cut, false, 0,
              false);
    tap_ok(p.rc == AG_EDECODE && strstr(p.r->detail, "truncated"),
           "decode_parse_truncated_gzip_fails (rc %d: %s)", p.rc, p.r->detail);
    ag_response_free(p.r);
    p = parse(c, &req, "HTTP/1.1 200 OK" CRLF "Content-Encoding: gzip, compress", true, &gz, false,
              0, false);
    tap_ok(p.rc == AG_EDECODE && strstr(p.r->detail, "compress"),
           "decode_parse_unknown_content_coding_named (rc %d: %s)", p.rc, p.r->detail);
    ag_response_free(p.r);
    p = parse(c, &req, "HTTP/1.1 200 OK" CRLF "Content-Encoding: identity", true, plain, false, 0,
              false);
    tap_ok(body_is(&p, plain), "decode_parse_identity (rc %d)", p.rc);
    ag_response_free(p.r);

    /* No body to decode: HEAD, 204, 304, and a redirect whose body is dropped. */
    buf none = {0};
    p = parse(c, &req, "HTTP/1.1 200 OK" CRLF "Content-Encoding: gzip" CRLF "Content-Length: 99",
              false, &none, false, 0, true);
    tap_ok(p.rc == 1 && ag_response_decoded_bytes(p.r) == 0,
           "decode_parse_head_not_decoded (rc %d)", p.rc);
    ag_response_free(p.r);
    p = parse(c, &req, "HTTP/1.1 204 No Content" CRLF "Content-Encoding: gzip", false, &none, false,
              0, false);
    tap_ok(p.rc == 1, "decode_parse_204_not_decoded (rc %d)", p.rc);
    ag_response_free(p.r);
    p = parse(c, &req, "HTTP/1.1 304 Not Modified" CRLF "Content-Encoding: br", false, &none, false,
              0, false);
    tap_ok(p.rc == 1, "decode_parse_304_not_decoded (rc %d)", p.rc);
    ag_response_free(p.r);
    buf junk = {.p = "not gzip at all", .len = 15};
    p = parse(c, &req, "HTTP/1.1 302 Found" CRLF "Location: /next" CRLF "Content-Encoding: gzip",
              true, &junk, false, 0, false);
    tap_ok(p.rc == 1 && ag_response_body_bytes(p.r) == 15 && ag_response_decoded_bytes(p.r) == 15,
           "decode_parse_dropped_redirect_body_not_decoded (rc %d)", p.rc);
    ag_response_free(p.r);
    p = parse(c, &req,
              "HTTP/1.1 103 Early Hints" CRLF "Content-Encoding: gzip" CRLF CRLF
              "HTTP/1.1 200 OK" CRLF "Content-Encoding: gzip",
              true, &gz, false, 0, false);
    tap_ok(body_is(&p, plain), "decode_parse_after_1xx (rc %d)", p.rc);
    ag_response_free(p.r);

    /* The memory sink's cap counts decoded bytes: a coded body whose length is over the cap
     * but whose decoded size is not passes, and the other way round fails. */
    buf noise = {0};
    uint32_t x = 7;
    for (size_t i = 0; i < 100000; i++) {
        x = x * 1664525u + 1013904223u;
        char ch = (char)(x >> 24);
        buf_add(&noise, &ch, 1);
    }
    buf noise_gz = encode(C_GZIP, noise.p, noise.len);
    ag_client_opts small = o;
    small.max_body_bytes = noise.len;
    ag_client *sc;
    ag_client_new(&sc, &small);
    p = parse(sc, &req, "HTTP/1.1 200 OK" CRLF "Content-Encoding: gzip", true, &noise_gz, false, 0,
              false);
    tap_ok(noise_gz.len > noise.len && body_is(&p, &noise),
           "decode_parse_body_cap_on_decoded_not_content_length (rc %d, %zu coded for %zu)", p.rc,
           noise_gz.len, noise.len);
    ag_response_free(p.r);
    p = parse(sc, &req, "HTTP/1.1 200 OK" CRLF "Content-Encoding: gzip", true, &gz, false, 0,
              false);
    tap_ok(p.rc == AG_ETOO_LARGE && p.r->body_len <= noise.len,
           "decode_parse_body_cap_counts_decoded (rc %d, %zu kept)", p.rc, p.r->body_len);
    ag_response_free(p.r);
    ag_client_free(sc);
    small = o;
    small.max_decoded_bytes = 50000;
    ag_client_new(&sc, &small);
    ag_request disc = req;
    disc.sink = AG_SINK_DISCARD;
    p = parse(sc, &disc, "HTTP/1.1 200 OK" CRLF "Content-Encoding: gzip", true, &gz, false, 0,
              false);
    tap_ok(p.rc == AG_ETOO_LARGE && ag_response_decoded_bytes(p.r) <= 50000,
           "decode_parse_max_decoded_bytes_any_sink (rc %d, %llu decoded)", p.rc,
           (unsigned long long)ag_response_decoded_bytes(p.r));
    ag_response_free(p.r);
    ag_client_free(sc);
    ag_request cb = req;
    cb.sink = AG_SINK_CALLBACK;
    cb.on_body = cb_fail;
    p = parse(c, &cb, "HTTP/1.1 200 OK" CRLF "Content-Encoding: gzip", true, &gz, false, 0, false);
    tap_ok(p.rc == AG_ESINK && cb_count == 1, "decode_parse_sink_error_passes_through (rc %d)",
           p.rc);
    ag_response_free(p.r);

    free(noise.p);
    free(noise_gz.p);
    free(gz.p);
    free(br_gz.p);
    free(gz_chunked.p);
    free(br_gz_chunked.p);
    ag_client_free(c);
    ag_client_free(plainc);
}

int main(void)
{
    buf plain = sample(300 * 1024);
    each_coding(&plain);
    names(&plain);
    identity_only(&plain);
    stacked(&plain);
    multi_member(&plain);
    truncated(&plain);
    corrupt(&plain);
    trailing(&plain);
    unknown();
    empty();
    codings_text();
    size_cap(&plain);
    bomb();
#ifdef AG_HAVE_ZSTD
    zstd_window();
#else
    tap_skip("decode_zstd_window_over_8mib_refused: no zstd");
#endif
    through_parser(&plain);
    free(plain.p);
    return tap_done();
}
