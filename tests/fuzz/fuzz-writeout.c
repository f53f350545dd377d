/* fuzz-writeout.c: the command's -w format parser (cli/writeout.c) fed arbitrary formats. The
 * oracle reads the format itself by the grammar cli.h states (curl's): "%%" is "%"; "%{name}" a
 * variable, "%header{name}" a response header (the first of that name, any case, nothing when
 * absent); a "%{" or "%header{" without its "}" is itself, as is a "%" before anything else or at
 * the end; a backslash before n, r, t or a backslash is that byte, before anything else itself.
 * A variable is rendered by the library alone ("%{name}" as the whole format, trusted: what is
 * judged is the reading of the format around it); an unknown one renders nothing and leaves one
 * warning line, free of control bytes. The whole format must render to the concatenation of its
 * pieces, byte for byte, with exactly that many warning lines. A format naming a file ("@...") is
 * not fed. */
#include "cli.h"
#include "http/internal.h"
#include "tests/fuzz/fuzz-common.h"

#include <strings.h>

long ag_fuzz_accepted, ag_fuzz_refused;

const char *const ag_fuzz_dict[] = {"%{",
                                    "}",
                                    "%header{",
                                    "%%",
                                    "%",
                                    "\\n",
                                    "\\r",
                                    "\\t",
                                    "\\\\",
                                    "\\",
                                    "%{http_code}",
                                    "%{json}",
                                    "%{url}",
                                    "%{time_total}",
                                    "%{size_download}",
                                    "%{errormsg}",
                                    "%header{content-type}",
                                    "%header{X-A}",
                                    "%{nope}",
                                    "%{url_effective}",
                                    "%{remote_ip}",
                                    "%{conn_id}",
                                    NULL};

static void broken(const char *what)
{
    fuzz_broken("fuzz-writeout", what);
}

static ag_response *response(void)
{
    static ag_response *resp;
    static ag_client *c;
    if (resp)
        return resp;
    static const char text[] = "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                               "X-A: one\r\nx-a: two\r\nEmpty:\r\nX-Pct: %{url}\\n\r\n"
                               "Content-Length: 2\r\n\r\nok";
    ag_client_opts o;
    ag_client_opts_init(&o);
    ag_request req;
    ag_request_init(&req);
    resp = calloc(1, sizeof *resp);
    if (!resp || ag_client_new(&c, &o) < 0)
        abort();
    ag__parse ps;
    ag__parse_init(&ps, c, &req, resp, false, false);
    if (ag__parse_feed(&ps, text, sizeof text - 1) != 1)
        abort();
    ag__parse_end(&ps);
    return resp;
}

static cli_result result(void)
{
    cli_result r;
    memset(&r, 0, sizeof r);
    r.urlnum = 7;
    r.url = "http://example.test/a%{url}\\n";
    r.url_effective = "http://example.test/final";
    r.method = "GET";
    r.http_code = 200;
    r.size_download = 2;
    r.size_decoded = 2;
    r.size_header = 120;
    r.time_queue = 1500;
    r.time_namelookup = 2001000;
    r.time_connect = 3000000;
    r.time_appconnect = 4000999;
    r.time_pretransfer = 5000000;
    r.time_starttransfer = 6000000;
    r.time_total = 12345678901;
    r.num_connects = 1;
    r.num_redirects = 2;
    r.conn_id = 77;
    r.remote_ip = "127.0.0.1";
    r.remote_port = 8080;
    r.errormsg = "some error";
    r.tls_version = "TLSv1.3";
    r.attempts = 1;
    r.start_wall_ns = INT64_C(1796000523) * 1000000000;
    r.content_type = "text/html; charset=utf-8";
    r.resp = response();
    return r;
}

/* The warning lines given (cli.h: one line per unknown variable), each of them that text with no
 * control byte in it; -1 when a line is not. */
static int warning_lines(const char *s)
{
    static const char lead[] = "unknown --write-out variable: '";
    if (!s)
        return 0;
    int n = 0;
    for (;;) {
        const char *end = strchr(s, '\n');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (len < sizeof lead - 1 || memcmp(s, lead, sizeof lead - 1) != 0)
            return -1;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                return -1;
        n++;
        if (!end)
            return n;
        s = end + 1;
    }
}

/* One variable rendered by the library alone; *known: it is one the library knows. */
static void variable(cli_buf *out, const char *name, size_t len, const cli_result *r, bool *known)
{
    char *fmt = malloc(len + 4);
    if (!fmt)
        abort();
    memcpy(fmt, "%{", 2);
    memcpy(fmt + 2, name, len);
    memcpy(fmt + 2 + len, "}", 2);
    char err[256];
    cli_wo *w;
    if (cli_wo_compile(fmt, &w, err, sizeof err) < 0)
        broken("refused a format of one variable");
    *known = cli_wo_warning(w) == NULL;
    cli_wo_render(w, r, out);
    cli_wo_free(w);
    free(fmt);
}

/* The format rendered by the grammar, into out; returns the unknown variables met. */
static unsigned reference(const char *f, const cli_result *r, cli_buf *out)
{
    unsigned unknown = 0;
    while (*f) {
        if (f[0] == '\\') {
            char c = f[1] == 'n' ? '\n' : f[1] == 'r' ? '\r' : f[1] == 't' ? '\t' : f[1];
            if (f[1] && strchr("nrt\\", f[1])) {
                cli_buf_putc(out, c);
                f += 2;
            } else {
                cli_buf_putc(out, '\\');
                f++;
            }
        } else if (f[0] == '%' && f[1] == '%') {
            cli_buf_putc(out, '%');
            f += 2;
        } else if (f[0] == '%' && f[1] == '{') {
            const char *end = strchr(f + 2, '}');
            if (!end) {
                cli_buf_put(out, f, 2);
                f += 2;
                continue;
            }
            bool known;
            variable(out, f + 2, (size_t)(end - f - 2), r, &known);
            unknown += !known;
            f = end + 1;
        } else if (f[0] == '%' && strncmp(f + 1, "header{", 7) == 0) {
            const char *name = f + 8, *end = strchr(name, '}');
            if (!end) {
                cli_buf_put(out, f, 8);
                f += 8;
                continue;
            }
            size_t len = (size_t)(end - name);
            const ag_response *resp = r->resp;
            for (size_t i = 0; i < ag_response_header_count(resp); i++) {
                const char *n, *v;
                if (ag_response_header_at(resp, i, &n, &v) == 0 && strlen(n) == len &&
                    strncasecmp(n, name, len) == 0) {
                    cli_buf_puts(out, v);
                    break;
                }
            }
            f = end + 1;
        } else {
            cli_buf_putc(out, *f);
            f++;
        }
    }
    return unknown;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_begin(data, size);
    char *fmt = fuzz_cstring(data, size);
    if (!fmt)
        return 0;
    if (fmt[0] == '@') {
        free(fmt);
        return 0;
    }
    cli_result r = result();
    char err[256];
    cli_wo *w;
    if (cli_wo_compile(fmt, &w, err, sizeof err) < 0)
        broken("refused a format (only a file or memory may fail)");
    cli_buf got = {0}, want = {0};
    cli_wo_render(w, &r, &got);
    /* Rendering twice gives the same bytes: the compiled format is not consumed. */
    cli_buf again = {0};
    cli_wo_render(w, &r, &again);
    unsigned unknown = reference(fmt, &r, &want);
    if (got.len != want.len || (got.len && memcmp(got.p, want.p, got.len) != 0)) {
        fuzz_print_bytes("rendered", got.p, got.len);
        fuzz_print_bytes("by the grammar", want.p, want.len);
        broken("rendered the format otherwise than its grammar reads");
    }
    if (again.len != got.len || (got.len && memcmp(got.p, again.p, got.len) != 0))
        broken("rendered the same format differently the second time");
    if (warning_lines(cli_wo_warning(w)) != (int)unknown)
        broken("warned of another number of unknown variables than the format holds, or not in "
               "one clean line each");
    if (unknown)
        ag_fuzz_refused++;
    else
        ag_fuzz_accepted++;
    cli_buf_free(&got);
    cli_buf_free(&again);
    cli_buf_free(&want);
    cli_wo_free(w);
    free(fmt);
    return 0;
}
