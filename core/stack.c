/* stack.c: coroutine stacks, mmap'd in slabs with a guard below each stack, and recycled.
 *
 * Scheme. A slab is one anonymous mapping holding many stacks, each laid out as
 * [guard][usable stack]. The guard is GUARD_BYTES, not one page: code without stack probes
 * (callbacks compiled without -fstack-clash-protection) can open a frame larger than a page
 * below the stack, and a one-page guard lets that frame's first write land in the live stack of
 * the coroutine below. A guard costs address space only, never memory. Where the kernel offers
 * MADV_GUARD_INSTALL (Linux 6.13+) the guard pages are markers inside that one mapping, so 100,000
 * stacks cost a few dozen mappings; elsewhere (older kernels, qemu-user and valgrind, which accept
 * the call but ignore it) each guard is a PROT_NONE page, which splits the mapping and costs about
 * two mappings per stack, so vm.max_map_count (65,530 by default) allows about 30,000 stacks. The
 * mode is probed once per process by asking the kernel to read from a guarded page: a real guard
 * makes write(2) fail with EFAULT.
 *
 * Memory: a stack costs only the pages its coroutine touched. Freed stacks go on a LIFO list so
 * the warmest stack is reused first; beyond the cache size of warm stacks their pages are
 * returned to the kernel and they wait below the warm ones.
 */
#include "core/internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ag_config.h"
#ifdef AG_HAVE_VALGRIND
#include <valgrind/valgrind.h>
#endif

#ifdef AG_ASAN
#include <sanitizer/asan_interface.h>
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux uapi value; glibc 2.36 does not define it */
#endif

/* Frames up to this size below a stack fault instead of writing a neighbour's stack. */
#define GUARD_BYTES (64 * 1024)

#define SLAB_MIN 16
#define SLAB_MAX 1024

typedef struct slab {
    struct slab *next;
    void *base;
    size_t len;
    size_t count;
#ifdef AG_HAVE_VALGRIND
    unsigned *vg_ids;
#endif
} slab;

struct ag__stack_pool {
    size_t size;  /* usable bytes per stack, page multiple */
    size_t cache; /* free stacks kept with their pages */
    slab *slabs;
    size_t next_slab;
    void **free; /* free stacks (their lowest usable byte): [0, ncold) without pages, then the
                  * warm ones, the most recently freed on top */
    size_t nfree, ncold, cap;
    size_t total; /* stacks in all slabs: the free list has room for all of them */
};

static size_t page_size;
static enum ag__guard_mode guard_mode;
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;

static void probe(void)
{
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    guard_mode = AG__GUARD_MPROTECT;
    char *p = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return;
    int fds[2];
    if (madvise(p, page_size, MADV_GUARD_INSTALL) == 0 && pipe(fds) == 0) {
        /* The kernel reads the guarded page on our behalf: a real guard fails without a signal. */
        if (write(fds[1], p, 1) < 0 && errno == EFAULT)
            guard_mode = AG__GUARD_MADVISE;
        close(fds[0]);
        close(fds[1]);
    }
    munmap(p, 2 * page_size);
}

enum ag__guard_mode ag__stack_guard_mode(void)
{
    pthread_once(&probe_once, probe);
    return guard_mode;
}

size_t ag__page_size(void)
{
    pthread_once(&probe_once, probe);
    return page_size;
}

int ag__stack_pool_new(ag__stack_pool **out, size_t stack_size, size_t cache)
{
    size_t ps = ag__page_size();
    ag__stack_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return -ENOMEM;
    if (stack_size < 4 * ps)
        stack_size = 4 * ps;
    pool->size = (stack_size + ps - 1) / ps * ps;
    pool->cache = cache;
    pool->next_slab = SLAB_MIN;
    *out = pool;
    return 0;
}

size_t ag__stack_size(const ag__stack_pool *pool)
{
    return pool->size;
}

static void slab_unmap(slab *s)
{
#ifdef AG_HAVE_VALGRIND
    if (s->vg_ids) {
        for (size_t i = 0; i < s->count; i++)
            VALGRIND_STACK_DEREGISTER(s->vg_ids[i]);
        free(s->vg_ids);
    }
#endif
    munmap(s->base, s->len);
    free(s);
}

static int add_slab(ag__stack_pool *pool)
{
    size_t ps = ag__page_size();
    size_t guard_len = (GUARD_BYTES + ps - 1) / ps * ps;
    size_t stride = pool->size + guard_len;
    size_t count = pool->next_slab;
    slab *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    /* Make sure the free list can take the whole slab before mapping anything. */
    while (pool->cap < pool->total + count) {
        size_t cap = pool->cap ? pool->cap * 2 : 64;
        void **v = realloc(pool->free, cap * sizeof *v);
        if (!v) {
            free(s);
            return -ENOMEM;
        }
        pool->free = v;
        pool->cap = cap;
    }
    s->len = count * stride;
    s->count = count;
    s->base = mmap(NULL, s->len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | AG__MAP_NORESERVE | AG__MAP_STACK, -1, 0);
    if (s->base == MAP_FAILED) {
        int err = -errno;
        free(s);
        return err;
    }
    enum ag__guard_mode mode = ag__stack_guard_mode();
    for (size_t i = 0; i < count; i++) {
        char *guard = (char *)s->base + i * stride;
        int rc = mode == AG__GUARD_MADVISE ? madvise(guard, guard_len, MADV_GUARD_INSTALL) : -1;
        if (rc != 0) /* not probed, or refused for this mapping (locked memory, say) */
            rc = mprotect(guard, guard_len, PROT_NONE);
        if (rc != 0) {
            /* Out of mappings (vm.max_map_count) shows up here as ENOMEM. */
            int err = -errno;
            munmap(s->base, s->len);
            free(s);
            return err;
        }
    }
#ifdef AG_HAVE_VALGRIND
    if (RUNNING_ON_VALGRIND) {
        s->vg_ids = calloc(count, sizeof *s->vg_ids);
        for (size_t i = 0; s->vg_ids && i < count; i++) {
            char *lo = (char *)s->base + i * stride + guard_len;
            s->vg_ids[i] = VALGRIND_STACK_REGISTER(lo, lo + pool->size);
        }
    }
#endif
    /* Push in reverse so the lowest stack is handed out first. Untouched, they have no pages:
     * they go below the warm ones (none are left: a slab is added when the list is empty). */
    for (size_t i = count; i-- > 0;)
        pool->free[pool->nfree++] = (char *)s->base + i * stride + guard_len;
    pool->ncold = pool->nfree;
    s->next = pool->slabs;
    pool->slabs = s;
    pool->total += count;
    if (pool->next_slab < SLAB_MAX)
        pool->next_slab *= 2;
    return 0;
}

int ag__stack_get(ag__stack_pool *pool, void **lo)
{
    if (pool->nfree == 0) {
        int rc = add_slab(pool);
        if (rc < 0)
            return rc;
    }
    *lo = pool->free[--pool->nfree];
    if (pool->ncold > pool->nfree)
        pool->ncold = pool->nfree; /* the warm ones are gone: this one had no pages */
#ifdef AG_ASAN
    /* A finished coroutine leaves its frames' redzones poisoned; the next one starts clean. */
    __asan_unpoison_memory_region(*lo, pool->size);
#endif
    return 0;
}

void ag__stack_put(ag__stack_pool *pool, void *lo)
{
    /* The free list always has room: add_slab sized it for every stack of every slab. */
    if (pool->nfree - pool->ncold < pool->cache) {
        pool->free[pool->nfree++] = lo; /* warm, on top: handed out next */
        return;
    }
    /* Too many warm stacks: give the pages back but keep the address range, and file the stack
     * below the warm ones, or the next coroutine would fault its pages in again while warm
     * stacks wait. The warm stack displaced from the boundary goes on top. */
    madvise(lo, pool->size, MADV_DONTNEED);
    if (pool->ncold < pool->nfree)
        pool->free[pool->nfree] = pool->free[pool->ncold];
    pool->free[pool->ncold++] = lo;
    pool->nfree++;
}

void ag__stack_pool_free(ag__stack_pool *pool)
{
    if (!pool)
        return;
    for (slab *s = pool->slabs, *next; s; s = next) {
        next = s->next;
        slab_unmap(s);
    }
    free(pool->free);
    free(pool);
}
