/* timer.c: the binary min-heap of monotonic deadlines behind the loop's timers. */
#include "core/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

int64_t ag_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Ties are broken by nothing: timers with one deadline fire in heap order, which is fine because
 * nothing in asyncget depends on the order of equal deadlines. */
static inline bool before(const ag_timer *a, const ag_timer *b)
{
    return a->deadline_ns < b->deadline_ns;
}

/* A timer's heap_index holds its position plus one, so that 0, the value of a zero-filled
 * timer, means "not armed". */
static void place(ag__timer_heap *h, size_t i, ag_timer *t)
{
    h->items[i] = t;
    t->heap_index = i + 1;
}

static void sift_up(ag__timer_heap *h, size_t i)
{
    ag_timer *t = h->items[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(t, h->items[parent]))
            break;
        place(h, i, h->items[parent]);
        i = parent;
    }
    place(h, i, t);
}

static void sift_down(ag__timer_heap *h, size_t i)
{
    ag_timer *t = h->items[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->len)
            break;
        if (child + 1 < h->len && before(h->items[child + 1], h->items[child]))
            child++;
        if (!before(h->items[child], t))
            break;
        place(h, i, h->items[child]);
        i = child;
    }
    place(h, i, t);
}

int ag__timer_heap_push(ag__timer_heap *h, ag_timer *t)
{
    if (h->len == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        ag_timer **items = realloc(h->items, cap * sizeof *items);
        if (!items)
            return -ENOMEM;
        h->items = items;
        h->cap = cap;
    }
    h->items[h->len] = t;
    t->heap_index = ++h->len;
    sift_up(h, h->len - 1);
    return 0;
}

void ag__timer_heap_remove(ag__timer_heap *h, ag_timer *t)
{
    size_t i = t->heap_index - 1;
    if (t->heap_index == 0 || i >= h->len || h->items[i] != t)
        return;
    t->heap_index = 0;
    h->len--;
    if (i == h->len)
        return;
    ag_timer *last = h->items[h->len];
    place(h, i, last);
    if (i > 0 && before(last, h->items[(i - 1) / 2]))
        sift_up(h, i);
    else
        sift_down(h, i);
}

void ag__timer_heap_free(ag__timer_heap *h)
{
    /* The timers are their owners': left in the heap, they must not say they are armed. */
    for (size_t i = 0; i < h->len; i++)
        h->items[i]->heap_index = 0;
    free(h->items);
    h->items = NULL;
    h->len = h->cap = 0;
}

void ag_timer_init(ag_timer *timer, ag_timer_cb cb, void *arg)
{
    timer->deadline_ns = 0;
    timer->cb = cb;
    timer->arg = arg;
    timer->heap_index = 0;
}

int ag_timer_armed(const ag_timer *timer)
{
    return timer->heap_index != 0;
}

int ag_timer_start(ag_loop *loop, ag_timer *timer, int64_t deadline_ns)
{
    /* A zero-filled timer has no callback: armed, it would be called through NULL when due. */
    if (!loop || !timer || !timer->cb)
        return -EINVAL;
    if (ag_timer_armed(timer))
        ag__timer_heap_remove(&loop->timers, timer);
    timer->deadline_ns = deadline_ns;
    int rc = ag__timer_heap_push(&loop->timers, timer);
    if (rc == 0)
        ag__loop_kick(loop);
    return rc;
}

void ag_timer_stop(ag_loop *loop, ag_timer *timer)
{
    if (ag_timer_armed(timer))
        ag__timer_heap_remove(&loop->timers, timer);
}
