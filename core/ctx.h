/* ctx.h: the machine context switch, written in assembly per architecture. */
#ifndef AG_CORE_CTX_H
#define AG_CORE_CTX_H

#include <stddef.h>

/* A parked execution context: its stack pointer. Every callee-saved register, and the
 * floating-point control state, sit on the parked stack itself. */
typedef struct ag__ctx {
    void *sp;
} ag__ctx;

/* Save the running context into *from and resume *to. Returns when something switches back to
 * from. Implemented in core/switch_<arch>.S. */
void ag__ctx_switch(ag__ctx *from, const ag__ctx *to);

/* Prepare *ctx so that the first switch to it calls fn(arg) on the stack [lo, lo + size).
 * fn must never return: it ends by switching away for good. Implemented in core/ctx_<arch>.c. */
void ag__ctx_make(ag__ctx *ctx, void *lo, size_t size, void (*fn)(void *), void *arg);

#endif
