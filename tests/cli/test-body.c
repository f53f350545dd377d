/* test-body: the request-body options' syntax (cli/body.c) with curl's rules: the five forms of
 * --data-urlencode, -F fields with their parameters and quoting, the URL -T uploads to, and the
 * host .netrc is searched for. */
#include "cli.h"
#include "../tap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/ag-body.XXXXXX";
static char file[160];

/* The file of curl's own --data-urlencode test: bytes to encode and a trailing newline. */
static const char FILE_TEXT[] = "content to _?!#$'|<>\n";
#define FILE_ENC "content%20to%20_%3F%21%23%24%27%7C%3C%3E%0A"

static void urlencode_case(const char *name, const char *arg, int want_rc, const char *want)
{
    cli_buf b = {0};
    char err[200] = "";
    cli_buf_puts(&b, "");
    int rc = cli_urlencode_arg(&b, arg, err, sizeof err);
    bool ok = rc == want_rc && (rc < 0 ? err[0] != 0 : strcmp(b.p, want) == 0);
    tap_ok(ok, "urlencode_%s", name);
    if (!ok)
        tap_diag("arg %s: rc %d, got '%s' (want '%s'), err %s", arg, rc, b.p, want ? want : "",
                 err);
    cli_buf_free(&b);
}

static void urlencode_cases(void)
{
    char arg[300];
    /* content: all of it encoded (curl's test 1015). */
    urlencode_case("content", "my name is moo[]", 0, "my%20name%20is%20moo%5B%5D");
    /* =content: the '=' is dropped, the rest encoded, '=' and '&' included. */
    urlencode_case("eq_content", "=a b&c=d", 0, "a%20b%26c%3Dd");
    /* name=content: the name as it is, the content encoded. */
    urlencode_case("name_content", "y e s=s_i_r", 0, "y e s=s_i_r");
    urlencode_case("name_content_more_eq", "n=a=b&c", 0, "n=a%3Db%26c");
    /* Bytes above ASCII and the unreserved set. */
    urlencode_case("utf8_and_unreserved", "=\xc3\xa9-._~", 0, "%C3%A9-._~");
    /* @file: the whole file, newline included. */
    snprintf(arg, sizeof arg, "@%s", file);
    urlencode_case("at_file", arg, 0, FILE_ENC);
    /* name@file. */
    snprintf(arg, sizeof arg, "v_alue@%s", file);
    urlencode_case("name_at_file", arg, 0, "v_alue=" FILE_ENC);
    /* The first of '=' and '@' decides: "a=b@c" is name=content. */
    urlencode_case("eq_before_at", "a=b@c", 0, "a=b%40c");
    /* A file that cannot be read fails with its errno and a message. */
    urlencode_case("missing_file", "n@/nonexistent/ag-body", -ENOENT, NULL);
    /* Empty content. */
    urlencode_case("empty", "", 0, "");
}

static void form_case(const char *name, const char *arg, bool literal, int want_rc, int kind,
                      const char *fname, const char *value, const char *type, const char *filename)
{
    cli_form_arg a;
    char err[200] = "";
    int rc = cli_form_parse(arg, literal, &a, err, sizeof err);
    bool ok = rc == want_rc;
    if (ok && rc == 0) {
        ok = a.kind == kind && strcmp(a.name, fname) == 0 && strcmp(a.value, value) == 0 &&
             (type ? a.type && strcmp(a.type, type) == 0 : a.type == NULL) &&
             (filename ? a.filename && strcmp(a.filename, filename) == 0 : a.filename == NULL);
    } else if (ok) {
        ok = err[0] != 0;
    }
    tap_ok(ok, "form_%s", name);
    if (!ok)
        tap_diag("arg %s: rc %d kind %d name '%s' value '%s' type '%s' filename '%s' err '%s'", arg,
                 rc, rc == 0 ? a.kind : 0, rc == 0 ? a.name : "", rc == 0 ? a.value : "",
                 rc == 0 && a.type ? a.type : "(null)",
                 rc == 0 && a.filename ? a.filename : "(null)", err);
    if (rc == 0)
        cli_form_arg_free(&a);
}

static void form_cases(void)
{
    form_case("text", "a=b", false, 0, CLI_FORM_TEXT, "a", "b", NULL, NULL);
    /* Blanks around an unquoted word go. */
    form_case("text_trimmed", "a=  b c  ", false, 0, CLI_FORM_TEXT, "a", "b c", NULL, NULL);
    form_case("text_type", "a=b;type=text/foo", false, 0, CLI_FORM_TEXT, "a", "b", "text/foo",
              NULL);
    /* A quoted content keeps ';' and its blanks; \" and \\ are escapes. */
    form_case("text_quoted", "a=\" x;\\\"y\\\\ \";type=t/u", false, 0, CLI_FORM_TEXT, "a",
              " x;\"y\\ ", "t/u", NULL);
    /* An unterminated quote is part of a plain word. */
    form_case("text_unterminated_quote", "a=\"xy", false, 0, CLI_FORM_TEXT, "a", "\"xy", NULL,
              NULL);
    form_case("no_name", "=v", false, 0, CLI_FORM_TEXT, "", "v", NULL, NULL);
    form_case("file", "f=@dir/x.txt", false, 0, CLI_FORM_FILE, "f", "dir/x.txt", NULL, NULL);
    /* The parameters after type= that are not known belong to the content type. */
    form_case("file_type_params", "f=@x;type=text/foo; charset=utf-8", false, 0, CLI_FORM_FILE, "f",
              "x", "text/foo; charset=utf-8", NULL);
    form_case("file_filename", "f=@x;filename=y.png", false, 0, CLI_FORM_FILE, "f", "x", NULL,
              "y.png");
    form_case("file_type_then_filename", "f=@x;type=image/png;filename=p.png", false, 0,
              CLI_FORM_FILE, "f", "x", "image/png", "p.png");
    form_case("file_filename_then_type", "f=@x;filename=p;type=t/u", false, 0, CLI_FORM_FILE, "f",
              "x", "t/u", "p");
    /* Quoted path and filename may hold ',' and ';'. */
    form_case("file_quoted", "f=@\"my;file,x\";filename=\"n;m,o\"", false, 0, CLI_FORM_FILE, "f",
              "my;file,x", NULL, "n;m,o");
    /* Parameter names ignore case; an unknown parameter is skipped. */
    form_case("param_case_unknown", "f=@x;FileName=n;color=red;TYPE=a/b", false, 0, CLI_FORM_FILE,
              "f", "x", "a/b", "n");
    form_case("stdin_file", "f=@-", false, 0, CLI_FORM_FILE, "f", "-", NULL, NULL);
    /* <file: a text field read from a file; no filename. */
    form_case("content_file", "c=<x.txt;type=text/plain", false, 0, CLI_FORM_CONTENT, "c", "x.txt",
              "text/plain", NULL);
    form_case("content_file_no_filename", "c=<x;filename=n", false, 0, CLI_FORM_CONTENT, "c", "x",
              NULL, NULL);
    /* --form-string: everything after '=' as it is. */
    form_case("literal", "s=@x;type=y <z", true, 0, CLI_FORM_TEXT, "s", "@x;type=y <z", NULL, NULL);
    form_case("no_equals", "abc", false, -EINVAL, 0, NULL, NULL, NULL, NULL);
    form_case("literal_no_equals", "abc", true, -EINVAL, 0, NULL, NULL, NULL, NULL);
    form_case("several_files_refused", "f=@a,b", false, -EINVAL, 0, NULL, NULL, NULL, NULL);
    form_case("headers_refused", "f=x;headers=@h", false, -EINVAL, 0, NULL, NULL, NULL, NULL);
    form_case("encoder_refused", "f=@x;encoder=base64", false, -EINVAL, 0, NULL, NULL, NULL, NULL);
    form_case("nested_refused", "f=(;type=multipart/mixed", false, -EINVAL, 0, NULL, NULL, NULL,
              NULL);

    tap_ok(strcmp(cli_form_guess_type("a/b.PNG"), "image/png") == 0 &&
               strcmp(cli_form_guess_type("x.txt"), "text/plain") == 0 &&
               strcmp(cli_form_guess_type("x"), "application/octet-stream") == 0 &&
               strcmp(cli_form_guess_type("x.tar.gz"), "application/octet-stream") == 0,
           "form_guess_type");
}

static void upload_case(const char *name, const char *url, const char *f, int want_rc,
                        const char *want)
{
    cli_buf b = {0};
    int rc = cli_upload_url(url, f, &b);
    bool ok = rc == want_rc && b.p && strcmp(b.p, want) == 0;
    tap_ok(ok, "upload_url_%s", name);
    if (!ok)
        tap_diag("%s + %s: rc %d, '%s' (want '%s')", url, f, rc, b.p ? b.p : "", want);
    cli_buf_free(&b);
}

static void upload_cases(void)
{
    upload_case("slash", "http://h/", "dir/file.txt", 1, "http://h/file.txt");
    /* No path at all: a '/' and the name. */
    upload_case("no_path", "http://h:8080", "file.txt", 1, "http://h:8080/file.txt");
    upload_case("dir_slash", "http://h/d/", "file.txt", 1, "http://h/d/file.txt");
    /* A path naming a file is kept. */
    upload_case("named", "http://h/d/name", "file.txt", 0, "http://h/d/name");
    /* A query: curl keeps the URL. */
    upload_case("query", "http://h/d/?q=1", "file.txt", 0, "http://h/d/?q=1");
    /* A fragment stays after the new name. */
    upload_case("fragment", "http://h/d/#f", "file.txt", 1, "http://h/d/file.txt#f");
    /* The name is percent-encoded; backslashes separate directories too. */
    upload_case("encoded", "http://h/", "a b&c.txt", 1, "http://h/a%20b%26c.txt");
    upload_case("backslash", "http://h/", "C:\\dir\\x.bin", 1, "http://h/x.bin");
    /* A '?' inside the fragment is no query. */
    upload_case("question_in_fragment", "http://h/#a?b", "x", 1, "http://h/x#a?b");
}

static void host_case(const char *name, const char *url, int want_rc, const char *want,
                      bool want_ui)
{
    char host[64];
    bool ui = !want_ui;
    int rc = cli_url_host(url, host, sizeof host, &ui);
    bool ok = rc == want_rc && (rc < 0 || (strcmp(host, want) == 0 && ui == want_ui));
    tap_ok(ok, "url_host_%s", name);
    if (!ok)
        tap_diag("%s: rc %d host '%s' userinfo %d", url, rc, host, ui);
}

static void host_cases(void)
{
    host_case("userinfo", "http://user:pw@Host.Example:8080/x", 0, "Host.Example", true);
    host_case("ipv6", "http://[::1]:80/", 0, "::1", false);
    host_case("bare", "https://h", 0, "h", false);
    /* An '@' after the authority is not userinfo. */
    host_case("at_in_path", "http://h/p@q?r@s", 0, "h", false);
    host_case("not_a_url", "h/p", -EINVAL, NULL, false);
}

int main(void)
{
    tap_plan(10 + 24 + 9 + 5);
    if (!mkdtemp(dir))
        return 1;
    snprintf(file, sizeof file, "%s/1015.txt", dir);
    FILE *f = fopen(file, "w");
    fputs(FILE_TEXT, f);
    fclose(f);
    urlencode_cases();
    form_cases();
    upload_cases();
    host_cases();
    unlink(file);
    rmdir(dir);
    return tap_done();
}
