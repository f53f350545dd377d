/* test-netrc: .netrc files read as curl reads them (cli/netrc.c): entries, default, quotes and
 * escapes, macdef blocks, comments, entries with a field missing, and malformed files. */
#include "cli.h"
#include "../tap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *name;
    const char *text;
    const char *host;
    int rc;
    const char *login, *password; /* password NULL: none */
} cases[] = {
    /* One entry on one line. */
    {"one_line", "machine h.example login u password p\n", "h.example", 1, "u", "p"},
    /* The host's entry after others, one token per line, with tabs and CRLF line ends. */
    {"multi_line_crlf",
     "machine other\r\n\tlogin o\r\n\tpassword q\r\nmachine h\r\n\tlogin u\r\n"
     "\tpassword p\r\n",
     "h", 1, "u", "p"},
    /* Keywords and host names compare ignoring case. */
    {"case_insensitive", "MACHINE H.Example LOGIN u PASSWORD p", "h.example", 1, "u", "p"},
    /* No entry for the host: none found. */
    {"no_match", "machine other login u password p\n", "h", 0, NULL, NULL},
    /* default answers for any host the entries before it do not name. */
    {"default_other_host", "machine x login a password b\ndefault login d password e\n", "y", 1,
     "d", "e"},
    {"default_after_named", "machine x login a password b\ndefault login d password e\n", "x", 1,
     "a", "b"},
    /* The first entry that answers wins, a default before a machine entry too (curl's order). */
    {"default_first_wins", "default login d password e\nmachine x login a password b\n", "x", 1,
     "d", "e"},
    /* Quoted tokens hold blanks; \" \\ \n \t \r and \X inside them. */
    {"quoted", "machine h login \"user name\" password \"p\\\"w\\\\d\\n\\t\\r\\x\"\n", "h", 1,
     "user name", "p\"w\\d\n\t\rx"},
    /* A quoted empty login. */
    {"quoted_empty", "machine h login \"\" password p\n", "h", 1, "", "p"},
    /* An unterminated quote is a syntax error. */
    {"unterminated_quote", "machine h login \"abc\n", "h", -EINVAL, NULL, NULL},
    /* A macdef block, up to the empty line, is skipped: its lines are not entries. */
    {"macdef_skipped",
     "macdef init\nmachine h login evil password evil\n\nmachine h login u "
     "password p\n",
     "h", 1, "u", "p"},
    /* A macdef ends the entry before it. */
    {"macdef_ends_entry", "machine h login u password p\nmacdef m\nlogin x\n\n", "h", 1, "u", "p"},
    /* Comment lines, indented or not, are dropped. */
    {"comments",
     "# machine h login c password c\n  # machine h login d password d\nmachine h "
     "login u password p\n",
     "h", 1, "u", "p"},
    /* A login without a password: found, no password. */
    {"login_only", "machine h login u\n", "h", 1, "u", NULL},
    /* A password without a login: found, with an empty user name. */
    {"password_only", "machine h password p\n", "h", 1, "", "p"},
    /* An entry with neither does not answer: the next one for the host does. */
    {"empty_entry_skipped", "machine h\nmachine h login u password p\n", "h", 1, "u", "p"},
    /* A value is taken as it is, even when it reads like a keyword. */
    {"keyword_values", "machine h login default password machine\n", "h", 1, "default", "machine"},
    /* account is read and ignored. */
    {"account_ignored", "machine h account acct login u password p\n", "h", 1, "u", "p"},
    /* Unknown tokens are skipped. */
    {"unknown_skipped", "machine h port 21 login u password p\n", "h", 1, "u", "p"},
    /* A login cut off by the end of the file: nothing to use. */
    {"login_at_eof", "machine h login", "h", 0, NULL, NULL},
    /* machine at the end of the file. */
    {"machine_at_eof", "machine", "h", 0, NULL, NULL},
    /* An empty file. */
    {"empty", "", "h", 0, NULL, NULL},
    /* Another host's fields do not leak into the host's entry. */
    {"no_leak_between_entries", "machine x login a password b\nmachine h login u\n", "h", 1, "u",
     NULL},
};

static void file_cases(void)
{
    char dir[] = "/tmp/ag-netrc.XXXXXX";
    if (!mkdtemp(dir)) {
        tap_ok(0, "netrc_read_file (mkdtemp failed)");
        return;
    }
    char path[128];
    snprintf(path, sizeof path, "%s/netrc", dir);
    FILE *f = fopen(path, "w");
    fputs("machine h login u password p\n", f);
    fclose(f);
    char *text = NULL;
    int rc = cli_netrc_read(path, &text);
    tap_ok(rc == 0 && text && strcmp(text, "machine h login u password p\n") == 0,
           "netrc_read_file");
    free(text);
    unlink(path);
    rc = cli_netrc_read(path, &text);
    tap_ok(rc == -ENOENT && text == NULL, "netrc_read_missing_is_enoent (rc %d)", rc);
    rc = cli_netrc_read(dir, &text);
    tap_ok(rc == -EISDIR, "netrc_read_directory_refused (rc %d)", rc);
    rmdir(dir);

    /* $NETRC names the file; else $HOME/.netrc. */
    char *p = NULL;
    setenv("NETRC", "/some/where", 1);
    rc = cli_netrc_default_path(&p);
    tap_ok(rc == 0 && p && strcmp(p, "/some/where") == 0, "netrc_default_path_env_netrc");
    free(p);
    unsetenv("NETRC");
    setenv("HOME", "/home/someone", 1);
    rc = cli_netrc_default_path(&p);
    tap_ok(rc == 0 && p && strcmp(p, "/home/someone/.netrc") == 0, "netrc_default_path_home");
    free(p);
}

int main(void)
{
    size_t n = sizeof cases / sizeof *cases;
    tap_plan((int)n + 5);
    for (size_t i = 0; i < n; i++) {
        char *login = NULL, *password = NULL;
        int rc = cli_netrc_find(cases[i].text, cases[i].host, &login, &password);
        bool ok = rc == cases[i].rc;
        if (ok && rc == 1) {
            ok = login && strcmp(login, cases[i].login) == 0;
            if (cases[i].password)
                ok = ok && password && strcmp(password, cases[i].password) == 0;
            else
                ok = ok && password == NULL;
        } else if (ok) {
            ok = login == NULL && password == NULL;
        }
        tap_ok(ok, "netrc_%s", cases[i].name);
        if (!ok)
            tap_diag("rc %d (want %d), login %s, password %s", rc, cases[i].rc,
                     login ? login : "(null)", password ? password : "(null)");
        free(login);
        free(password);
    }
    file_cases();
    return tap_done();
}
