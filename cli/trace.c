/* trace.c: -v, --trace and --trace-ascii: the library's trace events as text, each request's lines
 * marked with its index and connection so that many requests in flight can be told apart. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* What the trace hook already showed of a request, so that cli_trace_done does not repeat it. */
enum { SHOWN_TLS = 1, SHOWN_CERT = 2 };

struct seen {
    uint64_t urlnum;
    unsigned flags;
};

struct cli_trace {
    int mode;
    int fd;
    bool own_fd;
    bool failed; /* a write failed: stop writing (a closed pipe, a full disk) */
    /* CLOCK_REALTIME minus ag_now_ns() at cli_trace_new: events carry the monotonic clock, and
     * one offset keeps their order and spacing while printing wall-clock times. */
    int64_t wall_offset;
    pthread_mutex_t mu;
    cli_buf out; /* formatted under mu, written with one write() per event */
    /* Requests in flight whose handshake or certificate the hook showed (-v only): at most as
     * many as requests in flight, removed by cli_trace_done. */
    struct seen *seen;
    size_t nseen, capseen;
};

int cli_trace_new(cli_trace **out, int mode, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    if (mode != CLI_TRACE_VERBOSE && mode != CLI_TRACE_HEX && mode != CLI_TRACE_ASCII) {
        snprintf(err, errlen, "unknown trace mode %d", mode);
        return -EINVAL;
    }
    cli_trace *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    t->mode = mode;
    t->fd = 2;
    if (path && strcmp(path, "-") != 0) {
        t->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (t->fd < 0) {
            int e = errno;
            snprintf(err, errlen, "cannot open %s: %s", path, strerror(e));
            free(t);
            return -e;
        }
        t->own_fd = true;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    t->wall_offset = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - ag_now_ns();
    pthread_mutex_init(&t->mu, NULL);
    *out = t;
    return 0;
}

void cli_trace_free(cli_trace *t)
{
    if (!t)
        return;
    if (t->own_fd)
        close(t->fd);
    pthread_mutex_destroy(&t->mu);
    cli_buf_free(&t->out);
    free(t->seen);
    free(t);
}

/* Write t->out whole and empty it; called with mu held, so one event's lines are never
 * interleaved with another's. */
static void flush_out(cli_trace *t)
{
    const char *p = t->out.p;
    size_t n = t->out.len;
    if (t->out.oom) {
        static const char msg[] = "* (trace: out of memory, event dropped)\n";
        p = msg;
        n = sizeof msg - 1;
    }
    while (n > 0 && !t->failed) {
        ssize_t w = write(t->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            t->failed = true;
            break;
        }
        p += w;
        n -= (size_t)w;
    }
    /* Keep a usual event's room for the next one, not the room of a rare large one. */
    if (t->out.oom || t->out.cap > 256 * 1024)
        cli_buf_free(&t->out);
    else
        cli_buf_reset(&t->out);
}

/* "[urlnum#conn] " (conn "-" before there is a connection): the key to untangle the output. */
static void put_ids(cli_buf *b, uint64_t urlnum, uint64_t conn_id)
{
    if (conn_id)
        cli_buf_printf(b, "[%" PRIu64 "#%" PRIu64 "] ", urlnum, conn_id);
    else
        cli_buf_printf(b, "[%" PRIu64 "#-] ", urlnum);
}

/* The length of the well-formed UTF-8 sequence at s (2 to 4 bytes, s[0] at least 0x80), or 0 when
 * it is not one (a stray continuation byte, an overlong form, a surrogate, a cut sequence, a
 * byte above F4). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    size_t want;
    if (c < 0xc2 || c > 0xf4)
        return 0;
    if (c < 0xe0) {
        want = 2;
    } else if (c < 0xf0) {
        want = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else {
        want = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    }
    if (n < want || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < want; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return want;
}

/* Text from the wire or the library, made safe for a terminal: control bytes other than tab
 * become \xNN, so a hostile header cannot move the cursor or end a line early. So do the C1
 * controls (U+0080 to U+009F: CSI, OSC, ... in their UTF-8 form, which terminals such as xterm
 * obey) and every byte that is not part of well-formed UTF-8 (a lone 0x9b is CSI to a terminal
 * reading 8-bit controls); other UTF-8 is shown as it is. */
static void put_text(cli_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0, i = 0;
    while (i < n) {
        unsigned char c = u[i];
        size_t len = 1;
        if (c == '\t' || (c >= 0x20 && c < 0x7f)) {
            i++;
            continue;
        }
        if (c >= 0x80 && (len = utf8_len(u + i, n - i)) != 0 && !(c == 0xc2 && u[i + 1] < 0xa0)) {
            i += len;
            continue;
        }
        if (len == 0)
            len = 1; /* not UTF-8: this byte alone */
        cli_buf_put(b, s + run, i - run);
        for (size_t k = 0; k < len; k++) {
            char esc[4] = {'\\', 'x', hex[u[i + k] >> 4], hex[u[i + k] & 15]};
            cli_buf_put(b, esc, sizeof esc);
        }
        i += len;
        run = i;
    }
    cli_buf_put(b, s + run, n - run);
}

/* Each line of s (split at LF, a CR before it dropped) as prefix + marker + text. An empty last
 * piece (the text ended with a newline) makes no line; an empty line inside does, as the blank
 * line that ends a head does in curl's -v. */
static void put_lines(cli_buf *b, uint64_t urlnum, uint64_t conn_id, const char *marker,
                      const char *s, size_t n)
{
    size_t start = 0;
    while (start < n) {
        const char *nl = memchr(s + start, '\n', n - start);
        size_t end = nl ? (size_t)(nl - s) : n;
        size_t len = end - start;
        if (nl && len > 0 && s[end - 1] == '\r')
            len--;
        put_ids(b, urlnum, conn_id);
        cli_buf_puts(b, marker);
        put_text(b, s + start, len);
        cli_buf_putc(b, '\n');
        start = nl ? end + 1 : n;
    }
}

/* "HH:MM:SS.uuuuuu " in local time, as curl's --trace-time. */
static void put_time(cli_buf *b, int64_t wall_ns)
{
    time_t sec = (time_t)(wall_ns / 1000000000);
    long usec = (long)(wall_ns % 1000000000 / 1000);
    struct tm tm;
    if (wall_ns < 0 || !localtime_r(&sec, &tm))
        memset(&tm, 0, sizeof tm);
    cli_buf_printf(b, "%02d:%02d:%02d.%06ld ", tm.tm_hour, tm.tm_min, tm.tm_sec, usec);
}

/* The bytes of one SEND or RECV event as curl's --trace (16 bytes a line, hex then text) or
 * --trace-ascii (text only, 64 bytes a line, a line also ending at CRLF, which is not shown). */
static void put_dump(cli_buf *b, const unsigned char *p, size_t n, bool hex_too)
{
    static const char hex[] = "0123456789abcdef";
    size_t width = hex_too ? 16 : 64;
    size_t i = 0;
    while (i < n) {
        char line[16 + 16 * 3 + 64 + 2];
        size_t k = 0, c;
        cli_buf_printf(b, "%04zx: ", i);
        if (hex_too) {
            for (c = 0; c < width; c++) {
                if (i + c < n) {
                    line[k++] = hex[p[i + c] >> 4];
                    line[k++] = hex[p[i + c] & 15];
                    line[k++] = ' ';
                } else {
                    memcpy(line + k, "   ", 3);
                    k += 3;
                }
            }
        }
        size_t next = i;
        for (c = 0; c < width && i + c < n; c++) {
            if (!hex_too && p[i + c] == '\r' && i + c + 1 < n && p[i + c + 1] == '\n') {
                next = i + c + 2;
                break;
            }
            unsigned char ch = p[i + c];
            line[k++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '.';
            next = i + c + 1;
        }
        /* A full text line right before a CRLF: the CRLF ends it, instead of a blank line. */
        if (!hex_too && c == width && next + 1 < n && p[next] == '\r' && p[next + 1] == '\n')
            next += 2;
        line[k++] = '\n';
        cli_buf_put(b, line, k);
        i = next;
    }
}

static struct seen *find_seen(cli_trace *t, uint64_t urlnum)
{
    for (size_t i = 0; i < t->nseen; i++)
        if (t->seen[i].urlnum == urlnum)
            return &t->seen[i];
    return NULL;
}

/* Remember that the hook showed the TLS handshake or the certificate of request urlnum. */
static void mark_seen(cli_trace *t, uint64_t urlnum, unsigned flag)
{
    struct seen *s = find_seen(t, urlnum);
    if (!s) {
        if (t->nseen == t->capseen) {
            size_t cap = t->capseen ? t->capseen * 2 : 16;
            struct seen *p = realloc(t->seen, cap * sizeof *p);
            if (!p)
                return; /* then cli_trace_done shows it again: harmless */
            t->seen = p;
            t->capseen = cap;
        }
        s = &t->seen[t->nseen++];
        s->urlnum = urlnum;
        s->flags = 0;
    }
    s->flags |= flag;
}

static unsigned take_seen(cli_trace *t, uint64_t urlnum)
{
    struct seen *s = find_seen(t, urlnum);
    if (!s)
        return 0;
    unsigned flags = s->flags;
    *s = t->seen[--t->nseen];
    return flags;
}

static bool has_word(const char *s, size_t n, const char *word)
{
    size_t wl = strlen(word);
    for (size_t i = 0; i + wl <= n; i++)
        if (strncasecmp(s + i, word, wl) == 0)
            return true;
    return false;
}

static void verbose_event(cli_trace *t, uint64_t urlnum, const ag_trace_event *ev)
{
    switch (ev->kind) {
    case AG_TRACE_INFO:
        if (ev->len >= 18 && memcmp(ev->data, "TLS handshake done", 18) == 0)
            mark_seen(t, urlnum, SHOWN_TLS);
        if (has_word(ev->data, ev->len, "certificate"))
            mark_seen(t, urlnum, SHOWN_CERT);
        put_lines(&t->out, urlnum, ev->conn_id, "* ", ev->data, ev->len);
        break;
    case AG_TRACE_HEAD_OUT:
        put_lines(&t->out, urlnum, ev->conn_id, "> ", ev->data, ev->len);
        break;
    case AG_TRACE_HEAD_IN:
        put_lines(&t->out, urlnum, ev->conn_id, "< ", ev->data, ev->len);
        break;
    default:
        break; /* body bytes are --trace's; kinds added later are ignored */
    }
}

static void dump_event(cli_trace *t, uint64_t urlnum, const ag_trace_event *ev)
{
    cli_buf *b = &t->out;
    int64_t wall = ev->time_ns + t->wall_offset;
    switch (ev->kind) {
    case AG_TRACE_INFO: {
        /* Each line of the text its own "== Info:" line, so every line starts with the time. */
        size_t start = 0;
        do {
            const char *nl = memchr(ev->data + start, '\n', ev->len - start);
            size_t end = nl ? (size_t)(nl - ev->data) : ev->len;
            put_time(b, wall);
            put_ids(b, urlnum, ev->conn_id);
            cli_buf_puts(b, "== Info: ");
            put_text(b, ev->data + start, end - start);
            cli_buf_putc(b, '\n');
            start = end + 1;
        } while (start < ev->len);
        break;
    }
    case AG_TRACE_SEND:
    case AG_TRACE_RECV:
        put_time(b, wall);
        put_ids(b, urlnum, ev->conn_id);
        cli_buf_printf(b, "%s data, %zu bytes (0x%zx)\n",
                       ev->kind == AG_TRACE_SEND ? "=> Send" : "<= Recv", ev->len, ev->len);
        put_dump(b, (const unsigned char *)ev->data, ev->len, t->mode == CLI_TRACE_HEX);
        break;
    default:
        break; /* heads come as SEND and RECV bytes too */
    }
}

void cli_trace_event(cli_trace *t, uint64_t urlnum, const ag_trace_event *ev)
{
    if (!t || !ev)
        return;
    ag_trace_event empty;
    if (!ev->data) { /* an event without bytes: the formatting below may assume a pointer */
        empty = *ev;
        empty.data = "";
        empty.len = 0;
        ev = &empty;
    }
    pthread_mutex_lock(&t->mu);
    if (!t->failed) {
        if (t->mode == CLI_TRACE_VERBOSE)
            verbose_event(t, urlnum, ev);
        else
            dump_event(t, urlnum, ev);
        flush_out(t);
    }
    pthread_mutex_unlock(&t->mu);
}

/* "2025-03-01 23:59:59 GMT" */
static void put_date(cli_buf *b, int64_t secs)
{
    time_t s = (time_t)secs;
    struct tm tm;
    char text[64];
    if (!gmtime_r(&s, &tm) || !strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S GMT", &tm))
        snprintf(text, sizeof text, "%" PRId64 " s since 1970", secs);
    cli_buf_puts(b, text);
}

/* The TLS lines of -v that the hook did not show for this request (a reused connection's
 * handshake belongs to an earlier request; the certificate is not in the hook's lines at all). */
static void verbose_tls(cli_trace *t, const cli_result *r, unsigned shown)
{
    cli_buf *b = &t->out;
    cli_buf line = {0};
    ag_tls_info ti;
    if (!r->resp || ag_response_tls(r->resp, &ti) != 0) {
        if (!(shown & SHOWN_TLS)) {
            cli_buf_printf(&line, "TLS: %s%s", r->tls_version, r->tls_resumed ? " (resumed)" : "");
            put_lines(b, r->urlnum, r->conn_id, "* ", line.p, line.len);
        }
        cli_buf_free(&line);
        return;
    }
    if (!(shown & SHOWN_TLS)) {
        cli_buf_printf(&line, "TLS: %s %s%s", ti.version, ti.cipher,
                       ti.resumed ? " (resumed)" : "");
        if (ti.alpn[0])
            cli_buf_printf(&line, ", ALPN %s", ti.alpn);
        if (r->reused)
            cli_buf_puts(&line, ", connection reused");
        put_lines(b, r->urlnum, r->conn_id, "* ", line.p, line.len);
        cli_buf_reset(&line);
    }
    if (!(shown & SHOWN_CERT)) {
        /* One line each, as curl's "Server certificate:" block. */
        cli_buf_puts(&line, "Server certificate:\n subject: ");
        cli_buf_puts(&line, ti.subject);
        cli_buf_puts(&line, "\n start date: ");
        put_date(&line, ti.not_before);
        cli_buf_puts(&line, "\n expire date: ");
        put_date(&line, ti.not_after);
        cli_buf_puts(&line, "\n issuer: ");
        cli_buf_puts(&line, ti.issuer);
        cli_buf_puts(&line, ti.verified ? "\n certificate verified"
                                        : "\n certificate NOT verified (insecure)");
        put_lines(b, r->urlnum, r->conn_id, "* ", line.p, line.len);
    }
    cli_buf_free(&line);
}

/* The request's outcome in one line: what -v ends each request with. */
static void result_text(cli_buf *b, const cli_result *r)
{
    if (r->exitcode || r->error) {
        cli_buf_printf(b, "failed (exit %d)", r->exitcode);
        if (r->http_code)
            cli_buf_printf(b, ", status %d", r->http_code);
        cli_buf_puts(b, ": ");
        cli_buf_puts(b, r->errormsg ? r->errormsg : "error");
    } else {
        cli_buf_printf(b, "done: status %d, %" PRIu64 " bytes", r->http_code, r->size_download);
    }
    cli_buf_puts(b, ", ");
    cli_json_secs(b, r->time_total);
    cli_buf_puts(b, " s");
    if (r->conn_id)
        cli_buf_printf(b, ", connection #%" PRIu64 "%s", r->conn_id, r->reused ? " (reused)" : "");
    if (r->attempts > 1)
        cli_buf_printf(b, ", %u attempts", r->attempts);
}

void cli_trace_done(cli_trace *t, const cli_result *r)
{
    if (!t || !r)
        return;
    cli_buf text = {0};
    result_text(&text, r);
    pthread_mutex_lock(&t->mu);
    if (t->mode == CLI_TRACE_VERBOSE) {
        unsigned shown = take_seen(t, r->urlnum);
        if (!t->failed && r->tls_version)
            verbose_tls(t, r, shown);
        put_lines(&t->out, r->urlnum, r->conn_id, "* ", text.p ? text.p : "", text.len);
    } else {
        put_time(&t->out, r->start_wall_ns + r->time_total);
        put_ids(&t->out, r->urlnum, r->conn_id);
        cli_buf_puts(&t->out, "== Info: ");
        put_text(&t->out, text.p ? text.p : "", text.len);
        cli_buf_putc(&t->out, '\n');
    }
    if (!t->failed)
        flush_out(t);
    else
        cli_buf_reset(&t->out);
    pthread_mutex_unlock(&t->mu);
    cli_buf_free(&text);
}
