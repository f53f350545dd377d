/* test-writeout: -w formats of cli/writeout.c, each variable and each corner of curl's grammar;
 * %header{} against a real response from a one-shot server on loopback. */
#include "cli.h"
#include "../tap.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static cli_result sample(void)
{
    cli_result r = {0};
    r.urlnum = 12;
    r.url = "http://example.test/a\\nb";
    r.url_effective = "http://example.test/final";
    r.method = "HEAD";
    r.http_code = 301;
    r.size_download = 5000000000u;
    r.size_header = 321;
    r.time_queue = 1500;
    r.time_namelookup = 2001000;
    r.time_connect = 3000000;
    r.time_appconnect = 4000999;
    r.time_pretransfer = 5000000;
    r.time_starttransfer = 6000000;
    r.time_total = 12345678901;
    r.num_connects = 2;
    r.num_redirects = 3;
    r.conn_id = 77;
    r.remote_ip = "127.0.0.1";
    r.remote_port = 8080;
    r.local_ip = "127.0.0.1";
    r.local_port = 50123;
    r.exitcode = 28;
    r.errormsg = "Operation timed out";
    r.tls_version = "TLSv1.3";
    r.tls_resumed = true;
    r.reused = false;
    r.attempts = 4;
    r.content_type = "text/html; charset=utf-8";
    r.start_wall_ns = INT64_C(1796000523) * 1000000000;
    return r;
}

/* Compile fmt, render r once; returns the output (static), or NULL when compiling failed. */
static const char *render(const char *fmt, const cli_result *r, const char **warning)
{
    static cli_buf b;
    static char warn[1024];
    char err[256];
    cli_wo *w;
    cli_buf_reset(&b);
    if (cli_wo_compile(fmt, &w, err, sizeof err) < 0)
        return NULL;
    cli_wo_render(w, r, &b);
    if (warning) {
        const char *wt = cli_wo_warning(w);
        snprintf(warn, sizeof warn, "%s", wt ? wt : "");
        *warning = wt ? warn : NULL;
    }
    cli_wo_free(w);
    return b.p ? b.p : "";
}

static void check(const char *name, const char *fmt, const cli_result *r, const char *want)
{
    const char *warn;
    const char *got = render(fmt, r, &warn);
    int ok = got && strcmp(got, want) == 0 && !warn;
    tap_ok(ok, "writeout_%s", name);
    if (!ok)
        tap_diag("fmt '%s': got '%s' want '%s' warning %s", fmt, got ? got : "(error)", want,
                 warn ? warn : "none");
}

static void test_variables(void)
{
    cli_result r = sample();
    static const struct {
        const char *fmt, *want;
    } cases[] = {
        {"%{http_code}", "301"},
        {"%{response_code}", "301"},
        {"%{time_queue}", "0.000001"},
        {"%{time_namelookup}", "0.002001"},
        {"%{time_connect}", "0.003000"},
        {"%{time_appconnect}", "0.004000"},
        {"%{time_pretransfer}", "0.005000"},
        {"%{time_starttransfer}", "0.006000"},
        {"%{time_total}", "12.345678"},
        {"%{size_download}", "5000000000"},
        {"%{size_header}", "321"},
        {"%{num_connects}", "2"},
        {"%{num_redirects}", "3"},
        {"%{remote_ip}", "127.0.0.1"},
        {"%{remote_port}", "8080"},
        {"%{local_ip}:%{local_port}", "127.0.0.1:50123"},
        {"%{url_effective}", "http://example.test/final"},
        {"%{url}", "http://example.test/a\\nb"},
        {"%{content_type}", "text/html; charset=utf-8"},
        {"%{exitcode}", "28"},
        {"%{errormsg}", "Operation timed out"},
        {"%{urlnum}", "12"},
        {"%{method}", "HEAD"},
        {"%{conn_id}", "77"},
        {"%{reused}", "false"},
        {"%{tls_version}", "TLSv1.3"},
        {"%{tls_resumed}", "true"},
        {"%{attempts}", "4"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "var_%.*s", (int)strlen(cases[i].fmt) - 3, cases[i].fmt + 2);
        check(name, cases[i].fmt, &r, cases[i].want);
    }

    /* %{json} is exactly the --jsonl object. */
    cli_buf j = {0};
    cli_result_json(&j, &r);
    check("var_json_is_result_json", "%{json}", &r, j.p);
    cli_buf_free(&j);

    /* Absent values: nothing, a three-digit code, the URL given as the effective one. */
    cli_result e = {0};
    e.url = "http://u/";
    check("http_code_zero_three_digits", "[%{http_code}]", &e, "[000]");
    e.http_code = 7;
    check("http_code_padded", "%{http_code}", &e, "007");
    check("null_strings_print_nothing",
          "[%{content_type}|%{errormsg}|%{remote_ip}|%{method}|%{tls_version}]", &e, "[||||]");
    check("url_effective_falls_back_to_url", "%{url_effective}", &e, "http://u/");
    /* The values are not read as format: a "\n" in the URL stays two characters. */
    check("values_not_unescaped", "%{url}", &r, "http://example.test/a\\nb");
    check("all_in_one", "%{http_code} %{time_total}s %{size_download}B\\n", &r,
          "301 12.345678s 5000000000B\n");
}

static void test_grammar(void)
{
    cli_result r = sample();
    check("empty_format", "", &r, "");
    check("plain_text", "hello", &r, "hello");
    check("percent_percent", "100%%", &r, "100%");
    check("percent_at_end", "50%", &r, "50%");
    check("percent_other", "%d%s %{http_code}", &r, "%d%s 301");
    check("brace_unterminated", "a%{http_code", &r, "a%{http_code");
    check("header_unterminated", "x%header{content-type", &r, "x%header{content-type");
    check("escapes", "a\\nb\\tc\\rd\\\\e", &r, "a\nb\tc\rd\\e");
    check("escape_unknown_kept", "\\x\\%{http_code}", &r, "\\x\\301");
    check("backslash_at_end", "end\\", &r, "end\\");
    check("escaped_backslash_then_n", "\\\\n", &r, "\\n");
    check("header_without_response", "[%header{content-type}]", &r, "[]");
    check("adjacent_vars", "%{http_code}%{exitcode}%{urlnum}", &r, "3012812");

    /* "%{%{http_code}" is a variable named "%{http_code": unknown, so a warning. */
    const char *warn;
    const char *got = render("%{%{http_code}", &r, &warn);
    tap_ok(got && warn && strcmp(warn, "unknown --write-out variable: '%{http_code'") == 0,
           "writeout_nested_brace_is_unknown_name (%s)", warn ? warn : "no warning");

    got = render("a%{bogus}b%{http_code}%{also_bad}", &r, &warn);
    tap_ok(got && strcmp(got, "ab301") == 0, "writeout_unknown_outputs_nothing (%s)",
           got ? got : "error");
    tap_ok(warn && strcmp(warn, "unknown --write-out variable: 'bogus'\n"
                                "unknown --write-out variable: 'also_bad'") == 0,
           "writeout_unknown_warns_each");
    if (warn) {
        char one[512];
        snprintf(one, sizeof one, "%s", warn);
        for (char *c = one; *c; c++)
            *c = *c == '\n' ? '|' : *c;
        tap_diag("warnings: %s", one);
    }
    got = render("%{}", &r, &warn);
    tap_ok(got && !*got && warn && strcmp(warn, "unknown --write-out variable: ''") == 0,
           "writeout_empty_name_unknown");
    got = render("%{HTTP_CODE}", &r, &warn);
    tap_ok(got && !*got && warn, "writeout_names_case_sensitive");

    /* Every byte value in the text passes through (NUL ends the C string). */
    char fmt[256];
    int n = 0;
    for (int c = 1; c < 256; c++) {
        if (c != '%' && c != '\\')
            fmt[n++] = (char)c;
    }
    fmt[n] = 0;
    check("every_byte_literal", fmt, &r, fmt);

    /* A long format: many pieces, one compile, appended to what b held. */
    cli_buf f = {0}, want = {0};
    for (int i = 0; i < 20000; i++) {
        cli_buf_puts(&f, "%{urlnum},");
        cli_buf_puts(&want, "12,");
    }
    check("long_format", f.p, &r, want.p);
    cli_buf_free(&f);
    cli_buf_free(&want);

    cli_wo *w;
    char err[128];
    cli_buf b = {0};
    cli_buf_puts(&b, "kept:");
    cli_wo_compile("%{http_code}", &w, err, sizeof err);
    cli_wo_render(w, &r, &b);
    cli_wo_render(w, &r, &b);
    tap_ok(strcmp(b.p, "kept:301301") == 0, "writeout_render_appends");
    /* Rendering is a walk over compiled pieces: measured, not bounded. */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cli_wo_free(w);
    cli_wo_compile("%{http_code} %{time_total} %{size_download} %{remote_ip}:%{remote_port}\\n", &w,
                   err, sizeof err);
    for (int i = 0; i < 200000; i++) {
        cli_buf_reset(&b);
        cli_wo_render(w, &r, &b);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
    tap_diag("render: %.0f ns per request (5 variables)", ns / 200000);
    tap_ok(strcmp(b.p, "301 12.345678 5000000000 127.0.0.1:8080\n") == 0,
           "writeout_render_many_same");
    cli_wo_free(w);
    cli_buf_free(&b);
}

static void test_files(void)
{
    cli_result r = sample();
    char path[] = "/tmp/test-wo-XXXXXX";
    int fd = mkstemp(path);
    const char *content = "code=%{http_code}\\n\r\nline2\\t%{exitcode}\n";
    if (write(fd, content, strlen(content)) != (ssize_t)strlen(content))
        tap_diag("short write");
    close(fd);
    char fmt[64];
    snprintf(fmt, sizeof fmt, "@%s", path);
    /* curl drops the line ends of the file; "\n" in the text is the newline written. */
    check("at_file", fmt, &r, "code=301\nline2\t28");

    /* "@-": the format from stdin. */
    int saved = dup(0);
    fd = open(path, O_RDONLY);
    dup2(fd, 0);
    close(fd);
    clearerr(stdin);
    check("at_stdin", "@-", &r, "code=301\nline2\t28");
    dup2(saved, 0);
    close(saved);
    clearerr(stdin);
    unlink(path);

    cli_wo *w = (cli_wo *)1;
    char err[256] = "";
    int rc = cli_wo_compile("@/nonexistent/dir/format", &w, err, sizeof err);
    tap_ok(rc == -1 && w == NULL && strstr(err, "/nonexistent/dir/format") &&
               strstr(err, "No such file"),
           "writeout_at_missing_file_error (%s)", err);
    rc = cli_wo_compile("@/", &w, err, sizeof err);
    tap_ok(rc == -1 && w == NULL, "writeout_at_directory_error (%s)", err);
    /* An empty file is an empty format. */
    rc = cli_wo_compile("@/dev/null", &w, err, sizeof err);
    cli_buf b = {0};
    if (rc == 0)
        cli_wo_render(w, &r, &b);
    tap_ok(rc == 0 && b.len == 0, "writeout_at_empty_file");
    cli_wo_free(w);
    cli_buf_free(&b);
    /* Only a leading "@" names a file. */
    check("at_inside_is_text", "a@b", &r, "a@b");
}

/* A server for one request on loopback: the child answers with resp and exits. */
static pid_t serve_once(const char *resp, int *port)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 1) < 0 ||
        getsockname(ls, (struct sockaddr *)&a, &al) < 0)
        return -1;
    *port = ntohs(a.sin_port);
    pid_t pid = fork();
    if (pid == 0) {
        int c = accept(ls, NULL, NULL);
        char buf[4096];
        size_t got = 0;
        while (got < sizeof buf - 1) {
            ssize_t n = read(c, buf + got, sizeof buf - 1 - got);
            if (n <= 0)
                break;
            got += (size_t)n;
            buf[got] = 0;
            if (strstr(buf, "\r\n\r\n"))
                break;
        }
        if (write(c, resp, strlen(resp)) < 0)
            _exit(1);
        shutdown(c, SHUT_WR);
        while (read(c, buf, sizeof buf) > 0)
            ;
        _exit(0);
    }
    close(ls);
    return pid;
}

static void test_header(void)
{
    const char *resp = "HTTP/1.1 200 OK\r\n"
                       "Content-Type: text/plain\r\n"
                       "X-Twice: first\r\n"
                       "x-twice: second\r\n"
                       "X-Spaced:   padded value  \r\n"
                       "Content-Length: 2\r\n"
                       "Connection: close\r\n"
                       "\r\n"
                       "ok";
    int port = 0;
    pid_t pid = serve_once(resp, &port);
    ag_loop *loop = NULL;
    ag_client *client = NULL;
    ag_client_opts opts;
    ag_response *res = NULL;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    int rc = -1;
    if (pid > 0 && ag_loop_new(&loop, NULL) == 0) {
        ag_client_opts_init(&opts);
        opts.loop = loop;
        if (ag_client_new(&client, &opts) == 0) {
            ag_request req;
            ag_request_init(&req);
            req.url = url;
            rc = ag_fetch(client, &req, &res);
        }
    }
    if (!tap_ok(rc == 0 && res && ag_response_status(res) == 200,
                "writeout_header_server_answers (%d)", rc)) {
        for (int i = 0; i < 6; i++)
            tap_skip("no response");
    } else {
        cli_result r = sample();
        r.resp = res;
        check("header_exact_name", "%header{Content-Type}", &r, "text/plain");
        check("header_case_insensitive", "%header{CONTENT-type}", &r, "text/plain");
        check("header_first_of_repeats", "%header{x-TWICE}", &r, "first");
        check("header_trimmed", "[%header{X-Spaced}]", &r, "[padded value]");
        check("header_missing_empty", "[%header{X-None}]", &r, "[]");
        check("header_with_vars", "%{http_code} %header{content-length}\\n", &r, "301 2\n");
    }
    ag_response_free(res);
    if (client)
        ag_client_free(client);
    if (loop)
        ag_loop_free(loop);
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
}

int main(void)
{
    test_variables();
    test_grammar();
    test_files();
    test_header();
    return tap_done();
}
