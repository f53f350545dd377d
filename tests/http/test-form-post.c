/* test-form-post.c: multipart forms (AG_BODY_FORM) sent to real servers: httpbin's /post echoes
 * the fields and files it parsed, compared exactly; a 20 MiB file is streamed, not held; a form
 * replays on a 307 and on the retry after a stale keep-alive connection; a file that shrank before
 * sending fails the request with AG_EBODY; one form serves requests in flight together. */
#include "tests/http/util.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/resource.h>

static int hport, sport;
static char tmpdir[] = "/tmp/ag-formpost-XXXXXX";

static char *path_of(const char *name)
{
    static char buf[4][256];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", tmpdir, name);
    return b;
}

static void write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    size_t done = 0;
    while (fd >= 0 && done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w <= 0)
            abort();
        done += (size_t)w;
    }
    if (fd < 0)
        abort();
    close(fd);
}

/* ---- a reader of httpbin's flat JSON objects ("form": {"k": "v", ...}) ---- */

/* Decode the JSON string at p (after its opening quote) into out (may be NULL: skip); returns
 * the position after the closing quote, or NULL. Escapes of ASCII only, as the tests send. */
static const char *json_string(const char *p, char *out, size_t *len)
{
    size_t n = 0;
    for (; *p && *p != '"'; p++) {
        char ch = *p;
        if (ch == '\\') {
            p++;
            switch (*p) {
            case 'n':
                ch = '\n';
                break;
            case 'r':
                ch = '\r';
                break;
            case 't':
                ch = '\t';
                break;
            case 'u': {
                unsigned v = 0;
                for (int i = 1; i <= 4; i++)
                    v = v * 16 + (unsigned)(p[i] <= '9' ? p[i] - '0' : (p[i] | 32) - 'a' + 10);
                ch = (char)v;
                p += 4;
                break;
            }
            default:
                ch = *p;
                break; /* '"', '\\', '/' */
            }
        }
        if (out)
            out[n] = ch;
        n++;
    }
    if (*p != '"')
        return NULL;
    if (out)
        out[n] = 0;
    if (len)
        *len = n;
    return p + 1;
}

/* The value of key in the object named obj of json, in memory the caller frees, and the number
 * of keys of that object in *count. NULL when absent. */
static char *json_get(const char *json, const char *obj, const char *key, size_t *len, int *count)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":{", obj);
    const char *p = strstr(json, pat);
    char *found = NULL;
    *count = 0;
    if (!p)
        return NULL;
    p += strlen(pat);
    while (p && *p == '"') {
        size_t kl;
        char kbuf[256];
        p = json_string(p + 1, NULL, &kl);
        if (!p || kl >= sizeof kbuf)
            break;
        json_string(p - kl - 1, kbuf, NULL);
        (*count)++;
        if (*p++ != ':' || *p++ != '"')
            break;
        size_t vl;
        const char *v = p;
        p = json_string(v, NULL, &vl);
        if (p && strcmp(kbuf, key) == 0 && !found) {
            found = malloc(vl + 1);
            json_string(v, found, len);
        }
        if (p && *p == ',')
            p++;
    }
    return found;
}

static int json_is(const char *json, const char *obj, const char *key, const char *want,
                   size_t wlen, int count)
{
    size_t len;
    int n;
    char *v = json_get(json, obj, key, &len, &n);
    int ok = v && len == wlen && memcmp(v, want, len) == 0 && n == count;
    free(v);
    return ok;
}

static ag_response *post_form(ag_client *c, const char *url, const ag_form *form,
                              const ag_header *h, size_t nh, int *rc)
{
    ag_request req;
    ag_request_init(&req);
    req.method = "POST";
    req.url = url;
    req.body_kind = AG_BODY_FORM;
    req.form = form;
    req.headers = h;
    req.nheaders = nh;
    ag_response *r;
    *rc = ag_fetch(c, &req, &r);
    return r;
}

static long maxrss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* The echo of the big file, compared as it streams in (keeping it would hide what the upload
 * holds): the bytes after "big":" must be the file's, up to the closing quote. */
typedef struct echo_cmp {
    int fd;       /* the file sent */
    char pre[64]; /* the last bytes before the value is found */
    size_t pre_len;
    bool in, ended, bad;
    uint64_t matched;
} echo_cmp;

static int echo_cb(void *arg, const char *data, size_t len)
{
    echo_cmp *e = arg;
    static const char key[] = "\"files\":{\"big\":\"";
    size_t klen = sizeof key - 1;
    for (size_t i = 0; i < len && !e->bad && !e->ended; i++) {
        if (!e->in) {
            if (e->pre_len == sizeof e->pre) {
                memmove(e->pre, e->pre + 1, sizeof e->pre - 1);
                e->pre_len--;
            }
            e->pre[e->pre_len++] = data[i];
            e->in = e->pre_len >= klen && memcmp(e->pre + e->pre_len - klen, key, klen) == 0;
            continue;
        }
        size_t run = 0;
        while (i + run < len && data[i + run] != '"')
            run++;
        char buf[65536];
        for (size_t done = 0; done < run && !e->bad;) {
            size_t n = run - done < sizeof buf ? run - done : sizeof buf;
            e->bad = pread(e->fd, buf, n, (off_t)e->matched) != (ssize_t)n ||
                     memcmp(buf, data + i + done, n) != 0;
            e->matched += n;
            done += n;
        }
        i += run;
        e->ended = i < len;
    }
    return 0;
}

/* First, before anything large is in memory: 20 MiB of file go out to httpbin, which echoes
 * them back, compared as they stream in, while the process's peak memory grows by far less
 * than the file. */
static void form_big_streamed(ag_client *c, uint64_t big_len)
{
    ag_form *f;
    ag_form_new(&f);
    int arc = ag_form_add_file(f, "big", path_of("big"), NULL, "text/plain");
    echo_cmp e = {.fd = open(path_of("big"), O_RDONLY)};
    long before = maxrss_kib();
    ag_request req;
    ag_request_init(&req);
    req.method = "POST";
    req.url = url_of(hport, "/post");
    req.body_kind = AG_BODY_FORM;
    req.form = f;
    req.sink = AG_SINK_CALLBACK;
    req.on_body = echo_cb;
    req.on_body_arg = &e;
    ag_response *r;
    int rc = ag_fetch(c, &req, &r);
    long grew = maxrss_kib() - before;
    tap_ok(arc == 0 && rc == 0 && ag_response_status(r) == 200 && e.ended && !e.bad &&
               e.matched == big_len,
           "form_big_streamed: httpbin echoes the 20 MiB file part byte for byte (%s, %d, %llu "
           "bytes matched)",
           ag_err_name(rc), ag_response_status(r), (unsigned long long)e.matched);
    tap_ok(grew < 8 * 1024,
           "form_big_streamed: peak memory grew %ld KiB while it went out (under 8 MiB: never "
           "held whole)",
           grew);
    ag_response_free(r);
    close(e.fd);
    ag_form_free(f);
}

static const char small_file[] = "line one\nline \"two\"\n";

static ag_form *small_form(void)
{
    ag_form *f;
    ag_form_new(&f);
    ag_form_add(f, "a", "1", 1, NULL, NULL);
    ag_form_add(f, "words", "two words & more", 16, NULL, NULL);
    ag_form_add(f, "mem", "in memory\n", 10, "m.txt", "text/plain");
    ag_form_add_file(f, "doc", path_of("small.txt"), NULL, "text/plain");
    return f;
}

static int small_echo_ok(const char *json)
{
    return json && json_is(json, "form", "a", "1", 1, 2) &&
           json_is(json, "form", "words", "two words & more", 16, 2) &&
           json_is(json, "files", "mem", "in memory\n", 10, 2) &&
           json_is(json, "files", "doc", small_file, sizeof small_file - 1, 2);
}

static void form_fields_files(ag_client *c)
{
    ag_form *f = small_form();
    int rc;
    ag_response *r = post_form(c, url_of(hport, "/post"), f, NULL, 0, &rc);
    const char *json = ag_response_body(r, NULL);
    char ct[160], cl[64];
    snprintf(ct, sizeof ct, "\"Content-Type\":\"%s\"", ag_form_content_type(f));
    snprintf(cl, sizeof cl, "\"Content-Length\":\"%llu\"", (unsigned long long)ag_form_size(f));
    tap_ok(rc == 0 && ag_response_status(r) == 200 && small_echo_ok(json),
           "form_fields_files: httpbin echoes two fields and two file parts exactly (%s)",
           ag_err_name(rc));
    tap_ok(json && strstr(json, ct) && strstr(json, cl),
           "form_fields_files: Content-Type names the form's boundary, Content-Length its size");
    ag_response_free(r);

    /* The caller's Content-Type wins, and there is only one. */
    char own[128];
    snprintf(own, sizeof own, "multipart/form-data; charset=utf-8; boundary=%s",
             strstr(ag_form_content_type(f), "boundary=") + 9);
    ag_header h = {"content-type", own};
    r = post_form(c, url_of(hport, "/post"), f, &h, 1, &rc);
    json = ag_response_body(r, NULL);
    snprintf(ct, sizeof ct, "\"Content-Type\":\"%s\"", own);
    tap_ok(rc == 0 && json && strstr(json, ct) && small_echo_ok(json),
           "form_own_content_type: the request's own Content-Type is sent instead (%s)",
           ag_err_name(rc));
    ag_response_free(r);
    ag_form_free(f);
}

static void form_replay_307(ag_client *c)
{
    ag_form *f = small_form();
    int rc;
    ag_response *r =
        post_form(c, url_of(hport, "/redirect-to?url=/post&status_code=307"), f, NULL, 0, &rc);
    tap_ok(rc == 0 && ag_response_status(r) == 200 && ag_response_redirects(r) == 1 &&
               small_echo_ok(ag_response_body(r, NULL)),
           "form_replay_307: the form is sent again, whole, after a 307 (%s, %u redirects)",
           ag_err_name(rc), ag_response_redirects(r));
    ag_response_free(r);
    ag_form_free(f);
}

static void form_file_truncated(ag_client *c)
{
    char *data = malloc(200000);
    memset(data, 'x', 200000);
    write_file(path_of("shrinks"), data, 200000);
    free(data);
    ag_form *f;
    ag_form_new(&f);
    ag_form_add(f, "a", "1", 1, NULL, NULL);
    ag_form_add_file(f, "s", path_of("shrinks"), NULL, NULL);
    if (truncate(path_of("shrinks"), 100000) < 0)
        abort();
    int rc;
    ag_response *r = post_form(c, url_of(hport, "/post"), f, NULL, 0, &rc);
    tap_ok(rc == AG_EBODY && strstr(ag_response_error_detail(r), "form"),
           "form_file_truncated: a file shorter than when added fails with AG_EBODY (%s: %s)",
           ag_err_name(rc), ag_response_error_detail(r));
    ag_response_free(r);
    /* The client goes on. */
    ag_form_free(f);
    f = small_form();
    r = post_form(c, url_of(hport, "/post"), f, NULL, 0, &rc);
    tap_ok(rc == 0 && small_echo_ok(ag_response_body(r, NULL)),
           "form_file_truncated: the next form goes through (%s)", ag_err_name(rc));
    ag_response_free(r);
    ag_form_free(f);
}

static void form_null(ag_client *c)
{
    int rc;
    ag_response *r = post_form(c, url_of(hport, "/post"), NULL, NULL, 0, &rc);
    tap_ok(rc == AG_EREQUEST, "form_null: AG_BODY_FORM without a form is AG_EREQUEST (%s)",
           ag_err_name(rc));
    ag_response_free(r);
}

/* A PUT (idempotent) that meets a keep-alive connection the server closed while idle is sent
 * again on a new connection: the form goes again from its start. hostile.py's /echo says what
 * arrived. */
static void form_stale_retry(void)
{
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.no_liveness_check = 1; /* the request meets the closed connection, and is retried */
    ag_client *c;
    ag_client_new(&c, &o);
    int rc1, rc2;
    ag_response *a = get(c, url_of(sport, "/close-after-response?ms=20"), &rc1);
    usleep(200 * 1000);
    ag_form *f = small_form();
    ag_request req;
    ag_request_init(&req);
    req.method = "PUT";
    req.url = url_of(sport, "/echo");
    req.body_kind = AG_BODY_FORM;
    req.form = f;
    ag_response *b;
    rc2 = ag_fetch(c, &req, &b);
    const char *json = ag_response_body(b, NULL);
    char len[64], end[128];
    snprintf(len, sizeof len, "\"body_len\": %llu,", (unsigned long long)ag_form_size(f));
    snprintf(end, sizeof end, "line \\\"two\\\"\\n\\r\\n--%s--\\r\\n\"",
             strstr(ag_form_content_type(f), "boundary=") + 9);
    tap_ok(rc1 == 0 && rc2 == 0 && ag_response_status(b) == 200 && !ag_response_reused(b) &&
               ag_response_connects(b) == 1 && json && strstr(json, len) && strstr(json, end),
           "form_stale_retry: a PUT that met a closed keep-alive connection sends the whole form "
           "again on a new one (%s, %s)",
           ag_err_name(rc2), json ? json : "");
    ag_response_free(a);
    ag_response_free(b);
    ag_form_free(f);
    ag_client_free(c);
}

/* ag_fetch_start does not copy the form: requests in flight together share one. */
static int shared_done, shared_ok;

static void shared_cb(ag_client *c, ag_response *r, int status, void *arg)
{
    (void)c;
    (void)arg;
    shared_done++;
    shared_ok += status == 0 && small_echo_ok(ag_response_body(r, NULL));
    ag_response_free(r);
}

static void form_shared_async(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    ag_client *c;
    ag_client_new(&c, &o);
    ag_form *f = small_form();
    ag_request req;
    ag_request_init(&req);
    req.method = "POST";
    req.url = url_of(hport, "/post");
    req.body_kind = AG_BODY_FORM;
    req.form = f;
    int started = 0;
    for (int i = 0; i < 4; i++)
        started += ag_fetch_start(c, &req, shared_cb, NULL, NULL) == 0;
    ag_loop_run(loop);
    tap_ok(started == 4 && shared_done == 4 && shared_ok == 4,
           "form_shared_async: four ag_fetch_start requests share one form, all echoed exactly "
           "(%d of %d)",
           shared_ok, shared_done);
    ag_form_free(f);
    ag_client_free(c);
    ag_loop_free(loop);
}

int main(void)
{
    hport = env_port("AG_HTTPBIN_PORT");
    sport = env_port("AG_HOSTILE_PORT");
    if (!mkdtemp(tmpdir))
        return 1;
    write_file(path_of("small.txt"), small_file, sizeof small_file - 1);
    /* Letters from a simple generator, written a piece at a time so that the peak memory the
     * streaming case measures against stays low: a part cut, doubled or shifted does not
     * compare equal. */
    size_t big_len = 20u << 20;
    char piece[65536];
    uint32_t x = 12345;
    int bfd = open(path_of("big"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    for (size_t done = 0; bfd >= 0 && done < big_len; done += sizeof piece) {
        for (size_t i = 0; i < sizeof piece; i++) {
            x = x * 1103515245u + 12345u;
            piece[i] = (char)('a' + (x >> 16) % 26);
        }
        if (write(bfd, piece, sizeof piece) != (ssize_t)sizeof piece)
            abort();
    }
    close(bfd);
    ag_client *c;
    ag_client_new(&c, NULL);
    form_big_streamed(c, big_len);
    form_fields_files(c);
    form_replay_307(c);
    form_file_truncated(c);
    form_null(c);
    form_stale_retry();
    ag_client_free(c);
    form_shared_async();
    const char *names[] = {"big", "small.txt", "shrinks"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        unlink(path_of(names[i]));
    rmdir(tmpdir);
    return tap_done();
}
