/* test-stack.c: the coroutine stack pool's reuse order and the memory it keeps. */
#include "asyncget.h"
#include "core/internal.h"
#include "tests/tap.h"

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

/* Whether the page holding addr is resident. */
static int resident(void *addr)
{
    size_t ps = ag__page_size();
    unsigned char v = 0;
    void *page = (void *)((uintptr_t)addr & ~(uintptr_t)(ps - 1));
    return mincore(page, ps, &v) == 0 && (v & 1);
}

/* A pool that keeps 2 stacks warm gets back 4: the 2 over the cache lose their pages and must
 * not be the next handed out; the last warm one is. */
static void stack_warm_first(void)
{
    ag__stack_pool *pool;
    ag__stack_pool_new(&pool, 16 * 1024, 2);
    size_t size = ag__stack_size(pool);
    void *s[4];
    for (int i = 0; i < 4; i++) {
        ag__stack_get(pool, &s[i]);
        memset((char *)s[i] + size - 4096, 0x5a, 4096); /* the top page, as a coroutine would */
    }
    for (int i = 0; i < 4; i++)
        ag__stack_put(pool, s[i]);
    void *next;
    ag__stack_get(pool, &next);
    int which = -1;
    for (int i = 0; i < 4; i++)
        if (next == s[i])
            which = i;
    int warm = resident((char *)next + size - 1);
    tap_ok(which == 1 && warm,
           "stack_warm_first: stack %d of 4 handed out next (want 1, the last kept warm), top page "
           "resident %d",
           which, warm);
    ag__stack_put(pool, next);
    ag__stack_pool_free(pool);
}

int main(void)
{
    stack_warm_first();
    return tap_done();
}
