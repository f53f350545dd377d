/* test-trace.c: -v, --trace and --trace-ascii from synthetic trace events: the curl-like markers,
 * the request and connection on every line, the dump formats, the wall clock, and one event never
 * cut by another thread's. */
#include "../tap.h"
#include "cli.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char tmpl[] = "/tmp/test-cli-trace-XXXXXX";
static char path[64];
static int serial;

static cli_trace *open_trace(int mode)
{
    snprintf(path, sizeof path, "%s/%d.txt", tmpl, serial++);
    cli_trace *t = NULL;
    char err[200] = "";
    if (cli_trace_new(&t, mode, path, err, sizeof err) != 0)
        tap_diag("cli_trace_new: %s", err);
    return t;
}

/* The file's content (NUL-terminated; free it). */
static char *slurp(void)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    cli_buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        cli_buf_put(&b, chunk, n);
    fclose(f);
    cli_buf_putc(&b, '\0');
    return b.p;
}

static void ev(cli_trace *t, uint64_t urlnum, int kind, uint64_t conn, const char *data, size_t len,
               int64_t time_ns)
{
    ag_trace_event e = {.kind = kind,
                        .request_id = urlnum + 1,
                        .conn_id = conn,
                        .time_ns = time_ns,
                        .data = data,
                        .len = len};
    cli_trace_event(t, urlnum, &e);
}

static void evs(cli_trace *t, uint64_t urlnum, int kind, uint64_t conn, const char *s)
{
    ev(t, urlnum, kind, conn, s, strlen(s), ag_now_ns());
}

static int check_text(const char *got, const char *want, const char *what)
{
    int ok = tap_ok(strcmp(got, want) == 0, "%s", what);
    if (!ok)
        tap_diag("got:\n%s\nwant:\n%s", got, want);
    return ok;
}

static void test_verbose_markers(void)
{
    cli_trace *t = open_trace(CLI_TRACE_VERBOSE);
    evs(t, 3, AG_TRACE_INFO, 0, "connecting to 127.0.0.1:8080");
    evs(t, 3, AG_TRACE_INFO, 7, "connected");
    evs(t, 3, AG_TRACE_HEAD_OUT, 7, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    evs(t, 3, AG_TRACE_SEND, 7, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    evs(t, 3, AG_TRACE_HEAD_IN, 7, "HTTP/1.1 100 Continue\r\n\r\n");
    evs(t, 3, AG_TRACE_HEAD_IN, 7, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
    evs(t, 3, AG_TRACE_RECV, 7, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
    evs(t, 3, 99, 7, "a kind from a later version");
    cli_trace_free(t);
    char *got = slurp();
    check_text(got,
               "[3#-] * connecting to 127.0.0.1:8080\n"
               "[3#7] * connected\n"
               "[3#7] > GET /a HTTP/1.1\n"
               "[3#7] > Host: x\n"
               "[3#7] > \n"
               "[3#7] < HTTP/1.1 100 Continue\n"
               "[3#7] < \n"
               "[3#7] < HTTP/1.1 200 OK\n"
               "[3#7] < Content-Length: 2\n"
               "[3#7] < \n",
               "trace_verbose_markers: '*' for info, '>' and '<' for each head line, no body "
               "bytes, unknown kinds ignored");
    free(got);
}

/* Two requests in flight at once: every line says whose it is, so each one's lines, picked out
 * by their prefix, read as that request alone. */
static void test_verbose_untangles(void)
{
    cli_trace *t = open_trace(CLI_TRACE_VERBOSE);
    evs(t, 0, AG_TRACE_HEAD_OUT, 1, "GET /zero HTTP/1.1\r\nHost: a\r\n\r\n");
    evs(t, 1, AG_TRACE_HEAD_OUT, 2, "GET /one HTTP/1.1\r\nHost: b\r\n\r\n");
    evs(t, 1, AG_TRACE_HEAD_IN, 2, "HTTP/1.1 404 Not Found\r\n\r\n");
    evs(t, 0, AG_TRACE_HEAD_IN, 1, "HTTP/1.1 200 OK\r\n\r\n");
    cli_trace_free(t);
    char *got = slurp();
    cli_buf zero = {0}, one = {0};
    for (char *line = strtok(got, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "[0#1] ", 6) == 0)
            cli_buf_printf(&zero, "%s|", line + 6);
        else if (strncmp(line, "[1#2] ", 6) == 0)
            cli_buf_printf(&one, "%s|", line + 6);
        else
            cli_buf_printf(&zero, "stray line %s|", line);
    }
    check_text(zero.p, "> GET /zero HTTP/1.1|> Host: a|> |< HTTP/1.1 200 OK|< |",
               "trace_verbose_untangles: request 0's lines by their prefix");
    check_text(one.p, "> GET /one HTTP/1.1|> Host: b|> |< HTTP/1.1 404 Not Found|< |",
               "trace_verbose_untangles: request 1's lines by their prefix");
    cli_buf_free(&zero);
    cli_buf_free(&one);
    free(got);
}

/* A hostile server's header cannot drive the terminal or forge a line of another request. */
static void test_verbose_escapes(void)
{
    cli_trace *t = open_trace(CLI_TRACE_VERBOSE);
    static const char head[] = "HTTP/1.1 200 OK\r\nX-A: \x1b[2J\rclear\x7f\x01\r\n"
                               "X-B: tab\tok \xc3\xa9\r\n\r\n";
    ev(t, 5, AG_TRACE_HEAD_IN, 9, head, sizeof head - 1, ag_now_ns());
    cli_trace_free(t);
    char *got = slurp();
    check_text(got,
               "[5#9] < HTTP/1.1 200 OK\n"
               "[5#9] < X-A: \\x1b[2J\\x0dclear\\x7f\\x01\n"
               "[5#9] < X-B: tab\tok \xc3\xa9\n"
               "[5#9] < \n",
               "trace_verbose_escapes: control bytes of a header shown as \\xNN, tab and UTF-8 "
               "kept");
    free(got);
}

/* C1 controls in their UTF-8 form (U+009B is CSI, U+009D OSC to xterm), and bytes that are not
 * UTF-8 (a lone 0x9b is CSI to an 8-bit terminal): escaped too; a valid character is kept. */
static void test_verbose_escapes_c1(void)
{
    cli_trace *t = open_trace(CLI_TRACE_VERBOSE);
    static const char head[] = "HTTP/1.1 200 OK\r\nX-C: a\xc2\x9b"
                               "2J\xc2\x9d"
                               "0;t\x9b"
                               "c\xff\xed\xa0\x80 \xc2\xa0\xe2\x82\xac\r\n\r\n";
    ev(t, 5, AG_TRACE_HEAD_IN, 9, head, sizeof head - 1, ag_now_ns());
    cli_trace_free(t);
    char *got = slurp();
    check_text(
        got,
        "[5#9] < HTTP/1.1 200 OK\n"
        "[5#9] < X-C: a\\xc2\\x9b2J\\xc2\\x9d0;t\\x9bc\\xff\\xed\\xa0\\x80 \xc2\xa0\xe2\x82\xac\n"
        "[5#9] < \n",
        "trace_verbose_escapes_c1: C1 controls (UTF-8 or 8-bit) and bytes that are not "
        "UTF-8 shown as \\xNN; U+00A0 and U+20AC kept");
    free(got);
}

static cli_result result(uint64_t urlnum, uint64_t conn)
{
    cli_result r = {.urlnum = urlnum,
                    .url = "https://h/",
                    .url_effective = "https://h/",
                    .method = "GET",
                    .http_code = 200,
                    .size_download = 12,
                    .time_total = 1500000,
                    .num_connects = 1,
                    .conn_id = conn,
                    .remote_ip = "127.0.0.1",
                    .remote_port = 443,
                    .attempts = 1,
                    .start_wall_ns = 1700000000LL * 1000000000};
    return r;
}

static void test_verbose_done(void)
{
    cli_trace *t = open_trace(CLI_TRACE_VERBOSE);
    /* Request 1 saw its handshake through the hook; request 2 came over a reused connection and
     * did not; request 3 failed. */
    evs(t, 1, AG_TRACE_INFO, 4,
        "TLS handshake done: TLSv1.3 TLS_AES_256_GCM_SHA384, ALPN http/1.1");
    evs(t, 1, AG_TRACE_INFO, 4, "server certificate: subject CN=h");
    cli_result r1 = result(1, 4), r2 = result(2, 4), r3 = result(3, 0);
    r1.tls_version = r2.tls_version = "TLSv1.3";
    r2.reused = true;
    r2.tls_resumed = true;
    r3.http_code = 0;
    r3.exitcode = 7;
    r3.error = -111;
    r3.errormsg = "connect to 127.0.0.1:1: Connection refused";
    cli_trace_done(t, &r1);
    cli_trace_done(t, &r2);
    cli_trace_done(t, &r3);
    cli_trace_free(t);
    char *got = slurp();
    check_text(got,
               "[1#4] * TLS handshake done: TLSv1.3 TLS_AES_256_GCM_SHA384, ALPN http/1.1\n"
               "[1#4] * server certificate: subject CN=h\n"
               "[1#4] * done: status 200, 12 bytes, 0.001500 s, connection #4\n"
               "[2#4] * TLS: TLSv1.3 (resumed)\n"
               "[2#4] * done: status 200, 12 bytes, 0.001500 s, connection #4 (reused)\n"
               "[3#-] * failed (exit 7): connect to 127.0.0.1:1: Connection refused, 0.001500 s\n",
               "trace_verbose_done: the result line, and TLS only when the hook did not show it");
    free(got);
}

/* hh:mm:ss.uuuuuu as seconds of the day. */
static double day_secs(const char *s)
{
    int h, m, sec, us;
    if (sscanf(s, "%2d:%2d:%2d.%6d", &h, &m, &sec, &us) != 4)
        return -1;
    return h * 3600.0 + m * 60.0 + sec + us / 1e6;
}

static void test_hex_format(void)
{
    cli_trace *t = open_trace(CLI_TRACE_HEX);
    int64_t now = ag_now_ns();
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    static const char req[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    ev(t, 0, AG_TRACE_INFO, 1, "connected", 9, now);
    ev(t, 0, AG_TRACE_HEAD_OUT, 1, req, sizeof req - 1, now); /* as SEND too: not twice */
    ev(t, 0, AG_TRACE_SEND, 1, req, sizeof req - 1, now + 1500000000);
    cli_trace_free(t);
    char *got = slurp();
    /* Times first, checked apart: the rest is fixed text. */
    char *l1 = got, *l2 = strchr(l1, '\n') ? strchr(l1, '\n') + 1 : l1;
    double t1 = day_secs(l1), t2 = day_secs(l2);
    double diff = t2 - t1 < 0 ? t2 - t1 + 86400 : t2 - t1;
    tap_ok(diff > 1.4999995 && diff < 1.5000005,
           "trace_hex_time: events 1.5 s apart on the monotonic clock are 1.5 s apart on the "
           "printed clock (%.6f)",
           diff);
    struct tm tm;
    time_t ws = wall.tv_sec;
    localtime_r(&ws, &tm);
    double local = tm.tm_hour * 3600.0 + tm.tm_min * 60 + tm.tm_sec + wall.tv_nsec / 1e9;
    double off = t1 - local;
    off = off > 43200 ? off - 86400 : off < -43200 ? off + 86400 : off;
    tap_ok(off > -60 && off < 60,
           "trace_hex_time: the printed time is the local wall clock (%.3f s off)", off);
    for (char *p = got; *p; p++) /* blank the times */
        if (p == got || p[-1] == '\n')
            if (day_secs(p) >= 0)
                memcpy(p, "HH:MM:SS.uuuuuu", 15);
    check_text(got,
               "HH:MM:SS.uuuuuu [0#1] == Info: connected\n"
               "HH:MM:SS.uuuuuu [0#1] => Send data, 27 bytes (0x1b)\n"
               "0000: 47 45 54 20 2f 20 48 54 54 50 2f 31 2e 31 0d 0a GET / HTTP/1.1..\n"
               "0010: 48 6f 73 74 3a 20 61 0d 0a 0d 0a                Host: a....\n",
               "trace_hex_format: curl's --trace blocks, with time, request and connection");
    free(got);
}

static void test_ascii_format(void)
{
    cli_trace *t = open_trace(CLI_TRACE_ASCII);
    static const char resp[] = "HTTP/1.1 200 OK\r\nX: \x01y\r\n\r\nbody\n";
    char longline[64 + 36 + 2 + 64 + 2];
    memset(longline, 'a', 100);
    memcpy(longline + 100, "\r\n", 2);
    memset(longline + 102, 'b', 64);
    memcpy(longline + 166, "\r\n", 2);
    ev(t, 2, AG_TRACE_RECV, 3, resp, sizeof resp - 1, ag_now_ns());
    ev(t, 2, AG_TRACE_RECV, 3, longline, sizeof longline, ag_now_ns());
    cli_trace_free(t);
    char *got = slurp();
    for (char *p = got; *p; p++)
        if (p == got || p[-1] == '\n')
            if (day_secs(p) >= 0)
                memcpy(p, "HH:MM:SS.uuuuuu", 15);
    check_text(got,
               "HH:MM:SS.uuuuuu [2#3] <= Recv data, 31 bytes (0x1f)\n"
               "0000: HTTP/1.1 200 OK\n"
               "0011: X: .y\n"
               "0018: \n"
               "001a: body.\n"
               "HH:MM:SS.uuuuuu [2#3] <= Recv data, 168 bytes (0xa8)\n"
               "0000: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
               "0040: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
               "0066: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n",
               "trace_ascii_format: curl's --trace-ascii: text only, a line per CRLF or 64 bytes");
    free(got);
}

/* ---- threads -------------------------------------------------------------------------------- */

enum { THREADS = 6, EVENTS = 300, LINES = 12 };

struct worker {
    cli_trace *t;
    int id;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    cli_buf head = {0};
    cli_buf_puts(&head, "GET / HTTP/1.1\r\n");
    for (int i = 1; i < LINES - 1; i++)
        cli_buf_printf(&head, "X-Line: %d\r\n", i);
    cli_buf_puts(&head, "\r\n");
    char bytes[100];
    memset(bytes, 'a' + w->id, sizeof bytes);
    for (int i = 0; i < EVENTS; i++) {
        ev(w->t, (uint64_t)w->id, AG_TRACE_HEAD_OUT, (uint64_t)w->id + 100, head.p, head.len,
           ag_now_ns());
        ev(w->t, (uint64_t)w->id, AG_TRACE_SEND, (uint64_t)w->id + 100, bytes, sizeof bytes,
           ag_now_ns());
    }
    cli_buf_free(&head);
    return NULL;
}

static void run_threads(cli_trace *t)
{
    pthread_t th[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){t, i};
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
}

/* -v from several threads at once: each head's lines stay together and in order. */
static void test_verbose_threads(void)
{
    cli_trace *t = open_trace(CLI_TRACE_VERBOSE);
    run_threads(t);
    cli_trace_free(t);
    char *got = slurp();
    int heads[THREADS] = {0}, bad = 0, expect = 0; /* the line the current head is at */
    char prefix[32] = "";
    for (char *line = strtok(got, "\n"); line; line = strtok(NULL, "\n")) {
        int id = -1;
        char rest[64] = "";
        if (sscanf(line, "[%d#%*d] > %63[^\n]", &id, rest) < 1 || id < 0 || id >= THREADS) {
            bad++;
            continue;
        }
        char want[64];
        if (expect == 0)
            snprintf(want, sizeof want, "GET / HTTP/1.1");
        else if (expect < LINES - 1)
            snprintf(want, sizeof want, "X-Line: %d", expect);
        else
            want[0] = '\0';
        size_t pl = (size_t)(strchr(line, ']') - line);
        if (strcmp(rest, want) != 0 || (expect > 0 && strncmp(line, prefix, pl) != 0))
            bad++;
        if (expect == 0) {
            memcpy(prefix, line, pl < sizeof prefix ? pl : sizeof prefix - 1);
            heads[id]++;
        }
        expect = (expect + 1) % LINES;
    }
    int complete = 1;
    for (int i = 0; i < THREADS; i++)
        complete &= heads[i] == EVENTS;
    tap_ok(bad == 0 && complete,
           "trace_verbose_threads: %d threads' heads each whole and in order (%d lines out of "
           "place)",
           THREADS, bad);
    free(got);
}

/* --trace from several threads: each block header is followed by exactly its dump lines. */
static void test_hex_threads(void)
{
    cli_trace *t = open_trace(CLI_TRACE_HEX);
    run_threads(t);
    cli_trace_free(t);
    char *got = slurp();
    int blocks[THREADS] = {0}, bad = 0, dump_left = 0, heads = 0, id = -1;
    for (char *line = strtok(got, "\n"); line; line = strtok(NULL, "\n")) {
        unsigned off;
        if (dump_left > 0) {
            /* 100 bytes of 'a' + id: 6 full lines and one of 4 bytes. */
            char want = (char)('a' + id);
            size_t len = strlen(line);
            if (sscanf(line, "%4x: ", &off) != 1 || len < 6 + 48 + 4 || line[len - 1] != want)
                bad++;
            dump_left--;
            continue;
        }
        if (strstr(line, "== Info:") || strstr(line, "Send data, 100 bytes (0x64)") == NULL) {
            bad++;
            continue;
        }
        if (sscanf(line + 16, "[%d#", &id) != 1 || id < 0 || id >= THREADS) {
            bad++;
            continue;
        }
        blocks[id]++;
        heads++;
        dump_left = 7;
    }
    int complete = 1;
    for (int i = 0; i < THREADS; i++)
        complete &= blocks[i] == EVENTS;
    tap_ok(bad == 0 && complete && heads == THREADS * EVENTS,
           "trace_hex_threads: every block whole, its dump right after its header (%d lines out "
           "of place)",
           bad);
    free(got);
}

static void test_errors(void)
{
    cli_trace *t = NULL;
    char err[200] = "";
    int rc = cli_trace_new(&t, CLI_TRACE_HEX, "/nonexistent-dir/x", err, sizeof err);
    tap_ok(rc < 0 && t == NULL && strstr(err, "/nonexistent-dir/x") != NULL,
           "trace_open_error: a file that cannot be made is an error that names it (%s)", err);
    rc = cli_trace_new(&t, 42, "-", err, sizeof err);
    tap_ok(rc < 0 && t == NULL, "trace_bad_mode: an unknown mode is refused");
}

int main(void)
{
    if (!mkdtemp(tmpl)) {
        perror("mkdtemp");
        return 1;
    }
    test_verbose_markers();
    test_verbose_untangles();
    test_verbose_escapes();
    test_verbose_escapes_c1();
    test_verbose_done();
    test_hex_format();
    test_ascii_format();
    test_verbose_threads();
    test_hex_threads();
    test_errors();
    for (int i = 0; i < serial; i++) {
        snprintf(path, sizeof path, "%s/%d.txt", tmpl, i);
        unlink(path);
    }
    rmdir(tmpl);
    return tap_done();
}
