/* test-auth.c: a request's credentials against httpbin, as a user sees them: /basic-auth accepts
 * the request's username and password and the URL's percent-encoded userinfo and refuses a wrong
 * password; /headers shows the Bearer token as it went; a redirect to another origin (127.0.0.1
 * and localhost are different hosts) arrives without them unless the client trusts every
 * location, and a redirect within the origin keeps them. */
#include "tests/http/echo.h"

#include <pthread.h>

static int port;

static ag_client *new_client(ag_loop *loop, int trusted)
{
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    o.location_trusted = trusted;
    ag_client *c = NULL;
    if (ag_client_new(&c, &o) < 0) {
        printf("not ok - ag_client_new\n");
        exit(1);
    }
    return c;
}

/* GET url with the given credentials (NULLs: none). */
static ag_response *get_auth(ag_client *c, const char *url, const char *user, const char *pass,
                             const char *bearer, int *rc)
{
    ag_request req;
    ag_request_init(&req);
    req.url = url;
    req.username = user;
    req.password = pass;
    req.bearer = bearer;
    ag_response *r = NULL;
    *rc = ag_fetch(c, &req, &r);
    return r;
}

static int body_has(const ag_response *r, const char *needle)
{
    const char *b = r ? ag_response_body(r, NULL) : NULL;
    return b && strstr(b, needle) != NULL;
}

/* The Authorization value /headers echoed, or "" when none arrived (static buffer). */
static const char *echoed_auth(const ag_response *r)
{
    static char v[512];
    char *s = r ? json_str(ag_response_body(r, NULL), "Authorization", NULL) : NULL;
    snprintf(v, sizeof v, "%s", s ? s : "");
    free(s);
    return v;
}

static void basic(ag_client *c)
{
    int rc;
    ag_response *r = get_auth(c, url_of(port, "/basic-auth/u/p"), "u", "p", NULL, &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 200 && body_has(r, "\"authenticated\":true") &&
               json_is(ag_response_body(r, NULL), "user", "u"),
           "auth_basic_fields: 200 and authenticated as u (%s, %d)", ag_err_name(rc),
           ag_response_status(r));
    ag_response_free(r);

    r = get_auth(c, url_of(port, "/basic-auth/u/p"), "u", "wrong", NULL, &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 401 && ag_response_header(r, "WWW-Authenticate"),
           "auth_basic_wrong_password_401: %d, a 401 is a response, not an error (%s)",
           ag_response_status(r), ag_err_name(rc));
    ag_response_free(r);

    r = get_auth(c, url_of(port, "/basic-auth/u/p"), NULL, NULL, NULL, &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 401, "auth_basic_none_401: %d",
           ag_response_status(r));
    ag_response_free(r);

    /* A NULL password is an empty one: /basic-auth/u/ cannot be routed, so /headers shows it. */
    r = get_auth(c, url_of(port, "/headers"), "u", NULL, NULL, &rc);
    tap_ok(rc == 0 && strcmp(echoed_auth(r), "Basic dTo=") == 0,
           "auth_basic_null_password_empty: %s", echoed_auth(r));
    ag_response_free(r);

    /* UTF-8 in both, as curl sends it (httpbin decodes the pair as UTF-8). */
    r = get_auth(c, url_of(port, "/basic-auth/%C3%BCs/p%C3%A4"), "\xc3\xbcs", "p\xc3\xa4", NULL,
                 &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 200 && body_has(r, "\\u00fcs"),
           "auth_basic_utf8: 200 (%d)", ag_response_status(r));
    ag_response_free(r);
}

static void userinfo(ag_client *c)
{
    char url[512];
    int rc;
    snprintf(url, sizeof url, "http://u:p@127.0.0.1:%d/basic-auth/u/p", port);
    ag_response *r = get_auth(c, url, NULL, NULL, NULL, &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 200, "auth_userinfo: 200 (%d, %s)",
           ag_response_status(r), ag_err_name(rc));
    ag_response_free(r);

    /* "us@er" and "p:ss w%rd", percent-encoded in the URL, decoded before they are encoded in
     * base64; the route's own segments are encoded the same way. */
    snprintf(
        url, sizeof url,
        "http://us%%40er:p%%3Ass%%20w%%25rd@127.0.0.1:%d/basic-auth/us%%40er/p%%3Ass%%20w%%25rd",
        port);
    r = get_auth(c, url, NULL, NULL, NULL, &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 200 &&
               json_is(ag_response_body(r, NULL), "user", "us@er"),
           "auth_userinfo_percent_encoded: 200 as us@er (%d)", ag_response_status(r));
    ag_response_free(r);

    snprintf(url, sizeof url, "http://u:wrong@127.0.0.1:%d/basic-auth/u/p", port);
    r = get_auth(c, url, NULL, NULL, NULL, &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 401, "auth_userinfo_wrong_password_401: %d",
           ag_response_status(r));
    ag_response_free(r);

    /* The fields win over the URL's userinfo. */
    r = get_auth(c, url, "u", "p", NULL, &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 200, "auth_fields_win_over_userinfo: %d",
           ag_response_status(r));
    ag_response_free(r);

    /* The userinfo never reaches the server in the request line or the Host field. */
    snprintf(url, sizeof url, "http://u:secretpw@127.0.0.1:%d/anything", port);
    r = get_auth(c, url, NULL, NULL, NULL, &rc);
    tap_ok(rc == 0 && !body_has(r, "secretpw") && body_has(r, "\"Authorization\":\"Basic "),
           "auth_userinfo_not_in_target_or_host");
    ag_response_free(r);
}

static void bearer(ag_client *c)
{
    int rc;
    const char *tok = "eyJhbGciOiJIUzI1NiJ9.e30.tok-en_~+/=";
    ag_response *r = get_auth(c, url_of(port, "/headers"), NULL, NULL, tok, &rc);
    char want[256];
    snprintf(want, sizeof want, "Bearer %s", tok);
    tap_ok(rc == 0 && strcmp(echoed_auth(r), want) == 0, "auth_bearer_echoed: %s", echoed_auth(r));
    ag_response_free(r);

    r = get_auth(c, url_of(port, "/headers"), "u", "p", "t", &rc);
    tap_ok(rc == AG_EREQUEST && !(r && ag_response_status(r)),
           "auth_bearer_and_username_refused before sending: %s", ag_err_name(rc));
    ag_response_free(r);

    /* The caller's own Authorization overrides the request's credentials, sent once. */
    ag_request req;
    ag_request_init(&req);
    req.url = url_of(port, "/headers");
    req.username = "u";
    req.password = "p";
    ag_header h[] = {{"Authorization", "Custom abc"}};
    req.headers = h;
    req.nheaders = 1;
    rc = ag_fetch(c, &req, &r);
    tap_ok(rc == 0 && strcmp(echoed_auth(r), "Custom abc") == 0 && !body_has(r, "Basic"),
           "auth_own_header_overrides: %s", echoed_auth(r));
    ag_response_free(r);
}

static void redirects(ag_client *c, ag_client *trusting)
{
    char path[512], url[600];
    int rc;
    ag_response *r;

    /* Same origin: /redirect-to a relative /basic-auth keeps them. */
    r = get_auth(c, url_of(port, "/redirect-to?url=/basic-auth/u/p"), "u", "p", NULL, &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 200 && ag_response_redirects(r) == 1,
           "auth_redirect_same_origin_kept: %d after %u hops", ag_response_status(r),
           ag_response_redirects(r));
    ag_response_free(r);

    /* An absolute URL naming the same origin is the same origin. */
    snprintf(path, sizeof path, "/redirect-to?url=http://127.0.0.1:%d/basic-auth/u/p", port);
    r = get_auth(c, url_of(port, path), "u", "p", NULL, &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 200, "auth_redirect_same_origin_absolute_kept: %d",
           ag_response_status(r));
    ag_response_free(r);

    /* 127.0.0.1 -> localhost: another host, so /basic-auth there answers 401. */
    snprintf(path, sizeof path, "/redirect-to?url=http://localhost:%d/basic-auth/u/p", port);
    r = get_auth(c, url_of(port, path), "u", "p", NULL, &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 401 && ag_response_redirects(r) == 1,
           "auth_redirect_other_origin_dropped: %d (want 401)", ag_response_status(r));
    ag_response_free(r);

    snprintf(url, sizeof url, "http://u:p@127.0.0.1:%d%s", port, path);
    r = get_auth(c, url, NULL, NULL, NULL, &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 401,
           "auth_redirect_other_origin_userinfo_dropped: %d (want 401)", ag_response_status(r));
    ag_response_free(r);

    snprintf(path, sizeof path, "/redirect-to?url=http://localhost:%d/headers", port);
    r = get_auth(c, url_of(port, path), NULL, NULL, "tok", &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 200 && strcmp(echoed_auth(r), "") == 0,
           "auth_redirect_other_origin_bearer_dropped: '%s'", echoed_auth(r));
    ag_response_free(r);

    /* Trusted: they follow. */
    snprintf(path, sizeof path, "/redirect-to?url=http://localhost:%d/basic-auth/u/p", port);
    r = get_auth(trusting, url_of(port, path), "u", "p", NULL, &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 200,
           "auth_redirect_location_trusted_kept: %d (want 200)", ag_response_status(r));
    ag_response_free(r);
    snprintf(url, sizeof url, "http://u:p@127.0.0.1:%d%s", port, path);
    r = get_auth(trusting, url, NULL, NULL, NULL, &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 200,
           "auth_redirect_location_trusted_userinfo_kept: %d", ag_response_status(r));
    ag_response_free(r);
    snprintf(path, sizeof path, "/redirect-to?url=http://localhost:%d/headers", port);
    r = get_auth(trusting, url_of(port, path), NULL, NULL, "tok", &rc);
    tap_ok(rc == 0 && strcmp(echoed_auth(r), "Bearer tok") == 0,
           "auth_redirect_location_trusted_bearer_kept: '%s'", echoed_auth(r));
    ag_response_free(r);

    /* A 307 to another origin replays the method and body, still without credentials. */
    ag_request req;
    ag_request_init(&req);
    snprintf(path, sizeof path, "/redirect-to?url=http://localhost:%d/anything&status_code=307",
             port);
    req.url = url_of(port, path);
    req.method = "POST";
    req.body_kind = AG_BODY_MEMORY;
    req.body = "payload";
    req.body_len = 7;
    req.username = "u";
    req.password = "p";
    rc = ag_fetch(c, &req, &r);
    tap_ok(rc == 0 && body_has(r, "\"method\":\"POST\"") && body_has(r, "payload") &&
               strcmp(echoed_auth(r), "") == 0,
           "auth_redirect_307_other_origin_body_kept_credentials_dropped");
    ag_response_free(r);
}

/* ag_fetch_start copies the request and what it points to: the credentials' strings may be
 * overwritten as soon as it returns. */
struct started {
    int done, rc, status;
    char auth[256];
};

static void on_done(ag_client *c, ag_response *resp, int status, void *arg)
{
    (void)c;
    struct started *s = arg;
    s->done = 1;
    s->rc = status;
    s->status = ag_response_status(resp);
    snprintf(s->auth, sizeof s->auth, "%s", echoed_auth(resp));
    ag_response_free(resp);
}

static void started_copies(void)
{
    ag_loop *loop;
    if (ag_loop_new(&loop, NULL) < 0) {
        tap_ok(0, "auth_fetch_start_copies_credentials: no loop");
        return;
    }
    ag_client *c = new_client(loop, 0);
    char user[32] = "copied", pass[32] = "secret", tok[32] = "tok-1";
    struct started a = {0}, b = {0};
    ag_request req;
    ag_request_init(&req);
    req.url = url_of(port, "/basic-auth/copied/secret");
    req.username = user;
    req.password = pass;
    int rc1 = ag_fetch_start(c, &req, on_done, &a, NULL);
    ag_request_init(&req);
    req.url = url_of(port, "/headers");
    req.bearer = tok;
    int rc2 = ag_fetch_start(c, &req, on_done, &b, NULL);
    memset(user, 'X', sizeof user - 1);
    memset(pass, 'Y', sizeof pass - 1);
    memset(tok, 'Z', sizeof tok - 1);
    ag_loop_run(loop);
    tap_ok(rc1 == 0 && a.done && a.rc == 0 && a.status == 200,
           "auth_fetch_start_copies_credentials: basic %d (%s)", a.status, ag_err_name(a.rc));
    tap_ok(rc2 == 0 && b.done && b.rc == 0 && strcmp(b.auth, "Bearer tok-1") == 0,
           "auth_fetch_start_copies_bearer: '%s'", b.auth);
    ag_client_free(c);
    ag_loop_free(loop);
}

int main(void)
{
    port = env_port("AG_HTTPBIN_PORT");
    ag_client *c = new_client(NULL, 0), *trusting = new_client(NULL, 1);
    basic(c);
    userinfo(c);
    bearer(c);
    redirects(c, trusting);
    started_copies();
    ag_client_free(trusting);
    ag_client_free(c);
    return tap_done();
}
