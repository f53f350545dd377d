/* test-har.c: --har from synthetic results and raw heads: the document passes the HAR 1.2 schema
 * (Debian's node-har-validator, run by the script given as argv[1]) whatever bytes the heads hold,
 * and its members say what the results and heads said. */
#include "../tap.h"
#include "cli.h"

#include <json-c/json.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *validator;
static char tmpl[] = "/tmp/test-cli-har-XXXXXX";
static char path[64];
static int serial;

static cli_har *open_har(void)
{
    snprintf(path, sizeof path, "%s/%d.har", tmpl, serial++);
    cli_har *h = NULL;
    char err[200] = "";
    if (cli_har_open(&h, path, err, sizeof err) != 0)
        tap_diag("cli_har_open: %s", err);
    return h;
}

/* Run the validator on the current file: 1 valid, 0 not, -1 validator missing (skipped). */
static int validate(const char *what)
{
    if (!validator) {
        tap_skip("%s: no validator given", what);
        return -1;
    }
    char cmd[512];
    /* The validator's complaints go to stderr, into the test's log. */
    snprintf(cmd, sizeof cmd, "'%s' '%s' 1>&2", validator, path);
    int st = system(cmd);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (code == 77) {
        tap_skip("%s: the HAR validator is not installed (Debian: nodejs, node-har-validator)",
                 what);
        return -1;
    }
    tap_ok(code == 0, "%s", what);
    return code == 0;
}

static json_object *parse(void)
{
    json_object *o = json_object_from_file(path);
    if (!o)
        tap_diag("json-c cannot parse %s: %s", path, json_util_get_last_err());
    return o;
}

static json_object *get(json_object *o, const char *dotted)
{
    char buf[200];
    snprintf(buf, sizeof buf, "%s", dotted);
    for (char *k = strtok(buf, "."); k && o; k = strtok(NULL, ".")) {
        if (json_object_is_type(o, json_type_array))
            o = json_object_array_get_idx(o, (size_t)atoi(k));
        else if (!json_object_object_get_ex(o, k, &o))
            o = NULL;
    }
    return o;
}

static const char *str(json_object *o, const char *dotted)
{
    json_object *v = get(o, dotted);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "(none)";
}

static double num(json_object *o, const char *dotted)
{
    json_object *v = get(o, dotted);
    return v ? json_object_get_double(v) : NAN;
}

/* The value of the header named name in entry.<side>.headers, or "(none)". */
static const char *header(json_object *e, const char *side, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, "%s.headers", side);
    json_object *hs = get(e, key);
    for (size_t i = 0; hs && i < json_object_array_length(hs); i++) {
        json_object *h = json_object_array_get_idx(hs, i);
        if (strcmp(str(h, "name"), name) == 0)
            return str(h, "value");
    }
    return "(none)";
}

static const int64_t MS = 1000000;

/* A request over a new plain connection: queue 1 ms, DNS 2, connect 3, send 0.5, wait 4,
 * receive 5. */
static cli_result plain(uint64_t urlnum)
{
    cli_result r = {.urlnum = urlnum,
                    .url = "http://example.test/a?x=1",
                    .url_effective = "http://example.test/a?x=1&y=%41+b&empty=&flag#frag",
                    .method = "GET",
                    .http_code = 200,
                    .size_download = 5,
                    .size_decoded = 5,
                    .size_header = 100,
                    .time_queue = 1 * MS,
                    .time_namelookup = 3 * MS,
                    .time_connect = 6 * MS,
                    .time_appconnect = 0,
                    .time_pretransfer = 6 * MS + MS / 2,
                    .time_starttransfer = 10 * MS + MS / 2,
                    .time_total = 15 * MS + MS / 2,
                    .num_connects = 1,
                    .conn_id = 12,
                    .remote_ip = "192.0.2.7",
                    .remote_port = 80,
                    .attempts = 1,
                    .start_wall_ns = 1700000000LL * 1000000000 + 123456789,
                    .content_type = "text/plain"};
    return r;
}

static const char req_head[] = "GET /a?x=1&y=%41+b&empty=&flag HTTP/1.1\r\n"
                               "Host: example.test\r\n"
                               "User-Agent: asyncget/test\r\n"
                               "\r\n";
/* An interim response before the final one, and bytes no header should hold: the entry must
 * describe the final response, and stay valid JSON and valid UTF-8. */
static const char resp_heads[] =
    "HTTP/1.1 100 Continue\r\n\r\n"
    "HTTP/1.1 200 Fine \"thanks\"\r\n"
    "Content-Type: text/plain\r\n"
    "X-Hostile: \x1b[31m\"q\\\x01\x7f \xff\xc0\x80 \xed\xa0\x80 \xe2\x82\r\n"
    "X-Nul: a\0b\r\n"
    "Location: /next\r\n"
    "X-Empty:\r\n"
    "Content-Length: 5\r\n"
    "\r\n";

static void test_empty(void)
{
    cli_har *h = open_har();
    tap_ok(cli_har_close(h) == 0, "har_empty: closing a document with no entries succeeds");
    validate("har_empty_valid: a document with no entries passes the HAR schema");
    json_object *o = parse();
    tap_ok(o && json_object_array_length(get(o, "log.entries")) == 0 &&
               strcmp(str(o, "log.creator.name"), "asyncget") == 0 &&
               strcmp(str(o, "log.creator.version"), ag_version()) == 0 &&
               strcmp(str(o, "log.version"), "1.2") == 0,
           "har_empty: version 1.2, creator asyncget and the library's version, no entries");
    json_object_put(o);
}

static void test_entries(void)
{
    cli_har *h = open_har();
    /* 0: a plain exchange with an interim response and hostile header bytes. */
    cli_result r0 = plain(0);
    cli_har_add(h, &r0, req_head, sizeof req_head - 1, resp_heads, sizeof resp_heads - 1);
    /* 1: DNS failed: no connection, no heads. */
    cli_result r1 = plain(1);
    r1.url = r1.url_effective = "http://no such host.test/ü?q=\x01";
    r1.http_code = 0;
    r1.size_download = 0;
    r1.size_header = 0;
    r1.time_namelookup = r1.time_connect = r1.time_pretransfer = r1.time_starttransfer = 1 * MS;
    r1.time_total = 40 * MS;
    r1.conn_id = 0;
    r1.remote_ip = "";
    r1.remote_port = 0;
    r1.exitcode = 6;
    r1.error = -3001;
    r1.errormsg = "could not resolve \"no such host.test\"";
    r1.content_type = NULL;
    cli_har_add(h, &r1, NULL, 0, NULL, 0);
    /* 2: https over a new connection to an IPv6 address, a POST with a body. */
    cli_result r2 = plain(2);
    r2.url = r2.url_effective = "https://[::1]:8443/up";
    r2.method = "POST";
    r2.time_appconnect = 8 * MS;
    r2.time_pretransfer = 8 * MS;
    r2.tls_version = "TLSv1.3";
    r2.remote_ip = "::1";
    r2.http_code = 201;
    static const char post[] =
        "POST /up HTTP/1.1\r\nHost: [::1]:8443\r\nContent-Length: 11\r\n\r\n";
    static const char created[] = "HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\n";
    cli_har_add(h, &r2, post, sizeof post - 1, created, sizeof created - 1);
    /* 3: a reused connection: no DNS, connect or TLS. */
    cli_result r3 = plain(3);
    r3.reused = true;
    r3.http_code = 201;
    r3.num_connects = 0;
    r3.time_namelookup = r3.time_connect = r3.time_queue;
    r3.url = r3.url_effective = "https://example.test/again";
    /* A body that came coded: 5 bytes on the wire, 20 decoded. */
    r3.size_decoded = 20;
    cli_har_add(h, &r3, req_head, sizeof req_head - 1, created, sizeof created - 1);
    /* 4: a response that stopped halfway through its head, and a URL without a scheme; the
     * address given with brackets. */
    cli_result r4 = plain(4);
    r4.url = r4.url_effective = "example.test/x y";
    r4.http_code = 0;
    r4.exitcode = 8;
    r4.error = -2001;
    r4.errormsg = "bad response";
    r4.remote_ip = "[2001:db8::1]";
    static const char cut[] = "HTTP/1.1 200 OK\r\nX-Half: yes";
    cli_har_add(h, &r4, req_head, sizeof req_head - 1, cut, sizeof cut - 1);
    tap_ok(cli_har_close(h) == 0, "har_entries: close succeeds");
    validate("har_entries_valid: entries with interim responses, hostile header bytes, failures, "
             "TLS, IPv6 and a reused connection pass the HAR schema");

    json_object *o = parse();
    json_object *es = get(o, "log.entries");
    tap_ok(es && json_object_array_length(es) == 5, "har_entries: five entries, one per add");
    json_object *e0 = get(es, "0"), *e1 = get(es, "1"), *e2 = get(es, "2"), *e3 = get(es, "3"),
                *e4 = get(es, "4");

    tap_ok(strcmp(str(e0, "startedDateTime"), "2023-11-14T22:13:20.123456Z") == 0,
           "har_started: startedDateTime is the wall-clock start in RFC 3339 UTC (%s)",
           str(e0, "startedDateTime"));
    tap_ok(strcmp(str(e0, "request.method"), "GET") == 0 &&
               strcmp(str(e0, "request.httpVersion"), "HTTP/1.1") == 0 &&
               strcmp(header(e0, "request", "User-Agent"), "asyncget/test") == 0 &&
               num(e0, "request.headersSize") == sizeof req_head - 1 &&
               num(e0, "request.bodySize") == 0,
           "har_request: method, version, headers as sent, head size, no body");
    tap_ok(strcmp(str(e0, "request.url"), "http://example.test/a?x=1&y=%41+b&empty=&flag#frag") ==
                   0 &&
               strcmp(str(e0, "request.queryString.1.name"), "y") == 0 &&
               strcmp(str(e0, "request.queryString.1.value"), "A+b") == 0 &&
               strcmp(str(e0, "request.queryString.2.value"), "") == 0 &&
               strcmp(str(e0, "request.queryString.3.name"), "flag") == 0 &&
               json_object_array_length(get(e0, "request.queryString")) == 4,
           "har_query: the effective URL and its query decoded, up to the fragment");
    tap_ok(num(e0, "response.status") == 200 &&
               strcmp(str(e0, "response.statusText"), "Fine \"thanks\"") == 0 &&
               strcmp(str(e0, "response.httpVersion"), "HTTP/1.1") == 0 &&
               strcmp(str(e0, "response.redirectURL"), "/next") == 0 &&
               strcmp(str(e0, "response.content.mimeType"), "text/plain") == 0 &&
               num(e0, "response.content.size") == 5 && num(e0, "response.bodySize") == 5 &&
               num(e0, "response.headersSize") == sizeof resp_heads - 1 - 25,
           "har_response: the final head's status line, Location, sizes (the interim head left "
           "out)");
    tap_ok(!get(e0, "response.content.compression") && num(e3, "response.content.size") == 20 &&
               num(e3, "response.bodySize") == 5 && num(e3, "response.content.compression") == 15,
           "har_decoded_sizes: content.size is the decoded body, bodySize the wire's, "
           "content.compression the difference (none without a coding)");
    tap_ok(strcmp(header(e0, "response", "X-Hostile"),
                  "\x1b[31m\"q\\\x01\x7f \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
                  "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd") == 0 &&
               strcmp(header(e0, "response", "X-Empty"), "") == 0,
           "har_hostile: control bytes and quotes kept escaped, invalid UTF-8 as U+FFFD");
    json_object *nul = get(e0, "response.headers.2.value");
    tap_ok(nul && json_object_get_string_len(nul) == 3 &&
               memcmp(json_object_get_string(nul), "a\0b", 3) == 0,
           "har_hostile: a NUL in a header value survives as \\u0000");

    tap_ok(num(e0, "timings.blocked") == 1 && num(e0, "timings.dns") == 2 &&
               num(e0, "timings.connect") == 3 && num(e0, "timings.ssl") == -1 &&
               num(e0, "timings.send") == 0.5 && num(e0, "timings.wait") == 4 &&
               num(e0, "timings.receive") == 5 && num(e0, "time") == 15.5,
           "har_timings: phases from the cumulative times, ssl -1 without TLS, time their sum");
    tap_ok(strcmp(str(e0, "serverIPAddress"), "192.0.2.7") == 0 &&
               strcmp(str(e0, "connection"), "12") == 0,
           "har_server: serverIPAddress and the connection id as a string");

    tap_ok(num(e1, "response.status") == 0 && strcmp(str(e1, "response.statusText"), "") == 0 &&
               json_object_array_length(get(e1, "response.headers")) == 0 &&
               json_object_array_length(get(e1, "request.headers")) == 0 &&
               num(e1, "response.headersSize") == -1 && num(e1, "request.headersSize") == -1 &&
               get(e1, "serverIPAddress") == NULL && get(e1, "connection") == NULL &&
               strcmp(str(e1, "comment"), "could not resolve \"no such host.test\"") == 0,
           "har_failed: no response: status 0, empty fields, sizes -1, the error as comment");
    tap_ok(strcmp(str(e1, "request.url"), "http://no%20such%20host.test/%C3%BC?q=%01") == 0,
           "har_failed: a URL with spaces, non-ASCII and controls percent-encoded (%s)",
           str(e1, "request.url"));
    tap_ok(num(e1, "timings.blocked") == 1 && num(e1, "timings.dns") == 39 &&
               num(e1, "timings.connect") == -1 && num(e1, "timings.ssl") == -1 &&
               num(e1, "timings.send") == 0 && num(e1, "timings.wait") == 0 &&
               num(e1, "timings.receive") == 0 && num(e1, "time") == 40,
           "har_failed_timings: a DNS failure's time is in dns, later phases did not happen");

    tap_ok(num(e2, "timings.connect") == 5 && num(e2, "timings.ssl") == 2 &&
               num(e2, "timings.send") == 0 && num(e2, "timings.wait") == 2.5 &&
               strcmp(str(e2, "serverIPAddress"), "::1") == 0 &&
               strcmp(str(e2, "request.method"), "POST") == 0 &&
               num(e2, "request.bodySize") == 11 && num(e2, "response.status") == 201 &&
               strcmp(str(e2, "response.statusText"), "Created") == 0,
           "har_tls: ssl inside connect, IPv6 address, request body size from Content-Length");
    tap_ok(num(e3, "timings.dns") == -1 && num(e3, "timings.connect") == -1 &&
               num(e3, "timings.ssl") == -1 && num(e3, "timings.blocked") == 1 &&
               num(e3, "timings.send") == 5.5 && num(e3, "time") == 15.5,
           "har_reused: a reused connection has no dns, connect or ssl; the phases still add up");
    tap_ok(strcmp(str(e4, "request.url"), "http://example.test/x%20y") == 0 &&
               strcmp(str(e4, "serverIPAddress"), "2001:db8::1") == 0 &&
               num(e4, "response.status") == 200 &&
               strcmp(header(e4, "response", "X-Half"), "yes") == 0 &&
               num(e4, "timings.receive") == 5,
           "har_cut: a head cut short is still read, scheme guessed, brackets dropped");
    json_object_put(o);
}

/* The validator must be able to say no, or the tests above prove nothing. */
static void test_validator_rejects(void)
{
    snprintf(path, sizeof path, "%s/%d.har", tmpl, serial++);
    FILE *f = fopen(path, "w");
    fputs("{\"log\":{\"version\":\"1.2\",\"creator\":{\"name\":\"x\",\"version\":\"1\"},"
          "\"entries\":[{\"startedDateTime\":\"yesterday\",\"time\":1}]}}",
          f);
    fclose(f);
    if (!validator) {
        tap_skip("har_validator_rejects: no validator given");
        return;
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' '%s' >/dev/null 2>&1", validator, path);
    int st = system(cmd);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (code == 77)
        tap_skip("har_validator_rejects: the HAR validator is not installed");
    else
        tap_ok(code == 1, "har_validator_rejects: an invalid entry is rejected (exit %d)", code);
}

enum { THREADS = 4, PER = 200 };

static void *add_many(void *arg)
{
    cli_har *h = arg;
    for (int i = 0; i < PER; i++) {
        cli_result r = plain((uint64_t)i);
        cli_har_add(h, &r, req_head, sizeof req_head - 1, resp_heads, sizeof resp_heads - 1);
    }
    return NULL;
}

static void test_threads(void)
{
    cli_har *h = open_har();
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, add_many, h);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    tap_ok(cli_har_close(h) == 0, "har_threads: close succeeds");
    json_object *o = parse();
    tap_ok(o && json_object_array_length(get(o, "log.entries")) == THREADS * PER,
           "har_threads: %d threads adding at once make one document with every entry", THREADS);
    json_object_put(o);
    validate("har_threads_valid: the document written by threads passes the HAR schema");
}

static void test_errors(void)
{
    cli_har *h = NULL;
    char err[200] = "";
    int rc = cli_har_open(&h, "/nonexistent-dir/x.har", err, sizeof err);
    tap_ok(rc < 0 && !h && strstr(err, "/nonexistent-dir/x.har"),
           "har_open_error: a file that cannot be made is an error that names it");
    rc = cli_har_open(&h, "/dev/full", err, sizeof err);
    if (rc == 0) {
        cli_result r = plain(0);
        cli_har_add(h, &r, req_head, sizeof req_head - 1, resp_heads, sizeof resp_heads - 1);
        rc = cli_har_close(h);
    }
    tap_ok(rc < 0, "har_write_error: a full disk is reported (%d)", rc);
}

int main(int argc, char **argv)
{
    validator = argc > 1 ? argv[1] : NULL;
    if (!mkdtemp(tmpl)) {
        perror("mkdtemp");
        return 1;
    }
    test_empty();
    test_entries();
    test_validator_rejects();
    test_threads();
    test_errors();
    for (int i = 0; i < serial; i++) {
        snprintf(path, sizeof path, "%s/%d.har", tmpl, i);
        unlink(path);
    }
    rmdir(tmpl);
    return tap_done();
}
