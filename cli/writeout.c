/* writeout.c: -w / --write-out, curl's format language. A format is compiled once into a list of
 * pieces (literal text, a variable, a header name), so each request's output is a walk over that
 * list with no parsing. */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

enum wo_var {
    WV_HTTP_CODE,
    WV_TIME_QUEUE,
    WV_TIME_NAMELOOKUP,
    WV_TIME_CONNECT,
    WV_TIME_APPCONNECT,
    WV_TIME_PRETRANSFER,
    WV_TIME_STARTTRANSFER,
    WV_TIME_TOTAL,
    WV_SIZE_DOWNLOAD,
    WV_SIZE_DECODED,
    WV_SIZE_HEADER,
    WV_NUM_CONNECTS,
    WV_NUM_REDIRECTS,
    WV_REMOTE_IP,
    WV_REMOTE_PORT,
    WV_LOCAL_IP,
    WV_LOCAL_PORT,
    WV_URL_EFFECTIVE,
    WV_URL,
    WV_CONTENT_TYPE,
    WV_EXITCODE,
    WV_ERRORMSG,
    WV_URLNUM,
    WV_METHOD,
    WV_JSON,
    /* asyncget's own, the names of its --jsonl keys */
    WV_CONN_ID,
    WV_REUSED,
    WV_TLS_VERSION,
    WV_TLS_RESUMED,
    WV_ATTEMPTS,
};

static const struct {
    const char *name;
    enum wo_var var;
} wo_names[] = {
    {"http_code", WV_HTTP_CODE},
    {"response_code", WV_HTTP_CODE}, /* curl's other name for it */
    {"time_queue", WV_TIME_QUEUE},
    {"time_namelookup", WV_TIME_NAMELOOKUP},
    {"time_connect", WV_TIME_CONNECT},
    {"time_appconnect", WV_TIME_APPCONNECT},
    {"time_pretransfer", WV_TIME_PRETRANSFER},
    {"time_starttransfer", WV_TIME_STARTTRANSFER},
    {"time_total", WV_TIME_TOTAL},
    {"size_download", WV_SIZE_DOWNLOAD},
    {"size_decoded", WV_SIZE_DECODED}, /* asyncget's: the body after its content codings */
    {"size_header", WV_SIZE_HEADER},
    {"num_connects", WV_NUM_CONNECTS},
    {"num_redirects", WV_NUM_REDIRECTS},
    {"remote_ip", WV_REMOTE_IP},
    {"remote_port", WV_REMOTE_PORT},
    {"local_ip", WV_LOCAL_IP},
    {"local_port", WV_LOCAL_PORT},
    {"url_effective", WV_URL_EFFECTIVE},
    {"url", WV_URL},
    {"content_type", WV_CONTENT_TYPE},
    {"exitcode", WV_EXITCODE},
    {"errormsg", WV_ERRORMSG},
    {"urlnum", WV_URLNUM},
    {"method", WV_METHOD},
    {"json", WV_JSON},
    {"conn_id", WV_CONN_ID},
    {"reused", WV_REUSED},
    {"tls_version", WV_TLS_VERSION},
    {"tls_resumed", WV_TLS_RESUMED},
    {"attempts", WV_ATTEMPTS},
};

enum wo_kind { WO_TEXT, WO_VAR, WO_HEADER };

/* A piece of the format. Text and header names live in the format's one text block: off and
 * len point there (a header name is NUL-terminated for ag_response_header). */
struct wo_piece {
    enum wo_kind kind;
    enum wo_var var;
    size_t off, len;
};

struct cli_wo {
    struct wo_piece *pieces;
    size_t n, cap;
    cli_buf text;
    cli_buf warning;
};

/* The format read from a file is taken as curl takes it: line by line, the line ends dropped,
 * so a file's trailing newline does not print (an output newline is written "\n"). */
#define WO_FILE_MAX (16u << 20)

static int wo_read_file(const char *name, cli_buf *out, char *err, size_t errlen)
{
    bool is_stdin = strcmp(name, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(name, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read the --write-out file '%s': %s", name, strerror(errno));
        return -1;
    }
    char chunk[4096];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        for (size_t i = 0; i < n; i++) {
            if (chunk[i] != '\r' && chunk[i] != '\n')
                cli_buf_putc(out, chunk[i]);
        }
        if (out->len > WO_FILE_MAX) {
            snprintf(err, errlen, "the --write-out file '%s' is larger than %u bytes", name,
                     WO_FILE_MAX);
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "cannot read the --write-out file '%s': %s", name, strerror(errno));
        rc = -1;
    }
    if (!is_stdin)
        fclose(f);
    if (rc == 0 && !out->p)
        cli_buf_puts(out, ""); /* an empty file: an empty format */
    return rc;
}

static bool wo_add(cli_wo *w, enum wo_kind kind, enum wo_var var, size_t off, size_t len)
{
    /* Consecutive text merges into one piece: the format's text block is contiguous. */
    if (kind == WO_TEXT && w->n && w->pieces[w->n - 1].kind == WO_TEXT &&
        w->pieces[w->n - 1].off + w->pieces[w->n - 1].len == off) {
        w->pieces[w->n - 1].len += len;
        return true;
    }
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 8;
        struct wo_piece *p = realloc(w->pieces, cap * sizeof *p);
        if (!p)
            return false;
        w->pieces = p;
        w->cap = cap;
    }
    w->pieces[w->n++] = (struct wo_piece){kind, var, off, len};
    return true;
}

static bool wo_text(cli_wo *w, const char *p, size_t n)
{
    size_t off = w->text.len;
    cli_buf_put(&w->text, p, n);
    return wo_add(w, WO_TEXT, 0, off, n);
}

/* The grammar, as curl reads it: "%%" is "%"; "%{name}" a variable (unknown: nothing, and a
 * warning); "%header{name}" a header; a "%{" or "%header{" without its "}" is printed as it is,
 * as is a "%" before anything else or at the end. A backslash before n, r or t is that control
 * character and "\\" is one backslash; before anything else, or at the end, it stays. */
static bool wo_parse(cli_wo *w, const char *f)
{
    while (*f) {
        const char *lit = f;
        while (*f && *f != '%' && *f != '\\')
            f++;
        if (f > lit && !wo_text(w, lit, (size_t)(f - lit)))
            return false;
        if (!*f)
            break;
        if (*f == '\\') {
            const char *rep = NULL;
            switch (f[1]) {
            case 'n':
                rep = "\n";
                break;
            case 'r':
                rep = "\r";
                break;
            case 't':
                rep = "\t";
                break;
            case '\\':
                rep = "\\";
                break;
            }
            if (rep) {
                if (!wo_text(w, rep, 1))
                    return false;
                f += 2;
            } else {
                if (!wo_text(w, f, 1))
                    return false;
                f++;
            }
            continue;
        }
        /* *f == '%' */
        if (f[1] == '%') {
            if (!wo_text(w, "%", 1))
                return false;
            f += 2;
        } else if (f[1] == '{') {
            const char *name = f + 2, *end = strchr(name, '}');
            if (!end) {
                if (!wo_text(w, f, 2))
                    return false;
                f += 2;
                continue;
            }
            size_t len = (size_t)(end - name), i;
            for (i = 0; i < sizeof wo_names / sizeof wo_names[0]; i++) {
                if (strlen(wo_names[i].name) == len && memcmp(wo_names[i].name, name, len) == 0)
                    break;
            }
            if (i < sizeof wo_names / sizeof wo_names[0]) {
                if (!wo_add(w, WO_VAR, wo_names[i].var, 0, 0))
                    return false;
            } else {
                /* One line per unknown name, as cli.h says: a control byte in the name (a
                 * newline, an escape sequence from a format file) is shown as \xNN. */
                if (w->warning.len)
                    cli_buf_putc(&w->warning, '\n');
                cli_buf_puts(&w->warning, "unknown --write-out variable: '");
                for (size_t k = 0; k < len && k < 200; k++) {
                    unsigned char c = (unsigned char)name[k];
                    if (c < 0x20 || c == 0x7f)
                        cli_buf_printf(&w->warning, "\\x%02x", c);
                    else
                        cli_buf_putc(&w->warning, (char)c);
                }
                cli_buf_putc(&w->warning, '\'');
            }
            f = end + 1;
        } else if (strncmp(f + 1, "header{", 7) == 0) {
            const char *name = f + 8, *end = strchr(name, '}');
            if (!end) {
                if (!wo_text(w, f, 8))
                    return false;
                f += 8;
                continue;
            }
            size_t off = w->text.len, len = (size_t)(end - name);
            cli_buf_put(&w->text, name, len);
            cli_buf_putc(&w->text, '\0');
            if (!wo_add(w, WO_HEADER, 0, off, len))
                return false;
            f = end + 1;
        } else {
            /* A lone "%": printed with whatever follows, as curl does. */
            if (!wo_text(w, f, 1))
                return false;
            f++;
        }
    }
    return !w->text.oom && !w->warning.oom;
}

int cli_wo_compile(const char *fmt, cli_wo **out, char *err, size_t errlen)
{
    *out = NULL;
    cli_buf file = {0};
    if (fmt[0] == '@') {
        if (wo_read_file(fmt + 1, &file, err, errlen) < 0)
            goto fail;
        if (file.oom)
            goto oom;
        fmt = file.p;
    }
    cli_wo *w = calloc(1, sizeof *w);
    if (!w)
        goto oom;
    if (!wo_parse(w, fmt)) {
        cli_wo_free(w);
        goto oom;
    }
    cli_buf_free(&file);
    *out = w;
    return 0;
oom:
    snprintf(err, errlen, "--write-out: out of memory");
fail:
    cli_buf_free(&file);
    return -1;
}

const char *cli_wo_warning(const cli_wo *w)
{
    return w && w->warning.len ? w->warning.p : NULL;
}

/* A number in decimal, at least width digits (zero-padded), without printf: rendering runs once
 * per request and should cost little beside the request. */
static void wo_num(cli_buf *b, int64_t v, int width)
{
    char d[24];
    size_t i = sizeof d;
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        d[--i] = (char)('0' + mag % 10);
        mag /= 10;
    } while (mag || (int)(sizeof d - i) < width);
    if (v < 0)
        d[--i] = '-';
    cli_buf_put(b, d + i, sizeof d - i);
}

static void wo_unum(cli_buf *b, uint64_t v)
{
    char d[24];
    size_t i = sizeof d;
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    cli_buf_put(b, d + i, sizeof d - i);
}

static void wo_str(cli_buf *b, const char *s)
{
    if (s)
        cli_buf_puts(b, s);
}

static void wo_var(cli_buf *b, enum wo_var v, const cli_result *r)
{
    switch (v) {
    case WV_HTTP_CODE:
        wo_num(b, r->http_code, 3);
        break;
    case WV_TIME_QUEUE:
        cli_json_secs(b, r->time_queue);
        break;
    case WV_TIME_NAMELOOKUP:
        cli_json_secs(b, r->time_namelookup);
        break;
    case WV_TIME_CONNECT:
        cli_json_secs(b, r->time_connect);
        break;
    case WV_TIME_APPCONNECT:
        cli_json_secs(b, r->time_appconnect);
        break;
    case WV_TIME_PRETRANSFER:
        cli_json_secs(b, r->time_pretransfer);
        break;
    case WV_TIME_STARTTRANSFER:
        cli_json_secs(b, r->time_starttransfer);
        break;
    case WV_TIME_TOTAL:
        cli_json_secs(b, r->time_total);
        break;
    case WV_SIZE_DOWNLOAD:
        wo_unum(b, r->size_download);
        break;
    case WV_SIZE_DECODED:
        wo_unum(b, r->size_decoded);
        break;
    case WV_SIZE_HEADER:
        wo_unum(b, r->size_header);
        break;
    case WV_NUM_CONNECTS:
        wo_unum(b, r->num_connects);
        break;
    case WV_NUM_REDIRECTS:
        wo_unum(b, r->num_redirects);
        break;
    case WV_REMOTE_IP:
        wo_str(b, r->remote_ip);
        break;
    case WV_REMOTE_PORT:
        wo_num(b, r->remote_port, 1);
        break;
    case WV_LOCAL_IP:
        wo_str(b, r->local_ip);
        break;
    case WV_LOCAL_PORT:
        wo_num(b, r->local_port, 1);
        break;
    case WV_URL_EFFECTIVE:
        wo_str(b, r->url_effective ? r->url_effective : r->url);
        break;
    case WV_URL:
        wo_str(b, r->url);
        break;
    case WV_CONTENT_TYPE:
        wo_str(b, r->content_type);
        break;
    case WV_EXITCODE:
        wo_num(b, r->exitcode, 1);
        break;
    case WV_ERRORMSG:
        wo_str(b, r->errormsg);
        break;
    case WV_URLNUM:
        wo_unum(b, r->urlnum);
        break;
    case WV_METHOD:
        wo_str(b, r->method);
        break;
    case WV_JSON:
        cli_result_json(b, r);
        break;
    case WV_CONN_ID:
        wo_unum(b, r->conn_id);
        break;
    case WV_REUSED:
        cli_buf_puts(b, r->reused ? "true" : "false");
        break;
    case WV_TLS_VERSION:
        wo_str(b, r->tls_version);
        break;
    case WV_TLS_RESUMED:
        cli_buf_puts(b, r->tls_resumed ? "true" : "false");
        break;
    case WV_ATTEMPTS:
        wo_unum(b, r->attempts);
        break;
    }
}

void cli_wo_render(const cli_wo *w, const cli_result *r, cli_buf *b)
{
    for (size_t i = 0; i < w->n; i++) {
        const struct wo_piece *p = &w->pieces[i];
        switch (p->kind) {
        case WO_TEXT:
            cli_buf_put(b, w->text.p + p->off, p->len);
            break;
        case WO_VAR:
            wo_var(b, p->var, r);
            break;
        case WO_HEADER:
            if (r->resp)
                wo_str(b, ag_response_header(r->resp, w->text.p + p->off));
            break;
        }
    }
}

void cli_wo_free(cli_wo *w)
{
    if (!w)
        return;
    free(w->pieces);
    cli_buf_free(&w->text);
    cli_buf_free(&w->warning);
    free(w);
}
