/* output.c: where response bodies go: whole to stdout or to one file, never interleaved with
 * another body, or a file per URL under --output-dir, written under a temporary name.
 *
 * stdout and -o FILE: a body is held in memory up to `spill` bytes (1 MiB by default), past that
 * in an anonymous file in $TMPDIR, and written out at once when the request completes, under one
 * lock, so bodies of requests in flight (on any thread) never mix. -o - is stdout.
 *
 * -O: the file is written through under ".asyncget-<pid>-<urlnum>.part" (a "-N" is added when
 * that name exists) in the directory, created O_EXCL|O_NOFOLLOW relative to the directory's fd,
 * and renamed at the end with RENAME_NOREPLACE (or link+unlink), so a half body never has a
 * final name and nothing existing is replaced, a symlink included. The final name is the URL's
 * last path segment, not percent-decoded (name_from_url says the rules); when it is taken, ".1",
 * ".2", ... are appended to the whole name, as curl's --no-clobber does (index.html.1). */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A body waits in memory up to this many bytes, then moves to an anonymous temporary file in
 * $TMPDIR (so memory stays bounded by spill times the requests in flight). */
#define SPILL_DEFAULT (1u << 20)
/* Bytes of a -O file name taken from the URL (NAME_MAX is 255; room is left for ".NNNNNN"). */
#define NAME_BYTES 200
/* The name given when the URL's last path segment is empty ("http://h" or "http://h/"). curl
 * refuses such a URL with -O ("Remote file name has no length"); a name lets the run go on. */
#define NAME_EMPTY "index.html"
/* Suffixes tried after a name is taken: name.1 ... (curl's --no-clobber form). */
#define SUFFIX_MAX 1000000u
/* Copying a spilled body out goes through one heap buffer per cli_out (coroutine stacks are
 * small). */
#define COPY_BYTES      (64 * 1024)
#define TMPNAME_BYTES   64
#define SLOTS_PER_CHUNK 64
#define NAME_CACHE      64

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "slot states must be lock-free for signal handlers");

/* The temporary names of -O sinks, readable from a signal handler: chunks of slots in a list
 * that only grows (until cli_out_free), so there is no limit but memory. A slot goes FREE ->
 * OWNED (its owner writes the name) -> LIVE (the file may exist) -> FREE; a remover takes a LIVE
 * slot to BUSY while it unlinks, and the owner waits for it to come back before changing it. */
enum { SLOT_FREE, SLOT_OWNED, SLOT_LIVE, SLOT_BUSY };

struct tmp_slot {
    _Atomic int state;
    char name[TMPNAME_BYTES];
};

struct tmp_chunk {
    struct tmp_slot slot[SLOTS_PER_CHUNK];
    _Atomic(struct tmp_chunk *) next;
};

/* Where the numbering of a name last stopped, so that many bodies of one name (--repeat with
 * -O) do not each probe every suffix from 1. A hint only: the rename itself refuses to
 * overwrite. */
struct name_hint {
    char *name;
    unsigned next;
};

struct cli_out {
    int mode;
    int fd;    /* STDOUT and FILE: where bodies go */
    int dirfd; /* REMOTE: --output-dir */
    bool own_fd;
    size_t spill;
    char *tmpdir;
    pid_t pid;
    pthread_mutex_t lock; /* the output fd, err, sinks, copy buffer, hints */
    int err;              /* the first failed write to fd: later bodies are not written */
    char *copy;
    cli_sink *sinks; /* open sinks, so that cli_out_free can drop them */
    struct name_hint hints[NAME_CACHE];
    struct tmp_chunk *chunks; /* the first chunk: never changes once set */
};

struct cli_sink {
    cli_out *o;
    cli_sink *prev, *next;
    char *mem; /* the body in memory (STDOUT, FILE) */
    size_t len, cap;
    int fd;  /* the spill file (STDOUT, FILE) or the temporary file (REMOTE); -1 */
    int err; /* the first failed write: the request aborts, close reports it */
    /* The -i head: it goes before the body whenever it comes (run.c has it only once the
     * response is complete). In -O, a head before any body byte goes straight to the file. */
    char *head;
    size_t head_len;
    uint64_t body_bytes; /* -O: written to the file */
    uint64_t urlnum;
    char *name;            /* REMOTE: the final name, before any suffix */
    struct tmp_slot *slot; /* REMOTE: the temporary name */
};

static int set_err(char *err, size_t errlen, int rc, const char *fmt, const char *arg)
{
    if (err && errlen) {
        char msg[256];
        snprintf(msg, sizeof msg, fmt, arg);
        snprintf(err, errlen, "%s: %s", msg, strerror(-rc));
    }
    return rc;
}

/* All of n bytes to fd: short writes and EINTR go on; a non-blocking fd waits in poll. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
                    return -errno;
                continue;
            }
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int cli_out_new(cli_out **out, int mode, const char *path, const char *dir, size_t spill, char *err,
                size_t errlen)
{
    int rc;
    cli_out *o = calloc(1, sizeof *o);
    *out = NULL;
    if (!o)
        return set_err(err, errlen, -ENOMEM, "%s", "output");
    o->mode = mode;
    o->fd = -1;
    o->dirfd = -1;
    o->spill = spill ? spill : SPILL_DEFAULT;
    o->pid = getpid();
    if ((rc = pthread_mutex_init(&o->lock, NULL)) != 0) {
        free(o);
        return set_err(err, errlen, -rc, "%s", "output");
    }
    const char *t = getenv("TMPDIR");
    o->tmpdir = strdup(t && *t ? t : "/tmp");
    if (!o->tmpdir) {
        rc = set_err(err, errlen, -ENOMEM, "%s", "output");
        goto fail;
    }
    switch (mode) {
    case CLI_OUT_STDOUT:
        o->fd = STDOUT_FILENO;
        break;
    case CLI_OUT_FILE:
        if (!path) {
            rc = set_err(err, errlen, -EINVAL, "%s", "-o without a file");
            goto fail;
        }
        if (strcmp(path, "-") == 0) {
            o->fd = STDOUT_FILENO;
            break;
        }
        o->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (o->fd < 0) {
            rc = set_err(err, errlen, -errno, "%s", path);
            goto fail;
        }
        o->own_fd = true;
        break;
    case CLI_OUT_DISCARD:
        break;
    case CLI_OUT_REMOTE:
        if (!dir)
            dir = ".";
        o->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (o->dirfd < 0) {
            rc = set_err(err, errlen, -errno, "%s", dir);
            goto fail;
        }
        o->chunks = calloc(1, sizeof *o->chunks);
        if (!o->chunks) {
            rc = set_err(err, errlen, -ENOMEM, "%s", "output");
            goto fail;
        }
        break;
    default:
        rc = set_err(err, errlen, -EINVAL, "%s", "output mode");
        goto fail;
    }
    *out = o;
    return 0;
fail:
    cli_out_free(o);
    return rc;
}

/* ---- the temporary names of -O (signal-safe side) --------------------------------------- */

/* Take slot s away from any remover: LIVE -> OWNED, waiting while a remover holds it. */
static void slot_own(struct tmp_slot *s)
{
    for (;;) {
        int want = SLOT_LIVE;
        if (atomic_compare_exchange_weak(&s->state, &want, SLOT_OWNED))
            return;
        if (want == SLOT_OWNED)
            return;
        /* BUSY: a remover is between its load of the name and its unlink; it is short. */
        sched_yield();
    }
}

static struct tmp_slot *slot_claim(cli_out *o)
{
    struct tmp_chunk *c = o->chunks, *last = NULL;
    for (; c; last = c, c = atomic_load(&c->next)) {
        for (int i = 0; i < SLOTS_PER_CHUNK; i++) {
            int want = SLOT_FREE;
            if (atomic_compare_exchange_strong(&c->slot[i].state, &want, SLOT_OWNED))
                return &c->slot[i];
        }
    }
    struct tmp_chunk *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    atomic_store(&n->slot[0].state, SLOT_OWNED);
    /* Append at the tail; another thread may have appended first, then walk on. */
    for (;;) {
        struct tmp_chunk *expect = NULL;
        if (atomic_compare_exchange_strong(&last->next, &expect, n))
            return &n->slot[0];
        last = expect;
    }
}

void cli_out_remove_temps(cli_out *o)
{
    if (!o || o->mode != CLI_OUT_REMOTE)
        return;
    int saved = errno;
    for (struct tmp_chunk *c = o->chunks; c; c = atomic_load(&c->next)) {
        for (int i = 0; i < SLOTS_PER_CHUNK; i++) {
            struct tmp_slot *s = &c->slot[i];
            int want = SLOT_LIVE;
            if (!atomic_compare_exchange_strong(&s->state, &want, SLOT_BUSY))
                continue;
            unlinkat(o->dirfd, s->name, 0);
            atomic_store(&s->state, SLOT_LIVE);
        }
    }
    errno = saved;
}

/* ---- names of -O files ------------------------------------------------------------------ */

/* The URL's last path segment, query and fragment cut, not percent-decoded (as curl): every
 * control byte, DEL and backslash becomes '_', a leading '.' becomes '_' (so no ".", "..", or
 * hidden file, and no clash with the temporary names), at most NAME_BYTES bytes cut on a UTF-8
 * boundary; empty: NAME_EMPTY. The name never holds a '/', so it stays inside the directory. */
static char *name_from_url(const char *url)
{
    const char *start = strstr(url, "://");
    start = start ? start + 3 : url;
    size_t end = strcspn(start, "?#");
    const char *path = memchr(start, '/', end);
    const char *seg = start + end;
    if (path) {
        seg = path;
        for (const char *p = path; p < start + end; p++)
            if (*p == '/')
                seg = p + 1;
    }
    size_t n = (size_t)(start + end - seg);
    if (n == 0)
        return strdup(NAME_EMPTY);
    if (n > NAME_BYTES) {
        n = NAME_BYTES;
        while (n > 0 && ((unsigned char)seg[n] & 0xC0) == 0x80)
            n--;
    }
    char *name = malloc(n + 1);
    if (!name)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)seg[i];
        name[i] = (c < 0x20 || c == 0x7f || c == '\\' || c == '/') ? '_' : (char)c;
    }
    name[n] = '\0';
    if (name[0] == '.')
        name[0] = '_';
    return name;
}

static int temp_create(cli_sink *s)
{
    cli_out *o = s->o;
    s->slot = slot_claim(o);
    if (!s->slot)
        return -ENOMEM;
    /* The slot is LIVE before the file exists, so a remover never misses a file; unlinking a
     * name of this pid that is not there yet is harmless. */
    for (unsigned n = 0; n < 1000; n++) {
        if (n == 0)
            snprintf(s->slot->name, TMPNAME_BYTES, ".asyncget-%ld-%llu.part", (long)o->pid,
                     (unsigned long long)s->urlnum);
        else
            snprintf(s->slot->name, TMPNAME_BYTES, ".asyncget-%ld-%llu-%u.part", (long)o->pid,
                     (unsigned long long)s->urlnum, n);
        atomic_store(&s->slot->state, SLOT_LIVE);
        s->fd = openat(o->dirfd, s->slot->name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                       0666);
        if (s->fd >= 0)
            return 0;
        int rc = -errno;
        slot_own(s->slot);
        if (rc != -EEXIST) {
            atomic_store(&s->slot->state, SLOT_FREE);
            s->slot = NULL;
            return rc;
        }
    }
    atomic_store(&s->slot->state, SLOT_FREE);
    s->slot = NULL;
    return -EEXIST;
}

static unsigned hint_index(const char *name)
{
    unsigned h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % NAME_CACHE;
}

/* Move the temporary file to its name, or to name.1, name.2, ... when taken: never over
 * anything that exists (a file, a directory, a symlink, dangling or not). */
static int rename_noreplace(cli_out *o, const char *from, const char *to)
{
#ifdef RENAME_NOREPLACE
    if (renameat2(o->dirfd, from, o->dirfd, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return -errno;
#endif
    /* No renameat2 here: a hard link fails on any existing name just the same. */
    if (linkat(o->dirfd, from, o->dirfd, to, 0) != 0)
        return -errno;
    unlinkat(o->dirfd, from, 0);
    return 0;
}

static int temp_finish(cli_sink *s)
{
    cli_out *o = s->o;
    char cand[NAME_BYTES + 16];
    unsigned h = hint_index(s->name), n = 0;
    pthread_mutex_lock(&o->lock);
    if (o->hints[h].name && strcmp(o->hints[h].name, s->name) == 0)
        n = o->hints[h].next;
    pthread_mutex_unlock(&o->lock);
    int rc;
    for (;; n++) {
        if (n >= SUFFIX_MAX)
            return -EEXIST;
        if (n == 0)
            snprintf(cand, sizeof cand, "%s", s->name);
        else
            snprintf(cand, sizeof cand, "%s.%u", s->name, n);
        rc = rename_noreplace(o, s->slot->name, cand);
        if (rc != -EEXIST)
            break;
    }
    if (rc == 0) {
        pthread_mutex_lock(&o->lock);
        struct name_hint *hint = &o->hints[h];
        if (!hint->name || strcmp(hint->name, s->name) != 0) {
            free(hint->name);
            hint->name = strdup(s->name);
        }
        hint->next = n + 1;
        pthread_mutex_unlock(&o->lock);
    }
    return rc;
}

/* ---- sinks ------------------------------------------------------------------------------ */

int cli_sink_open(cli_out *o, const char *url, uint64_t urlnum, cli_sink **out)
{
    *out = NULL;
    if (!o || o->mode == CLI_OUT_DISCARD)
        return 0;
    cli_sink *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->o = o;
    s->fd = -1;
    s->urlnum = urlnum;
    if (o->mode == CLI_OUT_REMOTE) {
        int rc;
        s->name = name_from_url(url ? url : "");
        if (!s->name) {
            free(s);
            return -ENOMEM;
        }
        if ((rc = temp_create(s)) < 0) {
            free(s->name);
            free(s);
            return rc;
        }
    }
    pthread_mutex_lock(&o->lock);
    s->next = o->sinks;
    if (o->sinks)
        o->sinks->prev = s;
    o->sinks = s;
    pthread_mutex_unlock(&o->lock);
    *out = s;
    return 0;
}

/* An anonymous file in $TMPDIR: O_TMPFILE where the file system has it (no name ever exists),
 * else mkstemp and an unlink at once. */
static int spill_open(cli_out *o)
{
    int fd;
#ifdef O_TMPFILE
    fd = open(o->tmpdir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL && errno != ENOENT)
        return -errno;
#endif
    size_t n = strlen(o->tmpdir) + sizeof "/asyncget-XXXXXX";
    char *path = malloc(n);
    if (!path)
        return -ENOMEM;
    snprintf(path, n, "%s/asyncget-XXXXXX", o->tmpdir);
    fd = mkostemp(path, O_CLOEXEC);
    int rc = fd < 0 ? -errno : fd;
    if (fd >= 0)
        unlink(path);
    free(path);
    return rc;
}

static int sink_put(cli_sink *s, const char *p, size_t n)
{
    if (s->err)
        return s->err;
    if (n == 0)
        return 0;
    if (s->fd < 0 && s->len + n <= s->o->spill) {
        if (s->len + n > s->cap) {
            size_t cap = s->cap ? s->cap : 4096;
            while (cap < s->len + n)
                cap *= 2;
            if (cap > s->o->spill)
                cap = s->o->spill;
            char *m = realloc(s->mem, cap);
            if (!m)
                return s->err = -ENOMEM;
            s->mem = m;
            s->cap = cap;
        }
        memcpy(s->mem + s->len, p, n);
        s->len += n;
        return 0;
    }
    int rc;
    if (s->fd < 0) {
        /* Past the bound: what was held goes to the file first, then everything after. */
        if ((rc = spill_open(s->o)) < 0)
            return s->err = rc;
        s->fd = rc;
        if ((rc = write_all(s->fd, s->mem, s->len)) < 0)
            return s->err = rc;
        free(s->mem);
        s->mem = NULL;
        s->len = s->cap = 0;
    }
    if ((rc = write_all(s->fd, p, n)) < 0)
        return s->err = rc;
    return 0;
}

int cli_sink_head(cli_sink *s, const char *p, size_t n)
{
    if (!s)
        return 0;
    if (s->err)
        return s->err;
    if (s->o->mode == CLI_OUT_REMOTE && s->body_bytes == 0 && s->head_len == 0)
        return s->err = write_all(s->fd, p, n);
    char *h = realloc(s->head, s->head_len + n + 1);
    if (!h)
        return s->err = -ENOMEM;
    memcpy(h + s->head_len, p, n);
    s->head = h;
    s->head_len += n;
    return 0;
}

int cli_sink_write(void *sink, const char *p, size_t n)
{
    cli_sink *s = sink;
    if (!s)
        return 0;
    if (s->o->mode != CLI_OUT_REMOTE)
        return sink_put(s, p, n);
    if (s->err)
        return s->err;
    if ((s->err = write_all(s->fd, p, n)) == 0)
        s->body_bytes += n;
    return s->err;
}

/* -O, a head that came after body bytes: a new temporary file with the head, then the body
 * copied from the first one, which is removed. */
static int temp_prepend(cli_sink *s)
{
    struct tmp_slot *old = s->slot;
    int oldfd = s->fd, rc;
    char *buf = malloc(COPY_BYTES);
    if (!buf)
        return -ENOMEM;
    s->slot = NULL;
    if ((rc = temp_create(s)) < 0) {
        s->slot = old;
        s->fd = oldfd;
        free(buf);
        return rc;
    }
    rc = write_all(s->fd, s->head, s->head_len);
    for (off_t at = 0; rc == 0;) {
        ssize_t r = pread(oldfd, buf, COPY_BYTES, at);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : 0;
            break;
        }
        rc = write_all(s->fd, buf, (size_t)r);
        at += r;
    }
    free(buf);
    close(oldfd);
    slot_own(old);
    unlinkat(s->o->dirfd, old->name, 0);
    atomic_store(&old->state, SLOT_FREE);
    return rc;
}

/* The body whole to the output fd; o->lock held. */
static int sink_emit(cli_sink *s)
{
    cli_out *o = s->o;
    int rc;
    if (o->err)
        return o->err;
    if ((rc = write_all(o->fd, s->head, s->head_len)) < 0)
        return o->err = rc;
    if (s->fd < 0)
        return o->err = write_all(o->fd, s->mem, s->len);
    if (!o->copy && !(o->copy = malloc(COPY_BYTES)))
        return -ENOMEM;
    if (lseek(s->fd, 0, SEEK_SET) < 0)
        return -errno;
    for (;;) {
        ssize_t r = read(s->fd, o->copy, COPY_BYTES);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return o->err = -errno; /* part of the body may be out: stop the output here */
        if (r == 0)
            return 0;
        if ((rc = write_all(o->fd, o->copy, (size_t)r)) < 0)
            return o->err = rc;
    }
}

/* Release everything of s; o->lock held. */
static void sink_free_locked(cli_sink *s, bool unlink_temp)
{
    cli_out *o = s->o;
    if (s->prev)
        s->prev->next = s->next;
    else
        o->sinks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    if (s->fd >= 0)
        close(s->fd);
    if (s->slot) {
        slot_own(s->slot);
        if (unlink_temp)
            unlinkat(o->dirfd, s->slot->name, 0);
        atomic_store(&s->slot->state, SLOT_FREE);
    }
    free(s->mem);
    free(s->head);
    free(s->name);
    free(s);
}

void cli_out_lock(cli_out *o)
{
    pthread_mutex_lock(&o->lock);
}

void cli_out_unlock(cli_out *o)
{
    pthread_mutex_unlock(&o->lock);
}

int cli_sink_close(cli_sink *s, bool keep)
{
    if (!s)
        return 0;
    cli_out *o = s->o;
    int rc = s->err;
    if (o->mode == CLI_OUT_REMOTE) {
        if (keep && rc == 0 && s->head_len)
            rc = temp_prepend(s);
        if (keep && rc == 0) {
            int fd = s->fd;
            s->fd = -1;
            if (close(fd) != 0 && errno != EINTR)
                rc = -errno;
            if (rc == 0)
                rc = temp_finish(s);
        }
        pthread_mutex_lock(&o->lock);
        /* Whatever was not renamed is removed: no half body stays under any name. */
        sink_free_locked(s, !keep || rc != 0);
        pthread_mutex_unlock(&o->lock);
        return keep ? rc : 0;
    }
    pthread_mutex_lock(&o->lock);
    if (keep && rc == 0)
        rc = sink_emit(s);
    sink_free_locked(s, false);
    pthread_mutex_unlock(&o->lock);
    return keep ? rc : 0;
}

void cli_out_free(cli_out *o)
{
    if (!o)
        return;
    cli_out_remove_temps(o);
    while (o->sinks)
        sink_free_locked(o->sinks, true);
    if (o->own_fd && o->fd >= 0)
        close(o->fd);
    if (o->dirfd >= 0)
        close(o->dirfd);
    for (struct tmp_chunk *c = o->chunks, *n; c; c = n) {
        n = atomic_load(&c->next);
        free(c);
    }
    for (int i = 0; i < NAME_CACHE; i++)
        free(o->hints[i].name);
    free(o->copy);
    free(o->tmpdir);
    pthread_mutex_destroy(&o->lock);
    free(o);
}
