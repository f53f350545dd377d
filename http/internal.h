/* internal.h: the client, the response, and the exchange of one request on one connection. */
#ifndef AG_HTTP_INTERNAL_H
#define AG_HTTP_INTERNAL_H

#include "asyncget.h"
#include "http/decode.h"
#include "http/url.h"
#include "net/net.h"
#include "tls/tls.h"

#include <http_parser.h>
#include <stdbool.h>

/* A connect_to rule: HOST1:PORT1 (NULL, 0: any) is reached at HOST2:PORT2 (NULL, 0: kept). */
typedef struct ag__connect_to {
    char *from_host, *to_host;
    uint16_t from_port, to_port;
} ag__connect_to;

struct ag_client {
    ag_client_opts o; /* defaults filled in */
    ag_loop *loop;
    ag__pool *pool;
    ag__resolver *res;
    ag__connect_to *cto;
    size_t ncto;
    ag_tls_opts tls_opts; /* a copy of the caller's TLS settings; strings in tls_strs */
    char *tls_strs;
    ag__tls_set *tls; /* the TLS contexts, one per distinct settings */
    char *ua;         /* User-Agent value */
    char *unix_path;  /* a copy of o.unix_socket: every connection goes there (NULL: TCP) */
    char *rbuf;       /* read buffer shared by the client's requests, see ag__rbuf_take */
    size_t rbuf_cap;
    bool rbuf_busy;
    size_t inflight;      /* requests between the start and the end of ag_fetch */
    uint64_t next_req_id; /* the last request id given out */
};

/* Where a connection to host:port really goes, by the first connect_to rule that matches. */
void ag__connect_to_apply(const ag_client *c, const char **host, uint16_t *port);

/* Header fields and trailers: "name\0value\0" records in one buffer, indexed by offset. */
typedef struct ag__fields {
    char *buf;
    size_t len, cap;
    uint32_t *idx; /* offset of each name; its value follows the name's NUL */
    size_t n, idx_cap;
} ag__fields;

struct ag_response {
    int error;
    int status;
    int http_minor;
    ag__fields headers;
    ag__fields trailers;
    char *body;
    size_t body_len, body_cap;
    uint64_t body_bytes;
    ag_timings t;
    bool reused;
    uint64_t conn_id;
    char peer[64];
    char local[64];    /* the connection's local end, see ag_response_local */
    ag__tls_info *tls; /* the final response's connection, when it was TLS */
    char *url;
    unsigned redirects;
    uint64_t req_id;
    char detail[160];       /* ag_response_error_detail */
    char reason[48];        /* the final status line's reason phrase, cut to fit */
    uint64_t header_bytes;  /* every response head of the request, redirects included */
    unsigned connects;      /* connections opened for the request */
    uint64_t decoded_bytes; /* body bytes after content codings, ag_response_decoded_bytes */
};

/* Set the response's detail text to the concatenation of the pieces (NULL ends them), cut to
 * fit. No printf: this runs on coroutine stacks. */
void ag__response_detail(ag_response *r, const char *a, const char *b, const char *c,
                         const char *d);

/* ---- response.c ---- */
int ag__fields_begin(ag__fields *f); /* start a new field record */
int ag__fields_append(ag__fields *f, const char *p, size_t n);
int ag__fields_end_name(ag__fields *f);  /* the name is complete: the value starts */
int ag__fields_end_value(ag__fields *f); /* the record is complete */
void ag__fields_clear(ag__fields *f);
void ag__fields_free(ag__fields *f);
const char *ag__fields_get(const ag__fields *f, const char *name);
void ag__response_reset(ag_response *r); /* forget status, fields and body (redirects) */
int ag__body_append(ag_response *r, const char *p, size_t n, size_t cap);

/* ---- parse.c: one response read from a connection ---- */
typedef struct ag__parse {
    http_parser p;
    ag_response *resp;
    const ag_client *client;
    const ag_request *req;
    int err;          /* set by a callback that stopped the parser */
    bool head;        /* the request was HEAD: no body whatever the headers say */
    bool done;        /* the final response is complete */
    bool follow;      /* redirects are followed: a redirect's body is not kept */
    bool discard;     /* this response's body is dropped */
    bool in_value;    /* last header callback was a value */
    bool trailers;    /* headers are complete: further fields are trailers */
    bool field_open;  /* a field record is being collected */
    unsigned interim; /* 1xx responses skipped */
    /* status line check, run over the raw bytes at the start of each message */
    bool sl_active;
    unsigned sl_len;
    char sl[16];      /* the first bytes of the status line */
    char sl_prev;     /* the last byte seen */
    uint8_t sl_after; /* 1: status line ended, the next byte must not be white space */
    /* framing check over the raw bytes the parser consumed: line ends in the head, and the
     * chunked framing, which the non-strict parser reads loosely */
    uint8_t fr_state;
    char fr_prev;      /* the previous head byte */
    uint8_t fr_digits; /* significant hex digits of the chunk size (leading zeros not counted) */
    bool fr_size_seen; /* the chunk size line has a digit */
    uint16_t fr_ext;   /* bytes of chunk extension */
    uint64_t fr_left;  /* chunk data bytes still to skip */
    int64_t deadline;  /* for a body sink that has to wait (total deadline, -1 none) */
    bool got_bytes;    /* any byte of a response arrived */
    bool extra;        /* bytes followed the complete response */
    bool must_close;   /* the framing cannot be trusted past this message: do not reuse */
    const char *why;   /* a refusal's reason, a string literal (NULL: none given) */
    /* The body's codings being decoded (Content-Encoding, and Transfer-Encoding codings before
     * chunked) when the client decodes; NULL: the body goes to the sink as it came. */
    ag__decoder *dec;
    /* Each whole response head, for the trace hook (AG_TRACE_HEAD_IN); NULL: not wanted, and
     * nothing is collected. */
    void (*on_head)(void *arg, const char *head, size_t len);
    void *on_head_arg;
    char *hbuf;     /* the head collected so far, for on_head */
    size_t hsize;   /* bytes of the current head so far, for max_header_bytes */
    bool hlost;     /* memory ran out for the current head: no event for it */
    bool body_seen; /* the final head was accepted and body bytes reached on_body */
    size_t hlen, hcap;
} ag__parse;

void ag__parse_init(ag__parse *ps, const ag_client *client, const ag_request *req,
                    ag_response *resp, bool head, bool follow);
/* Feed bytes (len 0: end of stream). Returns 0 to go on, 1 when the response is complete,
 * or a negative code. */
int ag__parse_feed(ag__parse *ps, const char *data, size_t len);
/* The response will not complete (an error, a timeout): drop a field record left half-written,
 * so that the response handed to the caller holds only whole fields. */
void ag__parse_abandon(ag__parse *ps);
/* Free what the parse holds (the head collected for on_head). */
void ag__parse_end(ag__parse *ps);
/* An interim response: 1xx only. A code below 100 is outside the grammar and final (as a 5xx,
 * RFC 9110 section 15), never interim; status 0 is no response at all. */
static inline bool ag__status_interim(int status)
{
    return status >= 100 && status < 200;
}

/* ---- auth.c ---- */
/* The Authorization value of a request's own credentials: bearer, username and password, or the
 * userinfo of url (percent-decoded), in memory the caller frees; *out NULL when there are none.
 * 0, AG_EREQUEST or AG_EURL with *why set, or -ENOMEM. */
int ag__auth_make(const ag_request *req, const ag__url *url, char **out, const char **why);
/* Whether two URLs have the same origin: scheme, host and port. */
bool ag__same_origin(const ag__url *a, const ag__url *b);

/* ---- request.c ---- */
typedef struct ag__req_state {
    const char *method;
    const char *auth; /* the Authorization value of the request's own credentials, or NULL */
    bool close; /* the caller sent "Connection: close": the connection ends with this request */
    bool other_origin; /* a redirect left the origin (scheme, host, port) of the request's URL */
    bool drop_auth;    /* other_origin, and credentials may not follow (no location_trusted) */
    bool drop_body;    /* a redirect turned the method into GET */
    bool no_expect;    /* a 417 refused "Expect: 100-continue": the request goes without it */
    /* The Cookie value of the client's jar for this hop, or NULL: merged with the caller's
     * own Cookie headers into one field. */
    const char *jar_cookie;
} ag__req_state;
/* Check every field of a request before anything is sent: 0, or AG_EREQUEST, AG_EHEADER or
 * AG_EURL with *why a static text saying what is wrong. */
int ag__request_check(const ag_request *req, const char **why);
/* The caller's headers ask to close the connection after this request. */
bool ag__request_closes(const ag_request *req);
/* How the body of one request goes out. */
typedef struct ag__body_plan {
    int kind;            /* enum ag_body_kind; AG_BODY_NONE when a redirect dropped the body */
    uint64_t len;        /* Content-Length */
    bool content_length; /* say Content-Length (also 0 for an empty POST, PUT, PATCH) */
    bool chunked;        /* a reader of unknown length: sent chunked */
    bool expect;         /* send "Expect: 100-continue" and wait for it before the body */
} ag__body_plan;
void ag__body_plan_make(ag__body_plan *bp, const ag_client *client, const ag_request *req,
                        const ag__req_state *st);
/* Lay out the request head in buf (size bytes) or, when it does not fit, in memory the caller
 * frees (*out != buf). */
int ag__request_head(ag_client *client, const ag__url *url, const ag_request *req,
                     const ag__req_state *st, const ag__body_plan *bp, char *buf, size_t size,
                     char **out, size_t *len);
/* The next body bytes of a file, form or reader body at offset off: the count (0 at the end) or
 * AG_EBODY. */
int ag__body_read(const ag_request *req, const ag__body_plan *bp, uint64_t off, char *buf,
                  size_t cap);

#endif
