/* test-cookie-httpbin.c: a client's cookie jar against httpbin, through the public API only:
 * /cookies/set stores (also on the redirect it answers with), /cookies and /headers show what
 * was sent, no_cookies, a caller's own Cookie header merged into one field, cross-origin
 * redirects (127.0.0.1 and localhost are different hosts), one jar shared by two clients. */
#include "tests/http/echo.h"

#include <pthread.h>
#include <stdbool.h>

static int port;

static ag_client *new_client(ag_cookie_jar *jar)
{
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.cookie_jar = jar;
    ag_client *c = NULL;
    if (ag_client_new(&c, &o) < 0) {
        printf("Bail out! ag_client_new\n");
        exit(1);
    }
    return c;
}

static ag_cookie_jar *new_jar(void)
{
    ag_cookie_jar *jar = NULL;
    if (ag_cookie_jar_new(&jar) < 0) {
        printf("Bail out! ag_cookie_jar_new\n");
        exit(1);
    }
    return jar;
}

/* The body on one line, for a TAP description (static buffer). */
static const char *body1(const ag_response *r)
{
    static char v[512];
    const char *b = r ? ag_response_body(r, NULL) : NULL;
    size_t n = 0;
    for (; b && *b && n + 1 < sizeof v; b++)
        if (*b != ' ')
            v[n++] = *b == '\n' ? ' ' : *b;
    v[n] = 0;
    return b ? v : "none";
}

typedef struct opts {
    int no_redirects, no_cookies;
    const char *cookie; /* the caller's own Cookie header, or NULL */
} opts;

static ag_response *fetch(ag_client *c, const char *url, opts o, int *rc)
{
    ag_request req;
    ag_request_init(&req);
    req.url = url;
    req.no_redirects = o.no_redirects;
    req.no_cookies = o.no_cookies;
    ag_header h = {"Cookie", o.cookie};
    if (o.cookie) {
        req.headers = &h;
        req.nheaders = 1;
    }
    ag_response *r = NULL;
    *rc = ag_fetch(c, &req, &r);
    return r;
}

/* The Cookie value /headers (or /anything) echoed, "" when none came (static buffer). */
static const char *echoed_cookie(const ag_response *r)
{
    static char v[1024];
    char *s = r ? json_str(ag_response_body(r, NULL), "Cookie", NULL) : NULL;
    snprintf(v, sizeof v, "%s", s ? s : "");
    free(s);
    return v;
}

/* The value /cookies shows for name, "" when it has none (rotating static buffers). */
static const char *shown(const ag_response *r, const char *name)
{
    static char v[4][256];
    static int next;
    char *b = v[next++ % 4];
    char *s = r ? json_str(ag_response_body(r, NULL), name, NULL) : NULL;
    snprintf(b, sizeof v[0], "%s", s ? s : "");
    free(s);
    return b;
}

static void set_then_sent(void)
{
    ag_cookie_jar *jar = new_jar();
    ag_client *c = new_client(jar);
    int rc;
    /* Only the 302 of /cookies/set: its Set-Cookie is stored. */
    ag_response *r = fetch(c, url_of(port, "/cookies/set?name=value"), (opts){1, 0, NULL}, &rc);
    int status = ag_response_status(r);
    ag_response_free(r);
    size_t n = ag_cookie_jar_count(jar);
    r = fetch(c, url_of(port, "/cookies"), (opts){0}, &rc);
    tap_ok(rc == 0 && status == 302 && n == 1 && strcmp(shown(r, "name"), "value") == 0,
           "cookie_httpbin_set_then_sent: /cookies shows name=value (status %d, %zu in the jar, "
           "body %s)",
           status, n, body1(r));
    ag_response_free(r);
    ag_client_free(c);
    ag_cookie_jar_free(jar);
}

static void redirect_carries(void)
{
    ag_cookie_jar *jar = new_jar();
    ag_client *c = new_client(jar);
    int rc;
    /* /cookies/set answers 302 with the cookies, to /cookies: the next hop sends them. */
    ag_response *r = fetch(c, url_of(port, "/cookies/set?a=1&b=two"), (opts){0}, &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 200 && ag_response_redirects(r) == 1 &&
               strcmp(shown(r, "a"), "1") == 0 && strcmp(shown(r, "b"), "two") == 0,
           "cookie_httpbin_redirect_carries: the redirect's cookies reach its next hop (%s)",
           body1(r));
    ag_response_free(r);
    /* /cookies/delete answers with expired cookies: the jar forgets them. */
    r = fetch(c, url_of(port, "/cookies/delete?a"), (opts){0}, &rc);
    tap_ok(rc == 0 && strcmp(shown(r, "a"), "") == 0 && strcmp(shown(r, "b"), "two") == 0 &&
               ag_cookie_jar_count(jar) == 1,
           "cookie_httpbin_delete: an expired Set-Cookie removes the cookie (%zu left, %s)",
           ag_cookie_jar_count(jar), body1(r));
    ag_response_free(r);
    ag_client_free(c);
    ag_cookie_jar_free(jar);
}

static void no_cookies(void)
{
    ag_cookie_jar *jar = new_jar();
    ag_client *c = new_client(jar);
    int rc;
    ag_response *r = fetch(c, url_of(port, "/cookies/set?x=1"), (opts){0, 1, NULL}, &rc);
    bool stored = ag_cookie_jar_count(jar) != 0;
    bool sent = strcmp(shown(r, "x"), "") != 0;
    ag_response_free(r);
    ag_cookie_jar_set(jar, url_of(port, "/"), "y=2");
    r = fetch(c, url_of(port, "/headers"), (opts){0, 1, NULL}, &rc);
    const char *echo = echoed_cookie(r);
    tap_ok(rc == 0 && !stored && !sent && strcmp(echo, "") == 0,
           "cookie_httpbin_no_cookies: neither stored nor sent (stored %d, sent %d, Cookie \"%s\")",
           stored, sent, echo);
    ag_response_free(r);
    /* A client without a jar still sends the caller's own Cookie header. */
    ag_client *plain = new_client(NULL);
    r = fetch(plain, url_of(port, "/headers"), (opts){0, 0, "own=1"}, &rc);
    echo = echoed_cookie(r);
    tap_ok(rc == 0 && strcmp(echo, "own=1") == 0,
           "cookie_httpbin_no_jar_caller_cookie: without a jar the caller's Cookie goes (\"%s\")",
           echo);
    ag_response_free(r);
    ag_client_free(plain);
    ag_client_free(c);
    ag_cookie_jar_free(jar);
}

static void merged_with_caller(void)
{
    ag_cookie_jar *jar = new_jar();
    ag_client *c = new_client(jar);
    int rc;
    ag_cookie_jar_set(jar, url_of(port, "/"), "a=1");
    ag_cookie_jar_set(jar, url_of(port, "/"), "b=2; Path=/headers");
    ag_response *r = fetch(c, url_of(port, "/headers"), (opts){0, 0, "own=x; own2=y"}, &rc);
    const char *echo = echoed_cookie(r);
    tap_ok(rc == 0 && strcmp(echo, "own=x; own2=y; b=2; a=1") == 0,
           "cookie_httpbin_merged_one_field: the caller's Cookie first, then the jar's, in one "
           "field (\"%s\")",
           echo);
    ag_response_free(r);
    ag_client_free(c);
    ag_cookie_jar_free(jar);
}

static void cross_origin(void)
{
    ag_cookie_jar *jar = new_jar();
    ag_client *c = new_client(jar);
    int rc;
    char url[256], path[256];
    snprintf(url, sizeof url, "http://localhost:%d/cookies/set?l=1", port);
    ag_response *r = fetch(c, url, (opts){1, 0, NULL}, &rc);
    ag_response_free(r);
    ag_cookie_jar_set(jar, url_of(port, "/"), "ip=1");
    /* 127.0.0.1 -> localhost: the caller's Cookie stays behind (another origin), the jar's
     * cookie for 127.0.0.1 does not match localhost, localhost's own does. */
    snprintf(path, sizeof path, "/redirect-to?url=http://localhost:%d/headers", port);
    r = fetch(c, url_of(port, path), (opts){0, 0, "own=1"}, &rc);
    const char *echo = echoed_cookie(r);
    tap_ok(rc == 0 && ag_response_redirects(r) == 1 && strcmp(echo, "l=1") == 0,
           "cookie_httpbin_cross_origin_redirect: the jar's own rules, the caller's Cookie "
           "dropped (\"%s\")",
           echo);
    ag_response_free(r);
    ag_client_free(c);
    ag_cookie_jar_free(jar);
}

typedef struct setter {
    ag_cookie_jar *jar;
    const char *path;
    int rc;
} setter;

static void *set_in_thread(void *arg)
{
    setter *s = arg;
    ag_client *c = new_client(s->jar);
    ag_response *r = fetch(c, url_of(port, s->path), (opts){0}, &s->rc);
    ag_response_free(r);
    ag_client_free(c);
    return NULL;
}

static void shared_jar(void)
{
    ag_cookie_jar *jar = new_jar();
    setter s[2] = {{jar, "/cookies/set?t1=one", -1}, {jar, "/cookies/set?t2=two", -1}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, set_in_thread, &s[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    ag_client *c = new_client(jar);
    int rc;
    ag_response *r = fetch(c, url_of(port, "/cookies"), (opts){0}, &rc);
    tap_ok(rc == 0 && s[0].rc == 0 && s[1].rc == 0 && strcmp(shown(r, "t1"), "one") == 0 &&
               strcmp(shown(r, "t2"), "two") == 0,
           "cookie_httpbin_shared_jar: two clients on two threads fill one jar, a third reads "
           "it (%s)",
           body1(r));
    ag_response_free(r);
    ag_client_free(c);
    ag_cookie_jar_free(jar);
}

int main(void)
{
    port = env_port("AG_HTTPBIN_PORT");
    set_then_sent();
    redirect_carries();
    no_cookies();
    merged_with_caller();
    cross_origin();
    shared_jar();
    return tap_done();
}
