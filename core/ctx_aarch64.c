/* ctx_aarch64.c: builds the first frame of a new AArch64 context (layout in switch_aarch64.S). */
#include "ctx.h"

#include <stdint.h>
#include <string.h>

void ag__ctx_trampoline(void);

void ag__ctx_make(ag__ctx *ctx, void *lo, size_t size, void (*fn)(void *), void *arg)
{
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *frame = (uint64_t *)(top - 176);

    /* Zero gives x29 = 0, which ends the frame chain for debuggers and unwinders, zeroed
     * d8-d15, and FPCR = 0: round to nearest, no flush-to-zero, no default NaN. */
    memset(frame, 0, 176);
    frame[0] = (uint64_t)(uintptr_t)fn;                  /* x19 */
    frame[1] = (uint64_t)(uintptr_t)arg;                 /* x20 */
    frame[11] = (uint64_t)(uintptr_t)ag__ctx_trampoline; /* x30 */
    ctx->sp = frame;
}
