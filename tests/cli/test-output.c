/* test-output.c: bodies come out whole and in one piece each, spill files go away, and -O names
 * from hostile URLs stay inside the directory and never replace a file. */
#include "cli.h"
#include "../tap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[1024]; /* a private directory for everything this test makes */

static uint32_t rnd_state = 12345;
static uint32_t rnd(uint32_t *st)
{
    *st ^= *st << 13;
    *st ^= *st >> 17;
    *st ^= *st << 5;
    return *st;
}

/* Byte j of body i: a foreign byte in a body shows as a mismatch. */
static char gen(unsigned i, size_t j)
{
    return (char)(i * 131u + j * 7u + (j >> 9));
}

/* ---- capturing fd 1 -------------------------------------------------------------------- */

static int saved_stdout = -1;

static int capture_file(const char *path)
{
    fflush(stdout);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    saved_stdout = dup(1);
    dup2(fd, 1);
    close(fd);
    return 0;
}

static void capture_end(void)
{
    dup2(saved_stdout, 1);
    close(saved_stdout);
    saved_stdout = -1;
}

/* A growable buffer of the test's own (json.c, which has cli_buf, is another part). */
struct grow {
    char *p;
    size_t len, cap;
};

static void grow_put(struct grow *g, const char *p, size_t n)
{
    if (g->len + n + 1 > g->cap) {
        size_t cap = g->cap ? g->cap : 65536;
        while (cap < g->len + n + 1)
            cap *= 2;
        char *m = realloc(g->p, cap);
        if (!m)
            abort();
        g->p = m;
        g->cap = cap;
    }
    memcpy(g->p + g->len, p, n);
    g->len += n;
    g->p[g->len] = '\0';
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct grow b = {0};
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        grow_put(&b, tmp, n);
    fclose(f);
    *len = b.len;
    if (!b.p)
        return calloc(1, 1);
    return b.p;
}

/* Walk the output: blocks of "HEAD i len\n" and len bytes of gen(i). Each i seen is marked;
 * order[k] receives the k-th i. Returns the count of blocks, or -1 at the first broken one. */
static int parse_blocks(const char *p, size_t len, unsigned nmax, int *seen, unsigned *order)
{
    size_t at = 0;
    int k = 0;
    while (at < len) {
        unsigned i;
        size_t blen;
        int used = 0;
        char line[64];
        size_t ll = 0;
        while (at + ll < len && p[at + ll] != '\n' && ll < sizeof line - 1)
            ll++;
        memcpy(line, p + at, ll);
        line[ll] = '\0';
        if (sscanf(line, "HEAD %u %zu%n", &i, &blen, &used) != 2 || (size_t)used != ll ||
            i >= nmax || seen[i])
            return -1;
        at += ll + 1;
        if (at + blen > len)
            return -1;
        for (size_t j = 0; j < blen; j++)
            if (p[at + j] != gen(i, j))
                return -1;
        at += blen;
        seen[i] = 1;
        if (order)
            order[k] = i;
        k++;
    }
    return k;
}

/* ---- many sinks, writes interleaved ----------------------------------------------------- */

struct body {
    cli_sink *s;
    unsigned id;
    size_t len, done;
};

/* Open n sinks, write their bodies in random interleaved pieces, close them in random order
 * (written to close_order). 0, or -1 when a call failed. */
static int run_bodies(cli_out *o, struct body *b, unsigned n, unsigned id0, size_t maxlen,
                      uint32_t *st, unsigned *close_order)
{
    int bad = 0;
    for (unsigned i = 0; i < n; i++) {
        b[i].id = id0 + i;
        b[i].len = rnd(st) % maxlen;
        b[i].done = 0;
        if (cli_sink_open(o, "http://h/x", b[i].id, &b[i].s) != 0)
            return -1;
        char head[64];
        int hn = snprintf(head, sizeof head, "HEAD %u %zu\n", b[i].id, b[i].len);
        bad |= cli_sink_head(b[i].s, head, (size_t)hn);
    }
    char *piece = malloc(4096);
    for (;;) {
        unsigned left = 0;
        for (unsigned i = 0; i < n; i++)
            left += b[i].done < b[i].len;
        if (!left)
            break;
        unsigned pick = rnd(st) % left;
        for (unsigned i = 0; i < n; i++) {
            if (b[i].done >= b[i].len || pick-- != 0)
                continue;
            size_t k = 1 + rnd(st) % 4096;
            if (k > b[i].len - b[i].done)
                k = b[i].len - b[i].done;
            for (size_t j = 0; j < k; j++)
                piece[j] = gen(b[i].id, b[i].done + j);
            bad |= cli_sink_write(b[i].s, piece, k);
            b[i].done += k;
            break;
        }
    }
    free(piece);
    unsigned *perm = malloc(n * sizeof *perm);
    for (unsigned i = 0; i < n; i++)
        perm[i] = i;
    for (unsigned i = n; i > 1; i--) {
        unsigned j = rnd(st) % i, t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
    for (unsigned k = 0; k < n; k++) {
        bad |= cli_sink_close(b[perm[k]].s, true);
        if (close_order)
            close_order[k] = b[perm[k]].id;
    }
    free(perm);
    return bad ? -1 : 0;
}

static void test_stdout_interleaved(void)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/stdout-1", base);
    cli_out *o;
    char err[256];
    enum { N = 50 };
    struct body b[N];
    unsigned order[N], got[N];
    int seen[N] = {0};
    if (cli_out_new(&o, CLI_OUT_STDOUT, NULL, NULL, 8192, err, sizeof err) != 0) {
        tap_ok(0, "output_stdout_bodies_whole: cli_out_new: %s", err);
        return;
    }
    capture_file(path);
    int rc = run_bodies(o, b, N, 0, 40000, &rnd_state, order);
    capture_end();
    cli_out_free(o);
    size_t len;
    char *out = slurp(path, &len);
    int k = parse_blocks(out, len, N, seen, got);
    tap_ok(rc == 0, "output_stdout_calls_succeed");
    tap_ok(k == N, "output_stdout_bodies_whole: %d of %d bodies whole, nothing else (%zu bytes)", k,
           N, len);
    tap_ok(k == N && memcmp(order, got, sizeof order) == 0, "output_stdout_bodies_in_close_order");
    free(out);
}

/* Several threads share one cli_out, each with its own sinks; fd 1 is a pipe (writes past
 * PIPE_BUF are not atomic), drained by a reader thread. */
struct writer {
    cli_out *o;
    unsigned id0;
    uint32_t seed;
    int rc;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct body b[50];
    w->rc = run_bodies(w->o, b, 50, w->id0, 100000, &w->seed, NULL);
    return NULL;
}

struct drain {
    int fd;
    struct grow buf;
};

static void *drain_main(void *arg)
{
    struct drain *d = arg;
    char *tmp = malloc(65536);
    ssize_t r;
    while ((r = read(d->fd, tmp, 65536)) > 0 || (r < 0 && errno == EINTR))
        if (r > 0)
            grow_put(&d->buf, tmp, (size_t)r);
    free(tmp);
    return NULL;
}

static void test_stdout_threads(void)
{
    enum { T = 4 };
    cli_out *o;
    char err[256];
    if (cli_out_new(&o, CLI_OUT_STDOUT, NULL, NULL, 4096, err, sizeof err) != 0) {
        tap_ok(0, "output_stdout_threads: %s", err);
        return;
    }
    int p[2];
    if (pipe(p) != 0) {
        tap_ok(0, "output_stdout_threads: pipe");
        cli_out_free(o);
        return;
    }
    struct drain d = {.fd = p[0]};
    pthread_t dt, wt[T];
    struct writer w[T];
    fflush(stdout);
    saved_stdout = dup(1);
    dup2(p[1], 1);
    close(p[1]);
    pthread_create(&dt, NULL, drain_main, &d);
    for (unsigned t = 0; t < T; t++) {
        w[t] = (struct writer){.o = o, .id0 = t * 50, .seed = 777 + t};
        pthread_create(&wt[t], NULL, writer_main, &w[t]);
    }
    int rc = 0;
    for (unsigned t = 0; t < T; t++) {
        pthread_join(wt[t], NULL);
        rc |= w[t].rc;
    }
    cli_out_free(o);
    capture_end(); /* closes the last write end: the reader sees EOF */
    pthread_join(dt, NULL);
    close(p[0]);
    int seen[T * 50] = {0};
    int k = parse_blocks(d.buf.p ? d.buf.p : "", d.buf.len, T * 50, seen, NULL);
    tap_ok(rc == 0 && k == T * 50,
           "output_stdout_threads_bodies_whole: %d of %d bodies of %d threads whole (%zu bytes)", k,
           T * 50, T, d.buf.len);
    free(d.buf.p);
}

/* ---- spilling ---------------------------------------------------------------------------- */

static char tmpdir[PATH_MAX];

/* Open descriptors whose file lies in dir (an O_TMPFILE shows as "dir/#123 (deleted)"). */
static int fds_in(const char *dir)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    struct dirent *e;
    size_t dl = strlen(dir);
    while ((e = readdir(d))) {
        char link[PATH_MAX + 32], target[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t r = readlink(link, target, sizeof target - 1);
        if (r <= 0)
            continue;
        target[r] = '\0';
        if (strncmp(target, dir, dl) == 0 && target[dl] == '/')
            n++;
    }
    closedir(d);
    return n;
}

/* Entries of a directory other than . and .. ; with a name matching part (NULL: any). */
static int entries(const char *dir, const char *part)
{
    int n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && (!part || strstr(e->d_name, part)))
            n++;
    closedir(d);
    return n;
}

static void test_spill(void)
{
    char path[PATH_MAX], err[256];
    snprintf(tmpdir, sizeof tmpdir, "%s/tmp", base);
    mkdir(tmpdir, 0700);
    setenv("TMPDIR", tmpdir, 1);
    snprintf(path, sizeof path, "%s/spill-out", base);
    cli_out *o;
    if (cli_out_new(&o, CLI_OUT_STDOUT, NULL, NULL, 1000, err, sizeof err) != 0) {
        tap_ok(0, "output_spill: %s", err);
        return;
    }
    cli_sink *small, *big, *dropped;
    enum { BIG = 300000 };
    char *body = malloc(BIG);
    for (size_t j = 0; j < BIG; j++)
        body[j] = gen(1, j);
    capture_file(path);
    int rc = cli_sink_open(o, "http://h/a", 0, &small);
    rc |= cli_sink_open(o, "http://h/b", 1, &big);
    rc |= cli_sink_open(o, "http://h/c", 2, &dropped);
    rc |= cli_sink_head(small, "HEAD 0 10\n", 10);
    for (size_t j = 0; j < 10; j++)
        rc |= cli_sink_write(small, (char[]){gen(0, j)}, 1);
    int fds_small = fds_in(tmpdir);
    rc |= cli_sink_head(big, "HEAD 1 300000\n", 14);
    for (size_t j = 0; j < BIG; j += 1000)
        rc |= cli_sink_write(big, body + j, 1000);
    rc |= cli_sink_write(dropped, body, BIG);
    int fds_spilled = fds_in(tmpdir);
    rc |= cli_sink_close(big, true);
    rc |= cli_sink_close(dropped, false);
    rc |= cli_sink_close(small, true);
    int fds_after = fds_in(tmpdir);
    capture_end();
    cli_out_free(o);
    free(body);
    size_t len;
    char *out = slurp(path, &len);
    int seen[2] = {0};
    unsigned order[2];
    int k = parse_blocks(out, len, 2, seen, order);
    tap_ok(rc == 0, "output_spill_calls_succeed");
    tap_ok(fds_small == 0, "output_spill_small_body_stays_in_memory (%d temp fds)", fds_small);
    tap_ok(fds_spilled == 2, "output_spill_past_bound_uses_tmpdir (%d temp fds in $TMPDIR)",
           fds_spilled);
    tap_ok(k == 2 && order[0] == 1 && order[1] == 0,
           "output_spill_body_whole_after_spill (%d bodies, %zu bytes)", k, len);
    tap_ok(fds_after == 0 && entries(tmpdir, NULL) == 0,
           "output_spill_temp_file_gone (%d fds, %d files left in $TMPDIR)", fds_after,
           entries(tmpdir, NULL));
    free(out);
}

/* ---- -o FILE and discard --------------------------------------------------------------- */

static void test_file(void)
{
    char path[PATH_MAX], err[256];
    snprintf(path, sizeof path, "%s/ofile", base);
    FILE *f = fopen(path, "w");
    fputs("stale content that must go\n", f);
    fclose(f);
    cli_out *o;
    int rc = cli_out_new(&o, CLI_OUT_FILE, path, NULL, 64, err, sizeof err);
    struct body b[20];
    unsigned order[20], got[20];
    int seen[20] = {0};
    uint32_t st = 99;
    if (rc == 0) {
        rc = run_bodies(o, b, 20, 0, 3000, &st, order);
        cli_out_free(o);
    }
    size_t len;
    char *out = slurp(path, &len);
    int k = parse_blocks(out, len, 20, seen, got);
    tap_ok(rc == 0 && k == 20 && memcmp(order, got, sizeof order) == 0,
           "output_file_truncated_bodies_whole_in_close_order (%d bodies)", k);
    free(out);

    rc = cli_out_new(&o, CLI_OUT_FILE, "/dev/null", NULL, 0, err, sizeof err);
    cli_sink *s = NULL;
    if (rc == 0) {
        rc |= cli_sink_open(o, "http://h/", 0, &s);
        rc |= cli_sink_write(s, "abc", 3);
        rc |= cli_sink_close(s, true);
        cli_out_free(o);
    }
    tap_ok(rc == 0 && s != NULL, "output_file_dev_null_works");

    s = (cli_sink *)&rc;
    rc = cli_out_new(&o, CLI_OUT_DISCARD, NULL, NULL, 0, err, sizeof err);
    if (rc == 0) {
        rc |= cli_sink_open(o, "http://h/", 0, &s);
        rc |= cli_sink_head(s, "h", 1);
        rc |= cli_sink_write(s, "abc", 3);
        rc |= cli_sink_close(s, true);
        cli_out_free(o);
    }
    tap_ok(rc == 0 && s == NULL, "output_discard_gives_null_sink_and_accepts_it");
}

static void test_epipe(void)
{
    char err[256];
    cli_out *o;
    cli_sink *s;
    int p[2];
    signal(SIGPIPE, SIG_IGN);
    if (pipe(p) != 0 || cli_out_new(&o, CLI_OUT_STDOUT, NULL, NULL, 0, err, sizeof err) != 0) {
        tap_ok(0, "output_stdout_epipe: setup");
        return;
    }
    close(p[0]);
    fflush(stdout);
    saved_stdout = dup(1);
    dup2(p[1], 1);
    close(p[1]);
    cli_sink_open(o, "http://h/", 0, &s);
    cli_sink_write(s, "abc", 3);
    int rc = cli_sink_close(s, true);
    cli_sink_open(o, "http://h/", 1, &s);
    cli_sink_write(s, "abc", 3);
    int rc2 = cli_sink_close(s, true);
    capture_end();
    cli_out_free(o);
    tap_ok(rc == -EPIPE && rc2 == -EPIPE, "output_stdout_epipe_returned (%d, then %d)", rc, rc2);
}

/* ---- -O: names from URLs ------------------------------------------------------------------ */

static char odir[PATH_MAX];

static int file_is(const char *name, const char *want)
{
    char path[PATH_MAX + 256];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", odir, name);
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    size_t len;
    char *got = slurp(path, &len);
    int ok = got && len == strlen(want) && memcmp(got, want, len) == 0;
    free(got);
    return ok;
}

static void test_remote_names(void)
{
    char err[256], path[PATH_MAX + 64], big[6000], utf[400];
    snprintf(odir, sizeof odir, "%s/out", base);
    mkdir(odir, 0700);
    /* Planted: a symlink under a final name pointing out of the directory, one under the
     * temporary name of request 17, and a file that must not be replaced. */
    snprintf(path, sizeof path, "%s/target.txt", odir);
    symlink("../outside.txt", path);
    snprintf(path, sizeof path, "%s/.asyncget-%ld-17.part", odir, (long)getpid());
    symlink("../outside-tmp", path);
    snprintf(path, sizeof path, "%s/exists.txt", odir);
    FILE *f = fopen(path, "w");
    fputs("old", f);
    fclose(f);

    memcpy(big, "http://h/", 9);
    memset(big + 9, 'x', 5000);
    big[5009] = '\0';
    char longname[201];
    memset(longname, 'x', 200);
    longname[200] = '\0';
    strcpy(utf, "http://h/a");
    for (int i = 0; i < 150; i++)
        strcat(utf, "\xc3\xa9");
    char utfname[256] = "a";
    for (int i = 0; i < 99; i++)
        strcat(utfname, "\xc3\xa9");

    struct {
        const char *url, *name;
    } cases[] = {
        {"http://h/../../etc/passwd", "passwd"},
        {"http://h/a/..", "_."},       /* ".." as the last segment */
        {"http://h/%2e%2e", "%2e%2e"}, /* not decoded */
        {"http://h/%2e%2e%2f%2e%2e%2fpasswd", "%2e%2e%2f%2e%2e%2fpasswd"},
        {"http://h/a\x01"
         "b\nc\x7f",
         "a_b_c_"},                        /* control bytes */
        {big, longname},                   /* 5000 bytes: cut to 200 */
        {"http://h", "index.html"},        /* no path */
        {"http://h/dir/", "index.html.1"}, /* trailing slash */
        {"http://h/file.txt?q=/../../x#f/../y", "file.txt"},
        {"http://h/f#/../../z", "f"},
        {"http://h/target.txt", "target.txt.1"}, /* a symlink holds the name */
        {"http://h/exists.txt", "exists.txt.1"}, /* a file holds the name */
        {"http://a/same.bin", "same.bin"},
        {"http://b/same.bin", "same.bin.1"},
        {"http://h/.hidden", "_hidden"},
        {"http://h/..\\..\\win", "_._.._win"},
        {utf, utfname},                          /* cut on a UTF-8 boundary */
        {"http://h/planted.txt", "planted.txt"}, /* its temporary name is a symlink */
        {"example.com/no-scheme", "no-scheme"},
        {"http://h?x=/y", "index.html.2"},
        {"http://h/.", "_"},
    };
    enum { NC = sizeof cases / sizeof cases[0] };
    cli_out *o;
    if (cli_out_new(&o, CLI_OUT_REMOTE, NULL, odir, 0, err, sizeof err) != 0) {
        tap_ok(0, "output_remote_names: %s", err);
        return;
    }
    /* All open at once, closed in reverse: the numbering follows the order of completion. */
    cli_sink *s[NC];
    int rc = 0;
    for (unsigned i = 0; i < NC; i++) {
        char body[32];
        int n = snprintf(body, sizeof body, "body %u\n", i);
        rc |= cli_sink_open(o, cases[i].url, i, &s[i]);
        if (s[i]) {
            rc |= cli_sink_head(s[i], "H\n", 2);
            rc |= cli_sink_write(s[i], body, (size_t)n);
        }
    }
    int parts_open = entries(odir, ".part");
    for (unsigned i = 0; i < NC; i++)
        rc |= cli_sink_close(s[i], true);
    cli_out_free(o);
    tap_ok(rc == 0, "output_remote_calls_succeed");
    tap_ok(parts_open == NC + 1, "output_remote_written_under_temporary_names (%d .part)",
           parts_open);
    int bad = 0;
    for (unsigned i = 0; i < NC; i++) {
        char want[32];
        snprintf(want, sizeof want, "H\nbody %u\n", i);
        if (!file_is(cases[i].name, want)) {
            bad++;
            tap_diag("case %u: no file \"%s\" with its body", i, cases[i].name);
        }
    }
    tap_ok(bad == 0, "output_remote_names_sanitised (%d of %d wrong)", bad, NC);
    /* What is in DIR: the cases, exists.txt, the two planted symlinks; nothing else. */
    tap_ok(entries(odir, NULL) == NC + 3, "output_remote_nothing_else_in_dir (%d entries)",
           entries(odir, NULL));
    tap_ok(entries(base, "outside") == 0, "output_remote_nothing_outside_dir");
    struct stat st;
    snprintf(path, sizeof path, "%s/target.txt", odir);
    int link_kept = lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
    tap_ok(link_kept && file_is("exists.txt", "old"),
           "output_remote_never_overwrites (planted symlink and file untouched)");
}

static void test_remote_same_name(void)
{
    char err[256], dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/same", base);
    mkdir(dir, 0700);
    snprintf(odir, sizeof odir, "%s", dir);
    cli_out *o;
    enum { N = 30 };
    cli_sink *s[N];
    int rc = cli_out_new(&o, CLI_OUT_REMOTE, NULL, dir, 0, err, sizeof err);
    for (unsigned i = 0; rc == 0 && i < N; i++) {
        char body[32];
        int n = snprintf(body, sizeof body, "body %u\n", i);
        rc |= cli_sink_open(o, "http://h/r", i, &s[i]);
        rc |= cli_sink_write(s[i], body, (size_t)n);
    }
    for (unsigned i = 0; rc == 0 && i < N; i++)
        rc |= cli_sink_close(s[i], true);
    if (o)
        cli_out_free(o);
    int bad = 0;
    for (unsigned i = 0; i < N; i++) {
        char name[32], want[32];
        snprintf(name, sizeof name, i ? "r.%u" : "r", i);
        snprintf(want, sizeof want, "body %u\n", i);
        bad += !file_is(name, want);
    }
    tap_ok(rc == 0 && bad == 0 && entries(dir, NULL) == N,
           "output_remote_same_name_all_kept (%d of %d wrong, %d files)", bad, N,
           entries(dir, NULL));
}

static void test_remote_drop(void)
{
    char err[256], dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/drop", base);
    mkdir(dir, 0700);
    cli_out *o;
    cli_sink *s[10];
    int rc = cli_out_new(&o, CLI_OUT_REMOTE, NULL, dir, 0, err, sizeof err);
    for (unsigned i = 0; rc == 0 && i < 10; i++) {
        rc |= cli_sink_open(o, "http://h/d", i, &s[i]);
        rc |= cli_sink_write(s[i], "partial", 7);
    }
    int during = entries(dir, NULL);
    for (unsigned i = 0; rc == 0 && i < 10; i++)
        rc |= cli_sink_close(s[i], false);
    cli_out_free(o);
    tap_ok(rc == 0 && during == 10 && entries(dir, NULL) == 0,
           "output_remote_keep_false_leaves_nothing (%d while open, %d after)", during,
           entries(dir, NULL));
}

/* run.c hands the -i head over when the response is complete, after the body: it must still
 * come first, in memory, spilled, and in a -O file. */
static void test_head_after_body(void)
{
    char err[256], path[PATH_MAX + 64], dir[PATH_MAX];
    snprintf(path, sizeof path, "%s/head-out", base);
    snprintf(dir, sizeof dir, "%s/head", base);
    mkdir(dir, 0700);
    cli_out *o;
    cli_sink *a = NULL, *b = NULL, *c = NULL;
    int rc = cli_out_new(&o, CLI_OUT_STDOUT, NULL, NULL, 100, err, sizeof err);
    if (rc == 0) {
        capture_file(path);
        rc |= cli_sink_open(o, "http://h/a", 0, &a);
        rc |= cli_sink_open(o, "http://h/b", 1, &b);
        rc |= cli_sink_write(a, "small", 5);
        for (int i = 0; i < 100; i++)
            rc |= cli_sink_write(b, "0123456789", 10);
        rc |= cli_sink_head(a, "HA\n", 3);
        rc |= cli_sink_head(b, "HB\n", 3);
        rc |= cli_sink_write(a, "!", 1);
        rc |= cli_sink_close(a, true);
        rc |= cli_sink_close(b, true);
        capture_end();
        cli_out_free(o);
    }
    size_t len;
    char *out = slurp(path, &len);
    int ok = out && len == 3 + 6 + 3 + 1000 && memcmp(out, "HA\nsmall!HB\n0123", 16) == 0;
    free(out);
    tap_ok(rc == 0 && ok, "output_head_before_body_in_memory_and_spilled (%zu bytes)", len);

    rc = cli_out_new(&o, CLI_OUT_REMOTE, NULL, dir, 0, err, sizeof err);
    if (rc == 0) {
        rc |= cli_sink_open(o, "http://h/late", 0, &c);
        for (int i = 0; i < 10000; i++)
            rc |= cli_sink_write(c, "0123456789", 10);
        rc |= cli_sink_head(c, "HC\n", 3);
        rc |= cli_sink_close(c, true);
        cli_out_free(o);
    }
    snprintf(path, sizeof path, "%s/late", dir);
    out = slurp(path, &len);
    ok = out && len == 3 + 100000 && memcmp(out, "HC\n0123", 7) == 0 &&
         memcmp(out + len - 10, "0123456789", 10) == 0;
    free(out);
    tap_ok(rc == 0 && ok && entries(dir, NULL) == 1,
           "output_head_before_body_in_remote_file (%zu bytes, %d files)", len, entries(dir, NULL));
}

static cli_out *sig_out;
static void on_usr1(int sig)
{
    (void)sig;
    cli_out_remove_temps(sig_out);
}

static void test_remote_remove_temps(void)
{
    char err[256], dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/sig", base);
    mkdir(dir, 0700);
    cli_sink *s[5];
    /* 70 sinks: more than one chunk of slots. */
    cli_sink *many[70];
    int rc = cli_out_new(&sig_out, CLI_OUT_REMOTE, NULL, dir, 0, err, sizeof err);
    for (unsigned i = 0; rc == 0 && i < 5; i++) {
        rc |= cli_sink_open(sig_out, "http://h/sig", i, &s[i]);
        rc |= cli_sink_write(s[i], "half", 4);
    }
    for (unsigned i = 0; rc == 0 && i < 70; i++)
        rc |= cli_sink_open(sig_out, "http://h/many", 100 + i, &many[i]);
    for (unsigned i = 0; rc == 0 && i < 70; i++)
        rc |= cli_sink_close(many[i], false);
    int before = entries(dir, ".part");
    signal(SIGUSR1, on_usr1);
    raise(SIGUSR1);
    signal(SIGUSR1, SIG_DFL);
    int after = entries(dir, ".part");
    /* A body whose temporary file is gone cannot take its final name. */
    int rc_keep = cli_sink_close(s[0], true);
    int finals = entries(dir, "sig");
    /* The rest are left open: cli_out_free drops them (ASan sees any leak). */
    cli_sink *more[3];
    for (unsigned i = 0; rc == 0 && i < 3; i++) {
        rc |= cli_sink_open(sig_out, "http://h/more", 200 + i, &more[i]);
        rc |= cli_sink_write(more[i], "half", 4);
    }
    int open_parts = entries(dir, ".part");
    cli_out_free(sig_out);
    sig_out = NULL;
    tap_ok(rc == 0 && before == 5 && after == 0,
           "output_remove_temps_from_signal_handler (%d .part before, %d after)", before, after);
    tap_ok(rc_keep < 0 && finals == 0,
           "output_remove_temps_no_final_name_after (close: %d, %d final files)", rc_keep, finals);
    tap_ok(open_parts == 3 && entries(dir, NULL) == 0,
           "output_free_removes_open_temps (%d .part open, %d entries after)", open_parts,
           entries(dir, NULL));
}

static void test_remote_bad_dir(void)
{
    char err[256] = "", dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/does-not-exist", base);
    cli_out *o = (cli_out *)err;
    int rc = cli_out_new(&o, CLI_OUT_REMOTE, NULL, dir, 0, err, sizeof err);
    tap_ok(rc == -ENOENT && o == NULL && strstr(err, "does-not-exist"),
           "output_remote_missing_dir_is_an_error (%d: %s)", rc, err);
}

static void rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char sub[PATH_MAX + 256];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rm_rf(sub);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

int main(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(base, sizeof base, "%s/test-output-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(base)) {
        tap_ok(0, "mkdtemp: %s", strerror(errno));
        return tap_done();
    }
    char real[PATH_MAX];
    if (realpath(base, real) && strlen(real) < sizeof base)
        memcpy(base, real, strlen(real) + 1);
    test_stdout_interleaved();
    test_stdout_threads();
    test_spill();
    test_file();
    test_epipe();
    test_remote_names();
    test_remote_same_name();
    test_remote_drop();
    test_remote_remove_temps();
    test_head_after_body();
    test_remote_bad_dir();
    rm_rf(base);
    return tap_done();
}
