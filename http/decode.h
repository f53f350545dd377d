/* decode.h: a chain of content (and transfer) coding decoders fed a body as it streams: gzip,
 * deflate, br and zstd, each present when its library was found at build time. */
#ifndef AG_HTTP_DECODE_H
#define AG_HTTP_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Codings of one body, at most: curl stops at five too, and no real server stacks more. */
#define AG__DECODE_MAX_CODINGS 5

/* Where decoded bytes go, in pieces of at most a few KiB: 0, or a negative code that stops the
 * decoding and is returned by the call that fed the bytes. */
typedef int (*ag__decode_out)(void *arg, const char *p, size_t n);

typedef struct ag__decode_opts {
    uint64_t max_decoded; /* past it AG_ETOO_LARGE; 0: no limit */
    unsigned max_ratio;   /* as ag_client_opts.max_decode_ratio: 0 is 1,000 */
    ag__decode_out out;
    void *out_arg;
} ag__decode_opts;

typedef struct ag__decoder ag__decoder;

/* An empty chain: codings are added with ag__decoder_add in the order they were applied. */
int ag__decoder_new(ag__decoder **out, const ag__decode_opts *opts);
/* Add the codings of one list field value ("gzip, br"), in the order the sender applied them;
 * "identity" and empty elements are skipped. AG_EDECODE for a coding this build cannot decode
 * (or too many), with ag__decoder_why naming it; -ENOMEM. */
int ag__decoder_add_list(ag__decoder *d, const char *list);
/* Add one coding by name (len bytes); as ag__decoder_add_list. */
int ag__decoder_add(ag__decoder *d, const char *name, size_t len);
/* Whether the chain decodes anything (every coding named was identity: it does not). */
bool ag__decoder_active(const ag__decoder *d);
/* Decode n coded bytes, handing what they decode to out. 0, AG_EDECODE (corrupt, or bytes after
 * the end of a stream), AG_EDECODE_RATIO, AG_ETOO_LARGE, -ENOMEM, or out's code. After an error
 * the decoder refuses every further call with the same code. */
int ag__decoder_feed(ag__decoder *d, const char *p, size_t n);
/* The coded body ended: AG_EDECODE when a stream did not reach its end (truncated), else 0. A
 * body of no bytes at all is no stream and decodes to nothing. */
int ag__decoder_finish(ag__decoder *d);
/* A sentence saying why the last AG_EDECODE or AG_EDECODE_RATIO came ("" when none). */
const char *ag__decoder_why(const ag__decoder *d);
/* Bytes handed to out so far, and coded bytes the first decoder consumed so far. */
uint64_t ag__decoder_decoded(const ag__decoder *d);
uint64_t ag__decoder_consumed(const ag__decoder *d);
void ag__decoder_free(ag__decoder *d);

/* Whether name (len bytes, any case) is a coding this build decodes ("x-gzip" counts as gzip). */
bool ag__decode_known(const char *name, size_t len);
/* Write the versions of the coding libraries built in to buf (NUL-terminated, cut to fit), as
 * " zlib/1.2.13 brotli/1.0.9 zstd/1.5.4" ("" with none). */
void ag__decode_versions(char *buf, size_t size);

#endif
