/* ctx_x86_64.c: builds the first frame of a new x86-64 context (layout in switch_x86_64.S). */
#include "ctx.h"

#include <stdint.h>
#include <string.h>

void ag__ctx_trampoline(void);

void ag__ctx_make(ag__ctx *ctx, void *lo, size_t size, void (*fn)(void *), void *arg)
{
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *frame = (uint64_t *)(top - 64);

    memset(frame, 0, 64);
    /* Default control state: all exceptions masked, round to nearest, 64-bit x87 precision. */
    uint32_t mxcsr = 0x1f80;
    uint16_t fpucw = 0x037f;
    memcpy((char *)frame, &mxcsr, sizeof mxcsr);
    memcpy((char *)frame + 4, &fpucw, sizeof fpucw);
    frame[3] = (uint64_t)(uintptr_t)fn;  /* r13 */
    frame[4] = (uint64_t)(uintptr_t)arg; /* r12 */
    frame[7] = (uint64_t)(uintptr_t)ag__ctx_trampoline;
    ctx->sp = frame;
}
