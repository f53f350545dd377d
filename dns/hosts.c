/* hosts.c: /etc/hosts, read once and again only when it changes. c-ares 1.18.1 opens, reads and
 * parses the file for every query (five system calls and a parse per lookup, most of its cost on
 * a cache miss), so the resolver reads it here and asks c-ares for DNS only. */
#include "dns/hosts.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct record {
    const char *name; /* lower case, in the text buffer */
    uint32_t seq;     /* position in the file: equal names keep their file order */
    uint8_t fam;      /* AG__FAM4 or AG__FAM6 */
    uint8_t addr[16];
} record;

struct ag__hosts {
    const char *path;
    char *text;
    record *rec;
    size_t n;
    int64_t checked; /* when the file was last looked at */
    struct stat st;  /* what it was then */
    bool present;
};

#define RECHECK_NS 1000000000LL /* look at the file at most once a second */
#define MAX_BYTES  (64u << 20)  /* a larger file is not read */

static int rec_cmp(const void *a, const void *b)
{
    return strcmp(((const record *)a)->name, ((const record *)b)->name);
}

static int rec_cmp_seq(const void *a, const void *b)
{
    int c = rec_cmp(a, b);
    if (c)
        return c;
    uint32_t x = ((const record *)a)->seq, y = ((const record *)b)->seq;
    return x < y ? -1 : x > y;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Read the whole file into a NUL-terminated buffer. */
static int slurp(const char *path, char **out, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = 0;
    char *buf = NULL;
    if (fstat(fd, st) < 0 || (uint64_t)st->st_size > MAX_BYTES) {
        rc = -EFBIG;
        goto out;
    }
    size_t cap = (size_t)st->st_size + 1, len = 0;
    if (!(buf = malloc(cap + 1))) {
        rc = -ENOMEM;
        goto out;
    }
    for (;;) {
        ssize_t k = read(fd, buf + len, cap - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = -errno;
            goto out;
        }
        if (k == 0)
            break;
        len += (size_t)k;
        if (len == cap) { /* it grew since fstat */
            char *more = cap < MAX_BYTES ? realloc(buf, cap * 2 + 1) : NULL;
            if (!more) {
                rc = -EFBIG;
                goto out;
            }
            buf = more;
            cap *= 2;
        }
    }
    buf[len] = '\0';
    *out = buf;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

/* Parse "ADDRESS NAME [ALIAS...]" lines ('#' starts a comment) in place: names are lower-cased
 * and terminated inside text. Lines whose address is not a plain IPv4 or IPv6 address (a zone
 * index, say) are skipped. */
static int parse(ag__hosts *h)
{
    size_t cap = 0;
    for (char *line = h->text; line && *line;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *p = line, *field[64];
        int nf = 0;
        while (*p && nf < 64) {
            while (is_blank(*p))
                p++;
            if (!*p)
                break;
            field[nf++] = p;
            while (*p && !is_blank(*p))
                p++;
            if (*p)
                *p++ = '\0';
        }
        uint8_t addr[16] = {0};
        uint8_t fam = AG__FAM4;
        if (nf >= 2 && !ag__ipv4_parse(field[0], addr)) {
            fam = AG__FAM6;
            if (!ag__ipv6_parse(field[0], addr))
                nf = 0;
        }
        for (int i = 1; i < nf; i++) {
            if (h->n == cap) {
                size_t ncap = cap ? cap * 2 : 64;
                record *r = realloc(h->rec, ncap * sizeof *r);
                if (!r)
                    return -ENOMEM;
                h->rec = r;
                cap = ncap;
            }
            for (char *q = field[i]; *q; q++)
                if (*q >= 'A' && *q <= 'Z')
                    *q = (char)(*q - 'A' + 'a');
            record *r = &h->rec[h->n];
            r->seq = (uint32_t)h->n++;
            r->name = field[i];
            r->fam = fam;
            memcpy(r->addr, addr, 16);
        }
        line = end ? end + 1 : NULL;
    }
    if (h->n > 1)
        qsort(h->rec, h->n, sizeof *h->rec, rec_cmp_seq);
    return 0;
}

static void clear(ag__hosts *h)
{
    free(h->text);
    free(h->rec);
    h->text = NULL;
    h->rec = NULL;
    h->n = 0;
    h->present = false;
}

static void load(ag__hosts *h)
{
    clear(h);
    struct stat st;
    char *text = NULL;
    if (slurp(h->path, &text, &st) < 0) {
        memset(&h->st, 0, sizeof h->st);
        return; /* no file: no names, and a look again later */
    }
    h->text = text;
    h->st = st;
    h->present = true;
    if (parse(h) < 0) {
        clear(h);
        memset(&h->st, 0, sizeof h->st);
    }
}

int ag__hosts_new(ag__hosts **out, const char *path)
{
    ag__hosts *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->path = path;
    h->checked = ag_now_ns();
    load(h);
    *out = h;
    return 0;
}

void ag__hosts_free(ag__hosts *h)
{
    if (!h)
        return;
    clear(h);
    free(h);
}

static bool changed(const struct stat *a, const struct stat *b)
{
    return a->st_ino != b->st_ino || a->st_dev != b->st_dev || a->st_size != b->st_size ||
           a->st_mtim.tv_sec != b->st_mtim.tv_sec || a->st_mtim.tv_nsec != b->st_mtim.tv_nsec;
}

void ag__hosts_refresh(ag__hosts *h)
{
    int64_t now = ag_now_ns();
    if (now - h->checked < RECHECK_NS)
        return;
    h->checked = now;
    struct stat st;
    bool there = stat(h->path, &st) == 0;
    if (there != h->present || (there && changed(&st, &h->st)))
        load(h);
}

bool ag__hosts_find(const ag__hosts *h, const char *name, ag__lookup_fam out[2])
{
    if (h->n == 0)
        return false;
    record key = {.name = name};
    const record *r = bsearch(&key, h->rec, h->n, sizeof *h->rec, rec_cmp);
    if (!r)
        return false;
    while (r > h->rec && strcmp(r[-1].name, name) == 0)
        r--;
    memset(out, 0, 2 * sizeof *out);
    for (; r < h->rec + h->n && strcmp(r->name, name) == 0; r++) {
        ag__lookup_fam *a = &out[r->fam];
        size_t len = r->fam == AG__FAM4 ? 4 : 16;
        bool dup = false;
        for (unsigned i = 0; i < a->n && !dup; i++)
            dup = memcmp(a->addr[i], r->addr, len) == 0;
        if (!dup && a->n < AG__DNS_MAX)
            memcpy(a->addr[a->n++], r->addr, len);
    }
    /* The file speaks for the name: a family it gives no address for has none (as glibc's
     * "files" source, which ends the search for the name). */
    for (int fam = 0; fam < 2; fam++) {
        out[fam].state = AG__LK_DONE;
        if (out[fam].n == 0) {
            out[fam].error = AG_EDNS;
            out[fam].why = "no address of this family in /etc/hosts";
        }
    }
    return true;
}
