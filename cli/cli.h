/* cli.h: the parts of the asyncget command. Everything here stands on the public header alone:
 * what the command needs from the library, other embedders get too. */
#ifndef AG_CLI_H
#define AG_CLI_H

#include <asyncget.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- growable byte buffer (json.c) ------------------------------------------------------ */

/* A byte buffer that grows; after a failed allocation it stops growing and says so (oom), so
 * a caller checks once at the end. Always NUL-terminated when p is not NULL. */
typedef struct cli_buf {
    char *p;
    size_t len, cap;
    bool oom;
} cli_buf;

void cli_buf_put(cli_buf *b, const void *p, size_t n);
void cli_buf_puts(cli_buf *b, const char *s);
void cli_buf_putc(cli_buf *b, char c);
void cli_buf_printf(cli_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_buf_reset(cli_buf *b); /* len = 0, memory kept */
void cli_buf_free(cli_buf *b);

/* A JSON string literal with its quotes: control bytes escaped, invalid UTF-8 (overlong forms,
 * surrogates, cut sequences, bytes above F4) each become U+FFFD, so the output is always valid
 * JSON whatever the input. s may be NULL: then `null`. */
void cli_json_str(cli_buf *b, const char *s, size_t len);
void cli_json_cstr(cli_buf *b, const char *s); /* NUL-terminated or NULL */
/* A wall-clock time (ns since 1970) as an RFC 3339 string in UTC with microseconds, quotes
 * included: "2026-11-30T01:02:03.123456Z". A time outside the years 0-9999 gives `null`, or the
 * epoch with epoch_if_none; false then. */
bool cli_json_date(cli_buf *b, int64_t wall_ns, bool epoch_if_none);
/* A number of seconds from nanoseconds, six decimals, as curl prints its times. */
void cli_json_secs(cli_buf *b, int64_t ns);

/* ---- one request's outcome (what --jsonl, -w, --har, -v and the summary read) -------------- */

/* Times are nanoseconds from t0, the moment the request was due: when the command scheduled it
 * (the tick of --rate, or the moment a --parallel-max slot came free), so a request that waited
 * for a slot shows that wait in time_queue, and a stalled server shows in every later time (no
 * coordinated omission). They are cumulative, as curl's: time_namelookup includes time_queue,
 * time_connect includes time_namelookup, and so on. A phase that did not happen takes the value
 * of the phase before it (a reused connection: namelookup = connect = the end of the queue),
 * except time_appconnect, which is 0 when there was no TLS handshake (curl's rule). */
typedef struct cli_result {
    uint64_t urlnum;           /* index in input order, from 0 (curl's urlnum) */
    const char *url;           /* as given */
    const char *url_effective; /* after redirects; the URL given when none was made */
    const char *method;
    int http_code;          /* 0 when no response */
    uint64_t size_download; /* body bytes received (of the final response), on the wire */
    uint64_t size_decoded;  /* the same after content codings were decoded (--compressed) */
    uint64_t size_header;   /* bytes of every response head received, redirects included */
    int64_t time_queue, time_namelookup, time_connect, time_appconnect, time_pretransfer,
        time_starttransfer, time_total;
    int64_t time_sent; /* the request written whole (HAR's send and wait; not in --jsonl), 0: not */
    unsigned num_connects;   /* connections opened for this request, redirects included */
    unsigned num_redirects;  /* redirects followed */
    uint64_t conn_id;        /* the final response's connection, 0 when none */
    const char *remote_ip;   /* "" when no address was tried */
    int remote_port;         /* 0 when none */
    const char *local_ip;    /* the local end of the final response's connection, "" when none */
    int local_port;          /* 0 when none */
    int exitcode;            /* curl's exit code for this request, 0 on success */
    const char *errormsg;    /* NULL on success */
    int error;               /* asyncget's code (ag_err_name), 0 on success */
    bool reused;             /* the final response came over a reused connection */
    const char *tls_version; /* "TLSv1.3"; NULL when not TLS */
    bool tls_resumed;
    unsigned attempts;        /* tries of this request (--retry), at least 1 */
    int64_t start_wall_ns;    /* wall clock (CLOCK_REALTIME) at t0 */
    const char *content_type; /* NULL when none */
    /* The final attempt's response (for %header{name}), NULL when none was made. */
    const ag_response *resp;
} cli_result;

/* The fixed keys of --jsonl and -w '%{json}', in this order (a contract with other tools): urlnum
 * url url_effective method http_code size_download size_header time_queue time_namelookup
 * time_connect time_appconnect time_pretransfer time_starttransfer time_total num_connects
 * num_redirects conn_id remote_ip remote_port exitcode errormsg reused tls_version tls_resumed
 * attempts start, then asyncget's keys that came later: size_decoded, local_ip, local_port. Times
 * in seconds (numbers), start in RFC 3339 UTC with microseconds, errormsg and tls_version null when
 * absent. No newline. */
void cli_result_json(cli_buf *b, const cli_result *r);

/* ---- -w / --write-out (writeout.c) ------------------------------------------------------ */

typedef struct cli_wo cli_wo;
/* Compile a format with curl's syntax: %{var}, %header{name}, %%, \n \t \r \\, and "@file" (the
 * format read from a file, "@-" from stdin). An unknown variable outputs nothing, as in curl,
 * and leaves a warning for cli_wo_warning. 0, or -1 with a message in err. */
int cli_wo_compile(const char *fmt, cli_wo **out, char *err, size_t errlen);
/* "unknown --write-out variable: 'x'" (one line per unknown variable), NULL when none. */
const char *cli_wo_warning(const cli_wo *w);
/* Render one request's values; appended to b. */
void cli_wo_render(const cli_wo *w, const cli_result *r, cli_buf *b);
void cli_wo_free(cli_wo *w);

/* ---- URL globbing (glob.c) -------------------------------------------------------------- */

typedef struct cli_glob cli_glob;
/* curl's globbing: [1-100], [001-100] (zero-padded), [1-100:10] (step), [a-z], {a,b,c}, several
 * patterns in one URL (the last varies fastest); "\[" and "\{" are literal. The expansions are
 * produced one at a time, never all held. 0, or -1 with a message in err (unbalanced brackets, a
 * bad range). */
int cli_glob_new(const char *pattern, cli_glob **out, char *err, size_t errlen);
/* The next URL into b (reset first): 1, or 0 when there are no more. */
int cli_glob_next(cli_glob *g, cli_buf *b);
uint64_t cli_glob_count(const cli_glob *g); /* expansions in all; UINT64_MAX when it overflows */
void cli_glob_free(cli_glob *g);

/* ---- latency histograms (hist.c) -------------------------------------------------------- */

/* Log-linear buckets over nanoseconds: values are kept to within 1% relative error from 1 µs to
 * about an hour (below 1 µs exactly to the microsecond), in fixed memory whatever the count.
 * Histograms of several threads merge by adding their buckets. */
typedef struct cli_hist cli_hist;
cli_hist *cli_hist_new(void);
void cli_hist_free(cli_hist *h);
void cli_hist_add(cli_hist *h, int64_t ns);
void cli_hist_merge(cli_hist *dst, const cli_hist *src);
uint64_t cli_hist_count(const cli_hist *h);
int64_t cli_hist_max(const cli_hist *h);
int64_t cli_hist_min(const cli_hist *h);
double cli_hist_mean(const cli_hist *h);
/* The value at quantile q (0..1), e.g. 0.999; 0 when empty. */
int64_t cli_hist_quantile(const cli_hist *h, double q);
/* Buckets with a count, in order: calls fn(lo_ns, hi_ns, count) for each. */
void cli_hist_each(const cli_hist *h, void (*fn)(void *arg, int64_t lo, int64_t hi, uint64_t n),
                   void *arg);

/* ---- the summary at the end (summary.c) ------------------------------------------------- */

/* Phases of the latency table. Each is recorded only for requests where it happened: queue and
 * total for all; DNS and connect for those that opened their final connection (not reused);
 * TLS for those that made a handshake; first byte (time_starttransfer - time_pretransfer) for
 * those that got a response byte. */
enum cli_phase {
    CLI_PH_QUEUE,
    CLI_PH_DNS,
    CLI_PH_CONNECT,
    CLI_PH_TLS,
    CLI_PH_FIRST_BYTE,
    CLI_PH_TOTAL,
    CLI_PH_COUNT
};

typedef struct cli_summary cli_summary;
cli_summary *cli_summary_new(void);
void cli_summary_free(cli_summary *s);
void cli_summary_add(cli_summary *s, const cli_result *r);
void cli_summary_merge(cli_summary *dst, const cli_summary *src);
/* Figures known only to the client: DNS cache hits (ag_client_dns_stats), added up per thread. */
void cli_summary_dns(cli_summary *s, uint64_t cache_hits, uint64_t queries);
/* wall_ns: the run's duration, for requests/s. */
void cli_summary_print(const cli_summary *s, FILE *f, int64_t wall_ns);
/* The same as JSON (one object, the histograms bucket by bucket), to b. */
void cli_summary_json(const cli_summary *s, cli_buf *b, int64_t wall_ns);
/* `asyncget summarize FILE`: rebuild the summary from --jsonl lines ("-": stdin). Returns the
 * exit code. */
int cli_summarize_main(int argc, char **argv);

/* ---- the progress line (progress.c) ----------------------------------------------------- */

typedef struct cli_progress cli_progress;
/* NULL when fd is not a terminal (no progress line at all). total 0: unknown. */
cli_progress *cli_progress_new(int fd, uint64_t total);
/* Called as often as wanted; redraws at most 10 times a second. */
void cli_progress_update(cli_progress *p, uint64_t done, uint64_t errors, int64_t now_ns);
void cli_progress_set_total(cli_progress *p, uint64_t total);
void cli_progress_free(cli_progress *p); /* clears the line */

/* ---- bodies (output.c) ------------------------------------------------------------------ */

enum cli_out_mode {
    CLI_OUT_STDOUT,  /* each body written whole to stdout when complete (curl's default) */
    CLI_OUT_FILE,    /* -o FILE: every body to one file, whole, in completion order */
    CLI_OUT_DISCARD, /* -o /dev/null, or --jsonl without -o/-O: bodies dropped as they come */
    CLI_OUT_REMOTE,  /* -O: a file per URL in the output directory, named from the URL */
};

typedef struct cli_out cli_out;
typedef struct cli_sink cli_sink;

/* spill: bytes of a body kept in memory before it moves to a temporary file (0: the default,
 * 1 MiB). dir: --output-dir (NULL: "."). Thread-safe: one cli_out serves every thread. */
int cli_out_new(cli_out **out, int mode, const char *path, const char *dir, size_t spill, char *err,
                size_t errlen);
/* Finish: close files, and remove the temporary file of every sink still open. */
void cli_out_free(cli_out *o);
/* The lock under which bodies are written: the command's own writes to the same stdout (-w,
 * --jsonl) take it too, so that no line lands inside a body. */
void cli_out_lock(cli_out *o);
void cli_out_unlock(cli_out *o);
/* Remove the temporary files of every sink still open; async-signal-safe (unlink only). */
void cli_out_remove_temps(cli_out *o);

/* One request's body. A sink NULL with mode CLI_OUT_DISCARD needs no calls at all. */
int cli_sink_open(cli_out *o, const char *url, uint64_t urlnum, cli_sink **out);
/* The response head text for -i (written before the body). */
int cli_sink_head(cli_sink *s, const char *p, size_t n);
/* As ag_request.on_body: 0 or a negative code. */
int cli_sink_write(void *sink, const char *p, size_t n);
/* The request is over: keep (write whole to its place, or rename to its final name) or drop. A
 * retry drops and opens again. Returns 0 or a negative errno (a failed write). */
int cli_sink_close(cli_sink *s, bool keep);

/* ---- -v, --trace, --trace-ascii (trace.c) ----------------------------------------------- */

enum cli_trace_mode { CLI_TRACE_VERBOSE = 1, CLI_TRACE_HEX, CLI_TRACE_ASCII };
typedef struct cli_trace cli_trace;
/* path "-": stderr. Thread-safe. */
int cli_trace_new(cli_trace **out, int mode, const char *path, char *err, size_t errlen);
/* An event of the library's trace hook, for request urlnum. */
void cli_trace_event(cli_trace *t, uint64_t urlnum, const ag_trace_event *ev);
/* After the request: -v shows the result line (and the TLS certificate when the hook did not). */
void cli_trace_done(cli_trace *t, const cli_result *r);
void cli_trace_free(cli_trace *t);

/* ---- --har (har.c) ---------------------------------------------------------------------- */

typedef struct cli_har cli_har;
/* Entries are written as requests complete: memory does not grow with the run. */
int cli_har_open(cli_har **out, const char *path, char *err, size_t errlen);
/* One entry: the result and the raw heads of the final exchange, as the trace hook gave them
 * (AG_TRACE_HEAD_OUT and AG_TRACE_HEAD_IN; either may be NULL when the request failed before). */
void cli_har_add(cli_har *h, const cli_result *r, const char *req_head, size_t req_len,
                 const char *resp_head, size_t resp_len);
int cli_har_close(cli_har *h); /* writes the end of the document */

/* ---- credentials from .netrc (netrc.c) -------------------------------------------------- */

/* The whole of a netrc file, NUL-terminated, in *out (free() it). 0, or a negative errno:
 * -ENOENT for a missing file, -EISDIR, -EFBIG past 1 MiB. */
int cli_netrc_read(const char *path, char **out);
/* The file curl reads without --netrc-file: $NETRC, else .netrc in $HOME (else the home of the
 * user's passwd entry). 0 with *out malloc'd, -ENOENT when there is no home, -ENOMEM. */
int cli_netrc_default_path(char **out);
/* Credentials for host (compared ignoring case) in the text of a netrc file, as curl finds them:
 * the first "machine HOST" or "default" entry that gives a login or a password. Tokens are
 * separated by blanks and newlines; "..." quotes one with \n, \r, \t and \X (X itself)
 * inside; macdef skips to the next empty line; account and unknown tokens are skipped; lines
 * whose first byte other than a blank is '#' are comments. 1 with *login (an entry without
 * one: "") and *password (NULL when the entry has none) malloc'd, 0 when no entry matches,
 * -EINVAL for an unterminated quote, -ENOMEM. */
int cli_netrc_find(const char *text, const char *host, char **login, char **password);

/* ---- request bodies and URLs (body.c) --------------------------------------------------- */

/* The whole of a file, or of stdin for "-", appended to b. 0 or a negative errno. */
int cli_read_all(const char *path, cli_buf *b);
/* Percent-encode every byte but ALPHA, DIGIT, '-', '.', '_' and '~' (curl_easy_escape's set). */
void cli_urlencode(cli_buf *b, const char *s, size_t n);
/* One --data-urlencode argument in curl's five forms (content, =content, name=content, @file,
 * name@file; the first '=' or '@' decides; a name is taken as already encoded), appended to b.
 * 0, or a negative errno with a message in err (a file that cannot be read). */
int cli_urlencode_arg(cli_buf *b, const char *arg, char *err, size_t errlen);

enum cli_form_kind {
    CLI_FORM_TEXT = 1, /* name=content: a field with value as its content */
    CLI_FORM_FILE,     /* name=@file: a file part; value is the path ("-": stdin) */
    CLI_FORM_CONTENT,  /* name=<file: a field whose content is read from value ("-": stdin) */
};

/* One -F or --form-string argument. */
typedef struct cli_form_arg {
    char *name; /* "" when the argument has none ("=value") */
    int kind;   /* enum cli_form_kind */
    char *value;
    char *type;     /* ;type=..., with the parameters that follow it; NULL when not given */
    char *filename; /* ;filename=...; NULL when not given */
} cli_form_arg;

/* curl's -F syntax: name=content, name=@file, name=<file, each followed by ;type=T and
 * ;filename=N parameters (not for <file); a content, file or filename in double quotes may hold
 * ';' (\" and \\ inside); unquoted words lose their surrounding blanks. literal: --form-string
 * (everything after '=' is the content). 0, or -EINVAL (no '=', several files in one field,
 * nested parts, the headers= or encoder= parameters) or -ENOMEM with a message in err. */
int cli_form_parse(const char *arg, bool literal, cli_form_arg *out, char *err, size_t errlen);
void cli_form_arg_free(cli_form_arg *a);
/* The Content-Type curl gives a file part from its name's extension (a few common ones),
 * "application/octet-stream" otherwise. */
const char *cli_form_guess_type(const char *filename);

/* The host of an absolute URL (without the brackets of an IPv6 address) into host, and
 * whether the URL carries userinfo. 0, -EINVAL (no "scheme://" or a broken bracket),
 * -ENAMETOOLONG. */
int cli_url_host(const char *url, char *host, size_t len, bool *userinfo);
/* The URL -T FILE uploads to, into out (reset first): curl appends the file's base name,
 * percent-encoded, when the URL's path has no file name (empty or ending in '/') and it has no
 * query. 1 when appended, 0 when url is kept as it is, -ENOMEM. */
int cli_upload_url(const char *url, const char *file, cli_buf *out);

#endif
