/* test-queue.c: the intrusive queue keeps FIFO order through pushes, pops, removals from the
 * middle and moves, and a removed element can be removed again without harm. */
#include "core/queue.h"
#include "tests/tap.h"

#include <string.h>

typedef struct item {
    int value;
    ag__queue link;
} item;

/* The values of q in order, as a string of digits. */
static const char *values(const ag__queue *q)
{
    static char buf[64];
    size_t n = 0;
    const ag__queue *node;
    ag__queue_foreach (node, q) {
        if (n + 1 < sizeof buf)
            buf[n++] = (char)('0' + ag__queue_data(node, item, link)->value);
    }
    buf[n] = 0;
    return buf;
}

int main(void)
{
    item it[6];
    ag__queue q, other;
    ag__queue_init(&q);
    for (int i = 0; i < 6; i++) {
        it[i].value = i;
        ag__queue_init(&it[i].link);
    }
    tap_ok(ag__queue_empty(&q) && !ag__queue_head(&q) && !ag__queue_tail(&q) && !ag__queue_pop(&q),
           "queue_empty: a new queue has no head, no tail, and pops nothing");

    for (int i = 0; i < 5; i++)
        ag__queue_push(&q, &it[i].link);
    tap_ok(strcmp(values(&q), "01234") == 0 && ag__queue_head(&q) == &it[0].link &&
               ag__queue_tail(&q) == &it[4].link,
           "queue_push: elements come out in arrival order (%s)", values(&q));

    ag__queue_remove(&it[2].link);
    ag__queue_remove(&it[2].link);
    ag__queue_remove(&it[4].link);
    tap_ok(strcmp(values(&q), "013") == 0 && !ag__queue_linked(&it[2].link) &&
               ag__queue_linked(&it[1].link) && ag__queue_tail(&q) == &it[3].link,
           "queue_remove: from the middle and the tail, twice harmlessly (%s)", values(&q));

    ag__queue_push_head(&q, &it[5].link);
    ag__queue *first = ag__queue_pop(&q);
    tap_ok(first == &it[5].link && !ag__queue_linked(first) && strcmp(values(&q), "013") == 0,
           "queue_pop: push_head puts an element first, pop takes it out (%s)", values(&q));

    ag__queue_init(&other);
    ag__queue_push(&other, &it[2].link);
    ag__queue_move(&q, &other);
    ag__queue_push(&q, &it[4].link);
    tap_ok(strcmp(values(&other), "2013") == 0 && strcmp(values(&q), "4") == 0,
           "queue_move: the elements go in order after the target's, the source is empty and "
           "usable");
    ag__queue_init(&q);
    ag__queue_move(&q, &other);
    tap_ok(strcmp(values(&other), "2013") == 0,
           "queue_move: moving an empty queue leaves the target as it was");
    return tap_done();
}
