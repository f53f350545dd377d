/* queue.h: an intrusive, circular, doubly linked queue: FIFO order, O(1) push, pop and removal
 * of any element, and no allocation (the link lives inside the queued object). */
#ifndef AG_CORE_QUEUE_H
#define AG_CORE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

/* The same struct is the head of a queue and the link of an element. An empty head, and an
 * element in no queue, point to themselves, so removing an element twice is harmless. */
typedef struct ag__queue {
    struct ag__queue *next, *prev;
} ag__queue;

/* The object that holds link `node` as its member `field`. */
#define ag__queue_data(node, type, field) ((type *)((char *)(node)-offsetof(type, field)))

/* Every element of q, oldest first; the loop body must not remove `node` (use ag__queue_pop or
 * save the next link first). */
#define ag__queue_foreach(node, q) for ((node) = (q)->next; (node) != (q); (node) = (node)->next)

static inline void ag__queue_init(ag__queue *q)
{
    q->next = q->prev = q;
}

static inline bool ag__queue_empty(const ag__queue *q)
{
    return q->next == q;
}

/* Whether an element (initialised with ag__queue_init) is in some queue. */
static inline bool ag__queue_linked(const ag__queue *node)
{
    return node->next != node;
}

/* The oldest element, or NULL. */
static inline ag__queue *ag__queue_head(const ag__queue *q)
{
    return q->next == q ? NULL : q->next;
}

/* The newest element, or NULL. */
static inline ag__queue *ag__queue_tail(const ag__queue *q)
{
    return q->prev == q ? NULL : q->prev;
}

/* Append node at the tail of q. */
static inline void ag__queue_push(ag__queue *q, ag__queue *node)
{
    node->prev = q->prev;
    node->next = q;
    q->prev->next = node;
    q->prev = node;
}

/* Insert node at the head of q. */
static inline void ag__queue_push_head(ag__queue *q, ag__queue *node)
{
    node->next = q->next;
    node->prev = q;
    q->next->prev = node;
    q->next = node;
}

/* Take node out of its queue; it is left pointing to itself. */
static inline void ag__queue_remove(ag__queue *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->next = node->prev = node;
}

/* Remove and return the oldest element, or NULL. */
static inline ag__queue *ag__queue_pop(ag__queue *q)
{
    ag__queue *node = ag__queue_head(q);
    if (node)
        ag__queue_remove(node);
    return node;
}

/* Move every element of from, in order, to the tail of to; from is left empty. */
static inline void ag__queue_move(ag__queue *from, ag__queue *to)
{
    if (ag__queue_empty(from))
        return;
    from->next->prev = to->prev;
    to->prev->next = from->next;
    from->prev->next = to;
    to->prev = from->prev;
    ag__queue_init(from);
}

#endif
