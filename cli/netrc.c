/* netrc.c: credentials from a .netrc file (--netrc, --netrc-optional, --netrc-file), read the way
 * curl reads them: machine, default, login, password and account entries, macdef blocks
 * skipped, quoted tokens with backslash escapes, comment lines dropped. */
#include "cli.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Files larger than this are refused rather than read whole (curl's limit is the same order). */
#define NETRC_MAX (1024 * 1024)

int cli_netrc_read(const char *path, char **out)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return -errno;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return -EISDIR;
    }
    cli_buf b = {0};
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        cli_buf_put(&b, chunk, got);
        if (b.len > NETRC_MAX) {
            fclose(f);
            cli_buf_free(&b);
            return -EFBIG;
        }
    }
    int rc = ferror(f) ? -EIO : 0;
    fclose(f);
    cli_buf_puts(&b, ""); /* an empty file is an empty text, not NULL */
    if (b.oom)
        rc = -ENOMEM;
    if (rc < 0) {
        cli_buf_free(&b);
        return rc;
    }
    *out = b.p;
    return 0;
}

int cli_netrc_default_path(char **out)
{
    *out = NULL;
    const char *env = getenv("NETRC");
    if (env && *env) {
        *out = strdup(env);
        return *out ? 0 : -ENOMEM;
    }
    const char *home = getenv("HOME");
    if (!home || !*home) {
        struct passwd *pw = getpwuid(geteuid());
        home = pw ? pw->pw_dir : NULL;
    }
    if (!home || !*home)
        return -ENOENT;
    cli_buf b = {0};
    cli_buf_printf(&b, "%s/.netrc", home);
    if (b.oom) {
        cli_buf_free(&b);
        return -ENOMEM;
    }
    *out = b.p;
    return 0;
}

/* The text without its comment lines (the first byte other than a blank is '#'). */
static char *drop_comments(const char *text)
{
    cli_buf b = {0};
    cli_buf_puts(&b, "");
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
        const char *q = p;
        while (q < p + n && (*q == ' ' || *q == '\t'))
            q++;
        if (q == p + n || *q != '#')
            cli_buf_put(&b, p, n);
        p += n;
    }
    if (b.oom) {
        cli_buf_free(&b);
        return NULL;
    }
    return b.p;
}

enum tok { T_EOF, T_WORD, T_QUOTED, T_BAD };

typedef struct lexer {
    const char *p;
    cli_buf word;
} lexer;

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The next token into lx->word: a quoted one has its escapes resolved (\n, \r, \t, and any
 * other byte after a backslash stands for itself); an unterminated quote is T_BAD. */
static enum tok next(lexer *lx)
{
    cli_buf_reset(&lx->word);
    cli_buf_puts(&lx->word, "");
    while (is_space(*lx->p))
        lx->p++;
    if (!*lx->p)
        return T_EOF;
    if (*lx->p == '"') {
        const char *s = lx->p + 1;
        for (; *s; s++) {
            char c = *s;
            if (c == '"') {
                lx->p = s + 1;
                return T_QUOTED;
            }
            if (c == '\\' && s[1]) {
                c = *++s;
                c = c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : c;
            }
            cli_buf_putc(&lx->word, c);
        }
        lx->p = s;
        return T_BAD;
    }
    const char *s = lx->p;
    while (*s && !is_space(*s))
        s++;
    cli_buf_put(&lx->word, lx->p, (size_t)(s - lx->p));
    lx->p = s;
    return T_WORD;
}

/* After macdef: everything up to the first empty line is the macro. */
static void skip_macro(lexer *lx)
{
    const char *s = lx->p;
    while (*s) {
        if (*s++ != '\n')
            continue;
        while (*s == '\r')
            s++;
        if (*s == '\n')
            break;
    }
    lx->p = s;
}

static bool keyword(const lexer *lx, enum tok t, const char *kw)
{
    return t == T_WORD && strcasecmp(lx->word.p, kw) == 0;
}

int cli_netrc_find(const char *text, const char *host, char **login, char **password)
{
    *login = *password = NULL;
    char *clean = drop_comments(text);
    if (!clean)
        return -ENOMEM;
    lexer lx = {.p = clean};
    char *lg = NULL, *pw = NULL;
    bool matches = false;
    int rc = 0;
    for (;;) {
        enum tok t = next(&lx);
        if (t == T_BAD) {
            rc = -EINVAL;
            break;
        }
        bool ends = t == T_EOF || keyword(&lx, t, "machine") || keyword(&lx, t, "default") ||
                    keyword(&lx, t, "macdef");
        if (ends) {
            /* The entry before ends: it answers when it is for this host and says something. */
            if (matches && (lg || pw)) {
                rc = 1;
                break;
            }
            free(lg);
            free(pw);
            lg = pw = NULL;
            matches = false;
        }
        if (t == T_EOF)
            break;
        if (keyword(&lx, t, "machine")) {
            t = next(&lx);
            if (t == T_BAD) {
                rc = -EINVAL;
                break;
            }
            if (t == T_EOF)
                break;
            matches = strcasecmp(lx.word.p, host) == 0;
        } else if (keyword(&lx, t, "default")) {
            matches = true;
        } else if (keyword(&lx, t, "macdef")) {
            skip_macro(&lx);
        } else if (keyword(&lx, t, "login") || keyword(&lx, t, "password") ||
                   keyword(&lx, t, "account")) {
            char **dst = keyword(&lx, t, "login") ? &lg : keyword(&lx, t, "password") ? &pw : NULL;
            t = next(&lx);
            if (t == T_BAD) {
                rc = -EINVAL;
                break;
            }
            if (t == T_EOF)
                continue; /* the loop sees the end again and closes the entry */
            if (dst && matches) {
                free(*dst);
                *dst = strdup(lx.word.p);
                if (!*dst || lx.word.oom) {
                    rc = -ENOMEM;
                    break;
                }
            }
        }
        /* Any other token is skipped, as curl does. */
    }
    if (lx.word.oom && rc >= 0)
        rc = -ENOMEM;
    if (rc == 1) {
        /* An entry with a password and no login gives an empty user name. */
        *login = lg ? lg : strdup("");
        *password = pw;
        if (!*login) {
            free(pw);
            *password = NULL;
            rc = -ENOMEM;
        }
    } else {
        free(lg);
        free(pw);
    }
    cli_buf_free(&lx.word);
    free(clean);
    return rc;
}
