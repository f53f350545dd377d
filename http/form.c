/* form.c: multipart/form-data bodies (RFC 7578): parts laid out once, read at any offset. */
#include "http/form.h"
#include "http/url.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/random.h>
#endif

/* The body is a row of segments: each part is its head (in memory) and its content (in memory
 * or in a file), and the closing delimiter ends the row. The CRLF that ends a part's content
 * belongs to the delimiter line after it (RFC 2046 section 5.1.1 says so too), so it opens the
 * next part's head, or the closing text. */
typedef struct part {
    char *head; /* ["\r\n"] "--" boundary "\r\n" fields "\r\n" */
    size_t head_len;
    char *data;     /* the content in memory; NULL for a file */
    int fd;         /* the file, -1 for memory */
    uint64_t len;   /* bytes of content */
    uint64_t start; /* offset of head in the body */
} part;

/* A boundary of "asyncget-" and 32 hex digits: 128 random bits make a collision with any
 * content beyond reason, and it stays well under RFC 2046's 70 characters. */
#define BOUNDARY_PREFIX "asyncget-"
#define BOUNDARY_LEN    (sizeof BOUNDARY_PREFIX - 1 + 32)
#define CTYPE_PREFIX    "multipart/form-data; boundary="

struct ag_form {
    part *parts;
    size_t n, cap;
    uint64_t size; /* the whole body */
    char boundary[BOUNDARY_LEN + 1];
    char ctype[sizeof CTYPE_PREFIX + BOUNDARY_LEN];
    char tail[2 + 2 + BOUNDARY_LEN + 4 + 1]; /* "\r\n--" boundary "--\r\n" */
    size_t tail_len;
};

static int random_bytes(void *buf, size_t len)
{
#if defined(__linux__)
    /* Flags 0: waits only until the kernel's pool is first seeded, early in boot. */
    ssize_t r;
    do
        r = getrandom(buf, len, 0);
    while (r < 0 && errno == EINTR);
    return r == (ssize_t)len ? 0 : -EIO;
#else
    return getentropy(buf, len) == 0 ? 0 : -errno;
#endif
}

/* The closing text follows the last part's content, whose CRLF it carries; an empty form is
 * the closing delimiter alone. */
static void tail_make(ag_form *f)
{
    char *p = f->tail;
    if (f->n) {
        memcpy(p, "\r\n", 2);
        p += 2;
    }
    memcpy(p, "--", 2);
    memcpy(p + 2, f->boundary, BOUNDARY_LEN);
    memcpy(p + 2 + BOUNDARY_LEN, "--\r\n", 4);
    p += 2 + BOUNDARY_LEN + 4;
    *p = '\0';
    f->tail_len = (size_t)(p - f->tail);
}

int ag_form_new(ag_form **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    ag_form *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    uint8_t rnd[16];
    int rc = random_bytes(rnd, sizeof rnd);
    if (rc < 0) {
        free(f);
        return rc;
    }
    static const char hex[] = "0123456789abcdef";
    size_t k = sizeof BOUNDARY_PREFIX - 1;
    memcpy(f->boundary, BOUNDARY_PREFIX, k);
    for (size_t i = 0; i < sizeof rnd; i++) {
        f->boundary[k++] = hex[rnd[i] >> 4];
        f->boundary[k++] = hex[rnd[i] & 15];
    }
    f->boundary[k] = '\0';
    memcpy(f->ctype, CTYPE_PREFIX, sizeof CTYPE_PREFIX - 1);
    memcpy(f->ctype + sizeof CTYPE_PREFIX - 1, f->boundary, BOUNDARY_LEN + 1);
    tail_make(f);
    f->size = f->tail_len;
    *out = f;
    return 0;
}

void ag_form_free(ag_form *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->parts[i].head);
        free(f->parts[i].data);
        if (f->parts[i].fd >= 0)
            close(f->parts[i].fd);
    }
    free(f->parts);
    free(f);
}

const char *ag_form_content_type(const ag_form *f)
{
    return f ? f->ctype : "";
}

uint64_t ag_form_size(const ag_form *f)
{
    return f ? f->size : 0;
}

/* The head is laid out twice, as the request head is: to count (p NULL), then to write. */
typedef struct out {
    char *p;
    size_t len;
} out;

static void put(out *o, const char *s, size_t n)
{
    if (o->p)
        memcpy(o->p + o->len, s, n);
    o->len += n;
}

/* A quoted parameter value with '"', CR and LF percent-encoded, as the HTML standard has
 * browsers do for form-data names and filenames; every other byte goes as it is. */
static void put_quoted(out *o, const char *s)
{
    put(o, "\"", 1);
    for (; *s; s++) {
        if (*s == '"')
            put(o, "%22", 3);
        else if (*s == '\r')
            put(o, "%0D", 3);
        else if (*s == '\n')
            put(o, "%0A", 3);
        else
            put(o, s, 1);
    }
    put(o, "\"", 1);
}

static void head_build(out *o, const ag_form *f, const char *name, const char *filename,
                       const char *ctype)
{
    if (f->n)
        put(o, "\r\n", 2);
    put(o, "--", 2);
    put(o, f->boundary, BOUNDARY_LEN);
    static const char cd[] = "\r\nContent-Disposition: form-data; name=";
    put(o, cd, sizeof cd - 1);
    put_quoted(o, name);
    if (filename) {
        put(o, "; filename=", 11);
        put_quoted(o, filename);
    }
    put(o, "\r\n", 2);
    if (ctype) {
        put(o, "Content-Type: ", 14);
        put(o, ctype, strlen(ctype));
        put(o, "\r\n", 2);
    }
    put(o, "\r\n", 2);
}

/* Append a part whose content is data (owned by the form from here on) or the file fd (the
 * same), of len bytes. On failure nothing is kept and data and fd are left to the caller. */
static int part_add(ag_form *f, const char *name, const char *filename, const char *ctype,
                    char *data, int fd, uint64_t len)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 4;
        part *p = realloc(f->parts, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        f->parts = p;
        f->cap = cap;
    }
    out o = {NULL, 0};
    head_build(&o, f, name, filename, ctype);
    char *head = malloc(o.len);
    if (!head)
        return -ENOMEM;
    o = (out){head, 0};
    head_build(&o, f, name, filename, ctype);
    part *p = &f->parts[f->n];
    *p = (part){head, o.len, data, fd, len, f->size - f->tail_len};
    f->n++;
    tail_make(f);
    f->size = p->start + p->head_len + p->len + f->tail_len;
    return 0;
}

/* An empty content type is taken as none: a Content-Type field with no value says nothing. */
static int ctype_check(const char **ctype)
{
    if (*ctype && !**ctype)
        *ctype = NULL;
    if (*ctype && !ag__http_is_field_value(*ctype, strlen(*ctype)))
        return -EINVAL;
    return 0;
}

int ag_form_add(ag_form *f, const char *name, const void *value, size_t len, const char *filename,
                const char *content_type)
{
    if (!f || !name || (!value && len) || ctype_check(&content_type) < 0)
        return -EINVAL;
    /* A byte of copy even for an empty value: malloc(0) may say NULL, which would read as no
     * memory. */
    char *data = malloc(len ? len : 1);
    if (!data)
        return -ENOMEM;
    if (len)
        memcpy(data, value, len);
    int rc = part_add(f, name, filename, content_type, data, -1, len);
    if (rc < 0)
        free(data);
    return rc;
}

int ag_form_add_file(ag_form *f, const char *name, const char *path, const char *filename,
                     const char *content_type)
{
    if (!f || !name || !path || ctype_check(&content_type) < 0)
        return -EINVAL;
    if (!content_type)
        content_type = "application/octet-stream";
    if (!filename) {
        const char *slash = strrchr(path, '/');
        filename = slash ? slash + 1 : path;
    } else if (!*filename) {
        filename = NULL;
    }
    int fd;
    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? -errno : 0;
    /* Only a regular file has a size known now that a Content-Length can promise; a pipe or a
     * device would have to be read whole first. */
    if (rc == 0 && !S_ISREG(st.st_mode))
        rc = -EINVAL;
    if (rc == 0)
        rc = part_add(f, name, filename, content_type, NULL, fd, (uint64_t)st.st_size);
    if (rc < 0)
        close(fd);
    return rc;
}

/* The part whose head or content holds off (which is before the closing text). */
static const part *part_at(const ag_form *f, uint64_t off)
{
    size_t lo = 0, hi = f->n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->parts[mid].start <= off)
            lo = mid;
        else
            hi = mid;
    }
    return &f->parts[lo];
}

int ag__form_read(const ag_form *f, uint64_t off, char *buf, size_t cap)
{
    size_t got = 0;
    uint64_t tail_start = f->size - f->tail_len;
    while (got < cap && off < f->size) {
        size_t room = cap - got, n;
        if (off >= tail_start) {
            size_t rel = (size_t)(off - tail_start);
            n = f->tail_len - rel < room ? f->tail_len - rel : room;
            memcpy(buf + got, f->tail + rel, n);
        } else {
            const part *p = part_at(f, off);
            uint64_t rel = off - p->start;
            if (rel < p->head_len) {
                n = p->head_len - (size_t)rel < room ? p->head_len - (size_t)rel : room;
                memcpy(buf + got, p->head + rel, n);
            } else {
                rel -= p->head_len;
                uint64_t left = p->len - rel;
                n = left < room ? (size_t)left : room;
                if (p->data) {
                    memcpy(buf + got, p->data + rel, n);
                } else {
                    ssize_t r;
                    do
                        r = pread(p->fd, buf + got, n, (off_t)rel);
                    while (r < 0 && errno == EINTR);
                    /* The size was promised in Content-Length when the form was made: a file
                     * that shrank since cannot keep the promise. */
                    if (r <= 0)
                        return AG_EBODY;
                    n = (size_t)r;
                }
            }
        }
        got += n;
        off += n;
    }
    return (int)got;
}
