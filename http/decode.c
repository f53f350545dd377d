/* decode.c: content codings decoded as a body streams: a chain of zlib, brotli and zstd
 * decoders, each writing into a heap buffer of its own (coroutine stacks are small) and handing
 * bounded pieces on, with the caps on decoded size and on expansion checked piece by piece so
 * that a decompression bomb stops early. */
#include "http/decode.h"

#include "ag_config.h"
#include "asyncget.h"
#include "core/str.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifdef AG_HAVE_ZLIB
#include <zlib.h>
#endif
#ifdef AG_HAVE_BROTLI
#include <brotli/decode.h>
#endif
#ifdef AG_HAVE_ZSTD
#include <zstd.h>
#endif

/* Each stage's output piece: small enough to hand on often (a cap trips within one piece of
 * its limit), large enough that the per-call overhead does not show. */
#define OUT_SIZE (16 * 1024)
/* The expansion ratio is judged only past this much output: a small body may expand a lot. */
#define RATIO_FLOOR   (1024 * 1024)
#define DEFAULT_RATIO 1000
/* A zstd frame may ask for a window of up to 2 GiB; RFC 9659 has HTTP senders keep to 8 MiB,
 * and a decoder that allows more lets one response make it allocate that much. */
#define ZSTD_WINDOW_LOG_MAX 23

enum { K_GZIP, K_DEFLATE, K_BR, K_ZSTD };

static const char *const kind_name[] = {"gzip", "deflate", "br", "zstd"};

typedef struct stage {
    int kind;
    bool ready;        /* the library state was set up */
    bool ended;        /* the current stream reached its end */
    bool seen;         /* a byte came to this stage */
    uint64_t consumed; /* coded bytes the library took in */
    char *buf;         /* OUT_SIZE bytes of output */
    /* deflate: the first two bytes wait until they say zlib wrapper or raw deflate */
    unsigned char hold[2];
    uint8_t nhold;
#ifdef AG_HAVE_ZLIB
    z_stream z;
#endif
#ifdef AG_HAVE_BROTLI
    BrotliDecoderState *br;
#endif
#ifdef AG_HAVE_ZSTD
    ZSTD_DCtx *zs;
#endif
} stage;

struct ag__decoder {
    ag__decode_opts o;
    stage st[AG__DECODE_MAX_CODINGS]; /* in the order applied: st[n - 1] sees the wire bytes */
    int n;
    uint64_t decoded;
    int err; /* the first error: every later call returns it */
    char why[128];
};

static const char codings[] = ""
#ifdef AG_HAVE_ZLIB
                              ", gzip, deflate"
#endif
#ifdef AG_HAVE_BROTLI
                              ", br"
#endif
#ifdef AG_HAVE_ZSTD
                              ", zstd"
#endif
    ;

const char *ag_codings(void)
{
    return codings[0] ? codings + 2 : codings;
}

static size_t put(char *buf, size_t size, size_t at, const char *s)
{
    while (s && *s && at + 1 < size)
        buf[at++] = *s++;
    if (size)
        buf[at < size ? at : size - 1] = 0;
    return at;
}

void ag__decode_versions(char *buf, size_t size)
{
    size_t n = put(buf, size, 0, "");
#ifdef AG_HAVE_ZLIB
    n = put(buf, size, n, " zlib/");
    n = put(buf, size, n, zlibVersion());
#endif
#ifdef AG_HAVE_BROTLI
    uint32_t v = BrotliDecoderVersion();
    char num[3][24];
    ag__fmt_u64(num[0], v >> 24);
    ag__fmt_u64(num[1], (v >> 12) & 0xfff);
    ag__fmt_u64(num[2], v & 0xfff);
    n = put(buf, size, n, " brotli/");
    n = put(buf, size, n, num[0]);
    n = put(buf, size, n, ".");
    n = put(buf, size, n, num[1]);
    n = put(buf, size, n, ".");
    n = put(buf, size, n, num[2]);
#endif
#ifdef AG_HAVE_ZSTD
    n = put(buf, size, n, " zstd/");
    n = put(buf, size, n, ZSTD_versionString());
#endif
    (void)n;
}

/* The coding named by name (len bytes), or -1 when this build has no decoder for it. */
static int kind_of(const char *name, size_t len)
{
#ifdef AG_HAVE_ZLIB
    /* RFC 9110 section 8.4.1.3: a recipient treats x-gzip as gzip. */
    if ((len == 4 && strncasecmp(name, "gzip", 4) == 0) ||
        (len == 6 && strncasecmp(name, "x-gzip", 6) == 0))
        return K_GZIP;
    if (len == 7 && strncasecmp(name, "deflate", 7) == 0)
        return K_DEFLATE;
#endif
#ifdef AG_HAVE_BROTLI
    if (len == 2 && strncasecmp(name, "br", 2) == 0)
        return K_BR;
#endif
#ifdef AG_HAVE_ZSTD
    if (len == 4 && strncasecmp(name, "zstd", 4) == 0)
        return K_ZSTD;
#endif
    (void)name;
    (void)len;
    return -1;
}

bool ag__decode_known(const char *name, size_t len)
{
    return kind_of(name, len) >= 0;
}

static int fail(ag__decoder *d, int err, const char *a, const char *b, const char *c)
{
    if (!d->err) {
        d->err = err;
        size_t n = put(d->why, sizeof d->why, 0, a);
        n = put(d->why, sizeof d->why, n, b);
        put(d->why, sizeof d->why, n, c);
    }
    return d->err;
}

/* out's own code stops the chain too, without a text of ours. */
static int stop(ag__decoder *d, int err)
{
    if (!d->err)
        d->err = err;
    return err;
}

int ag__decoder_new(ag__decoder **out, const ag__decode_opts *opts)
{
    ag__decoder *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    d->o = *opts;
    if (!d->o.max_ratio)
        d->o.max_ratio = DEFAULT_RATIO;
    *out = d;
    return 0;
}

static int stage_setup(ag__decoder *d, stage *s)
{
    switch (s->kind) {
#ifdef AG_HAVE_ZLIB
    case K_GZIP:
        /* 16 + 15: a gzip wrapper only, and the largest window. */
        if (inflateInit2(&s->z, 16 + 15) != Z_OK)
            return -ENOMEM;
        break;
    case K_DEFLATE:
        /* Set up once the first two bytes say which wrapper (see deflate_feed). */
        return 0;
#endif
#ifdef AG_HAVE_BROTLI
    case K_BR:
        if (!(s->br = BrotliDecoderCreateInstance(NULL, NULL, NULL)))
            return -ENOMEM;
        break;
#endif
#ifdef AG_HAVE_ZSTD
    case K_ZSTD:
        if (!(s->zs = ZSTD_createDCtx()))
            return -ENOMEM;
        if (ZSTD_isError(ZSTD_DCtx_setParameter(s->zs, ZSTD_d_windowLogMax, ZSTD_WINDOW_LOG_MAX))) {
            ZSTD_freeDCtx(s->zs);
            s->zs = NULL;
            return -ENOMEM;
        }
        break;
#endif
    default:
        (void)d;
        return -EINVAL;
    }
    s->ready = true;
    return 0;
}

int ag__decoder_add(ag__decoder *d, const char *name, size_t len)
{
    if (d->err)
        return d->err;
    if (len == 8 && strncasecmp(name, "identity", 8) == 0)
        return 0;
    char shown[40];
    size_t n = len < sizeof shown - 1 ? len : sizeof shown - 1;
    memcpy(shown, name, n);
    shown[n] = 0;
    int kind = kind_of(name, len);
    if (kind < 0)
        return fail(d, AG_EDECODE, "coding \"", shown, "\" is not supported by this build");
    if (d->n == AG__DECODE_MAX_CODINGS)
        return fail(d, AG_EDECODE, "more than five codings, at \"", shown, "\"");
    stage *s = &d->st[d->n];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    if (!(s->buf = malloc(OUT_SIZE)))
        return stop(d, -ENOMEM);
    int rc = stage_setup(d, s);
    if (rc < 0) {
        free(s->buf);
        s->buf = NULL;
        return stop(d, rc);
    }
    d->n++;
    return 0;
}

int ag__decoder_add_list(ag__decoder *d, const char *v)
{
    for (;;) {
        while (*v == ' ' || *v == '\t')
            v++;
        const char *start = v;
        while (*v && *v != ',')
            v++;
        const char *end = v;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (end > start) {
            int rc = ag__decoder_add(d, start, (size_t)(end - start));
            if (rc < 0)
                return rc;
        }
        if (!*v)
            return 0;
        v++;
    }
}

bool ag__decoder_active(const ag__decoder *d)
{
    return d->n > 0;
}

const char *ag__decoder_why(const ag__decoder *d)
{
    return d->why;
}

uint64_t ag__decoder_decoded(const ag__decoder *d)
{
    return d->decoded;
}

uint64_t ag__decoder_consumed(const ag__decoder *d)
{
    return d->n ? d->st[d->n - 1].consumed : 0;
}

static int stage_feed(ag__decoder *d, int i, const unsigned char *p, size_t n);

/* The last stage's output: held to the caps, then handed to out. The wire count is what the
 * first decoder has taken in so far, not what arrived: a bomb that came in one read is judged
 * by the few bytes that made the output so far, so it stops after about a mebibyte. */
static int emit(ag__decoder *d, const char *p, size_t n)
{
    uint64_t total = d->decoded + n;
    if (d->o.max_decoded && total > d->o.max_decoded)
        return fail(d, AG_ETOO_LARGE, "decoded body larger than the limit", NULL, NULL);
    if (d->o.max_ratio != AG_NO_RATIO_LIMIT && total > RATIO_FLOOR) {
        uint64_t wire = ag__decoder_consumed(d);
        if (wire <= UINT64_MAX / d->o.max_ratio && total > wire * d->o.max_ratio)
            return fail(d, AG_EDECODE_RATIO, "decoded body expands beyond the ratio limit", NULL,
                        NULL);
    }
    d->decoded = total;
    int rc = d->o.out(d->o.out_arg, p, n);
    return rc < 0 ? stop(d, rc) : 0;
}

#if defined(AG_HAVE_ZLIB) || defined(AG_HAVE_BROTLI) || defined(AG_HAVE_ZSTD)
/* Output of stage i goes to the stage applied before it, or out of the chain. */
static int pass(ag__decoder *d, int i, const char *p, size_t n)
{
    return i == 0 ? emit(d, p, n) : stage_feed(d, i - 1, (const unsigned char *)p, n);
}

static int corrupt(ag__decoder *d, const stage *s, const char *detail)
{
    return fail(d, AG_EDECODE, kind_name[s->kind], " body corrupt: ", detail);
}
#endif

#ifdef AG_HAVE_ZLIB
static int zlib_feed(ag__decoder *d, int i, const unsigned char *p, size_t n)
{
    stage *s = &d->st[i];
    bool pending = false;
    while (n > 0 || pending) {
        if (s->ended) {
            /* Another gzip member may follow (RFC 1952 section 2.2): decoded as part of the same
             * body. Anything else after the end is refused below as a bad member header. */
            if (s->kind != K_GZIP)
                return corrupt(d, s, "bytes after the end of the stream");
            if (inflateReset(&s->z) != Z_OK)
                return corrupt(d, s, "reset failed");
            s->ended = false;
        }
        /* zlib counts in uInt: a larger piece goes in parts. */
        uInt chunk = n > UINT_MAX ? UINT_MAX : (uInt)n;
        s->z.next_in = (Bytef *)(uintptr_t)p;
        s->z.avail_in = chunk;
        s->z.next_out = (Bytef *)s->buf;
        s->z.avail_out = OUT_SIZE;
        int zr = inflate(&s->z, Z_NO_FLUSH);
        size_t used = chunk - s->z.avail_in;
        size_t got = OUT_SIZE - s->z.avail_out;
        p += used;
        n -= used;
        s->consumed += used;
        if (zr == Z_MEM_ERROR)
            return stop(d, -ENOMEM);
        if (zr == Z_NEED_DICT)
            return corrupt(d, s, "a preset dictionary is needed");
        if (zr == Z_DATA_ERROR || zr == Z_STREAM_ERROR)
            return corrupt(d, s, s->z.msg ? s->z.msg : "invalid data");
        if (zr == Z_STREAM_END)
            s->ended = true;
        if (got) {
            int rc = pass(d, i, s->buf, got);
            if (rc < 0)
                return rc;
        }
        if (!used && !got && zr != Z_STREAM_END)
            break; /* no progress: more input is needed */
        pending = got == OUT_SIZE && !s->ended;
    }
    return 0;
}

/* deflate is meant as the zlib format (RFC 1950), but some servers send raw deflate (RFC 1951):
 * as curl and browsers do, a first two bytes that are no zlib header mean raw deflate. */
static int deflate_feed(ag__decoder *d, int i, const unsigned char *p, size_t n)
{
    stage *s = &d->st[i];
    if (!s->ready) {
        while (s->nhold < 2 && n > 0) {
            s->hold[s->nhold++] = *p++;
            n--;
        }
        if (s->nhold < 2)
            return 0;
        unsigned cmf = s->hold[0], flg = s->hold[1];
        bool wrapped = (cmf & 0x0f) == 8 && (cmf >> 4) <= 7 && (cmf * 256 + flg) % 31 == 0;
        if (inflateInit2(&s->z, wrapped ? 15 : -15) != Z_OK)
            return stop(d, -ENOMEM);
        s->ready = true;
        int rc = zlib_feed(d, i, s->hold, 2);
        if (rc < 0)
            return rc;
    }
    return zlib_feed(d, i, p, n);
}
#endif

#ifdef AG_HAVE_BROTLI
static int brotli_feed(ag__decoder *d, int i, const unsigned char *p, size_t n)
{
    stage *s = &d->st[i];
    for (;;) {
        if (s->ended) {
            if (n > 0)
                return corrupt(d, s, "bytes after the end of the stream");
            return 0;
        }
        size_t in_left = n, out_left = OUT_SIZE;
        const uint8_t *next_in = p;
        uint8_t *next_out = (uint8_t *)s->buf;
        BrotliDecoderResult r =
            BrotliDecoderDecompressStream(s->br, &in_left, &next_in, &out_left, &next_out, NULL);
        size_t used = n - in_left, got = OUT_SIZE - out_left;
        p += used;
        n -= used;
        s->consumed += used;
        if (r == BROTLI_DECODER_RESULT_ERROR)
            return corrupt(d, s, BrotliDecoderErrorString(BrotliDecoderGetErrorCode(s->br)));
        if (r == BROTLI_DECODER_RESULT_SUCCESS)
            s->ended = true;
        if (got) {
            int rc = pass(d, i, s->buf, got);
            if (rc < 0)
                return rc;
        }
        if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT && (n == 0 || !used))
            return 0;
    }
}
#endif

#ifdef AG_HAVE_ZSTD
static int zstd_feed(ag__decoder *d, int i, const unsigned char *p, size_t n)
{
    stage *s = &d->st[i];
    for (;;) {
        ZSTD_inBuffer in = {p, n, 0};
        ZSTD_outBuffer out = {s->buf, OUT_SIZE, 0};
        size_t r = ZSTD_decompressStream(s->zs, &out, &in);
        if (ZSTD_isError(r))
            return corrupt(d, s, ZSTD_getErrorName(r));
        p += in.pos;
        n -= in.pos;
        s->consumed += in.pos;
        /* 0: a frame ended and all of it was handed out. Another frame may follow (RFC 8878
         * section 3.1): it is decoded as part of the same body. A call that moved nothing (the
         * one after a frame's last output filled the buffer) already waits for a next frame's
         * header, and its hint says nothing about the frame that ended. */
        if (r == 0)
            s->ended = true;
        else if (in.pos || out.pos)
            s->ended = false;
        if (out.pos) {
            int rc = pass(d, i, s->buf, out.pos);
            if (rc < 0)
                return rc;
        }
        /* Output left room: the decoder has handed out all it could from this input. */
        if (n == 0 && out.pos < out.size)
            return 0;
    }
}
#endif

static int stage_feed(ag__decoder *d, int i, const unsigned char *p, size_t n)
{
    stage *s = &d->st[i];
    if (n == 0)
        return 0;
    s->seen = true;
    switch (s->kind) {
#ifdef AG_HAVE_ZLIB
    case K_GZIP:
        return zlib_feed(d, i, p, n);
    case K_DEFLATE:
        return deflate_feed(d, i, p, n);
#endif
#ifdef AG_HAVE_BROTLI
    case K_BR:
        return brotli_feed(d, i, p, n);
#endif
#ifdef AG_HAVE_ZSTD
    case K_ZSTD:
        return zstd_feed(d, i, p, n);
#endif
    default:
        (void)p;
        return stop(d, -EINVAL);
    }
}

int ag__decoder_feed(ag__decoder *d, const char *p, size_t n)
{
    if (d->err)
        return d->err;
    if (d->n == 0) {
        /* Only identity was named: the bytes are the body, held to the same caps. */
        return n ? emit(d, p, n) : 0;
    }
    return stage_feed(d, d->n - 1, (const unsigned char *)p, n);
}

int ag__decoder_finish(ag__decoder *d)
{
    if (d->err)
        return d->err;
    /* No byte at all (an empty body under Content-Encoding): no stream began, none was cut. */
    if (d->n == 0 || !d->st[d->n - 1].seen)
        return 0;
    for (int i = d->n - 1; i >= 0; i--) {
        const stage *s = &d->st[i];
        if (!s->ended)
            return fail(d, AG_EDECODE, kind_name[s->kind],
                        " body truncated: the stream does not end", NULL);
    }
    return 0;
}

void ag__decoder_free(ag__decoder *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->n; i++) {
        stage *s = &d->st[i];
        free(s->buf);
        if (!s->ready)
            continue;
        switch (s->kind) {
#ifdef AG_HAVE_ZLIB
        case K_GZIP:
        case K_DEFLATE:
            inflateEnd(&s->z);
            break;
#endif
#ifdef AG_HAVE_BROTLI
        case K_BR:
            BrotliDecoderDestroyInstance(s->br);
            break;
#endif
#ifdef AG_HAVE_ZSTD
        case K_ZSTD:
            ZSTD_freeDCtx(s->zs);
            break;
#endif
        default:
            break;
        }
    }
    free(d);
}
