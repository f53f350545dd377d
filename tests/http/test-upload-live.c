/* test-upload-live.c: uploads against httpbin, compared byte for byte with what it echoes: a
 * multipart form of fields, a part from memory and files (text and binary, larger than any
 * buffer) to /post, its size and Content-Type as sent; a file PUT to /put as curl's -T does
 * (whole, and a slice by offset); a form replayed by a 307 and a 308 and dropped by a 303; one
 * form sent by four requests at once; and the errors of a file that shrank and of bad parts. */
#include "tests/http/echo.h"

#include <openssl/evp.h>

static int port;
static char dir[] = "/tmp/ag-upload.XXXXXX";
static char text_path[300], bin_path[300], small_path[300];
static char *text, *bin;
static size_t text_len;

enum { TEXT_LEN = 200000, BIN_LEN = 300000, BIG_LEN = 3 * 1024 * 1024 + 5 };

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) {
        printf("not ok - cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

/* Text with everything a multipart body must survive: CRLF and bare LF, lines that look like
 * delimiters, quotes, control bytes (all ASCII, so httpbin echoes it as text). */
static void make_files(void)
{
    if (!mkdtemp(dir)) {
        printf("not ok - mkdtemp\n");
        exit(1);
    }
    text = malloc(TEXT_LEN);
    static const char *const pieces[] = {
        "line of text\r\n",       "--", "\r\n--boundary\r\n", "\"quoted\"", "\n", "\x01\x02\x7f",
        "Content-Type: x\r\n\r\n"};
    size_t n = 0;
    for (unsigned i = 0; n < TEXT_LEN; i++) {
        const char *p = pieces[(i * 7 + i / 3) % 7];
        size_t l = strlen(p);
        if (n + l > TEXT_LEN)
            l = TEXT_LEN - n;
        memcpy(text + n, p, l);
        n += l;
    }
    text_len = n;
    bin = malloc(BIG_LEN);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < BIG_LEN; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bin[i] = (char)(x >> 24);
    }
    snprintf(text_path, sizeof text_path, "%s/text.txt", dir);
    snprintf(bin_path, sizeof bin_path, "%s/data.bin", dir);
    snprintf(small_path, sizeof small_path, "%s/small.bin", dir);
    write_file(text_path, text, text_len);
    write_file(bin_path, bin, BIG_LEN);
}

/* What httpbin echoes for a part or a body: the text as it is, or a data: URL with base64 for
 * bytes that are not UTF-8. Decoded into a malloc'd buffer. */
static char *echoed_bytes(const char *json, const char *from, const char *key, size_t *len)
{
    size_t slen;
    char *s = json_str_after(json, from, key, &slen);
    if (!s)
        return NULL;
    static const char prefix[] = "data:application/octet-stream;base64,";
    if (strncmp(s, prefix, sizeof prefix - 1) != 0) {
        *len = slen;
        return s;
    }
    const char *b64 = s + sizeof prefix - 1;
    size_t blen = strlen(b64);
    char *out = malloc(blen / 4 * 3 + 3);
    int n = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)b64, (int)blen);
    if (n < 0) {
        free(s);
        free(out);
        return NULL;
    }
    /* EVP_DecodeBlock counts the padding as bytes. */
    if (blen >= 1 && b64[blen - 1] == '=')
        n--;
    if (blen >= 2 && b64[blen - 2] == '=')
        n--;
    *len = (size_t)n;
    free(s);
    return out;
}

static int echoed_is(const char *json, const char *from, const char *key, const char *want,
                     size_t wlen)
{
    size_t len;
    char *got = echoed_bytes(json, from, key, &len);
    int same = same_bytes(got, len, want, wlen);
    if (!same)
        tap_diag("%s: %s, %zu bytes against %zu, first difference at %zu", key,
                 got ? "echoed" : "missing", got ? len : 0, wlen,
                 got ? first_diff(got, len, want, wlen) : 0);
    free(got);
    return same;
}

static ag_client *client;

static char *send_req(const ag_request *req, int *rc, int *status)
{
    ag_response *r = NULL;
    *rc = ag_fetch(client, req, &r);
    *status = r ? ag_response_status(r) : 0;
    size_t len = 0;
    const char *b = r ? ag_response_body(r, &len) : NULL;
    char *out = malloc(len + 1);
    if (b)
        memcpy(out, b, len);
    out[b ? len : 0] = 0;
    ag_response_free(r);
    return out;
}

static ag_form *full_form(void)
{
    ag_form *f;
    if (ag_form_new(&f) < 0)
        return NULL;
    static const char mem[] = "from memory\r\n--\0with a NUL";
    int rc = ag_form_add(f, "a", "1", 1, NULL, NULL);
    rc |= ag_form_add(f, "b", "two words\r\nand a line", 21, NULL, NULL);
    rc |= ag_form_add(f, "m", mem, sizeof mem - 1, "m.bin", "application/x-test");
    rc |= ag_form_add_file(f, "f", text_path, NULL, "text/plain");
    rc |= ag_form_add_file(f, "g", bin_path, "renamed.bin", NULL);
    if (rc) {
        ag_form_free(f);
        return NULL;
    }
    return f;
}

/* The echo of full_form(): every part, byte for byte, and the head as sent. */
static int form_echoed(const char *b, const ag_form *f, const char **why)
{
    static const char mem[] = "from memory\r\n--\0with a NUL";
    const char *files = strstr(b, "\"files\":");
    const char *form = strstr(b, "\"form\":");
    char *ct = json_str(b, "Content-Type", NULL);
    char *cl = json_str(b, "Content-Length", NULL);
    char size[32];
    snprintf(size, sizeof size, "%llu", (unsigned long long)ag_form_size(f));
    *why = "";
    int ok = 1;
    if (!files || !form)
        *why = "no files or form", ok = 0;
    else if (!json_is(form, "a", "1") || !echoed_is(b, form, "b", "two words\r\nand a line", 21))
        *why = "fields", ok = 0;
    else if (!echoed_is(b, files, "m", mem, sizeof mem - 1))
        *why = "memory part", ok = 0;
    else if (!echoed_is(b, files, "f", text, text_len))
        *why = "text file", ok = 0;
    else if (!echoed_is(b, files, "g", bin, BIG_LEN))
        *why = "binary file", ok = 0;
    else if (!ct || strcmp(ct, ag_form_content_type(f)) != 0)
        *why = "Content-Type", ok = 0;
    else if (!cl || strcmp(cl, size) != 0)
        *why = "Content-Length", ok = 0;
    free(ct);
    free(cl);
    return ok;
}

static void forms(void)
{
    ag_form *f = full_form();
    if (!f) {
        tap_ok(0, "upload_form_built");
        return;
    }
    ag_request req;
    ag_request_init(&req);
    req.method = "POST";
    req.url = url_of(port, "/post");
    req.body_kind = AG_BODY_FORM;
    req.form = f;
    int rc, status;
    const char *why = "";
    char *b = send_req(&req, &rc, &status);
    tap_ok(rc == 0 && status == 200 && form_echoed(b, f, &why),
           "upload_form_fields_and_files_byte_for_byte: %s, %d %s", ag_err_name(rc), status, why);
    free(b);

    /* 307 and 308 send the form again, whole; 303 makes a GET without it. */
    static const int codes[] = {307, 308};
    for (int i = 0; i < 2; i++) {
        char path[128];
        snprintf(path, sizeof path, "/redirect-to?url=/post&status_code=%d", codes[i]);
        req.url = url_of(port, path);
        b = send_req(&req, &rc, &status);
        tap_ok(rc == 0 && status == 200 && form_echoed(b, f, &why),
               "upload_form_replayed_by_%d: %s, %d %s", codes[i], ag_err_name(rc), status, why);
        free(b);
    }
    req.url = url_of(port, "/redirect-to?url=/anything&status_code=303");
    b = send_req(&req, &rc, &status);
    tap_ok(rc == 0 && status == 200 && strstr(b, "\"method\":\"GET\"") &&
               strstr(b, "\"files\":{}") && strstr(b, "\"form\":{}") &&
               !strstr(b, "multipart/form-data"),
           "upload_form_dropped_by_303: %s", ag_err_name(rc));
    free(b);

    /* A Content-Type of the request's own is kept. */
    ag_header own[] = {{"Content-Type", "multipart/mixed; boundary=nothing-like-it"}};
    req.url = url_of(port, "/anything");
    req.headers = own;
    req.nheaders = 1;
    b = send_req(&req, &rc, &status);
    char *ct = json_str(b, "Content-Type", NULL);
    tap_ok(rc == 0 && ct && strcmp(ct, own[0].value) == 0, "upload_form_own_content_type_kept: %s",
           ct ? ct : "(none)");
    free(ct);
    free(b);
    ag_form_free(f);

    /* Names with '"', CR and LF go percent-encoded, as browsers send them. */
    ag_form_new(&f);
    ag_form_add(f, "a\"b\r\nc", "v", 1, NULL, NULL);
    ag_request_init(&req);
    req.method = "POST";
    req.url = url_of(port, "/post");
    req.body_kind = AG_BODY_FORM;
    req.form = f;
    b = send_req(&req, &rc, &status);
    tap_ok(rc == 0 && json_is(b, "a%22b%0D%0Ac", "v"), "upload_form_name_escaped: %s",
           strstr(b, "\"form\":") ? strstr(b, "\"form\":") : b);
    free(b);
    ag_form_free(f);

    /* An empty form is a closing delimiter only, still a valid body. */
    ag_form_new(&f);
    req.form = f;
    b = send_req(&req, &rc, &status);
    tap_ok(rc == 0 && status == 200 && strstr(b, "\"form\":{}") && ag_form_size(f) > 0,
           "upload_form_empty: %s, %llu bytes", ag_err_name(rc),
           (unsigned long long)ag_form_size(f));
    free(b);
    ag_form_free(f);
}

/* One form, four requests in flight at once. */
struct job {
    int done, rc, ok;
    const ag_form *form;
    const char *why;
};

static void on_done(ag_client *c, ag_response *resp, int status, void *arg)
{
    (void)c;
    struct job *j = arg;
    j->done = 1;
    j->rc = status;
    const char *b = ag_response_body(resp, NULL);
    j->ok = b && ag_response_status(resp) == 200 && form_echoed(b, j->form, &j->why);
    ag_response_free(resp);
}

static void concurrent(void)
{
    ag_loop *loop;
    ag_loop_new(&loop, NULL);
    ag_client_opts o;
    ag_client_opts_init(&o);
    o.loop = loop;
    ag_client *c;
    ag_client_new(&c, &o);
    ag_form *f = full_form();
    struct job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct job){.form = f, .why = "not run"};
        ag_request req;
        ag_request_init(&req);
        req.method = i % 2 ? "PUT" : "POST";
        req.url = url_of(port, i % 2 ? "/put" : "/post");
        req.body_kind = AG_BODY_FORM;
        req.form = f;
        if (!f || ag_fetch_start(c, &req, on_done, &jobs[i], NULL) < 0)
            jobs[i].done = -1;
    }
    ag_loop_run(loop);
    int ok = 0;
    for (int i = 0; i < 4; i++) {
        ok += jobs[i].done == 1 && jobs[i].rc == 0 && jobs[i].ok;
        if (!jobs[i].ok)
            tap_diag("request %d: %s, %s", i, ag_err_name(jobs[i].rc), jobs[i].why);
    }
    tap_ok(ok == 4, "upload_form_shared_by_four_requests_at_once: %d of 4", ok);
    ag_form_free(f);
    ag_client_free(c);
    ag_loop_free(loop);
}

/* curl's -T: PUT a file, streamed from the fd. */
static void put_file(void)
{
    static const struct {
        const char *name;
        const char *path;
        const char *want;
        uint64_t offset, len;
    } cases[] = {
        {"text", text_path, NULL, 0, TEXT_LEN},
        {"binary_3mib", bin_path, NULL, 0, BIG_LEN},
        {"slice", bin_path, NULL, 100001, 65537},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fd = open(cases[i].path, O_RDONLY);
        ag_request req;
        ag_request_init(&req);
        req.method = "PUT";
        req.url = url_of(port, "/put");
        req.body_kind = AG_BODY_FILE;
        req.body_fd = fd;
        req.body_offset = cases[i].offset;
        req.body_len = cases[i].len;
        int rc, status;
        char *b = send_req(&req, &rc, &status);
        const char *src = cases[i].path == text_path ? text : bin;
        tap_ok(rc == 0 && status == 200 &&
                   echoed_is(b, NULL, "data", src + cases[i].offset, (size_t)cases[i].len),
               "upload_put_file_%s: %s, %d, %llu bytes", cases[i].name, ag_err_name(rc), status,
               (unsigned long long)cases[i].len);
        free(b);
        close(fd);
    }

    /* A 307 replays a file body from its offset. */
    int fd = open(bin_path, O_RDONLY);
    ag_request req;
    ag_request_init(&req);
    req.method = "PUT";
    req.url = url_of(port, "/redirect-to?url=/put&status_code=307");
    req.body_kind = AG_BODY_FILE;
    req.body_fd = fd;
    req.body_offset = 7;
    req.body_len = BIN_LEN;
    int rc, status;
    char *b = send_req(&req, &rc, &status);
    tap_ok(rc == 0 && status == 200 && echoed_is(b, NULL, "data", bin + 7, BIN_LEN),
           "upload_put_file_replayed_by_307: %s", ag_err_name(rc));
    free(b);
    close(fd);
}

static void errors(void)
{
    ag_form *f;
    ag_form_new(&f);
    tap_ok(ag_form_add_file(f, "x", "/nonexistent/file", NULL, NULL) == -ENOENT,
           "upload_form_missing_file_enoent");
    tap_ok(ag_form_add_file(f, "x", dir, NULL, NULL) == -EINVAL, "upload_form_directory_einval");
    tap_ok(ag_form_add(f, "x", "v", 1, NULL, "text/plain\r\nX-Evil: 1") == -EINVAL,
           "upload_form_content_type_control_einval");
    tap_ok(ag_form_add(f, NULL, "v", 1, NULL, NULL) == -EINVAL, "upload_form_null_name_einval");
    ag_form_free(f);

    /* A file that is shorter when sent than when added fails that request. */
    write_file(small_path, bin, 100000);
    ag_form_new(&f);
    ag_form_add_file(f, "s", small_path, NULL, NULL);
    write_file(small_path, bin, 1000);
    ag_request req;
    ag_request_init(&req);
    req.method = "POST";
    req.url = url_of(port, "/post");
    req.body_kind = AG_BODY_FORM;
    req.form = f;
    int rc, status;
    char *b = send_req(&req, &rc, &status);
    tap_ok(rc == AG_EBODY, "upload_form_file_shrunk_ebody: %s", ag_err_name(rc));
    free(b);
    ag_form_free(f);

    /* The client goes on. */
    ag_request_init(&req);
    req.url = url_of(port, "/get");
    b = send_req(&req, &rc, &status);
    tap_ok(rc == 0 && status == 200, "upload_client_fine_after_errors: %s", ag_err_name(rc));
    free(b);
}

int main(void)
{
    port = env_port("AG_HTTPBIN_PORT");
    make_files();
    ag_client_new(&client, NULL);
    forms();
    concurrent();
    put_file();
    errors();
    ag_client_free(client);
    unlink(text_path);
    unlink(bin_path);
    unlink(small_path);
    rmdir(dir);
    free(text);
    free(bin);
    return tap_done();
}
