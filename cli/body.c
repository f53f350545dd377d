/* body.c: what the command makes of its request-body options with curl's rules: the pieces of
 * --data-urlencode, the fields of -F and --form-string, and the URL -T uploads to. Also the
 * host of a URL, for .netrc. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int cli_read_all(const char *path, cli_buf *b)
{
    bool std_in = strcmp(path, "-") == 0;
    FILE *f = std_in ? stdin : fopen(path, "rb");
    if (!f)
        return -errno;
    char chunk[8192];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        cli_buf_put(b, chunk, got);
    int rc = ferror(f) ? -(errno ? errno : EIO) : 0;
    if (!std_in)
        fclose(f);
    if (rc == 0 && b->oom)
        rc = -ENOMEM;
    return rc;
}

static bool unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

void cli_urlencode(cli_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c)) {
            cli_buf_putc(b, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            cli_buf_put(b, e, 3);
        }
    }
}

/* curl's five forms: the first '=' or '@' decides. "content" and "=content" give the content
 * encoded, "name=content" the name as it is, '=' and the content encoded; "@file" and
 * "name@file" the same with the whole file (newlines too) as the content. */
int cli_urlencode_arg(cli_buf *b, const char *arg, char *err, size_t errlen)
{
    const char *sep = strpbrk(arg, "=@");
    if (sep && *sep == '@') {
        cli_buf content = {0};
        int rc = cli_read_all(sep + 1, &content);
        if (rc < 0) {
            snprintf(err, errlen, "cannot read %s: %s", sep + 1, strerror(-rc));
            cli_buf_free(&content);
            return rc;
        }
        if (sep > arg) {
            cli_buf_put(b, arg, (size_t)(sep - arg));
            cli_buf_putc(b, '=');
        }
        cli_urlencode(b, content.p ? content.p : "", content.len);
        cli_buf_free(&content);
    } else if (sep) {
        if (sep > arg) {
            cli_buf_put(b, arg, (size_t)(sep - arg) + 1); /* the name and its '=' */
        }
        cli_urlencode(b, sep + 1, strlen(sep + 1));
    } else {
        cli_urlencode(b, arg, strlen(arg));
    }
    if (b->oom) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

/* ---- -F ---- */

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

/* A word of a field: quoted ("...", with \" and \\ escapes) or up to ';' or stop. Returns a
 * malloc'd copy; *pp moves to the ';', stop or end that follows. An unterminated quote is a
 * plain word, as curl reads it. */
static char *field_word(const char **pp, char stop)
{
    const char *p = *pp;
    while (blank(*p))
        p++;
    cli_buf w = {0};
    cli_buf_puts(&w, "");
    if (*p == '"') {
        const char *s = p + 1;
        cli_buf_reset(&w);
        bool closed = false;
        for (; *s; s++) {
            if (*s == '\\' && (s[1] == '\\' || s[1] == '"')) {
                cli_buf_putc(&w, *++s);
                continue;
            }
            if (*s == '"') {
                closed = true;
                break;
            }
            cli_buf_putc(&w, *s);
        }
        if (closed) {
            s++;
            /* Bytes between the closing quote and the next separator are dropped (curl warns). */
            while (*s && *s != ';' && *s != stop)
                s++;
            *pp = s;
            return w.oom ? (cli_buf_free(&w), NULL) : w.p;
        }
        cli_buf_reset(&w);
    }
    const char *s = p;
    while (*s && *s != ';' && *s != stop)
        s++;
    const char *e = s;
    while (e > p && blank(e[-1]))
        e--;
    cli_buf_put(&w, p, (size_t)(e - p));
    *pp = s;
    if (w.oom) {
        cli_buf_free(&w);
        return NULL;
    }
    return w.p;
}

static bool prefix(const char *p, const char *pre)
{
    return strncasecmp(p, pre, strlen(pre)) == 0;
}

/* The word and its ";type=", ";filename=" parameters, up to stop (',' after '@', else the end).
 * A content type runs to the first byte that cannot be in a token, and the parameters that
 * follow it and are not known (";charset=utf-8") belong to it, as in curl. *sep is what ended
 * the part. */
static int field_part(const char *p, char stop, char **data, char **type, char **filename,
                      char *sep, char *err, size_t errlen)
{
    *data = field_word(&p, stop);
    if (!*data)
        goto oom;
    const char *ct = NULL, *ct_end = NULL; /* the open content type */
    while (*p == ';') {
        p++;
        while (blank(*p))
            p++;
        if (!ct && prefix(p, "type=")) {
            p += 5;
            while (blank(*p))
                p++;
            ct = p;
            p += strcspn(p, "()<>@,;:\\\"[]?=\r\n ");
            ct_end = p;
        } else if (prefix(p, "filename=")) {
            p += 9;
            free(*filename);
            *filename = field_word(&p, stop);
            if (!*filename)
                goto oom;
            if (ct) {
                /* A filename closes the content type. */
                free(*type);
                *type = strndup(ct, (size_t)(ct_end - ct));
                if (!*type)
                    goto oom;
                ct = ct_end = NULL;
            }
        } else if (prefix(p, "headers=") || prefix(p, "encoder=")) {
            snprintf(err, errlen, "the %.*s parameter of a form field is not supported",
                     (int)strcspn(p, "="), p);
            return -EINVAL;
        } else if (ct) {
            for (; *p && *p != ';' && *p != stop; p++)
                if (!blank(*p))
                    ct_end = p + 1;
        } else {
            char *unknown = field_word(&p, stop);
            if (!unknown)
                goto oom;
            free(unknown); /* curl skips a parameter it does not know, with a warning */
        }
    }
    if (ct) {
        free(*type);
        *type = strndup(ct, (size_t)(ct_end - ct));
        if (!*type)
            goto oom;
    }
    *sep = *p;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
}

void cli_form_arg_free(cli_form_arg *a)
{
    free(a->name);
    free(a->value);
    free(a->type);
    free(a->filename);
    memset(a, 0, sizeof *a);
}

int cli_form_parse(const char *arg, bool literal, cli_form_arg *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *eq = strchr(arg, '=');
    if (!eq) {
        snprintf(err, errlen, "not name=content");
        return -EINVAL;
    }
    out->name = strndup(arg, (size_t)(eq - arg));
    if (!out->name)
        goto oom;
    const char *v = eq + 1;
    if (literal) {
        out->kind = CLI_FORM_TEXT;
        out->value = strdup(v);
        if (!out->value)
            goto oom;
        return 0;
    }
    char sep = 0;
    int rc;
    if (*v == '(' || (strcmp(v, ")") == 0 && eq == arg)) {
        snprintf(err, errlen, "nested multipart parts (\"(\" and \")\") are not supported");
        cli_form_arg_free(out);
        return -EINVAL;
    }
    if (*v == '@') {
        out->kind = CLI_FORM_FILE;
        rc = field_part(v + 1, ',', &out->value, &out->type, &out->filename, &sep, err, errlen);
        if (rc == 0 && sep == ',') {
            snprintf(err, errlen, "several files in one field (name=@a,b) are not supported");
            rc = -EINVAL;
        }
    } else if (*v == '<') {
        out->kind = CLI_FORM_CONTENT;
        rc = field_part(v + 1, 0, &out->value, &out->type, &out->filename, &sep, err, errlen);
        /* A field read from a file is a text field: curl takes no filename for it. */
        free(out->filename);
        out->filename = NULL;
    } else {
        out->kind = CLI_FORM_TEXT;
        rc = field_part(v, 0, &out->value, &out->type, &out->filename, &sep, err, errlen);
    }
    if (rc < 0) {
        cli_form_arg_free(out);
        return rc;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    cli_form_arg_free(out);
    return -ENOMEM;
}

const char *cli_form_guess_type(const char *filename)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {"gif", "image/gif"},       {"jpg", "image/jpeg"},    {"jpeg", "image/jpeg"},
        {"png", "image/png"},       {"svg", "image/svg+xml"}, {"txt", "text/plain"},
        {"htm", "text/html"},       {"html", "text/html"},    {"pdf", "application/pdf"},
        {"xml", "application/xml"},
    };
    const char *dot = filename ? strrchr(filename, '.') : NULL;
    if (dot)
        for (size_t i = 0; i < sizeof types / sizeof *types; i++)
            if (strcasecmp(dot + 1, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

/* ---- URLs ---- */

/* Where the authority of url starts and ends ("scheme://" is required). */
static bool authority(const char *url, const char **start, const char **end)
{
    const char *s = strstr(url, "://");
    if (!s)
        return false;
    s += 3;
    *start = s;
    *end = s + strcspn(s, "/?#");
    return true;
}

int cli_url_host(const char *url, char *host, size_t len, bool *userinfo)
{
    const char *a, *e;
    *userinfo = false;
    if (len)
        host[0] = 0;
    if (!authority(url, &a, &e))
        return -EINVAL;
    for (const char *s = e; s > a; s--)
        if (s[-1] == '@') {
            *userinfo = true;
            a = s;
            break;
        }
    const char *h = a, *he;
    if (*h == '[') {
        h++;
        he = memchr(h, ']', (size_t)(e - h));
        if (!he)
            return -EINVAL;
    } else {
        he = memchr(h, ':', (size_t)(e - h));
        if (!he)
            he = e;
    }
    size_t n = (size_t)(he - h);
    if (n >= len)
        return -ENAMETOOLONG;
    memcpy(host, h, n);
    host[n] = 0;
    return 0;
}

int cli_upload_url(const char *url, const char *file, cli_buf *out)
{
    cli_buf_reset(out);
    const char *a, *e;
    const char *path_end = NULL;
    if (authority(url, &a, &e))
        path_end = e + strcspn(e, "?#");
    /* No scheme (the library refuses the URL itself), a query (curl leaves such a URL as it
     * is), or a path that names a file. */
    if (!path_end || *path_end == '?' || (path_end > e && path_end[-1] != '/')) {
        cli_buf_puts(out, url);
        return out->oom ? -ENOMEM : 0;
    }
    /* The path has no file name: the local file's, encoded, after the last '/' or '\'. */
    const char *base = file;
    for (const char *s = file; *s; s++)
        if (*s == '/' || *s == '\\')
            base = s + 1;
    cli_buf_put(out, url, (size_t)(path_end - url));
    if (path_end == e)
        cli_buf_putc(out, '/');
    cli_urlencode(out, base, strlen(base));
    cli_buf_puts(out, path_end);
    if (out->oom)
        return -ENOMEM;
    return 1;
}
