/* test-credentials.c: a request's own credentials (Basic from fields or the URL's userinfo,
 * Bearer) and where the request head carries them: the same origin, a redirect elsewhere, back
 * again, and the caller's own Authorization. */
#include "http/internal.h"
#include "tests/tap.h"

#include <stdlib.h>
#include <string.h>

static ag_client *client;

/* The Authorization value ag__auth_make gives for req and url; "" for none, "ERR" on a code. */
static char made[512];
static int made_rc;

static const char *auth_of(const ag_request *req, const char *url_text)
{
    ag__url url;
    made_rc = ag__url_parse(&url, url_text);
    if (made_rc < 0)
        return "URL";
    char *v = NULL;
    const char *why = NULL;
    made_rc = ag__auth_make(req, &url, &v, &why);
    ag__url_free(&url);
    if (made_rc < 0)
        return "ERR";
    snprintf(made, sizeof made, "%s", v ? v : "");
    free(v);
    return made;
}

/* The request head laid out for url with state st (auth from req), NUL-terminated. */
static char head_text[4096];

static const char *head_of(const ag_request *req, const char *url_text, ag__req_state *st)
{
    ag__url url;
    if (ag__url_parse(&url, url_text) < 0)
        return "";
    char *auth = NULL;
    const char *why;
    if (ag__auth_make(req, &url, &auth, &why) < 0)
        auth = NULL;
    st->auth = auth;
    st->method = "GET";
    ag__body_plan bp;
    ag__body_plan_make(&bp, client, req, st);
    char buf[256], *out;
    size_t len;
    head_text[0] = 0;
    if (ag__request_head(client, &url, req, st, &bp, buf, sizeof buf, &out, &len) == 0) {
        size_t n = len < sizeof head_text - 1 ? len : sizeof head_text - 1;
        memcpy(head_text, out, n);
        head_text[n] = 0;
        if (out != buf)
            free(out);
    }
    free(auth);
    ag__url_free(&url);
    return head_text;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

int main(void)
{
    if (ag_client_new(&client, NULL) < 0) {
        tap_diag("no client");
        return 1;
    }
    ag_request req;

    /* RFC 7617's own example. */
    ag_request_init(&req);
    req.username = "Aladdin";
    req.password = "open sesame";
    tap_ok(strcmp(auth_of(&req, "http://h/"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==") == 0,
           "credentials_basic_from_fields: %s", made);

    ag_request_init(&req);
    req.username = "user";
    tap_ok(strcmp(auth_of(&req, "http://h/"), "Basic dXNlcjo=") == 0,
           "credentials_basic_null_password_is_empty: %s", made);

    /* "us@er" and "p:ss" escaped in the URL: decoded after the split at the first ':'. */
    ag_request_init(&req);
    tap_ok(strcmp(auth_of(&req, "http://us%40er:p%3Ass@h/"), "Basic dXNAZXI6cDpzcw==") == 0,
           "credentials_basic_from_userinfo_decoded: %s", made);
    tap_ok(strcmp(auth_of(&req, "http://user@h/"), "Basic dXNlcjo=") == 0,
           "credentials_userinfo_without_password: %s", made);
    tap_ok(strcmp(auth_of(&req, "http://h/"), "") == 0 && made_rc == 0,
           "credentials_none_without_userinfo");
    tap_ok(strcmp(auth_of(&req, "http://u%3Ax:p@h/"), "ERR") == 0 && made_rc == AG_EURL,
           "credentials_userinfo_escaped_colon_in_user_refused");
    tap_ok(strcmp(auth_of(&req, "http://u%0Ax:p@h/"), "ERR") == 0 && made_rc == AG_EURL,
           "credentials_userinfo_control_byte_in_user_refused");

    tap_ok(strcmp(auth_of(&req, "http://u:p%00x@h/"), "ERR") == 0 && made_rc == AG_EURL,
           "credentials_userinfo_control_byte_in_password_refused");
    tap_ok(strcmp(auth_of(&req, "http://u:p%7Fx@h/"), "ERR") == 0 && made_rc == AG_EURL,
           "credentials_userinfo_del_in_password_refused");

    /* The fields win over the URL's userinfo. */
    ag_request_init(&req);
    req.username = "a";
    req.password = "b";
    tap_ok(strcmp(auth_of(&req, "http://x:y@h/"), "Basic YTpi") == 0,
           "credentials_fields_win_over_userinfo: %s", made);

    ag_request_init(&req);
    req.username = "a:b";
    tap_ok(strcmp(auth_of(&req, "http://h/"), "ERR") == 0 && made_rc == AG_EREQUEST,
           "credentials_username_with_colon_refused");

    req.username = "u";
    req.password = "p\r\nX-Evil: 1";
    tap_ok(strcmp(auth_of(&req, "http://h/"), "ERR") == 0 && made_rc == AG_EREQUEST,
           "credentials_password_with_control_byte_refused");

    ag_request_init(&req);
    req.bearer = "tok.en-1";
    tap_ok(strcmp(auth_of(&req, "http://x:y@h/"), "Bearer tok.en-1") == 0, "credentials_bearer: %s",
           made);
    req.bearer = "tok\r\nX-Evil: 1";
    tap_ok(strcmp(auth_of(&req, "http://h/"), "ERR") == 0 && made_rc == AG_EREQUEST,
           "credentials_bearer_with_crlf_refused");
    req.bearer = "";
    tap_ok(strcmp(auth_of(&req, "http://h/"), "ERR") == 0 && made_rc == AG_EREQUEST,
           "credentials_bearer_empty_refused");
    req.bearer = "t";
    req.username = "u";
    tap_ok(strcmp(auth_of(&req, "http://h/"), "ERR") == 0 && made_rc == AG_EREQUEST,
           "credentials_bearer_and_username_refused");

    /* Where the head carries them. */
    ag_request_init(&req);
    req.username = "Aladdin";
    req.password = "open sesame";
    ag__req_state st = {0};
    const char *h = head_of(&req, "http://h/", &st);
    tap_ok(count(h, "\r\nAuthorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n") == 1,
           "credentials_in_head_at_own_origin");
    st = (ag__req_state){.other_origin = true, .drop_auth = true};
    h = head_of(&req, "http://other/", &st);
    tap_ok(count(h, "Authorization") == 0, "credentials_not_in_head_at_other_origin");
    st = (ag__req_state){.other_origin = true, .drop_auth = false};
    h = head_of(&req, "http://other/", &st);
    tap_ok(count(h, "\r\nAuthorization: Basic ") == 1, "credentials_in_head_when_trusted");

    /* The caller's own Authorization overrides, and goes where the request's own would. */
    ag_header own[] = {{"Authorization", "Digest x"}, {"Host", "own.example"}};
    req.headers = own;
    req.nheaders = 2;
    st = (ag__req_state){0};
    h = head_of(&req, "http://h/", &st);
    tap_ok(count(h, "Authorization") == 1 && count(h, "Authorization: Digest x\r\n") == 1,
           "credentials_caller_authorization_overrides");
    tap_ok(count(h, "Host: own.example\r\n") == 1 && count(h, "Host: h\r\n") == 0,
           "credentials_caller_host_kept_at_own_origin");
    st = (ag__req_state){.other_origin = true, .drop_auth = false};
    h = head_of(&req, "http://other/", &st);
    tap_ok(count(h, "Authorization: Digest x\r\n") == 1,
           "credentials_caller_authorization_follows_when_trusted");
    tap_ok(count(h, "Host: other\r\n") == 1 && count(h, "own.example") == 0,
           "credentials_caller_host_dropped_at_other_origin_even_when_trusted");

    ag_client_free(client);
    return tap_done();
}
