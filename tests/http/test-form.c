/* test-form.c: the multipart/form-data layout of a form, byte for byte, and reading it back at
 * any offset in pieces of any size. */
#include "http/form.h"
#include "tests/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/ag-form-XXXXXX";

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
    if (fd < 0 || write(fd, data, len) != (ssize_t)len)
        abort();
    close(fd);
}

/* The whole body, read in one go: NULL on an error. */
static char *body_of(const ag_form *f, size_t *len)
{
    size_t n = (size_t)ag_form_size(f);
    char *b = malloc(n + 1);
    int got = ag__form_read(f, 0, b, n + 1);
    if (got < 0) {
        free(b);
        return NULL;
    }
    *len = (size_t)got;
    b[got] = 0;
    return b;
}

/* The boundary, from the Content-Type. */
static const char *boundary_of(const ag_form *f)
{
    const char *ct = ag_form_content_type(f);
    const char *b = strstr(ct, "boundary=");
    return b ? b + 9 : "";
}

static void form_layout_exact(void)
{
    ag_form *f;
    ag_form_new(&f);
    write_file(path_of("hello.txt"), "file\ncontent", 12);
    ag_form_add(f, "field", "value", 5, NULL, NULL);
    ag_form_add(f, "blob", "\0\r\n--", 5, "b.bin", "application/x-test");
    ag_form_add_file(f, "up", path_of("hello.txt"), NULL, "text/plain");
    ag_form_add_file(f, "raw", path_of("hello.txt"), "", NULL);
    const char *b = boundary_of(f);
    char want[2048];
    int wl = snprintf(want, sizeof want,
                      "--%s\r\n"
                      "Content-Disposition: form-data; name=\"field\"\r\n"
                      "\r\n"
                      "value\r\n"
                      "--%s\r\n"
                      "Content-Disposition: form-data; name=\"blob\"; filename=\"b.bin\"\r\n"
                      "Content-Type: application/x-test\r\n"
                      "\r\n"
                      "@@@@@\r\n"
                      "--%s\r\n"
                      "Content-Disposition: form-data; name=\"up\"; filename=\"hello.txt\"\r\n"
                      "Content-Type: text/plain\r\n"
                      "\r\n"
                      "file\ncontent\r\n"
                      "--%s\r\n"
                      "Content-Disposition: form-data; name=\"raw\"\r\n"
                      "Content-Type: application/octet-stream\r\n"
                      "\r\n"
                      "file\ncontent\r\n"
                      "--%s--\r\n",
                      b, b, b, b, b);
    /* The blob's bytes (a NUL among them) go where the placeholder is. */
    char *at = strstr(want, "@@@@@");
    memcpy(at, "\0\r\n--", 5);
    size_t len;
    char *got = body_of(f, &len);
    tap_ok(got && len == (size_t)wl && memcmp(got, want, len) == 0,
           "form_layout_exact: fields, a memory file part and file parts, byte for byte");
    tap_ok(ag_form_size(f) == (uint64_t)wl,
           "form_layout_exact: ag_form_size is the bytes made "
           "(%llu, %d)",
           (unsigned long long)ag_form_size(f), wl);
    tap_ok(strncmp(ag_form_content_type(f), "multipart/form-data; boundary=", 30) == 0 &&
               strlen(b) >= 27 && strlen(b) <= 70,
           "form_layout_exact: the Content-Type names a boundary of 27 to 70 characters (%s)",
           ag_form_content_type(f));
    free(got);
    ag_form_free(f);
}

static void form_empty(void)
{
    ag_form *f;
    ag_form_new(&f);
    char want[128];
    int wl = snprintf(want, sizeof want, "--%s--\r\n", boundary_of(f));
    size_t len;
    char *got = body_of(f, &len);
    tap_ok(got && len == (size_t)wl && memcmp(got, want, len) == 0 &&
               ag_form_size(f) == (uint64_t)wl,
           "form_empty: the closing delimiter alone");
    free(got);
    ag_form_free(f);
}

static void form_escape(void)
{
    ag_form *f;
    ag_form_new(&f);
    ag_form_add(f, "a\"b\r\nc%", "v", 1, "x\"y\nz.txt", NULL);
    const char *b = boundary_of(f);
    char want[512];
    int wl = snprintf(want, sizeof want,
                      "--%s\r\nContent-Disposition: form-data; name=\"a%%22b%%0D%%0Ac%%\"; "
                      "filename=\"x%%22y%%0Az.txt\"\r\n\r\nv\r\n--%s--\r\n",
                      b, b);
    size_t len;
    char *got = body_of(f, &len);
    tap_ok(
        got && len == (size_t)wl && memcmp(got, want, len) == 0,
        "form_escape: '\"', CR and LF of a name and a filename are percent-encoded, '%%' is not");
    free(got);
    ag_form_free(f);
}

static void form_boundary_random(void)
{
    ag_form *a, *b;
    ag_form_new(&a);
    ag_form_new(&b);
    tap_ok(strcmp(ag_form_content_type(a), ag_form_content_type(b)) != 0,
           "form_boundary_random: two forms have different boundaries");
    ag_form_free(a);
    ag_form_free(b);
}

/* Every way of cutting the body gives the same bytes: pieces of every size from 1 up, and one
 * read from every offset to the end. */
static void form_read_splits(void)
{
    ag_form *f;
    ag_form_new(&f);
    write_file(path_of("f1"), "0123456789", 10);
    write_file(path_of("empty"), "", 0);
    ag_form_add(f, "x", "", 0, NULL, NULL);
    ag_form_add_file(f, "f1", path_of("f1"), NULL, NULL);
    ag_form_add_file(f, "e", path_of("empty"), NULL, NULL);
    ag_form_add(f, "y", "yy", 2, "n", "text/plain");
    size_t len;
    char *whole = body_of(f, &len);
    bool ok = whole && len == ag_form_size(f);
    char *buf = malloc(len + 1);
    for (size_t piece = 1; ok && piece <= len; piece++) {
        size_t off = 0;
        while (ok) {
            int n = ag__form_read(f, off, buf + off, piece);
            if (n == 0)
                break;
            ok = n > 0 && (size_t)n <= piece && (n == (int)piece || off + (size_t)n == len);
            off += (size_t)n;
        }
        ok = ok && off == len && memcmp(buf, whole, len) == 0;
    }
    tap_ok(ok, "form_read_splits: pieces of every size from 1 to %zu give the same bytes", len);
    ok = whole != NULL;
    for (size_t off = 0; ok && off <= len; off++) {
        int n = ag__form_read(f, off, buf, len + 1);
        ok = n == (int)(len - off) && memcmp(buf, whole + off, len - off) == 0;
    }
    tap_ok(ok, "form_read_splits: a read from every offset gives the rest of the body");
    free(buf);
    free(whole);
    ag_form_free(f);
}

static void form_file_truncated(void)
{
    ag_form *f;
    ag_form_new(&f);
    write_file(path_of("shrinks"), "abcdefghij", 10);
    ag_form_add_file(f, "s", path_of("shrinks"), NULL, NULL);
    uint64_t size = ag_form_size(f);
    truncate(path_of("shrinks"), 4);
    char *buf = malloc((size_t)size);
    int n = ag__form_read(f, 0, buf, (size_t)size);
    tap_ok(n == AG_EBODY, "form_file_truncated: a file shorter when read is AG_EBODY (%d)", n);
    free(buf);
    ag_form_free(f);
}

static void form_errors(void)
{
    ag_form *f;
    ag_form_new(&f);
    uint64_t size = ag_form_size(f);
    tap_ok(ag_form_add_file(f, "m", path_of("missing"), NULL, NULL) == -ENOENT,
           "form_errors: a missing file is -ENOENT");
    tap_ok(ag_form_add_file(f, "d", tmpdir, NULL, NULL) == -EINVAL,
           "form_errors: a directory is -EINVAL (regular files only)");
    tap_ok(ag_form_add(f, "c", "v", 1, NULL, "text/plain\r\nX: y") == -EINVAL &&
               ag_form_add_file(f, "c", path_of("f1"), NULL, "a\tb\x01") == -EINVAL,
           "form_errors: a content type with a control byte is -EINVAL");
    tap_ok(ag_form_add(f, NULL, "v", 1, NULL, NULL) == -EINVAL &&
               ag_form_add(f, "n", NULL, 1, NULL, NULL) == -EINVAL,
           "form_errors: a NULL name, or a NULL value with a length, is -EINVAL");
    tap_ok(ag_form_size(f) == size, "form_errors: refused parts leave the form as it was");
    ag_form_free(f);
    ag_form_free(NULL);
}

int main(void)
{
    if (!mkdtemp(tmpdir))
        return 1;
    form_layout_exact();
    form_empty();
    form_escape();
    form_boundary_random();
    form_read_splits();
    form_file_truncated();
    form_errors();
    const char *names[] = {"hello.txt", "f1", "empty", "shrinks"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        unlink(path_of(names[i]));
    rmdir(tmpdir);
    return tap_done();
}
