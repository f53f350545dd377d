/* test-cookies-live.c: a client's cookie jar against httpbin, as a user sees it: cookies set by a
 * redirect are sent by the request that follows it and by later ones, deleted when the server
 * says so, kept to their host and path, expired by Max-Age, merged with the caller's own Cookie
 * field, left alone by no_cookies and by a client without a jar; a jar shared by two clients on
 * two threads; a Netscape file saved, loaded and sent from. */
#include "tests/http/echo.h"

#include <pthread.h>
#include <time.h>

static int port;

static ag_client *jar_client(ag_cookie_jar *jar)
{
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.cookie_jar = jar;
    ag_client *c = NULL;
    if (ag_client_new(&c, &o) < 0) {
        printf("not ok - ag_client_new\n");
        exit(1);
    }
    return c;
}

/* GET url; the body (malloc'd, caller frees, "" on failure) and the code. */
static char *get_body(ag_client *c, const char *url, int no_cookies, const ag_header *h, size_t nh,
                      int *rc)
{
    ag_request req;
    ag_request_init(&req);
    req.url = url;
    req.no_cookies = no_cookies;
    req.headers = h;
    req.nheaders = nh;
    ag_response *r = NULL;
    *rc = ag_fetch(c, &req, &r);
    size_t len = 0;
    const char *b = r ? ag_response_body(r, &len) : NULL;
    char *out = malloc(len + 1);
    if (b)
        memcpy(out, b, len);
    out[b ? len : 0] = 0;
    if (*rc == 0 && r && ag_response_status(r) != 200)
        *rc = -ag_response_status(r);
    ag_response_free(r);
    return out;
}

/* httpbin's /cookies answer has no cookies at all. */
static int no_cookies_in(const char *body)
{
    return strstr(body, "\"cookies\":{}") != NULL;
}

static void basics(void)
{
    ag_cookie_jar *jar;
    if (ag_cookie_jar_new(&jar) < 0) {
        tap_ok(0, "cookies: ag_cookie_jar_new");
        return;
    }
    ag_client *c = jar_client(jar);
    int rc;

    /* /cookies/set answers 302 to /cookies with two Set-Cookie fields: the redirect's request
     * already carries them. */
    char *b = get_body(c, url_of(port, "/cookies/set?a=1&b=2"), 0, NULL, 0, &rc);
    tap_ok(rc == 0 && json_is(b, "a", "1") && json_is(b, "b", "2") && ag_cookie_jar_count(jar) == 2,
           "cookies_set_by_redirect_sent_after_it: %s, %zu in the jar (%s)", ag_err_name(rc),
           ag_cookie_jar_count(jar), b);
    free(b);

    b = get_body(c, url_of(port, "/cookies"), 0, NULL, 0, &rc);
    tap_ok(rc == 0 && json_is(b, "a", "1") && json_is(b, "b", "2"),
           "cookies_sent_by_later_request: %s", b);
    free(b);

    b = get_body(c, url_of(port, "/cookies/delete?a"), 0, NULL, 0, &rc);
    tap_ok(rc == 0 && !strstr(b, "\"a\"") && json_is(b, "b", "2") && ag_cookie_jar_count(jar) == 1,
           "cookies_deleted_by_expired_set_cookie: %zu left (%s)", ag_cookie_jar_count(jar), b);
    free(b);

    /* no_cookies: the jar's cookies are not sent, and the new one is not stored. */
    b = get_body(c, url_of(port, "/cookies/set?c=3"), 1, NULL, 0, &rc);
    tap_ok(rc == 0 && no_cookies_in(b) && ag_cookie_jar_count(jar) == 1,
           "cookies_no_cookies_neither_sends_nor_stores: %zu in the jar (%s)",
           ag_cookie_jar_count(jar), b);
    free(b);

    /* The caller's Cookie field and the jar's cookies go as one field. */
    ag_header own[] = {{"Cookie", "own=x"}};
    b = get_body(c, url_of(port, "/cookies"), 0, own, 1, &rc);
    tap_ok(rc == 0 && json_is(b, "own", "x") && json_is(b, "b", "2"),
           "cookies_merged_with_callers_cookie: %s", b);
    free(b);
    b = get_body(c, url_of(port, "/headers"), 0, own, 1, &rc);
    int fields = 0;
    for (const char *p = b; (p = strstr(p, "\"Cookie\":")); p++)
        fields++;
    tap_ok(rc == 0 && fields == 1, "cookies_one_cookie_field: %d", fields);
    free(b);

    /* Host-only: set by 127.0.0.1, not sent to localhost (a redirect there, or a new request). */
    char path[256];
    snprintf(path, sizeof path, "/redirect-to?url=http://localhost:%d/cookies", port);
    b = get_body(c, url_of(port, path), 0, NULL, 0, &rc);
    tap_ok(rc == 0 && no_cookies_in(b), "cookies_not_sent_to_other_host_after_redirect: %s", b);
    free(b);

    /* Path: a cookie for /anything goes to /anything/x only. */
    b = get_body(c, url_of(port, "/response-headers?Set-Cookie=p%3D1%3B%20Path%3D%2Fanything"), 0,
                 NULL, 0, &rc);
    free(b);
    b = get_body(c, url_of(port, "/anything/x"), 0, NULL, 0, &rc);
    char *ck = json_str(b, "Cookie", NULL);
    tap_ok(rc == 0 && ck && strstr(ck, "p=1") && strstr(ck, "b=2") && ck == strstr(ck, "p=1"),
           "cookies_path_matched_longest_first: '%s'", ck ? ck : "(none)");
    free(ck);
    free(b);
    b = get_body(c, url_of(port, "/cookies"), 0, NULL, 0, &rc);
    tap_ok(rc == 0 && !strstr(b, "\"p\"") && json_is(b, "b", "2"),
           "cookies_path_not_sent_elsewhere: %s", b);
    free(b);

    /* Max-Age=1: gone two seconds later. */
    b = get_body(c, url_of(port, "/response-headers?Set-Cookie=short%3D1%3B%20Max-Age%3D1"), 0,
                 NULL, 0, &rc);
    free(b);
    b = get_body(c, url_of(port, "/cookies"), 0, NULL, 0, &rc);
    int before = json_is(b, "short", "1");
    free(b);
    struct timespec ts = {2, 100000000};
    nanosleep(&ts, NULL);
    b = get_body(c, url_of(port, "/cookies"), 0, NULL, 0, &rc);
    tap_ok(before && !strstr(b, "\"short\""), "cookies_max_age_expires: sent at first %d, then %s",
           before, b);
    free(b);

    ag_client_free(c);

    /* A client without a jar stores and sends nothing. */
    ag_client *plain = jar_client(NULL);
    b = get_body(plain, url_of(port, "/cookies/set?x=1"), 0, NULL, 0, &rc);
    tap_ok(rc == 0 && no_cookies_in(b), "cookies_no_jar_nothing_kept: %s", b);
    free(b);
    ag_client_free(plain);
    ag_cookie_jar_free(jar);
}

/* ---- files */

static void files(void)
{
    char dir[] = "/tmp/ag-cookies.XXXXXX";
    if (!mkdtemp(dir)) {
        tap_ok(0, "cookies files: mkdtemp");
        return;
    }
    char file[300], hand[300];
    snprintf(file, sizeof file, "%s/jar.txt", dir);
    snprintf(hand, sizeof hand, "%s/hand.txt", dir);
    ag_cookie_jar *jar, *again, *fromhand;
    ag_cookie_jar_new(&jar);
    ag_cookie_jar_new(&again);
    ag_cookie_jar_new(&fromhand);
    ag_client *c = jar_client(jar);
    int rc;
    char *b = get_body(c, url_of(port, "/cookies/set?s1=v1&s2=v2"), 0, NULL, 0, &rc);
    free(b);
    b = get_body(
        c,
        url_of(port, "/response-headers?Set-Cookie=keep%3Dlong%3B%20Max-Age%3D86400%3B%20HttpOnly"),
        0, NULL, 0, &rc);
    free(b);
    size_t n = ag_cookie_jar_count(jar);
    int saved = ag_cookie_jar_save(jar, file);
    size_t flen = 0;
    char *text = read_file(file, &flen);
    int session_line = text && strstr(text, "127.0.0.1\tFALSE\t/\tFALSE\t0\ts1\tv1\n");
    int httponly_line = text && strstr(text, "#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t");
    tap_ok(saved == 0 && n == 3 && session_line && httponly_line,
           "cookies_save_netscape_format: %d, %zu cookies, session line %d, HttpOnly line %d",
           saved, n, session_line ? 1 : 0, httponly_line ? 1 : 0);
    if (text && !(session_line && httponly_line))
        tap_diag("the file:\n%s", text);
    free(text);

    int loaded = ag_cookie_jar_load(again, file);
    tap_ok(loaded == 3 && ag_cookie_jar_count(again) == 3, "cookies_load_what_was_saved: %d",
           loaded);
    ag_client *c2 = jar_client(again);
    b = get_body(c2, url_of(port, "/cookies"), 0, NULL, 0, &rc);
    tap_ok(rc == 0 && json_is(b, "s1", "v1") && json_is(b, "s2", "v2") &&
               json_is(b, "keep", "long"),
           "cookies_loaded_are_sent: %s", b);
    free(b);

    /* A file written by hand, as curl writes them, with lines to skip. */
    FILE *f = fopen(hand, "w");
    long future = (long)time(NULL) + 3600;
    fprintf(f,
            "# Netscape HTTP Cookie File\n"
            "# a comment\n"
            "\n"
            "127.0.0.1\tFALSE\t/\tFALSE\t0\tfromfile\tyes\n"
            "#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t%ld\thonly\t1\n"
            "127.0.0.1\tFALSE\t/\tFALSE\t1\texpired\tlong-ago\n"
            "127.0.0.1\tFALSE\t/anything\tFALSE\t0\tdeep\t1\n"
            "not a cookie line\n"
            "other.example\tFALSE\t/\tFALSE\t0\telsewhere\t1\n",
            future);
    fclose(f);
    loaded = ag_cookie_jar_load(fromhand, hand);
    ag_client *c3 = jar_client(fromhand);
    b = get_body(c3, url_of(port, "/cookies"), 0, NULL, 0, &rc);
    tap_ok(loaded == 4 && json_is(b, "fromfile", "yes") && json_is(b, "honly", "1") &&
               !strstr(b, "expired") && !strstr(b, "deep") && !strstr(b, "elsewhere"),
           "cookies_hand_written_file_loaded_and_sent: %d loaded, %s", loaded, b);
    free(b);
    tap_ok(ag_cookie_jar_load(fromhand, "/nonexistent/cookies.txt") == -ENOENT,
           "cookies_load_missing_file_enoent");

    ag_client_free(c3);
    ag_client_free(c2);
    ag_client_free(c);
    ag_cookie_jar_free(fromhand);
    ag_cookie_jar_free(again);
    ag_cookie_jar_free(jar);
    unlink(file);
    unlink(hand);
    rmdir(dir);
}

/* ---- one jar, two clients, two threads */

enum { ROUNDS = 25 };

struct worker {
    ag_cookie_jar *jar;
    char tag;
    int own_seen; /* rounds whose redirect carried the cookie just set */
    int errors;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    ag_client *c = jar_client(w->jar);
    for (int k = 0; k < ROUNDS; k++) {
        char path[128], key[32];
        snprintf(key, sizeof key, "%c%d", w->tag, k);
        snprintf(path, sizeof path, "/cookies/set?%s=%d", key, k);
        int rc;
        char *b = get_body(c, url_of(port, path), 0, NULL, 0, &rc);
        char want[32];
        snprintf(want, sizeof want, "%d", k);
        if (rc != 0)
            w->errors++;
        else if (json_is(b, key, want))
            w->own_seen++;
        free(b);
    }
    ag_client_free(c);
    return NULL;
}

static void shared(void)
{
    ag_cookie_jar *jar;
    ag_cookie_jar_new(&jar);
    struct worker w[2] = {{jar, 'x', 0, 0}, {jar, 'y', 0, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, work, &w[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    ag_client *c = jar_client(jar);
    int rc;
    char *b = get_body(c, url_of(port, "/cookies"), 0, NULL, 0, &rc);
    int all = 1;
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < ROUNDS; k++) {
            char key[32], want[32];
            snprintf(key, sizeof key, "%c%d", w[i].tag, k);
            snprintf(want, sizeof want, "%d", k);
            all &= json_is(b, key, want);
        }
    tap_ok(w[0].errors == 0 && w[1].errors == 0 && w[0].own_seen == ROUNDS &&
               w[1].own_seen == ROUNDS && ag_cookie_jar_count(jar) == 2 * ROUNDS && all,
           "cookies_jar_shared_by_two_threads: %d and %d rounds saw their own cookie, %zu in the "
           "jar, all sent %d",
           w[0].own_seen, w[1].own_seen, ag_cookie_jar_count(jar), all);
    free(b);
    ag_client_free(c);
    ag_cookie_jar_free(jar);
}

int main(void)
{
    port = env_port("AG_HTTPBIN_PORT");
    basics();
    files();
    shared();
    return tap_done();
}
